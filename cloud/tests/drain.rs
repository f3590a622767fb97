//! SIGTERM drains one `vigie-cloud` process, as a cluster stops a pod: against the machine's
//! Mosquitto (the broker outlives the process) and PostgreSQL, with events arriving all the while,
//! the process stops taking deliveries, commits and acks what it holds, closes its WebSockets with
//! 1012 and exits 0 within its grace period. The next process (same client id, so the same
//! persistent session) gets the rest: every event is stored once, and nothing the first one
//! committed comes back as a duplicate, which a process killed without its drain cannot promise.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::QoS;
use serde_json::json;
use support::*;

const EVENTS: usize = 400;

#[test]
fn sigterm_drains_the_ingest_closes_websockets_with_1012_and_loses_or_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = PgDatabase::create();
    let prefix = unique("drain-");
    let (mut cloud, admin) = cloud_with_admin(dir.path(), &db.url(), 1883, &prefix);
    cloud.set_env("VIGIE_SHUTDOWN_GRACE_S", Some("10"));
    cloud.restart();
    let device = unique("pi-");

    // Events arrive all the while, over the machine's broker (which keeps the cloud's session).
    let mut options = rumqttc::MqttOptions::new(unique("pub-"), "127.0.0.1", 1883);
    options.set_keep_alive(Duration::from_secs(5));
    let publisher = connect_with(options).unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let sending = {
        let (sent, device, prefix) = (sent.clone(), device.clone(), prefix.clone());
        std::thread::spawn(move || {
            for seq in 1..=EVENTS {
                let event = json!({
                    "schema_version": 1, "id": uuid::Uuid::now_v7(), "device": device,
                    "seq": seq, "sensor": "mat-1", "kind": "button_pressed",
                    "occurred_at": "2026-12-04T10:00:00.000Z"
                });
                publisher
                    .publish(
                        format!("{prefix}/sensors/{device}/button/pressed"),
                        QoS::AtLeastOnce,
                        false,
                        event.to_string(),
                    )
                    .unwrap();
                sent.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
            publisher
        })
    };
    let mut socket = open_stream(&cloud.base, &admin);
    if let tungstenite::stream::MaybeTlsStream::Plain(tcp) = socket.get_mut() {
        tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    }
    wait_for("some events stored", Duration::from_secs(20), || {
        pg_event_counts(&db.url()).0 >= 50
    });

    // The stop, while events keep arriving.
    let pid = cloud.proc.child.id();
    // SAFETY: kill(2) on the child's pid, which this test owns and has not reaped.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    let signalled = Instant::now();
    let close = loop {
        match socket.read() {
            Ok(tungstenite::Message::Close(frame)) => break frame,
            Ok(_) => continue,
            Err(e) => panic!("the socket ended without a close frame: {e}"),
        }
    };
    let close = close.expect("a close frame with a code");
    assert_eq!(u16::from(close.code), 1012, "{close:?}");
    let status = cloud.proc.wait_exit(Duration::from_secs(15));
    let took = signalled.elapsed();
    assert!(status.success(), "exit {status:?}");
    assert!(
        took < Duration::from_secs(12),
        "exited {took:?} after SIGTERM (grace 10 s)"
    );
    let log = cloud.log();
    assert!(log.contains("ingest drained"), "{log}");
    let stored_at_stop = pg_event_counts(&db.url()).0;
    eprintln!(
        "SIGTERM after {} sent: exit 0 in {took:?}, {stored_at_stop} stored, sockets closed 1012",
        sent.load(Ordering::SeqCst)
    );

    // The next process takes the rest from the session: all stored once, none committed twice.
    let publisher = sending.join().unwrap();
    cloud.restart();
    wait_for("every event stored", Duration::from_secs(60), || {
        pg_event_counts(&db.url()).0 == EVENTS as i64
    });
    let (stored, distinct) = pg_event_counts(&db.url());
    assert_eq!((stored, distinct), (EVENTS as i64, EVENTS as i64));
    assert_eq!(
        metric(&cloud, "vigie_ingest_duplicates_total"),
        0,
        "nothing the drained process committed was redelivered"
    );
    drop(publisher);
}
