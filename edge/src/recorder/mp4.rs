//! Writing a clip: the encoded packets remuxed (never re-encoded) into MP4 with `+faststart` (the
//! moov atom before mdat, so a browser plays it before it has it all). The file is written under a
//! `.partial` name, fsynced, renamed, and its directory fsynced: a clip under its final name is
//! complete and on disk.

use std::fs::File;
use std::path::{Path, PathBuf};

use ffmpeg::{codec, format, packet, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;

use super::{sync_dir, EncodedPacket, RecorderError};

/// An MP4 file being written; timestamps start at 0 at the clip's first packet.
pub struct Mp4Writer {
    output: format::context::Output,
    partial: PathBuf,
    path: PathBuf,
    source_tb: Rational,
    stream_tb: Rational,
    offset: i64,
    packets: u64,
}

/// A finished, fsynced clip file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mp4File {
    pub path: PathBuf,
    pub size: u64,
    pub packets: u64,
}

impl Mp4Writer {
    /// Starts `path` for packets in `source_tb` whose first pts is `start`.
    pub fn create(
        path: &Path,
        parameters: codec::Parameters,
        source_tb: Rational,
        start: i64,
    ) -> Result<Self, RecorderError> {
        let partial = path.with_extension("mp4.partial");
        let ctx = |what: &str| format!("{what} {}", partial.display());
        let mut output = format::output_as(&partial, "mp4")
            .map_err(|e| RecorderError::ffmpeg(&ctx("creating"), e))?;
        {
            let mut stream = output
                .add_stream(None::<ffmpeg::Codec>)
                .map_err(|e| RecorderError::ffmpeg(&ctx("adding a stream to"), e))?;
            stream.set_parameters(parameters);
            stream.set_time_base(source_tb);
            stream.set_avg_frame_rate(source_tb.invert());
            // The MP4 muxer picks its own tag (avc1).
            // SAFETY: the stream was just created by `add_stream`, so it and its codecpar are valid
            // and owned by `output`, which outlives this block.
            unsafe {
                (*(*stream.as_mut_ptr()).codecpar).codec_tag = 0;
            }
        }
        let mut options = Dictionary::new();
        options.set("movflags", "+faststart");
        output
            .write_header_with(options)
            .map_err(|e| RecorderError::ffmpeg(&ctx("writing the header of"), e))?;
        let stream_tb = output.stream(0).map(|s| s.time_base()).unwrap_or(source_tb);
        Ok(Self {
            output,
            partial,
            path: path.to_path_buf(),
            source_tb,
            stream_tb,
            offset: start,
            packets: 0,
        })
    }

    pub fn write(&mut self, encoded: &EncodedPacket) -> Result<(), RecorderError> {
        let mut packet = Packet::copy(&encoded.data);
        packet.set_stream(0);
        packet.set_pts(Some(encoded.pts - self.offset));
        packet.set_dts(Some(encoded.dts - self.offset));
        packet.set_duration(encoded.duration);
        if encoded.keyframe {
            packet.set_flags(packet::Flags::KEY);
        }
        packet.rescale_ts(self.source_tb, self.stream_tb);
        packet
            .write_interleaved(&mut self.output)
            .map_err(|e| RecorderError::ffmpeg("writing a packet to a clip", e))?;
        self.packets += 1;
        Ok(())
    }

    /// Writes the trailer (and moves moov to the front), fsyncs, renames to the final name.
    pub fn finish(mut self) -> Result<Mp4File, RecorderError> {
        self.output
            .write_trailer()
            .map_err(|e| RecorderError::ffmpeg("writing the trailer of a clip", e))?;
        drop(self.output);
        let io = |what: &'static str| {
            let path = self.partial.clone();
            move |source| RecorderError::Io { what, path, source }
        };
        let file = File::open(&self.partial).map_err(io("opening the clip to sync it"))?;
        file.sync_all().map_err(io("fsyncing the clip"))?;
        let size = file
            .metadata()
            .map_err(io("reading the clip's size"))?
            .len();
        std::fs::rename(&self.partial, &self.path).map_err(io("renaming the clip"))?;
        sync_dir(&self.path)?;
        Ok(Mp4File {
            path: self.path,
            size,
            packets: self.packets,
        })
    }
}
