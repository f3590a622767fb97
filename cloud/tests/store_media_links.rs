//! Media links across devices, on SQLite and on the machine's PostgreSQL: a clip or snapshot links
//! only its own device's events. A device naming another device's event in its clip's `event_ids`
//! (or its snapshot's `event_id`) gives that event no media, whichever arrives first; the link is
//! judged when read, so a clip announced before its own events still links them once they arrive.

#[macro_use]
mod store_support;

use protocol::media::{ClipCaptured, MediaManifest, SnapshotTaken, MEDIA_SCHEMA_VERSION};
use store_support::*;
use uuid::Uuid;
use vigie_cloud::store::{EventFilter, Store};

fn clip(device_id: &str, events: Vec<Uuid>) -> ClipCaptured {
    ClipCaptured {
        schema_version: MEDIA_SCHEMA_VERSION,
        clip_id: Uuid::now_v7(),
        device: device(device_id),
        trigger_offsets_ms: events.iter().map(|_| 5_000).collect(),
        event_ids: events,
        started_at: at(0),
        ended_at: at(15_000),
        duration_ms: 15_000,
        size_bytes: 1234,
        sha256: "ab".repeat(32),
        codec: "h264".into(),
        width: 640,
        height: 480,
        fps: 25,
    }
}

/// Stores a snapshot of `device_id` naming `event` (as a completed upload does).
fn store_snapshot(store: &Store, device_id: &str, event: Uuid) -> Uuid {
    let snapshot = SnapshotTaken {
        schema_version: MEDIA_SCHEMA_VERSION,
        snapshot_id: Uuid::now_v7(),
        device: device(device_id),
        event_id: Some(event),
        taken_at: at(5),
        size_bytes: 99,
        sha256: "cd".repeat(32),
        width: 640,
        height: 480,
    };
    let manifest = MediaManifest::Snapshot(snapshot);
    store.begin_upload(&manifest, at(6)).unwrap();
    assert!(store.complete_upload(manifest.id(), at(7)).unwrap());
    manifest.id()
}

/// `(clip_id, snapshot_id)` of a stored event as the event listing gives them.
fn listed_media(store: &Store, event: Uuid) -> (Option<Uuid>, Option<Uuid>) {
    let page = store
        .list_events(&EventFilter::default(), 100, None)
        .unwrap();
    let item = page.items.iter().find(|i| i.id == event).unwrap();
    (item.clip_id, item.snapshot_id)
}

store_tests! {
    fn a_clip_linking_another_devices_event_gives_that_event_no_clip_whichever_arrives_first(db) {
        let store = db.open();
        // pi-2's event 1 is stored before pi-1's clip names it; event 2 after.
        let victim_before = event("pi-2", 1, protocol::EventKind::Motion, 1);
        store.insert_events(std::slice::from_ref(&victim_before), at(1)).unwrap();
        let own = event("pi-1", 1, protocol::EventKind::ButtonPressed, 2);
        let victim_after = event("pi-2", 2, protocol::EventKind::Motion, 3);
        let c = clip("pi-1", vec![own.id, victim_before.id, victim_after.id]);
        store.announce_clip(&c, at(4)).unwrap();

        // Before pi-1's own event and pi-2's second one arrive: unknown ids keep their link.
        let stored = store.get_clip(c.clip_id).unwrap().unwrap().clip;
        assert_eq!(stored.event_ids, vec![own.id, victim_after.id]);
        assert!(store.media_of_event(victim_before.id).unwrap().0.is_none());

        store.insert_events(&[own.clone(), victim_after.clone()], at(5)).unwrap();
        let stored = store.get_clip(c.clip_id).unwrap().unwrap().clip;
        assert_eq!(stored.event_ids, vec![own.id], "only pi-1's own event counts");
        let (clip_of_own, _) = store.media_of_event(own.id).unwrap();
        assert_eq!(clip_of_own.map(|r| r.clip.clip_id), Some(c.clip_id));
        for victim in [&victim_before, &victim_after] {
            assert!(store.media_of_event(victim.id).unwrap().0.is_none(), "{}", victim.seq);
            assert_eq!(listed_media(&store, victim.id), (None, None));
        }
        assert_eq!(listed_media(&store, own.id), (Some(c.clip_id), None));

        // pi-2's own clip of its event still counts.
        let theirs = clip("pi-2", vec![victim_after.id]);
        store.announce_clip(&theirs, at(6)).unwrap();
        let (clip_of_victim, _) = store.media_of_event(victim_after.id).unwrap();
        assert_eq!(clip_of_victim.map(|r| r.clip.clip_id), Some(theirs.clip_id));
    }

    fn a_snapshot_naming_another_devices_event_is_not_that_events_snapshot(db) {
        let store = db.open();
        let victim = event("pi-2", 1, protocol::EventKind::Motion, 1);
        let own = event("pi-1", 1, protocol::EventKind::ButtonPressed, 2);
        store.insert_events(&[victim.clone(), own.clone()], at(1)).unwrap();
        let foreign = store_snapshot(&store, "pi-1", victim.id);
        let mine = store_snapshot(&store, "pi-1", own.id);

        assert!(store.media_of_event(victim.id).unwrap().1.is_none());
        assert_eq!(listed_media(&store, victim.id), (None, None));
        assert_eq!(store.get_snapshot(foreign).unwrap().unwrap().event_id, None);
        let (page, _) = store.list_snapshots(&device("pi-1"), 10, None).unwrap();
        let linked: Vec<(Uuid, Option<Uuid>)> = page.iter().map(|s| (s.id, s.event_id)).collect();
        assert!(linked.contains(&(foreign, None)), "{linked:?}");
        assert!(linked.contains(&(mine, Some(own.id))), "{linked:?}");
        assert_eq!(store.media_of_event(own.id).unwrap().1.map(|s| s.id), Some(mine));
        assert_eq!(listed_media(&store, own.id), (None, Some(mine)));
    }
}
