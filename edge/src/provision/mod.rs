//! `vigie-edge provision --boot DIR`: a Pi's first boot (and every boot with a new bundle). The
//! person copies the device's bundle (`vigie-cloud device add ID --out DIR`: its tokens, MQTT
//! password, CA and `bundle.toml`) to `vigie/bundle/` on the FAT boot partition and the site file to
//! `vigie/site.toml` ([`site`]). Everything is checked before anything is touched: the manifest,
//! each file against its SHA-256, the tokens' kinds, the site file. Then, in this order:
//!
//! 1. A bundle for another device id than the one this Pi was provisioned as is refused while the
//!    old outbox holds unsent events (the message says how many), unless the site file says
//!    `replace_device = true`: then the old outbox and its key are archived under
//!    `/var/lib/vigie/archive/`. A bundle for the same id keeps the outbox.
//! 2. The bundle goes to `/etc/vigie/device/` (owned by the service user, secrets 0600) by a
//!    staged directory swapped in, then `/etc/vigie/site.env` (the unit's `EnvironmentFile=`), each
//!    written whole (temporary file, fsync, rename): a crash leaves the old or the new, and the
//!    next boot, finding the bundle still on the boot partition, does it again.
//! 3. The hostname (the device id), the time zone, Wi-Fi, the SSH key and WireGuard.
//! 4. The secrets are deleted from the boot partition (any PC can read FAT), with a receipt,
//!    `vigie/PROVISIONED.txt`, left in their place.
//!
//! A refusal leaves everything as it was and says why in the journal (standard error) and in
//! `vigie/PROVISIONING-FAILED.txt` on the boot partition; a failure while installing (a full disk)
//! says that instead, and the bundle stays on the card for the next boot to finish. The outbox key is made afterwards by
//! `vigie-edge keygen --if-missing` as the service user (the unit's next step), never here and
//! never on the boot partition.

pub mod site;

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use protocol::bundle::{Manifest, MANIFEST};
use protocol::DeviceId;

use crate::outbox::Store;
pub use site::Site;

/// Where provisioning reads and writes: the boot partition and the system root (`/` on a Pi; a
/// temporary directory in the tests), and the service user.
#[derive(Debug, Clone)]
pub struct Paths {
    pub boot: PathBuf,
    pub root: PathBuf,
    pub owner: String,
}

impl Paths {
    fn vigie(&self) -> PathBuf {
        self.boot.join("vigie")
    }
    fn etc(&self) -> PathBuf {
        self.root.join("etc/vigie")
    }
    /// The bundle, installed.
    pub fn device_dir(&self) -> PathBuf {
        self.etc().join("device")
    }
    pub fn site_env(&self) -> PathBuf {
        self.etc().join("site.env")
    }
    /// The outbox key (made by `vigie-edge keygen` as the service user).
    pub fn key_file(&self) -> PathBuf {
        self.etc().join("keys/outbox.key")
    }
    pub fn outbox_dir(&self) -> PathBuf {
        self.root.join("var/lib/vigie/outbox")
    }
    fn archive_dir(&self) -> PathBuf {
        self.root.join("var/lib/vigie/archive")
    }
}

/// What a provisioning did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No bundle on the boot partition: nothing to do (an ordinary boot).
    NothingToDo,
    /// Provisioned as `device`; `replaced`: the device this Pi was before, whose outbox (with its
    /// `unsent` events) was archived.
    Provisioned {
        device: DeviceId,
        replaced: Option<(DeviceId, usize)>,
    },
}

/// A bundle read from the boot partition and checked whole.
struct Bundle {
    manifest: Manifest,
    files: Vec<(String, Vec<u8>)>,
}

/// Provisions from `paths.boot`, or refuses with the reason (also written to the boot partition).
pub fn provision(paths: &Paths) -> anyhow::Result<Outcome> {
    let bundle_dir = paths.vigie().join("bundle");
    if !bundle_dir.exists() {
        return Ok(Outcome::NothingToDo);
    }
    let fail = |message: String| {
        let _ = std::fs::write(paths.vigie().join("PROVISIONING-FAILED.txt"), message);
    };
    let checked = match check(paths, &bundle_dir) {
        Ok(checked) => checked,
        Err(e) => {
            fail(format!(
                "vigie-edge provisioning refused the bundle on this card, and changed nothing:\n\
                 {e:#}\n\nFix it and boot again.\n"
            ));
            return Err(e);
        }
    };
    match apply(paths, &bundle_dir, checked) {
        Ok(outcome) => {
            let _ = std::fs::remove_file(paths.vigie().join("PROVISIONING-FAILED.txt"));
            Ok(outcome)
        }
        Err(e) => {
            fail(format!(
                "vigie-edge provisioning checked the bundle on this card but failed while \
                 installing it:\n{e:#}\n\nThe bundle stays on the card: boot again to retry.\n"
            ));
            Err(e)
        }
    }
}

/// What [`check`] found, all of it valid.
struct Checked {
    site: Site,
    bundle: Bundle,
    uid: u32,
    gid: u32,
    replaced: Option<(DeviceId, usize)>,
}

/// Reads and checks everything; touches nothing.
fn check(paths: &Paths, bundle_dir: &Path) -> anyhow::Result<Checked> {
    let site_file = paths.vigie().join("site.toml");
    let site_text = std::fs::read_to_string(&site_file)
        .with_context(|| format!("cannot read the site file {}", site_file.display()))?;
    let site =
        Site::parse(&site_text, &paths.root).map_err(|e| anyhow::anyhow!("site.toml: {e}"))?;
    let bundle = read_bundle(bundle_dir)?;
    let device = bundle.manifest.device.clone();
    let (uid, gid) = owner_ids(&paths.root, &paths.owner)?;
    let replaced = match provisioned_device(paths)? {
        Some(old) if old != device => {
            let unsent = unsent_events(paths)?;
            if unsent > 0 && !site.replace_device {
                bail!(
                    "this Pi is {old}, whose outbox still holds {unsent} unsent events; a bundle for \
                     {device} would strand them. Let {old} reach the cloud first, or set \
                     replace_device = true in site.toml to archive its outbox"
                );
            }
            Some((old, unsent))
        }
        _ => None,
    };
    Ok(Checked {
        site,
        bundle,
        uid,
        gid,
        replaced,
    })
}

/// Installs what [`check`] accepted, then deletes the secrets from the card.
fn apply(paths: &Paths, bundle_dir: &Path, checked: Checked) -> anyhow::Result<Outcome> {
    let Checked {
        site,
        bundle,
        uid,
        gid,
        replaced,
    } = checked;
    let device = bundle.manifest.device.clone();
    let site_file = paths.vigie().join("site.toml");
    if let Some((old, _)) = &replaced {
        archive_outbox(paths, old)?;
    }
    install_device_dir(paths, &bundle, uid, gid)?;
    write_whole(
        &paths.site_env(),
        site_env(&site, &bundle, paths).as_bytes(),
        0o640,
        Some((0, gid)),
    )?;
    let keys = paths.key_file().parent().unwrap().to_owned();
    std::fs::create_dir_all(&keys)?;
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700))?;
    std::os::unix::fs::chown(&keys, Some(uid), Some(gid))?;
    system_files(paths, &site, &device)?;

    // The secrets leave the boot partition.
    std::fs::remove_dir_all(bundle_dir)
        .with_context(|| format!("cannot delete {}", bundle_dir.display()))?;
    std::fs::remove_file(&site_file)
        .with_context(|| format!("cannot delete {}", site_file.display()))?;
    let receipt = format!(
        "Provisioned as {device} at {}. The bundle and the site file were installed, then deleted \
         from this card.\n",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    std::fs::write(paths.vigie().join("PROVISIONED.txt"), receipt)?;
    Ok(Outcome::Provisioned { device, replaced })
}

fn read_bundle(dir: &Path) -> anyhow::Result<Bundle> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).with_context(|| {
        format!("the bundle has no {MANIFEST}: copy the whole directory `vigie-cloud device add ID --out DIR` wrote")
    })?;
    let manifest = Manifest::from_toml(&text)?;
    let mut files = Vec::new();
    for name in manifest.sha256.keys() {
        let bytes = std::fs::read(dir.join(name))
            .with_context(|| format!("the bundle names {name}, which is not on the card"))?;
        manifest.check(name, &bytes)?;
        files.push((name.clone(), bytes));
    }
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name != MANIFEST && !manifest.sha256.contains_key(&name) {
            bail!("the bundle holds {name}, which {MANIFEST} does not name");
        }
    }
    let text_of = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| String::from_utf8_lossy(b).trim().to_owned())
            .unwrap_or_default()
    };
    if !text_of("api.token").starts_with("vgd_") {
        bail!("api.token is not a device API token (vgd_...)");
    }
    if !text_of("live.token").starts_with("vgl_") {
        bail!("live.token is not a live-push token (vgl_...)");
    }
    if text_of("mqtt.password").len() < 16 {
        bail!("mqtt.password is shorter than a device's MQTT password");
    }
    Ok(Bundle { manifest, files })
}

/// The uid and gid of `user` in `root`'s /etc/passwd.
fn owner_ids(root: &Path, user: &str) -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string(root.join("etc/passwd"))?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == user)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .with_context(|| format!("no user {user} on this system (the vigie-edge package makes it)"))
}

/// The device id in the current site.env, if this Pi was provisioned.
fn provisioned_device(paths: &Paths) -> anyhow::Result<Option<DeviceId>> {
    let Ok(env) = std::fs::read_to_string(paths.site_env()) else {
        return Ok(None);
    };
    let id = env
        .lines()
        .find_map(|l| l.strip_prefix("VIGIE_EDGE_DEVICE_ID="))
        .map(|v| DeviceId::new(v.trim()))
        .transpose()
        .context("the installed site.env names no valid device")?;
    Ok(id)
}

/// Unsent events in the installed outbox (0 without one).
fn unsent_events(paths: &Paths) -> anyhow::Result<usize> {
    if !paths.outbox_dir().exists() {
        return Ok(0);
    }
    let key = crate::outbox::key::load(&paths.key_file())
        .context("cannot read the outbox key to count the old device's unsent events")?;
    let (store, loaded) = Store::open(&paths.outbox_dir(), &key)
        .context("cannot open the old device's outbox to count its unsent events")?;
    drop(store);
    Ok(loaded.pending.len())
}

fn archive_outbox(paths: &Paths, old: &DeviceId) -> anyhow::Result<()> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let to = paths.archive_dir().join(format!("{old}-{stamp}"));
    crate::files::private_dir(&to)?;
    if paths.outbox_dir().exists() {
        std::fs::rename(paths.outbox_dir(), to.join("outbox"))?;
    }
    if paths.key_file().exists() {
        std::fs::rename(paths.key_file(), to.join("outbox.key"))?;
    }
    tracing::warn!(device = %old, archive = %to.display(), "the old device's outbox was archived");
    Ok(())
}

/// `/etc/vigie/device`, swapped whole for a staged copy.
fn install_device_dir(paths: &Paths, bundle: &Bundle, uid: u32, gid: u32) -> anyhow::Result<()> {
    let dir = paths.device_dir();
    let staged = dir.with_extension("new");
    let old = dir.with_extension("old");
    // A crash between the two renames below left only the old one: take it back.
    if !dir.exists() && old.exists() {
        std::fs::rename(&old, &dir)?;
    }
    let _ = std::fs::remove_dir_all(&staged);
    std::fs::create_dir_all(&staged)?;
    for (name, bytes) in &bundle.files {
        let mode = if name == "ca.pem" { 0o644 } else { 0o600 };
        write_whole(&staged.join(name), bytes, mode, Some((uid, gid)))?;
    }
    let manifest = bundle.manifest.to_toml();
    write_whole(
        &staged.join(MANIFEST),
        manifest.as_bytes(),
        0o644,
        Some((uid, gid)),
    )?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o700))?;
    std::os::unix::fs::chown(&staged, Some(uid), Some(gid))?;
    sync_dir(&staged)?;
    if dir.exists() {
        std::fs::rename(&dir, &old)?;
    }
    std::fs::rename(&staged, &dir)?;
    sync_dir(dir.parent().unwrap())?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn site_env(site: &Site, bundle: &Bundle, paths: &Paths) -> String {
    let device = &bundle.manifest.device;
    let on_pi = |p: PathBuf| {
        Path::new("/")
            .join(p.strip_prefix(&paths.root).unwrap_or(&p))
            .display()
            .to_string()
    };
    let device_file = |name: &str| on_pi(paths.device_dir().join(name));
    let mut env = vec![
        "# Written by `vigie-edge provision` from the boot partition's site file and bundle; the"
            .to_owned(),
        "# vigie-edge unit reads it (EnvironmentFile=). Provision again to change it.".to_owned(),
        format!("VIGIE_EDGE_DEVICE_ID={device}"),
        format!("VIGIE_EDGE_MQTT_URL={}", site.broker_url),
        format!("VIGIE_EDGE_API_URL={}", site.cloud_url),
        format!("VIGIE_TOPIC_PREFIX={}", site.topic_prefix),
        format!(
            "VIGIE_EDGE_MQTT_PASSWORD_FILE={}",
            device_file("mqtt.password")
        ),
        format!("VIGIE_EDGE_TOKEN_FILE={}", device_file("api.token")),
        format!("VIGIE_EDGE_KEY_FILE={}", on_pi(paths.key_file())),
        format!("VIGIE_EDGE_DATA_DIR={}", on_pi(paths.outbox_dir())),
    ];
    // Without the broker's CA in the bundle, the platform's roots (a broker with a public certificate).
    if bundle.manifest.sha256.contains_key("ca.pem") {
        env.push(format!("VIGIE_EDGE_MQTT_CA_FILE={}", device_file("ca.pem")));
    }
    if let Some(camera) = &site.camera {
        env.push(format!("VIGIE_EDGE_VIDEO_SOURCE={camera}"));
    }
    if let Some(live) = &site.live_url {
        env.push(format!("VIGIE_EDGE_LIVE_URL={live}"));
        env.push(format!(
            "VIGIE_EDGE_LIVE_TOKEN_FILE={}",
            device_file("live.token")
        ));
    }
    env.join("\n") + "\n"
}

/// Hostname, time zone, Wi-Fi, SSH key, WireGuard.
fn system_files(paths: &Paths, site: &Site, device: &DeviceId) -> anyhow::Result<()> {
    let etc = paths.root.join("etc");
    write_whole(
        &etc.join("hostname"),
        format!("{device}\n").as_bytes(),
        0o644,
        None,
    )?;
    let hosts = std::fs::read_to_string(etc.join("hosts"))
        .unwrap_or_else(|_| "127.0.0.1\tlocalhost\n".into());
    let mut lines: Vec<String> = hosts
        .lines()
        .filter(|l| !l.starts_with("127.0.1.1"))
        .map(str::to_owned)
        .collect();
    lines.push(format!("127.0.1.1\t{device}"));
    write_whole(
        &etc.join("hosts"),
        (lines.join("\n") + "\n").as_bytes(),
        0o644,
        None,
    )?;
    write_whole(
        &etc.join("timezone"),
        format!("{}\n", site.time_zone).as_bytes(),
        0o644,
        None,
    )?;
    let localtime = etc.join("localtime");
    let _ = std::fs::remove_file(&localtime);
    std::os::unix::fs::symlink(
        Path::new("/usr/share/zoneinfo").join(&site.time_zone),
        &localtime,
    )?;
    let ssh = paths.root.join("root/.ssh");
    std::fs::create_dir_all(&ssh)?;
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700))?;
    write_whole(
        &ssh.join("authorized_keys"),
        format!("{}\n", site.ssh_authorized_key.trim()).as_bytes(),
        0o600,
        None,
    )?;
    if let Some(wifi) = &site.wifi {
        let conf = format!(
            "# Written by vigie-edge provision from site.toml.\nctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev\n\
             country={}\nnetwork={{\n\tssid=\"{}\"\n\tpsk=\"{}\"\n}}\n",
            wifi.country, wifi.ssid, wifi.psk
        );
        let dir = etc.join("wpa_supplicant");
        std::fs::create_dir_all(&dir)?;
        write_whole(
            &dir.join("wpa_supplicant-wlan0.conf"),
            conf.as_bytes(),
            0o600,
            None,
        )?;
    }
    if let Some(wg) = &site.wireguard {
        let dir = etc.join("wireguard");
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        write_whole(&dir.join("wg0.conf"), wg.as_bytes(), 0o600, None)?;
    }
    if paths.root == Path::new("/") {
        set_hostname(device.as_str())?;
    }
    Ok(())
}

fn set_hostname(name: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("hostname").arg(name).status()?;
    if !status.success() {
        bail!("hostname {name} failed");
    }
    Ok(())
}

/// Writes `path` whole: a temporary file beside it, synced, given its mode (and owner), renamed.
fn write_whole(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    let dir = path.parent().context("a file in a directory")?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&tmp, Some(uid), Some(gid))?;
    }
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests;
