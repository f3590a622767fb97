//! The sled store on a temporary directory: persistence across reopen.

use chrono::Utc;
use protocol::{DeviceId, EventEnvelope, EventKind, SensorId, SCHEMA_VERSION};
use uuid::Uuid;

use super::*;

fn event(seq: u64) -> EventEnvelope {
    EventEnvelope {
        schema_version: SCHEMA_VERSION,
        id: Uuid::now_v7(),
        device: DeviceId::new("pi-1").unwrap(),
        seq,
        sensor: SensorId::new("mat-1").unwrap(),
        kind: EventKind::ButtonPressed,
        occurred_at: protocol::time::to_millis(Utc::now()),
        clock_synced: true,
    }
}

#[test]
fn a_new_store_is_empty_and_starts_at_seq_one() {
    let dir = tempfile::tempdir().unwrap();
    let (_, loaded) = Store::open(dir.path()).unwrap();
    assert_eq!(
        loaded,
        Loaded {
            next_seq: 1,
            confirmed_seq: 0,
            pending: vec![]
        }
    );
}

#[test]
fn appended_events_survive_a_reopen_and_read_back_identical() {
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<_> = (1..=3).map(event).collect();
    {
        let (store, _) = Store::open(dir.path()).unwrap();
        store.append(&events, 4).unwrap();
        store.flush().unwrap();
    }
    let (store, loaded) = Store::open(dir.path()).unwrap();
    assert_eq!(loaded.pending, [1, 2, 3]);
    assert_eq!(loaded.next_seq, 4);
    assert_eq!(store.get(2).unwrap().unwrap(), events[1]);
    assert_eq!(store.get(9).unwrap(), None);
}

#[test]
fn a_confirmation_deletes_up_to_its_seq_and_is_remembered() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = Store::open(dir.path()).unwrap();
        let events: Vec<_> = (1..=5).map(event).collect();
        store.append(&events, 6).unwrap();
        assert_eq!(store.confirm(3, 6).unwrap(), 3);
        store.flush().unwrap();
    }
    let (_, loaded) = Store::open(dir.path()).unwrap();
    assert_eq!(loaded.pending, [4, 5]);
    assert_eq!(loaded.confirmed_seq, 3);
    assert_eq!(loaded.next_seq, 6);
}

#[test]
fn seqs_continue_after_everything_was_confirmed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = Store::open(dir.path()).unwrap();
        store.append(&[event(1), event(2)], 3).unwrap();
        store.confirm(2, 3).unwrap();
        store.flush().unwrap();
    }
    let (_, loaded) = Store::open(dir.path()).unwrap();
    assert!(loaded.pending.is_empty());
    assert_eq!(loaded.next_seq, 3, "seq 1 and 2 are never reused");
}

#[test]
fn an_undone_append_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path()).unwrap();
    store.append(&[event(1), event(2)], 3).unwrap();
    store.undo_append(&[1, 2], 1).unwrap();
    let loaded = store.load().unwrap();
    assert!(loaded.pending.is_empty());
    assert_eq!(loaded.next_seq, 1);
}
