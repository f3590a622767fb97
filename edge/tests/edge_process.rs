//! End to end through the real `vigie-edge` binary and the machine's Mosquitto (127.0.0.1:1883):
//! simulated presses are durable when answered, reach the broker in order, leave the outbox when the
//! cloud's retained ack arrives, and survive a SIGKILL; the data directory it makes is 0700.

mod support;

use protocol::{DeviceState, DeviceStatus, Topic};
use support::{free_port, Edge, Names, Watcher, BROKER_PORT};

#[tokio::test]
async fn simulated_presses_reach_the_broker_in_order_and_leave_the_outbox_when_the_cloud_confirms()
{
    let names = Names::unique();
    let dir = tempfile::tempdir().unwrap();
    let mut watcher = Watcher::start(&names).await;
    let mut edge = Edge::start(&names, &dir.path().join("data"), BROKER_PORT, 1);
    edge.wait_alive().await;
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("data"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o700,
        "the outbox's data directory is private"
    );

    let status_topic = names.topic(Topic::Status(names.device.clone()));
    watcher
        .wait_for(&status_topic, "an online status", |p| {
            DeviceStatus::from_json(p).is_ok_and(|s| s.state == DeviceState::Online)
        })
        .await;

    let mut answered = Vec::new();
    for _ in 0..5 {
        answered.push(edge.press().await);
    }
    let seqs: Vec<u64> = answered.iter().map(|(_, seq)| *seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);

    let topic = names.topic(Topic::ButtonPressed(names.device.clone()));
    let seen = watcher.events(&topic, &seqs).await;
    for (id, seq) in &answered {
        assert_eq!(seen[seq], *id, "the published event is the one answered");
    }
    edge.wait_ready_until("5 events queued", |v| v["queue_depth"] == 5)
        .await;

    watcher.ack(&names, 5).await;
    edge.wait_ready_until("an empty outbox", |v| {
        v["queue_depth"] == 0 && v["ready"] == true
    })
    .await;
    watcher
        .wait_for(&status_topic, "a heartbeat with queue_depth 0", |p| {
            DeviceStatus::from_json(p).is_ok_and(|s| s.queue_depth == 0 && s.uptime_s > 0)
        })
        .await;

    let status = edge.terminate();
    assert!(status.success(), "a clean exit on SIGTERM");
    watcher
        .wait_for(&status_topic, "an offline status at shutdown", |p| {
            DeviceStatus::from_json(p).is_ok_and(|s| s.state == DeviceState::Offline)
        })
        .await;
    watcher.clean_up(&names).await;
}

#[tokio::test]
async fn events_accepted_before_a_sigkill_are_sent_after_restart_and_the_seq_continues() {
    let names = Names::unique();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut watcher = Watcher::start(&names).await;
    let topic = names.topic(Topic::ButtonPressed(names.device.clone()));

    // Run 1: no broker at all. Presses are still accepted (durable), the uplink is degraded but the
    // edge is ready; then SIGKILL right after the last answer.
    let dead_broker = free_port();
    let mut edge = Edge::start(&names, &data, dead_broker, 1);
    edge.wait_alive().await;
    let mut answered = Vec::new();
    for _ in 0..3 {
        answered.push(edge.press().await);
    }
    edge.wait_ready_until("a degraded uplink while ready", |v| {
        v["ready"] == true && v["components"]["uplink"]["state"] == "degraded"
    })
    .await;
    edge.kill();

    // Run 2: the broker is there. Every accepted event goes out with its id; the seq continues.
    let mut edge = Edge::start(&names, &data, BROKER_PORT, 2);
    edge.wait_alive().await;
    let seen = watcher.events(&topic, &[1, 2, 3]).await;
    for (id, seq) in &answered {
        assert_eq!(seen[seq], *id, "event {seq} was resent unchanged");
    }
    let (fourth, seq) = edge.press().await;
    assert_eq!(seq, 4, "no seq is reused after a crash");
    watcher.events(&topic, &[4]).await;
    edge.kill();

    // Run 3: nothing was confirmed, so everything is resent after the reconnect; then the ack.
    watcher.clear();
    let mut edge = Edge::start(&names, &data, BROKER_PORT, 3);
    edge.wait_alive().await;
    let seen = watcher.events(&topic, &[1, 2, 3, 4]).await;
    assert_eq!(seen[&4], fourth);
    watcher.ack(&names, 4).await;
    edge.wait_ready_until("an empty outbox", |v| v["queue_depth"] == 0)
        .await;
    assert_eq!(edge.press().await.1, 5);
    edge.terminate();
    watcher.clean_up(&names).await;
}

fn refused(config_text: &str, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.toml");
    std::fs::write(&path, config_text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigie-edge"))
        .args(["run", "--config"])
        .arg(&path)
        .env("VIGIE_EDGE_DATA_DIR", dir.path().join("data"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!out.status.success(), "vigie-edge should refuse to start");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_binary_refuses_simulated_sensors_on_a_non_loopback_address() {
    let example = include_str!("../examples/simulated.toml");
    let err = refused(example, &[("VIGIE_EDGE_HTTP_LISTEN", "0.0.0.0:9091")]);
    assert!(
        err.contains("http.listen") && err.contains("loopback"),
        "{err}"
    );
}

#[test]
fn the_binary_refuses_its_secrets_in_plaintext_toward_a_non_loopback_host() {
    let example = include_str!("../examples/simulated.toml");
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("api.token");
    std::fs::write(&token, "vgd_token\n").unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let token = token.display().to_string();
    let err = refused(
        example,
        &[
            ("VIGIE_EDGE_API_URL", "http://192.0.2.10:8080"),
            ("VIGIE_EDGE_TOKEN_FILE", &token),
        ],
    );
    assert!(
        err.contains("api.url")
            && err.contains("plaintext")
            && err.contains("VIGIE_EDGE_ALLOW_INSECURE=1"),
        "{err}"
    );
    assert!(
        !err.contains("vgd_token"),
        "the secret is not printed: {err}"
    );
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let err = refused(example, &[("VIGIE_EDGE_TOKEN_FILE", &token)]);
    assert!(
        err.contains("api.token_file") && err.contains("chmod 600"),
        "{err}"
    );
}

#[test]
fn the_binary_names_the_key_of_a_bad_value() {
    let err = refused("[device]\nid = \"Bad Id\"\n", &[]);
    assert!(err.contains("device.id"), "{err}");
}

#[test]
fn the_binary_refuses_gpio_sensors_where_there_is_no_gpio() {
    if std::path::Path::new("/dev/gpiomem").exists() {
        return; // a real Pi: GPIO is there, nothing to refuse
    }
    let config = r#"
[device]
id = "pi-1"
[http]
listen = "127.0.0.1:0"
[sensors]
backend = "gpio"
[[sensors.input]]
id = "mat-1"
kind = "button_pressed"
pin = 17
"#;
    let err = refused(config, &[]);
    assert!(err.contains("GPIO") && err.contains("simulated"), "{err}");
}

const SIMULATED_WITHOUT_KEY: &str = r#"
[device]
id = "pi-1"
[http]
listen = "127.0.0.1:0"
[mqtt]
url = "mqtt://127.0.0.1:1"
[sensors]
backend = "simulated"
"#;

/// Runs `vigie-edge` with `args`; returns (success, stderr).
fn vigie_edge(args: &[&std::ffi::OsStr], env: &[(&str, &std::path::Path)]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigie-edge"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn keygen(path: &std::path::Path) -> (bool, String) {
    vigie_edge(
        &["keygen".as_ref(), "--out".as_ref(), path.as_os_str()],
        &[],
    )
}

#[test]
fn keygen_writes_a_0600_key_and_refuses_to_overwrite_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.key");
    let (ok, err) = keygen(&path);
    assert!(ok, "{err}");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    let key = std::fs::read(&path).unwrap();
    let (ok, err) = keygen(&path);
    assert!(!ok, "a second keygen must fail");
    assert!(
        err.contains("refusing to overwrite") && err.contains("outbox.key"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), key, "the key is untouched");
    // --if-missing (the first-boot unit, at every boot with a bundle): kept, and success.
    let (ok, err) = vigie_edge(
        &[
            "keygen".as_ref(),
            "--if-missing".as_ref(),
            "--out".as_ref(),
            path.as_os_str(),
        ],
        &[],
    );
    assert!(ok && err.contains("keeping the outbox key"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), key, "the key is untouched");
}

/// Starts the edge on `SIMULATED_WITHOUT_KEY` with this key file and data dir; it must refuse.
fn refused_with_key(key: &std::path::Path, data: &std::path::Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edge.toml");
    std::fs::write(&config, SIMULATED_WITHOUT_KEY).unwrap();
    let (ok, err) = vigie_edge(
        &["run".as_ref(), "--config".as_ref(), config.as_os_str()],
        &[("VIGIE_EDGE_KEY_FILE", key), ("VIGIE_EDGE_DATA_DIR", data)],
    );
    assert!(!ok, "vigie-edge should refuse to start");
    err
}

#[test]
fn the_binary_refuses_a_missing_or_too_open_key_file_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = dir.path().join("pi.key");
    let err = refused_with_key(&key, &data);
    assert!(
        err.contains("pi.key") && err.contains("vigie-edge keygen --out"),
        "{err}"
    );
    assert!(keygen(&key).0);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = refused_with_key(&key, &data);
    assert!(err.contains("pi.key") && err.contains("chmod 600"), "{err}");
}

#[test]
fn the_binary_refuses_a_wrong_key_for_an_existing_outbox_and_never_reads_it_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (first, second) = (dir.path().join("first.key"), dir.path().join("second.key"));
    assert!(keygen(&first).0 && keygen(&second).0);
    {
        let key = vigie_edge::outbox::key::load(&first).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        vigie_edge::outbox::Store::open(&data, &key).unwrap();
    }
    let err = refused_with_key(&second, &data);
    assert!(
        err.contains("second.key") && err.contains("another key") && err.contains("unrecoverable"),
        "{err}"
    );
}
