//! The camera: a supervised actor ([`CameraActor`]) owning the recorder's thread.
//!
//! The thread runs the [`Recorder`] loop (one frame at a time, paced by the source) and, between
//! frames, the triggers the actor forwards. A trigger (an event stored in the outbox) writes a
//! snapshot at once and opens or extends a clip; each finished file is moved into the media
//! outbox ([`Spool`]) fsynced, then its queue entry is written durably, and only then is the clip
//! announced on `video/{device}/captured` and the uploader woken. If the thread fails (camera
//! gone, encoder error) the actor restarts it with a capped backoff and shows the camera as
//! degraded in `/readyz`; events are never held back by the camera.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;

use ::actors::{Backoff, ComponentState, HealthRegistry, SharedClock};
use actix::prelude::*;
use protocol::media::{ClipCaptured, MediaManifest, SnapshotTaken, MEDIA_SCHEMA_VERSION};
use protocol::{DeviceId, Topic, TopicPrefix};
use uuid::Uuid;

use super::spool::{QueueEntry, Spool, SpoolError};
use super::uploader::UploaderHandle;
use crate::config::{V4lFormat, VideoConfig, VideoSource};
use crate::recorder::camera_pipe::PipeH264Source;
use crate::recorder::camera_v4l::{self, V4lCamera, Wanted};
use crate::recorder::{
    ClipReport, EncoderConfig, FrameFormat, Pacing, PacketTap, Recorder, RecorderConfig,
    RecorderError, SyntheticSource,
};
use crate::uplink::PublishClip;

/// The readiness component of the camera.
pub const HEALTH_NAME: &str = "camera";

/// An event was stored: record it (snapshot now, clip around it).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Trigger {
    pub event_id: Uuid,
}

/// Stop the camera: the clip being written is closed (shorter) and queued.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopCamera;

/// Makes the live stream's tap for a recorder's stream (its parameters and packet time base), or
/// `None` for no live stream. Called again at each camera restart.
pub type LiveTapFactory =
    Box<dyn Fn(&ffmpeg_next::codec::Parameters, ffmpeg_next::Rational) -> Option<PacketTap> + Send>;

/// What went wrong on the camera thread.
#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error(transparent)]
    Recorder(#[from] RecorderError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

/// Everything the camera thread needs; cloned for each (re)start.
#[derive(Clone)]
pub struct CameraSetup {
    pub config: VideoConfig,
    pub device: DeviceId,
    pub prefix: TopicPrefix,
    pub spool: Spool,
    pub uploader: UploaderHandle,
    /// Where `video/{device}/captured` goes (the uplink), when connected to one.
    pub publish: Option<Recipient<PublishClip>>,
}

enum Command {
    Trigger(Uuid),
    Stop,
}

/// The supervised owner of the camera thread.
pub struct CameraActor {
    setup: CameraSetup,
    live: std::sync::Arc<std::sync::Mutex<Option<LiveTapFactory>>>,
    tx: Option<SyncSender<Command>>,
    thread: Option<JoinHandle<Result<(), CameraError>>>,
    backoff: Backoff,
    restart_at: Option<Duration>,
    clock: SharedClock,
    health: HealthRegistry,
}

impl CameraActor {
    pub fn new(
        setup: CameraSetup,
        live: Option<LiveTapFactory>,
        clock: SharedClock,
        health: HealthRegistry,
    ) -> CameraActor {
        health.register(HEALTH_NAME, false);
        CameraActor {
            setup,
            live: std::sync::Arc::new(std::sync::Mutex::new(live)),
            tx: None,
            thread: None,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            restart_at: None,
            clock,
            health,
        }
    }

    fn start_thread(&mut self) {
        let (tx, rx) = mpsc::sync_channel(256);
        let setup = self.setup.clone();
        let live = self.live.clone();
        let span = tracing::Span::current();
        match std::thread::Builder::new()
            .name("camera".into())
            .spawn(move || {
                let _entered = span.enter();
                let factory = live.lock().unwrap_or_else(|e| e.into_inner());
                run(setup, factory.as_ref(), rx)
            }) {
            Ok(thread) => {
                self.tx = Some(tx);
                self.thread = Some(thread);
                self.health.set(HEALTH_NAME, ComponentState::Ready);
            }
            Err(e) => self.failed(format!("cannot start the camera thread: {e}")),
        }
    }

    fn failed(&mut self, reason: String) {
        let delay = self.backoff.next_delay();
        tracing::error!(%reason, restart_in_ms = delay.as_millis() as u64, "camera stopped");
        self.health
            .set(HEALTH_NAME, ComponentState::Degraded { reason });
        self.restart_at = Some(self.clock.monotonic() + delay);
        self.tx = None;
    }

    /// Looks after the thread: a finished thread is a failure (it stops only when told).
    fn watch(&mut self) {
        if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
            let reason = match self.thread.take().map(|t| t.join()) {
                Some(Ok(Err(e))) => e.to_string(),
                Some(Ok(Ok(()))) => "the camera thread ended".into(),
                Some(Err(_)) => "the camera thread panicked".into(),
                None => return,
            };
            self.failed(reason);
        }
        if self.thread.is_none()
            && self
                .restart_at
                .is_some_and(|at| self.clock.monotonic() >= at)
        {
            self.restart_at = None;
            self.start_thread();
        }
    }
}

impl Actor for CameraActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.start_thread();
        ctx.run_interval(Duration::from_millis(500), |a, _| a.watch());
    }
}

impl Supervised for CameraActor {}

impl Handler<Trigger> for CameraActor {
    type Result = ();

    fn handle(&mut self, msg: Trigger, _: &mut Context<Self>) {
        let Some(tx) = &self.tx else {
            tracing::warn!(event_id = %msg.event_id, "camera down: no snapshot or clip for this event");
            return;
        };
        if tx.try_send(Command::Trigger(msg.event_id)).is_err() {
            tracing::warn!(event_id = %msg.event_id, "camera busy: trigger not recorded");
        }
    }
}

impl Handler<StopCamera> for CameraActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopCamera, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(tx) = self.tx.take() {
            let _ = tx.try_send(Command::Stop);
        }
        let thread = self.thread.take();
        ctx.stop();
        Box::pin(async move {
            if let Some(thread) = thread {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
        })
    }
}

/// The recorder for the source `config` names: raw sources are encoded, H.264 sources (an H.264
/// V4L2 camera, `rpicam-vid`) are taken as they are.
pub fn open_recorder(
    config: &VideoConfig,
    work: std::path::PathBuf,
) -> Result<Recorder, RecorderError> {
    let format = FrameFormat {
        width: config.width,
        height: config.height,
        fps: config.fps,
    };
    let settings = recorder_config(config, work);
    match &config.source {
        VideoSource::Synthetic => Recorder::new(
            SyntheticSource::new(format, Pacing::RealTime, chrono::Utc::now())?,
            &settings,
        ),
        VideoSource::V4l {
            device,
            pixel_format,
        } => {
            let wanted = match pixel_format {
                V4lFormat::Auto => Wanted::Auto,
                V4lFormat::H264 => Wanted::H264,
                V4lFormat::Mjpeg => Wanted::Mjpeg,
                V4lFormat::Yuyv => Wanted::Yuyv,
            };
            match camera_v4l::open(device, wanted, format)? {
                V4lCamera::Raw(source) => Recorder::new(source, &settings),
                V4lCamera::H264(source) => Recorder::passthrough(source, &settings),
            }
        }
        VideoSource::Rpicam { command } => Recorder::passthrough(
            PipeH264Source::spawn(command, format, config.gop_s)?,
            &settings,
        ),
    }
}

/// The recorder settings from `[video]`, writing into `work`.
pub fn recorder_config(config: &VideoConfig, work: std::path::PathBuf) -> RecorderConfig {
    RecorderConfig {
        encoder: EncoderConfig {
            name: config.encoder.clone(),
            preset: config.preset.clone(),
            gop_s: config.gop_s,
        },
        preroll_s: config.preroll_s,
        clip_s: config.clip_s,
        max_clip_s: config.max_clip_s,
        preroll_max_bytes: config.preroll_max_bytes,
        dir: work,
    }
}

/// The camera thread: frames, and triggers between them, until told to stop.
fn run(
    setup: CameraSetup,
    live: Option<&LiveTapFactory>,
    rx: Receiver<Command>,
) -> Result<(), CameraError> {
    let mut recorder = open_recorder(&setup.config, setup.spool.work_dir())?;
    if let Some(tap) = live.and_then(|f| f(&recorder.parameters(), recorder.packet_time_base())) {
        recorder.set_tap(tap);
    }
    tracing::info!(width = setup.config.width, height = setup.config.height, fps = setup.config.fps,
        encoder = %setup.config.encoder, "camera recording (pre-roll running)");
    let mut camera = Camera {
        setup,
        events: BTreeMap::new(),
    };
    loop {
        if let Some(clip) = recorder.step()? {
            camera.clip(clip)?;
        }
        loop {
            match rx.try_recv() {
                Ok(Command::Trigger(event_id)) => camera.trigger(&mut recorder, event_id)?,
                Ok(Command::Stop) | Err(TryRecvError::Disconnected) => {
                    if let Some(clip) = recorder.finish()? {
                        camera.clip(clip)?;
                    }
                    tracing::info!("camera stopped");
                    return Ok(());
                }
                Err(TryRecvError::Empty) => break,
            }
        }
    }
}

/// The thread's bookkeeping: which events each trigger frame belongs to.
struct Camera {
    setup: CameraSetup,
    events: BTreeMap<u64, Vec<Uuid>>,
}

impl Camera {
    fn trigger(&mut self, recorder: &mut Recorder, event_id: Uuid) -> Result<(), CameraError> {
        let report = recorder.trigger()?;
        let id = Uuid::now_v7();
        let file = Spool::snapshot_file(id);
        let (size, sha256) = self.setup.spool.adopt(&report.snapshot, &file)?;
        let entry = QueueEntry {
            manifest: MediaManifest::Snapshot(SnapshotTaken {
                schema_version: MEDIA_SCHEMA_VERSION,
                snapshot_id: id,
                device: self.setup.device.clone(),
                event_id: Some(event_id),
                taken_at: report.captured_at,
                size_bytes: size,
                sha256,
                width: self.setup.config.width,
                height: self.setup.config.height,
            }),
            file,
            queued_at: chrono::Utc::now(),
            uploaded: false,
        };
        self.setup.spool.add(&entry)?;
        self.setup.uploader.wake();
        self.events.entry(report.frame).or_default().push(event_id);
        tracing::info!(%event_id, snapshot_id = %id, frame = report.frame,
            extends_clip = !report.new_clip, "trigger: snapshot queued");
        Ok(())
    }

    fn clip(&mut self, clip: ClipReport) -> Result<(), CameraError> {
        let id = Uuid::now_v7();
        let file = Spool::clip_file(id);
        let (size, sha256) = self.setup.spool.adopt(&clip.file.path, &file)?;
        let mut event_ids = Vec::new();
        let mut trigger_offsets_ms = Vec::new();
        for frame in &clip.trigger_frames {
            let offset = (frame - clip.first_frame) * 1000 / u64::from(clip.fps);
            for event_id in self.events.remove(frame).unwrap_or_default() {
                event_ids.push(event_id);
                trigger_offsets_ms.push(offset);
            }
        }
        // Triggers before this clip's start can no longer be in a clip.
        self.events = self.events.split_off(&clip.first_frame);
        // The protocol links a clip to at most MAX_CLIP_EVENTS events (a 60 s clip of a busy
        // sensor can cover more): the first ones are kept, the rest still have their snapshots.
        if event_ids.len() > protocol::media::MAX_CLIP_EVENTS {
            tracing::warn!(clip_id = %id, events = event_ids.len(),
                kept = protocol::media::MAX_CLIP_EVENTS,
                "the clip covers more events than it can name; linking the first ones");
            event_ids.truncate(protocol::media::MAX_CLIP_EVENTS);
            trigger_offsets_ms.truncate(protocol::media::MAX_CLIP_EVENTS);
        }
        let captured = ClipCaptured {
            schema_version: MEDIA_SCHEMA_VERSION,
            clip_id: id,
            device: self.setup.device.clone(),
            event_ids,
            started_at: clip.started_at,
            ended_at: clip.ended_at,
            duration_ms: (clip.end_frame - clip.first_frame) * 1000 / u64::from(clip.fps),
            trigger_offsets_ms,
            size_bytes: size,
            sha256,
            codec: "h264".into(),
            width: clip.width,
            height: clip.height,
            fps: clip.fps,
        };
        let entry = QueueEntry {
            manifest: MediaManifest::Clip(captured.clone()),
            file,
            queued_at: chrono::Utc::now(),
            uploaded: false,
        };
        self.setup.spool.add(&entry)?;
        tracing::info!(clip_id = %id, events = captured.event_ids.len(), duration_ms = captured.duration_ms,
            size, "clip queued");
        if let Some(publish) = &self.setup.publish {
            let topic = Topic::ClipCaptured(self.setup.device.clone()).render(&self.setup.prefix);
            let payload = serde_json::to_vec(&captured).expect("clip metadata serialises");
            publish.do_send(PublishClip { topic, payload });
        }
        self.setup.uploader.wake();
        Ok(())
    }
}
