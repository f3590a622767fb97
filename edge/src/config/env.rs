//! Environment overrides: each variable, when set, replaces one file value before validation.
//! The lookup is injected so tests never touch the process environment.

use std::path::PathBuf;

use super::raw::RawConfig;

/// Every variable that overrides a file value, with the key it replaces (listed in `CONFIG.md`).
pub const OVERRIDES: [(&str, &str); 18] = [
    ("VIGIE_EDGE_ALLOW_INSECURE", "allow_insecure"),
    ("VIGIE_EDGE_DEVICE_ID", "device.id"),
    ("VIGIE_EDGE_MQTT_URL", "mqtt.url"),
    ("VIGIE_EDGE_MQTT_USERNAME", "mqtt.username"),
    ("VIGIE_EDGE_MQTT_PASSWORD_FILE", "mqtt.password_file"),
    ("VIGIE_EDGE_MQTT_CA_FILE", "mqtt.ca_file"),
    ("VIGIE_TOPIC_PREFIX", "mqtt.topic_prefix"),
    ("VIGIE_EDGE_API_URL", "api.url"),
    ("VIGIE_EDGE_TOKEN", "api.token"),
    ("VIGIE_EDGE_TOKEN_FILE", "api.token_file"),
    ("VIGIE_EDGE_DATA_DIR", "outbox.data_dir"),
    ("VIGIE_EDGE_KEY_FILE", "outbox.key_file"),
    ("VIGIE_EDGE_HTTP_LISTEN", "http.listen"),
    ("VIGIE_LOG_FORMAT", "log.format"),
    ("VIGIE_EDGE_VIDEO_SOURCE", "video.source"),
    ("VIGIE_EDGE_LIVE_URL", "video.live_url"),
    ("VIGIE_EDGE_LIVE_TOKEN", "video.live_token"),
    ("VIGIE_EDGE_LIVE_TOKEN_FILE", "video.live_token_file"),
];

/// Applies every override that `lookup` finds. `RUST_LOG` is read by [`crate::logging`] instead.
pub fn apply_env(raw: &mut RawConfig, lookup: impl Fn(&str) -> Option<String>) {
    for (var, _) in OVERRIDES {
        let Some(value) = lookup(var) else { continue };
        match var {
            // Anything but 1 or true keeps the refusal: a typo never opens plaintext.
            "VIGIE_EDGE_ALLOW_INSECURE" => {
                raw.allow_insecure = matches!(value.trim(), "1" | "true")
            }
            "VIGIE_EDGE_DEVICE_ID" => raw.device.id = value,
            "VIGIE_EDGE_MQTT_URL" => raw.mqtt.url = value,
            "VIGIE_EDGE_MQTT_USERNAME" => raw.mqtt.username = Some(value),
            "VIGIE_EDGE_MQTT_PASSWORD_FILE" => raw.mqtt.password_file = Some(PathBuf::from(value)),
            "VIGIE_EDGE_MQTT_CA_FILE" => raw.mqtt.ca_file = Some(PathBuf::from(value)),
            "VIGIE_TOPIC_PREFIX" => raw.mqtt.topic_prefix = value,
            "VIGIE_EDGE_API_URL" => raw.api.url = Some(value),
            "VIGIE_EDGE_TOKEN" => raw.api.token = Some(value),
            "VIGIE_EDGE_TOKEN_FILE" => raw.api.token_file = Some(PathBuf::from(value)),
            "VIGIE_EDGE_DATA_DIR" => raw.outbox.data_dir = PathBuf::from(value),
            "VIGIE_EDGE_KEY_FILE" => raw.outbox.key_file = Some(PathBuf::from(value)),
            "VIGIE_EDGE_HTTP_LISTEN" => raw.http.listen = value,
            "VIGIE_LOG_FORMAT" => raw.log.format = value,
            "VIGIE_EDGE_VIDEO_SOURCE" => raw.video.source = value,
            "VIGIE_EDGE_LIVE_URL" => raw.video.live_url = Some(value),
            "VIGIE_EDGE_LIVE_TOKEN" => raw.video.live_token = Some(value),
            "VIGIE_EDGE_LIVE_TOKEN_FILE" => raw.video.live_token_file = Some(PathBuf::from(value)),
            _ => unreachable!("every override is matched"),
        }
    }
}
