//! The recorder (Pi side of video): a camera source's raw frames are encoded to H.264 and kept in a
//! pre-roll of whole GOPs in RAM; a trigger writes a JPEG snapshot of its frame and opens a clip (the
//! pre-roll plus what follows, 15 s in all by default, extended by new triggers up to a maximum),
//! remuxed without re-encoding into an MP4 with faststart.
//!
//! - [`source`]: the [`CameraSource`] trait and the synthetic source (counter and time burned in).
//! - [`burn`]: the bitmap font and the binary counter strip (readable back after decoding).
//! - [`encoder`]: H.264 through ffmpeg-next (libx264 `veryfast`, or a named encoder such as
//!   `h264_v4l2m2m`), GOP of 1 s, no B-frames.
//! - [`preroll`] and [`timing`]: the pure cores (ring buffer of GOPs; clip start, end, extension).
//! - [`mp4`] and [`snapshot`]: the files.
//! - [`pipeline`]: the [`Recorder`], the synchronous loop tying them, for an actor on its own thread.
//!
//! Invariant: a clip or snapshot under its final name is complete and fsynced (written as
//! `.partial`, fsynced, renamed, directory fsynced) before it is reported, so its metadata can never
//! go anywhere before the file is on disk. Not wired into the app, the outbox or the protocol yet.

pub mod annexb;
pub mod burn;
pub mod camera_pipe;
pub mod camera_v4l;
pub mod encoder;
pub mod live;
pub mod mp4;
pub mod passthrough;
pub mod pipeline;
pub mod preroll;
pub mod snapshot;
pub mod source;
pub mod timing;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use encoder::{EncoderConfig, H264Encoder};
pub use passthrough::{H264Source, H264Unit};
pub use pipeline::{ClipReport, PacketTap, Recorder, RecorderConfig, TriggerReport};
pub use source::{CameraSource, FrameFormat, Pacing, RawFrame, SyntheticSource};

/// An encoded H.264 packet, owned (no FFmpeg type): timestamps in the encoder's time base (1/fps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPacket {
    pub data: Arc<[u8]>,
    pub pts: i64,
    pub dts: i64,
    pub duration: i64,
    pub keyframe: bool,
}

impl EncodedPacket {
    /// A one-tick packet with pts = dts (what the encoder makes, since it has no B-frames).
    pub fn new(data: Vec<u8>, pts: i64, keyframe: bool) -> Self {
        Self {
            data: data.into(),
            pts,
            dts: pts,
            duration: 1,
            keyframe,
        }
    }
}

/// What can go wrong in the recorder; each says what was being done.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("recorder configuration: {0}")]
    Config(String),
    #[error("FFmpeg failed {what}: {source}")]
    Ffmpeg {
        what: String,
        #[source]
        source: ffmpeg_next::Error,
    },
    #[error("{what} ({}): {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RecorderError {
    pub(crate) fn ffmpeg(what: &str, source: ffmpeg_next::Error) -> Self {
        Self::Ffmpeg {
            what: what.to_string(),
            source,
        }
    }
}

/// Initialises FFmpeg once, with its log at warnings and above (libx264's per-stream statistics are
/// info).
pub(crate) fn init_ffmpeg() -> Result<(), RecorderError> {
    static INIT: std::sync::OnceLock<Result<(), ffmpeg_next::Error>> = std::sync::OnceLock::new();
    let result = *INIT.get_or_init(|| {
        ffmpeg_next::init()?;
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Warning);
        Ok(())
    });
    result.map_err(|e| RecorderError::ffmpeg("initialising FFmpeg", e))
}

/// Fsyncs the directory holding `path`, so a rename into it survives a power cut.
pub(crate) fn sync_dir(path: &Path) -> Result<(), RecorderError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| RecorderError::Io {
            what: "fsyncing the directory",
            path: dir.to_path_buf(),
            source,
        })
}
