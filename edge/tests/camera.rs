//! The camera actor in-process with the synthetic source (160x120 at 10 fps, real time) and a media
//! outbox in a temporary directory, no cloud: a trigger queues a snapshot of its event at once and a
//! clip covering it (1 s of pre-roll, 3 s in all); a second trigger during the clip extends it and
//! both events are in it; stopping mid-clip closes a shorter clip that is queued too. Every queued
//! file exists under its final name and matches its manifest's size and SHA-256.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ::actors::{HealthRegistry, SystemClock};
use actix::prelude::*;
use protocol::media::MediaManifest;
use protocol::{DeviceId, TopicPrefix};
use uuid::Uuid;
use vigie_edge::config::{VideoConfig, VideoSource};
use vigie_edge::media::spool::hash_file;
use vigie_edge::media::uploader::{self, MediaCounters, UploaderSetup};
use vigie_edge::media::{
    CameraActor, CameraSetup, QueueEntry, RetentionPolicy, Spool, StopCamera, Trigger,
};

fn video(dir: PathBuf) -> VideoConfig {
    VideoConfig {
        source: VideoSource::Synthetic,
        width: 160,
        height: 120,
        fps: 10,
        encoder: "libx264".into(),
        preset: "veryfast".into(),
        gop_s: 1,
        preroll_s: 1,
        clip_s: 3,
        max_clip_s: 6,
        preroll_max_bytes: 8 << 20,
        dir,
        retention_max_bytes: 1 << 30,
        retention_max_age: Duration::from_secs(3600),
        upload_chunk_bytes: 64 * 1024,
        live_url: None,
    }
}

async fn wait_for_entries(
    spool: &Spool,
    what: &str,
    cond: impl Fn(&[QueueEntry]) -> bool,
) -> Vec<QueueEntry> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let entries = spool.entries().unwrap();
        if cond(&entries) {
            return entries;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {entries:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn clips(entries: &[QueueEntry]) -> Vec<&protocol::media::ClipCaptured> {
    entries
        .iter()
        .filter_map(|e| match &e.manifest {
            MediaManifest::Clip(c) => Some(c),
            _ => None,
        })
        .collect()
}

#[actix::test]
async fn triggers_queue_snapshots_at_once_and_clips_covering_their_events() {
    let dir = tempfile::tempdir().unwrap();
    let config = video(dir.path().join("media"));
    let spool = Spool::open(&config.dir).unwrap();
    let (uploader, uploader_thread) = uploader::spawn(UploaderSetup {
        client: None,
        spool: spool.clone(),
        retention: RetentionPolicy {
            max_bytes: config.retention_max_bytes,
            max_age: config.retention_max_age,
        },
        chunk_bytes: config.upload_chunk_bytes,
        retry_base: Duration::from_millis(100),
        retry_max: Duration::from_secs(1),
        clock: SystemClock::shared(),
        counters: std::sync::Arc::new(MediaCounters::default()),
    })
    .unwrap();
    let setup = CameraSetup {
        config: config.clone(),
        device: DeviceId::new("pi-1").unwrap(),
        prefix: TopicPrefix::default(),
        spool: spool.clone(),
        uploader: uploader.clone(),
        publish: None,
    };
    let camera =
        CameraActor::new(setup, None, SystemClock::shared(), HealthRegistry::new()).start();

    // Past the pre-roll, one trigger, and a second 1 s later (inside the clip).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let first = Uuid::now_v7();
    camera.do_send(Trigger { event_id: first });
    let entries = wait_for_entries(&spool, "the first snapshot", |e| !e.is_empty()).await;
    match &entries[0].manifest {
        MediaManifest::Snapshot(s) => assert_eq!(s.event_id, Some(first)),
        other => panic!("expected a snapshot first, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let second = Uuid::now_v7();
    camera.do_send(Trigger { event_id: second });
    let entries = wait_for_entries(&spool, "the extended clip", |e| clips(e).len() == 1).await;
    let clip = clips(&entries)[0];
    assert_eq!(clip.event_ids, vec![first, second]);
    assert_eq!(clip.trigger_offsets_ms.len(), 2);
    assert!(
        (1000..=2000).contains(&clip.trigger_offsets_ms[0]),
        "1 s of pre-roll, in whole GOPs of 1 s: {:?}",
        clip.trigger_offsets_ms
    );
    let extended_to = clip.trigger_offsets_ms[1] + 2000;
    assert!(
        clip.duration_ms.abs_diff(extended_to) <= 200,
        "the second trigger extends the clip to 2 s after it ({extended_to} ms): {} ms",
        clip.duration_ms
    );
    assert_eq!((clip.width, clip.height, clip.fps), (160, 120, 10));
    assert!(clip.ended_at > clip.started_at);

    // A third trigger, then stop mid-clip: the shorter clip is closed and queued.
    let third = Uuid::now_v7();
    camera.do_send(Trigger { event_id: third });
    wait_for_entries(&spool, "the third snapshot", |e| e.len() == 4).await;
    camera.send(StopCamera).await.unwrap();
    let entries = spool.entries().unwrap();
    let clips = clips(&entries);
    assert_eq!(clips.len(), 2, "{entries:?}");
    assert_eq!(clips[1].event_ids, vec![third]);

    for entry in &entries {
        let (size, sha256) = hash_file(&spool.path(&entry.file)).unwrap();
        assert_eq!(size, entry.manifest.size_bytes());
        assert_eq!(sha256, entry.manifest.sha256());
        assert!(!entry.uploaded);
    }
    assert!(
        std::fs::read_dir(spool.work_dir())
            .unwrap()
            .next()
            .is_none(),
        "nothing left in work/"
    );
    uploader.stop();
    uploader_thread.join().unwrap();
}
