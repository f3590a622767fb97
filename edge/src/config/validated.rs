//! The checked configuration the rest of the edge uses, built from [`RawConfig`] by
//! [`Config::from_raw`]. Every rule that can be checked before starting is checked here, including the
//! refusal to serve simulated sensors on a non-loopback address.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use protocol::{DeviceId, EventKind, SensorId, TopicPrefix};

use super::raw::{RawConfig, RawInput};
use super::ConfigError;
pub use crate::outbox::writer::WhenFull;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub device: DeviceId,
    pub clock_synced: bool,
    pub mqtt: MqttEndpoint,
    /// The device's MQTT identity and the broker's CA.
    pub mqtt_auth: MqttAuth,
    pub prefix: TopicPrefix,
    pub keep_alive: Duration,
    pub heartbeat: Duration,
    pub reconnect_base: Duration,
    pub reconnect_max: Duration,
    pub api_url: Option<String>,
    pub api_token: Option<String>,
    /// The live-push token (`video.live_token[_file]`), set whenever `video.live_url` is.
    pub live_token: Option<String>,
    pub api: ApiConfig,
    pub http_listen: SocketAddr,
    pub outbox: OutboxConfig,
    pub log_format: LogFormat,
    pub log_level: String,
    pub backend: Backend,
    pub sensors: Vec<SensorConfig>,
    /// The camera and recorder; `None`: no camera.
    pub video: Option<super::VideoConfig>,
}

/// How the device proves who it is to the broker, and how it checks the broker.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MqttAuth {
    /// `(username, password)`; `None`: anonymous (a broker with no ACL, the embedded default).
    pub credentials: Option<(String, String)>,
    /// The broker's CA (PEM) for `mqtts://`; `None`: the platform's roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for MqttAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttAuth")
            .field("username", &self.credentials.as_ref().map(|(u, _)| u))
            .field("ca_pem", &self.ca_pem.as_ref().map(|c| c.len()))
            .finish_non_exhaustive()
    }
}

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttEndpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

/// The bulk drain over HTTP (used only when `api_url` and `api_token` are both set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// A drain starts when more than this many events are unconfirmed.
    pub bulk_threshold: u64,
    /// Events per request, at most (1–10000).
    pub bulk_batch: usize,
    /// Timeout of one request.
    pub timeout: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How often the clock offset is measured (and at every connect).
    pub clock_probe_every: Duration,
}

/// The outbox's limits and timers.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    pub data_dir: PathBuf,
    /// The outbox key file (see [`crate::outbox::key`]).
    pub key_file: PathBuf,
    /// Demos only: create `key_file` at start when it is missing.
    pub create_key: bool,
    pub max_in_flight: usize,
    pub max_events: u64,
    pub when_full: WhenFull,
    /// Unsent events older than this are dropped (with a gap record); `None`: no age bound.
    pub max_age: Option<Duration>,
    pub resend_timeout: Duration,
    pub resend_timeout_max: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Auto,
    Json,
    Pretty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Gpio,
    Simulated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pull {
    Up,
    Down,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Active {
    Low,
    High,
}

/// One sensor, checked.
#[derive(Debug, Clone)]
pub struct SensorConfig {
    pub id: SensorId,
    pub kind: EventKind,
    pub pin: Option<u8>,
    pub pull: Pull,
    pub active: Active,
    pub debounce: Duration,
    pub min_active: Duration,
}

impl Config {
    /// Checks every value; the first problem found is returned with its key.
    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        let device = DeviceId::new(raw.device.id.clone())
            .map_err(|e| ConfigError::invalid("device.id", e.to_string()))?;
        let mqtt = parse_mqtt_url(&raw.mqtt.url)?;
        let mqtt_auth = check_mqtt_auth(&raw, &mqtt)?;
        let prefix = TopicPrefix::new(&raw.mqtt.topic_prefix)
            .map_err(|e| ConfigError::invalid("mqtt.topic_prefix", e.to_string()))?;
        if raw.mqtt.keep_alive_s < 5 {
            return Err(ConfigError::invalid(
                "mqtt.keep_alive_s",
                "must be at least 5 seconds",
            ));
        }
        positive("mqtt.heartbeat_ms", raw.mqtt.heartbeat_ms)?;
        positive("mqtt.reconnect_base_ms", raw.mqtt.reconnect_base_ms)?;
        if raw.mqtt.reconnect_max_ms < raw.mqtt.reconnect_base_ms {
            return Err(ConfigError::invalid(
                "mqtt.reconnect_max_ms",
                "must be at least mqtt.reconnect_base_ms",
            ));
        }
        let api_url = raw.api.url.clone().filter(|u| !u.is_empty());
        if let Some(url) = &api_url {
            check_api_url(url)?;
        }
        let api_token = check_api_token(&raw)?;
        if let Some(token) = &api_token {
            if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ConfigError::invalid(
                    "api.token",
                    "must not contain spaces or control characters",
                ));
            }
        }
        let api = check_api(&raw)?;
        let http_listen = parse_listen(&raw.http.listen)?;
        let outbox = check_outbox(&raw)?;
        let video = super::video::check_video(&raw.video, &device, &outbox.data_dir)?;
        let live_token = check_live_token(&raw, &video)?;
        let log_format = match raw.log.format.as_str() {
            "auto" => LogFormat::Auto,
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            other => {
                return Err(ConfigError::invalid(
                    "log.format",
                    format!("{other:?} is not one of auto, json, pretty"),
                ))
            }
        };
        let backend = match raw.sensors.backend.as_str() {
            "gpio" => Backend::Gpio,
            "simulated" => Backend::Simulated,
            other => {
                return Err(ConfigError::invalid(
                    "sensors.backend",
                    format!("{other:?} is not one of gpio, simulated"),
                ))
            }
        };
        check_plaintext(
            &raw,
            &mqtt,
            &mqtt_auth,
            api_url.as_deref(),
            api_token.is_some(),
            &video,
        )?;
        if backend == Backend::Simulated && !http_listen.ip().is_loopback() {
            return Err(ConfigError::invalid(
                "http.listen",
                format!(
                    "{http_listen} is not a loopback address; simulated sensors accept injected \
                     events over HTTP, so they only listen on 127.0.0.1 or [::1]"
                ),
            ));
        }
        let mut seen = HashSet::new();
        let mut sensors = Vec::with_capacity(raw.sensors.input.len());
        for (i, input) in raw.sensors.input.iter().enumerate() {
            let sensor = check_sensor(i, input, backend)?;
            if !seen.insert(sensor.id.clone()) {
                return Err(ConfigError::invalid(
                    format!("sensors.input[{i}].id"),
                    format!("sensor id {} is used twice", sensor.id),
                ));
            }
            sensors.push(sensor);
        }
        Ok(Config {
            device,
            clock_synced: raw.device.clock_synced,
            mqtt,
            mqtt_auth,
            prefix,
            keep_alive: Duration::from_secs(raw.mqtt.keep_alive_s),
            heartbeat: Duration::from_millis(raw.mqtt.heartbeat_ms),
            reconnect_base: Duration::from_millis(raw.mqtt.reconnect_base_ms),
            reconnect_max: Duration::from_millis(raw.mqtt.reconnect_max_ms),
            api_url,
            api_token,
            live_token,
            api,
            http_listen,
            outbox,
            log_format,
            log_level: raw.log.level,
            backend,
            sensors,
            video,
        })
    }
}

fn positive(key: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::invalid(key, "must be greater than 0"))
    } else {
        Ok(())
    }
}

fn check_api(raw: &RawConfig) -> Result<ApiConfig, ConfigError> {
    let a = &raw.api;
    if a.bulk_batch == 0 || a.bulk_batch > 10_000 {
        return Err(ConfigError::invalid(
            "api.bulk_batch",
            "must be between 1 and 10000 (the cloud takes at most 10,000 events per request)",
        ));
    }
    positive("api.timeout_ms", a.timeout_ms)?;
    positive("api.clock_probe_s", a.clock_probe_s)?;
    positive("api.retry_base_ms", a.retry_base_ms)?;
    if a.retry_max_ms < a.retry_base_ms {
        return Err(ConfigError::invalid(
            "api.retry_max_ms",
            "must be at least api.retry_base_ms",
        ));
    }
    Ok(ApiConfig {
        bulk_threshold: a.bulk_threshold,
        bulk_batch: a.bulk_batch,
        timeout: Duration::from_millis(a.timeout_ms),
        retry_base: Duration::from_millis(a.retry_base_ms),
        retry_max: Duration::from_millis(a.retry_max_ms),
        clock_probe_every: Duration::from_secs(a.clock_probe_s),
    })
}

fn check_outbox(raw: &RawConfig) -> Result<OutboxConfig, ConfigError> {
    let o = &raw.outbox;
    if o.data_dir.as_os_str().is_empty() {
        return Err(ConfigError::invalid("outbox.data_dir", "must not be empty"));
    }
    if o.max_in_flight == 0 || o.max_in_flight > 10_000 {
        return Err(ConfigError::invalid(
            "outbox.max_in_flight",
            "must be between 1 and 10000",
        ));
    }
    positive("outbox.max_events", o.max_events)?;
    let when_full = match o.when_full.as_str() {
        "drop_oldest" => WhenFull::DropOldest,
        "refuse_new" => WhenFull::RefuseNew,
        other => {
            return Err(ConfigError::invalid(
                "outbox.when_full",
                format!("must be \"drop_oldest\" or \"refuse_new\", not {other:?}"),
            ))
        }
    };
    positive("outbox.resend_timeout_ms", o.resend_timeout_ms)?;
    if o.resend_timeout_max_ms < o.resend_timeout_ms {
        return Err(ConfigError::invalid(
            "outbox.resend_timeout_max_ms",
            "must be at least outbox.resend_timeout_ms",
        ));
    }
    if o.create_key && raw.sensors.backend != "simulated" {
        return Err(ConfigError::invalid(
            "outbox.create_key",
            "is for demos with sensors.backend = \"simulated\" only; on a real Pi, provision \
             the key with `vigie-edge keygen --out FILE` and set outbox.key_file",
        ));
    }
    let key_file = match (&o.key_file, o.create_key) {
        (Some(path), _) if path.as_os_str().is_empty() => {
            return Err(ConfigError::invalid("outbox.key_file", "must not be empty"))
        }
        (Some(path), _) => path.clone(),
        (None, false) => super::raw::default_key_file(),
        (None, true) => beside(&o.data_dir).ok_or_else(|| {
            ConfigError::invalid(
                "outbox.key_file",
                "must be set: outbox.data_dir has no last component to put `.key` after",
            )
        })?,
    };
    Ok(OutboxConfig {
        data_dir: o.data_dir.clone(),
        key_file,
        create_key: o.create_key,
        max_in_flight: o.max_in_flight,
        max_events: o.max_events,
        when_full,
        max_age: (o.max_age_s > 0).then(|| Duration::from_secs(o.max_age_s)),
        resend_timeout: Duration::from_millis(o.resend_timeout_ms),
        resend_timeout_max: Duration::from_millis(o.resend_timeout_max_ms),
    })
}

/// `<data_dir>.key`: the demo key's place, next to (not inside) the sled directory.
fn beside(data_dir: &std::path::Path) -> Option<PathBuf> {
    let name = data_dir.file_name()?;
    let mut file = name.to_owned();
    file.push(".key");
    Some(data_dir.with_file_name(file))
}

fn check_sensor(i: usize, raw: &RawInput, backend: Backend) -> Result<SensorConfig, ConfigError> {
    let key = |field: &str| format!("sensors.input[{i}].{field}");
    let id = SensorId::new(raw.id.clone())
        .map_err(|e| ConfigError::invalid(key("id"), e.to_string()))?;
    let kind = EventKind::parse(&raw.kind);
    if !kind.is_known() {
        return Err(ConfigError::invalid(
            key("kind"),
            format!("{:?} is not one of button_pressed, motion", raw.kind),
        ));
    }
    if backend == Backend::Gpio && raw.pin.is_none() {
        return Err(ConfigError::invalid(
            key("pin"),
            "is required with sensors.backend = \"gpio\" (a BCM GPIO number)",
        ));
    }
    if let Some(pin) = raw.pin {
        if pin > 53 {
            return Err(ConfigError::invalid(
                key("pin"),
                "must be a BCM GPIO number 0..=53",
            ));
        }
    }
    let pull = match raw.pull.as_str() {
        "up" => Pull::Up,
        "down" => Pull::Down,
        "none" => Pull::None,
        other => {
            return Err(ConfigError::invalid(
                key("pull"),
                format!("{other:?} is not one of up, down, none"),
            ))
        }
    };
    let active = match raw.active.as_str() {
        "low" => Active::Low,
        "high" => Active::High,
        other => {
            return Err(ConfigError::invalid(
                key("active"),
                format!("{other:?} is not one of low, high"),
            ))
        }
    };
    Ok(SensorConfig {
        id,
        kind,
        pin: raw.pin,
        pull,
        active,
        debounce: Duration::from_millis(raw.debounce_ms),
        min_active: Duration::from_millis(raw.min_active_ms),
    })
}

/// The MQTT identity: a password file (username defaults to the device id) and a CA file, both
/// read now so a missing or unreadable file is a clear error at start.
fn check_mqtt_auth(raw: &RawConfig, endpoint: &MqttEndpoint) -> Result<MqttAuth, ConfigError> {
    let m = &raw.mqtt;
    let credentials = match (&m.username, &m.password_file) {
        (_, None) if m.username.is_some() => {
            return Err(ConfigError::invalid(
                "mqtt.username",
                "needs mqtt.password_file (the device's MQTT password)",
            ))
        }
        (_, None) => None,
        (username, Some(file)) => {
            let password = read_secret("mqtt.password_file", file)?;
            let username = username.clone().unwrap_or_else(|| raw.device.id.clone());
            Some((username, password))
        }
    };
    let ca_pem = match &m.ca_file {
        None => None,
        Some(_) if !endpoint.tls => {
            return Err(ConfigError::invalid(
                "mqtt.ca_file",
                "is for mqtts:// URLs; this broker URL is plain mqtt://",
            ))
        }
        Some(file) => {
            let pem = std::fs::read(file).map_err(|e| {
                ConfigError::invalid(
                    "mqtt.ca_file",
                    format!("cannot read {}: {e}", file.display()),
                )
            })?;
            if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                return Err(ConfigError::invalid(
                    "mqtt.ca_file",
                    format!("{} holds no PEM certificate", file.display()),
                ));
            }
            Some(pem)
        }
    };
    Ok(MqttAuth {
        credentials,
        ca_pem,
    })
}

/// Refuses a secret sent in plaintext toward a non-loopback host, unless `allow_insecure`: the
/// token over `http://` (the API) or `rtsp://` (the live push's Basic auth), the MQTT password over
/// `mqtt://`.
fn check_plaintext(
    raw: &RawConfig,
    mqtt: &MqttEndpoint,
    mqtt_auth: &MqttAuth,
    api_url: Option<&str>,
    has_token: bool,
    video: &Option<super::VideoConfig>,
) -> Result<(), ConfigError> {
    if raw.allow_insecure {
        return Ok(());
    }
    let refuse = |key: &str, what: &str, host: &str| {
        ConfigError::invalid(
            key,
            format!(
                "{what} would cross the network in plaintext to {host:?}, which is not a loopback \
                 address; use {}, or set allow_insecure = true (VIGIE_EDGE_ALLOW_INSECURE=1) on a \
                 network you trust",
                match key {
                    "mqtt.url" => "mqtts://",
                    "api.url" => "https://",
                    _ => "a TLS tunnel or VPN with an rtsp:// URL on loopback",
                }
            ),
        )
    };
    if !mqtt.tls && mqtt_auth.credentials.is_some() && !is_loopback_host(&mqtt.host) {
        return Err(refuse("mqtt.url", "the device's MQTT password", &mqtt.host));
    }
    if let (Some(url), true) = (api_url, has_token) {
        if let Some(rest) = url.strip_prefix("http://") {
            let host = url_host(rest);
            if !is_loopback_host(&host) {
                return Err(refuse("api.url", "the device's API token", &host));
            }
        }
    }
    if let Some(live) = video.as_ref().and_then(|v| v.live_url.as_deref()) {
        if let Some(rest) = live.strip_prefix("rtsp://") {
            let host = url_host(rest);
            if !is_loopback_host(&host) {
                return Err(refuse(
                    "video.live_url",
                    "the device's API token (RTSP Basic auth)",
                    &host,
                ));
            }
        }
    }
    Ok(())
}

/// The host of `host[:port][/path]` (brackets of an IPv6 address removed).
fn url_host(rest: &str) -> String {
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    split_host_port(authority)
        .map(|(host, _)| host)
        .unwrap_or_else(|_| authority.to_owned())
}

/// `localhost`, or an IP address in 127.0.0.0/8 or `::1`.
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The API token: inline (`api.token`, `VIGIE_EDGE_TOKEN`) or from `api.token_file`, not both.
fn check_api_token(raw: &RawConfig) -> Result<Option<String>, ConfigError> {
    let inline = raw.api.token.clone().filter(|t| !t.is_empty());
    match (&inline, &raw.api.token_file) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            "api.token_file",
            "set either api.token (VIGIE_EDGE_TOKEN) or api.token_file (VIGIE_EDGE_TOKEN_FILE), not both",
        )),
        (_, Some(file)) => read_secret("api.token_file", file).map(Some),
        (inline, None) => Ok(inline.clone()),
    }
}

/// The live-push token, required with `video.live_url` (and read only then): inline
/// (`video.live_token`) or from `video.live_token_file`, not both; never the API token.
fn check_live_token(
    raw: &RawConfig,
    video: &Option<super::VideoConfig>,
) -> Result<Option<String>, ConfigError> {
    if video.as_ref().and_then(|v| v.live_url.as_ref()).is_none() {
        return Ok(None);
    }
    let inline = raw.video.live_token.clone().filter(|t| !t.is_empty());
    let (key, token) = match (inline, &raw.video.live_token_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                "video.live_token_file",
                "set either video.live_token (VIGIE_EDGE_LIVE_TOKEN) or video.live_token_file \
                 (VIGIE_EDGE_LIVE_TOKEN_FILE), not both",
            ))
        }
        (_, Some(file)) => (
            "video.live_token_file",
            read_secret("video.live_token_file", file)?,
        ),
        (Some(token), None) => ("video.live_token", token),
        (None, None) => {
            return Err(ConfigError::invalid(
                "video.live_token_file",
                "required with video.live_url: the bundle's live.token, which the RTSP server \
                 checks (VIGIE_EDGE_LIVE_TOKEN_FILE)",
            ))
        }
    };
    if token.starts_with("vgd_") {
        return Err(ConfigError::invalid(
            key,
            "this is the device's API token; the live push takes its own credential, the \
             bundle's live.token (vgl_...), so that the API token never travels in RTSP Basic auth",
        ));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::invalid(
            key,
            "must not contain spaces or control characters",
        ));
    }
    Ok(Some(token))
}

/// Reads a secret from `file` (one line; a trailing newline is dropped), refusing a file that is
/// missing, empty, or open to the group or others (it must be 0600 or 0400, as the bundle writes).
fn read_secret(key: &str, file: &std::path::Path) -> Result<String, ConfigError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(file)
        .map_err(|e| ConfigError::invalid(key, format!("cannot read {}: {e}", file.display())))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(ConfigError::invalid(
            key,
            format!(
                "{} is open to other users (mode {mode:04o}); a secret must be readable by its \
                 owner only: chmod 600 {}",
                file.display(),
                file.display()
            ),
        ));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConfigError::invalid(key, format!("cannot read {}: {e}", file.display())))?;
    let secret = text.trim_end_matches(['\n', '\r']).to_owned();
    if secret.is_empty() {
        return Err(ConfigError::invalid(
            key,
            format!("{} is empty", file.display()),
        ));
    }
    Ok(secret)
}

/// Parses `mqtt://host[:port]` or `mqtts://host[:port]` (ports default to 1883 and 8883).
pub fn parse_mqtt_url(url: &str) -> Result<MqttEndpoint, ConfigError> {
    let bad = |reason: String| ConfigError::invalid("mqtt.url", reason);
    let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtt://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("mqtts://") {
        (true, rest)
    } else {
        return Err(bad(format!(
            "{url:?} must start with mqtt:// or mqtts:// (e.g. mqtt://127.0.0.1:1883)"
        )));
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains(['/', '@', '?', '#']) {
        return Err(bad(format!(
            "{url:?} must be only scheme://host:port (no path, user or query)"
        )));
    }
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = split_host_port(rest).map_err(|reason| bad(format!("{url:?}: {reason}")))?;
    if host.is_empty() {
        return Err(bad(format!("{url:?} has no host")));
    }
    Ok(MqttEndpoint {
        tls,
        host,
        port: port.unwrap_or(default_port),
    })
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unclosed '['")?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or("junk after ']'")?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("port {p:?} is not a number 1..65535"))
        })
        .transpose()?;
    if port == Some(0) {
        return Err("port 0 is not allowed".into());
    }
    Ok((host.to_owned(), port))
}

fn parse_listen(s: &str) -> Result<SocketAddr, ConfigError> {
    let bad = |reason: String| ConfigError::invalid("http.listen", reason);
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match s.rsplit_once(':') {
        Some(("localhost", port)) => {
            let port = port
                .parse::<u16>()
                .map_err(|_| bad(format!("port {port:?} is not a number")))?;
            Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
        }
        _ => Err(bad(format!(
            "{s:?} is not host:port with an IP address or localhost (e.g. 127.0.0.1:9091)"
        ))),
    }
}

fn check_api_url(url: &str) -> Result<(), ConfigError> {
    let bad = |reason: String| ConfigError::invalid("api.url", reason);
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| bad(format!("{url:?} must start with http:// or https://")))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(bad(format!("{url:?} has no host")));
    }
    if url.chars().any(|c| c.is_whitespace()) {
        return Err(bad(format!("{url:?} contains spaces")));
    }
    split_host_port(authority).map_err(|reason| bad(format!("{url:?}: {reason}")))?;
    Ok(())
}
