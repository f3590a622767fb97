//! The writer thread on a temporary sled: seq assignment, group commit, limits, restarts.

use std::path::Path;
use std::sync::mpsc;

use chrono::Utc;

use super::*;

fn config(max_events: u64) -> WriterConfig {
    WriterConfig {
        device: DeviceId::new("pi-1").unwrap(),
        clock_synced: true,
        max_events,
    }
}

fn key() -> crate::outbox::OutboxKey {
    crate::outbox::OutboxKey::from_bytes([3; 32])
}

fn request() -> AppendRequest {
    AppendRequest {
        sensor: SensorId::new("mat-1").unwrap(),
        kind: EventKind::ButtonPressed,
        occurred_at: Utc::now(),
    }
}

struct Running {
    handle: WriterHandle,
    thread: JoinHandle<()>,
    stored: mpsc::Receiver<Vec<EventEnvelope>>,
    loaded: Loaded,
}

fn start(dir: &Path, max_events: u64) -> Running {
    let (store, loaded) = Store::open(dir, &key()).unwrap();
    let (tx, stored) = mpsc::channel();
    let (handle, thread) = spawn(
        store,
        &loaded,
        config(max_events),
        Box::new(move |event| {
            if let WriterEvent::Stored(batch) = event {
                let _ = tx.send(batch);
            }
        }),
    )
    .unwrap();
    Running {
        handle,
        thread,
        stored,
        loaded,
    }
}

fn stop(r: Running) {
    r.handle.close().blocking_recv().unwrap();
    r.thread.join().unwrap();
}

fn append_many(handle: &WriterHandle, n: usize) -> Vec<Result<EventEnvelope, OutboxError>> {
    let receivers: Vec<_> = (0..n).map(|_| handle.append(request()).unwrap()).collect();
    receivers
        .into_iter()
        .map(|rx| rx.blocking_recv().unwrap())
        .collect()
}

#[test]
fn appends_get_consecutive_seqs_from_one_and_are_reported_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path(), 100);
    let results = append_many(&r.handle, 20);
    let seqs: Vec<u64> = results.iter().map(|e| e.as_ref().unwrap().seq).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    let reported: Vec<u64> = r.stored.try_iter().flatten().map(|e| e.seq).collect();
    assert_eq!(reported, seqs, "every durable event is reported, in order");
    let e = results[0].as_ref().unwrap();
    assert_eq!(e.device.as_str(), "pi-1");
    assert_eq!(e.id.get_version_num(), 7, "ids are UUIDv7");
    assert!(e.clock_synced);
    stop(r);
}

#[test]
fn pending_events_and_the_seq_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path(), 100);
    let first: Vec<EventEnvelope> = append_many(&r.handle, 3)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    stop(r);

    let r = start(dir.path(), 100);
    assert_eq!(r.loaded.pending, [1, 2, 3]);
    let next = append_many(&r.handle, 1).pop().unwrap().unwrap();
    assert_eq!(next.seq, 4, "the seq continues after a restart");
    stop(r);

    let (store, loaded) = Store::open(dir.path(), &key()).unwrap();
    assert_eq!(loaded.pending, [1, 2, 3, 4]);
    assert_eq!(store.get(1).unwrap().unwrap(), first[0]);
}

#[test]
fn a_confirmation_deletes_events_and_seqs_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path(), 100);
    append_many(&r.handle, 4);
    r.handle.confirm(4);
    stop(r);
    let r = start(dir.path(), 100);
    assert!(r.loaded.pending.is_empty());
    assert_eq!(append_many(&r.handle, 1)[0].as_ref().unwrap().seq, 5);
    stop(r);
}

#[test]
fn a_confirmation_beyond_the_last_seq_moves_the_sequence_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path(), 100);
    append_many(&r.handle, 2);
    r.handle.confirm(10);
    assert_eq!(append_many(&r.handle, 1)[0].as_ref().unwrap().seq, 11);
    stop(r);
}

#[test]
fn a_full_outbox_refuses_new_events_until_the_cloud_confirms() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path(), 3);
    let results = append_many(&r.handle, 5);
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
    assert_eq!(results[4], Err(OutboxError::Full { limit: 3 }));
    r.handle.confirm(2);
    let after = append_many(&r.handle, 2);
    let seqs: Vec<u64> = after.iter().map(|e| e.as_ref().unwrap().seq).collect();
    assert_eq!(seqs, [4, 5], "refused appends used no seq");
    stop(r);
}

#[test]
fn a_closed_writer_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path(), 3);
    let handle = r.handle.clone();
    stop(r);
    assert_eq!(handle.append(request()).unwrap_err(), OutboxError::Closed);
}
