//! A long link cut and its backlog, with the real binaries (a throwaway Mosquitto, a PostgreSQL
//! database of the test's own, `vigie-cloud`, one `vigie-edge`): the edge starts with its broker
//! unreachable and queues a large backlog on one device (5,000 events in `make test`, 100,000 in
//! `make soak`), fired by several clients at once; then it restarts with the broker and the cloud
//! API (and its device token), so the backlog goes through the bulk drain (`POST /api/events`).
//! Every event arrives once and in order (seqs 1..=N, `occurred_at` non-decreasing with `seq`) and
//! the outbox drains. The drain time is printed, not asserted.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// Clients firing the backlog at once.
const CLIENTS: usize = 4;

#[test]
fn a_backlog_queued_during_a_long_link_cut_arrives_once_and_in_order_once_the_link_is_back() {
    let backlog = scale(5_000, 100_000);
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let db = PgDatabase::create();
    let prefix = unique("backlog-");
    let (cloud, token) = cloud_with_admin(dir.path(), &db.url(), broker.port, &prefix);
    let device = unique("pi");
    let device_token = cloud.add_device(&device);

    // The link is cut: nothing listens on the edge's broker port.
    let nowhere = format!("mqtt://127.0.0.1:{}", free_port());
    let mut edge = Edge::start(dir.path(), &device, &nowhere, &prefix);
    let started = Instant::now();
    let fired = std::thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let edge = &edge;
                s.spawn(move || {
                    let agent = agent();
                    let mut fired = Fired::default();
                    // One sensor, so the activation order is the seq order.
                    for _ in (c..backlog).step_by(CLIENTS) {
                        let fire = fire_at(&agent, &edge.base, "button");
                        assert!(matches!(fire, Fire::Accepted(..)), "{fire:?}");
                        fired.record(fire);
                    }
                    fired
                })
            })
            .collect();
        let mut fired = Fired::default();
        for c in clients {
            fired.extend(c.join().unwrap());
        }
        fired
    });
    let queued_in = started.elapsed();
    assert_eq!(fired.accepted.len(), backlog);
    assert_eq!(edge.queue_depth(), backlog as u64);

    // The link is back, with the API for the bulk drain.
    let mqtt_before = metric(&cloud, "vigie_ingest_inserted_total");
    edge.set_env(
        "VIGIE_EDGE_MQTT_URL",
        Some(&format!("mqtt://127.0.0.1:{}", broker.port)),
    );
    edge.set_env("VIGIE_EDGE_API_URL", Some(&cloud.base));
    edge.set_env("VIGIE_EDGE_TOKEN", Some(&device_token));
    let restored = Instant::now();
    edge.restart();
    wait_for(
        "the backlog to drain",
        scale(Duration::from_secs(300), Duration::from_secs(1800)),
        || edge.queue_depth() == 0,
    );
    let drained_in = restored.elapsed();
    let stored = wait_until_drained(&cloud, &token, &edge, &db.url(), Duration::from_secs(60));
    let over_mqtt = metric(&cloud, "vigie_ingest_inserted_total") - mqtt_before;
    eprintln!(
        "backlog of {backlog} events: queued in {queued_in:?} by {CLIENTS} clients; drained in \
         {drained_in:?} after the link came back (edge restart included), {over_mqtt} over MQTT, \
         the rest over POST /api/events"
    );

    assert_eq!(stored as usize, backlog);
    let events = assert_exactly_once(&db.url(), &device, &fired);
    let disordered: Vec<_> = events
        .windows(2)
        .filter(|w| w[1].occurred_at < w[0].occurred_at)
        .take(10)
        .collect();
    assert!(
        disordered.is_empty(),
        "occurred_at goes back as seq goes up: {disordered:?}"
    );
    assert_eq!(db.event_counts(), (backlog as i64, backlog as i64));
    let (_, ready) = get_json(&agent(), &format!("{}/readyz", edge.base), None);
    assert_eq!(ready["components"]["api"]["state"], "ready", "{ready}");
}
