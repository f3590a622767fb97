//! The recorder core: a source's frames through the encoder into the pre-roll and, on a trigger, into
//! a clip (pre-roll + what follows) and a snapshot. Synchronous and single-threaded: the actor that
//! will own it runs [`Recorder::step`] on its own thread.

use std::collections::VecDeque;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use ffmpeg_next::Rational;

use super::encoder::{EncoderConfig, H264Encoder};
use super::mp4::{Mp4File, Mp4Writer};
use super::passthrough::{decode_last, h264_parameters, H264Source, H264Unit};
use super::preroll::PreRoll;
use super::snapshot::write_jpeg;
use super::timing::{ClipTiming, ClipWindow};
use super::{CameraSource, EncodedPacket, FrameFormat, RawFrame, RecorderError};

/// The recorder's settings.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    pub encoder: EncoderConfig,
    /// Seconds of video kept before a trigger (whole GOPs, so up to one GOP more).
    pub preroll_s: u32,
    /// Seconds in a clip, pre-roll included.
    pub clip_s: u32,
    /// Seconds a clip may grow to by new triggers.
    pub max_clip_s: u32,
    /// Memory bound of the pre-roll, in bytes of encoded video.
    pub preroll_max_bytes: usize,
    /// Where clips and snapshots are written.
    pub dir: PathBuf,
}

impl RecorderConfig {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            encoder: EncoderConfig::default(),
            preroll_s: 5,
            clip_s: 15,
            max_clip_s: 60,
            preroll_max_bytes: 32 * 1024 * 1024,
            dir,
        }
    }
}

/// What a trigger produced at once: the snapshot, and which clip it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerReport {
    /// The frame at the trigger (its index, = its pts in frames).
    pub frame: u64,
    /// When that frame was captured.
    pub captured_at: DateTime<Utc>,
    pub snapshot: PathBuf,
    pub snapshot_size: u64,
    /// Whether the trigger opened a new clip (false: it extended the current one).
    pub new_clip: bool,
}

/// A clip on disk, fsynced, with what it covers (frames are source frame indexes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipReport {
    pub file: Mp4File,
    pub first_frame: u64,
    /// One past the last frame.
    pub end_frame: u64,
    pub trigger_frames: Vec<u64>,
    pub fps: u32,
    /// When the first frame was captured.
    pub started_at: DateTime<Utc>,
    /// When the frame after the last would have been captured.
    pub ended_at: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
}

impl ClipReport {
    pub fn duration_s(&self) -> f64 {
        (self.end_frame - self.first_frame) as f64 / f64::from(self.fps)
    }
}

struct OpenClip {
    window: ClipWindow,
    writer: Mp4Writer,
    /// The end of the last packet written.
    next_pts: i64,
}

/// Sees every encoded packet as it comes out of the encoder (the live stream). It must not block:
/// it runs on the recorder's thread between frames.
pub type PacketTap = Box<dyn FnMut(&EncodedPacket) + Send>;

/// Where packets come from: raw frames encoded here, or H.264 the camera already encoded.
enum Front {
    Encode {
        source: Box<dyn CameraSource>,
        encoder: H264Encoder,
        last_frame: Option<RawFrame>,
    },
    Copy {
        source: Box<dyn H264Source>,
        format: FrameFormat,
        parameters: ffmpeg_next::codec::Parameters,
        /// The first keyframe, read while opening, not yet given to the recorder.
        first: Option<H264Unit>,
        /// The packets since the last keyframe (what a snapshot decodes).
        gop: Vec<EncodedPacket>,
        last: Option<(u64, DateTime<Utc>)>,
    },
}

/// Source → encoder (or the camera's own H.264) → pre-roll / clip (and the tap).
pub struct Recorder {
    front: Front,
    format: FrameFormat,
    timing: ClipTiming,
    preroll: PreRoll,
    clip: Option<OpenClip>,
    /// Triggers whose frame the encoder has not given back yet (no clip open).
    pending: Vec<i64>,
    dir: PathBuf,
    fps: u32,
    tap: Option<PacketTap>,
    /// Capture times of the frames a clip may still need (pre-roll plus the longest clip).
    times: VecDeque<(u64, DateTime<Utc>)>,
    times_kept: usize,
}

impl Recorder {
    /// A recorder encoding `source`'s raw frames to H.264.
    pub fn new(
        source: impl CameraSource + 'static,
        config: &RecorderConfig,
    ) -> Result<Self, RecorderError> {
        let format = source.format();
        let encoder = H264Encoder::open(&config.encoder, format)?;
        Self::with_front(
            Front::Encode {
                source: Box::new(source),
                encoder,
                last_frame: None,
            },
            format,
            config,
        )
    }

    /// A recorder taking `source`'s H.264 as it is (no re-encoding). Reads up to the first
    /// keyframe with its SPS and PPS, which the muxers need.
    pub fn passthrough(
        mut source: impl H264Source + 'static,
        config: &RecorderConfig,
    ) -> Result<Self, RecorderError> {
        let format = source.format();
        let first = loop {
            let unit = source.next_unit()?;
            if unit.keyframe {
                break unit;
            }
            if unit.index > u64::from(format.fps) * 30 {
                return Err(RecorderError::Config(
                    "the camera's H.264 had no keyframe in 30 s: ask it for periodic keyframes \
                     (rpicam-vid --intra, V4L2 h264_i_frame_period)"
                        .into(),
                ));
            }
        };
        let sets = source.parameter_sets().ok_or_else(|| {
            RecorderError::Config(
                "the camera's H.264 has no SPS/PPS before its first keyframe: ask it to repeat \
                 them inline (rpicam-vid --inline)"
                    .into(),
            )
        })?;
        let parameters = h264_parameters(format, &sets)?;
        Self::with_front(
            Front::Copy {
                source: Box::new(source),
                format,
                parameters,
                first: Some(first),
                gop: Vec::new(),
                last: None,
            },
            format,
            config,
        )
    }

    fn with_front(
        front: Front,
        format: FrameFormat,
        config: &RecorderConfig,
    ) -> Result<Self, RecorderError> {
        if config.clip_s <= config.preroll_s || config.max_clip_s < config.clip_s {
            return Err(RecorderError::Config(format!(
                "clip of {} s with {} s of pre-roll and a maximum of {} s: need pre-roll < clip <= maximum",
                config.clip_s, config.preroll_s, config.max_clip_s
            )));
        }
        let fps = i64::from(format.fps);
        let timing = ClipTiming {
            length: i64::from(config.clip_s) * fps,
            preroll: i64::from(config.preroll_s) * fps,
            max_length: i64::from(config.max_clip_s) * fps,
        };
        crate::files::private_dir(&config.dir).map_err(|source| RecorderError::Io {
            what: "creating the clip directory",
            path: config.dir.clone(),
            source,
        })?;
        Ok(Self {
            front,
            format,
            preroll: PreRoll::new(timing.preroll, config.preroll_max_bytes),
            timing,
            clip: None,
            pending: Vec::new(),
            dir: config.dir.clone(),
            fps: format.fps,
            tap: None,
            times: VecDeque::new(),
            times_kept: (config.max_clip_s as usize + config.preroll_s as usize + 4)
                * format.fps as usize,
        })
    }

    /// Captures (and encodes) one frame; returns a clip that this frame completed.
    pub fn step(&mut self) -> Result<Option<ClipReport>, RecorderError> {
        let (index, captured_at, packets) = match &mut self.front {
            Front::Encode {
                source,
                encoder,
                last_frame,
            } => {
                let frame = source.next_frame()?;
                let packets = encoder.encode(&frame)?;
                let stamp = (frame.index, frame.captured_at);
                *last_frame = Some(frame);
                (stamp.0, stamp.1, packets)
            }
            Front::Copy {
                source,
                first,
                gop,
                last,
                ..
            } => {
                let unit = match first.take() {
                    Some(unit) => unit,
                    None => source.next_unit()?,
                };
                let packet = unit.packet();
                if packet.keyframe {
                    gop.clear();
                }
                gop.push(packet.clone());
                *last = Some((unit.index, unit.captured_at));
                (unit.index, unit.captured_at, vec![packet])
            }
        };
        if self.times.len() >= self.times_kept {
            self.times.pop_front();
        }
        self.times.push_back((index, captured_at));
        let mut done = None;
        for packet in packets {
            if let Some(report) = self.take(packet)? {
                done = Some(report);
            }
        }
        Ok(done)
    }

    /// A trigger at the latest frame captured: a snapshot of it at once, and a clip extended (when one
    /// is open and may still grow) or opened. A new clip opens when the encoder gives the trigger
    /// frame's packet (it holds a few frames back), so the pre-roll counts back from the trigger frame
    /// itself.
    pub fn trigger(&mut self) -> Result<TriggerReport, RecorderError> {
        let before_first = || {
            RecorderError::Config("trigger before the first frame: step the recorder first".into())
        };
        let decoded;
        let frame = match &self.front {
            Front::Encode { last_frame, .. } => last_frame.as_ref().ok_or_else(before_first)?,
            Front::Copy {
                parameters,
                gop,
                last,
                ..
            } => {
                let (index, captured_at) = last.ok_or_else(before_first)?;
                decoded = decode_last(parameters, gop, index, captured_at)?;
                &decoded
            }
        };
        let at = frame.index as i64;
        let snapshot = self.dir.join(format!("snapshot-{:08}.jpg", frame.index));
        let snapshot_size = write_jpeg(frame, &snapshot)?;
        let (index, captured_at) = (frame.index, frame.captured_at);
        let new_clip = match &mut self.clip {
            Some(open) if at < open.window.max_end => {
                open.window.retrigger(&self.timing, at);
                false
            }
            _ => {
                let new_clip = self.pending.is_empty();
                self.pending.push(at);
                new_clip
            }
        };
        Ok(TriggerReport {
            frame: index,
            captured_at,
            snapshot,
            snapshot_size,
            new_clip,
        })
    }

    /// Stops: flushes the encoder and closes a clip being written (shorter than planned if cut).
    pub fn finish(mut self) -> Result<Option<ClipReport>, RecorderError> {
        let mut done = None;
        let flushed = match &mut self.front {
            Front::Encode { encoder, .. } => encoder.flush()?,
            Front::Copy { .. } => Vec::new(),
        };
        for packet in flushed {
            if let Some(report) = self.take(packet)? {
                done = Some(report);
            }
        }
        if let Some(open) = self.clip.take() {
            let end = open.next_pts;
            done = Some(self.close(open, end)?);
        }
        Ok(done)
    }

    /// Gives every packet from now on to `tap` too (the live stream), before the pre-roll and clip.
    pub fn set_tap(&mut self, tap: PacketTap) {
        self.tap = Some(tap);
    }

    /// The stream's parameters (codec, size, extradata with SPS/PPS) for another muxer.
    pub fn parameters(&self) -> ffmpeg_next::codec::Parameters {
        match &self.front {
            Front::Encode { encoder, .. } => encoder.parameters(),
            Front::Copy { parameters, .. } => parameters.clone(),
        }
    }

    /// The source's frame size and rate.
    pub fn format(&self) -> FrameFormat {
        match &self.front {
            Front::Encode { source, .. } => source.format(),
            Front::Copy { format, .. } => *format,
        }
    }

    /// The packets' time base (one tick per frame).
    pub fn packet_time_base(&self) -> Rational {
        self.time_base()
    }

    /// The whole GOPs held for the next trigger.
    pub fn preroll(&self) -> &PreRoll {
        &self.preroll
    }

    fn time_base(&self) -> Rational {
        Rational::new(1, self.fps as i32)
    }

    /// One encoded packet: into the open clip (or closing it), into the pre-roll, and opening a clip
    /// when it is the frame of a pending trigger.
    fn take(&mut self, packet: EncodedPacket) -> Result<Option<ClipReport>, RecorderError> {
        if let Some(tap) = &mut self.tap {
            tap(&packet);
        }
        let mut done = None;
        if let Some(mut open) = self.clip.take() {
            if open.window.takes(packet.pts) {
                open.writer.write(&packet)?;
                open.next_pts = packet.pts + packet.duration;
                self.clip = Some(open);
            } else {
                let end = open.window.end;
                done = Some(self.close(open, end)?);
            }
        }
        let pts = packet.pts;
        self.preroll.push(packet);
        if self.clip.is_none() && self.pending.first().is_some_and(|&t| t <= pts) {
            self.open_clip()?;
        }
        Ok(done)
    }

    /// Opens a clip at the first pending trigger, starting with the whole pre-roll.
    fn open_clip(&mut self) -> Result<(), RecorderError> {
        let triggers = std::mem::take(&mut self.pending);
        let at = triggers[0];
        let start = self.preroll.start().unwrap_or(at);
        let mut window = ClipWindow::open(&self.timing, start, at);
        for &later in &triggers[1..] {
            window.retrigger(&self.timing, later);
        }
        let path = self.dir.join(format!("clip-{:08}.mp4", window.start));
        let mut writer =
            Mp4Writer::create(&path, self.parameters(), self.time_base(), window.start)?;
        let mut next_pts = window.start;
        for packet in self.preroll.packets().filter(|p| window.takes(p.pts)) {
            writer.write(packet)?;
            next_pts = packet.pts + packet.duration;
        }
        self.clip = Some(OpenClip {
            window,
            writer,
            next_pts,
        });
        Ok(())
    }

    fn close(&self, open: OpenClip, end: i64) -> Result<ClipReport, RecorderError> {
        let file = open.writer.finish()?;
        let first_frame = open.window.start as u64;
        let end_frame = end as u64;
        let started_at = self.time_of(first_frame);
        let ended_at = self.time_of(end_frame - 1)
            + chrono::Duration::microseconds(1_000_000 / i64::from(self.fps));
        let format = self.format;
        Ok(ClipReport {
            file,
            first_frame,
            end_frame,
            trigger_frames: open.window.triggers.iter().map(|&t| t as u64).collect(),
            fps: self.fps,
            started_at,
            ended_at,
            width: format.width,
            height: format.height,
        })
    }

    /// The capture time of frame `index`: recorded, or counted from the nearest recorded frame.
    fn time_of(&self, index: u64) -> DateTime<Utc> {
        let per_frame =
            |n: i64| chrono::Duration::microseconds(n * 1_000_000 / i64::from(self.fps));
        match self.times.binary_search_by_key(&index, |&(i, _)| i) {
            Ok(at) => self.times[at].1,
            Err(at) => {
                let (i, t) = self
                    .times
                    .get(at)
                    .or_else(|| self.times.back())
                    .copied()
                    .unwrap_or((index, Utc::now()));
                t + per_frame(index as i64 - i as i64)
            }
        }
    }
}
