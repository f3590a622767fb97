//! The recorder core: a source's frames through the encoder into the pre-roll and, on a trigger, into
//! a clip (pre-roll + what follows) and a snapshot. Synchronous and single-threaded: the actor that
//! will own it runs [`Recorder::step`] on its own thread.

use std::collections::VecDeque;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use ffmpeg_next::Rational;

use super::encoder::{EncoderConfig, H264Encoder};
use super::mp4::{Mp4File, Mp4Writer};
use super::preroll::PreRoll;
use super::snapshot::write_jpeg;
use super::timing::{ClipTiming, ClipWindow};
use super::{CameraSource, EncodedPacket, RawFrame, RecorderError};

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

/// Source → encoder → pre-roll / clip (and the tap).
pub struct Recorder<S: CameraSource> {
    source: S,
    encoder: H264Encoder,
    timing: ClipTiming,
    preroll: PreRoll,
    clip: Option<OpenClip>,
    /// Triggers whose frame the encoder has not given back yet (no clip open).
    pending: Vec<i64>,
    last_frame: Option<RawFrame>,
    dir: PathBuf,
    fps: u32,
    tap: Option<PacketTap>,
    /// Capture times of the frames a clip may still need (pre-roll plus the longest clip).
    times: VecDeque<(u64, DateTime<Utc>)>,
    times_kept: usize,
}

impl<S: CameraSource> Recorder<S> {
    pub fn new(source: S, config: &RecorderConfig) -> Result<Self, RecorderError> {
        let format = source.format();
        if config.clip_s <= config.preroll_s || config.max_clip_s < config.clip_s {
            return Err(RecorderError::Config(format!(
                "clip of {} s with {} s of pre-roll and a maximum of {} s: need pre-roll < clip <= maximum",
                config.clip_s, config.preroll_s, config.max_clip_s
            )));
        }
        let encoder = H264Encoder::open(&config.encoder, format)?;
        let fps = i64::from(format.fps);
        let timing = ClipTiming {
            length: i64::from(config.clip_s) * fps,
            preroll: i64::from(config.preroll_s) * fps,
            max_length: i64::from(config.max_clip_s) * fps,
        };
        std::fs::create_dir_all(&config.dir).map_err(|source| RecorderError::Io {
            what: "creating the clip directory",
            path: config.dir.clone(),
            source,
        })?;
        Ok(Self {
            source,
            encoder,
            preroll: PreRoll::new(timing.preroll, config.preroll_max_bytes),
            timing,
            clip: None,
            pending: Vec::new(),
            last_frame: None,
            dir: config.dir.clone(),
            fps: format.fps,
            tap: None,
            times: VecDeque::new(),
            times_kept: (config.max_clip_s as usize + config.preroll_s as usize + 4)
                * format.fps as usize,
        })
    }

    /// Captures and encodes one frame; returns a clip that this frame completed.
    pub fn step(&mut self) -> Result<Option<ClipReport>, RecorderError> {
        let frame = self.source.next_frame()?;
        let packets = self.encoder.encode(&frame)?;
        if self.times.len() >= self.times_kept {
            self.times.pop_front();
        }
        self.times.push_back((frame.index, frame.captured_at));
        self.last_frame = Some(frame);
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
        let frame = self.last_frame.as_ref().ok_or_else(|| {
            RecorderError::Config("trigger before the first frame: step the recorder first".into())
        })?;
        let at = frame.index as i64;
        let snapshot = self.dir.join(format!("snapshot-{:08}.jpg", frame.index));
        let snapshot_size = write_jpeg(frame, &snapshot)?;
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
            frame: frame.index,
            captured_at: frame.captured_at,
            snapshot,
            snapshot_size,
            new_clip,
        })
    }

    /// Stops: flushes the encoder and closes a clip being written (shorter than planned if cut).
    pub fn finish(mut self) -> Result<Option<ClipReport>, RecorderError> {
        let mut done = None;
        for packet in self.encoder.flush()? {
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
        self.encoder.parameters()
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
        self.encoder.time_base()
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
        let mut writer = Mp4Writer::create(
            &path,
            self.encoder.parameters(),
            self.time_base(),
            window.start,
        )?;
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
        let format = self.source.format();
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
