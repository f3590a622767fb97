//! Production mode: the Pis push to the cluster's RTSP server, and the cloud pulls each device it
//! knows from there (`rtsp_source_url`, e.g. `rtsp://rtsp-server:8554/live/{device}`) over RTSP/TCP
//! with FFmpeg, writing the same HLS as the embedded server. One thread per device, reconnecting
//! with capped exponential backoff while the device is not publishing; the device list is read
//! again every [`RESCAN`], so a device added at run time is picked up.

use std::collections::HashSet;
use std::time::Duration;

use actors::Backoff;
use ffmpeg::{format, Dictionary, Packet};
use ffmpeg_next as ffmpeg;
use protocol::DeviceId;

use super::hls::{Frame, HlsWriter};
use super::{camera_dir, LiveCameras, LiveSettings};
use crate::store::Store;

/// How often the device list is read again.
pub const RESCAN: Duration = Duration::from_secs(30);

/// The source URL of one device: `{device}` in the template replaced by its id.
pub fn source_url(template: &str, device: &DeviceId) -> String {
    template.replace("{device}", device.as_str())
}

/// `url` with its userinfo (the RTSP server's credentials) replaced by `***`, for logs.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// Starts the manager thread, which starts one puller per known device.
pub fn start(template: String, settings: LiveSettings, store: Store, cameras: LiveCameras) {
    tracing::info!(source = %redacted(&template), "live view pulls from the cluster's RTSP server");
    let spawned = std::thread::Builder::new()
        .name("live-pull".into())
        .spawn(move || {
            let mut running: HashSet<DeviceId> = HashSet::new();
            loop {
                match store.list_devices() {
                    Ok(devices) => {
                        for device in devices.into_iter().map(|d| d.id) {
                            if running.insert(device.clone()) {
                                let url = source_url(&template, &device);
                                let (settings, cameras) = (settings.clone(), cameras.clone());
                                let _ = std::thread::Builder::new()
                                    .name(format!("live-pull-{device}"))
                                    .spawn(move || pull_forever(url, device, settings, cameras));
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot list devices for live view"),
                }
                std::thread::sleep(RESCAN);
            }
        });
    if spawned.is_err() {
        tracing::error!("cannot start the live-view puller");
    }
}

fn pull_forever(url: String, device: DeviceId, settings: LiveSettings, cameras: LiveCameras) {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    let mut last_error = None;
    loop {
        match pull_once(&url, &device, &settings, &cameras) {
            Ok(()) => {
                backoff.reset();
                last_error = None;
            }
            Err(error) => {
                if last_error.as_ref() != Some(&error) {
                    tracing::info!(device_id = %device, %error, "no live stream from the RTSP server; retrying");
                    last_error = Some(error);
                }
            }
        }
        std::thread::sleep(backoff.next_delay());
    }
}

/// Reads the device's stream until it ends; Ok when it ended normally.
fn pull_once(
    url: &str,
    device: &DeviceId,
    settings: &LiveSettings,
    cameras: &LiveCameras,
) -> Result<(), String> {
    let (mut input, source) = open_source(url)?;
    let dir = camera_dir(&settings.dir, device);
    let mut hls = HlsWriter::create(
        &dir,
        source.parameters,
        source.time_base,
        settings.segment,
        settings.list_size,
    )
    .map_err(|e| e.to_string())?;
    cameras.mark_live(device.clone(), dir);
    tracing::info!(device_id = %device, "camera streaming (pulled)");
    let result = pump(&mut input, source.index, &mut hls);
    cameras.mark_gone(device);
    hls.finish();
    tracing::info!(device_id = %device, "camera stopped streaming (pulled)");
    result
}

/// The video stream of an opened source.
struct Source {
    index: usize,
    parameters: ffmpeg::codec::Parameters,
    time_base: ffmpeg::Rational,
}

/// Opens `url` (RTSP over TCP, a 10 s socket timeout) and finds its video stream.
fn open_source(url: &str) -> Result<(format::context::Input, Source), String> {
    let mut options = Dictionary::new();
    options.set("rtsp_transport", "tcp");
    options.set("timeout", "10000000");
    let input = format::input_with_dictionary(url, options).map_err(|e| e.to_string())?;
    let source = {
        let stream = input
            .streams()
            .best(ffmpeg::media::Type::Video)
            .ok_or("the source has no video stream")?;
        Source {
            index: stream.index(),
            parameters: stream.parameters(),
            time_base: stream.time_base(),
        }
    };
    Ok((input, source))
}

/// Copies the video packets, from the first keyframe on, into the HLS writer until the end.
fn pump(
    input: &mut format::context::Input,
    index: usize,
    hls: &mut HlsWriter,
) -> Result<(), String> {
    let mut packet = Packet::empty();
    let mut started = false;
    loop {
        match packet.read(input) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
        if packet.stream() != index {
            continue;
        }
        started |= packet.is_key();
        let (Some(data), true) = (packet.data(), started) else {
            continue;
        };
        let frame = Frame {
            data,
            pts: packet.pts().or(packet.dts()).unwrap_or(0),
            keyframe: packet.is_key(),
        };
        hls.write(&frame).map_err(|e| e.to_string())?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pull path from an FFmpeg input to HLS, on a local MPEG-TS file (the whole path over RTSP,
    /// from gst-rtsp-server, is `cloud/tests/live.rs`'s pull-mode test).
    #[test]
    fn a_pulled_h264_source_is_written_as_hls_without_transcoding() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source.ts");
        let made = std::process::Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=160x120:rate=10",
            ])
            .args(["-t", "3", "-c:v", "libx264", "-g", "10", "-bf", "0"])
            .arg(&source)
            .status()
            .expect("ffmpeg is installed (apt package ffmpeg)");
        assert!(made.success());
        ffmpeg::init().unwrap();
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
        let (mut input, found) = open_source(source.to_str().unwrap()).unwrap();
        let out = dir.path().join("live");
        let mut hls = HlsWriter::create(
            &out,
            found.parameters,
            found.time_base,
            Duration::from_secs(1),
            6,
        )
        .unwrap();
        pump(&mut input, found.index, &mut hls).unwrap();
        let playlist = std::fs::read_to_string(out.join(super::super::hls::PLAYLIST)).unwrap();
        assert!(playlist.matches(".ts").count() >= 2, "{playlist}");
        hls.finish();
        assert!(!out.join(super::super::hls::PLAYLIST).exists());
        assert!(open_source("rtsp://127.0.0.1:1/live/none").is_err());
    }

    #[test]
    fn credentials_in_the_source_url_are_never_logged() {
        assert_eq!(
            redacted("rtsp://vigie:s3cret@rtsp-server:8554/live/{device}"),
            "rtsp://***@rtsp-server:8554/live/{device}"
        );
        assert_eq!(
            redacted("rtsp://rtsp-server:8554/live/{device}"),
            "rtsp://rtsp-server:8554/live/{device}"
        );
        assert_eq!(redacted("rtsp://u:p@h/live/a@b"), "rtsp://***@h/live/a@b");
    }

    #[test]
    fn the_template_names_each_device() {
        let device = DeviceId::new("pi-7").unwrap();
        assert_eq!(
            source_url("rtsp://rtsp-server:8554/live/{device}", &device),
            "rtsp://rtsp-server:8554/live/pi-7"
        );
    }
}
