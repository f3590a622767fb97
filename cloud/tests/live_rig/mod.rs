//! Live-view rig shared by `tests/live.rs` and `benches/live.rs`: a real `vigie-cloud` on the
//! embedded defaults (its RTSP server on a free port), a provisioned device, a camera in this
//! process (the recorder's synthetic source paced in real time, through the edge's
//! `LivePublisher`), a TCP relay between them that a test can cut, and an HLS reader (the `ffmpeg`
//! CLI) that reads the burned-in counter strip back from the frames it decodes.

#![allow(dead_code)]

use std::io::Read;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use vigie_edge::recorder::burn::read_counter;
use vigie_edge::recorder::live::{LiveConfig, LivePublisher, LiveStatus};
use vigie_edge::recorder::{FrameFormat, Pacing, Recorder, RecorderConfig, SyntheticSource};

use crate::support::*;

pub const JWT_SECRET: &str = "e2e-secret-of-some-length-0123456789";

/// A cloud with the user `admin` and one provisioned device.
pub struct Rig {
    pub cloud: Cloud,
    pub rtsp_port: u16,
    pub admin: String,
    pub device: String,
    /// The device's API token (the RTSP server refuses it).
    pub token: String,
    /// The device's live-push token, from its bundle: what a camera publishes with.
    pub live_token: String,
    pub dir: tempfile::TempDir,
}

impl Rig {
    /// `extra` settings on top of the embedded defaults (e.g. `VIGIE_LIVE_SEGMENT_MS`).
    pub fn start(extra: &[(&str, &str)]) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let rtsp_port = free_port();
        let mut env = vec![
            (
                "VIGIE_MQTT_LISTEN".to_owned(),
                format!("127.0.0.1:{}", free_port()),
            ),
            (
                "VIGIE_RTSP_LISTEN".to_owned(),
                format!("127.0.0.1:{rtsp_port}"),
            ),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let cloud = Cloud::start(dir.path(), env);
        cloud.add_user("admin", "admin", "correct horse battery");
        let admin = cloud.login("admin", "correct horse battery");
        let device = unique("cam-");
        let token = cloud.add_device(&device);
        let live_token = cloud.live_token(&device);
        Rig {
            cloud,
            rtsp_port,
            admin,
            device,
            token,
            live_token,
            dir,
        }
    }

    pub fn rtsp_url(&self, port: u16) -> String {
        format!("rtsp://127.0.0.1:{port}/live/{}", self.device)
    }

    /// An ANNOUNCE of an H.264 stream to the device's path on the RTSP server, with `auth` (an
    /// `Authorization` header line, or empty).
    pub fn announce(&self, auth: &str) -> String {
        let sdp = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
        format!(
            "ANNOUNCE {} RTSP/1.0\r\nCSeq: 2\r\nContent-Type: application/sdp\r\n{auth}Content-Length: {}\r\n\r\n{sdp}",
            self.rtsp_url(self.rtsp_port),
            sdp.len()
        )
    }

    pub fn stream_url(&self) -> String {
        format!("{}/api/cameras/{}/stream", self.cloud.base, self.device)
    }

    /// The status of `GET` on `url` with `bearer`, and the body.
    pub fn get(&self, url: &str, bearer: Option<&str>) -> (u16, String) {
        let mut req = agent().get(url);
        if let Some(t) = bearer {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let mut resp = req.call().unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap_or_default())
    }

    /// Waits until the playlist answers 200 with at least one segment; how long that took.
    pub fn wait_playlist(&self, timeout: Duration) -> Duration {
        let started = Instant::now();
        wait_for("a playable live playlist", timeout, || {
            let (status, body) = self.get(&self.stream_url(), Some(&self.admin));
            status == 200 && body.contains(".ts")
        });
        started.elapsed()
    }
}

/// An `Authorization: Basic` header line for `user:password`.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {b64}\r\n")
}

/// Sends `request` on a new connection to the RTSP server on `port`: the answer's status line.
pub fn rtsp_status(port: u16, request: &str) -> String {
    use std::io::Write as _;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The synthetic camera publishing through `LivePublisher` on a thread of its own.
pub struct Camera {
    pub format: FrameFormat,
    /// The burned-in time of frame 0.
    pub epoch: DateTime<Utc>,
    publisher: Arc<Mutex<Option<LivePublisher>>>,
    /// Seconds from each frame's burned-in time to its packet leaving the encoder.
    pub encoder_delays: Arc<Mutex<Vec<f64>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Camera {
    pub fn start(url: String, user: &str, token: &str, format: FrameFormat) -> Camera {
        let dir = tempfile::tempdir().unwrap();
        let epoch = Utc::now();
        let source = SyntheticSource::new(format, Pacing::RealTime, epoch).unwrap();
        let mut recorder = Recorder::new(source, &RecorderConfig::new(dir.path().into())).unwrap();
        let mut config = LiveConfig::new(url, user, token.to_owned());
        config.backoff = (Duration::from_millis(200), Duration::from_secs(2));
        let publisher =
            LivePublisher::start(config, recorder.parameters(), recorder.packet_time_base())
                .unwrap();
        let encoder_delays: Arc<Mutex<Vec<f64>>> = Arc::default();
        let mut tap = publisher.tap();
        let delays = encoder_delays.clone();
        let fps = i64::from(format.fps);
        recorder.set_tap(Box::new(move |packet| {
            let burned = epoch + chrono::Duration::microseconds(packet.pts * 1_000_000 / fps);
            let delay = (Utc::now() - burned).num_microseconds().unwrap_or(0) as f64 / 1e6;
            delays.lock().unwrap().push(delay);
            tap(packet)
        }));
        let publisher = Arc::new(Mutex::new(Some(publisher)));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    recorder.step().unwrap();
                }
            })
        };
        Camera {
            format,
            epoch,
            publisher,
            encoder_delays,
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }

    pub fn status(&self) -> LiveStatus {
        self.publisher.lock().unwrap().as_ref().unwrap().status()
    }

    /// Stops the recorder, then the publisher (RTSP TEARDOWN).
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        if let Some(publisher) = self.publisher.lock().unwrap().take() {
            publisher.stop();
        }
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// A TCP relay from a free port to `upstream`; [`Relay::cut`] breaks every connection through it.
pub struct Relay {
    pub port: u16,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    pub fn start(upstream: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let conns = open.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                conns.lock().unwrap().push(client.try_clone().unwrap());
                conns.lock().unwrap().push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Relay { port, open }
    }

    /// Cuts every connection through the relay (both sides see it closed).
    pub fn cut(&self) {
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// One decoded frame at the reader: its burned-in counter and when the reader had it.
#[derive(Debug, Clone, Copy)]
pub struct ReadFrame {
    pub counter: u64,
    pub at: DateTime<Utc>,
}

/// Reads `frames` frames of the HLS stream at `url` with the `ffmpeg` CLI (`-re` plays at real
/// time, as a player does), with the bearer token as a header when given.
pub fn read_hls(
    url: &str,
    bearer: Option<&str>,
    format: FrameFormat,
    frames: usize,
    realtime: bool,
) -> Vec<ReadFrame> {
    try_read_hls(url, bearer, format, frames, realtime).unwrap_or_else(|e| panic!("{e}"))
}

/// [`read_hls`], with a failure (fewer frames than asked) as an error.
pub fn try_read_hls(
    url: &str,
    bearer: Option<&str>,
    format: FrameFormat,
    frames: usize,
    realtime: bool,
) -> Result<Vec<ReadFrame>, String> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-nostdin"]);
    if let Some(token) = bearer {
        cmd.args(["-headers", &format!("Authorization: Bearer {token}\r\n")]);
    }
    if realtime {
        cmd.arg("-re");
    }
    // Every decoded picture once, as decoded (no frame duplicated or dropped to a constant rate).
    cmd.args(["-i", url, "-frames:v", &frames.to_string()])
        .args(["-fps_mode", "passthrough"])
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("ffmpeg is installed (apt package ffmpeg)");
    let (w, h) = (format.width as usize, format.height as usize);
    let mut stdout = child.stdout.take().unwrap();
    let mut out = Vec::new();
    let mut frame = vec![0u8; w * h];
    while out.len() < frames && stdout.read_exact(&mut frame).is_ok() {
        out.push(ReadFrame {
            counter: read_counter(&frame, w, h),
            at: Utc::now(),
        });
    }
    let result = child.wait_with_output().unwrap();
    if out.len() < frames {
        return Err(format!(
            "ffmpeg read {} of {frames} frames from {url}: {}",
            out.len(),
            String::from_utf8_lossy(&result.stderr)
        ));
    }
    Ok(out)
}

/// The frames from the first picture of the camera on: a reader joining the live playlist may
/// start in a segment that begins mid-GOP (segments shorter than the GOP are cut by time), and the
/// pictures before the next keyframe are the decoder's concealment, not the camera's (a browser's
/// Media Source waits for the keyframe instead). The camera's pictures carry consecutive counters.
pub fn from_first_picture(counters: &[u64]) -> &[u64] {
    let start = counters
        .windows(3)
        .position(|w| w[0] > 0 && w[1] == w[0] + 1 && w[2] == w[1] + 1)
        .unwrap_or(counters.len());
    &counters[start..]
}

/// Seconds between the frame's burned-in time and the moment the reader had it.
pub fn delay_s(camera: &Camera, frame: &ReadFrame) -> f64 {
    let burned = camera.epoch
        + chrono::Duration::microseconds(
            (frame.counter * 1_000_000 / u64::from(camera.format.fps)) as i64,
        );
    (frame.at - burned).num_microseconds().unwrap_or(0) as f64 / 1e6
}
