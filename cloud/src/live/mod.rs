//! The live-view gateway: cameras pushed over RTSP come out as HLS for browsers.
//!
//! [`LiveCameras`] is the registry the API reads: which cameras are streaming now, and where their
//! HLS playlist is written.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use protocol::DeviceId;

/// The cameras streaming now. Cheap to clone; shared by the gateway (writer) and the API (reader).
#[derive(Clone, Debug, Default)]
pub struct LiveCameras {
    inner: Arc<RwLock<HashMap<DeviceId, PathBuf>>>,
}

impl LiveCameras {
    pub fn new() -> LiveCameras {
        LiveCameras::default()
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
