//! Provisioning over a temporary boot partition and system root: a good bundle is installed whole
//! and leaves the card; every kind of bad bundle or site file is refused with its reason, on the card
//! too, and changes nothing; a bundle for the same device keeps its outbox, one for another device
//! is refused while the old outbox holds unsent events, unless `replace_device` archives it.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use super::*;
use crate::outbox::OutboxKey;

struct Card {
    _dir: tempfile::TempDir,
    paths: Paths,
}

const SITE: &str = r#"
cloud_url = "https://vigie.example.org"
broker_url = "mqtts://pis.vigie.example.org:8883"
topic_prefix = "site-a"
time_zone = "Europe/Paris"
ssh_authorized_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample admin@laptop"
camera = "v4l"
live_url = "rtsp://pis.vigie.example.org:8554/live/{device}"
[wifi]
country = "FR"
ssid = "atelier"
psk = "correct horse"
"#;

/// A root with a passwd naming the test's own user as `vigie`, a zoneinfo, and a boot partition.
fn card() -> Card {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let boot = dir.path().join("boot");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("usr/share/zoneinfo/Europe")).unwrap();
    std::fs::write(root.join("usr/share/zoneinfo/Europe/Paris"), b"TZif").unwrap();
    let me = std::fs::metadata(dir.path()).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        format!(
            "root:x:0:0::/root:/bin/sh\nvigie:x:{}:{}::/var/lib/vigie:/usr/sbin/nologin\n",
            me.uid(),
            me.gid()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(boot.join("vigie")).unwrap();
    Card {
        _dir: dir,
        paths: Paths {
            boot,
            root,
            owner: "vigie".into(),
        },
    }
}

/// Puts `device`'s bundle (as `vigie-cloud device add --out` writes it) and `site` on the card.
fn put(card: &Card, device: &str, site: &str) -> PathBuf {
    let bundle = card.paths.boot.join("vigie/bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let files: Vec<(&str, String)> = vec![
        ("api.token", format!("vgd_{}\n", "a".repeat(43))),
        ("mqtt.password", format!("{}\n", "m".repeat(32))),
        ("live.token", format!("vgl_{}\n", "l".repeat(43))),
        (
            "ca.pem",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
        ),
    ];
    for (name, text) in &files {
        std::fs::write(bundle.join(name), text).unwrap();
    }
    let manifest = Manifest::describe(
        DeviceId::new(device).unwrap(),
        files.iter().map(|(n, t)| (*n, t.as_bytes())),
    );
    std::fs::write(bundle.join(MANIFEST), manifest.to_toml()).unwrap();
    std::fs::write(card.paths.boot.join("vigie/site.toml"), site).unwrap();
    bundle
}

/// Every file under `dir` with its contents and mode (links by target).
fn tree(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let key = path.strip_prefix(dir).unwrap().display().to_string();
            if meta.is_dir() {
                out.insert(key, (Vec::new(), meta.mode()));
                stack.push(path);
            } else if meta.file_type().is_symlink() {
                out.insert(
                    key,
                    (
                        std::fs::read_link(&path)
                            .unwrap()
                            .display()
                            .to_string()
                            .into_bytes(),
                        0,
                    ),
                );
            } else {
                out.insert(key, (std::fs::read(&path).unwrap(), meta.mode()));
            }
        }
    }
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o777
}

/// An outbox at the installed place with `unsent` events, under a key made as keygen makes it.
fn outbox_with(card: &Card, device: &str, unsent: u64) {
    let key_file = card.paths.key_file();
    if !key_file.exists() {
        crate::outbox::key::generate(&key_file).unwrap();
    }
    let key: OutboxKey = crate::outbox::key::load(&key_file).unwrap();
    let (store, _) = Store::open(&card.paths.outbox_dir(), &key).unwrap();
    let events: Vec<_> = (1..=unsent)
        .map(|seq| crate::outbox::testing::event_of(device, seq))
        .collect();
    store.append(&events, unsent + 1).unwrap();
    store.flush().unwrap();
}

#[test]
fn a_good_bundle_is_installed_whole_and_leaves_the_card() {
    let card = card();
    put(&card, "pi-7", SITE);
    let outcome = provision(&card.paths).unwrap();
    assert_eq!(
        outcome,
        Outcome::Provisioned {
            device: DeviceId::new("pi-7").unwrap(),
            replaced: None
        }
    );

    let device = card.paths.device_dir();
    for secret in ["api.token", "mqtt.password", "live.token"] {
        assert_eq!(mode(&device.join(secret)), 0o600, "{secret}");
    }
    assert_eq!(mode(&device), 0o700);
    assert!(std::fs::read_to_string(device.join("api.token"))
        .unwrap()
        .starts_with("vgd_"));
    let env = std::fs::read_to_string(card.paths.site_env()).unwrap();
    for line in [
        "VIGIE_EDGE_DEVICE_ID=pi-7",
        "VIGIE_EDGE_MQTT_URL=mqtts://pis.vigie.example.org:8883",
        "VIGIE_EDGE_API_URL=https://vigie.example.org",
        "VIGIE_TOPIC_PREFIX=site-a",
        "VIGIE_EDGE_MQTT_PASSWORD_FILE=/etc/vigie/device/mqtt.password",
        "VIGIE_EDGE_TOKEN_FILE=/etc/vigie/device/api.token",
        "VIGIE_EDGE_MQTT_CA_FILE=/etc/vigie/device/ca.pem",
        "VIGIE_EDGE_KEY_FILE=/etc/vigie/keys/outbox.key",
        "VIGIE_EDGE_VIDEO_SOURCE=v4l",
        "VIGIE_EDGE_LIVE_TOKEN_FILE=/etc/vigie/device/live.token",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} in:\n{env}");
    }
    assert_eq!(mode(card.paths.key_file().parent().unwrap()), 0o700);
    let etc = card.paths.root.join("etc");
    assert_eq!(
        std::fs::read_to_string(etc.join("hostname")).unwrap(),
        "pi-7\n"
    );
    assert!(std::fs::read_to_string(etc.join("hosts"))
        .unwrap()
        .contains("127.0.1.1\tpi-7"));
    assert_eq!(
        std::fs::read_link(etc.join("localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/Europe/Paris")
    );
    let wifi = etc.join("wpa_supplicant/wpa_supplicant-wlan0.conf");
    assert_eq!(mode(&wifi), 0o600);
    assert!(std::fs::read_to_string(wifi)
        .unwrap()
        .contains("ssid=\"atelier\""));
    let keys = card.paths.root.join("root/.ssh/authorized_keys");
    assert_eq!(mode(&keys), 0o600);
    assert!(std::fs::read_to_string(keys)
        .unwrap()
        .starts_with("ssh-ed25519 "));

    // The card keeps no secret, only the receipt; an ordinary boot after it does nothing.
    let vigie = card.paths.boot.join("vigie");
    assert!(!vigie.join("bundle").exists() && !vigie.join("site.toml").exists());
    assert!(std::fs::read_to_string(vigie.join("PROVISIONED.txt"))
        .unwrap()
        .contains("pi-7"));
    assert_eq!(provision(&card.paths).unwrap(), Outcome::NothingToDo);
}

#[test]
fn a_bad_bundle_or_site_file_is_refused_saying_why_and_changes_nothing() {
    type Spoil = fn(&Path, &Path);
    let cases: Vec<(&str, Spoil)> = vec![
        ("the bundle has no bundle.toml", |b, _| {
            std::fs::remove_file(b.join(MANIFEST)).unwrap()
        }),
        ("mqtt.password does not match its SHA-256", |b, _| {
            std::fs::write(b.join("mqtt.password"), "x".repeat(40)).unwrap()
        }),
        (
            "the bundle names live.token, which is not on the card",
            |b, _| std::fs::remove_file(b.join("live.token")).unwrap(),
        ),
        (
            "the bundle holds notes.txt, which bundle.toml does not name",
            |b, _| std::fs::write(b.join("notes.txt"), "hi").unwrap(),
        ),
        ("bundle.toml is format 9", |b, _| {
            let text = std::fs::read_to_string(b.join(MANIFEST)).unwrap();
            std::fs::write(b.join(MANIFEST), text.replace("format = 1", "format = 9")).unwrap()
        }),
        ("site.toml: time_zone = \"Mars/Olympus\"", |_, s| {
            let text = std::fs::read_to_string(s).unwrap();
            std::fs::write(s, text.replace("Europe/Paris", "Mars/Olympus")).unwrap()
        }),
        ("cannot read the site file", |_, s| {
            std::fs::remove_file(s).unwrap()
        }),
    ];
    for (expected, spoil) in cases {
        let card = card();
        // Provisioned once already: a refused bundle must leave that install as it was.
        put(&card, "pi-7", SITE);
        provision(&card.paths).unwrap();
        let before = tree(&card.paths.root);
        let bundle = put(&card, "pi-7", &SITE.replace("site-a", "site-b"));
        spoil(&bundle, &card.paths.boot.join("vigie/site.toml"));
        let error = format!("{:#}", provision(&card.paths).unwrap_err());
        assert!(
            error.contains(expected),
            "{error:?} should say {expected:?}"
        );
        assert_eq!(
            tree(&card.paths.root),
            before,
            "{expected}: the installed system changed"
        );
        let note =
            std::fs::read_to_string(card.paths.boot.join("vigie/PROVISIONING-FAILED.txt")).unwrap();
        assert!(
            note.contains(expected) && note.contains("changed nothing"),
            "{note}"
        );
        assert!(bundle.exists(), "the bundle stays on the card to be fixed");
    }
}

#[test]
fn the_same_device_keeps_its_outbox_and_another_is_refused_while_events_are_unsent() {
    let card = card();
    put(&card, "pi-7", SITE);
    provision(&card.paths).unwrap();
    outbox_with(&card, "pi-7", 3);

    // The same id again (rotated credentials): the outbox and its key stay.
    let key_before = std::fs::read(card.paths.key_file()).unwrap();
    put(&card, "pi-7", SITE);
    provision(&card.paths).unwrap();
    assert_eq!(std::fs::read(card.paths.key_file()).unwrap(), key_before);
    assert_eq!(unsent_events(&card.paths).unwrap(), 3);

    // Another id: refused, saying how many events would be stranded.
    let before = tree(&card.paths.root);
    put(&card, "pi-8", SITE);
    let error = format!("{:#}", provision(&card.paths).unwrap_err());
    assert!(
        error.contains("this Pi is pi-7, whose outbox still holds 3 unsent events"),
        "{error}"
    );
    assert!(error.contains("replace_device = true"), "{error}");
    assert_eq!(tree(&card.paths.root), before);

    // Unless the site file says to replace it: the old outbox and key are archived.
    put(&card, "pi-8", &format!("replace_device = true\n{SITE}"));
    let outcome = provision(&card.paths).unwrap();
    assert_eq!(
        outcome,
        Outcome::Provisioned {
            device: DeviceId::new("pi-8").unwrap(),
            replaced: Some((DeviceId::new("pi-7").unwrap(), 3))
        }
    );
    assert!(!card.paths.outbox_dir().exists() && !card.paths.key_file().exists());
    let archive = card.paths.root.join("var/lib/vigie/archive");
    let (entry,) = {
        let mut entries: Vec<_> = std::fs::read_dir(&archive)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(entries.len(), 1);
        (entries.remove(0),)
    };
    assert!(entry
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("pi-7-"));
    assert!(entry.join("outbox").is_dir() && entry.join("outbox.key").is_file());
    assert!(std::fs::read_to_string(card.paths.site_env())
        .unwrap()
        .contains("VIGIE_EDGE_DEVICE_ID=pi-8"));
}
