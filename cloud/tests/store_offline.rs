//! The store's side of offline mode, on both backends: gap records let acked_seq pass over events a
//! device dropped, seqs still missing are counted in the device view, and events are listed by the
//! corrected time.

#[macro_use]
mod store_support;

use protocol::api::DeviceView;
use protocol::{GapReason, GapRecord, SCHEMA_VERSION};
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
}
