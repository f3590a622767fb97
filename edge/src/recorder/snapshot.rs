//! A JPEG snapshot of one raw frame (FFmpeg's mjpeg encoder), fsynced like a clip.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use ffmpeg::{codec, encoder, format::Pixel, Packet, Rational};
use ffmpeg_next as ffmpeg;

use super::encoder::to_ffmpeg_frame;
use super::{init_ffmpeg, sync_dir, RawFrame, RecorderError};

/// FFmpeg's lambda per quantiser step (`FF_QP2LAMBDA`).
const QP2LAMBDA: i32 = 118;

/// Encodes `raw` as a JPEG (quality q=3) into `path`; returns its size in bytes.
pub fn write_jpeg(raw: &RawFrame, path: &Path) -> Result<u64, RecorderError> {
    init_ffmpeg()?;
    let codec = encoder::find(codec::Id::MJPEG)
        .ok_or_else(|| RecorderError::Config("this FFmpeg build has no mjpeg encoder".into()))?;
    let mut video = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(|e| RecorderError::ffmpeg("making the JPEG encoder", e))?;
    video.set_width(raw.width);
    video.set_height(raw.height);
    // Full-range 4:2:0, the JPEG layout; the planes are copied as they are.
    video.set_format(Pixel::YUVJ420P);
    video.set_time_base(Rational::new(1, 25));
    video.set_flags(codec::Flags::QSCALE);
    video.set_global_quality(3 * QP2LAMBDA);
    let mut jpeg = video
        .open()
        .map_err(|e| RecorderError::ffmpeg("opening the JPEG encoder", e))?;
    let mut frame = to_ffmpeg_frame(raw, Pixel::YUVJ420P);
    // With QSCALE the encoder takes its quantiser from the frame.
    // SAFETY: `frame` owns a valid, allocated AVFrame; `quality` is a plain int field.
    unsafe {
        (*frame.as_mut_ptr()).quality = 3 * QP2LAMBDA;
    }
    jpeg.send_frame(&frame)
        .and_then(|()| jpeg.send_eof())
        .map_err(|e| RecorderError::ffmpeg("encoding the JPEG", e))?;
    let mut packet = Packet::empty();
    jpeg.receive_packet(&mut packet)
        .map_err(|e| RecorderError::ffmpeg("receiving the JPEG", e))?;
    let data = packet.data().unwrap_or_default();

    let partial = path.with_extension("jpg.partial");
    let io = |what: &'static str| {
        let path = partial.clone();
        move |source| RecorderError::Io { what, path, source }
    };
    let mut file = File::create(&partial).map_err(io("creating the snapshot"))?;
    file.write_all(data).map_err(io("writing the snapshot"))?;
    file.sync_all().map_err(io("fsyncing the snapshot"))?;
    std::fs::rename(&partial, path).map_err(io("renaming the snapshot"))?;
    sync_dir(path)?;
    Ok(data.len() as u64)
}
