//! The configuration file as written: documented serde structs with `deny_unknown_fields` and named
//! default functions. Nothing here is validated; [`super::validated`] builds the checked form.
//! `edge/CONFIG.md` is the reference page for every key below; keep the two in step.

use std::path::PathBuf;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Allow secrets in plaintext toward a non-loopback host (`http://` API with a token,
    /// `mqtt://` with a password, `rtsp://` live push with the token); written before any table.
    /// Env: `VIGIE_EDGE_ALLOW_INSECURE=1`.
    #[serde(default)]
    pub allow_insecure: bool,
    pub device: RawDevice,
    #[serde(default)]
    pub mqtt: RawMqtt,
    #[serde(default)]
    pub api: RawApi,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub outbox: RawOutbox,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub sensors: RawSensors,
    #[serde(default)]
    pub video: super::video::RawVideo,
}

/// `[device]`: who this Pi is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    /// The device id (a slug such as `pi-1`); also the MQTT client id. Env: `VIGIE_EDGE_DEVICE_ID`.
    pub id: String,
    /// Whether the device clock is trusted (NTP-synchronised); copied into every event and status.
    #[serde(default = "default_clock_synced")]
    pub clock_synced: bool,
}

/// `[mqtt]`: the broker and the uplink's timing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    /// `mqtt://host:port` or `mqtts://host:port`. Env: `VIGIE_EDGE_MQTT_URL`.
    #[serde(default = "default_mqtt_url")]
    pub url: String,
    /// Put in front of every topic (e.g. `test-42`); empty for none. Env: `VIGIE_TOPIC_PREFIX`.
    #[serde(default)]
    pub topic_prefix: String,
    /// MQTT keep-alive, seconds (at least 5).
    #[serde(default = "default_keep_alive_s")]
    pub keep_alive_s: u64,
    /// How often the retained online status is republished, milliseconds.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// First reconnect delay ceiling, milliseconds (doubles, full jitter).
    #[serde(default = "default_reconnect_base_ms")]
    pub reconnect_base_ms: u64,
    /// Largest reconnect delay, milliseconds.
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// The device's MQTT username (default: the device id, as `vigie-cloud device add` provisions).
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the device's MQTT password (`mqtt.password` of the provisioning bundle).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The CA certificate (PEM) the broker's certificate must chain to, for `mqtts://`; unset: the
    /// platform's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// `[api]`: the cloud's HTTP API, used to drain a large backlog in bulk (`POST /api/events`) when
/// both `url` and `token` are set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    /// `http://…` or `https://…`. Env: `VIGIE_EDGE_API_URL`.
    #[serde(default)]
    pub url: Option<String>,
    /// The device's bearer token. Env: `VIGIE_EDGE_TOKEN`.
    #[serde(default)]
    pub token: Option<String>,
    /// A file holding the device's bearer token (`api.token` of the provisioning bundle), readable
    /// by its owner only; instead of `token`. Env: `VIGIE_EDGE_TOKEN_FILE`.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// A bulk drain starts when more than this many events are unconfirmed.
    #[serde(default = "default_bulk_threshold")]
    pub bulk_threshold: u64,
    /// Events per bulk request, at most (the cloud takes 10,000).
    #[serde(default = "default_bulk_batch")]
    pub bulk_batch: usize,
    /// Timeout of one bulk request (connect, send, answer), milliseconds.
    #[serde(default = "default_api_timeout_ms")]
    pub timeout_ms: u64,
    /// First retry delay ceiling after a failed bulk request, milliseconds (doubles, full jitter).
    #[serde(default = "default_api_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Largest retry delay after failed bulk requests, milliseconds.
    #[serde(default = "default_api_retry_max_ms")]
    pub retry_max_ms: u64,
    /// How often the clock offset is measured against the cloud (`GET /api/time`), seconds; also
    /// at every uplink connect.
    #[serde(default = "default_clock_probe_s")]
    pub clock_probe_s: u64,
}

/// `[http]`: the local health (and simulation) port.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// `host:port`. Env: `VIGIE_EDGE_HTTP_LISTEN`.
    #[serde(default = "default_http_listen")]
    pub listen: String,
}

/// `[outbox]`: the durable event store and its resend rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutbox {
    /// Where sled keeps the outbox. Env: `VIGIE_EDGE_DATA_DIR`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The 32-byte key that encrypts the outbox at rest, made by `vigie-edge keygen --out FILE`.
    /// Unset: `/etc/vigie/keys/outbox.key`, or `<data_dir>.key` with `create_key`. Env:
    /// `VIGIE_EDGE_KEY_FILE`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// DEMOS ONLY (simulated sensors): create the key file at start when it is missing.
    #[serde(default)]
    pub create_key: bool,
    /// At most this many events published and not yet acknowledged by the broker.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Stored unconfirmed events, at most; what happens beyond it is `when_full`.
    #[serde(default = "default_max_events")]
    pub max_events: u64,
    /// At `max_events`: `drop_oldest` (default: the oldest unsent events make room and a gap
    /// record tells the cloud how many and when) or `refuse_new` (new events get 503).
    #[serde(default = "default_when_full")]
    pub when_full: String,
    /// Unsent events older than this many seconds are dropped, with a gap record; 0: no age bound.
    #[serde(default = "default_max_age_s")]
    pub max_age_s: u64,
    /// An event published and not confirmed by the cloud within this time is resent, milliseconds.
    #[serde(default = "default_resend_timeout_ms")]
    pub resend_timeout_ms: u64,
    /// The resend timeout doubles per resend of an event up to this, milliseconds.
    #[serde(default = "default_resend_timeout_max_ms")]
    pub resend_timeout_max_ms: u64,
}

/// `[log]`: how logs look.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `auto` (pretty on a terminal, JSON otherwise), `json` or `pretty`. Env: `VIGIE_LOG_FORMAT`.
    #[serde(default = "default_log_format")]
    pub format: String,
    /// A tracing filter such as `info` or `vigie_edge=debug`. Env: `RUST_LOG` (wins).
    #[serde(default = "default_log_level")]
    pub level: String,
}

/// `[sensors]`: the backend and the inputs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSensors {
    /// `gpio` (rppal, a real Pi) or `simulated` (activations come from `POST /sim/...`).
    #[serde(default = "default_backend")]
    pub backend: String,
    /// `[[sensors.input]]`, one per sensor.
    #[serde(default)]
    pub input: Vec<RawInput>,
}

/// `[[sensors.input]]`: one sensor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    /// The sensor id, a slug such as `mat-1`.
    pub id: String,
    /// `button_pressed` (pressure mat) or `motion` (photo sensor).
    pub kind: String,
    /// The BCM GPIO number; required with the `gpio` backend.
    #[serde(default)]
    pub pin: Option<u8>,
    /// `up`, `down` or `none`.
    #[serde(default = "default_pull")]
    pub pull: String,
    /// The level that means "active": `low` or `high`.
    #[serde(default = "default_active")]
    pub active: String,
    /// The input must be stable (no edge) this long, milliseconds.
    #[serde(default = "default_debounce_ms")]
    pub debounce_ms: u64,
    /// The input must be active at least this long to count, milliseconds.
    #[serde(default = "default_min_active_ms")]
    pub min_active_ms: u64,
}

pub fn default_clock_synced() -> bool {
    true
}
pub fn default_mqtt_url() -> String {
    "mqtt://127.0.0.1:1883".to_owned()
}
pub fn default_keep_alive_s() -> u64 {
    30
}
pub fn default_heartbeat_ms() -> u64 {
    5_000
}
pub fn default_reconnect_base_ms() -> u64 {
    500
}
pub fn default_reconnect_max_ms() -> u64 {
    30_000
}
pub fn default_bulk_threshold() -> u64 {
    500
}
pub fn default_bulk_batch() -> usize {
    1000
}
pub fn default_api_timeout_ms() -> u64 {
    30_000
}
pub fn default_api_retry_base_ms() -> u64 {
    1000
}
pub fn default_api_retry_max_ms() -> u64 {
    60_000
}
pub fn default_http_listen() -> String {
    "127.0.0.1:9091".to_owned()
}
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
/// Where a provisioned Pi keeps its outbox key (see `docs/threat-model.md` for better places).
pub fn default_key_file() -> PathBuf {
    PathBuf::from("/etc/vigie/keys/outbox.key")
}
pub fn default_max_in_flight() -> usize {
    256
}
pub fn default_max_events() -> u64 {
    1_000_000
}
pub fn default_clock_probe_s() -> u64 {
    300
}
pub fn default_when_full() -> String {
    "drop_oldest".to_owned()
}
pub fn default_max_age_s() -> u64 {
    30 * 24 * 3600
}
pub fn default_resend_timeout_ms() -> u64 {
    10_000
}
pub fn default_resend_timeout_max_ms() -> u64 {
    300_000
}
pub fn default_log_format() -> String {
    "auto".to_owned()
}
pub fn default_log_level() -> String {
    "info".to_owned()
}
pub fn default_backend() -> String {
    "gpio".to_owned()
}
pub fn default_pull() -> String {
    "up".to_owned()
}
pub fn default_active() -> String {
    "low".to_owned()
}
pub fn default_debounce_ms() -> u64 {
    30
}
pub fn default_min_active_ms() -> u64 {
    50
}

impl Default for RawMqtt {
    fn default() -> Self {
        RawMqtt {
            url: default_mqtt_url(),
            topic_prefix: String::new(),
            keep_alive_s: default_keep_alive_s(),
            heartbeat_ms: default_heartbeat_ms(),
            reconnect_base_ms: default_reconnect_base_ms(),
            reconnect_max_ms: default_reconnect_max_ms(),
            username: None,
            password_file: None,
            ca_file: None,
        }
    }
}

impl Default for RawApi {
    fn default() -> Self {
        RawApi {
            url: None,
            token: None,
            token_file: None,
            bulk_threshold: default_bulk_threshold(),
            bulk_batch: default_bulk_batch(),
            timeout_ms: default_api_timeout_ms(),
            retry_base_ms: default_api_retry_base_ms(),
            retry_max_ms: default_api_retry_max_ms(),
            clock_probe_s: default_clock_probe_s(),
        }
    }
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            listen: default_http_listen(),
        }
    }
}

impl Default for RawOutbox {
    fn default() -> Self {
        RawOutbox {
            data_dir: default_data_dir(),
            key_file: None,
            create_key: false,
            max_in_flight: default_max_in_flight(),
            max_events: default_max_events(),
            when_full: default_when_full(),
            max_age_s: default_max_age_s(),
            resend_timeout_ms: default_resend_timeout_ms(),
            resend_timeout_max_ms: default_resend_timeout_max_ms(),
        }
    }
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            format: default_log_format(),
            level: default_log_level(),
        }
    }
}

impl Default for RawSensors {
    fn default() -> Self {
        RawSensors {
            backend: default_backend(),
            input: Vec::new(),
        }
    }
}
