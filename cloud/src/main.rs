//! `vigie-cloud`: `serve`, `user add|role|password|disable|enable|end-sessions|unlock`,
//! `device add|rotate|revoke`, `broker-config`, `probe`. Thin: everything lives in the library.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use protocol::DeviceId;
use vigie_cloud::auth::{
    device_token_hash, hash_password, mosquitto_hash, new_device_token, new_live_token,
    new_mqtt_password, PasswordCost, Role,
};
use vigie_cloud::broker_files::{
    acl, password_file, write_file, ACL, CLOUD_PASSWD, DEVICES_PASSWD,
};
use vigie_cloud::broker_watch::Reload;
use vigie_cloud::config::Config;
use vigie_cloud::store::{CredentialHashes, Store};

#[derive(Parser)]
#[command(
    name = "vigie-cloud",
    version,
    about = "Vigie's cloud: MQTT ingest, store, API"
)]
struct Cli {
    /// TOML settings file; `VIGIE_*` environment variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API, the ingest and (on the embedded defaults) the MQTT broker.
    Serve,
    /// Manage console users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage devices.
    Device {
        #[command(subcommand)]
        action: DeviceAction,
    },
    /// GET an `http://` URL and exit 0 on a 2xx answer, 1 otherwise: a health check for images
    /// with no shell or curl (the container's checks, the chart's `helm test` Pod).
    Probe {
        /// Default: `/healthz` on the API's own address (`VIGIE_LISTEN`, an unspecified address
        /// probed on loopback), so a container's health check follows its settings.
        url: Option<String>,
        /// Seconds to connect, and again for the answer.
        #[arg(long, default_value_t = 5)]
        timeout_s: u64,
    },
    /// Write Mosquitto's password file and ACL from the device list (then reload Mosquitto).
    BrokerConfig {
        /// Directory to write `passwd` and `acl` into.
        #[arg(long)]
        out: PathBuf,
        /// The cloud ingest's MQTT username.
        #[arg(long, default_value = "vigie-cloud")]
        cloud_user: String,
        /// A file holding the cloud ingest's MQTT password (the one `VIGIE_MQTT_PASSWORD_FILE`
        /// gives `serve`).
        #[arg(long)]
        cloud_password_file: PathBuf,
        /// Keep going: every `--every-s`, write the devices' password file again when a device
        /// was added, rotated or revoked, and reload the broker (a sidecar beside Mosquitto).
        #[arg(long)]
        watch: bool,
        /// Seconds between two reads of the device list, with `--watch`.
        #[arg(long, default_value_t = 10, requires = "watch")]
        every_s: u64,
        /// With `--watch`: send SIGHUP to the process whose pid this file holds.
        #[arg(long, requires = "watch", conflicts_with = "reload_process")]
        reload_pid_file: Option<PathBuf>,
        /// With `--watch`: send SIGHUP to every process of this name (a pod sharing its process
        /// namespace: `mosquitto`).
        #[arg(long, requires = "watch")]
        reload_process: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Add a user; the password is read from standard input.
    Add {
        name: String,
        #[arg(long)]
        role: Role,
        /// Read the password from standard input (required: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Change a user's role; it applies to their next request.
    Role {
        name: String,
        #[arg(long)]
        role: Role,
    },
    /// Set a new password (read from standard input); every session of the user ends.
    Password {
        name: String,
        /// Read the password from standard input (required: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Disable a user: no login, every session ends (a running cloud closes their WebSockets
    /// within a second).
    Disable { name: String },
    /// Enable a disabled user again.
    Enable { name: String },
    /// End every session of a user (they log in again).
    EndSessions { name: String },
    /// Clear the user's login locks (after repeated failed logins), everywhere.
    Unlock { name: String },
}

/// Where a device's new credentials go (`device add` and `device rotate`).
#[derive(clap::Args)]
struct BundleArgs {
    /// Write the bundle into DIR/ID/.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The CA certificate the Pi checks the broker against (copied into the bundle).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Write the bundle as a tar archive (ID/api.token, ...) to this file, or to standard
    /// output with `-` (then the token is not printed apart): for a read-only container.
    #[arg(long, conflicts_with = "out")]
    bundle_tar: Option<PathBuf>,
}

#[derive(Subcommand)]
enum DeviceAction {
    /// Provision a device; prints only its API token. With `--out DIR`, also writes what the Pi is
    /// flashed with into DIR/ID/: `api.token`, `mqtt.password` (its MQTT identity: username = ID),
    /// `live.token` (its live-push credential, which only the RTSP server takes) and `ca.pem`
    /// (with `--ca`).
    Add {
        id: String,
        #[command(flatten)]
        bundle: BundleArgs,
    },
    /// Issue new credentials to a provisioned device (API token, MQTT password, live-push token):
    /// the old ones stop working at once (for the broker: once `broker-config` has run again and
    /// Mosquitto reloaded). Prints only the new API token; `--out DIR` writes the new bundle, as
    /// `add` does.
    Rotate {
        id: String,
        #[command(flatten)]
        bundle: BundleArgs,
    },
    /// Revoke a device: its API token, MQTT password and live-push token stop working (run
    /// `broker-config` again and reload Mosquitto for the broker to refuse it).
    Revoke { id: String },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rumqttd=warn"));
    let json = match std::env::var("VIGIE_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("pretty") => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn open_store(config: &Config) -> anyhow::Result<Store> {
    vigie_cloud::files::private_dir(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    Store::open(config.database_url.as_deref(), &config.data_dir)
        .context("cannot open the database")
}

fn main() -> anyhow::Result<()> {
    install_crypto_provider();
    let cli = Cli::parse();
    // A probe reads no settings: it runs in the container beside a cloud whose settings it may not see.
    if let Command::Probe { url, timeout_s } = &cli.command {
        let url = url.clone().unwrap_or_else(|| {
            let listen = std::env::var("VIGIE_LISTEN").ok();
            vigie_cloud::probe::own_healthz(listen.as_deref())
        });
        return probe(&url, *timeout_s);
    }
    init_logging();
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => actix_web::rt::System::new().block_on(vigie_cloud::app::serve(config)),
        Command::User { action } => user_command(&config, action),
        Command::Device { action } => device_command(&config, action),
        Command::Probe { .. } => unreachable!("answered before the settings are read"),
        Command::BrokerConfig {
            out,
            cloud_user,
            cloud_password_file,
            watch,
            every_s,
            reload_pid_file,
            reload_process,
        } => {
            let cloud_password = std::fs::read_to_string(&cloud_password_file)
                .with_context(|| format!("cannot read {}", cloud_password_file.display()))?;
            let cloud_password = cloud_password.trim_end_matches(['\n', '\r']);
            anyhow::ensure!(
                cloud_password.len() >= 16,
                "the cloud's MQTT password must have at least 16 characters"
            );
            let store = open_store(&config)?;
            let entries = store.mqtt_credentials()?;
            anyhow::ensure!(
                !entries.iter().any(|(id, _)| *id == cloud_user),
                "a device is named {cloud_user:?}, the cloud's MQTT user: revoke it, or pass \
                 another --cloud-user"
            );
            let devices = write_file(&out, DEVICES_PASSWD, &password_file(&entries), 0o640)?;
            let cloud = [(cloud_user.clone(), mosquitto_hash(cloud_password))];
            write_file(&out, CLOUD_PASSWD, &password_file(&cloud), 0o640)?;
            write_file(&out, ACL, &acl(&config.topic_prefix, &cloud_user), 0o640)?;
            eprintln!(
                "wrote {} ({} devices), {CLOUD_PASSWD} and {ACL} in {}; reload Mosquitto (SIGHUP) \
                 to apply",
                devices.display(),
                entries.len(),
                out.display()
            );
            if !watch {
                return Ok(());
            }
            let how = match (reload_pid_file, reload_process) {
                (Some(file), _) => Reload::PidFile(file),
                (None, Some(name)) => Reload::Process(name),
                (None, None) => Reload::Nobody,
            };
            if let Err(e) = vigie_cloud::broker_watch::reload(&how) {
                tracing::warn!(error = %e, "cannot reload the broker yet; will at the next change");
            }
            tracing::info!(every_s, reload = ?how, "watching the device list");
            let every = std::time::Duration::from_secs(every_s.max(1));
            vigie_cloud::broker_watch::watch(&store, &out, every, &how, entries)
        }
    }
}

/// A device's new credentials, in clear: what its bundle holds.
struct NewCredentials {
    token: String,
    mqtt_password: String,
    live_token: String,
}

impl NewCredentials {
    fn issue() -> NewCredentials {
        NewCredentials {
            token: new_device_token(),
            mqtt_password: new_mqtt_password(),
            live_token: new_live_token(),
        }
    }

    /// `(API token hash, Mosquitto hash of the MQTT password, live-push token hash)`.
    fn hashes(&self) -> (String, String, String) {
        (
            device_token_hash(&self.token),
            mosquitto_hash(&self.mqtt_password),
            device_token_hash(&self.live_token),
        )
    }

    /// The bundle's files: `(name, contents, mode)`, its manifest (`bundle.toml`: the device, the
    /// format, each file's SHA-256) last.
    fn files(
        &self,
        id: &DeviceId,
        ca: Option<&Path>,
    ) -> anyhow::Result<Vec<(&'static str, String, u32)>> {
        let mut files = vec![
            ("api.token", format!("{}\n", self.token), 0o600),
            ("mqtt.password", format!("{}\n", self.mqtt_password), 0o600),
            ("live.token", format!("{}\n", self.live_token), 0o600),
        ];
        if let Some(ca) = ca {
            let pem = std::fs::read_to_string(ca)
                .with_context(|| format!("cannot read the CA {}", ca.display()))?;
            files.push(("ca.pem", pem, 0o644));
        }
        let manifest = protocol::bundle::Manifest::describe(
            id.clone(),
            files
                .iter()
                .map(|(name, contents, _)| (*name, contents.as_bytes())),
        );
        files.push((protocol::bundle::MANIFEST, manifest.to_toml(), 0o644));
        Ok(files)
    }

    /// Hands the credentials over: the bundle into `out/ID/`, or as a tar archive, and the API
    /// token on standard output unless the archive goes there.
    fn deliver(&self, id: &DeviceId, bundle: BundleArgs) -> anyhow::Result<()> {
        let BundleArgs {
            out,
            ca,
            bundle_tar,
        } = bundle;
        anyhow::ensure!(
            ca.is_none() || out.is_some() || bundle_tar.is_some(),
            "--ca goes into a bundle: give --out DIR or --bundle-tar FILE too"
        );
        let files = self.files(id, ca.as_deref())?;
        let to_stdout = bundle_tar.as_deref() == Some(Path::new("-"));
        let bundled = out.is_some() || bundle_tar.is_some();
        if let Some(out) = out {
            let dir = out.join(id.as_str());
            for (name, contents, mode) in &files {
                write_file(&dir, name, contents, *mode)?;
            }
            eprintln!("device {id}: bundle written to {}", dir.display());
        } else if let Some(tar) = bundle_tar {
            let archive = bundle_archive(id, &files)?;
            if to_stdout {
                std::io::stdout()
                    .write_all(&archive)
                    .context("cannot write the bundle to standard output")?;
            } else {
                std::fs::write(&tar, &archive)
                    .with_context(|| format!("cannot write {}", tar.display()))?;
                eprintln!("device {id}: bundle archive written to {}", tar.display());
            }
        }
        if bundled {
            eprintln!(
                "flash it onto the Pi (mqtt.username = {id}, mqtt.password_file, api.token_file, \
                 video.live_token_file, mqtt.ca_file); run `vigie-cloud broker-config` and reload \
                 Mosquitto"
            );
        }
        if !to_stdout {
            println!("{}", self.token);
        }
        Ok(())
    }
}

/// A tar archive of the bundle under `ID/`, each file with its mode, owned by no one in particular
/// (uid/gid 0: the Pi's provisioning sets the owner when it installs them).
fn bundle_archive(id: &DeviceId, files: &[(&str, String, u32)]) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o700);
    dir.set_mtime(now);
    dir.set_size(0);
    builder.append_data(&mut dir, format!("{id}/"), std::io::empty())?;
    for (name, contents, mode) in files {
        let mut header = tar::Header::new_ustar();
        header.set_mode(*mode);
        header.set_mtime(now);
        header.set_size(contents.len() as u64);
        builder.append_data(&mut header, format!("{id}/{name}"), contents.as_bytes())?;
    }
    Ok(builder.into_inner()?)
}

fn device_command(config: &Config, action: DeviceAction) -> anyhow::Result<()> {
    match action {
        DeviceAction::Add { id, bundle } => {
            let id = DeviceId::new(id)?;
            let store = open_store(config)?;
            let new = NewCredentials::issue();
            let (token, mqtt, live) = new.hashes();
            store.provision_device(&id, hashes(&token, &mqtt, &live))?;
            store.audit(&cli_audit("device_added", id.as_str(), None))?;
            new.deliver(&id, bundle)?;
        }
        DeviceAction::Rotate { id, bundle } => {
            let id = DeviceId::new(id)?;
            let store = open_store(config)?;
            let new = NewCredentials::issue();
            let (token, mqtt, live) = new.hashes();
            anyhow::ensure!(
                store.rotate_device(&id, hashes(&token, &mqtt, &live))?,
                "device {id} is not provisioned, or revoked: `device add {id}` provisions it"
            );
            store.audit(&cli_audit("device_rotated", id.as_str(), None))?;
            eprintln!(
                "device {id}: new credentials issued, the old ones are refused now (the broker's \
                 once `vigie-cloud broker-config` has run and Mosquitto reloaded)"
            );
            new.deliver(&id, bundle)?;
        }
        DeviceAction::Revoke { id } => {
            let id = DeviceId::new(id)?;
            let store = open_store(config)?;
            anyhow::ensure!(
                store.revoke_device(&id)?,
                "device {id} is not provisioned, or already revoked"
            );
            store.audit(&cli_audit("device_revoked", id.as_str(), None))?;
            eprintln!(
                "device {id} revoked: its API and live-push tokens are refused now; run \
                 `vigie-cloud broker-config` and reload Mosquitto (SIGHUP) for the broker to refuse it"
            );
        }
    }
    Ok(())
}

fn hashes<'a>(token: &'a str, mqtt: &'a str, live: &'a str) -> CredentialHashes<'a> {
    CredentialHashes {
        token,
        mqtt_password: Some(mqtt),
        live_token: Some(live),
    }
}

/// `probe URL`: exit 0 on 2xx; otherwise the status or the failure on standard error, exit 1.
fn probe(url: &str, timeout_s: u64) -> anyhow::Result<()> {
    let timeout = std::time::Duration::from_secs(timeout_s.max(1));
    match vigie_cloud::probe::probe(url, timeout) {
        Ok(status) if (200..300).contains(&status) => Ok(()),
        Ok(status) => {
            eprintln!("{url}: {status}");
            std::process::exit(1)
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    }
}

fn read_password() -> anyhow::Result<String> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']).to_owned();
    anyhow::ensure!(
        password.len() >= 8,
        "the password must have at least 8 characters"
    );
    Ok(password)
}

fn user_command(config: &Config, action: UserAction) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    match action {
        UserAction::Add { name, role, .. } => {
            let password = read_password()?;
            anyhow::ensure!(
                !name.is_empty() && name.len() <= 64 && !name.chars().any(char::is_control),
                "the user name must be 1 to 64 printable characters"
            );
            let store = open_store(config)?;
            store.add_user(
                &name,
                role,
                &hash_password(&password, PasswordCost::Standard),
            )?;
            store.audit(&cli_audit(
                "user_added",
                &name,
                Some(format!("role {role:?}")),
            ))?;
            eprintln!("user {name} added ({role:?})");
        }
        UserAction::Role { name, role } => {
            let store = open_store(config)?;
            store.set_user_role(&name, role)?;
            store.audit(&cli_audit(
                "user_role_changed",
                &name,
                Some(format!("role {}", role.as_str())),
            ))?;
            eprintln!("user {name} is now {role}; it applies to their next request");
        }
        UserAction::Password { name, .. } => {
            let password = read_password()?;
            let store = open_store(config)?;
            let ended = store.set_user_password(
                &name,
                &hash_password(&password, PasswordCost::Standard),
                now,
            )?;
            store.audit(&cli_audit("user_password_changed", &name, None))?;
            eprintln!("user {name}: password changed, {ended} sessions ended");
        }
        UserAction::Disable { name } => {
            let store = open_store(config)?;
            let ended = store.set_user_disabled(&name, true, now)?;
            store.audit(&cli_audit("user_disabled", &name, None))?;
            eprintln!("user {name} disabled, {ended} sessions ended");
        }
        UserAction::Enable { name } => {
            let store = open_store(config)?;
            store.set_user_disabled(&name, false, now)?;
            store.audit(&cli_audit("user_enabled", &name, None))?;
            eprintln!("user {name} enabled");
        }
        UserAction::EndSessions { name } => {
            let store = open_store(config)?;
            let ended = store.end_user_sessions(&name, now)?;
            store.audit(&cli_audit(
                "sessions_ended",
                &name,
                Some(format!("{ended} sessions")),
            ))?;
            eprintln!("user {name}: {ended} sessions ended");
        }
        UserAction::Unlock { name } => {
            let store = open_store(config)?;
            store.unlock_user(&name)?;
            store.audit(&cli_audit("user_unlocked", &name, None))?;
            eprintln!("user {name} unlocked");
        }
    }
    Ok(())
}

/// An audit entry for a change made on the command line (the actor is the OS user, if known).
fn cli_audit(
    action: &'static str,
    target: &str,
    detail: Option<String>,
) -> vigie_cloud::store::AuditRecord {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    vigie_cloud::store::AuditRecord {
        at: chrono::Utc::now(),
        actor: format!("cli:{who}"),
        action,
        target: Some(target.to_owned()),
        detail,
        source: None,
    }
}

/// TLS (MQTT over `mqtts://`, S3 over HTTPS) uses aws-lc-rs. Two rustls providers are compiled in
/// (the S3 client brings ring), so rustls cannot pick one by itself: name it once, first.
fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
