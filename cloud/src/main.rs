//! `vigie-cloud`: `serve`, `user add`, `device add`. Thin: everything lives in the library.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use protocol::DeviceId;
use vigie_cloud::auth::{device_token_hash, hash_password, new_device_token, PasswordCost, Role};
use vigie_cloud::config::Config;
use vigie_cloud::store::Store;

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
}

#[derive(Subcommand)]
enum DeviceAction {
    /// Provision a device; prints only its API token.
    Add { id: String },
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
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    Store::open(config.database_url.as_deref(), &config.data_dir)
        .context("cannot open the database")
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => actix_web::rt::System::new().block_on(vigie_cloud::app::serve(config)),
        Command::User {
            action: UserAction::Add { name, role, .. },
        } => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\n', '\r']);
            anyhow::ensure!(
                password.len() >= 8,
                "the password must have at least 8 characters"
            );
            anyhow::ensure!(
                !name.is_empty() && name.len() <= 64 && !name.chars().any(char::is_control),
                "the user name must be 1 to 64 printable characters"
            );
            let store = open_store(&config)?;
            store.add_user(
                &name,
                role,
                &hash_password(password, PasswordCost::Standard),
            )?;
            store.audit(&cli_audit(
                "user_added",
                &name,
                Some(format!("role {role:?}")),
            ))?;
            eprintln!("user {name} added ({role:?})");
            Ok(())
        }
        Command::Device {
            action: DeviceAction::Add { id },
        } => {
            let id = DeviceId::new(id)?;
            let store = open_store(&config)?;
            let token = new_device_token();
            store.add_device(&id, &device_token_hash(&token))?;
            store.audit(&cli_audit("device_added", id.as_str(), None))?;
            println!("{token}");
            Ok(())
        }
    }
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
