//! The live-view gateway: cameras pushed over RTSP come out as HLS for browsers, never transcoded.
//!
//! - [`rtsp`]: the embedded RTSP server (single-machine defaults): publishers only (ANNOUNCE,
//!   SETUP over TCP interleaved, RECORD), at `/live/{device}`, authenticated with the device's API
//!   token.
//! - [`pull`]: production, where the cluster's RTSP server receives the Pis: the cloud pulls each
//!   known device's stream from it (`rtsp_source_url`).
//! - [`rtp`]: RTP H.264 depacketizing (pure).
//! - [`hls`]: the HLS writer (FFmpeg's `hls` muxer) into `DATA_DIR/live/{device}/`.
//!
//! [`LiveCameras`] is the registry the API reads: which cameras are streaming now, and where their
//! HLS playlist is written. Invariant: a camera is in it only while a stream is being written, and
//! its directory is emptied when the stream ends.

pub mod hls;
pub mod pull;
pub mod rtp;
pub mod rtsp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use protocol::DeviceId;

use crate::store::Store;

/// How the gateway gets the cameras' streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveSource {
    /// Run the embedded RTSP server on this address; Pis push to it.
    Listen(SocketAddr),
    /// Pull from the cluster's RTSP server: a URL with `{device}` in it.
    Pull(String),
}

/// The gateway's settings.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    pub source: LiveSource,
    /// `DATA_DIR/live`: one directory per camera.
    pub dir: PathBuf,
    /// Target segment length: cut at the first keyframe after it, or by time below 1 s (the GOP).
    pub segment: Duration,
    /// Segments listed in the playlist.
    pub list_size: usize,
}

/// Segments in the sliding playlist: at least 6, and at least [`PLAYLIST_SPAN`] of video.
pub fn list_size(segment: Duration) -> usize {
    let span = PLAYLIST_SPAN.as_millis() as usize;
    let segment = (segment.as_millis() as usize).max(1);
    span.div_ceil(segment).max(6)
}

/// The least video a playlist lists.
pub const PLAYLIST_SPAN: Duration = Duration::from_secs(6);

/// What can stop the gateway from starting.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("cannot listen for RTSP publishers on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{what} ({}): {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("FFmpeg failed {what}: {source}")]
    Ffmpeg {
        what: &'static str,
        source: ffmpeg_next::Error,
    },
}

/// Starts the gateway on its own threads: the RTSP server or the pullers. Returns once it listens.
pub fn start(settings: LiveSettings, store: Store, cameras: LiveCameras) -> Result<(), LiveError> {
    ffmpeg_next::init().map_err(|source| LiveError::Ffmpeg {
        what: "initialising",
        source,
    })?;
    ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Error);
    crate::files::private_dir(&settings.dir).map_err(|source| LiveError::Io {
        what: "creating the live directory",
        path: settings.dir.clone(),
        source,
    })?;
    match settings.source.clone() {
        LiveSource::Listen(addr) => rtsp::start(addr, settings, store, cameras),
        LiveSource::Pull(template) => {
            pull::start(template, settings, store, cameras);
            Ok(())
        }
    }
}

/// A camera's HLS directory under the live directory.
pub fn camera_dir(live_dir: &Path, camera: &DeviceId) -> PathBuf {
    live_dir.join(camera.as_str())
}

/// The cameras streaming now. Cheap to clone; shared by the gateway (writer) and the API (reader),
/// with the embedded RTSP server's counters (read by `/metrics`).
#[derive(Clone, Debug, Default)]
pub struct LiveCameras {
    inner: Arc<RwLock<HashMap<DeviceId, PathBuf>>>,
    rtsp: Arc<rtsp::RtspMetrics>,
}

impl LiveCameras {
    pub fn new() -> LiveCameras {
        LiveCameras::default()
    }

    /// The embedded RTSP server's counters (zero when the cameras are pulled).
    pub fn rtsp_metrics(&self) -> Arc<rtsp::RtspMetrics> {
        self.rtsp.clone()
    }

    /// `camera` is streaming; its HLS files are in `dir`.
    pub fn mark_live(&self, camera: DeviceId, dir: PathBuf) {
        self.inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(camera, dir);
    }

    /// `camera` stopped streaming.
    pub fn mark_gone(&self, camera: &DeviceId) {
        self.inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(camera);
    }

    pub fn is_live(&self, camera: &DeviceId) -> bool {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(camera)
    }

    /// Where a streaming camera's HLS files are.
    pub fn hls_dir(&self, camera: &DeviceId) -> Option<PathBuf> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(camera)
            .cloned()
    }

    /// The cameras streaming now, sorted.
    pub fn cameras(&self) -> Vec<DeviceId> {
        let mut all: Vec<DeviceId> = self
            .inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        all.sort();
        all
    }
}
