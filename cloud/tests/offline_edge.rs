//! Offline mode through real processes (its own Mosquitto, a fresh PostgreSQL database, loopback
//! only): an outbox that hit its bound drops its oldest events with a gap record the cloud stores,
//! alerts on and acks past; and a Pi whose wall clock is a day behind has its events listed at the
//! cloud's time.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use support::*;

/// The example config with a small outbox bound.
fn bounded_config(dir: &Path, max_events: u64) -> PathBuf {
    let example =
        std::fs::read_to_string(workspace().join("edge/examples/simulated.toml")).unwrap();
    let text = example.replace(
        "create_key = true",
        &format!("create_key = true\nmax_events = {max_events}\nwhen_full = \"drop_oldest\""),
    );
    assert_ne!(
        text, example,
        "the example config has an [outbox] create_key line"
    );
    let path = dir.join("bounded.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `vigie-edge` on `config` with `env`; the base URL of its HTTP port.
fn start_edge(dir: &Path, config: &Path, env: &[(&str, String)]) -> (Proc, String) {
    let port = free_port();
    let mut cmd = Command::new(bin("vigie-edge"));
    cmd.arg("run")
        .arg("--config")
        .arg(config)
        .env("VIGIE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("VIGIE_EDGE_HTTP_LISTEN", format!("127.0.0.1:{port}"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut proc = Proc::spawn(
        "vigie-edge",
        cmd,
        &dir.join(format!("edge-{}.log", unique(""))),
    );
    let base = format!("http://127.0.0.1:{port}");
    proc.wait_until_ok(&format!("{base}/healthz"), Duration::from_secs(30));
    (proc, base)
}

fn time(v: &serde_json::Value) -> DateTime<Utc> {
    protocol::time::parse(v.as_str().expect("a time")).expect("RFC 3339")
}

#[test]
fn a_full_outbox_drops_its_oldest_events_and_the_cloud_records_the_gap_and_acks_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let mqtt = format!("mqtt://127.0.0.1:{}", broker.port);
    let db = PgDatabase::create();
    let prefix = unique("gap-");
    let cloud = Cloud::start(dir.path(), external_services(&db.url(), &mqtt, &prefix));
    cloud.add_user("admin", "admin", "correct horse battery");
    let token = cloud.login("admin", "correct horse battery");
    let stream = StreamClient::connect(&cloud.base, &token);
    let device = unique("pi");
    let config = bounded_config(dir.path(), 5);
    let data = dir.path().join(&device).display().to_string();
    let env = |mqtt_url: &str| {
        vec![
            ("VIGIE_EDGE_DEVICE_ID", device.clone()),
            ("VIGIE_EDGE_MQTT_URL", mqtt_url.to_owned()),
            ("VIGIE_EDGE_DATA_DIR", data.clone()),
            ("VIGIE_TOPIC_PREFIX", prefix.clone()),
        ]
    };

    // The link is down (nothing listens there): 12 events into an outbox bounded at 5.
    let dead = format!("mqtt://127.0.0.1:{}", free_port());
    let (mut edge, base) = start_edge(dir.path(), &config, &env(&dead));
    let agent = agent();
    for _ in 0..12 {
        let (status, body) = post_json(
            &agent,
            &format!("{base}/sim/button"),
            None,
            &serde_json::Value::Null,
        );
        assert_eq!(
            status, 201,
            "a full outbox still accepts new events: {body}"
        );
    }
    let (_, ready) = get_json(&agent, &format!("{base}/readyz"), None);
    assert_eq!(ready["queue_depth"], 5, "{ready}");
    assert_eq!(ready["dropped_events"], 7, "{ready}");

    // The link returns (the same outbox, the right broker): the gap record and the 5 kept events.
    edge.kill9();
    let (_edge, base) = start_edge(dir.path(), &config, &env(&mqtt));
    wait_for("the outbox drained", Duration::from_secs(60), || {
        let (_, ready) = get_json(&agent, &format!("{base}/readyz"), None);
        ready["queue_depth"] == 0
    });
    wait_for(
        "the device acked past the gap, with 7 lost and none missing",
        Duration::from_secs(60),
        || {
            cloud.device(&token, &device).is_some_and(|d| {
                d["acked_seq"] == 12 && d["lost_events"] == 7 && d["missing_events"] == 0
            })
        },
    );
    let stored: Vec<i64> = pg_device_events(&db.url(), &device)
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(
        stored,
        (8..=12).collect::<Vec<_>>(),
        "the 5 newest, each once"
    );
    assert_eq!(metric(&cloud, "vigie_device_events_dropped_total"), 7);
    wait_for("a gap alert on the stream", Duration::from_secs(10), || {
        stream.frames.lock().unwrap().iter().any(|f| {
            f["type"] == "gap"
                && f["data"]["device"] == device.as_str()
                && f["data"]["first_seq"] == 1
                && f["data"]["last_seq"] == 7
                && f["data"]["reason"] == "max_events"
        })
    });
}

#[test]
fn a_pi_whose_clock_is_a_day_behind_has_its_events_listed_at_the_cloud_time() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let mqtt = format!("mqtt://127.0.0.1:{}", broker.port);
    let db = PgDatabase::create();
    let prefix = unique("clock-");
    let cloud = Cloud::start(dir.path(), external_services(&db.url(), &mqtt, &prefix));
    cloud.add_user("admin", "admin", "correct horse battery");
    let token = cloud.login("admin", "correct horse battery");
    let device = unique("pi");
    let device_token = cloud.add_device(&device);
    let day_ms: i64 = 86_400_000;
    let (_edge, base) = start_edge(
        dir.path(),
        &workspace().join("edge/examples/simulated.toml"),
        &[
            ("VIGIE_EDGE_DEVICE_ID", device.clone()),
            ("VIGIE_EDGE_MQTT_URL", mqtt.clone()),
            ("VIGIE_EDGE_API_URL", cloud.base.clone()),
            ("VIGIE_EDGE_TOKEN", device_token),
            (
                "VIGIE_EDGE_DATA_DIR",
                dir.path().join(&device).display().to_string(),
            ),
            ("VIGIE_TOPIC_PREFIX", prefix),
            ("VIGIE_EDGE_FAKE_CLOCK_SKEW_MS", (-day_ms).to_string()),
        ],
    );
    // The status reports the measured offset (about +1 day) and a reachable API.
    wait_for(
        "the measured offset in the device view",
        Duration::from_secs(30),
        || {
            cloud.device(&token, &device).is_some_and(|d| {
                d["api_reachable"] == true
                    && d["clock_offset_ms"]
                        .as_i64()
                        .is_some_and(|o| (o - day_ms).abs() < 5_000)
            })
        },
    );
    let agent = agent();
    for kind in ["button", "motion", "button"] {
        let (status, _) = post_json(
            &agent,
            &format!("{base}/sim/{kind}"),
            None,
            &serde_json::Value::Null,
        );
        assert_eq!(status, 201);
    }
    wait_for("3 events stored", Duration::from_secs(30), || {
        pg_device_events(&db.url(), &device).len() == 3
    });
    let items = list_all_events(&cloud.base, &token, 10);
    let mine: Vec<&serde_json::Value> = items
        .iter()
        .filter(|i| i["device"] == device.as_str())
        .collect();
    assert_eq!(mine.len(), 3);
    for item in &mine {
        let occurred = time(&item["occurred_at"]);
        let corrected = time(&item["corrected_at"]);
        let received = time(&item["received_at"]);
        assert!(
            ((received - occurred).num_milliseconds() - day_ms).abs() < 5_000,
            "the device's own time is kept, a day behind: {item}"
        );
        assert!(
            (received - corrected).num_milliseconds().abs() < 5_000,
            "the corrected time is the cloud's: {item}"
        );
    }
    // Listed newest first by the corrected time: seq 3, 2, 1.
    let seqs: Vec<u64> = mine.iter().map(|i| i["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [3, 2, 1]);
    // A filter on the last minute finds them (their device time is a day old).
    let since = protocol::time::to_millis(Utc::now() - chrono::Duration::minutes(1));
    let url = format!(
        "{}/api/events?device={device}&since={}",
        cloud.base,
        encode(&protocol::time::format(since))
    );
    let (status, page) = get_json(&agent, &url, Some(&token));
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 3, "{page}");
}
