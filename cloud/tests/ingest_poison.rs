//! One device's bad message never stalls the ingest for every device (issue 12), through the real
//! `vigie-cloud` on PostgreSQL:
//! - a message the store refuses inside a batch of 120 from two devices (the fault hook
//!   `VIGIE_FAULT_REFUSE_EVENT_ID`, as `Invalid` and as `Internal`) is bisected out: it alone is
//!   acked without being stored and counted under its device, every other event is stored, and
//!   later events still flow;
//! - an envelope with `seq` 2^63 (and a gap record up to 2^63) is refused by validation and other
//!   devices' events are stored, also after a restart on the same persistent session;
//! - overlapping gap records near the 2^62 bound leave `GET /api/devices` answering 200;
//! - a device's clip announcement naming another device's event gives that event no clip, and
//!   one naming 65 events is refused.
//!
//! The batch test runs its own Mosquitto (`fixtures/mosquitto-plain.conf.in`): the machine's one
//! sends a client at most 20 unacked QoS 1 messages (`max_inflight_messages`), so a batch held
//! back for its commit never grows past 20 there.

mod support;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use rumqttc::{Client, MqttOptions, QoS};
use serde_json::{json, Value};
use support::*;

const MAX_SEQ: u64 = 1 << 62;

/// A connected MQTT client whose event loop runs on its own thread.
struct Publisher {
    client: Client,
    pump: Option<std::thread::JoinHandle<()>>,
}

impl Publisher {
    fn connect(port: u16) -> Publisher {
        let mut options = MqttOptions::new(unique("poison-"), "127.0.0.1", port);
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut connection) = Client::new(options, 512);
        let pump = std::thread::spawn(move || {
            for event in connection.iter() {
                if event.is_err() {
                    break;
                }
            }
        });
        Publisher {
            client,
            pump: Some(pump),
        }
    }

    fn publish(&self, topic: String, payload: &Value) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.to_string())
            .unwrap();
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.client.disconnect();
        if let Some(pump) = self.pump.take() {
            let _ = pump.join();
        }
    }
}

fn envelope(id: uuid::Uuid, device: &str, seq: u64) -> Value {
    json!({
        "schema_version": 1, "id": id, "device": device, "seq": seq,
        "sensor": "mat-1", "kind": "button_pressed", "occurred_at": "2026-12-03T13:00:00.000Z"
    })
}

fn gap_record(device: &str, first_seq: u64, last_seq: u64) -> Value {
    json!({
        "schema_version": 1, "device": device, "first_seq": first_seq, "last_seq": last_seq,
        "reason": "max_events", "oldest_at": "2026-12-03T12:00:00.000Z",
        "newest_at": "2026-12-03T12:30:00.000Z", "dropped_at": "2026-12-03T12:31:00.000Z"
    })
}

/// A series of `/metrics` with one label (`name{label="value"}`); 0 when it is not there.
fn labelled_metric(cloud: &Cloud, name: &str, label: &str, value: &str) -> u64 {
    let mut resp = agent()
        .get(&format!("{}/metrics", cloud.ops))
        .call()
        .unwrap();
    let text = resp.body_mut().read_to_string().unwrap();
    let series = format!("{name}{{{label}=\"{value}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |n| n.parse().unwrap())
}

/// The largest `messages` field of the cloud's log lines about bisecting a refused batch.
fn largest_bisected_batch(cloud: &Cloud) -> u64 {
    let mut largest = 0;
    for entry in std::fs::read_dir(&cloud.dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("cloud-") && name.ends_with(".log")) {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let Ok(log) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let fields = &log["fields"];
            if fields["message"]
                .as_str()
                .is_some_and(|m| m.contains("bisecting"))
            {
                largest = largest.max(fields["messages"].as_u64().unwrap_or(0));
            }
        }
    }
    largest
}

/// `cloud.restart()`, printing the cloud's logs if it does not come back.
fn restart_showing_its_log(cloud: &mut Cloud) {
    let restarted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cloud.restart()));
    if let Err(panic) = restarted {
        for entry in std::fs::read_dir(&cloud.dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "log") {
                let log = std::fs::read_to_string(&path).unwrap_or_default();
                eprintln!("--- {}\n{log}", path.display());
            }
        }
        std::panic::resume_unwind(panic);
    }
}

/// 120 events of two devices in one batch (held back behind a row lock on their devices), one of
/// which the store refuses as `refuse_as`.
fn a_refused_event_in_a_batch_is_bisected_out(refuse_as: &str) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let db = PgDatabase::create();
    let prefix = unique("poison-");
    let refused = uuid::Uuid::now_v7();
    let mut env = external_services(
        &db.url(),
        &format!("mqtt://127.0.0.1:{}", broker.port),
        &prefix,
    );
    env.push(("VIGIE_FAULT_REFUSE_EVENT_ID".into(), refused.to_string()));
    env.push(("VIGIE_FAULT_REFUSE_AS".into(), refuse_as.into()));
    let cloud = Cloud::start(dir.path(), env);
    cloud.add_user("admin", "admin", "correct horse battery");
    let token = cloud.login("admin", "correct horse battery");
    let publisher = Publisher::connect(broker.port);
    let topic = |device: &str| format!("{prefix}/sensors/{device}/button/pressed");
    let (a, b) = ("dev-a", "dev-b");

    // Seq 1 of each device makes their rows; then a transaction of the test's own locks them, so
    // the ingest's next commit waits and everything published meanwhile gathers in one batch.
    for device in [a, b] {
        publisher.publish(topic(device), &envelope(uuid::Uuid::now_v7(), device, 1));
    }
    wait_for("seq 1 of both devices", Duration::from_secs(30), || {
        [a, b]
            .iter()
            .all(|d| pg_device_events(&db.url(), d).len() == 1)
    });
    let mut lock = PgConnection::establish(&db.url()).unwrap();
    lock.batch_execute(&format!(
        "BEGIN; SELECT id FROM devices WHERE id IN ('{a}', '{b}') FOR UPDATE;"
    ))
    .unwrap();
    let received_before = metric(&cloud, "vigie_ingest_received_total");
    for seq in 2..=61 {
        publisher.publish(topic(a), &envelope(uuid::Uuid::now_v7(), a, seq));
        let id = if seq == 31 {
            refused
        } else {
            uuid::Uuid::now_v7()
        };
        publisher.publish(topic(b), &envelope(id, b, seq));
    }
    wait_for(
        "the 120 events received while the commit waits",
        Duration::from_secs(30),
        || metric(&cloud, "vigie_ingest_received_total") >= received_before + 120,
    );
    assert_eq!(
        pg_device_events(&db.url(), a).len(),
        1,
        "the commit waits for the lock"
    );
    let commits_before = metric(&cloud, "vigie_ingest_commits_total");
    lock.batch_execute("COMMIT").unwrap();

    wait_for(
        "every event but the refused one stored",
        Duration::from_secs(60),
        || pg_device_events(&db.url(), a).len() == 61 && pg_device_events(&db.url(), b).len() == 60,
    );
    let b_events = pg_device_events(&db.url(), b);
    assert!(b_events.iter().all(|e| e.id != refused.to_string()));
    assert!(b_events.iter().all(|e| e.seq != 31));
    let batch = largest_bisected_batch(&cloud);
    let commits = metric(&cloud, "vigie_ingest_commits_total") - commits_before;
    let failures = metric(&cloud, "vigie_ingest_commit_failures_total");
    eprintln!(
        "refused as {refuse_as}: a batch of {batch} messages bisected; {commits} commits \
         succeeded (the lone one held by the lock included), {failures} failed"
    );
    assert!(
        batch >= 100,
        "the refusal came inside a batch of at least 100 messages (largest bisected: {batch})"
    );
    wait_for("the refusal counted", Duration::from_secs(10), || {
        labelled_metric(&cloud, "vigie_ingest_invalid_total", "device", b) >= 1
    });
    assert_eq!(
        labelled_metric(&cloud, "vigie_ingest_invalid_total", "device", b),
        1
    );
    assert_eq!(
        labelled_metric(&cloud, "vigie_ingest_invalid_total", "device", a),
        0
    );

    // Later events still flow, and the refused seq shows as missing, never as passed.
    publisher.publish(topic(a), &envelope(uuid::Uuid::now_v7(), a, 62));
    publisher.publish(topic(b), &envelope(uuid::Uuid::now_v7(), b, 62));
    wait_for(
        "the events after the bisection",
        Duration::from_secs(30),
        || pg_device_events(&db.url(), a).len() == 62 && pg_device_events(&db.url(), b).len() == 61,
    );
    let view_a = cloud.device(&token, a).unwrap();
    let view_b = cloud.device(&token, b).unwrap();
    assert_eq!(view_a["acked_seq"], 62, "{view_a}");
    assert_eq!(
        (&view_b["acked_seq"], &view_b["missing_events"]),
        (&json!(30), &json!(1)),
        "{view_b}"
    );
    assert_eq!(
        labelled_metric(&cloud, "vigie_ingest_invalid_total", "device", b),
        1,
        "counted once"
    );
}

#[test]
fn an_event_the_store_refuses_as_invalid_inside_a_batch_of_120_from_two_devices_is_the_only_one_not_stored(
) {
    a_refused_event_in_a_batch_is_bisected_out("invalid");
}

#[test]
fn an_event_the_store_fails_twice_with_an_internal_error_inside_a_batch_of_120_is_the_only_one_not_stored(
) {
    a_refused_event_in_a_batch_is_bisected_out("internal");
}

#[test]
fn an_envelope_with_seq_2_pow_63_is_refused_and_other_devices_events_still_flow_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = PgDatabase::create();
    let prefix = unique("poison-");
    let mut cloud = Cloud::start(
        dir.path(),
        external_services(&db.url(), "mqtt://127.0.0.1:1883", &prefix),
    );
    let publisher = Publisher::connect(1883);
    let event_topic = |device: &str| format!("{prefix}/sensors/{device}/button/pressed");
    let (bad, good) = ("dev-x", "dev-y");

    publisher.publish(
        event_topic(bad),
        &envelope(uuid::Uuid::now_v7(), bad, 1 << 63),
    );
    publisher.publish(
        format!("{prefix}/system/{bad}/gap"),
        &gap_record(bad, 1, 1 << 63),
    );
    publisher.publish(
        event_topic(bad),
        &envelope(uuid::Uuid::now_v7(), bad, MAX_SEQ + 1),
    );
    for seq in 1..=5 {
        publisher.publish(
            event_topic(good),
            &envelope(uuid::Uuid::now_v7(), good, seq),
        );
    }
    wait_for("the other device's events", Duration::from_secs(30), || {
        pg_device_events(&db.url(), good).len() == 5
    });
    wait_for(
        "the three refusals counted",
        Duration::from_secs(10),
        || labelled_metric(&cloud, "vigie_ingest_invalid_total", "device", bad) >= 3,
    );
    assert!(pg_device_events(&db.url(), bad).is_empty());

    // Acked, so the persistent session holds nothing back after a restart.
    restart_showing_its_log(&mut cloud);
    publisher.publish(event_topic(good), &envelope(uuid::Uuid::now_v7(), good, 6));
    publisher.publish(event_topic(bad), &envelope(uuid::Uuid::now_v7(), bad, 1));
    wait_for("events after the restart", Duration::from_secs(30), || {
        pg_device_events(&db.url(), good).len() == 6 && pg_device_events(&db.url(), bad).len() == 1
    });
    assert_eq!(
        labelled_metric(&cloud, "vigie_ingest_invalid_total", "device", bad),
        0,
        "nothing redelivered to refuse again (counters start at 0 on restart)"
    );
}

#[test]
fn the_device_list_answers_200_after_overlapping_gap_records_near_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let db = PgDatabase::create();
    let prefix = unique("poison-");
    let cloud = Cloud::start(
        dir.path(),
        external_services(&db.url(), "mqtt://127.0.0.1:1883", &prefix),
    );
    cloud.add_user("admin", "admin", "correct horse battery");
    let token = cloud.login("admin", "correct horse battery");
    let publisher = Publisher::connect(1883);
    let device = "dev-g";
    let records = [
        (1, MAX_SEQ),
        (2, MAX_SEQ),
        (3, MAX_SEQ),
        (4, MAX_SEQ),
        (MAX_SEQ, MAX_SEQ),
    ];
    for (first, last) in records {
        publisher.publish(
            format!("{prefix}/system/{device}/gap"),
            &gap_record(device, first, last),
        );
    }
    wait_for("the gap records stored", Duration::from_secs(30), || {
        metric(&cloud, "vigie_ingest_gap_records_total") == records.len() as u64
    });
    let (status, devices) = get_json(
        &agent(),
        &format!("{}/api/devices", cloud.base),
        Some(&token),
    );
    assert_eq!(status, 200, "{devices}");
    let view = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == device)
        .unwrap();
    assert_eq!(
        (
            &view["acked_seq"],
            &view["lost_events"],
            &view["missing_events"]
        ),
        (&json!(MAX_SEQ), &json!(MAX_SEQ), &json!(0)),
        "{view}"
    );
    assert_eq!(
        labelled_metric(&cloud, "vigie_device_lost_events", "device", device),
        MAX_SEQ
    );
}

#[test]
fn a_clip_announced_with_another_devices_event_gives_that_event_no_clip() {
    let dir = tempfile::tempdir().unwrap();
    let db = PgDatabase::create();
    let prefix = unique("poison-");
    let cloud = Cloud::start(
        dir.path(),
        external_services(&db.url(), "mqtt://127.0.0.1:1883", &prefix),
    );
    cloud.add_user("admin", "admin", "correct horse battery");
    let token = cloud.login("admin", "correct horse battery");
    let publisher = Publisher::connect(1883);
    let (attacker, victim) = ("dev-m", "dev-v");
    let (own_event, victim_event) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    publisher.publish(
        format!("{prefix}/sensors/{victim}/button/pressed"),
        &envelope(victim_event, victim, 1),
    );
    wait_for("the victim's event", Duration::from_secs(30), || {
        pg_device_events(&db.url(), victim).len() == 1
    });
    let clip = |event_ids: Vec<uuid::Uuid>| {
        json!({
            "schema_version": 1, "clip_id": uuid::Uuid::now_v7(), "device": attacker,
            "trigger_offsets_ms": event_ids.iter().map(|_| 5000).collect::<Vec<_>>(),
            "event_ids": event_ids,
            "started_at": "2026-12-03T13:00:00.000Z", "ended_at": "2026-12-03T13:00:15.000Z",
            "duration_ms": 15000, "size_bytes": 1234, "sha256": "ab".repeat(32),
            "codec": "h264", "width": 640, "height": 480, "fps": 25
        })
    };
    let linking = clip(vec![victim_event, own_event]);
    let too_many = clip((0..65).map(|_| uuid::Uuid::now_v7()).collect());
    let captured = format!("{prefix}/video/{attacker}/captured");
    publisher.publish(captured.clone(), &linking);
    publisher.publish(captured, &too_many);
    publisher.publish(
        format!("{prefix}/sensors/{attacker}/button/pressed"),
        &envelope(own_event, attacker, 1),
    );
    wait_for("the attacker's own event", Duration::from_secs(30), || {
        pg_device_events(&db.url(), attacker).len() == 1
    });
    wait_for("the 65-event clip refused", Duration::from_secs(10), || {
        labelled_metric(&cloud, "vigie_ingest_invalid_total", "device", attacker) >= 1
    });
    assert_eq!(metric(&cloud, "vigie_ingest_clips_announced_total"), 1);

    let agent = agent();
    let media = |event: uuid::Uuid| {
        let (status, body) = get_json(
            &agent,
            &format!("{}/api/events/{event}/media", cloud.base),
            Some(&token),
        );
        assert_eq!(status, 200, "{body}");
        body
    };
    assert!(
        media(victim_event)["clip"].is_null(),
        "{}",
        media(victim_event)
    );
    assert_eq!(media(own_event)["clip"]["id"], linking["clip_id"]);
    assert_eq!(
        media(own_event)["clip"]["event_ids"],
        json!([own_event]),
        "the clip's links leave out the other device's event"
    );
}
