//! The `vigie-edge` command line: `vigie-edge run --config FILE`. Thin: it parses arguments, loads
//! the configuration, installs logging and hands over to [`vigie_edge::app::run`].

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
}

fn main() -> ExitCode {
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
    }
}
