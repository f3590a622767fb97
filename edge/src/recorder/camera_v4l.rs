//! Real cameras through V4L2 (the `v4l` crate): USB cameras giving YUYV, MJPEG or H.264, and the
//! Pi camera modules through libcamera's V4L2 compatibility layer (run the edge under
//! `libcamerify`, or use the `rpicam` source instead, see `edge/CONFIG.md`).
//!
//! YUYV is converted to I420 here and MJPEG decoded by FFmpeg; both are then encoded like any raw
//! source. A camera that gives H.264 is not re-encoded: its access units go through
//! [`super::passthrough`].

use std::path::Path;

use chrono::Utc;
use ffmpeg::{codec, frame, Packet};
use ffmpeg_next as ffmpeg;
use v4l::buffer::Type;
use v4l::io::traits::CaptureStream;
use v4l::prelude::*;
use v4l::video::Capture as _;
use v4l::FourCC;

use super::passthrough::{to_i420, H264Source, H264Unit, UnitStream};
use super::{init_ffmpeg, CameraSource, FrameFormat, RawFrame, RecorderError};

/// What to ask the camera for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// H.264 if offered, then MJPEG, then YUYV.
    Auto,
    H264,
    Mjpeg,
    Yuyv,
}

/// An opened V4L2 camera: raw frames to encode, or H.264 to take as it is.
pub enum V4lCamera {
    Raw(V4lRawSource),
    H264(V4lH264Source),
}

const YUYV: &[u8; 4] = b"YUYV";
const MJPG: &[u8; 4] = b"MJPG";
const H264: &[u8; 4] = b"H264";

fn io_error(what: &'static str, path: &Path, source: std::io::Error) -> RecorderError {
    RecorderError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Opens `path`, picks the pixel format, sets size and rate, and starts streaming.
pub fn open(path: &Path, wanted: Wanted, format: FrameFormat) -> Result<V4lCamera, RecorderError> {
    let device =
        Device::with_path(path).map_err(|e| io_error("opening the V4L2 camera", path, e))?;
    let offered: Vec<[u8; 4]> = device
        .enum_formats()
        .map_err(|e| io_error("listing the camera's formats", path, e))?
        .into_iter()
        .map(|d| d.fourcc.repr)
        .collect();
    let fourcc = choose(wanted, &offered).ok_or_else(|| {
        let names: Vec<String> = offered
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        RecorderError::Config(format!(
            "the camera {} offers {} but not the format asked for ({wanted:?}); set \
             video.pixel_format to one of h264, mjpeg, yuyv that it offers",
            path.display(),
            names.join(", ")
        ))
    })?;
    let set = device
        .set_format(&v4l::Format::new(
            format.width,
            format.height,
            FourCC::new(&fourcc),
        ))
        .map_err(|e| io_error("setting the camera's format", path, e))?;
    if set.fourcc.repr != fourcc || set.width != format.width || set.height != format.height {
        return Err(RecorderError::Config(format!(
            "the camera {} gives {}x{} {} instead of {}x{} {}: set video.width/height to a size it supports",
            path.display(),
            set.width,
            set.height,
            String::from_utf8_lossy(&set.fourcc.repr),
            format.width,
            format.height,
            String::from_utf8_lossy(&fourcc)
        )));
    }
    if let Err(e) = device.set_params(&v4l::video::capture::Parameters::with_fps(format.fps)) {
        tracing::warn!(error = %e, fps = format.fps, "the camera refused the frame rate; using its own");
    }
    let stream = MmapStream::with_buffers(&device, Type::VideoCapture, 4)
        .map_err(|e| io_error("starting the camera's stream", path, e))?;
    tracing::info!(camera = %path.display(), format = %String::from_utf8_lossy(&fourcc),
        width = format.width, height = format.height, fps = format.fps, "V4L2 camera open");
    let capture = CameraStream {
        _device: device,
        stream,
        path: path.to_path_buf(),
    };
    Ok(match &fourcc {
        H264 => V4lCamera::H264(V4lH264Source {
            capture,
            format,
            units: UnitStream::new(),
        }),
        MJPG => V4lCamera::Raw(V4lRawSource {
            capture,
            format,
            pixels: Pixels::Mjpeg(MjpegDecoder::new()?),
            next: 0,
        }),
        _ => V4lCamera::Raw(V4lRawSource {
            capture,
            format,
            pixels: Pixels::Yuyv,
            next: 0,
        }),
    })
}

/// The format to ask for among those `offered`.
pub fn choose(wanted: Wanted, offered: &[[u8; 4]]) -> Option<[u8; 4]> {
    let order: &[&[u8; 4]] = match wanted {
        Wanted::Auto => &[H264, MJPG, YUYV],
        Wanted::H264 => &[H264],
        Wanted::Mjpeg => &[MJPG],
        Wanted::Yuyv => &[YUYV],
    };
    order.iter().find(|f| offered.contains(f)).map(|f| **f)
}

struct CameraStream {
    _device: Device,
    stream: MmapStream<'static>,
    path: std::path::PathBuf,
}

impl CameraStream {
    /// The next filled buffer (only its used bytes).
    fn next(&mut self) -> Result<&[u8], RecorderError> {
        let path = &self.path;
        let (buf, meta) = self
            .stream
            .next()
            .map_err(|e| io_error("reading a frame from the camera", path, e))?;
        let used = (meta.bytesused as usize).min(buf.len());
        Ok(&buf[..used])
    }
}

enum Pixels {
    Yuyv,
    Mjpeg(MjpegDecoder),
}

/// A V4L2 camera giving YUYV or MJPEG.
pub struct V4lRawSource {
    capture: CameraStream,
    format: FrameFormat,
    pixels: Pixels,
    next: u64,
}

impl CameraSource for V4lRawSource {
    fn format(&self) -> FrameFormat {
        self.format
    }

    fn next_frame(&mut self) -> Result<RawFrame, RecorderError> {
        let (w, h) = (self.format.width, self.format.height);
        let index = self.next;
        let bytes = self.capture.next()?;
        let captured_at = Utc::now();
        let frame = match &mut self.pixels {
            Pixels::Yuyv => yuyv_to_i420(bytes, w, h, index, captured_at)?,
            Pixels::Mjpeg(decoder) => decoder.decode(bytes, index, captured_at)?,
        };
        self.next += 1;
        Ok(frame)
    }
}

/// A V4L2 camera giving H.264 (Annex B), taken as it is.
pub struct V4lH264Source {
    capture: CameraStream,
    format: FrameFormat,
    units: UnitStream,
}

impl H264Source for V4lH264Source {
    fn format(&self) -> FrameFormat {
        self.format
    }

    fn next_unit(&mut self) -> Result<H264Unit, RecorderError> {
        loop {
            if let Some(unit) = self.units.pop() {
                return Ok(unit);
            }
            let bytes = self.capture.next()?;
            self.units.push(bytes);
        }
    }

    fn parameter_sets(&self) -> Option<Vec<u8>> {
        self.units.parameter_sets()
    }
}

/// Packed YUYV 4:2:2 to planar I420: luma as is, chroma averaged over each pair of rows.
pub fn yuyv_to_i420(
    bytes: &[u8],
    width: u32,
    height: u32,
    index: u64,
    captured_at: chrono::DateTime<Utc>,
) -> Result<RawFrame, RecorderError> {
    let (w, h) = (width as usize, height as usize);
    if bytes.len() < w * h * 2 {
        return Err(RecorderError::Config(format!(
            "a YUYV frame of {}x{} needs {} bytes, the camera gave {}",
            w,
            h,
            w * h * 2,
            bytes.len()
        )));
    }
    let mut y = Vec::with_capacity(w * h);
    let mut u = Vec::with_capacity(w * h / 4);
    let mut v = Vec::with_capacity(w * h / 4);
    for row in bytes.chunks_exact(w * 2).take(h) {
        y.extend(row.iter().step_by(2));
    }
    for pair in 0..h / 2 {
        let top = &bytes[2 * pair * w * 2..(2 * pair + 1) * w * 2];
        let bottom = &bytes[(2 * pair + 1) * w * 2..(2 * pair + 2) * w * 2];
        for (t, b) in top.chunks_exact(4).zip(bottom.chunks_exact(4)) {
            u.push((u16::from(t[1]) + u16::from(b[1])).div_ceil(2) as u8);
            v.push((u16::from(t[3]) + u16::from(b[3])).div_ceil(2) as u8);
        }
    }
    Ok(RawFrame {
        index,
        captured_at,
        width,
        height,
        y,
        u,
        v,
    })
}

/// FFmpeg's MJPEG decoder, for cameras giving one JPEG per frame.
pub struct MjpegDecoder {
    decoder: ffmpeg::decoder::Video,
    picture: frame::Video,
}

impl MjpegDecoder {
    pub fn new() -> Result<MjpegDecoder, RecorderError> {
        init_ffmpeg()?;
        let codec = ffmpeg::decoder::find(codec::Id::MJPEG).ok_or_else(|| {
            RecorderError::Config("this FFmpeg build has no MJPEG decoder".into())
        })?;
        let decoder = codec::context::Context::new_with_codec(codec)
            .decoder()
            .video()
            .map_err(|e| RecorderError::ffmpeg("opening the MJPEG decoder", e))?;
        Ok(MjpegDecoder {
            decoder,
            picture: frame::Video::empty(),
        })
    }

    /// One JPEG to an I420 frame.
    pub fn decode(
        &mut self,
        jpeg: &[u8],
        index: u64,
        captured_at: chrono::DateTime<Utc>,
    ) -> Result<RawFrame, RecorderError> {
        self.decoder
            .send_packet(&Packet::copy(jpeg))
            .map_err(|e| RecorderError::ffmpeg("decoding a camera JPEG", e))?;
        self.decoder
            .receive_frame(&mut self.picture)
            .map_err(|e| RecorderError::ffmpeg("decoding a camera JPEG", e))?;
        to_i420(&self.picture, index, captured_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_chosen_in_order_of_preference() {
        let all = [*YUYV, *MJPG, *H264];
        assert_eq!(choose(Wanted::Auto, &all), Some(*H264));
        assert_eq!(choose(Wanted::Auto, &[*YUYV, *MJPG]), Some(*MJPG));
        assert_eq!(choose(Wanted::Yuyv, &all), Some(*YUYV));
        assert_eq!(choose(Wanted::H264, &[*YUYV]), None);
    }

    #[test]
    fn yuyv_becomes_i420_with_chroma_averaged_over_row_pairs() {
        // 4x2: Y0 U Y1 V per pixel pair; row 0 chroma (10, 20), row 1 (30, 40).
        let bytes = [
            1, 10, 2, 20, 3, 10, 4, 20, //
            5, 30, 6, 40, 7, 30, 8, 40,
        ];
        let frame = yuyv_to_i420(&bytes, 4, 2, 7, Utc::now()).unwrap();
        assert_eq!(frame.y, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(frame.u, vec![20, 20]);
        assert_eq!(frame.v, vec![30, 30]);
        assert_eq!(frame.index, 7);
        assert!(yuyv_to_i420(&bytes[..10], 4, 2, 0, Utc::now()).is_err());
    }

    #[test]
    fn a_missing_camera_is_named_in_the_error() {
        let err = match open(
            Path::new("/dev/video-vigie-missing"),
            Wanted::Auto,
            FrameFormat {
                width: 640,
                height: 480,
                fps: 15,
            },
        ) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("no such camera"),
        };
        assert!(err.contains("/dev/video-vigie-missing"), "{err}");
    }
}
