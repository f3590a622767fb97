//! The tracing subscriber: JSON lines in production, readable lines on a terminal. `RUST_LOG`, when
//! set, wins over the configured level.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Whether `format` means JSON on this process's stderr.
pub fn wants_json(format: LogFormat, stderr_is_terminal: bool) -> bool {
    match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !stderr_is_terminal,
    }
}

/// Installs the global subscriber (logs go to stderr).
pub fn init(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::try_new(spec)?,
        _ => EnvFilter::try_new(level).map_err(|e| {
            anyhow::anyhow!("config key `log.level`: {level:?} is not a filter: {e}")
        })?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if wants_json(format, std::io::stderr().is_terminal()) {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_means_pretty_on_a_terminal_and_json_otherwise() {
        assert!(!wants_json(LogFormat::Auto, true));
        assert!(wants_json(LogFormat::Auto, false));
        assert!(wants_json(LogFormat::Json, true));
        assert!(!wants_json(LogFormat::Pretty, false));
    }
}
