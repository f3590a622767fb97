//! Video on the wire: clip and snapshot metadata (`video/{device}/captured` and the upload manifest),
//! the resumable upload protocol (`/api/media/{id}`), and the views the console reads.
//!
//! Each Pi has one camera, and the camera's id is the device's id.
//!
//! Upload (device token, the device's own media only), resumable and checked by SHA-256:
//! 1. `PUT /api/media/{id}` with a [`MediaManifest`] → [`UploadStatus`] (201 new, 200 already known
//!    with the same manifest, 409 when the id is known with another manifest).
//! 2. `PATCH /api/media/{id}` with the header [`UPLOAD_OFFSET_HEADER`] and at most [`MAX_CHUNK_BYTES`]
//!    of body → [`UploadStatus`]. An offset other than `received` is refused with 409 and the status
//!    (the client resumes from `received`). The chunk that completes the file is checked against the
//!    manifest's size and SHA-256: a mismatch is refused with 422 and the upload starts again from 0.
//!    When the cloud holds every byte but did not finish (it stopped after the last chunk), an
//!    empty `PATCH` at offset `size` asks it to check and store the file.
//! 3. `GET /api/media/{id}` → [`UploadStatus`] (where to resume after a restart).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{decode_json, DecodeError, DeviceId, Topic};

/// The clip metadata schema this build writes.
pub const MEDIA_SCHEMA_VERSION: u32 = 1;

/// The header carrying a chunk's offset in `PATCH /api/media/{id}`.
pub const UPLOAD_OFFSET_HEADER: &str = "Upload-Offset";

/// The largest chunk the cloud accepts in one `PATCH`.
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;

/// The largest clip or snapshot the cloud accepts (a 60 s clip at 1080p is ~40 MB).
pub const MAX_MEDIA_BYTES: u64 = 512 * 1024 * 1024;

/// The most events one clip may link (`event_ids`): a 60 s clip with a trigger a second fits.
pub const MAX_CLIP_EVENTS: usize = 64;

/// A clip on the Pi, complete and fsynced: published on `video/{device}/captured` once its metadata
/// is in the outbox, and the manifest of its upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClipCaptured {
    pub schema_version: u32,
    /// UUIDv7 made on the Pi when the clip was closed.
    pub clip_id: Uuid,
    pub device: DeviceId,
    /// The events whose triggers the clip covers, in order: at most [`MAX_CLIP_EVENTS`], of the
    /// clip's own device (the cloud counts a link to another device's event as no link).
    #[schemars(length(max = MAX_CLIP_EVENTS))]
    pub event_ids: Vec<Uuid>,
    /// The time of the clip's first frame, by the device's clock.
    #[serde(with = "crate::time::rfc3339_ms")]
    #[schemars(with = "String")]
    pub started_at: DateTime<Utc>,
    /// The end of its last frame.
    #[serde(with = "crate::time::rfc3339_ms")]
    #[schemars(with = "String")]
    pub ended_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// Where each trigger lies in the clip, in milliseconds from its start (same order as
    /// `event_ids` when each trigger had an event).
    #[serde(default)]
    pub trigger_offsets_ms: Vec<u64>,
    pub size_bytes: u64,
    /// SHA-256 of the MP4 file, lowercase hex.
    pub sha256: String,
    /// `h264`.
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl ClipCaptured {
    /// Decodes a `video/{device}/captured` payload and checks it agrees with its topic.
    pub fn from_mqtt(topic: &Topic, payload: &[u8]) -> Result<ClipCaptured, DecodeError> {
        let clip: ClipCaptured = decode_json("clip metadata", payload)?;
        if let Topic::ClipCaptured(device) = topic {
            if device != &clip.device {
                return Err(DecodeError::Mismatch {
                    what: "clip metadata",
                    reason: format!("topic device {device} but payload device {}", clip.device),
                });
            }
        }
        clip.validate().map_err(|reason| DecodeError::Mismatch {
            what: "clip metadata",
            reason,
        })?;
        Ok(clip)
    }

    /// Checks what serde cannot: hash form, sizes, times, how many events it links.
    pub fn validate(&self) -> Result<(), String> {
        if self.event_ids.len() > MAX_CLIP_EVENTS {
            return Err(format!(
                "event_ids holds {} event ids; a clip links at most {MAX_CLIP_EVENTS}",
                self.event_ids.len()
            ));
        }
        check_sha256(&self.sha256)?;
        check_size(self.size_bytes)?;
        if self.ended_at < self.started_at {
            return Err(format!(
                "ended_at {} is before started_at {}",
                self.ended_at, self.started_at
            ));
        }
        if self.codec.is_empty() || self.codec.len() > 16 {
            return Err(format!("codec {:?} must be 1 to 16 characters", self.codec));
        }
        Ok(())
    }
}

/// A JPEG taken at a trigger: the manifest of its upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotTaken {
    pub schema_version: u32,
    /// UUIDv7 made on the Pi when the snapshot was written.
    pub snapshot_id: Uuid,
    pub device: DeviceId,
    /// The event whose trigger it shows (absent for a snapshot taken without an event).
    #[serde(default)]
    pub event_id: Option<Uuid>,
    #[serde(with = "crate::time::rfc3339_ms")]
    #[schemars(with = "String")]
    pub taken_at: DateTime<Utc>,
    pub size_bytes: u64,
    /// SHA-256 of the JPEG file, lowercase hex.
    pub sha256: String,
    pub width: u32,
    pub height: u32,
}

impl SnapshotTaken {
    pub fn validate(&self) -> Result<(), String> {
        check_sha256(&self.sha256)?;
        check_size(self.size_bytes)
    }
}

/// `PUT /api/media/{id}` body: what is about to be uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MediaManifest {
    Clip(ClipCaptured),
    Snapshot(SnapshotTaken),
}

impl MediaManifest {
    pub fn id(&self) -> Uuid {
        match self {
            MediaManifest::Clip(c) => c.clip_id,
            MediaManifest::Snapshot(s) => s.snapshot_id,
        }
    }

    pub fn device(&self) -> &DeviceId {
        match self {
            MediaManifest::Clip(c) => &c.device,
            MediaManifest::Snapshot(s) => &s.device,
        }
    }

    pub fn size_bytes(&self) -> u64 {
        match self {
            MediaManifest::Clip(c) => c.size_bytes,
            MediaManifest::Snapshot(s) => s.size_bytes,
        }
    }

    pub fn sha256(&self) -> &str {
        match self {
            MediaManifest::Clip(c) => &c.sha256,
            MediaManifest::Snapshot(s) => &s.sha256,
        }
    }

    /// `clip` or `snapshot`.
    pub fn kind(&self) -> &'static str {
        match self {
            MediaManifest::Clip(_) => "clip",
            MediaManifest::Snapshot(_) => "snapshot",
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        match self {
            MediaManifest::Clip(c) => c.validate(),
            MediaManifest::Snapshot(s) => s.validate(),
        }
    }
}

/// Where an upload stands (`PUT`, `PATCH` and `GET /api/media/{id}`; also the body of a 409).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UploadStatus {
    pub id: Uuid,
    /// Bytes received and kept: the offset of the next chunk.
    pub received: u64,
    pub size: u64,
    /// The whole file arrived and matched its SHA-256; it is in the media store.
    pub complete: bool,
}

/// One camera as `GET /api/cameras` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CameraView {
    /// The camera's id: its device's id.
    pub id: DeviceId,
    pub device: DeviceId,
    /// Whether a live stream is being received now.
    pub live: bool,
    /// The HLS playlist (`GET /api/cameras/{id}/stream`), signed for the caller: usable as is by a
    /// player that cannot send headers, for a few minutes.
    pub stream_url: String,
    /// The newest snapshot, if any.
    #[serde(default)]
    pub last_snapshot: Option<SnapshotView>,
    /// Clips stored in the cloud.
    pub clips: u64,
}

/// A stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotView {
    pub id: Uuid,
    pub camera: DeviceId,
    #[serde(default)]
    pub event_id: Option<Uuid>,
    #[serde(with = "crate::time::rfc3339_ms")]
    #[schemars(with = "String")]
    pub taken_at: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
    pub size_bytes: u64,
    /// The JPEG, signed for the caller (usable in an `<img>` for a few minutes).
    pub url: String,
}

/// `GET /api/cameras/{id}/snapshots` answer: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotPage {
    pub items: Vec<SnapshotView>,
    pub next_cursor: Option<String>,
}

/// A clip the cloud knows of: announced on `video/{device}/captured`, playable once uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClipView {
    pub id: Uuid,
    pub camera: DeviceId,
    pub event_ids: Vec<Uuid>,
    #[serde(with = "crate::time::rfc3339_ms")]
    #[schemars(with = "String")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::time::rfc3339_ms")]
    #[schemars(with = "String")]
    pub ended_at: DateTime<Utc>,
    pub duration_ms: u64,
    #[serde(default)]
    pub trigger_offsets_ms: Vec<u64>,
    pub size_bytes: u64,
    pub sha256: String,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// Whether the file is in the media store (false: announced, upload pending).
    pub available: bool,
    /// The MP4 (`GET /api/clips/{id}`, HTTP Range), signed for the caller; absent until available.
    #[serde(default)]
    pub url: Option<String>,
}

/// `GET /api/events/{id}/media`: the clip and snapshot of one event, when they exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventMedia {
    pub event_id: Uuid,
    #[serde(default)]
    pub clip: Option<ClipView>,
    #[serde(default)]
    pub snapshot: Option<SnapshotView>,
}

/// A WebSocket frame's data when a clip or snapshot has arrived in the media store: the console
/// fetches `GET /api/events/{id}/media` for the events it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MediaReady {
    /// `clip` or `snapshot`.
    pub kind: String,
    pub id: Uuid,
    pub camera: DeviceId,
    pub event_ids: Vec<Uuid>,
}

fn check_sha256(hex: &str) -> Result<(), String> {
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(format!(
            "sha256 {hex:?} must be 64 lowercase hexadecimal characters"
        ))
    }
}

fn check_size(size: u64) -> Result<(), String> {
    if size == 0 {
        Err("size_bytes is 0: an empty file is not media".into())
    } else if size > MAX_MEDIA_BYTES {
        Err(format!(
            "size_bytes {size} is above the limit of {MAX_MEDIA_BYTES}"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip() -> ClipCaptured {
        let t = DateTime::parse_from_rfc3339("2026-11-27T10:00:00.000Z")
            .unwrap()
            .with_timezone(&Utc);
        ClipCaptured {
            schema_version: MEDIA_SCHEMA_VERSION,
            clip_id: Uuid::now_v7(),
            device: DeviceId::new("pi-1").unwrap(),
            event_ids: vec![Uuid::now_v7()],
            started_at: t,
            ended_at: t + chrono::Duration::seconds(15),
            duration_ms: 15_000,
            trigger_offsets_ms: vec![5_000],
            size_bytes: 1234,
            sha256: "ab".repeat(32),
            codec: "h264".into(),
            width: 640,
            height: 480,
            fps: 30,
        }
    }

    #[test]
    fn a_manifest_is_tagged_by_kind_and_round_trips() {
        let manifest = MediaManifest::Clip(clip());
        let v = serde_json::to_value(&manifest).unwrap();
        assert_eq!(v["kind"], "clip");
        assert_eq!(v["size_bytes"], 1234);
        assert_eq!(
            serde_json::from_value::<MediaManifest>(v).unwrap(),
            manifest
        );
    }

    #[test]
    fn captured_must_agree_with_its_topic() {
        let c = clip();
        let payload = serde_json::to_vec(&c).unwrap();
        let own = Topic::ClipCaptured(c.device.clone());
        assert_eq!(ClipCaptured::from_mqtt(&own, &payload).unwrap(), c);
        let other = Topic::ClipCaptured(DeviceId::new("pi-2").unwrap());
        let err = ClipCaptured::from_mqtt(&other, &payload).unwrap_err();
        assert!(err.to_string().contains("pi-2"), "{err}");
    }

    #[test]
    fn bad_hashes_sizes_and_times_are_named() {
        let mut c = clip();
        c.sha256 = "AB".repeat(32);
        assert!(c.validate().unwrap_err().contains("sha256"));
        let mut c = clip();
        c.size_bytes = 0;
        assert!(c.validate().unwrap_err().contains("size_bytes"));
        let mut c = clip();
        c.ended_at = c.started_at - chrono::Duration::seconds(1);
        assert!(c.validate().unwrap_err().contains("ended_at"));
    }

    #[test]
    fn a_clip_links_at_most_64_events() {
        let mut c = clip();
        c.event_ids = (0..MAX_CLIP_EVENTS).map(|_| Uuid::now_v7()).collect();
        assert!(c.validate().is_ok());
        let payload = serde_json::to_vec(&c).unwrap();
        let topic = Topic::ClipCaptured(c.device.clone());
        assert!(ClipCaptured::from_mqtt(&topic, &payload).is_ok());
        c.event_ids.push(Uuid::now_v7());
        let err = c.validate().unwrap_err();
        assert!(err.contains("event_ids") && err.contains("65"), "{err}");
        assert!(MediaManifest::Clip(c.clone()).validate().is_err());
        let payload = serde_json::to_vec(&c).unwrap();
        assert!(ClipCaptured::from_mqtt(&topic, &payload).is_err());
    }
}
