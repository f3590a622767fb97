//! A database outage on the event path. The test runs a PostgreSQL server of its own (the machine's
//! is not touched), a throwaway Mosquitto, `vigie-cloud` and one `vigie-edge`, and crashes the
//! database (`pg_ctl -m immediate stop`) with events flowing. While it is down nothing is acked: the
//! edge keeps every new event in its outbox, the cloud reports its ingest degraded and counts failed
//! commits. Once it is back every event the edge accepted is stored exactly once, the device's
//! committed `seq` covers all of them and the edge's outbox drains: nothing stays stuck.
//!
//! A second test stops the database cleanly (`pg_ctl -m fast stop`) for a while with events flowing
//! all along (5 s in `make test`, 60 s in `make soak`) and starts it again: the same holds.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// Events fired and stored before the outage.
const BEFORE: usize = 50;
/// Events fired while the database is down.
const DURING: usize = 100;
/// How long the test watches the stalled pipeline (database down, events pending) before restarting
/// the database.
const OUTAGE_WATCH: Duration = Duration::from_secs(5);

/// The edge's outbox depth (its `/readyz` body, whatever the status).
fn outbox_depth(agent: &ureq::Agent, edge: &Edge) -> u64 {
    let (_, body) = get_json(agent, &format!("{}/readyz", edge.base), None);
    body["queue_depth"]
        .as_u64()
        .unwrap_or_else(|| panic!("no queue_depth in the edge's /readyz: {body}"))
}

/// The cloud's `/readyz`: (HTTP status, the ingest component's state).
fn cloud_readiness(agent: &ureq::Agent, cloud: &Cloud) -> (u16, String) {
    let (status, body) = get_json(agent, &format!("{}/readyz", cloud.ops), None);
    let ingest = body["components"]["ingest"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, ingest)
}

/// The device as `GET /api/devices` shows it, if listed.
fn device(agent: &ureq::Agent, cloud: &Cloud, token: &str, id: &str) -> Option<Value> {
    let (status, devices) = get_json(agent, &format!("{}/api/devices", cloud.base), Some(token));
    if status != 200 {
        return None;
    }
    devices.as_array()?.iter().find(|d| d["id"] == id).cloned()
}

#[test]
fn while_the_database_is_down_nothing_is_acked_and_once_it_is_back_every_accepted_event_is_stored_exactly_once(
) {
    let dir = tempfile::tempdir().unwrap();
    let mut pg = LocalPostgres::start(dir.path());
    let broker = Mosquitto::start(dir.path());
    let mqtt = format!("mqtt://127.0.0.1:{}", broker.port);
    let prefix = unique("dbdown-");
    let cloud = Cloud::start(dir.path(), external_services(&pg.url(), &mqtt, &prefix));
    cloud.add_user("admin", "admin", "correct horse battery");
    let token = cloud.login("admin", "correct horse battery");
    let edge = Edge::start(dir.path(), &unique("pi"), &mqtt, &prefix);
    let agent = agent();
    let mut accepted: Vec<(String, u64)> = Vec::new();
    let mut fire = |n: usize| {
        for i in 0..n {
            // `fire` asserts 201: the event is durable in the edge's outbox.
            accepted.push(edge.fire(&agent, if i % 2 == 0 { "button" } else { "motion" }));
        }
    };

    // The database is up: events are stored and confirmed back to the edge.
    fire(BEFORE);
    wait_for(
        "the first events stored and confirmed to the edge",
        Duration::from_secs(60),
        || pg.event_counts().0 == BEFORE as i64 && outbox_depth(&agent, &edge) == 0,
    );
    assert_eq!(pg.event_counts(), (BEFORE as i64, BEFORE as i64));
    assert_eq!(metric(&cloud, "vigie_ingest_commit_failures_total"), 0);

    // The database crashes; the edge goes on accepting events.
    pg.crash();
    fire(DURING);
    wait_for(
        "a failed commit in the cloud's ingest",
        Duration::from_secs(60),
        || metric(&cloud, "vigie_ingest_commit_failures_total") > 0,
    );
    wait_for(
        "the cloud's /readyz to say 503 with its ingest degraded",
        Duration::from_secs(30),
        || cloud_readiness(&agent, &cloud) == (503, "degraded".to_owned()),
    );
    // Watch the stalled pipeline: not one of the pending events may be acked to the edge.
    let watch_until = Instant::now() + OUTAGE_WATCH;
    while Instant::now() < watch_until {
        assert_eq!(
            outbox_depth(&agent, &edge),
            DURING as u64,
            "the edge's outbox shrank while the database was down: something was acked uncommitted"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        cloud_readiness(&agent, &cloud).0,
        503,
        "the cloud became ready with its database down"
    );

    // The database comes back: everything pending is committed once and confirmed.
    pg.restart();
    let total = BEFORE + DURING;
    wait_for(
        "every accepted event in the database",
        Duration::from_secs(120),
        || pg.event_counts().0 >= total as i64,
    );
    wait_for(
        "the edge's outbox to drain",
        Duration::from_secs(120),
        || outbox_depth(&agent, &edge) == 0,
    );
    wait_for(
        "the device's acked_seq to cover every event with queue_depth 0",
        Duration::from_secs(60),
        || {
            device(&agent, &cloud, &token, &edge.device).is_some_and(|d| {
                d["acked_seq"].as_u64() == Some(total as u64)
                    && d["queue_depth"].as_u64() == Some(0)
            })
        },
    );
    wait_for(
        "the cloud's /readyz to say 200 with its ingest ready",
        Duration::from_secs(30),
        || cloud_readiness(&agent, &cloud) == (200, "ready".to_owned()),
    );

    // No resend can follow an empty outbox: count again, still exactly once.
    assert_eq!(pg.event_counts(), (total as i64, total as i64));
    let seqs: Vec<u64> = accepted.iter().map(|(_, seq)| *seq).collect();
    assert_eq!(seqs, (1..=total as u64).collect::<Vec<_>>());
    let accepted: HashSet<String> = accepted.into_iter().map(|(id, _)| id).collect();
    assert_eq!(accepted.len(), total);
    let listed: Vec<String> = list_all_events(&cloud.base, &token, 500)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed.len(), total, "/api/events lists a duplicate");
    assert_eq!(listed.into_iter().collect::<HashSet<_>>(), accepted);
    assert_eq!(metric(&cloud, "vigie_ingest_inserted_total"), total as u64);
}

#[test]
fn a_database_stopped_for_a_while_mid_stream_and_started_again_stores_every_accepted_event_exactly_once(
) {
    let outage = scale(Duration::from_secs(5), Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let mut pg = LocalPostgres::start(dir.path());
    let broker = Mosquitto::start(dir.path());
    let mqtt = format!("mqtt://127.0.0.1:{}", broker.port);
    let prefix = unique("dbstop-");
    let cloud = Cloud::start(dir.path(), external_services(&pg.url(), &mqtt, &prefix));
    cloud.add_user("admin", "admin", "correct horse battery");
    let token = cloud.login("admin", "correct horse battery");
    let edge = Edge::start(dir.path(), &unique("pi"), &mqtt, &prefix);
    let agent = agent();

    // One client fires all along: before, during and after the outage.
    let stop = AtomicBool::new(false);
    let count = AtomicUsize::new(0);
    let fired = std::thread::scope(|s| {
        let firing = s.spawn(|| {
            let agent = support::agent();
            let mut fired = Fired::default();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let fire = fire_at(&agent, &edge.base, ["button", "motion"][i % 2]);
                assert!(matches!(fire, Fire::Accepted(..)), "{fire:?}");
                fired.record(fire);
                i += 1;
                count.store(i, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
            fired
        });
        let at_least = |n: usize, what: &str| {
            let start = count.load(Ordering::SeqCst);
            wait_for(what, Duration::from_secs(60), || {
                count.load(Ordering::SeqCst) >= start + n
            });
        };
        at_least(100, "events before the outage");
        pg.stop();
        wait_for(
            "the cloud's /readyz to say 503 with its ingest degraded",
            Duration::from_secs(60),
            || cloud_readiness(&agent, &cloud) == (503, "degraded".to_owned()),
        );
        std::thread::sleep(outage);
        let during = count.load(Ordering::SeqCst);
        pg.restart();
        at_least(100, "events after the outage");
        stop.store(true, Ordering::SeqCst);
        let fired = firing.join().unwrap();
        eprintln!(
            "database stopped for {outage:?}: {} events accepted, {during} of them before it started again",
            fired.accepted.len()
        );
        fired
    });

    let stored = wait_until_drained(&cloud, &token, &edge, &pg.url(), Duration::from_secs(300));
    assert_exactly_once(&pg.url(), &edge.device, &fired);
    assert_eq!(stored as usize, fired.accepted.len());
    assert_eq!(pg.event_counts(), (stored as i64, stored as i64));
    wait_for(
        "the cloud's /readyz to say 200 with its ingest ready",
        Duration::from_secs(30),
        || cloud_readiness(&agent, &cloud) == (200, "ready".to_owned()),
    );
}
