//! Exactly once across process crashes, with the real binaries (a throwaway Mosquitto, a PostgreSQL
//! database of the test's own, `vigie-cloud`, one `vigie-edge`):
//! - the edge is SIGKILLed at random moments of a burst and restarted on the same outbox, again and
//!   again;
//! - the cloud aborts right after an ingest commit, before its MQTT acks (the fault hook
//!   `VIGIE_FAULT_CRASH_AFTER_COMMITS`), and is restarted.
//!
//! Every event the edge answered 201 for is stored exactly once under its seq, the device's seqs are
//! 1..=N with no gap or repeat, and at the end the cloud shows `acked_seq` = N and `queue_depth` 0.
//! `make test` runs reduced counts; `make soak` (`VIGIE_SOAK=1`) the full ones.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::*;

/// Concurrent clients firing at the edge during a burst.
const FIRING_THREADS: usize = 2;
/// The longest a burst runs before the edge is killed.
const MAX_KILL_DELAY_MS: u64 = 400;
const DRAIN: Duration = Duration::from_secs(300);

fn kind(i: usize) -> &'static str {
    ["button", "motion"][i % 2]
}

/// Fires at the edge until it stops answering.
fn fire_until_dead(edge: &str, thread: usize) -> Fired {
    let agent = agent();
    let mut fired = Fired::default();
    for i in thread.. {
        let fire = fire_at(&agent, edge, kind(i));
        let dead = matches!(fire, Fire::NoAnswer);
        fired.record(fire);
        if dead {
            break;
        }
    }
    fired
}

#[test]
fn an_edge_sigkilled_at_random_moments_of_a_burst_loses_and_duplicates_no_accepted_event() {
    let kills = scale(10, 200);
    let mut rng = Rng::seeded("edge kills");
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let db = PgDatabase::create();
    let prefix = unique("killedge-");
    let (cloud, token) = cloud_with_admin(dir.path(), &db.url(), broker.port, &prefix);
    let mqtt = format!("mqtt://127.0.0.1:{}", broker.port);
    let mut edge = Edge::start(dir.path(), &unique("pi"), &mqtt, &prefix);

    let started = Instant::now();
    let mut fired = Fired::default();
    for kill in 0..kills {
        if kill > 0 {
            edge.restart();
        }
        let delay = Duration::from_millis(rng.below(MAX_KILL_DELAY_MS));
        let base = edge.base.clone();
        let burst = std::thread::scope(|s| {
            let threads: Vec<_> = (0..FIRING_THREADS)
                .map(|t| {
                    let base = &base;
                    s.spawn(move || fire_until_dead(base, t))
                })
                .collect();
            std::thread::sleep(delay);
            edge.proc.kill9();
            let mut burst = Fired::default();
            for t in threads {
                burst.extend(t.join().unwrap());
            }
            burst
        });
        fired.extend(burst);
    }
    let killing = started.elapsed();

    edge.restart();
    let stored = wait_until_drained(&cloud, &token, &edge, &db.url(), DRAIN);
    assert_exactly_once(&db.url(), &edge.device, &fired);
    assert_eq!(db.event_counts(), (stored as i64, stored as i64));
    eprintln!(
        "edge kills: {kills} SIGKILLs in {killing:?}; {} events accepted, {} requests unanswered, \
         {} refused; {stored} stored, each once ({} durable though their 201 was never sent)",
        fired.accepted.len(),
        fired.unanswered,
        fired.refused,
        stored as usize - fired.accepted.len(),
    );
    assert!(
        !fired.accepted.is_empty(),
        "no event was accepted: the test proved nothing"
    );
}

#[test]
fn a_cloud_that_dies_between_a_database_commit_and_its_mqtt_acks_stores_every_event_once_after_restart(
) {
    // The N-th ingest commit of a cloud process is the last: it aborts before that commit's acks.
    // N >= 3 so the commit of the edge's retained status at subscription cannot end the process
    // before it is ready.
    let crash_after: Vec<u64> = scale(vec![4], vec![3, 4, 6, 10, 17, 30, 50]);
    const CRASH: &str = "VIGIE_FAULT_CRASH_AFTER_COMMITS";
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let db = PgDatabase::create();
    let prefix = unique("killcloud-");
    let (mut cloud, token) = cloud_with_admin(dir.path(), &db.url(), broker.port, &prefix);
    let mqtt = format!("mqtt://127.0.0.1:{}", broker.port);
    let edge = Edge::start(dir.path(), &unique("pi"), &mqtt, &prefix);

    let mut fired = Fired::default();
    for n in crash_after {
        cloud.set_env(CRASH, Some(&n.to_string()));
        cloud.restart();
        let stop = AtomicBool::new(false);
        let deadline = Instant::now() + Duration::from_secs(120);
        let (status, round) = std::thread::scope(|s| {
            // Several clients, so a commit can hold several events.
            let firing: Vec<_> = (0..FIRING_THREADS)
                .map(|t| {
                    let (stop, edge) = (&stop, &edge);
                    s.spawn(move || {
                        let agent = agent();
                        let mut round = Fired::default();
                        let mut i = t;
                        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                            let fire = fire_at(&agent, &edge.base, kind(i));
                            assert!(
                                !matches!(fire, Fire::NoAnswer),
                                "the edge stopped answering"
                            );
                            round.record(fire);
                            i += 1;
                        }
                        round
                    })
                })
                .collect();
            let status = cloud.proc.wait_exit(Duration::from_secs(60));
            // A few more events while the cloud is down, then measure with nothing moving.
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::SeqCst);
            let mut round = Fired::default();
            for f in firing {
                round.extend(f.join().unwrap());
            }
            (status, round)
        });
        assert_eq!(
            status.signal(),
            Some(libc::SIGABRT),
            "the cloud armed with {CRASH}={n} should abort after its commit {n}: {status}"
        );
        // The events of the last commit are stored but were never acked: the edge still holds them.
        let stored = pg_device_events(&db.url(), &edge.device).len() as i64;
        let held = edge.queue_depth() as i64;
        let accepted = (fired.accepted.len() + round.accepted.len()) as i64;
        let both = stored + held - accepted;
        eprintln!(
            "cloud abort after commit {n}: {accepted} accepted so far, {stored} stored, {held} held \
             by the edge, {both} both stored and unconfirmed"
        );
        assert!(
            both > 0,
            "the cloud died with nothing stored but unacked: the fault hit no event commit"
        );
        fired.extend(round);

        cloud.set_env(CRASH, None);
        cloud.restart();
        let stored = wait_until_drained(&cloud, &token, &edge, &db.url(), DRAIN);
        assert_exactly_once(&db.url(), &edge.device, &fired);
        assert_eq!(stored as usize, fired.accepted.len());
        assert_eq!(
            (fired.unanswered, fired.refused),
            (0, 0),
            "unanswered, refused"
        );
    }
    assert_eq!(
        db.event_counts(),
        (fired.accepted.len() as i64, fired.accepted.len() as i64)
    );
}
