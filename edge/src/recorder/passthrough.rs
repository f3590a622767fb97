//! Cameras that give H.264 themselves (`rpicam-vid`, V4L2 H.264 cameras): their access units go
//! into the pre-roll, clips and the live stream as they are, never re-encoded. The snapshot at a
//! trigger is the only decoding: the units from the last keyframe up to the trigger, decoded once.

use chrono::{DateTime, Utc};
use ffmpeg::{codec, format::Pixel, frame, Packet};
use ffmpeg_next as ffmpeg;

use super::{init_ffmpeg, EncodedPacket, FrameFormat, RawFrame, RecorderError};

/// One picture from an H.264 camera (Annex B), numbered from 0 like raw frames.
#[derive(Debug, Clone)]
pub struct H264Unit {
    pub index: u64,
    pub captured_at: DateTime<Utc>,
    pub data: Vec<u8>,
    pub keyframe: bool,
}

/// A camera giving H.264 access units. Blocking; the recorder runs it on its own thread.
pub trait H264Source: Send {
    fn format(&self) -> FrameFormat;
    fn next_unit(&mut self) -> Result<H264Unit, RecorderError>;
    /// The latest SPS and PPS (Annex B), once seen.
    fn parameter_sets(&self) -> Option<Vec<u8>>;
}

impl H264Source for Box<dyn H264Source> {
    fn format(&self) -> FrameFormat {
        (**self).format()
    }
    fn next_unit(&mut self) -> Result<H264Unit, RecorderError> {
        (**self).next_unit()
    }
    fn parameter_sets(&self) -> Option<Vec<u8>> {
        (**self).parameter_sets()
    }
}

/// An H.264 byte stream (Annex B) cut into pictures, numbered from 0 and stamped with the time
/// each is taken: what every byte-stream camera source shares.
#[derive(Debug, Default)]
pub struct UnitStream {
    splitter: super::annexb::AccessUnitSplitter,
    ready: std::collections::VecDeque<super::annexb::AccessUnit>,
    next: u64,
}

impl UnitStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes as they arrive from the camera.
    pub fn push(&mut self, bytes: &[u8]) {
        self.ready.extend(self.splitter.push(bytes));
    }

    /// The next complete picture, if the bytes so far hold one.
    pub fn pop(&mut self) -> Option<H264Unit> {
        let unit = self.ready.pop_front()?;
        let index = self.next;
        self.next += 1;
        Some(H264Unit {
            index,
            captured_at: chrono::Utc::now(),
            data: unit.data,
            keyframe: unit.keyframe,
        })
    }

    /// The latest SPS and PPS seen.
    pub fn parameter_sets(&self) -> Option<Vec<u8>> {
        self.splitter.parameter_sets()
    }
}

impl H264Unit {
    pub fn packet(&self) -> EncodedPacket {
        EncodedPacket::new(self.data.clone(), self.index as i64, self.keyframe)
    }
}

/// Stream parameters for a muxer: H.264 of `format`'s size with `extradata` (SPS + PPS, Annex B;
/// the MP4 muxer turns it into avcC, the RTSP muxer into sprop-parameter-sets).
pub fn h264_parameters(
    format: FrameFormat,
    extradata: &[u8],
) -> Result<codec::Parameters, RecorderError> {
    init_ffmpeg()?;
    let mut parameters = codec::Parameters::new();
    // SAFETY: `parameters` owns a valid AVCodecParameters; extradata is allocated with av_mallocz
    // (with the padding FFmpeg requires) and handed over to it, which frees it with the parameters.
    unsafe {
        let par = parameters.as_mut_ptr();
        (*par).codec_type = ffmpeg::ffi::AVMediaType::AVMEDIA_TYPE_VIDEO;
        (*par).codec_id = ffmpeg::ffi::AVCodecID::AV_CODEC_ID_H264;
        (*par).width = format.width as i32;
        (*par).height = format.height as i32;
        let size = extradata.len();
        let buf = ffmpeg::ffi::av_mallocz(size + ffmpeg::ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize)
            as *mut u8;
        if buf.is_null() {
            return Err(RecorderError::Config(
                "out of memory for the stream's parameter sets".into(),
            ));
        }
        std::ptr::copy_nonoverlapping(extradata.as_ptr(), buf, size);
        (*par).extradata = buf;
        (*par).extradata_size = size as i32;
    }
    Ok(parameters)
}

/// Decodes `packets` (a keyframe first) and returns the last picture as an I420 frame.
pub fn decode_last(
    parameters: &codec::Parameters,
    packets: &[EncodedPacket],
    index: u64,
    captured_at: DateTime<Utc>,
) -> Result<RawFrame, RecorderError> {
    init_ffmpeg()?;
    let context = codec::context::Context::from_parameters(parameters.clone())
        .map_err(|e| RecorderError::ffmpeg("making the snapshot decoder", e))?;
    let mut decoder = context
        .decoder()
        .video()
        .map_err(|e| RecorderError::ffmpeg("opening the snapshot decoder", e))?;
    let mut last = None;
    let mut decoded = frame::Video::empty();
    let mut drain = |decoder: &mut ffmpeg::decoder::Video, last: &mut Option<frame::Video>| {
        while decoder.receive_frame(&mut decoded).is_ok() {
            *last = Some(decoded.clone());
        }
    };
    for p in packets {
        let mut packet = Packet::copy(&p.data);
        packet.set_pts(Some(p.pts));
        packet.set_dts(Some(p.dts));
        if p.keyframe {
            packet.set_flags(ffmpeg::packet::Flags::KEY);
        }
        decoder
            .send_packet(&packet)
            .map_err(|e| RecorderError::ffmpeg("decoding the snapshot's pictures", e))?;
        drain(&mut decoder, &mut last);
    }
    let _ = decoder.send_eof();
    drain(&mut decoder, &mut last);
    let picture = last.ok_or_else(|| {
        RecorderError::Config("the camera's H.264 gave no picture to snapshot".into())
    })?;
    to_i420(&picture, index, captured_at)
}

/// Copies (converting when needed) a decoded picture into a tightly packed I420 frame.
pub fn to_i420(
    picture: &frame::Video,
    index: u64,
    captured_at: DateTime<Utc>,
) -> Result<RawFrame, RecorderError> {
    let (w, h) = (picture.width(), picture.height());
    let converted;
    let yuv = if matches!(picture.format(), Pixel::YUV420P | Pixel::YUVJ420P) {
        picture
    } else {
        let mut scaler = ffmpeg::software::scaling::Context::get(
            picture.format(),
            w,
            h,
            Pixel::YUV420P,
            w,
            h,
            ffmpeg::software::scaling::Flags::BILINEAR,
        )
        .map_err(|e| RecorderError::ffmpeg("making a pixel format converter", e))?;
        let mut out = frame::Video::empty();
        scaler
            .run(picture, &mut out)
            .map_err(|e| RecorderError::ffmpeg("converting a picture to I420", e))?;
        converted = out;
        &converted
    };
    let plane = |index: usize, width: usize, height: usize| {
        let stride = yuv.stride(index);
        let data = yuv.data(index);
        let mut out = Vec::with_capacity(width * height);
        for row in 0..height {
            out.extend_from_slice(&data[row * stride..row * stride + width]);
        }
        out
    };
    let (wu, hu) = (w as usize, h as usize);
    Ok(RawFrame {
        index,
        captured_at,
        width: w,
        height: h,
        y: plane(0, wu, hu),
        u: plane(1, wu / 2, hu / 2),
        v: plane(2, wu / 2, hu / 2),
    })
}
