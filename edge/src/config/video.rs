//! `[video]`: the camera, the recorder, the media outbox and the live stream. Absent or
//! `source = "none"`: no camera, events only.

use std::path::{Path, PathBuf};
use std::time::Duration;

use protocol::media::MAX_CHUNK_BYTES;
use protocol::DeviceId;
use serde::Deserialize;

use super::ConfigError;

/// `[video]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVideo {
    /// `none`, `synthetic` (moving pattern with the time burned in), `v4l` (a USB camera, or a Pi
    /// camera module through libcamera's V4L2 layer) or `rpicam` (`rpicam-vid`'s H.264 on a pipe).
    /// Env: `VIGIE_EDGE_VIDEO_SOURCE`.
    #[serde(default = "default_source")]
    pub source: String,
    /// The V4L2 device (`source = "v4l"`).
    #[serde(default = "default_v4l_device")]
    pub device: PathBuf,
    /// What to ask the V4L2 camera for: `auto` (H.264 if offered, then MJPEG, then YUYV), `h264`,
    /// `mjpeg` or `yuyv`.
    #[serde(default = "default_pixel_format")]
    pub pixel_format: String,
    #[serde(default = "default_width")]
    pub width: u32,
    #[serde(default = "default_height")]
    pub height: u32,
    #[serde(default = "default_fps")]
    pub fps: u32,
    /// `libx264` (software) or `h264_v4l2m2m` (the Pi 4's hardware encoder). Not used when the
    /// camera gives H.264 itself.
    #[serde(default = "default_encoder")]
    pub encoder: String,
    /// libx264's preset.
    #[serde(default = "default_preset")]
    pub preset: String,
    /// Seconds between keyframes (the pre-roll and the live segments are cut at keyframes).
    #[serde(default = "default_gop_s")]
    pub gop_s: u32,
    #[serde(default = "default_preroll_s")]
    pub preroll_s: u32,
    #[serde(default = "default_clip_s")]
    pub clip_s: u32,
    #[serde(default = "default_max_clip_s")]
    pub max_clip_s: u32,
    /// Memory bound of the pre-roll, MiB of encoded video.
    #[serde(default = "default_preroll_max_mb")]
    pub preroll_max_mb: u32,
    /// Where clips, snapshots and the media queue live (default: `outbox.data_dir` + `-media`).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Local retention: the media directory's size bound, MiB. Clips already in the cloud go first.
    #[serde(default = "default_retention_max_mb")]
    pub retention_max_mb: u64,
    /// Local retention: clips and snapshots older than this are deleted (uploaded or not), seconds.
    #[serde(default = "default_retention_max_age_s")]
    pub retention_max_age_s: u64,
    /// Upload chunk size, KiB (at most 1024).
    #[serde(default = "default_upload_chunk_kb")]
    pub upload_chunk_kb: u32,
    /// `rtsp://host:port/live/{device}`: where the live stream is pushed (`{device}` is replaced by
    /// the device id); unset: no live stream. Env: `VIGIE_EDGE_LIVE_URL`.
    #[serde(default)]
    pub live_url: Option<String>,
    /// The live-push token (the bundle's `live.token`; not the API token, which the RTSP server
    /// refuses), inline; instead of `live_token_file`. Env: `VIGIE_EDGE_LIVE_TOKEN`.
    #[serde(default)]
    pub live_token: Option<String>,
    /// A file holding the live-push token, readable by its owner only; required with `live_url`
    /// unless `live_token` is set. Env: `VIGIE_EDGE_LIVE_TOKEN_FILE`.
    #[serde(default)]
    pub live_token_file: Option<PathBuf>,
    /// The `rpicam-vid` command (`source = "rpicam"`).
    #[serde(default = "default_rpicam_command")]
    pub rpicam_command: String,
}

impl Default for RawVideo {
    fn default() -> Self {
        toml::from_str("").expect("every [video] key has a default")
    }
}

fn default_source() -> String {
    "none".into()
}
fn default_v4l_device() -> PathBuf {
    PathBuf::from("/dev/video0")
}
fn default_pixel_format() -> String {
    "auto".into()
}
fn default_width() -> u32 {
    640
}
fn default_height() -> u32 {
    480
}
fn default_fps() -> u32 {
    15
}
fn default_encoder() -> String {
    "libx264".into()
}
fn default_preset() -> String {
    "veryfast".into()
}
fn default_gop_s() -> u32 {
    1
}
fn default_preroll_s() -> u32 {
    5
}
fn default_clip_s() -> u32 {
    15
}
fn default_max_clip_s() -> u32 {
    60
}
fn default_preroll_max_mb() -> u32 {
    32
}
fn default_retention_max_mb() -> u64 {
    2048
}
fn default_retention_max_age_s() -> u64 {
    14 * 24 * 3600
}
fn default_upload_chunk_kb() -> u32 {
    1024
}
fn default_rpicam_command() -> String {
    "rpicam-vid".into()
}

/// Where frames come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoSource {
    Synthetic,
    V4l {
        device: PathBuf,
        pixel_format: V4lFormat,
    },
    Rpicam {
        command: String,
    },
}

/// The V4L2 pixel format asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V4lFormat {
    Auto,
    H264,
    Mjpeg,
    Yuyv,
}

/// `[video]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    pub source: VideoSource,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub encoder: String,
    pub preset: String,
    pub gop_s: u32,
    pub preroll_s: u32,
    pub clip_s: u32,
    pub max_clip_s: u32,
    pub preroll_max_bytes: usize,
    pub dir: PathBuf,
    pub retention_max_bytes: u64,
    pub retention_max_age: Duration,
    pub upload_chunk_bytes: usize,
    /// The live stream's URL with the device id in place.
    pub live_url: Option<String>,
}

/// Checks `[video]`; `None` when there is no camera.
pub fn check_video(
    raw: &RawVideo,
    device: &DeviceId,
    data_dir: &Path,
) -> Result<Option<VideoConfig>, ConfigError> {
    let key = |k: &str| format!("video.{k}");
    let source = match raw.source.as_str() {
        "none" => return Ok(None),
        "synthetic" => VideoSource::Synthetic,
        "v4l" => VideoSource::V4l {
            device: raw.device.clone(),
            pixel_format: match raw.pixel_format.as_str() {
                "auto" => V4lFormat::Auto,
                "h264" => V4lFormat::H264,
                "mjpeg" => V4lFormat::Mjpeg,
                "yuyv" => V4lFormat::Yuyv,
                other => {
                    return Err(ConfigError::invalid(
                        key("pixel_format"),
                        format!("{other:?} is not one of auto, h264, mjpeg, yuyv"),
                    ))
                }
            },
        },
        "rpicam" => VideoSource::Rpicam {
            command: raw.rpicam_command.clone(),
        },
        other => {
            return Err(ConfigError::invalid(
                key("source"),
                format!("{other:?} is not one of none, synthetic, v4l, rpicam"),
            ))
        }
    };
    if raw.width < 64 || raw.height < 48 || raw.width % 2 == 1 || raw.height % 2 == 1 {
        return Err(ConfigError::invalid(
            key("width"),
            format!(
                "{}x{} is not usable: give an even size of at least 64x48",
                raw.width, raw.height
            ),
        ));
    }
    if raw.fps == 0 || raw.fps > 60 {
        return Err(ConfigError::invalid(key("fps"), "must be between 1 and 60"));
    }
    if raw.gop_s == 0 || raw.gop_s > 10 {
        return Err(ConfigError::invalid(
            key("gop_s"),
            "must be between 1 and 10 seconds",
        ));
    }
    if raw.clip_s <= raw.preroll_s || raw.max_clip_s < raw.clip_s {
        return Err(ConfigError::invalid(
            key("clip_s"),
            format!(
                "a clip of {} s with {} s of pre-roll and a maximum of {} s: need preroll_s < clip_s <= max_clip_s",
                raw.clip_s, raw.preroll_s, raw.max_clip_s
            ),
        ));
    }
    if raw.preroll_max_mb == 0 {
        return Err(ConfigError::invalid(
            key("preroll_max_mb"),
            "must be greater than 0",
        ));
    }
    if raw.retention_max_mb == 0 || raw.retention_max_age_s == 0 {
        return Err(ConfigError::invalid(
            key("retention_max_mb"),
            "retention_max_mb and retention_max_age_s must be greater than 0",
        ));
    }
    let chunk = raw.upload_chunk_kb as usize * 1024;
    if chunk == 0 || chunk > MAX_CHUNK_BYTES {
        return Err(ConfigError::invalid(
            key("upload_chunk_kb"),
            format!(
                "must be between 1 and {} (the cloud's largest chunk)",
                MAX_CHUNK_BYTES / 1024
            ),
        ));
    }
    let live_url = match raw.live_url.as_deref().filter(|u| !u.is_empty()) {
        None => None,
        Some(url) if url.starts_with("rtsp://") => Some(url.replace("{device}", device.as_str())),
        Some(url) if url.starts_with("rtsps://") => {
            // Nothing here can push it: the live publisher speaks RTSP/TCP only, and the cloud's
            // embedded RTSP server has no TLS.
            return Err(ConfigError::invalid(
                key("live_url"),
                format!(
                    "{url:?}: rtsps:// is not supported (the live publisher and the cloud's \
                     embedded RTSP server speak plain RTSP/TCP); use rtsp:// over loopback or \
                     inside a TLS tunnel or VPN"
                ),
            ));
        }
        Some(url) => {
            return Err(ConfigError::invalid(
                key("live_url"),
                format!("{url:?} must start with rtsp://"),
            ))
        }
    };
    let dir = match &raw.dir {
        Some(dir) if dir.as_os_str().is_empty() => {
            return Err(ConfigError::invalid(key("dir"), "must not be empty"))
        }
        Some(dir) => dir.clone(),
        None => {
            let mut name = data_dir
                .file_name()
                .map(|n| n.to_owned())
                .unwrap_or_else(|| "data".into());
            name.push("-media");
            data_dir.with_file_name(name)
        }
    };
    Ok(Some(VideoConfig {
        source,
        width: raw.width,
        height: raw.height,
        fps: raw.fps,
        encoder: raw.encoder.clone(),
        preset: raw.preset.clone(),
        gop_s: raw.gop_s,
        preroll_s: raw.preroll_s,
        clip_s: raw.clip_s,
        max_clip_s: raw.max_clip_s,
        preroll_max_bytes: raw.preroll_max_mb as usize * 1024 * 1024,
        dir,
        retention_max_bytes: raw.retention_max_mb * 1024 * 1024,
        retention_max_age: Duration::from_secs(raw.retention_max_age_s),
        upload_chunk_bytes: chunk,
        live_url,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> DeviceId {
        DeviceId::new("pi-1").unwrap()
    }

    fn video(text: &str) -> Result<Option<VideoConfig>, ConfigError> {
        let raw: RawVideo = toml::from_str(text).unwrap();
        check_video(&raw, &device(), Path::new("/var/lib/vigie/outbox"))
    }

    #[test]
    fn no_camera_by_default() {
        assert_eq!(video("").unwrap(), None);
    }

    #[test]
    fn a_synthetic_camera_takes_the_defaults_and_a_live_url_names_the_device() {
        let v = video("source = \"synthetic\"\nlive_url = \"rtsp://cloud:8554/live/{device}\"")
            .unwrap()
            .unwrap();
        assert_eq!(v.source, VideoSource::Synthetic);
        assert_eq!((v.width, v.height, v.fps), (640, 480, 15));
        assert_eq!((v.preroll_s, v.clip_s, v.max_clip_s), (5, 15, 60));
        assert_eq!(v.dir, PathBuf::from("/var/lib/vigie/outbox-media"));
        assert_eq!(v.live_url.as_deref(), Some("rtsp://cloud:8554/live/pi-1"));
        assert_eq!(v.upload_chunk_bytes, 1024 * 1024);
    }

    #[test]
    fn bad_values_name_their_key() {
        let key = |text: &str| match video(text).unwrap_err() {
            ConfigError::Invalid { key, .. } => key,
            other => panic!("{other}"),
        };
        assert_eq!(key("source = \"webcam\""), "video.source");
        assert_eq!(
            key("source = \"v4l\"\npixel_format = \"rgb\""),
            "video.pixel_format"
        );
        assert_eq!(key("source = \"synthetic\"\nwidth = 641"), "video.width");
        assert_eq!(key("source = \"synthetic\"\nclip_s = 5"), "video.clip_s");
        assert_eq!(
            key("source = \"synthetic\"\nupload_chunk_kb = 4096"),
            "video.upload_chunk_kb"
        );
        assert_eq!(
            key("source = \"synthetic\"\nlive_url = \"http://x\""),
            "video.live_url"
        );
    }
}
