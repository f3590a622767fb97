//! The writer thread on a temporary sled: seq assignment, group commit, limits, restarts.

use std::path::Path;
use std::sync::mpsc;

use chrono::Utc;

use super::*;

fn config(max_events: u64, when_full: WhenFull) -> WriterConfig {
    WriterConfig {
        device: DeviceId::new("pi-1").unwrap(),
        clock_synced: true,
        max_events,
        when_full,
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
    /// `(gap record, dropped up to, count)` of each drop.
    dropped: mpsc::Receiver<(GapRecord, u64, u64)>,
    loaded: Loaded,
    store: Store,
}

/// Refuses new events when full (the existing tests' policy).
fn start(dir: &Path, max_events: u64) -> Running {
    start_with(dir, max_events, WhenFull::RefuseNew)
}

fn start_with(dir: &Path, max_events: u64, when_full: WhenFull) -> Running {
    let (store, loaded) = Store::open(dir, &key()).unwrap();
    let (tx, stored) = mpsc::channel();
    let (drop_tx, dropped) = mpsc::channel();
    let (handle, thread) = spawn(
        store.clone(),
        &loaded,
        config(max_events, when_full),
        Box::new(move |event| match event {
            WriterEvent::Stored(batch) => {
                let _ = tx.send(batch);
            }
            WriterEvent::Dropped { gap, upto, count } => {
                let _ = drop_tx.send((gap, upto, count));
            }
            _ => {}
        }),
    )
    .unwrap();
    Running {
        handle,
        thread,
        stored,
        dropped,
        loaded,
        store,
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

#[test]
fn a_full_outbox_drops_the_oldest_events_with_one_growing_gap_record() {
    let dir = tempfile::tempdir().unwrap();
    let r = start_with(dir.path(), 3, WhenFull::DropOldest);
    for _ in 0..7 {
        // One at a time: each append past the bound drops exactly the oldest event.
        assert!(
            append_many(&r.handle, 1)[0].is_ok(),
            "new events are never refused"
        );
    }
    let drops: Vec<(GapRecord, u64, u64)> = r.dropped.try_iter().collect();
    assert_eq!(drops.len(), 4);
    let (gap, upto, _) = drops.last().unwrap();
    assert_eq!(
        (gap.first_seq, gap.last_seq, *upto),
        (1, 4, 4),
        "one record, extended"
    );
    assert_eq!(gap.reason, GapReason::MaxEvents);
    assert!(gap.oldest_at <= gap.newest_at && gap.newest_at <= gap.dropped_at);
    assert_eq!(drops.iter().map(|d| d.2).sum::<u64>(), 4);
    assert_eq!(r.store.get(4).unwrap(), None, "dropped events are deleted");
    assert!(r.store.get(5).unwrap().is_some());
    stop(r);

    // Durable: after a restart the record, the total and the 3 newest events are all there.
    let r = start_with(dir.path(), 3, WhenFull::DropOldest);
    assert_eq!(r.loaded.pending, [5, 6, 7]);
    assert_eq!(r.loaded.dropped_total, 4);
    assert_eq!(r.loaded.gaps.len(), 1);
    assert_eq!(r.loaded.gaps[0].last_seq, 4);
    assert_eq!(append_many(&r.handle, 1)[0].as_ref().unwrap().seq, 8);
    let (gap, upto, count) = r.dropped.recv().unwrap();
    assert_eq!((gap.first_seq, gap.last_seq, upto, count), (1, 5, 5, 1));
    // The cloud confirms past the gap: the record goes, and the next drop starts a new one.
    r.handle.confirm(5);
    append_many(&r.handle, 1);
    let (gap, _, _) = r.dropped.recv().unwrap();
    assert_eq!((gap.first_seq, gap.last_seq), (6, 6));
    stop(r);
    let (_, loaded) = Store::open(dir.path(), &key()).unwrap();
    assert_eq!(
        loaded.gaps.iter().map(|g| g.first_seq).collect::<Vec<_>>(),
        [6]
    );
    assert_eq!(loaded.dropped_total, 6);
}

#[test]
fn events_past_the_age_bound_are_dropped_oldest_first_and_young_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let r = start_with(dir.path(), 100, WhenFull::DropOldest);
    let old = Utc::now() - chrono::Duration::hours(2);
    for i in 0..5 {
        let mut req = request();
        req.occurred_at = if i < 3 { old } else { Utc::now() };
        r.handle
            .append(req)
            .unwrap()
            .blocking_recv()
            .unwrap()
            .unwrap();
    }
    r.handle
        .drop_older_than(Utc::now() - chrono::Duration::hours(1));
    let (gap, upto, count) = r.dropped.recv().unwrap();
    assert_eq!((gap.first_seq, gap.last_seq, upto, count), (1, 3, 3, 3));
    assert_eq!(gap.reason, GapReason::MaxAge);
    // Nothing else is old: a second check drops nothing.
    r.handle
        .drop_older_than(Utc::now() - chrono::Duration::hours(1));
    append_many(&r.handle, 1);
    assert!(r.dropped.try_recv().is_err());
    stop(r);
    let (_, loaded) = Store::open(dir.path(), &key()).unwrap();
    assert_eq!(loaded.pending, [4, 5, 6]);
}

#[test]
fn events_carry_this_boot_and_the_time_since_it() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path(), 10);
    let e = append_many(&r.handle, 1).pop().unwrap().unwrap();
    assert_eq!(e.boot_id, crate::clock_sync::boot_id());
    assert!(e.boot_ms.unwrap() > 0);
    assert_eq!(e.clock_offset_ms, None, "the offset is added when sent");
    stop(r);
}
