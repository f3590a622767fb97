//! Bad MQTT input never stops the ingest: malformed JSON, unknown kinds, wrong or foreign topics,
//! oversized payloads and bad device ids are acked, logged and counted (in `/metrics`, and in the
//! view of a device that has a row), and the next valid event is stored.

mod support;

use std::time::Duration;

use rumqttc::{Client, MqttOptions, QoS};
use serde_json::json;
use support::*;

#[test]
fn invalid_messages_are_counted_and_the_stream_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let cloud = Cloud::start(
        dir.path(),
        vec![("VIGIE_MQTT_LISTEN".into(), format!("127.0.0.1:{mqtt_port}"))],
    );
    cloud.add_user("admin", "admin", "correct horse battery");
    let token = cloud.login("admin", "correct horse battery");

    // The embedded broker authenticates every client: this one is a provisioned device (client id
    // = username); with no ACL it may still publish on other devices' topics, as a bad actor would.
    let publisher = unique("bad-");
    cloud.add_device(&publisher);
    let mut options = MqttOptions::new(&publisher, "127.0.0.1", mqtt_port);
    options.set_credentials(&publisher, cloud.mqtt_password(&publisher));
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut connection) = Client::new(options, 64);
    let pump = std::thread::spawn(move || {
        for event in connection.iter() {
            if event.is_err() {
                break;
            }
        }
    });
    let valid = |seq: u64, kind: &str| {
        json!({
            "schema_version": 1, "id": uuid::Uuid::now_v7(), "device": "pi-9", "seq": seq,
            "sensor": "mat-1", "kind": kind, "occurred_at": "2026-11-27T13:00:00.000Z"
        })
    };
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("sensors/pi-9/button/pressed", b"{ not json".to_vec()),
        (
            "sensors/pi-9/button/pressed",
            valid(1, "smoke").to_string().into_bytes(),
        ),
        (
            "sensors/pi-9/photo/motion",
            valid(1, "button_pressed").to_string().into_bytes(),
        ),
        (
            "sensors/pi-8/button/pressed",
            valid(1, "button_pressed").to_string().into_bytes(),
        ),
        (
            "sensors/PI_9/button/pressed",
            valid(1, "button_pressed").to_string().into_bytes(),
        ),
        ("sensors/pi-9/button/pressed", vec![b' '; 20_000]),
        ("system/pi-9/status", b"[]".to_vec()),
    ];
    for (topic, payload) in &bad {
        client
            .publish(*topic, QoS::AtLeastOnce, false, payload.clone())
            .unwrap();
    }
    let good = valid(1, "button_pressed");
    client
        .publish(
            "sensors/pi-9/button/pressed",
            QoS::AtLeastOnce,
            false,
            good.to_string(),
        )
        .unwrap();

    let agent = agent();
    wait_for(
        "the valid event after the bad ones",
        Duration::from_secs(30),
        || {
            let (_, page) = get_json(&agent, &format!("{}/api/events", cloud.base), Some(&token));
            page["items"]
                .as_array()
                .is_some_and(|items| items.len() == 1)
        },
    );
    let (_, page) = get_json(&agent, &format!("{}/api/events", cloud.base), Some(&token));
    assert_eq!(page["items"][0]["id"], good["id"]);
    // At least once: a redelivery after a reconnect may count a bad message twice, never zero times.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut invalid = metric(&cloud, "vigie_ingest_invalid_total");
    while invalid < bad.len() as u64 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        invalid = metric(&cloud, "vigie_ingest_invalid_total");
    }
    assert!(
        invalid >= bad.len() as u64,
        "{invalid} of {} bad messages counted as invalid",
        bad.len()
    );
    assert_eq!(metric(&cloud, "vigie_ingest_inserted_total"), 1);

    // pi-9 has a row now: what is refused on its topics shows as its attack telemetry, the
    // console's warning (counts for ids without a row are only in /metrics).
    let before = cloud.device(&token, "pi-9").unwrap()["security"]["invalid_messages"]
        .as_u64()
        .unwrap();
    client
        .publish(
            "sensors/pi-9/button/pressed",
            QoS::AtLeastOnce,
            false,
            "{ not json",
        )
        .unwrap();
    wait_for(
        "the refused message in pi-9's view",
        Duration::from_secs(10),
        || {
            cloud.device(&token, "pi-9").is_some_and(|d| {
                d["security"]["invalid_messages"].as_u64() > Some(before)
                    && d["security"]["last_at"].is_string()
            })
        },
    );
    client.disconnect().unwrap();
    pump.join().unwrap();
}
