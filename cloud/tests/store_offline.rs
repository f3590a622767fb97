//! The store's side of offline mode, on both backends: gap records let acked_seq pass over events a
//! device dropped, seqs still missing are counted in the device view, and events are listed by the
//! corrected time. Seqs are bounded at 2^62: overlapping gap records near the bound, and rows
//! stored before the bound up to the largest BIGINT, neither overflow the acked_seq walk nor the
//! device view's counts.

#[macro_use]
mod store_support;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};
use protocol::api::DeviceView;
use protocol::{GapReason, GapRecord, MAX_SEQ, SCHEMA_VERSION};
use store_support::*;
use vigie_cloud::store::{EventFilter, Store};

fn gap(device_id: &str, first_seq: u64, last_seq: u64) -> GapRecord {
    GapRecord {
        schema_version: SCHEMA_VERSION,
        device: device(device_id),
        first_seq,
        last_seq,
        reason: GapReason::MaxEvents,
        oldest_at: at(first_seq as i64),
        newest_at: at(last_seq as i64),
        dropped_at: at(1_000_000),
    }
}

/// Runs `sql` on the test database behind the store's back (rows the store would not write now).
fn execute(db: &TestDb, sql: &str) {
    match db.url() {
        Some(url) => PgConnection::establish(url)
            .unwrap()
            .batch_execute(sql)
            .unwrap(),
        None => {
            let path = db.data_dir().join(vigie_cloud::store::SQLITE_FILE);
            SqliteConnection::establish(path.to_str().unwrap())
                .unwrap()
                .batch_execute(sql)
                .unwrap()
        }
    }
}

fn view(store: &Store, id: &str) -> DeviceView {
    store
        .list_devices()
        .unwrap()
        .into_iter()
        .find(|d| d.id.as_str() == id)
        .expect("the device is listed")
}

store_tests! {
    fn a_gap_record_lets_acked_seq_pass_over_the_dropped_seqs(db) {
        let store = db.open();
        store.insert_events(&presses("pi-1", 1..=3), at(10)).unwrap();
        // 4..=10 were dropped on the device; 11..=12 arrive before the gap record.
        let out = store.insert_events(&presses("pi-1", 11..=12), at(11)).unwrap();
        assert_eq!(out.acked[&device("pi-1")], 3, "the hole at 4 holds acked_seq");
        let v = view(&store, "pi-1");
        assert_eq!((v.acked_seq, v.missing_events, v.lost_events), (3, 7, 0));

        let outcome = store.record_gap(&gap("pi-1", 4, 10), at(12)).unwrap();
        assert_eq!(outcome.newly_dropped, 7);
        assert_eq!(outcome.acked_seq, 12, "over the gap and the events stored after it");
        let v = view(&store, "pi-1");
        assert_eq!((v.acked_seq, v.missing_events, v.lost_events), (12, 0, 7));

        // A repeat changes nothing; an extension counts only the new seqs.
        assert_eq!(store.record_gap(&gap("pi-1", 4, 10), at(13)).unwrap().newly_dropped, 0);
        assert_eq!(store.record_gap(&gap("pi-1", 4, 14), at(14)).unwrap().newly_dropped, 4);
        assert_eq!(view(&store, "pi-1").acked_seq, 14);
        assert_eq!(view(&store, "pi-1").lost_events, 11);
        // Nothing stored was touched.
        assert_eq!(store.list_events(&EventFilter::default(), 100, None).unwrap().items.len(), 5);
    }

    fn a_gap_record_that_arrives_first_is_used_when_the_events_before_it_arrive(db) {
        let store = db.open();
        store.insert_events(&presses("pi-1", 1..=2), at(10)).unwrap();
        let outcome = store.record_gap(&gap("pi-1", 4, 6), at(11)).unwrap();
        assert_eq!(outcome.acked_seq, 2, "seq 3 is still missing");
        assert_eq!(view(&store, "pi-1").missing_events, 1);
        store.insert_events(&presses("pi-1", 7..=8), at(12)).unwrap();
        let out = store.insert_events(&presses("pi-1", 3..=3), at(13)).unwrap();
        assert_eq!(out.acked[&device("pi-1")], 8, "3, then the gap 4..=6, then 7 and 8");
        assert_eq!(view(&store, "pi-1").missing_events, 0);
    }

    fn events_are_listed_and_paged_by_their_corrected_time(db) {
        let store = db.open();
        // pi-1 booted with its clock a day behind and measured the offset; pi-2's clock is right.
        let day = 86_400_000;
        let now = 1_800_000_000_000;
        let mut late = presses("pi-1", 1..=3);
        for (i, e) in late.iter_mut().enumerate() {
            e.occurred_at = at(now - day + 10 * i as i64);
            e.clock_synced = false;
            e.clock_offset_ms = Some(day);
        }
        let mut right = presses("pi-2", 1..=3);
        for (i, e) in right.iter_mut().enumerate() {
            e.occurred_at = at(now + 5 + 10 * i as i64);
        }
        store.insert_events(&late, at(now)).unwrap();
        store.insert_events(&right, at(now)).unwrap();
        let mut order = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.list_events(&EventFilter::default(), 2, cursor.as_deref()).unwrap();
            order.extend(page.items.iter().map(|i| (i.device.to_string(), i.seq)));
            for item in &page.items {
                let wanted = if item.device.as_str() == "pi-1" { day } else { 0 };
                assert_eq!(
                    (item.corrected_at - item.occurred_at).num_milliseconds(),
                    wanted
                );
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let expected: Vec<(String, u64)> = [("pi-2", 3), ("pi-1", 3), ("pi-2", 2), ("pi-1", 2), ("pi-2", 1), ("pi-1", 1)]
            .iter()
            .map(|(d, s)| (d.to_string(), *s))
            .collect();
        assert_eq!(order, expected, "interleaved by corrected time, newest first");

        // Filters use the corrected time too: the day-old device time is not matched.
        let recent = EventFilter { since: Some(at(now - 1000)), ..EventFilter::default() };
        assert_eq!(store.list_events(&recent, 100, None).unwrap().items.len(), 6);
        let old = EventFilter { until: Some(at(now - 1000)), ..EventFilter::default() };
        assert!(store.list_events(&old, 100, None).unwrap().items.is_empty());
    }

    fn a_status_records_api_reachability_and_the_clock_offset(db) {
        let store = db.open();
        let mut status = protocol::DeviceStatus::last_will(device("pi-1"));
        status.state = protocol::DeviceState::Online;
        status.api_reachable = Some(false);
        status.clock_offset_ms = Some(-2500);
        let (v, _) = store.record_status(&status, at(5)).unwrap();
        assert_eq!((v.api_reachable, v.clock_offset_ms), (Some(false), Some(-2500)));
        assert_eq!(view(&store, "pi-1").api_reachable, Some(false));
    }

    fn overlapping_gap_records_near_the_bound_keep_the_device_view_right(db) {
        let store = db.open();
        for first in 1..=4 {
            store.record_gap(&gap("pi-1", first, MAX_SEQ), at(first as i64)).unwrap();
        }
        store.record_gap(&gap("pi-1", MAX_SEQ, MAX_SEQ), at(9)).unwrap();
        // Summed, these spans are about 4 * 2^62, past i64::MAX: each seq counts once instead.
        let v = view(&store, "pi-1");
        assert_eq!((v.acked_seq, v.missing_events, v.lost_events), (MAX_SEQ, 0, MAX_SEQ));
        let out = store.insert_events(&presses("pi-1", [MAX_SEQ]), at(10)).unwrap();
        assert_eq!(out.acked[&device("pi-1")], MAX_SEQ);

        // Beyond the bound the store refuses, naming the seq, and stores nothing.
        let err = store.record_gap(&gap("pi-2", 1, MAX_SEQ + 1), at(11)).unwrap_err();
        assert!(matches!(err, vigie_cloud::store::StoreError::Invalid(_)), "{err}");
        assert!(err.to_string().contains(&(MAX_SEQ + 1).to_string()), "{err}");
        let err = store.insert_events(&presses("pi-2", [1 << 63]), at(12)).unwrap_err();
        assert!(matches!(err, vigie_cloud::store::StoreError::Invalid(_)), "{err}");
        assert!(store.list_devices().unwrap().iter().all(|d| d.id.as_str() != "pi-2"));
    }

    fn overlapping_gap_records_count_each_dropped_seq_once(db) {
        let store = db.open();
        assert_eq!(store.record_gap(&gap("pi-1", 1, 10), at(1)).unwrap().newly_dropped, 10);
        assert_eq!(store.record_gap(&gap("pi-1", 5, 12), at(2)).unwrap().newly_dropped, 2);
        assert_eq!(store.record_gap(&gap("pi-1", 3, 8), at(3)).unwrap().newly_dropped, 0);
        assert_eq!(view(&store, "pi-1").lost_events, 12);
    }

    fn rows_stored_before_the_bound_do_not_overflow_the_acked_seq_walk(db) {
        let store = db.open();
        // A gap record up to the largest BIGINT, as an older build let it in.
        execute(db, "
            INSERT INTO devices (id, state, created_at, max_seq) VALUES ('pi-old', 'offline', 0, 9223372036854775807);
            INSERT INTO device_gaps (device, first_seq, last_seq, reason, oldest_at, newest_at, dropped_at, received_at)
                VALUES ('pi-old', 2, 9223372036854775807, 'max_events', 0, 0, 0, 0);
        ");
        let out = store.insert_events(&presses("pi-old", [1]), at(10)).unwrap();
        assert_eq!(out.acked[&device("pi-old")], i64::MAX as u64, "1, then the gap, then the end");
        let out = store.insert_events(&presses("pi-old", [3]), at(11)).unwrap();
        assert_eq!(out.acked[&device("pi-old")], i64::MAX as u64);
        let v = view(&store, "pi-old");
        assert_eq!((v.missing_events, v.lost_events), (0, i64::MAX as u64 - 1));
    }
}
