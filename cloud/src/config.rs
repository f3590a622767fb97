//! `vigie-cloud serve` settings: an optional TOML file, then `VIGIE_*` environment variables on top,
//! then validation into [`Config`]. Every key is documented in `cloud/CONFIG.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use protocol::TopicPrefix;
use serde::Deserialize;

pub use crate::live::LiveSource;

/// A settings error: names the key (file key or env variable) and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error(
        "{name} is not a setting of vigie-cloud{hint}; the settings are listed in cloud/CONFIG.md \
         (refused, so that a misspelt setting is not silently ignored)"
    )]
    UnknownVariable { name: String, hint: String },
}

/// The file's form: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// HTTP listen address, `host:port` (env `VIGIE_LISTEN`).
    pub listen: Option<String>,
    /// Where `/metrics` and the detailed `/readyz` are served, `host:port` (env
    /// `VIGIE_METRICS_LISTEN`): never on the API's port.
    pub metrics_listen: Option<String>,
    /// Where the SQLite database, the JWT secret and media live (env `VIGIE_DATA_DIR`).
    pub data_dir: Option<PathBuf>,
    /// `postgres://...`; unset: SQLite in the data directory (env `VIGIE_DATABASE_URL`).
    pub database_url: Option<String>,
    /// `mqtt://host:port` or `mqtts://host:port`; unset: the embedded broker (env `VIGIE_MQTT_URL`).
    pub mqtt_url: Option<String>,
    /// Where the embedded broker listens (env `VIGIE_MQTT_LISTEN`); loopback only unless
    /// `embedded_broker_insecure`.
    pub mqtt_listen: Option<String>,
    /// Lets the embedded broker listen beyond loopback (env `VIGIE_EMBEDDED_BROKER_INSECURE=1`): it
    /// has no TLS and no ACL, so any client that logs in may publish on any topic.
    pub embedded_broker_insecure: Option<bool>,
    /// The ingest's MQTT client id, stable across restarts (env `VIGIE_MQTT_CLIENT_ID`).
    pub mqtt_client_id: Option<String>,
    /// Put in front of every topic (env `VIGIE_TOPIC_PREFIX`).
    pub topic_prefix: Option<String>,
    /// HS256 secret; unset: generated and kept in the data directory (env `VIGIE_JWT_SECRET`).
    pub jwt_secret: Option<String>,
    /// Access token lifetime in seconds (env `VIGIE_TOKEN_TTL_S`).
    pub token_ttl_s: Option<u64>,
    /// Most events in one database commit (env `VIGIE_INGEST_MAX_BATCH`).
    pub ingest_max_batch: Option<usize>,
    /// Frames buffered per WebSocket session before it is dropped as too slow (env `VIGIE_WS_BUFFER`).
    pub ws_buffer: Option<usize>,
    /// Largest `POST /api/events` body in bytes (env `VIGIE_MAX_BODY_BYTES`).
    pub max_body_bytes: Option<usize>,
    /// Most open connections to the API, WebSockets included (env `VIGIE_MAX_CONNECTIONS`).
    pub max_connections: Option<usize>,
    /// Seconds from SIGTERM to exit: the drain (ingest settled and acked, WebSockets closed with
    /// 1012, requests finished) must fit in it; below the orchestrator's grace period (env
    /// `VIGIE_SHUTDOWN_GRACE_S`, default 20).
    pub shutdown_grace_s: Option<u64>,
    /// The built web console (`web/dist`) served at `/` (env `VIGIE_CONSOLE_DIR`).
    pub console_dir: Option<PathBuf>,
    /// The ingest's MQTT username on an external broker (env `VIGIE_MQTT_USERNAME`).
    pub mqtt_username: Option<String>,
    /// A file holding the ingest's MQTT password (env `VIGIE_MQTT_PASSWORD_FILE`).
    pub mqtt_password_file: Option<PathBuf>,
    /// The CA certificate (PEM) that signs the broker's certificate, for `mqtts://`; unset: the
    /// platform's roots (env `VIGIE_MQTT_CA_FILE`).
    pub mqtt_ca_file: Option<PathBuf>,
    /// Web origins besides the console's own that may call the API (env `VIGIE_ALLOWED_ORIGINS`,
    /// comma-separated).
    pub allowed_origins: Option<Vec<String>>,
    /// Reverse proxies (CIDRs) whose `X-Forwarded-For` names the client (env
    /// `VIGIE_TRUSTED_PROXIES`, comma-separated); unset: the TCP peer is the client.
    pub trusted_proxies: Option<Vec<String>>,
    /// Where clips and snapshots are kept: `s3://bucket[/prefix]` (with the standard `AWS_*`
    /// environment) or `file:///path`; unset: `DATA_DIR/media` (env `VIGIE_MEDIA_URL`).
    pub media_url: Option<String>,
    /// Where the embedded RTSP server takes camera publishers (env `VIGIE_RTSP_LISTEN`).
    pub rtsp_listen: Option<String>,
    /// Production: the cluster's RTSP server, `rtsp://...{device}...`; set, the cloud pulls each
    /// device's stream from it instead of listening (env `VIGIE_RTSP_SOURCE_URL`).
    pub rtsp_source_url: Option<String>,
    /// Target HLS segment length in milliseconds (env `VIGIE_LIVE_SEGMENT_MS`).
    pub live_segment_ms: Option<u64>,
}

/// Where the ingest connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MqttTarget {
    /// Run rumqttd in-process on this address and connect to it.
    Embedded { listen: SocketAddr },
    /// An external broker.
    External { host: String, port: u16, tls: bool },
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub mqtt: MqttTarget,
    pub mqtt_client_id: String,
    pub topic_prefix: TopicPrefix,
    pub jwt_secret: Option<String>,
    pub token_ttl: Duration,
    pub ingest_max_batch: usize,
    pub ws_buffer: usize,
    pub max_body_bytes: usize,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    pub console_dir: PathBuf,
    pub allowed_origins: Vec<String>,
    pub trusted_proxies: crate::auth::TrustedProxies,
    /// The ingest's MQTT identity: username and password (read from its file at start).
    pub mqtt_credentials: Option<(String, String)>,
    /// The broker's CA (PEM), for `mqtts://`.
    pub mqtt_ca_pem: Option<Vec<u8>>,
    /// `s3://...` or `file:///...`; `None`: `data_dir/media`.
    pub media_url: Option<String>,
    /// Where live view gets the cameras' streams.
    pub live_source: LiveSource,
    pub live_segment: Duration,
}

fn default_listen() -> &'static str {
    "127.0.0.1:8080"
}
fn default_metrics_listen() -> &'static str {
    "127.0.0.1:9464"
}

fn default_rtsp_listen() -> &'static str {
    "127.0.0.1:8554"
}
fn default_mqtt_listen() -> &'static str {
    "127.0.0.1:1884"
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("vigie-data")
}
fn default_console_dir() -> PathBuf {
    PathBuf::from("web/dist")
}
fn default_client_id() -> &'static str {
    "vigie-cloud"
}
const DEFAULT_TOKEN_TTL_S: u64 = 3600;
const DEFAULT_MAX_BATCH: usize = 1000;
const DEFAULT_WS_BUFFER: usize = 1024;
const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// A few cameras' consoles and Pis need tens of connections; a thousand leaves room and bounds
/// what a flood of idle sockets can hold.
const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Below Kubernetes' default `terminationGracePeriodSeconds` (30), with room for the kubelet.
const DEFAULT_SHUTDOWN_GRACE_S: u64 = 20;
const DEFAULT_LIVE_SEGMENT_MS: u64 = 500;

impl RawConfig {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<RawConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Lays `VIGIE_*` variables from `env` over the file's values.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let set = |slot: &mut Option<String>, key: &str| {
            if let Some(v) = env(key) {
                *slot = Some(v);
            }
        };
        set(&mut self.listen, "VIGIE_LISTEN");
        set(&mut self.metrics_listen, "VIGIE_METRICS_LISTEN");
        set(&mut self.database_url, "VIGIE_DATABASE_URL");
        set(&mut self.mqtt_url, "VIGIE_MQTT_URL");
        set(&mut self.mqtt_listen, "VIGIE_MQTT_LISTEN");
        if let Some(v) = env("VIGIE_EMBEDDED_BROKER_INSECURE") {
            self.embedded_broker_insecure = Some(match v.trim() {
                "1" | "true" => true,
                "0" | "false" | "" => false,
                other => {
                    return Err(ConfigError::Invalid {
                        key: "embedded_broker_insecure (VIGIE_EMBEDDED_BROKER_INSECURE)",
                        message: format!("{other:?} is not 1 or 0"),
                    })
                }
            });
        }
        set(&mut self.mqtt_client_id, "VIGIE_MQTT_CLIENT_ID");
        set(&mut self.topic_prefix, "VIGIE_TOPIC_PREFIX");
        set(&mut self.jwt_secret, "VIGIE_JWT_SECRET");
        set(&mut self.media_url, "VIGIE_MEDIA_URL");
        set(&mut self.rtsp_listen, "VIGIE_RTSP_LISTEN");
        set(&mut self.rtsp_source_url, "VIGIE_RTSP_SOURCE_URL");
        if let Some(dir) = env("VIGIE_DATA_DIR") {
            self.data_dir = Some(dir.into());
        }
        set(&mut self.mqtt_username, "VIGIE_MQTT_USERNAME");
        if let Some(path) = env("VIGIE_MQTT_PASSWORD_FILE") {
            self.mqtt_password_file = Some(path.into());
        }
        if let Some(path) = env("VIGIE_MQTT_CA_FILE") {
            self.mqtt_ca_file = Some(path.into());
        }
        if let Some(dir) = env("VIGIE_CONSOLE_DIR") {
            self.console_dir = Some(dir.into());
        }
        if let Some(list) = env("VIGIE_TRUSTED_PROXIES") {
            self.trusted_proxies = Some(
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            );
        }
        if let Some(list) = env("VIGIE_ALLOWED_ORIGINS") {
            self.allowed_origins = Some(
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            );
        }
        fn number<T: std::str::FromStr>(
            env: &impl Fn(&str) -> Option<String>,
            key: &'static str,
            slot: &mut Option<T>,
        ) -> Result<(), ConfigError> {
            if let Some(v) = env(key) {
                *slot = Some(v.trim().parse().map_err(|_| ConfigError::Invalid {
                    key,
                    message: format!("{v:?} is not a whole number"),
                })?);
            }
            Ok(())
        }
        number(&env, "VIGIE_TOKEN_TTL_S", &mut self.token_ttl_s)?;
        number(&env, "VIGIE_INGEST_MAX_BATCH", &mut self.ingest_max_batch)?;
        number(&env, "VIGIE_WS_BUFFER", &mut self.ws_buffer)?;
        number(&env, "VIGIE_MAX_BODY_BYTES", &mut self.max_body_bytes)?;
        number(&env, "VIGIE_MAX_CONNECTIONS", &mut self.max_connections)?;
        number(&env, "VIGIE_SHUTDOWN_GRACE_S", &mut self.shutdown_grace_s)?;
        number(&env, "VIGIE_LIVE_SEGMENT_MS", &mut self.live_segment_ms)?;
        Ok(())
    }

    /// Validates into [`Config`]; empty strings count as unset.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let listen = parse_addr(
            "listen (VIGIE_LISTEN)",
            nonempty(self.listen).as_deref().unwrap_or(default_listen()),
        )?;
        let metrics_listen = parse_addr(
            "metrics_listen (VIGIE_METRICS_LISTEN)",
            nonempty(self.metrics_listen)
                .as_deref()
                .unwrap_or(default_metrics_listen()),
        )?;
        if metrics_listen == listen {
            return Err(ConfigError::Invalid {
                key: "metrics_listen (VIGIE_METRICS_LISTEN)",
                message: format!(
                    "{metrics_listen} is the API's address too; metrics are served on their own \
                     listener (default {})",
                    default_metrics_listen()
                ),
            });
        }
        let mqtt = match nonempty(self.mqtt_url) {
            None => MqttTarget::Embedded {
                listen: parse_addr(
                    "mqtt_listen (VIGIE_MQTT_LISTEN)",
                    nonempty(self.mqtt_listen)
                        .as_deref()
                        .unwrap_or(default_mqtt_listen()),
                )?,
            },
            Some(url) => parse_mqtt_url(&url)?,
        };
        if let MqttTarget::Embedded { listen } = &mqtt {
            if !listen.ip().is_loopback() && self.embedded_broker_insecure != Some(true) {
                return Err(ConfigError::Invalid {
                    key: "mqtt_listen (VIGIE_MQTT_LISTEN)",
                    message: format!(
                        "{listen} is beyond loopback: the embedded broker has no TLS and no ACL \
                         (any client that logs in may publish on any topic), so it listens on \
                         127.0.0.1 or [::1] only; use an external broker (VIGIE_MQTT_URL), or set \
                         VIGIE_EMBEDDED_BROKER_INSECURE=1 to accept that on a trusted network"
                    ),
                });
            }
        }
        let database_url = nonempty(self.database_url);
        if let Some(url) = &database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::Invalid {
                    key: "database_url (VIGIE_DATABASE_URL)",
                    message:
                        "expected postgres://user@host:port/db; leave unset for the embedded SQLite"
                            .into(),
                });
            }
        }
        let topic_prefix = TopicPrefix::new(&nonempty(self.topic_prefix).unwrap_or_default())
            .map_err(|e| ConfigError::Invalid {
                key: "topic_prefix (VIGIE_TOPIC_PREFIX)",
                message: e.to_string(),
            })?;
        let positive = |key: &'static str, v: usize| {
            if v == 0 {
                Err(ConfigError::Invalid {
                    key,
                    message: "must be at least 1".into(),
                })
            } else {
                Ok(v)
            }
        };
        let allowed_origins = self.allowed_origins.unwrap_or_default();
        for origin in &allowed_origins {
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            if rest.is_none_or(|r| r.is_empty() || r.trim_end_matches('/').contains('/')) {
                return Err(ConfigError::Invalid {
                    key: "allowed_origins (VIGIE_ALLOWED_ORIGINS)",
                    message: format!(
                        "{origin:?} is not an origin: expected scheme://host[:port], e.g. https://console.example.org"
                    ),
                });
            }
        }
        let trusted_proxies = crate::auth::TrustedProxies::new(
            self.trusted_proxies
                .unwrap_or_default()
                .iter()
                .map(|c| c.parse())
                .collect::<Result<_, _>>()
                .map_err(|e: crate::auth::BadCidr| ConfigError::Invalid {
                    key: "trusted_proxies (VIGIE_TRUSTED_PROXIES)",
                    message: e.to_string(),
                })?,
        );
        let mqtt_credentials = match (nonempty(self.mqtt_username), self.mqtt_password_file) {
            (None, None) => None,
            (Some(user), Some(file)) => {
                let password =
                    std::fs::read_to_string(&file).map_err(|e| ConfigError::Invalid {
                        key: "mqtt_password_file (VIGIE_MQTT_PASSWORD_FILE)",
                        message: format!("cannot read {}: {e}", file.display()),
                    })?;
                Some((user, password.trim_end_matches(['\n', '\r']).to_owned()))
            }
            _ => {
                return Err(ConfigError::Invalid {
                    key: "mqtt_username (VIGIE_MQTT_USERNAME)",
                    message: "set both the MQTT username and mqtt_password_file, or neither".into(),
                })
            }
        };
        let mqtt_ca_pem = match self.mqtt_ca_file {
            None => None,
            Some(file) => Some(std::fs::read(&file).map_err(|e| ConfigError::Invalid {
                key: "mqtt_ca_file (VIGIE_MQTT_CA_FILE)",
                message: format!("cannot read {}: {e}", file.display()),
            })?),
        };
        let media_url = nonempty(self.media_url);
        if let Some(url) = &media_url {
            let ok = url.starts_with("s3://") && url.len() > "s3://".len()
                || url.starts_with("file:///");
            if !ok {
                return Err(ConfigError::Invalid {
                    key: "media_url (VIGIE_MEDIA_URL)",
                    message: format!(
                        "{url:?}: expected s3://bucket[/prefix] or file:///absolute/path; leave \
                         unset for DATA_DIR/media"
                    ),
                });
            }
        }
        let live_source = match nonempty(self.rtsp_source_url) {
            Some(url) => parse_rtsp_source_url(&url)?,
            None => LiveSource::Listen(parse_addr(
                "rtsp_listen (VIGIE_RTSP_LISTEN)",
                nonempty(self.rtsp_listen)
                    .as_deref()
                    .unwrap_or(default_rtsp_listen()),
            )?),
        };
        let live_segment_ms = self.live_segment_ms.unwrap_or(DEFAULT_LIVE_SEGMENT_MS);
        if !(100..=10_000).contains(&live_segment_ms) {
            return Err(ConfigError::Invalid {
                key: "live_segment_ms (VIGIE_LIVE_SEGMENT_MS)",
                message: format!("{live_segment_ms} is outside 100..=10000"),
            });
        }
        let token_ttl_s = self.token_ttl_s.unwrap_or(DEFAULT_TOKEN_TTL_S);
        positive("token_ttl_s (VIGIE_TOKEN_TTL_S)", token_ttl_s as usize)?;
        Ok(Config {
            listen,
            metrics_listen,
            data_dir: self.data_dir.unwrap_or_else(default_data_dir),
            database_url,
            mqtt,
            mqtt_client_id: nonempty(self.mqtt_client_id)
                .unwrap_or_else(|| default_client_id().to_owned()),
            topic_prefix,
            jwt_secret: nonempty(self.jwt_secret),
            token_ttl: Duration::from_secs(token_ttl_s),
            ingest_max_batch: positive(
                "ingest_max_batch (VIGIE_INGEST_MAX_BATCH)",
                self.ingest_max_batch.unwrap_or(DEFAULT_MAX_BATCH),
            )?,
            ws_buffer: positive(
                "ws_buffer (VIGIE_WS_BUFFER)",
                self.ws_buffer.unwrap_or(DEFAULT_WS_BUFFER),
            )?,
            max_body_bytes: positive(
                "max_body_bytes (VIGIE_MAX_BODY_BYTES)",
                self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            )?,
            max_connections: positive(
                "max_connections (VIGIE_MAX_CONNECTIONS)",
                self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
            )?,
            shutdown_grace: Duration::from_secs(positive(
                "shutdown_grace_s (VIGIE_SHUTDOWN_GRACE_S)",
                self.shutdown_grace_s.unwrap_or(DEFAULT_SHUTDOWN_GRACE_S) as usize,
            )? as u64),
            allowed_origins,
            trusted_proxies,
            live_source,
            live_segment: Duration::from_millis(live_segment_ms),
            mqtt_credentials,
            mqtt_ca_pem,
            media_url,
            console_dir: self
                .console_dir
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or_else(default_console_dir),
        })
    }
}

impl Config {
    /// File (if any), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut raw = match file {
            Some(path) => RawConfig::from_file(path)?,
            None => RawConfig::default(),
        };
        let read = std::cell::RefCell::new(std::collections::BTreeSet::new());
        raw.apply_env(|k| {
            read.borrow_mut().insert(k.to_owned());
            std::env::var(k).ok()
        })?;
        let set = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok());
        refuse_unknown_variables(set, &read.into_inner())?;
        raw.validate()
    }
}

/// `VIGIE_*` variables the cloud reads outside its settings: the log format (read before them) and
/// the tests' fault hooks (`ingest::fault`).
const READ_ELSEWHERE: [&str; 5] = [
    "VIGIE_LOG_FORMAT",
    crate::ingest::fault::CRASH_AFTER_COMMITS,
    crate::ingest::fault::REFUSE_EVENT_ID,
    crate::ingest::fault::REFUSE_AS,
    crate::ingest::fault::STALL_INGEST,
];

/// Refuses the first `VIGIE_*` name in `set` that is neither a setting (`known`: every name the
/// settings looked up) nor read elsewhere, with the closest known name when one is near. The
/// edge's `VIGIE_EDGE_*` are not the cloud's, and refused too: they would mean nothing here.
fn refuse_unknown_variables(
    set: impl Iterator<Item = String>,
    known: &std::collections::BTreeSet<String>,
) -> Result<(), ConfigError> {
    let is_known = |name: &str| known.contains(name) || READ_ELSEWHERE.contains(&name);
    let mut unknown: Vec<String> = set
        .filter(|name| name.starts_with("VIGIE_") && !is_known(name))
        .collect();
    unknown.sort();
    let Some(name) = unknown.into_iter().next() else {
        return Ok(());
    };
    let closest = known
        .iter()
        .map(String::as_str)
        .chain(READ_ELSEWHERE)
        .map(|k| (strsim::levenshtein(&name, k), k))
        .min();
    let hint = match closest {
        Some((distance, k)) if distance <= 3 => format!(" (did you mean {k}?)"),
        _ => String::new(),
    };
    Err(ConfigError::UnknownVariable { name, hint })
}

fn parse_addr(key: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| ConfigError::Invalid {
        key,
        message: format!("{value:?} is not host:port with a numeric IP, e.g. 127.0.0.1:8080"),
    })
}

/// Checks the production RTSP source template: `rtsp://` or `rtsps://`, with `{device}` in it.
pub fn parse_rtsp_source_url(url: &str) -> Result<LiveSource, ConfigError> {
    if !(url.starts_with("rtsp://") || url.starts_with("rtsps://")) || !url.contains("{device}") {
        return Err(ConfigError::Invalid {
            key: "rtsp_source_url (VIGIE_RTSP_SOURCE_URL)",
            message: format!(
                "{url:?} must be rtsp://host:port/path with {{device}} in it, e.g. rtsp://rtsp-server:8554/live/{{device}}"
            ),
        });
    }
    Ok(LiveSource::Pull(url.to_owned()))
}

/// Parses `mqtt://host:port` or `mqtts://host:port`.
pub fn parse_mqtt_url(url: &str) -> Result<MqttTarget, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        key: "mqtt_url (VIGIE_MQTT_URL)",
        message,
    };
    let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtt://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("mqtts://") {
        (true, rest)
    } else {
        return Err(invalid(format!(
            "{url:?} must start with mqtt:// or mqtts://"
        )));
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| invalid(format!("{url:?} has no port; expected mqtt://host:port")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid(format!("{url:?}: port {port:?} is not a number")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains('/') {
        return Err(invalid(format!("{url:?}: bad host")));
    }
    Ok(MqttTarget::External {
        host: host.to_owned(),
        port,
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> std::collections::BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_misspelt_variable_is_refused_by_name_with_the_closest_setting() {
        let known = names(&["VIGIE_DATABASE_URL", "VIGIE_LISTEN"]);
        let set = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let err = refuse_unknown_variables(
            set(&["PATH", "VIGIE_LISTEN", "VIGIE_DATABSE_URL"]).into_iter(),
            &known,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("VIGIE_DATABSE_URL is not a setting"),
            "{err}"
        );
        assert!(err.contains("did you mean VIGIE_DATABASE_URL?"), "{err}");
        let far = refuse_unknown_variables(set(&["VIGIE_SOMETHING_ELSE"]).into_iter(), &known)
            .unwrap_err()
            .to_string();
        assert!(!far.contains("did you mean"), "{far}");
        // Settings, the log format, the fault hooks and other programs' names pass.
        let fine = set(&[
            "VIGIE_LISTEN",
            "VIGIE_LOG_FORMAT",
            "VIGIE_FAULT_REFUSE_AS",
            "HOME",
        ]);
        assert!(refuse_unknown_variables(fine.into_iter(), &known).is_ok());
    }

    #[test]
    fn every_setting_apply_env_reads_is_documented() {
        let read = std::cell::RefCell::new(std::collections::BTreeSet::new());
        RawConfig::default()
            .apply_env(|k| {
                read.borrow_mut().insert(k.to_owned());
                None
            })
            .unwrap();
        let doc = include_str!("../CONFIG.md");
        for name in read
            .into_inner()
            .iter()
            .map(String::as_str)
            .chain(READ_ELSEWHERE)
        {
            assert!(doc.contains(name), "{name} missing from cloud/CONFIG.md");
        }
    }
    use std::collections::HashMap;

    fn with_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut raw = RawConfig::default();
        raw.apply_env(|k| env.get(k).cloned())?;
        raw.validate()
    }

    #[test]
    fn the_embedded_broker_refuses_a_non_loopback_listen_address_unless_told_it_is_insecure() {
        let err = with_env(&[("VIGIE_MQTT_LISTEN", "0.0.0.0:1884")]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("VIGIE_EMBEDDED_BROKER_INSECURE=1"), "{text}");
        assert!(
            text.starts_with("mqtt_listen (VIGIE_MQTT_LISTEN)"),
            "{text}"
        );
        let c = with_env(&[
            ("VIGIE_MQTT_LISTEN", "0.0.0.0:1884"),
            ("VIGIE_EMBEDDED_BROKER_INSECURE", "1"),
        ])
        .unwrap();
        assert!(matches!(c.mqtt, MqttTarget::Embedded { listen } if listen.port() == 1884));
        assert!(with_env(&[("VIGIE_MQTT_LISTEN", "[::1]:1884")]).is_ok());
        assert!(with_env(&[("VIGIE_EMBEDDED_BROKER_INSECURE", "yes")]).is_err());
    }

    #[test]
    fn no_settings_give_the_embedded_defaults() {
        let c = with_env(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.metrics_listen.to_string(), "127.0.0.1:9464");
        assert_eq!(
            c.mqtt,
            MqttTarget::Embedded {
                listen: "127.0.0.1:1884".parse().unwrap()
            }
        );
        assert!(c.database_url.is_none());
        assert_eq!(c.mqtt_client_id, "vigie-cloud");
        assert_eq!(
            c.live_source,
            LiveSource::Listen("127.0.0.1:8554".parse().unwrap())
        );
        assert_eq!(c.live_segment, Duration::from_millis(500));
    }

    #[test]
    fn an_rtsp_source_url_switches_live_view_to_pulling_and_bad_ones_are_explained() {
        let c = with_env(&[(
            "VIGIE_RTSP_SOURCE_URL",
            "rtsp://rtsp-server:8554/live/{device}",
        )])
        .unwrap();
        assert_eq!(
            c.live_source,
            LiveSource::Pull("rtsp://rtsp-server:8554/live/{device}".into())
        );
        for bad in ["http://x/{device}", "rtsp://x/live/pi-1"] {
            let err = with_env(&[("VIGIE_RTSP_SOURCE_URL", bad)]).unwrap_err();
            assert!(
                err.to_string().contains("VIGIE_RTSP_SOURCE_URL"),
                "{bad}: {err}"
            );
        }
        let err = with_env(&[("VIGIE_LIVE_SEGMENT_MS", "50")]).unwrap_err();
        assert!(err.to_string().contains("VIGIE_LIVE_SEGMENT_MS"), "{err}");
    }

    #[test]
    fn trusted_proxies_are_cidrs_and_a_bad_one_is_named() {
        let c = with_env(&[("VIGIE_TRUSTED_PROXIES", "10.0.0.0/8, fd00::/64")]).unwrap();
        assert_eq!(
            c.trusted_proxies
                .client("10.1.2.3".parse().unwrap(), ["198.51.100.7"].into_iter()),
            "198.51.100.7".parse::<std::net::IpAddr>().unwrap()
        );
        let err = with_env(&[("VIGIE_TRUSTED_PROXIES", "10.0.0.0/8,nope")]).unwrap_err();
        let err = err.to_string();
        assert!(
            err.contains("VIGIE_TRUSTED_PROXIES") && err.contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn env_overrides_the_file() {
        let mut raw: RawConfig = toml::from_str("listen = \"127.0.0.1:1\"\n").unwrap();
        raw.apply_env(|k| (k == "VIGIE_LISTEN").then(|| "127.0.0.1:2".to_owned()))
            .unwrap();
        assert_eq!(raw.validate().unwrap().listen.port(), 2);
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let err = toml::from_str::<RawConfig>("listne = \"x\"").unwrap_err();
        assert!(err.to_string().contains("listne"), "{err}");
    }

    #[test]
    fn mqtt_urls_are_parsed_and_bad_ones_explained() {
        let c = with_env(&[("VIGIE_MQTT_URL", "mqtts://broker.local:8883")]).unwrap();
        assert_eq!(
            c.mqtt,
            MqttTarget::External {
                host: "broker.local".into(),
                port: 8883,
                tls: true
            }
        );
        for bad in ["tcp://x:1", "mqtt://x", "mqtt://:1", "mqtt://x:http"] {
            let err = with_env(&[("VIGIE_MQTT_URL", bad)]).unwrap_err();
            assert!(err.to_string().contains("VIGIE_MQTT_URL"), "{bad}: {err}");
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = with_env(&[("VIGIE_LISTEN", "localhost")]).unwrap_err();
        assert!(err.to_string().contains("VIGIE_LISTEN"), "{err}");
        let err = with_env(&[("VIGIE_DATABASE_URL", "mysql://x")]).unwrap_err();
        assert!(err.to_string().contains("VIGIE_DATABASE_URL"), "{err}");
        let err = with_env(&[("VIGIE_TOPIC_PREFIX", "a/#")]).unwrap_err();
        assert!(err.to_string().contains("VIGIE_TOPIC_PREFIX"), "{err}");
        let err = with_env(&[("VIGIE_MEDIA_URL", "ftp://x")]).unwrap_err();
        assert!(err.to_string().contains("VIGIE_MEDIA_URL"), "{err}");
        let err = with_env(&[("VIGIE_WS_BUFFER", "lots")]).unwrap_err();
        assert!(err.to_string().contains("VIGIE_WS_BUFFER"), "{err}");
    }
}
