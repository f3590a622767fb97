//! Issue 12, "A forged ack wipes a Pi's queue": an ack published on `system/{device}/ack` by anyone
//! who can reach a broker without ACL must not delete a Pi's events. Against a Mosquitto the test
//! starts itself with no ACL (so the edge's own check is what refuses it), a real `vigie-edge`
//! receives a retained forged ack far above any seq it issued: it refuses and counts it, and every
//! event is still published and kept. And a wiped Pi (its outbox deleted, same device id) continues
//! above the cloud's `acked_seq`, learnt over the authenticated API, with every event stored. The
//! refusals reach the console as the device's attack telemetry, summed over the edge's restarts.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use support::*;

/// Messages a client received, as (topic, JSON payload).
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// A client of the test's broker, anonymous (the broker has no ACL): the client and what it receives.
fn mqtt_client(port: u16, subscribe: Option<&str>) -> (Client, Received) {
    let mut options = MqttOptions::new(unique("forger-"), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(options, 64);
    if let Some(filter) = subscribe {
        client.subscribe(filter, QoS::AtLeastOnce).unwrap();
    }
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    std::thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let body = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                    sink.lock().unwrap().push((p.topic.clone(), body));
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    (client, received)
}

fn readyz(edge: &Edge) -> Value {
    get_json(&agent(), &format!("{}/readyz", edge.base), None).1
}

#[test]
fn a_retained_forged_mqtt_ack_above_every_issued_seq_is_refused_counted_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let mqtt = format!("mqtt://127.0.0.1:{}", broker.port);
    let prefix = unique("forged-");
    let device = unique("pi-");
    let (_watcher, seen) = mqtt_client(broker.port, Some(&format!("{prefix}/sensors/#")));
    let mut edge = Edge::start(dir.path(), &device, &mqtt, &prefix);
    let agent = agent();

    let delivered = |ids: &[String]| {
        let seen = seen.lock().unwrap();
        ids.iter()
            .all(|id| seen.iter().any(|(_, body)| body["id"] == id.as_str()))
    };
    let mut fired: Vec<(String, u64)> = (0..2).map(|_| edge.fire(&agent, "button")).collect();
    let ids = |fired: &[(String, u64)]| fired.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
    wait_for(
        "the first events on the broker",
        Duration::from_secs(20),
        || delivered(&ids(&fired)),
    );

    // The attack: one retained message, as any client of a broker without ACL can publish.
    let (forger, _) = mqtt_client(broker.port, None);
    let forged = format!(r#"{{"schema_version":1,"device":"{device}","acked_seq":1000000}}"#);
    forger
        .publish(
            format!("{prefix}/system/{device}/ack"),
            QoS::AtLeastOnce,
            true,
            forged.into_bytes(),
        )
        .unwrap();
    wait_for(
        "the edge to refuse the forged ack",
        Duration::from_secs(20),
        || readyz(&edge)["refused_acks"] == 1,
    );

    // The events after it are kept, published and numbered on.
    fired.extend((0..5).map(|_| edge.fire(&agent, "motion")));
    assert_eq!(
        fired.iter().map(|(_, seq)| *seq).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<_>>(),
        "the forged ack moved no seq"
    );
    wait_for("every event on the broker", Duration::from_secs(20), || {
        delivered(&ids(&fired))
    });
    let ready = readyz(&edge);
    assert_eq!(ready["queue_depth"], 7, "nothing was deleted: {ready}");

    // A restart gets the retained forged ack again at connect: refused again, still nothing lost.
    edge.restart();
    wait_for(
        "the restarted edge to refuse the retained forged ack",
        Duration::from_secs(20),
        || readyz(&edge)["refused_acks"] == 1,
    );
    assert_eq!(readyz(&edge)["queue_depth"], 7);
    let (id, seq) = edge.fire(&agent, "button");
    assert_eq!(seq, 8);
    fired.push((id, seq));
    wait_for(
        "the event after the restart on the broker",
        Duration::from_secs(20),
        || delivered(&ids(&fired)),
    );
    assert_eq!(readyz(&edge)["queue_depth"], 8);

    let log = edge_log(dir.path(), &device);
    let refusals = log
        .lines()
        .filter(|l| l.contains("ack refused") && l.contains("\"acked_seq\":1000000"))
        .count();
    assert_eq!(
        refusals, 2,
        "each refusal logged once, with its acked_seq:\n{log}"
    );
    assert!(
        log.lines()
            .filter(|l| l.contains("ack refused"))
            .all(|l| l.contains(&device) && l.contains("highest_issued")),
        "the refusal names the device and the highest seq issued:\n{log}"
    );
    eprintln!(
        "forged ack 1000000 refused twice (live and retained at restart); 8 events kept and published"
    );
}

/// Every log line of `device`'s edge runs in `dir`.
fn edge_log(dir: &std::path::Path, device: &str) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(&format!("edge-{device}-")) {
            all.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    all
}

#[test]
fn a_wiped_pi_with_the_same_id_continues_above_the_clouds_acked_seq_and_every_event_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = PgDatabase::create();
    let prefix = unique("wiped-");
    let (cloud, admin) = cloud_with_admin(dir.path(), &db.url(), 1883, &prefix);
    let device = unique("pi-");
    let token = cloud.add_device(&device);
    let mut edge = Edge::start_with(
        dir.path(),
        &device,
        "mqtt://127.0.0.1:1883",
        &prefix,
        vec![
            ("VIGIE_EDGE_API_URL".into(), cloud.base.clone()),
            ("VIGIE_EDGE_TOKEN".into(), token),
        ],
    );
    let agent = agent();
    let before: Vec<(String, u64)> = (0..5).map(|_| edge.fire(&agent, "button")).collect();
    assert_eq!(before.last().unwrap().1, 5);
    assert_eq!(
        wait_until_drained(&cloud, &admin, &edge, &db.url(), Duration::from_secs(60)),
        5
    );

    // The Pi is wiped (re-flashed): its outbox and its demo key are gone; same device id.
    edge.proc.kill9();
    let data = dir.path().join(&device);
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::remove_file(data.with_extension("key")).unwrap();
    edge.restart();
    let after: Vec<(String, u64)> = (0..3).map(|_| edge.fire(&agent, "motion")).collect();
    assert_eq!(
        after.iter().map(|(_, seq)| *seq).collect::<Vec<_>>(),
        [6, 7, 8],
        "the new outbox continues after the cloud's acked_seq 5"
    );
    assert_eq!(
        wait_until_drained(&cloud, &admin, &edge, &db.url(), Duration::from_secs(60)),
        8
    );
    let mut fired = Fired::default();
    for (id, seq) in before.into_iter().chain(after) {
        fired.record(Fire::Accepted(id, seq));
    }
    let stored = assert_exactly_once(&db.url(), &device, &fired);
    assert_eq!(stored.len(), 8);
    let log = edge_log(dir.path(), &device);
    assert!(
        log.contains("continuing after them so that no seq is reused"),
        "the wiped Pi says what it did:\n{log}"
    );
    eprintln!("wiped Pi: seqs 6..=8 after the cloud's acked_seq 5; 8 events stored once each");
}

#[test]
fn refused_acks_show_in_the_devices_view_summed_over_its_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = PgDatabase::create();
    let prefix = unique("refused-");
    let (cloud, admin) = cloud_with_admin(dir.path(), &db.url(), 1883, &prefix);
    let device = unique("pi-");
    let mut edge = Edge::start(dir.path(), &device, "mqtt://127.0.0.1:1883", &prefix);
    let agent = agent();
    edge.fire(&agent, "button");
    let (forger, _) = mqtt_client(1883, None);
    let forge = || {
        let forged = format!(r#"{{"schema_version":1,"device":"{device}","acked_seq":1000000}}"#);
        forger
            .publish(
                format!("{prefix}/system/{device}/ack"),
                QoS::AtLeastOnce,
                false,
                forged.into_bytes(),
            )
            .unwrap();
    };
    let refused_in_view = |n: u64| {
        cloud.device(&admin, &device).is_some_and(|d| {
            d["security"]["refused_acks"] == n && d["security"]["last_at"].is_string()
        })
    };
    wait_for("the device in the cloud", Duration::from_secs(20), || {
        cloud.device(&admin, &device).is_some()
    });
    forge();
    forge();
    wait_for("the edge to refuse both", Duration::from_secs(20), || {
        readyz(&edge)["refused_acks"] == 2
    });
    wait_for(
        "2 refused acks in the device's view (from its status)",
        Duration::from_secs(20),
        || refused_in_view(2),
    );

    // The edge counts since it started: after a restart its count begins again, and the cloud
    // adds what it reports to what was seen before.
    edge.restart();
    forge();
    wait_for(
        "the restarted edge to refuse one",
        Duration::from_secs(20),
        || readyz(&edge)["refused_acks"] == 1,
    );
    wait_for(
        "3 refused acks in the device's view",
        Duration::from_secs(20),
        || refused_in_view(3),
    );
    // A later status with the same count adds nothing.
    let seen = cloud.device(&admin, &device).unwrap()["last_seen"].clone();
    wait_for("the next heartbeat", Duration::from_secs(20), || {
        cloud
            .device(&admin, &device)
            .is_some_and(|d| d["last_seen"] != seen)
    });
    assert!(refused_in_view(3), "{:?}", cloud.device(&admin, &device));
}
