//! Storing events, on SQLite and on the machine's PostgreSQL: migrations, deduplication by id,
//! and the per-device acked_seq.

#[macro_use]
mod store_support;

use std::collections::BTreeMap;

use protocol::EventKind;
use store_support::*;
use vigie_cloud::store::{Backend, EventFilter, Store, StoreError};

fn stored_count(store: &Store) -> usize {
    store
        .list_events(&EventFilter::default(), 1000, None)
        .expect("listing works")
        .items
        .len()
}

store_tests! {
    fn migrations_apply_on_an_empty_database_and_reopening_is_idempotent(db) {
        let store = db.open();
        let expected = if db.url().is_some() { Backend::Postgres } else { Backend::Sqlite };
        assert_eq!(store.backend(), expected);
        store.ping().unwrap();
        store.insert_events(&presses("pi-1", 1..=2), at(10)).unwrap();
        drop(store);

        let reopened = db.open();
        reopened.ping().unwrap();
        assert_eq!(reopened.acked_seq(&device("pi-1")).unwrap(), 2);
        assert_eq!(stored_count(&reopened), 2);
        // A third open while another store is still open is just as harmless.
        let third = db.open();
        assert_eq!(stored_count(&third), 2);
    }

    fn the_same_event_twice_across_calls_is_one_row_counted_as_a_duplicate(db) {
        let store = db.open();
        let batch = presses("pi-1", 1..=2);
        let first = store.insert_events(&batch, at(10)).unwrap();
        assert_eq!(first.inserted.len(), 2);
        assert_eq!(first.duplicates, 0);

        let again = store.insert_events(&batch[..1], at(20)).unwrap();
        assert!(again.inserted.is_empty());
        assert_eq!(again.duplicates, 1);
        assert_eq!(stored_count(&store), 2);
    }

    fn the_same_event_twice_within_one_batch_is_one_row_counted_as_a_duplicate(db) {
        let store = db.open();
        let old = presses("pi-1", [1]);
        store.insert_events(&old, at(10)).unwrap();
        let new = event("pi-1", 2, EventKind::Motion, 5);
        let batch = vec![new.clone(), new.clone(), old[0].clone(), new.clone()];

        let outcome = store.insert_events(&batch, at(20)).unwrap();
        let ids: Vec<_> = outcome.inserted.iter().map(|i| i.id).collect();
        assert_eq!(ids, vec![new.id]);
        assert_eq!(outcome.duplicates, 3);
        assert_eq!(stored_count(&store), 2);
    }

    fn inserted_events_come_back_in_input_order_with_their_received_time(db) {
        let store = db.open();
        let batch = vec![
            event("pi-2", 1, EventKind::Motion, 300),
            event("pi-1", 1, EventKind::ButtonPressed, 100),
            event("pi-2", 2, EventKind::ButtonPressed, 200),
        ];
        let outcome = store.insert_events(&batch, at(1_000)).unwrap();
        let ids: Vec<_> = outcome.inserted.iter().map(|i| i.id).collect();
        assert_eq!(ids, batch.iter().map(|e| e.id).collect::<Vec<_>>());
        for (item, e) in outcome.inserted.iter().zip(&batch) {
            assert_eq!(item.received_at, at(1_000));
            assert_eq!(item.occurred_at, e.occurred_at);
            assert_eq!((&item.device, item.seq, &item.kind), (&e.device, e.seq, &e.kind));
        }
        // What the insert returns is exactly what the listing shows later.
        let listed = store.list_events(&EventFilter::default(), 10, None).unwrap().items;
        for item in &outcome.inserted {
            assert!(listed.contains(item), "{item:?} is listed as inserted");
        }
    }

    fn acked_seq_is_the_highest_contiguous_seq_of_each_device(db) {
        let store = db.open();
        let mut batch = presses("pi-1", [1, 2, 4]);
        batch.extend(presses("pi-2", [2]));
        let outcome = store.insert_events(&batch, at(10)).unwrap();
        assert_eq!(
            outcome.acked,
            BTreeMap::from([(device("pi-1"), 2), (device("pi-2"), 0)])
        );

        let outcome = store.insert_events(&presses("pi-1", [3]), at(20)).unwrap();
        assert_eq!(outcome.acked, BTreeMap::from([(device("pi-1"), 4)]));
        let outcome = store.insert_events(&presses("pi-2", [1]), at(30)).unwrap();
        assert_eq!(outcome.acked, BTreeMap::from([(device("pi-2"), 2)]));

        // Out of order within one batch, and a batch of nothing but duplicates.
        let outcome = store.insert_events(&presses("pi-3", [3, 1, 2]), at(40)).unwrap();
        assert_eq!(outcome.acked[&device("pi-3")], 3);
        let outcome = store.insert_events(&presses("pi-3", [1]), at(50)).unwrap();
        assert_eq!(outcome.acked[&device("pi-3")], 3);

        assert_eq!(store.acked_seq(&device("pi-1")).unwrap(), 4);
        assert_eq!(store.acked_seq(&device("pi-2")).unwrap(), 2);
        assert_eq!(store.acked_seq(&device("never-seen")).unwrap(), 0);
        let listed: BTreeMap<_, _> = store
            .list_devices()
            .unwrap()
            .into_iter()
            .map(|d| (d.id, d.acked_seq))
            .collect();
        assert_eq!(
            listed,
            BTreeMap::from([(device("pi-1"), 4), (device("pi-2"), 2), (device("pi-3"), 3)])
        );
    }

    fn a_batch_larger_than_one_insert_chunk_is_stored_whole_and_acked_across_walk_pages(db) {
        let store = db.open();
        let outcome = store.insert_events(&presses("pi-1", 2..=1_600), at(10)).unwrap();
        assert_eq!(outcome.inserted.len(), 1_599);
        assert_eq!(outcome.acked[&device("pi-1")], 0);

        let outcome = store.insert_events(&presses("pi-1", [1]), at(20)).unwrap();
        assert_eq!(outcome.acked[&device("pi-1")], 1_600);
        assert_eq!(store.acked_seq(&device("pi-1")).unwrap(), 1_600);
    }

    fn concurrent_batches_of_one_device_leave_no_seq_unacked(db) {
        let store = db.open();
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let store = store.clone();
                std::thread::spawn(move || {
                    // Writer w sends the seqs congruent to w mod 4, ten at a time.
                    let mine: Vec<u64> = (1..=400).filter(|s| s % 4 == w).collect();
                    for seqs in mine.chunks(10) {
                        store.insert_events(&presses("pi-1", seqs.iter().copied()), at(10)).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().expect("a writer thread");
        }
        assert_eq!(store.acked_seq(&device("pi-1")).unwrap(), 400);
    }

    fn inserting_events_records_their_device_as_seen_but_not_online(db) {
        let store = db.open();
        store.insert_events(&presses("pi-1", [1]), at(10)).unwrap();
        store.insert_events(&presses("pi-1", [2]), at(99)).unwrap();
        let devices = store.list_devices().unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].id, device("pi-1"));
        assert_eq!(devices[0].last_seen, Some(at(99)));
        assert_eq!(devices[0].state, protocol::DeviceState::Offline);
    }

    fn an_empty_batch_changes_nothing(db) {
        let store = db.open();
        let outcome = store.insert_events(&[], at(10)).unwrap();
        assert!(outcome.inserted.is_empty() && outcome.acked.is_empty());
        assert_eq!(outcome.duplicates, 0);
    }

    fn a_seq_too_large_to_store_is_invalid_and_stores_nothing(db) {
        let store = db.open();
        let mut batch = presses("pi-1", [1]);
        batch.extend(presses("pi-1", [u64::MAX]));
        let err = store.insert_events(&batch, at(10)).unwrap_err();
        assert!(matches!(&err, StoreError::Invalid(m) if m.contains("seq")), "{err}");
        assert_eq!(stored_count(&store), 0);
    }
}

#[test]
fn an_unreachable_postgres_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open(Some("postgres://postgres@127.0.0.1:1/vigie"), dir.path()).unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("PostgreSQL"), "{err}");
}

#[test]
fn a_database_url_that_is_not_postgres_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open(Some("mysql://localhost/vigie"), dir.path()).unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("postgres://")),
        "{err}"
    );
}
