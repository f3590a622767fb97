//! The media tables on SQLite and on the machine's PostgreSQL: a clip is announced once whatever
//! path brings it, other metadata never overwrites it, uploads complete idempotently, events list
//! their clip and snapshot, snapshots page newest first.

#[macro_use]
mod store_support;

use protocol::media::{ClipCaptured, MediaManifest, SnapshotTaken, MEDIA_SCHEMA_VERSION};
use protocol::EventKind;
use store_support::*;
use uuid::Uuid;
use vigie_cloud::store::{Announced, EventFilter, UploadBegun};

fn clip(device_id: &str, events: Vec<Uuid>, start_ms: i64) -> ClipCaptured {
    ClipCaptured {
        schema_version: MEDIA_SCHEMA_VERSION,
        clip_id: Uuid::now_v7(),
        device: device(device_id),
        event_ids: events,
        started_at: at(start_ms),
        ended_at: at(start_ms + 15_000),
        duration_ms: 15_000,
        trigger_offsets_ms: vec![5_000],
        size_bytes: 1234,
        sha256: "ab".repeat(32),
        codec: "h264".into(),
        width: 640,
        height: 480,
        fps: 25,
    }
}

fn snapshot(device_id: &str, event: Option<Uuid>, taken_ms: i64) -> SnapshotTaken {
    SnapshotTaken {
        schema_version: MEDIA_SCHEMA_VERSION,
        snapshot_id: Uuid::now_v7(),
        device: device(device_id),
        event_id: event,
        taken_at: at(taken_ms),
        size_bytes: 99,
        sha256: "cd".repeat(32),
        width: 640,
        height: 480,
    }
}

store_tests! {
    fn the_staging_sweep_keeps_only_files_of_unfinished_uploads(db) {
        let store = db.open();
        let dir = tempfile::tempdir().unwrap();
        let staging = vigie_cloud::media::Staging::open(dir.path()).unwrap();
        let unfinished = MediaManifest::Snapshot(snapshot("pi-1", None, 0));
        let finished = MediaManifest::Snapshot(snapshot("pi-1", None, 1));
        for m in [&unfinished, &finished] {
            store.begin_upload(m, at(2)).unwrap();
            staging.append(m.id(), 0, b"part").unwrap();
        }
        assert!(store.complete_upload(finished.id(), at(3)).unwrap());
        let unknown = Uuid::now_v7();
        staging.append(unknown, 0, b"stray").unwrap();
        assert_eq!(vigie_cloud::media::sweep_staging(&staging, &store).unwrap(), 2);
        assert_eq!(staging.ids().unwrap(), vec![unfinished.id()]);
    }

    fn a_clip_announced_twice_is_stored_once_and_other_metadata_changes_nothing(db) {
        let store = db.open();
        let c = clip("pi-1", vec![Uuid::now_v7()], 0);
        assert_eq!(store.announce_clip(&c, at(1)).unwrap(), Announced::New);
        assert_eq!(store.announce_clip(&c, at(2)).unwrap(), Announced::Known);
        // The same metadata with sub-millisecond times (as a device may build it) is the same clip.
        let mut finer = c.clone();
        finer.started_at += chrono::Duration::nanoseconds(123);
        assert_eq!(store.announce_clip(&finer, at(2)).unwrap(), Announced::Known);
        let mut other = c.clone();
        other.size_bytes = 999;
        assert_eq!(store.announce_clip(&other, at(3)).unwrap(), Announced::Conflict);
        let stored = store.get_clip(c.clip_id).unwrap().unwrap();
        assert_eq!(stored.clip, c);
        assert!(!stored.available && !stored.deleted);
        // An upload manifest for the same clip agrees with the announcement...
        let manifest = MediaManifest::Clip(c.clone());
        assert!(matches!(store.begin_upload(&manifest, at(4)).unwrap(), UploadBegun::Created(_)));
        assert!(matches!(store.begin_upload(&manifest, at(5)).unwrap(), UploadBegun::Known(_)));
        // ...and one with other metadata for an announced clip is refused.
        let mut conflicting = clip("pi-1", vec![], 0);
        store.announce_clip(&conflicting, at(6)).unwrap();
        conflicting.sha256 = "ef".repeat(32);
        assert_eq!(
            store.begin_upload(&MediaManifest::Clip(conflicting.clone()), at(7)).unwrap(),
            UploadBegun::Conflict(None)
        );
        assert!(store.get_upload(conflicting.clip_id).unwrap().is_none());
    }

    fn an_upload_advances_only_from_where_it_is_and_completes_once(db) {
        let store = db.open();
        let c = clip("pi-1", vec![], 0);
        let id = c.clip_id;
        store.begin_upload(&MediaManifest::Clip(c), at(1)).unwrap();
        assert!(store.advance_upload(id, 0, 1000, at(2)).unwrap());
        assert!(!store.advance_upload(id, 0, 500, at(3)).unwrap(), "a stale writer cannot move it");
        assert_eq!(store.get_upload(id).unwrap().unwrap().received, 1000);
        store.reset_upload(id, at(4)).unwrap();
        assert_eq!(store.get_upload(id).unwrap().unwrap().received, 0);
        assert!(store.advance_upload(id, 0, 1234, at(5)).unwrap());
        assert!(store.complete_upload(id, at(6)).unwrap());
        assert!(!store.complete_upload(id, at(7)).unwrap(), "completing again is a no-op");
        let upload = store.get_upload(id).unwrap().unwrap();
        assert!(upload.complete);
        assert_eq!(upload.received, 1234);
        assert!(store.get_clip(id).unwrap().unwrap().available);
        assert_eq!(store.delete_clip(id, at(8)).unwrap(), Some(true));
        assert_eq!(store.delete_clip(id, at(9)).unwrap(), Some(false));
        assert_eq!(store.delete_clip(Uuid::now_v7(), at(9)).unwrap(), None);
        let deleted = store.get_clip(id).unwrap().unwrap();
        assert!(deleted.deleted && !deleted.available);
    }

    fn events_list_their_clip_and_snapshot_whichever_came_first(db) {
        let store = db.open();
        let events = vec![
            event("pi-1", 1, EventKind::ButtonPressed, 10),
            event("pi-1", 2, EventKind::Motion, 20),
            event("pi-1", 3, EventKind::Motion, 30),
        ];
        // The clip is announced before its events arrive.
        let c = clip("pi-1", vec![events[0].id, events[1].id], 0);
        store.announce_clip(&c, at(1)).unwrap();
        store.insert_events(&events, at(40)).unwrap();
        let s = snapshot("pi-1", Some(events[1].id), 20);
        let manifest = MediaManifest::Snapshot(s.clone());
        store.begin_upload(&manifest, at(41)).unwrap();
        store.advance_upload(s.snapshot_id, 0, 99, at(42)).unwrap();
        store.complete_upload(s.snapshot_id, at(43)).unwrap();

        let page = store.list_events(&EventFilter::default(), 10, None).unwrap();
        let by_seq = |seq: u64| page.items.iter().find(|e| e.seq == seq).unwrap();
        assert_eq!(by_seq(1).clip_id, Some(c.clip_id));
        assert_eq!(by_seq(1).snapshot_id, None);
        assert_eq!(by_seq(2).clip_id, Some(c.clip_id));
        assert_eq!(by_seq(2).snapshot_id, Some(s.snapshot_id));
        assert_eq!(by_seq(3).clip_id, None);
        assert_eq!(store.get_event(events[1].id).unwrap().unwrap().snapshot_id, Some(s.snapshot_id));
        let (clip_of, snapshot_of) = store.media_of_event(events[1].id).unwrap();
        assert_eq!(clip_of.unwrap().clip.clip_id, c.clip_id);
        assert_eq!(snapshot_of.unwrap().id, s.snapshot_id);

        // A deleted clip is no longer the event's.
        store.delete_clip(c.clip_id, at(50)).unwrap();
        assert_eq!(store.get_event(events[0].id).unwrap().unwrap().clip_id, None);
    }

    fn snapshots_page_newest_first_and_cameras_list_devices_with_media(db) {
        let store = db.open();
        let mut ids = Vec::new();
        for n in 0..5 {
            let s = snapshot("pi-2", None, n * 1000);
            let id = s.snapshot_id;
            store.begin_upload(&MediaManifest::Snapshot(s), at(0)).unwrap();
            store.advance_upload(id, 0, 99, at(0)).unwrap();
            store.complete_upload(id, at(0)).unwrap();
            ids.push(id);
        }
        ids.reverse();
        let (first, cursor) = store.list_snapshots(&device("pi-2"), 2, None).unwrap();
        let (second, cursor) = store.list_snapshots(&device("pi-2"), 2, cursor.as_deref()).unwrap();
        let (third, cursor) = store.list_snapshots(&device("pi-2"), 2, cursor.as_deref()).unwrap();
        assert!(cursor.is_none());
        let listed: Vec<Uuid> = first.iter().chain(&second).chain(&third).map(|s| s.id).collect();
        assert_eq!(listed, ids);

        let c = clip("pi-1", vec![], 0);
        store.begin_upload(&MediaManifest::Clip(c.clone()), at(1)).unwrap();
        store.advance_upload(c.clip_id, 0, 1234, at(1)).unwrap();
        store.complete_upload(c.clip_id, at(1)).unwrap();
        store.announce_clip(&clip("pi-1", vec![], 5), at(2)).unwrap();
        let cameras = store.list_cameras().unwrap();
        let summary: Vec<(String, u64)> =
            cameras.iter().map(|c| (c.device.to_string(), c.clips)).collect();
        assert_eq!(summary, vec![("pi-1".to_owned(), 1), ("pi-2".to_owned(), 0)]);
    }
}
