//! Faults on the event path: a broker that keeps nothing (persistence off) is SIGKILLed mid-stream and
//! restarted (once in `make test`, five times in `make soak`); every event the edge accepted is still
//! stored exactly once.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::*;

#[test]
fn killing_a_broker_without_persistence_mid_stream_loses_and_duplicates_nothing() {
    let kills = scale(1, 5);
    let events = scale(300, 1500);
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Mosquitto::start(dir.path());
    let mqtt = format!("mqtt://127.0.0.1:{}", broker.port);
    let db = PgDatabase::create();
    let prefix = unique("fault-");
    let cloud = Cloud::start(dir.path(), external_services(&db.url(), &mqtt, &prefix));
    cloud.add_user("admin", "admin", "correct horse battery");
    let token = cloud.login("admin", "correct horse battery");
    let edge = Edge::start(dir.path(), &unique("pi"), &mqtt, &prefix);

    let fired = AtomicUsize::new(0);
    let accepted: Vec<String> = std::thread::scope(|scope| {
        let firing = scope.spawn(|| {
            let agent = agent();
            (0..events)
                .map(|i| {
                    let (id, _) = edge.fire(&agent, if i % 2 == 0 { "button" } else { "motion" });
                    fired.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(3));
                    id
                })
                .collect::<Vec<_>>()
        });
        // Kill k (from 0) when (2k+1)/(2 kills+1) of the events are fired, restart at (2k+2)/(...).
        let mark = |i: usize| events * i / (2 * kills + 1);
        for k in 0..kills {
            wait_for("events with the broker up", Duration::from_secs(60), || {
                fired.load(Ordering::SeqCst) >= mark(2 * k + 1)
            });
            broker.kill9();
            wait_for(
                "events with the broker down",
                Duration::from_secs(60),
                || fired.load(Ordering::SeqCst) >= mark(2 * k + 2),
            );
            broker.restart();
        }
        firing.join().unwrap()
    });
    let accepted: HashSet<String> = accepted.into_iter().collect();
    assert_eq!(accepted.len(), events);

    wait_for(
        "every accepted event in the database",
        Duration::from_secs(120),
        || db.event_counts().0 >= events as i64,
    );
    // Once the edge holds nothing unconfirmed no resend can follow: count again, still exactly once.
    let agent = agent();
    wait_for(
        "the edge's outbox confirmed empty",
        Duration::from_secs(60),
        || {
            let (_, devices) =
                get_json(&agent, &format!("{}/api/devices", cloud.base), Some(&token));
            devices.as_array().unwrap().iter().any(|d| {
                d["id"] == edge.device.as_str()
                    && d["acked_seq"].as_u64() == Some(events as u64)
                    && d["queue_depth"].as_u64() == Some(0)
            })
        },
    );
    assert_eq!(db.event_counts(), (events as i64, events as i64));
    let listed: HashSet<String> = list_all_events(&cloud.base, &token, 500)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, accepted);
}
