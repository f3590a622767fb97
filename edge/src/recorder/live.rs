//! The live stream: the recorder's encoded H.264 pushed as is (never re-encoded) over RTSP/TCP
//! (ANNOUNCE, SETUP with interleaved transport, RECORD) to the cloud's RTSP server.
//!
//! [`LivePublisher`] runs on its own thread. The recorder feeds it through [`LivePublisher::tap`], a
//! [`PacketTap`] that never blocks: it offers each packet to a bounded channel and drops it when the
//! channel is full; after a drop (or while the link is down) everything is dropped up to the next
//! keyframe, so the receiver never sees a GOP with a hole. The publisher authenticates with the
//! device id as user and its live-push token as password (put in the URL's userinfo: FFmpeg's
//! RTSP client answers the server's `401` with Basic or Digest), sends the SPS/PPS in the SDP
//! (`sprop-parameter-sets`, from the encoder's extradata), and reconnects with capped exponential
//! backoff, logging each state change once.
//!
//! ```no_run
//! # use vigie_edge::recorder::{live::{LiveConfig, LivePublisher}, Recorder};
//! # fn f(recorder: &mut Recorder, token: String) -> Result<(), vigie_edge::recorder::RecorderError> {
//! let config = LiveConfig::new("rtsp://cloud.example:8554/live/pi-1", "pi-1", token);
//! let publisher = LivePublisher::start(config, recorder.parameters(), recorder.packet_time_base())?;
//! recorder.set_tap(publisher.tap());
//! // ... run the recorder; `publisher.status()` says whether the stream is up.
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actors::Backoff;
use ffmpeg::{codec, format, packet, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;

use super::{init_ffmpeg, EncodedPacket, PacketTap, RecorderError};

/// Where and as whom to publish.
#[derive(Clone)]
pub struct LiveConfig {
    /// `rtsp://host:port/live/{device}`, without credentials.
    pub url: String,
    /// The device id.
    pub username: String,
    /// The device's live-push token (its bundle's `live.token`), which only the RTSP server takes.
    pub password: String,
    /// Packets queued between the recorder and the network (about 2 s at 30 fps by default).
    pub queue_packets: usize,
    /// First and largest wait between connection attempts.
    pub backoff: (Duration, Duration),
}

impl std::fmt::Debug for LiveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl LiveConfig {
    /// Defaults: 64 packets queued, reconnect after 0.5 s doubling up to 30 s.
    pub fn new(url: impl Into<String>, username: impl Into<String>, password: String) -> Self {
        Self {
            url: url.into(),
            username: username.into(),
            password,
            queue_packets: 64,
            backoff: (Duration::from_millis(500), Duration::from_secs(30)),
        }
    }

    /// The URL with the credentials as userinfo (percent-encoded), for FFmpeg.
    fn url_with_credentials(&self) -> Result<String, RecorderError> {
        let rest = self.url.strip_prefix("rtsp://").ok_or_else(|| {
            RecorderError::Config(format!(
                "live url {:?} must start with rtsp://, e.g. rtsp://cloud:8554/live/pi-1",
                self.url
            ))
        })?;
        Ok(format!(
            "rtsp://{}:{}@{rest}",
            percent_encode(&self.username),
            percent_encode(&self.password)
        ))
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What the publisher has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveStatus {
    /// Whether a stream is up now.
    pub connected: bool,
    /// Successful connections since the start.
    pub connections: u64,
    /// Connection attempts refused or failed (a wrong token shows here), and streams cut.
    pub failures: u64,
    /// Packets sent, and dropped (queue full, link down, or waiting for a keyframe).
    pub sent: u64,
    pub dropped: u64,
}

#[derive(Default)]
struct Shared {
    connected: AtomicBool,
    connections: AtomicU64,
    failures: AtomicU64,
    sent: AtomicU64,
    dropped: AtomicU64,
}

/// Drops packets up to the next keyframe once something was lost (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyframeGate {
    waiting: bool,
}

impl KeyframeGate {
    /// A gate that waits for a keyframe first.
    pub fn closed() -> Self {
        Self { waiting: true }
    }

    /// Whether `keyframe` may go through; opens at a keyframe.
    pub fn pass(&mut self, keyframe: bool) -> bool {
        if keyframe {
            self.waiting = false;
        }
        !self.waiting
    }

    /// Something was lost: wait for the next keyframe.
    pub fn close(&mut self) {
        self.waiting = true;
    }
}

/// The publisher thread and its queue. Dropping it (or [`LivePublisher::stop`]) ends the stream.
pub struct LivePublisher {
    sender: Option<SyncSender<EncodedPacket>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LivePublisher {
    /// Starts the thread, which connects at once and keeps reconnecting. `parameters` and
    /// `time_base` are the recorder's ([`super::Recorder::parameters`],
    /// [`super::Recorder::packet_time_base`]).
    pub fn start(
        config: LiveConfig,
        parameters: codec::Parameters,
        time_base: Rational,
    ) -> Result<Self, RecorderError> {
        init_ffmpeg()?;
        let url = config.url_with_credentials()?;
        let (sender, receiver) = mpsc::sync_channel(config.queue_packets.max(2));
        let shared = Arc::new(Shared::default());
        let worker = Worker {
            url,
            shown_url: config.url.clone(),
            parameters,
            time_base,
            receiver,
            shared: shared.clone(),
            backoff: Backoff::new(config.backoff.0, config.backoff.1),
        };
        let thread = std::thread::Builder::new()
            .name("live-publisher".into())
            .spawn(move || worker.run())
            .map_err(|source| RecorderError::Io {
                what: "starting the live publisher thread",
                path: config.url.clone().into(),
                source,
            })?;
        Ok(Self {
            sender: Some(sender),
            shared,
            thread: Some(thread),
        })
    }

    /// The tap for [`super::Recorder::set_tap`]: never blocks; drops up to the next keyframe when
    /// the queue is full or the link is down.
    pub fn tap(&self) -> PacketTap {
        let sender = self.sender.clone().expect("sender lives until stop");
        let shared = self.shared.clone();
        let mut gate = KeyframeGate::closed();
        Box::new(move |packet: &EncodedPacket| {
            if !shared.connected.load(Ordering::Relaxed) {
                gate.close();
            }
            if !gate.pass(packet.keyframe) {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            match sender.try_send(packet.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    shared.dropped.fetch_add(1, Ordering::Relaxed);
                    gate.close();
                }
            }
        })
    }

    pub fn status(&self) -> LiveStatus {
        LiveStatus {
            connected: self.shared.connected.load(Ordering::Relaxed),
            connections: self.shared.connections.load(Ordering::Relaxed),
            failures: self.shared.failures.load(Ordering::Relaxed),
            sent: self.shared.sent.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
        }
    }

    /// Ends the stream (RTSP TEARDOWN) once the queue is drained, and joins the thread. Taps still
    /// held elsewhere keep the queue open: drop the recorder (or its tap) first.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LivePublisher {
    fn drop(&mut self) {
        self.sender.take();
        // Not joined here: a tap may still hold the queue open; the thread ends when it goes.
        self.thread.take();
    }
}

struct Worker {
    url: String,
    shown_url: String,
    parameters: codec::Parameters,
    time_base: Rational,
    receiver: Receiver<EncodedPacket>,
    shared: Arc<Shared>,
    backoff: Backoff,
}

/// How a connection ended.
enum End {
    /// The recorder's side is gone: stop.
    Closed,
    /// The link failed: reconnect.
    Failed(String),
}

impl Worker {
    fn run(mut self) {
        let mut last_error: Option<String> = None;
        loop {
            let outcome = match self.connect() {
                Ok(output) => {
                    self.backoff.reset();
                    self.shared.connections.fetch_add(1, Ordering::Relaxed);
                    self.shared.connected.store(true, Ordering::Relaxed);
                    tracing::info!(url = %self.shown_url, "live stream up");
                    last_error = None;
                    let end = self.stream(output);
                    self.shared.connected.store(false, Ordering::Relaxed);
                    end
                }
                Err(e) => End::Failed(e),
            };
            match outcome {
                End::Closed => {
                    tracing::info!(url = %self.shown_url, "live stream stopped");
                    return;
                }
                End::Failed(error) => {
                    self.shared.failures.fetch_add(1, Ordering::Relaxed);
                    if last_error.as_deref() != Some(&error) {
                        tracing::warn!(url = %self.shown_url, %error, "live stream down; retrying with backoff");
                        last_error = Some(error);
                    }
                }
            }
            // Drain the queue while waiting, so the tap keeps dropping rather than filling up.
            let until = Instant::now() + self.backoff.next_delay();
            loop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match self.receiver.recv_timeout(left) {
                    Ok(_) => {
                        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        }
    }

    /// ANNOUNCE + SETUP + RECORD: FFmpeg's RTSP muxer, over TCP.
    fn connect(&self) -> Result<format::context::Output, String> {
        let mut output = open_rtsp_output(&self.url).map_err(|e| e.to_string())?;
        {
            let mut stream = output
                .add_stream(None::<ffmpeg::Codec>)
                .map_err(|e| format!("adding the video stream: {e}"))?;
            stream.set_parameters(self.parameters.clone());
            stream.set_time_base(self.time_base);
            stream.set_avg_frame_rate(self.time_base.invert());
            // SAFETY: the stream was just created by `add_stream`; its codecpar is valid and owned
            // by `output`, which outlives this block.
            unsafe {
                (*(*stream.as_mut_ptr()).codecpar).codec_tag = 0;
            }
        }
        let mut options = Dictionary::new();
        options.set("rtsp_transport", "tcp");
        // Socket I/O timeout (µs): a stalled server fails the write instead of hanging forever.
        options.set("timeout", "5000000");
        output
            .write_header_with(options)
            .map_err(|e| format!("RTSP ANNOUNCE/SETUP/RECORD refused or failed: {e}"))?;
        Ok(output)
    }

    /// Sends packets from the first keyframe on, timestamps from 0, until the link fails or the
    /// queue closes.
    fn stream(&mut self, mut output: format::context::Output) -> End {
        let stream_tb = output
            .stream(0)
            .map(|s| s.time_base())
            .unwrap_or(self.time_base);
        let mut gate = KeyframeGate::closed();
        let mut offset = None;
        loop {
            let Ok(encoded) = self.receiver.recv() else {
                let _ = output.write_trailer();
                return End::Closed;
            };
            if !gate.pass(encoded.keyframe) {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let start = *offset.get_or_insert(encoded.dts);
            let mut packet = Packet::copy(&encoded.data);
            packet.set_stream(0);
            packet.set_pts(Some(encoded.pts - start));
            packet.set_dts(Some(encoded.dts - start));
            packet.set_duration(encoded.duration);
            if encoded.keyframe {
                packet.set_flags(packet::Flags::KEY);
            }
            packet.rescale_ts(self.time_base, stream_tb);
            if let Err(e) = packet.write(&mut output) {
                return End::Failed(format!("sending video: {e}"));
            }
            self.shared.sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An RTSP output context. `format::output_as(url, "rtsp")` cannot be used: it calls `avio_open`,
/// which knows no `rtsp://` protocol; the RTSP muxer opens its own connection (`AVFMT_NOFILE`).
fn open_rtsp_output(url: &str) -> Result<format::context::Output, RecorderError> {
    use ffmpeg::ffi;
    let c_url = std::ffi::CString::new(url)
        .map_err(|_| RecorderError::Config("live url contains a NUL byte".into()))?;
    let mut ctx: *mut ffi::AVFormatContext = std::ptr::null_mut();
    // SAFETY: plain FFI call with valid C strings; on success `ctx` is an allocated output context
    // whose ownership passes to `Output::wrap`, which frees it when dropped.
    unsafe {
        let ret = ffi::avformat_alloc_output_context2(
            &mut ctx,
            std::ptr::null(),
            c"rtsp".as_ptr(),
            c_url.as_ptr(),
        );
        if ret < 0 || ctx.is_null() {
            return Err(RecorderError::ffmpeg(
                "allocating the RTSP output",
                ffmpeg::Error::from(ret),
            ));
        }
        Ok(format::context::Output::wrap(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_drops_up_to_the_next_keyframe_after_a_loss() {
        let mut gate = KeyframeGate::closed();
        assert!(!gate.pass(false));
        assert!(gate.pass(true));
        assert!(gate.pass(false));
        gate.close();
        assert!(!gate.pass(false));
        assert!(gate.pass(true));
    }

    #[test]
    fn credentials_go_into_the_url_percent_encoded() {
        let config = LiveConfig::new("rtsp://h:8554/live/pi-1", "pi-1", "vgd_a b/c".into());
        assert_eq!(
            config.url_with_credentials().unwrap(),
            "rtsp://pi-1:vgd_a%20b%2Fc@h:8554/live/pi-1"
        );
        let bad = LiveConfig::new("http://h/live/pi-1", "pi-1", "t".into());
        assert!(bad.url_with_credentials().is_err());
    }

    #[test]
    fn the_config_never_shows_the_token() {
        let config = LiveConfig::new("rtsp://h/live/pi-1", "pi-1", "vgd_secret".into());
        assert!(!format!("{config:?}").contains("vgd_secret"));
    }
}
