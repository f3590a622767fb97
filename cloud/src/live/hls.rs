//! Writing one camera's HLS: FFmpeg's `hls` muxer (MPEG-TS segments) fed with the H.264 access
//! units as they came, never transcoded. Segments are cut at keyframes once `segment` has passed
//! (the Pi's GOP is 1 s), or by time when `segment` is shorter than a second (some then start
//! mid-GOP: a player joining there decodes from the next keyframe), the playlist keeps the last `list_size`, older
//! segments are deleted, and both are written under a temporary name and renamed, so a reader never
//! sees half a file. Segment numbers start from the Unix time in microseconds, so a publisher that
//! reconnects continues the sequence upwards (after a discontinuity tag) instead of restarting it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ffmpeg::{codec, format, packet, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;

use super::LiveError;

/// The playlist's file name in a camera's directory.
pub const PLAYLIST: &str = "index.m3u8";

/// Whether `name` is a segment this writer makes (`seg-<digits>.ts`): what the API serves.
pub fn is_segment_name(name: &str) -> bool {
    name.strip_prefix("seg-")
        .and_then(|rest| rest.strip_suffix(".ts"))
        .is_some_and(|n| !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// One frame to write: Annex B data, timestamp in the writer's time base.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    pub data: &'a [u8],
    pub pts: i64,
    pub keyframe: bool,
}

/// An HLS output being written into a camera's directory.
pub struct HlsWriter {
    output: format::context::Output,
    dir: PathBuf,
    source_tb: Rational,
    stream_tb: Rational,
    offset: Option<i64>,
    last_dts: i64,
    /// The last gap between frames: the duration given to the next one (the muxer times segments
    /// with it; a live frame's own duration is known only when the next one comes).
    last_step: i64,
}

impl HlsWriter {
    /// Empties `dir` (what a previous stream left) and starts a playlist there.
    pub fn create(
        dir: &Path,
        parameters: codec::Parameters,
        source_tb: Rational,
        segment: Duration,
        list_size: usize,
    ) -> Result<Self, LiveError> {
        let ff = |what| move |source| LiveError::Ffmpeg { what, source };
        clear_dir(dir);
        std::fs::create_dir_all(dir).map_err(|source| LiveError::Io {
            what: "creating a camera's live directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let mut output =
            format::output_as(&dir.join(PLAYLIST), "hls").map_err(ff("creating the HLS output"))?;
        {
            let mut stream = output
                .add_stream(None::<ffmpeg::Codec>)
                .map_err(ff("adding the HLS stream"))?;
            stream.set_parameters(parameters);
            stream.set_time_base(source_tb);
            // SAFETY: the stream was just created by `add_stream`; its codecpar is valid and owned
            // by `output`, which outlives this block.
            unsafe {
                (*(*stream.as_mut_ptr()).codecpar).codec_tag = 0;
            }
        }
        let mut options = Dictionary::new();
        options.set("hls_time", &format!("{:.3}", segment.as_secs_f64()));
        options.set("hls_list_size", &list_size.to_string());
        // Shorter than the Pi's GOP (1 s): cut by time, so some segments start without a keyframe.
        // A new stream (a publisher reconnecting) starts with a discontinuity tag.
        let flags = if segment < Duration::from_secs(1) {
            "delete_segments+temp_file+omit_endlist+discont_start+split_by_time"
        } else {
            "delete_segments+temp_file+omit_endlist+discont_start+independent_segments"
        };
        options.set("hls_flags", flags);
        options.set("hls_start_number_source", "epoch_us");
        options.set(
            "hls_segment_filename",
            &dir.join("seg-%d.ts").display().to_string(),
        );
        output
            .write_header_with(options)
            .map_err(ff("writing the HLS header"))?;
        let stream_tb = output.stream(0).map(|s| s.time_base()).unwrap_or(source_tb);
        Ok(Self {
            output,
            dir: dir.to_path_buf(),
            source_tb,
            stream_tb,
            offset: None,
            last_dts: i64::MIN,
            last_step: 0,
        })
    }

    /// Writes one frame; timestamps count from the first frame written.
    pub fn write(&mut self, frame: &Frame<'_>) -> Result<(), ffmpeg::Error> {
        let offset = *self.offset.get_or_insert(frame.pts);
        let mut pts = frame.pts - offset;
        if self.last_dts != i64::MIN {
            if pts <= self.last_dts {
                // A repeated or backwards timestamp would make the muxer fail: nudge it forward.
                pts = self.last_dts + 1;
            }
            self.last_step = pts - self.last_dts;
        }
        self.last_dts = pts;
        let mut packet = Packet::copy(frame.data);
        packet.set_stream(0);
        packet.set_pts(Some(pts));
        packet.set_dts(Some(pts));
        packet.set_duration(self.last_step);
        if frame.keyframe {
            packet.set_flags(packet::Flags::KEY);
        }
        packet.rescale_ts(self.source_tb, self.stream_tb);
        packet.write(&mut self.output).map(|_| ())
    }

    /// Ends the stream and removes its files: a camera that stopped has nothing to show.
    pub fn finish(mut self) {
        let _ = self.output.write_trailer();
        clear_dir(&self.dir);
    }
}

/// Removes the playlist and segments in `dir` (nothing else is put there).
pub fn clear_dir(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("seg-") || name.starts_with("index.m3u8") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// H.264 stream parameters with the SPS and PPS as Annex B extradata (what the RTSP publisher's
/// SDP gave), for the muxer.
pub fn h264_parameters(sps: Option<&[u8]>, pps: Option<&[u8]>) -> codec::Parameters {
    use ffmpeg::ffi;
    let mut extradata = Vec::new();
    for set in [sps, pps].into_iter().flatten() {
        extradata.extend_from_slice(&[0, 0, 0, 1]);
        extradata.extend_from_slice(set);
    }
    let mut parameters = codec::Parameters::new();
    // SAFETY: `parameters` owns a freshly allocated AVCodecParameters; extradata is allocated with
    // av_mallocz (with the padding FFmpeg requires) and handed over to it, which frees it.
    unsafe {
        let par = parameters.as_mut_ptr();
        (*par).codec_type = ffi::AVMediaType::AVMEDIA_TYPE_VIDEO;
        (*par).codec_id = ffi::AVCodecID::AV_CODEC_ID_H264;
        if !extradata.is_empty() {
            let size = extradata.len();
            let buf = ffi::av_mallocz(size + ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize) as *mut u8;
            if !buf.is_null() {
                std::ptr::copy_nonoverlapping(extradata.as_ptr(), buf, size);
                (*par).extradata = buf;
                (*par).extradata_size = size as i32;
            }
        }
    }
    parameters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_segment_names_pass() {
        assert!(is_segment_name("seg-1795000000.ts"));
        assert!(is_segment_name("seg-0.ts"));
        for bad in [
            "seg-.ts",
            "index.m3u8",
            "seg-1.ts.tmp",
            "../seg-1.ts",
            "seg-1/../../x.ts",
            "seg-12a.ts",
        ] {
            assert!(!is_segment_name(bad), "{bad}");
        }
    }
}
