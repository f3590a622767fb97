//! Video on the Pi, around the [`crate::recorder`]: the camera actor that runs it, the media
//! outbox on disk, the uploader, and local retention.
//!
//! - [`camera`]: the supervised [`CameraActor`] and the recorder's thread; triggers come from the
//!   outbox actor for each stored event.
//! - [`spool`]: the media outbox (clips, snapshots, one durable queue entry each).
//! - [`uploader`]: resumable, SHA-256-checked uploads through `/api/media/{id}` on its own thread.
//! - [`retention`]: the pure size and age bounds (media already in the cloud goes first).
//!
//! Invariants: a file is complete and fsynced under its final name before its queue entry exists,
//! and the entry is durable before the clip is announced or uploaded; media leaves the Pi's disk
//! only through retention, and media that never reached the cloud is deleted only when the bounds
//! leave no other choice, logged and counted.

pub mod camera;
pub mod retention;
pub mod spool;
pub mod uploader;

pub use camera::{CameraActor, CameraSetup, LiveTapFactory, StopCamera, Trigger};
pub use retention::RetentionPolicy;
pub use spool::{QueueEntry, Spool};
pub use uploader::{MediaCounters, UploaderHandle, UploaderSetup};
