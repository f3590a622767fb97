//! The sled store on a temporary directory: persistence across reopen, encryption at rest, the
//! key check, tampering.

use protocol::EventEnvelope;

use super::*;

fn key() -> OutboxKey {
    OutboxKey::from_bytes([7; 32])
}

fn event(seq: u64) -> EventEnvelope {
    crate::outbox::testing::event_of("pi-1", seq)
}

#[test]
fn a_new_store_is_empty_and_starts_at_seq_one() {
    let dir = tempfile::tempdir().unwrap();
    let (_, loaded) = Store::open(dir.path(), &key()).unwrap();
    assert_eq!(
        loaded,
        Loaded {
            next_seq: 1,
            confirmed_seq: 0,
            pending: vec![],
            gaps: vec![],
            dropped_total: 0,
        }
    );
}

#[test]
fn appended_events_survive_a_reopen_and_read_back_identical() {
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<_> = (1..=3).map(event).collect();
    {
        let (store, _) = Store::open(dir.path(), &key()).unwrap();
        store.append(&events, 4).unwrap();
        store.flush().unwrap();
    }
    let (store, loaded) = Store::open(dir.path(), &key()).unwrap();
    assert_eq!(loaded.pending, [1, 2, 3]);
    assert_eq!(loaded.next_seq, 4);
    assert_eq!(store.get(2).unwrap().unwrap(), events[1]);
    assert_eq!(store.get(9).unwrap(), None);
}

#[test]
fn a_confirmation_deletes_up_to_its_seq_and_is_remembered() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = Store::open(dir.path(), &key()).unwrap();
        let events: Vec<_> = (1..=5).map(event).collect();
        store.append(&events, 6).unwrap();
        assert_eq!(store.confirm(3, 6).unwrap(), 3);
        store.flush().unwrap();
    }
    let (_, loaded) = Store::open(dir.path(), &key()).unwrap();
    assert_eq!(loaded.pending, [4, 5]);
    assert_eq!(loaded.confirmed_seq, 3);
    assert_eq!(loaded.next_seq, 6);
}

#[test]
fn seqs_continue_after_everything_was_confirmed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = Store::open(dir.path(), &key()).unwrap();
        store.append(&[event(1), event(2)], 3).unwrap();
        store.confirm(2, 3).unwrap();
        store.flush().unwrap();
    }
    let (_, loaded) = Store::open(dir.path(), &key()).unwrap();
    assert!(loaded.pending.is_empty());
    assert_eq!(loaded.next_seq, 3, "seq 1 and 2 are never reused");
}

#[test]
fn an_undone_append_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), &key()).unwrap();
    store.append(&[event(1), event(2)], 3).unwrap();
    store.undo_append(&[1, 2], 1).unwrap();
    let loaded = store.load().unwrap();
    assert!(loaded.pending.is_empty());
    assert_eq!(loaded.next_seq, 1);
}

#[test]
fn events_are_encrypted_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let e = event(1);
    {
        let (store, _) = Store::open(dir.path(), &key()).unwrap();
        store.append(std::slice::from_ref(&e), 2).unwrap();
        let raw = store.raw_event(1).unwrap().unwrap();
        assert!(
            !raw.windows(5).any(|w| w == b"mat-1"),
            "no plaintext in the record"
        );
        store.flush().unwrap();
    }
    let id = e.id.to_string();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            for needle in [
                id.as_bytes(),
                b"mat-1".as_slice(),
                b"button_pressed".as_slice(),
            ] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{} holds plaintext",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn the_wrong_key_is_refused_at_open_and_the_outbox_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = Store::open(dir.path(), &key()).unwrap();
        store.append(&[event(1)], 2).unwrap();
        store.flush().unwrap();
    }
    let other = OutboxKey::from_bytes([8; 32]);
    let err = Store::open(dir.path(), &other).err().expect("refused");
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
    assert!(err.to_string().contains("another key"), "{err}");
    let (store, loaded) = Store::open(dir.path(), &key()).unwrap();
    assert_eq!(loaded.pending, [1]);
    assert!(store.get(1).unwrap().is_some());
}

#[test]
fn a_tampered_record_is_an_error_naming_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), &key()).unwrap();
    store.append(&[event(1), event(2)], 3).unwrap();
    let mut raw = store.raw_event(2).unwrap().unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 0x80;
    store.put_raw_event(2, &raw).unwrap();
    let err = store.get(2).unwrap_err();
    assert!(matches!(err, StoreError::Tampered { seq: 2, .. }), "{err}");
    assert!(err.to_string().contains("event 2"), "{err}");
    assert!(
        store.get(1).unwrap().is_some(),
        "the other records still read"
    );
}

#[test]
fn a_record_swapped_onto_another_seq_fails_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), &key()).unwrap();
    store.append(&[event(1), event(2)], 3).unwrap();
    let first = store.raw_event(1).unwrap().unwrap();
    store.put_raw_event(2, &first).unwrap();
    assert!(matches!(
        store.get(2),
        Err(StoreError::Tampered { seq: 2, .. })
    ));
}

#[test]
fn an_older_unencrypted_outbox_with_events_is_refused_and_an_empty_one_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert(event_key(1), event(1).to_json()).unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(dir.path(), &key()).err().expect("refused");
    assert!(
        matches!(err, StoreError::Unencrypted { count: 1, .. }),
        "{err}"
    );

    let empty = tempfile::tempdir().unwrap();
    {
        let db = sled::open(empty.path()).unwrap();
        db.insert(NEXT_SEQ, &9u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let (_, loaded) = Store::open(empty.path(), &key()).unwrap();
    assert_eq!(loaded.next_seq, 9, "the sequence goes on");
    assert!(Store::open(empty.path(), &OutboxKey::from_bytes([1; 32])).is_err());
}

#[test]
fn recover_reopens_in_place_and_discards_what_the_writer_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), &key()).unwrap();
    let reader = store.clone();
    store.append(&[event(1), event(2), event(3)], 4).unwrap();
    store.flush().unwrap();
    // The writer only ever answered seq 1 as stored; 2 and 3 were refused.
    store.recover(2).unwrap();
    let loaded = reader.load().unwrap();
    assert_eq!(loaded.pending, [1]);
    assert_eq!(loaded.next_seq, 2);
    assert!(
        reader.get(1).unwrap().is_some(),
        "clones see the reopened database"
    );
}

#[test]
fn a_flush_syncs_sled_data_file_itself() {
    // sled's own flush stops at sync_file_range; the store adds an fdatasync of sled's data file,
    // so a flush fails (rather than claiming durability) when that file cannot be synced.
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), &key()).unwrap();
    store.append(&[event(1)], 2).unwrap();
    store.flush().unwrap();
    std::fs::rename(dir.path().join("db"), dir.path().join("db.moved")).unwrap();
    let err = store.flush().unwrap_err();
    assert!(err.to_string().contains("storage failed"), "{err}");
}
