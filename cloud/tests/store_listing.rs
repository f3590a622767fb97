//! Listing events, on SQLite and on the machine's PostgreSQL: the order, the filters and the
//! cursor pagination.

#[macro_use]
mod store_support;

use protocol::api::EventItem;
use protocol::EventKind;
use store_support::*;
use uuid::Uuid;
use vigie_cloud::store::{EventFilter, Store, StoreError};

/// Every page from the start, following `next_cursor` until it is absent.
fn walk(store: &Store, filter: &EventFilter, limit: u32) -> Vec<EventItem> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let page = store
            .list_events(filter, limit, cursor.as_deref())
            .expect("a page");
        assert!(page.items.len() <= limit as usize);
        items.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return items,
        }
    }
    panic!("pagination did not end");
}

/// What the listing must return: the stored items that pass the filter, newest first.
fn expected(all: &[EventItem], filter: &EventFilter) -> Vec<Uuid> {
    let mut items: Vec<&EventItem> = all
        .iter()
        .filter(|i| filter.device.as_ref().is_none_or(|d| &i.device == d))
        .filter(|i| filter.kind.as_ref().is_none_or(|k| &i.kind == k))
        .filter(|i| filter.since.is_none_or(|t| i.occurred_at >= t))
        .filter(|i| filter.until.is_none_or(|t| i.occurred_at < t))
        .collect();
    items.sort_by_key(|e| std::cmp::Reverse((e.occurred_at, e.id)));
    items.into_iter().map(|i| i.id).collect()
}

/// 60 events over 3 devices and 2 kinds, many sharing an occurrence time.
fn a_history(store: &Store) -> Vec<EventItem> {
    let mut batch = Vec::new();
    for n in 0..60u64 {
        let device_id = ["pi-1", "pi-2", "pi-3"][(n % 3) as usize];
        let kind = if n % 2 == 0 {
            EventKind::Motion
        } else {
            EventKind::ButtonPressed
        };
        batch.push(event(
            device_id,
            n / 3 + 1,
            kind,
            ((n * 7) % 11) as i64 * 1_000,
        ));
    }
    store.insert_events(&batch, at(100_000)).unwrap().inserted
}

fn every_filter() -> Vec<EventFilter> {
    let mut filters = Vec::new();
    for device_filter in [None, Some(device("pi-2"))] {
        for kind in [None, Some(EventKind::Motion)] {
            for since in [None, Some(at(3_000))] {
                for until in [None, Some(at(8_000))] {
                    filters.push(EventFilter {
                        device: device_filter.clone(),
                        kind: kind.clone(),
                        since,
                        until,
                        ..EventFilter::default()
                    });
                }
            }
        }
    }
    filters
}

store_tests! {
    fn events_are_listed_newest_first_with_ties_broken_by_id_descending(db) {
        let store = db.open();
        let low = Uuid::from_u128(0x0100_0000_0000_7000_8000_0000_0000_0001);
        let high = Uuid::from_u128(0xff00_0000_0000_7000_8000_0000_0000_0001);
        let middle = Uuid::from_u128(0x8000_0000_0000_7000_8000_0000_0000_0001);
        let batch = vec![
            event_with_id(middle, "pi-1", 1, EventKind::Motion, 1_000),
            event_with_id(low, "pi-1", 2, EventKind::Motion, 2_000),
            event_with_id(high, "pi-2", 1, EventKind::ButtonPressed, 2_000),
        ];
        store.insert_events(&batch, at(5_000)).unwrap();
        let page = store.list_events(&EventFilter::default(), 10, None).unwrap();
        let ids: Vec<_> = page.items.iter().map(|i| i.id).collect();
        assert_eq!(ids, vec![high, low, middle]);
        assert_eq!(page.next_cursor, None);
    }

    fn cursor_pagination_walks_every_row_exactly_once_under_every_filter(db) {
        let store = db.open();
        let all = a_history(&store);
        assert_eq!(all.len(), 60);
        for filter in every_filter() {
            let want = expected(&all, &filter);
            for limit in [1, 7, 1000] {
                let got: Vec<_> = walk(&store, &filter, limit).into_iter().map(|i| i.id).collect();
                assert_eq!(got, want, "filter {filter:?}, limit {limit}");
            }
        }
    }

    fn a_page_that_ends_exactly_at_the_last_row_has_no_next_cursor(db) {
        let store = db.open();
        store.insert_events(&presses("pi-1", 1..=4), at(10)).unwrap();
        let first = store.list_events(&EventFilter::default(), 2, None).unwrap();
        let second = store
            .list_events(&EventFilter::default(), 2, first.next_cursor.as_deref())
            .unwrap();
        assert_eq!(second.items.len(), 2);
        assert_eq!(second.next_cursor, None);
    }

    fn a_garbage_cursor_is_invalid_and_says_what_to_do(db) {
        let store = db.open();
        for cursor in ["garbage", "", "djIuMS4y", "%%%"] {
            let err = store
                .list_events(&EventFilter::default(), 10, Some(cursor))
                .unwrap_err();
            assert!(
                matches!(&err, StoreError::Invalid(m) if m.contains("cursor") && m.contains("next_cursor")),
                "{cursor:?}: {err}"
            );
        }
    }

    fn a_limit_out_of_range_is_invalid(db) {
        let store = db.open();
        for limit in [0, 1_001] {
            let err = store.list_events(&EventFilter::default(), limit, None).unwrap_err();
            assert!(matches!(&err, StoreError::Invalid(m) if m.contains("limit")), "{err}");
        }
    }

    fn an_empty_store_lists_one_empty_page(db) {
        let store = db.open();
        let page = store.list_events(&EventFilter::default(), 50, None).unwrap();
        assert!(page.items.is_empty());
        assert_eq!(page.next_cursor, None);
    }
}
