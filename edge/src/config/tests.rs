//! Config parsing, validation and environment overrides.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::*;

const MINIMAL: &str = r#"
[device]
id = "pi-7"
"#;

fn build(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut raw = parse(Path::new("test.toml"), text)?;
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env::apply_env(&mut raw, |k| env.get(k).cloned());
    Config::from_raw(raw)
}

fn invalid_key(err: ConfigError) -> String {
    match err {
        ConfigError::Invalid { key, .. } => key,
        other => panic!("expected an invalid key, got {other}"),
    }
}

#[test]
fn a_minimal_file_takes_every_default() {
    let c = build(MINIMAL, &[]).unwrap();
    assert_eq!(c.device.as_str(), "pi-7");
    assert!(c.clock_synced);
    assert_eq!(
        c.mqtt,
        MqttEndpoint {
            tls: false,
            host: "127.0.0.1".into(),
            port: 1883
        }
    );
    assert_eq!(c.prefix.as_str(), "");
    assert_eq!(c.heartbeat, Duration::from_secs(5));
    assert_eq!(c.http_listen.to_string(), "127.0.0.1:9091");
    assert_eq!(c.outbox.max_in_flight, 256);
    assert_eq!(c.outbox.resend_timeout, Duration::from_secs(10));
    assert_eq!(c.backend, Backend::Gpio);
    assert_eq!(c.log_format, LogFormat::Auto);
    assert!(c.sensors.is_empty());
}

#[test]
fn the_shipped_simulated_example_is_valid() {
    let text = include_str!("../../examples/simulated.toml");
    let c = build(text, &[]).unwrap();
    assert_eq!(c.device.as_str(), "pi-1");
    assert_eq!(c.backend, Backend::Simulated);
    assert_eq!(c.mqtt.port, 1884);
    assert_eq!(c.http_listen.to_string(), "127.0.0.1:9091");
    let ids: Vec<&str> = c.sensors.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["mat-1", "photo-1"]);
    assert_eq!(c.sensors[0].kind, protocol::EventKind::ButtonPressed);
    assert_eq!(c.sensors[1].kind, protocol::EventKind::Motion);
    assert_eq!(c.sensors[0].pull, Pull::Up);
    assert_eq!(c.sensors[1].active, Active::High);
    assert!(c.outbox.create_key, "the demo makes its own key");
    assert_eq!(c.outbox.key_file, Path::new("./data/pi-1.key"));
}

#[test]
fn environment_variables_override_file_values() {
    let c = build(
        include_str!("../../examples/simulated.toml"),
        &[
            ("VIGIE_EDGE_DEVICE_ID", "pi-9"),
            ("VIGIE_EDGE_MQTT_URL", "mqtts://broker.local:8884"),
            ("VIGIE_TOPIC_PREFIX", "test-1"),
            ("VIGIE_EDGE_API_URL", "https://cloud.example:8443/"),
            ("VIGIE_EDGE_TOKEN", "abc.def"),
            ("VIGIE_EDGE_DATA_DIR", "/tmp/x"),
            ("VIGIE_EDGE_HTTP_LISTEN", "127.0.0.1:0"),
            ("VIGIE_LOG_FORMAT", "json"),
        ],
    )
    .unwrap();
    assert_eq!(c.device.as_str(), "pi-9");
    assert_eq!(
        c.mqtt,
        MqttEndpoint {
            tls: true,
            host: "broker.local".into(),
            port: 8884
        }
    );
    assert_eq!(c.prefix.as_str(), "test-1");
    assert_eq!(c.api_url.as_deref(), Some("https://cloud.example:8443/"));
    assert_eq!(c.api_token.as_deref(), Some("abc.def"));
    assert_eq!(c.outbox.data_dir, Path::new("/tmp/x"));
    assert_eq!(
        c.outbox.key_file,
        Path::new("/tmp/x.key"),
        "the demo key follows the data dir"
    );
    assert_eq!(c.http_listen.port(), 0);
    assert_eq!(c.log_format, LogFormat::Json);
}

#[test]
fn every_documented_override_is_handled() {
    for (var, key) in env::OVERRIDES {
        let doc = include_str!("../../CONFIG.md");
        assert!(doc.contains(var), "{var} missing from CONFIG.md");
        assert!(doc.contains(key), "{key} missing from CONFIG.md");
    }
}

#[test]
fn simulated_sensors_refuse_a_non_loopback_listen_address() {
    let text = include_str!("../../examples/simulated.toml");
    let err = build(text, &[("VIGIE_EDGE_HTTP_LISTEN", "0.0.0.0:9091")]).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("http.listen"), "{message}");
    assert!(message.contains("loopback"), "{message}");
    assert!(build(text, &[("VIGIE_EDGE_HTTP_LISTEN", "[::1]:9091")]).is_ok());
    assert!(build(text, &[("VIGIE_EDGE_HTTP_LISTEN", "localhost:9091")]).is_ok());
}

#[test]
fn real_sensors_may_listen_on_any_address() {
    let text = r#"
[device]
id = "pi-1"
[http]
listen = "0.0.0.0:9091"
[[sensors.input]]
id = "mat-1"
kind = "button_pressed"
pin = 17
"#;
    assert!(build(text, &[]).is_ok());
}

#[test]
fn an_unknown_key_is_refused_and_named() {
    let err = build("[device]\nid = \"pi-1\"\ncolour = \"red\"\n", &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }));
    assert!(err.to_string().contains("colour"), "{err}");
}

#[test]
fn a_missing_device_id_is_refused() {
    let err = build("[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n", &[]).unwrap_err();
    assert!(err.to_string().contains("device"), "{err}");
}

#[test]
fn bad_values_are_refused_with_the_key_that_was_wrong() {
    let cases: &[(&str, &str)] = &[
        ("[device]\nid = \"Pi 1\"", "device.id"),
        (
            "[device]\nid = \"pi-1\"\n[mqtt]\nurl = \"tcp://x:1\"",
            "mqtt.url",
        ),
        (
            "[device]\nid = \"pi-1\"\n[mqtt]\nurl = \"mqtt://x:99999\"",
            "mqtt.url",
        ),
        ("[device]\nid = \"pi-1\"\n[mqtt]\nurl = \"mqtt://:1883\"", "mqtt.url"),
        (
            "[device]\nid = \"pi-1\"\n[mqtt]\ntopic_prefix = \"a/#\"",
            "mqtt.topic_prefix",
        ),
        ("[device]\nid = \"pi-1\"\n[mqtt]\nkeep_alive_s = 1", "mqtt.keep_alive_s"),
        ("[device]\nid = \"pi-1\"\n[api]\nurl = \"ftp://x\"", "api.url"),
        ("[device]\nid = \"pi-1\"\n[api]\ntoken = \"a b\"", "api.token"),
        ("[device]\nid = \"pi-1\"\n[api]\nbulk_batch = 0", "api.bulk_batch"),
        ("[device]\nid = \"pi-1\"\n[api]\nbulk_batch = 10001", "api.bulk_batch"),
        ("[device]\nid = \"pi-1\"\n[api]\ntimeout_ms = 0", "api.timeout_ms"),
        (
            "[device]\nid = \"pi-1\"\n[api]\nretry_base_ms = 5000\nretry_max_ms = 10",
            "api.retry_max_ms",
        ),
        ("[device]\nid = \"pi-1\"\n[http]\nlisten = \"nowhere\"", "http.listen"),
        ("[device]\nid = \"pi-1\"\n[outbox]\nmax_in_flight = 0", "outbox.max_in_flight"),
        ("[device]\nid = \"pi-1\"\n[log]\nformat = \"xml\"", "log.format"),
        ("[device]\nid = \"pi-1\"\n[sensors]\nbackend = \"usb\"", "sensors.backend"),
        (
            "[device]\nid = \"pi-1\"\n[[sensors.input]]\nid = \"m\"\nkind = \"smoke\"\npin = 1",
            "sensors.input[0].kind",
        ),
        (
            "[device]\nid = \"pi-1\"\n[[sensors.input]]\nid = \"m\"\nkind = \"motion\"",
            "sensors.input[0].pin",
        ),
        (
            "[device]\nid = \"pi-1\"\n[[sensors.input]]\nid = \"m\"\nkind = \"motion\"\npin = 1\npull = \"sideways\"",
            "sensors.input[0].pull",
        ),
        (
            "[device]\nid = \"pi-1\"\n[[sensors.input]]\nid = \"m\"\nkind = \"motion\"\npin = 1\nactive = \"maybe\"",
            "sensors.input[0].active",
        ),
        (
            "[device]\nid = \"pi-1\"\n[[sensors.input]]\nid = \"m\"\nkind = \"motion\"\npin = 1\n[[sensors.input]]\nid = \"m\"\nkind = \"button_pressed\"\npin = 2",
            "sensors.input[1].id",
        ),
    ];
    for (text, key) in cases {
        let err = build(text, &[]).unwrap_err();
        assert_eq!(invalid_key(err), *key, "for {text:?}");
    }
}

#[test]
fn mqtt_urls_default_their_port_by_scheme() {
    assert_eq!(validated::parse_mqtt_url("mqtt://h").unwrap().port, 1883);
    assert_eq!(validated::parse_mqtt_url("mqtts://h").unwrap().port, 8883);
    let v6 = validated::parse_mqtt_url("mqtt://[::1]:1884").unwrap();
    assert_eq!((v6.host.as_str(), v6.port), ("::1", 1884));
}

#[test]
fn the_key_file_defaults_to_the_provisioned_place_and_has_an_override() {
    let c = build(MINIMAL, &[]).unwrap();
    assert_eq!(c.outbox.key_file, Path::new("/etc/vigie/keys/outbox.key"));
    assert!(!c.outbox.create_key);
    let c = build(MINIMAL, &[("VIGIE_EDGE_KEY_FILE", "/run/credentials/k")]).unwrap();
    assert_eq!(c.outbox.key_file, Path::new("/run/credentials/k"));
    let text = format!("{MINIMAL}[outbox]\nkey_file = \"/mnt/key/outbox.key\"\n");
    assert_eq!(
        build(&text, &[]).unwrap().outbox.key_file,
        Path::new("/mnt/key/outbox.key")
    );
}

#[test]
fn create_key_is_refused_with_real_sensors() {
    let text = format!("{MINIMAL}[outbox]\ncreate_key = true\n");
    let err = build(&text, &[]).unwrap_err();
    assert!(err.to_string().contains("keygen"), "{err}");
    assert_eq!(invalid_key(err), "outbox.create_key");
}

#[test]
fn the_bulk_drain_defaults_to_500_unconfirmed_events_and_batches_of_1000() {
    let raw = parse(Path::new("t.toml"), "[device]\nid = \"pi-1\"").unwrap();
    let c = Config::from_raw(raw).unwrap();
    assert_eq!(c.api.bulk_threshold, 500);
    assert_eq!(c.api.bulk_batch, 1000);
    assert_eq!(c.api.timeout, std::time::Duration::from_secs(30));
}

#[test]
fn the_bulk_drain_settings_are_read_from_the_api_table() {
    let text =
        "[device]\nid = \"pi-1\"\n[api]\nbulk_threshold = 50\nbulk_batch = 200\ntimeout_ms = 5000";
    let c = Config::from_raw(parse(Path::new("t.toml"), text).unwrap()).unwrap();
    assert_eq!(c.api.bulk_threshold, 50);
    assert_eq!(c.api.bulk_batch, 200);
    assert_eq!(c.api.timeout, std::time::Duration::from_secs(5));
}

fn secret_file(dir: &Path, name: &str, text: &str, mode: u32) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.display().to_string()
}

#[test]
fn a_provisioning_bundle_is_given_entirely_by_environment() {
    let dir = tempfile::tempdir().unwrap();
    let password = secret_file(dir.path(), "mqtt.password", "s3cret\n", 0o600);
    let token = secret_file(dir.path(), "api.token", "tok-123\n", 0o400);
    let c = build(
        MINIMAL,
        &[
            ("VIGIE_EDGE_MQTT_PASSWORD_FILE", &password),
            ("VIGIE_EDGE_TOKEN_FILE", &token),
            ("VIGIE_EDGE_API_URL", "http://127.0.0.1:8080"),
        ],
    )
    .unwrap();
    assert_eq!(
        c.mqtt_auth.credentials,
        Some(("pi-7".to_owned(), "s3cret".to_owned())),
        "the username defaults to the device id"
    );
    assert_eq!(c.api_token.as_deref(), Some("tok-123"));
    let c = build(
        MINIMAL,
        &[
            ("VIGIE_EDGE_MQTT_PASSWORD_FILE", &password),
            ("VIGIE_EDGE_MQTT_USERNAME", "other"),
        ],
    )
    .unwrap();
    assert_eq!(c.mqtt_auth.credentials.unwrap().0, "other");
}

#[test]
fn a_secret_file_open_to_other_users_is_refused_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let open = secret_file(dir.path(), "open", "s3cret\n", 0o644);
    let err = build(MINIMAL, &[("VIGIE_EDGE_TOKEN_FILE", &open)]).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
    assert_eq!(invalid_key(err), "api.token_file");
    let err = build(MINIMAL, &[("VIGIE_EDGE_MQTT_PASSWORD_FILE", &open)]).unwrap_err();
    assert_eq!(invalid_key(err), "mqtt.password_file");
    let empty = secret_file(dir.path(), "empty", "\n", 0o600);
    let err = build(MINIMAL, &[("VIGIE_EDGE_TOKEN_FILE", &empty)]).unwrap_err();
    assert_eq!(invalid_key(err), "api.token_file");
}

#[test]
fn a_token_inline_and_from_a_file_at_once_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let token = secret_file(dir.path(), "api.token", "tok\n", 0o600);
    let err = build(
        MINIMAL,
        &[
            ("VIGIE_EDGE_TOKEN", "tok"),
            ("VIGIE_EDGE_TOKEN_FILE", &token),
        ],
    )
    .unwrap_err();
    assert_eq!(invalid_key(err), "api.token_file");
}

#[test]
fn secrets_in_plaintext_toward_a_non_loopback_host_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let password = secret_file(dir.path(), "mqtt.password", "s3cret\n", 0o600);
    let refused = |env: &[(&str, &str)]| invalid_key(build(MINIMAL, env).unwrap_err());
    assert_eq!(
        refused(&[
            ("VIGIE_EDGE_MQTT_URL", "mqtt://broker.example:1883"),
            ("VIGIE_EDGE_MQTT_PASSWORD_FILE", &password),
        ]),
        "mqtt.url"
    );
    assert_eq!(
        refused(&[
            ("VIGIE_EDGE_API_URL", "http://10.0.0.5:8080"),
            ("VIGIE_EDGE_TOKEN", "tok"),
        ]),
        "api.url"
    );
    let live = "[device]\nid = \"pi-7\"\n[video]\nsource = \"synthetic\"\nlive_url = \"rtsp://cloud.example:8554/live/{device}\"\nlive_token = \"vgl_t\"\n";
    assert_eq!(invalid_key(build(live, &[]).unwrap_err()), "video.live_url");
    // Loopback, TLS, or no secret at all: fine.
    for env in [
        vec![
            ("VIGIE_EDGE_MQTT_URL", "mqtt://localhost:1884"),
            ("VIGIE_EDGE_MQTT_PASSWORD_FILE", password.as_str()),
        ],
        vec![
            ("VIGIE_EDGE_MQTT_URL", "mqtt://[::1]:1884"),
            ("VIGIE_EDGE_MQTT_PASSWORD_FILE", password.as_str()),
        ],
        vec![
            ("VIGIE_EDGE_MQTT_URL", "mqtts://broker.example"),
            ("VIGIE_EDGE_MQTT_PASSWORD_FILE", password.as_str()),
        ],
        vec![("VIGIE_EDGE_MQTT_URL", "mqtt://broker.example")],
        vec![
            ("VIGIE_EDGE_API_URL", "https://cloud.example"),
            ("VIGIE_EDGE_TOKEN", "tok"),
        ],
        vec![
            ("VIGIE_EDGE_API_URL", "http://127.0.0.1:8080"),
            ("VIGIE_EDGE_TOKEN", "tok"),
        ],
    ] {
        assert!(build(MINIMAL, &env).is_ok(), "{env:?}");
    }
    // allow_insecure, in the file (before any table) or by environment.
    let insecure = format!("allow_insecure = true\n{live}");
    assert!(build(&insecure, &[]).is_ok());
    assert!(build(live, &[("VIGIE_EDGE_ALLOW_INSECURE", "1")]).is_ok());
    assert!(
        build(live, &[("VIGIE_EDGE_ALLOW_INSECURE", "yes")]).is_err(),
        "only 1 or true"
    );
}

#[test]
fn an_rtsps_live_url_is_refused_since_nothing_can_push_it() {
    let live = "[device]\nid = \"pi-7\"\n[video]\nsource = \"synthetic\"\nlive_url = \"rtsps://127.0.0.1:8322/live/{device}\"\n";
    let err = build(live, &[]).unwrap_err();
    assert!(
        err.to_string().contains("rtsps:// is not supported"),
        "{err}"
    );
    assert_eq!(invalid_key(err), "video.live_url");
}

#[test]
fn a_live_url_needs_the_live_push_token_and_never_takes_the_api_token() {
    let dir = tempfile::tempdir().unwrap();
    let live = "[device]\nid = \"pi-7\"\n[video]\nsource = \"synthetic\"\nlive_url = \"rtsp://127.0.0.1:8554/live/{device}\"\n";
    let err = build(live, &[]).unwrap_err();
    assert!(err.to_string().contains("live.token"), "{err}");
    assert_eq!(invalid_key(err), "video.live_token_file");

    let file = secret_file(dir.path(), "live.token", "vgl_from-file\n", 0o600);
    let c = build(live, &[("VIGIE_EDGE_LIVE_TOKEN_FILE", &file)]).unwrap();
    assert_eq!(c.live_token.as_deref(), Some("vgl_from-file"));
    let c = build(live, &[("VIGIE_EDGE_LIVE_TOKEN", "vgl_inline")]).unwrap();
    assert_eq!(c.live_token.as_deref(), Some("vgl_inline"));

    let err = build(live, &[("VIGIE_EDGE_LIVE_TOKEN", "vgd_the-api-token")]).unwrap_err();
    assert!(err.to_string().contains("API token"), "{err}");
    assert_eq!(invalid_key(err), "video.live_token");
    let both = [
        ("VIGIE_EDGE_LIVE_TOKEN", "vgl_inline"),
        ("VIGIE_EDGE_LIVE_TOKEN_FILE", file.as_str()),
    ];
    assert_eq!(
        invalid_key(build(live, &both).unwrap_err()),
        "video.live_token_file"
    );
    let open = secret_file(dir.path(), "open", "vgl_x\n", 0o644);
    let err = build(live, &[("VIGIE_EDGE_LIVE_TOKEN_FILE", &open)]).unwrap_err();
    assert_eq!(invalid_key(err), "video.live_token_file");

    // Without a live stream the token is not read, so a bundle's file may be given anyway.
    let c = build(MINIMAL, &[("VIGIE_EDGE_LIVE_TOKEN_FILE", "/nonexistent")]).unwrap();
    assert_eq!(c.live_token, None);
}
