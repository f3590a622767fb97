//! H.264 encoding through ffmpeg-next: libx264 (`veryfast`, tuned `zerolatency`) by default, or
//! another encoder by name (`h264_v4l2m2m` on a Pi 4). No B-frames, so pts = dts and every GOP is closed; one keyframe per
//! `gop_s` seconds (no scene-cut keyframes with libx264), so the pre-roll holds whole seconds.

use std::sync::Arc;

use ffmpeg::{codec, encoder, format::Pixel, frame, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;

use super::{init_ffmpeg, EncodedPacket, FrameFormat, RawFrame, RecorderError};

/// Which encoder, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderConfig {
    /// An FFmpeg encoder name: `libx264` (software) or `h264_v4l2m2m` (Pi 4 hardware).
    pub name: String,
    /// libx264's preset (ignored by other encoders).
    pub preset: String,
    /// Seconds between keyframes.
    pub gop_s: u32,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            name: "libx264".into(),
            preset: "veryfast".into(),
            gop_s: 1,
        }
    }
}

/// An open H.264 encoder for frames of one format; packets come out with pts = frame index.
pub struct H264Encoder {
    encoder: encoder::video::Encoder,
    parameters: codec::Parameters,
    format: FrameFormat,
}

impl H264Encoder {
    pub fn open(config: &EncoderConfig, format: FrameFormat) -> Result<Self, RecorderError> {
        init_ffmpeg()?;
        let codec = encoder::find_by_name(&config.name).ok_or_else(|| {
            RecorderError::Config(format!(
                "encoder `{}` is not in this FFmpeg build; use libx264, or h264_v4l2m2m on a Pi 4",
                config.name
            ))
        })?;
        let mut video = codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(|e| RecorderError::ffmpeg("making a video encoder", e))?;
        video.set_width(format.width);
        video.set_height(format.height);
        video.set_format(Pixel::YUV420P);
        video.set_time_base(Rational::new(1, format.fps as i32));
        video.set_frame_rate(Some(Rational::new(format.fps as i32, 1)));
        video.set_gop(format.fps * config.gop_s.max(1));
        video.set_max_b_frames(0);
        // SPS/PPS in extradata (avcC), which MP4 needs.
        video.set_flags(codec::Flags::GLOBAL_HEADER);
        let mut options = Dictionary::new();
        if config.name == "libx264" {
            options.set("preset", &config.preset);
            // No lookahead or frame threads: each frame's packet comes out at once, which takes
            // ~0.4 s off the live view and the trigger (slice threads still use the cores).
            options.set("tune", "zerolatency");
            options.set("x264-params", "scenecut=0");
        }
        let encoder = video
            .open_with(options)
            .map_err(|e| RecorderError::ffmpeg("opening the H.264 encoder", e))?;
        let parameters = codec::Parameters::from(&encoder);
        Ok(Self {
            encoder,
            parameters,
            format,
        })
    }

    /// The stream parameters (codec, size, extradata) a muxer needs.
    pub fn parameters(&self) -> codec::Parameters {
        self.parameters.clone()
    }

    /// The packets' time base: one tick per frame.
    pub fn time_base(&self) -> Rational {
        Rational::new(1, self.format.fps as i32)
    }

    /// Encodes one frame; returns the packets ready so far (the encoder may hold a few frames).
    pub fn encode(&mut self, raw: &RawFrame) -> Result<Vec<EncodedPacket>, RecorderError> {
        if raw.width != self.format.width || raw.height != self.format.height {
            return Err(RecorderError::Config(format!(
                "frame of {}x{} given to an encoder opened for {}x{}",
                raw.width, raw.height, self.format.width, self.format.height
            )));
        }
        let frame = to_ffmpeg_frame(raw, Pixel::YUV420P);
        self.encoder
            .send_frame(&frame)
            .map_err(|e| RecorderError::ffmpeg("sending a frame to the encoder", e))?;
        self.drain()
    }

    /// Ends the stream: the packets the encoder still held.
    pub fn flush(&mut self) -> Result<Vec<EncodedPacket>, RecorderError> {
        self.encoder
            .send_eof()
            .map_err(|e| RecorderError::ffmpeg("flushing the encoder", e))?;
        self.drain()
    }

    fn drain(&mut self) -> Result<Vec<EncodedPacket>, RecorderError> {
        let mut out = Vec::new();
        let mut packet = Packet::empty();
        loop {
            match self.encoder.receive_packet(&mut packet) {
                Ok(()) => {
                    let pts = packet.pts().unwrap_or(0);
                    let data = packet.data().unwrap_or_default();
                    out.push(EncodedPacket {
                        data: Arc::from(data),
                        pts,
                        dts: packet.dts().unwrap_or(pts),
                        duration: packet.duration().max(1),
                        keyframe: packet.is_key(),
                    });
                }
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {
                    break
                }
                Err(ffmpeg::Error::Eof) => break,
                Err(e) => {
                    return Err(RecorderError::ffmpeg(
                        "receiving a packet from the encoder",
                        e,
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// Copies an I420 frame into an FFmpeg frame (whose rows may be padded), pts = frame index.
pub(crate) fn to_ffmpeg_frame(raw: &RawFrame, pixel: Pixel) -> frame::Video {
    let mut frame = frame::Video::new(pixel, raw.width, raw.height);
    let planes: [(&[u8], usize); 3] = [
        (&raw.y, raw.width as usize),
        (&raw.u, raw.width as usize / 2),
        (&raw.v, raw.width as usize / 2),
    ];
    for (index, (src, width)) in planes.into_iter().enumerate() {
        let stride = frame.stride(index);
        let dst = frame.data_mut(index);
        for (row, line) in src.chunks_exact(width).enumerate() {
            dst[row * stride..row * stride + width].copy_from_slice(line);
        }
    }
    frame.set_pts(Some(raw.index as i64));
    frame
}
