//! Configuration: a TOML file ([`raw`]) plus environment overrides ([`env`]), checked into a
//! [`Config`] ([`validated`]). Errors name the key that was wrong and why.

pub mod env;
pub mod raw;
pub mod validated;
pub mod video;

use std::path::{Path, PathBuf};

pub use validated::{
    Active, ApiConfig, Backend, Config, LogFormat, MqttEndpoint, OutboxConfig, Pull, SensorConfig,
};
pub use video::{V4lFormat, VideoConfig, VideoSource};

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Parses TOML text (no environment applied).
pub fn parse(path: &Path, text: &str) -> Result<raw::RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Reads `path`, applies the process environment, and validates.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut raw = parse(path, &text)?;
    env::apply_env(&mut raw, |k| std::env::var(k).ok());
    Config::from_raw(raw)
}

#[cfg(test)]
mod tests;
