//! End to end through real processes: simulated sensors on two `vigie-edge`s → MQTT → `vigie-cloud`
//! → database → `GET /api/events` and every WebSocket client. Once against the machine's Mosquitto
//! and PostgreSQL, once on the embedded defaults (rumqttd + SQLite).

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use support::*;

const EVENTS: usize = 1000;

/// Fires `EVENTS` simulated events over the edges from a few threads; returns the accepted ids.
fn fire_all(edges: &[Edge]) -> Vec<(String, String, u64)> {
    let per_edge = EVENTS / edges.len();
    std::thread::scope(|scope| {
        let handles: Vec<_> = edges
            .iter()
            .flat_map(|edge| {
                (0..2).map(move |half| {
                    scope.spawn(move || {
                        let agent = agent();
                        (0..per_edge / 2)
                            .map(|i| {
                                let kind = if (i + half) % 2 == 0 {
                                    "button"
                                } else {
                                    "motion"
                                };
                                let (id, seq) = edge.fire(&agent, kind);
                                (edge.device.clone(), id, seq)
                            })
                            .collect::<Vec<_>>()
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn check_everything_arrived(cloud: &Cloud, token: &str, stream: &StreamClient, edges: &[Edge]) {
    let accepted = fire_all(edges);
    assert_eq!(accepted.len(), EVENTS);
    let accepted_ids: HashSet<String> = accepted.iter().map(|(_, id, _)| id.clone()).collect();
    assert_eq!(
        accepted_ids.len(),
        EVENTS,
        "every accepted event has its own id"
    );

    wait_for(
        "every event on the WebSocket",
        Duration::from_secs(120),
        || stream.event_ids().len() >= EVENTS,
    );
    let streamed = stream.event_ids();
    assert_eq!(
        streamed.len(),
        EVENTS,
        "each newly stored event is pushed once"
    );
    assert_eq!(streamed.into_iter().collect::<HashSet<_>>(), accepted_ids);

    let listed = list_all_events(&cloud.base, token, 137);
    assert_eq!(listed.len(), EVENTS);
    let listed_ids: HashSet<String> = listed
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed_ids, accepted_ids);
    let mut seqs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in &listed {
        for field in [
            "id",
            "device",
            "seq",
            "sensor",
            "kind",
            "occurred_at",
            "received_at",
        ] {
            assert!(!e[field].is_null(), "item without {field}: {e}");
        }
        seqs.entry(e["device"].as_str().unwrap().to_owned())
            .or_default()
            .push(e["seq"].as_u64().unwrap());
    }
    for edge in edges {
        let mut s = seqs.remove(&edge.device).unwrap_or_default();
        s.sort_unstable();
        let per_edge = (EVENTS / edges.len()) as u64;
        assert_eq!(
            s,
            (1..=per_edge).collect::<Vec<_>>(),
            "{}'s seqs",
            edge.device
        );
    }

    // Each Pi coming online was pushed as a status change.
    let frames = stream.frames.lock().unwrap().clone();
    for edge in edges {
        assert!(
            frames.iter().any(|f| f["type"] == "device_status"
                && f["data"]["id"] == edge.device.as_str()
                && f["data"]["state"] == "online"),
            "no online status frame for {}",
            edge.device
        );
    }

    // The cloud confirmed every commit: each device's acked seq reaches its last event.
    let agent = agent();
    wait_for("acked_seq of every device", Duration::from_secs(30), || {
        let (_, devices) = get_json(&agent, &format!("{}/api/devices", cloud.base), Some(token));
        edges.iter().all(|edge| {
            devices.as_array().unwrap().iter().any(|d| {
                d["id"] == edge.device.as_str()
                    && d["acked_seq"].as_u64() == Some((EVENTS / edges.len()) as u64)
                    && d["state"] == "online"
            })
        })
    });
}

#[test]
fn a_thousand_events_from_two_pis_reach_postgresql_the_api_and_the_websocket_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = PgDatabase::create();
    let prefix = unique("e2e-");
    let mut cloud = Cloud::start(
        dir.path(),
        external_services(&db.url(), "mqtt://127.0.0.1:1883", &prefix),
    );
    cloud.add_user("admin", "admin", "correct horse battery");
    let token = cloud.login("admin", "correct horse battery");
    let stream = StreamClient::connect(&cloud.base, &token);
    let edges: Vec<Edge> = (1..=2)
        .map(|n| {
            Edge::start(
                dir.path(),
                &format!("{}-{n}", unique("pi")),
                "mqtt://127.0.0.1:1883",
                &prefix,
            )
        })
        .collect();

    check_everything_arrived(&cloud, &token, &stream, &edges);
    assert_eq!(
        db.event_counts(),
        (EVENTS as i64, EVENTS as i64),
        "exactly one row per event"
    );
    cloud.proc.assert_running();
}

#[test]
fn a_thousand_events_from_two_pis_on_the_embedded_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let cloud = Cloud::start(
        dir.path(),
        vec![("VIGIE_MQTT_LISTEN".into(), format!("127.0.0.1:{mqtt_port}"))],
    );
    cloud.add_user("admin", "admin", "correct horse battery");
    let token = cloud.login("admin", "correct horse battery");
    let stream = StreamClient::connect(&cloud.base, &token);
    let mqtt = format!("mqtt://127.0.0.1:{mqtt_port}");
    let edges: Vec<Edge> = (1..=2)
        .map(|n| Edge::start_provisioned(dir.path(), &cloud, &format!("pi-{n}"), &mqtt, ""))
        .collect();

    check_everything_arrived(&cloud, &token, &stream, &edges);
    assert!(dir.path().join("cloud/vigie.sqlite3").exists());
}
