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

/// Starts the manager thread, which starts one puller per known device.
pub fn start(template: String, settings: LiveSettings, store: Store, cameras: LiveCameras) {
    tracing::info!(source = %template, "live view pulls from the cluster's RTSP server");
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

/// Reads the device's stream until it ends; Ok when it was streaming for a while.
fn pull_once(
    url: &str,
    device: &DeviceId,
    settings: &LiveSettings,
    cameras: &LiveCameras,
) -> Result<(), String> {
    let mut options = Dictionary::new();
    options.set("rtsp_transport", "tcp");
    options.set("timeout", "10000000");
    let mut input = format::input_with_dictionary(url, options).map_err(|e| e.to_string())?;
    let (index, parameters, time_base) = {
        let stream = input
            .streams()
            .best(ffmpeg::media::Type::Video)
            .ok_or("the source has no video stream")?;
        (stream.index(), stream.parameters(), stream.time_base())
    };
    let dir = camera_dir(&settings.dir, device);
    let mut hls = HlsWriter::create(
        &dir,
        parameters,
        time_base,
        settings.segment,
        settings.list_size,
    )
    .map_err(|e| e.to_string())?;
    cameras.mark_live(device.clone(), dir);
    tracing::info!(device_id = %device, "camera streaming (pulled)");
    let mut packet = Packet::empty();
    let mut started = false;
    let result = loop {
        match packet.read(&mut input) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => break Ok(()),
            Err(e) => break Err(e.to_string()),
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
        if let Err(e) = hls.write(&frame) {
            break Err(e.to_string());
        }
    };
    cameras.mark_gone(device);
    hls.finish();
    tracing::info!(device_id = %device, "camera stopped streaming (pulled)");
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_names_each_device() {
        let device = DeviceId::new("pi-7").unwrap();
        assert_eq!(
            source_url("rtsp://rtsp-server:8554/live/{device}", &device),
            "rtsp://rtsp-server:8554/live/pi-7"
        );
    }
}
