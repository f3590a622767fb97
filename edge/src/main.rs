//! The `vigie-edge` command line: `vigie-edge run --config FILE`, `vigie-edge keygen --out FILE` and
//! `vigie-edge provision --boot DIR`.
//! Thin: it parses arguments, loads the configuration, installs logging and hands over to
//! [`vigie_edge::app::run`] (or writes a new outbox key).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The Vigie Pi supervisor: sensors, durable outbox, MQTT uplink, local health.
#[derive(Parser)]
#[command(name = "vigie-edge", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the edge (see edge/CONFIG.md for the file and its environment overrides).
    Run {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Write a new random outbox key (32 bytes, mode 0600); refuses to overwrite an existing file.
    /// Run it as the service user at provisioning, then set outbox.key_file (VIGIE_EDGE_KEY_FILE).
    Keygen {
        /// Where to write the key.
        #[arg(long)]
        out: PathBuf,
        /// An existing key is kept (exit 0) instead of refused: for a unit run at every boot.
        #[arg(long)]
        if_missing: bool,
    },
    /// First boot: install the bundle and the site file from the boot partition (DIR/vigie/bundle,
    /// DIR/vigie/site.toml), checked whole first, then delete them from it. See `docs/deploy-pi.md`.
    Provision {
        /// The boot partition (FAT), e.g. /boot/firmware.
        #[arg(long)]
        boot: PathBuf,
        /// The system root to install into.
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// The service user, owner of the installed bundle.
        #[arg(long, default_value = "vigie")]
        owner: String,
    },
}

fn main() -> ExitCode {
    // TLS uses aws-lc-rs; name it, since a workspace build may compile ring into rustls too and
    // rustls then cannot pick a provider by itself.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigie-edge: error: {e:#}");
            tracing::error!(error = format!("{e:#}"), "vigie-edge stopped on an error");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { config } => {
            let config = vigie_edge::config::load(&config)?;
            vigie_edge::logging::init(config.log_format, &config.log_level)?;
            vigie_edge::app::run(config)
        }
        Command::Provision { boot, root, owner } => {
            let paths = vigie_edge::provision::Paths { boot, root, owner };
            match vigie_edge::provision::provision(&paths)? {
                vigie_edge::provision::Outcome::NothingToDo => {
                    eprintln!(
                        "vigie-edge: no bundle on {}: nothing to provision",
                        paths.boot.display()
                    )
                }
                vigie_edge::provision::Outcome::Provisioned { device, replaced } => {
                    if let Some((old, unsent)) = replaced {
                        eprintln!("vigie-edge: {old}'s outbox ({unsent} unsent events) archived");
                    }
                    eprintln!("vigie-edge: provisioned as {device}");
                }
            }
            Ok(())
        }
        Command::Keygen { out, if_missing } if if_missing && out.exists() => {
            eprintln!("vigie-edge: keeping the outbox key {}", out.display());
            Ok(())
        }
        Command::Keygen { out, .. } => {
            vigie_edge::outbox::key::generate(&out)?;
            eprintln!(
                "vigie-edge: wrote a new outbox key to {} (mode 0600). Point outbox.key_file \
                 (or VIGIE_EDGE_KEY_FILE) at it. Without this key the outbox cannot be read: \
                 events not yet sent are lost if it is lost.",
                out.display()
            );
            Ok(())
        }
    }
}
