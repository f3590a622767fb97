//! The embedded RTSP server (single-machine defaults): accepts publishers only. A Pi pushes its
//! camera to `rtsp://HOST:PORT/live/{device}` with OPTIONS, ANNOUNCE (SDP), SETUP (TCP interleaved
//! transport only), RECORD and TEARDOWN; PLAY, DESCRIBE and UDP are refused with a reason (viewers
//! watch over HLS at `/api/cameras/{id}/stream`).
//!
//! Authentication: Basic, with the device id as user and its API token as password, checked like
//! the API checks device tokens (by hash, in the store): an unknown or revoked device gets `401`,
//! and a stream whose device is revoked while it runs is cut within [`RECHECK`].
//!
//! One thread per connection (at most [`MAX_CONNECTIONS`]); a publisher silent for [`IDLE`] is
//! dropped. A new publisher for a device that is already streaming takes over (the old connection
//! is shut): a Pi that reconnects after a cut is not kept waiting for its own stale session.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol::DeviceId;

use message::{basic_credentials, device_of_url, read_request, Request, Response};

use super::hls::{h264_parameters, Frame, HlsWriter};
use super::rtp::{parse_sprop, Depacketizer};
use super::{camera_dir, LiveCameras, LiveError, LiveSettings};
use crate::auth::{device_token_hash, is_device_token};
use crate::store::Store;

mod message;

/// Most simultaneous RTSP connections.
pub const MAX_CONNECTIONS: usize = 256;
/// A publisher that sends nothing for this long is gone.
pub const IDLE: Duration = Duration::from_secs(10);
/// How often a running stream's device token is checked again (revocation).
pub const RECHECK: Duration = Duration::from_secs(30);
const RTP_CLOCK: i32 = 90_000;

struct Server {
    settings: LiveSettings,
    store: Store,
    cameras: LiveCameras,
    connections: AtomicUsize,
    next_generation: AtomicU64,
    /// The current publisher of each device: its generation and socket (to shut on takeover).
    active: Mutex<HashMap<DeviceId, (u64, TcpStream)>>,
}

/// Binds `addr` and serves publishers on their own threads.
pub fn start(
    addr: SocketAddr,
    settings: LiveSettings,
    store: Store,
    cameras: LiveCameras,
) -> Result<(), LiveError> {
    let listener = TcpListener::bind(addr).map_err(|source| LiveError::Listen { addr, source })?;
    tracing::info!(listen = %addr, "RTSP server for camera publishers");
    let server = Arc::new(Server {
        settings,
        store,
        cameras,
        connections: AtomicUsize::new(0),
        next_generation: AtomicU64::new(1),
        active: Mutex::new(HashMap::new()),
    });
    std::thread::Builder::new()
        .name("rtsp-accept".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if server.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    server.connections.fetch_sub(1, Ordering::SeqCst);
                    tracing::warn!("too many RTSP connections; refusing one");
                    continue;
                }
                let server = server.clone();
                let spawned = std::thread::Builder::new().name("rtsp-conn".into()).spawn({
                    let server = server.clone();
                    move || serve(&server, stream)
                });
                if spawned.is_err() {
                    server.connections.fetch_sub(1, Ordering::SeqCst);
                    tracing::error!("cannot start an RTSP connection thread");
                }
            }
        })
        .map_err(|source| LiveError::Io {
            what: "starting the RTSP server thread",
            path: "rtsp".into(),
            source,
        })?;
    Ok(())
}

/// Serves one connection to its end, then releases its slot.
fn serve(server: &Server, stream: TcpStream) {
    let peer = stream.peer_addr().ok();
    match Connection::new(server, stream) {
        Ok(mut conn) => {
            if let Err(e) = conn.run() {
                tracing::debug!(?peer, error = %e, "RTSP connection ended");
            }
            conn.close();
        }
        Err(e) => tracing::warn!(?peer, error = %e, "cannot serve an RTSP connection"),
    }
    server.connections.fetch_sub(1, Ordering::SeqCst);
}

/// The publisher's state on one connection.
struct Connection<'a> {
    server: &'a Server,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    device: Option<DeviceId>,
    token: Option<String>,
    checked_at: Instant,
    session: String,
    depacketizer: Option<Depacketizer>,
    hls: Option<HlsWriter>,
    generation: u64,
}

impl<'a> Connection<'a> {
    fn new(server: &'a Server, stream: TcpStream) -> std::io::Result<Self> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IDLE))?;
        let writer = stream.try_clone()?;
        Ok(Self {
            server,
            reader: BufReader::new(stream),
            writer,
            device: None,
            token: None,
            checked_at: Instant::now(),
            session: format!("{:016x}", rand::random::<u64>()),
            depacketizer: None,
            hls: None,
            generation: 0,
        })
    }

    fn run(&mut self) -> std::io::Result<()> {
        loop {
            let first = match self.reader.fill_buf()? {
                [] => return Ok(()),
                buf => buf[0],
            };
            if first == b'$' {
                let mut head = [0u8; 4];
                self.reader.read_exact(&mut head)?;
                let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
                let mut data = vec![0u8; len];
                self.reader.read_exact(&mut data)?;
                if head[1] == 0 {
                    self.on_rtp(&data)?;
                }
                continue;
            }
            let request = read_request(&mut self.reader)?;
            let cseq = request.header("CSeq").unwrap_or("0").to_owned();
            let (response, close) = self.handle(&request);
            self.writer.write_all(&response.to_bytes(&cseq))?;
            if close {
                return Ok(());
            }
        }
    }

    /// Answers one request; true when the connection should close after the answer.
    fn handle(&mut self, request: &Request) -> (Response, bool) {
        const PUBLIC: &str = "Public: OPTIONS, ANNOUNCE, SETUP, RECORD, TEARDOWN";
        match request.method.as_str() {
            "OPTIONS" => (Response::new(200, "OK").header(PUBLIC), false),
            "ANNOUNCE" => (self.announce(request), false),
            "SETUP" => (self.setup(request), false),
            "RECORD" => (self.record(request), false),
            "TEARDOWN" => (
                Response::new(200, "OK").header(format!("Session: {}", self.session)),
                true,
            ),
            "DESCRIBE" | "PLAY" => (
                Response::new(405, "Method Not Allowed - this server only takes publishers; watch over HLS at /api/cameras/{id}/stream")
                    .header("Allow: OPTIONS, ANNOUNCE, SETUP, RECORD, TEARDOWN"),
                true,
            ),
            _ => (
                Response::new(501, "Not Implemented").header(PUBLIC),
                false,
            ),
        }
    }

    /// Checks the path and the Basic credentials; the device it names.
    fn authenticate(&self, request: &Request) -> Result<(DeviceId, String), Response> {
        let unauthorized =
            || Response::new(401, "Unauthorized").header("WWW-Authenticate: Basic realm=\"vigie\"");
        let Some(device) = device_of_url(&request.url) else {
            return Err(Response::new(
                404,
                "Not Found - publish to rtsp://HOST:PORT/live/{device}",
            ));
        };
        let Some((user, token)) = request.header("Authorization").and_then(basic_credentials)
        else {
            return Err(unauthorized());
        };
        if user != device.as_str() {
            return Err(Response::new(
                403,
                "Forbidden - a device may only publish to /live/{its own id}",
            ));
        }
        if self.token_device(&token).as_ref() != Some(&device) {
            tracing::warn!(device_id = %device, "RTSP publisher refused: unknown or revoked device token");
            return Err(unauthorized());
        }
        Ok((device, token))
    }

    fn token_device(&self, token: &str) -> Option<DeviceId> {
        if !is_device_token(token) {
            return None;
        }
        match self
            .server
            .store
            .device_for_token_hash(&device_token_hash(token))
        {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check an RTSP publisher's token");
                None
            }
        }
    }

    fn announce(&mut self, request: &Request) -> Response {
        let (device, token) = match self.authenticate(request) {
            Ok(found) => found,
            Err(response) => return response,
        };
        let sdp = String::from_utf8_lossy(&request.body);
        if !sdp.contains("H264/90000") {
            return Response::new(415, "Unsupported Media Type - only H.264 video is taken");
        }
        let sprop = sdp
            .lines()
            .filter(|l| l.starts_with("a=fmtp:"))
            .flat_map(|l| l.split(';'))
            .find_map(|p| p.trim().split_once("sprop-parameter-sets=").map(|(_, v)| v))
            .map(|v| v.split_whitespace().next().unwrap_or("").to_owned());
        let (sps, pps) = sprop.as_deref().map(parse_sprop).unwrap_or_default();
        self.depacketizer = Some(Depacketizer::new(sps, pps));
        self.device = Some(device);
        self.token = Some(token);
        self.checked_at = Instant::now();
        Response::new(200, "OK")
    }

    fn setup(&mut self, request: &Request) -> Response {
        if let Err(response) = self.authenticate(request) {
            return response;
        }
        let transport = request.header("Transport").unwrap_or("");
        if !transport.contains("TCP") || transport.contains("multicast") {
            return Response::new(
                461,
                "Unsupported Transport - use RTP/AVP/TCP interleaved (rtsp_transport=tcp)",
            );
        }
        Response::new(200, "OK")
            .header("Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record")
            .header(format!("Session: {};timeout=60", self.session))
    }

    fn record(&mut self, request: &Request) -> Response {
        let (device, _) = match self.authenticate(request) {
            Ok(found) => found,
            Err(response) => return response,
        };
        let Some(depacketizer) = &self.depacketizer else {
            return Response::new(455, "Method Not Valid in This State - ANNOUNCE first");
        };
        let (sps, pps) = depacketizer.parameter_sets();
        let parameters = h264_parameters(sps, pps);
        if let Err(e) = self.take_over(&device) {
            tracing::error!(device_id = %device, error = %e, "cannot take the camera's stream");
            return Response::new(500, "Internal Server Error");
        }
        let dir = camera_dir(&self.server.settings.dir, &device);
        match HlsWriter::create(
            &dir,
            parameters,
            ffmpeg_next::Rational::new(1, RTP_CLOCK),
            self.server.settings.segment,
            self.server.settings.list_size,
        ) {
            Ok(writer) => self.hls = Some(writer),
            Err(e) => {
                tracing::error!(device_id = %device, error = %e, "cannot start the camera's HLS");
                return Response::new(500, "Internal Server Error");
            }
        }
        self.server.cameras.mark_live(device.clone(), dir);
        tracing::info!(device_id = %device, "camera streaming");
        Response::new(200, "OK").header(format!("Session: {}", self.session))
    }

    /// Makes this connection the device's publisher, shutting the previous one.
    fn take_over(&mut self, device: &DeviceId) -> std::io::Result<()> {
        let mine = self.writer.try_clone()?;
        self.generation = self.server.next_generation.fetch_add(1, Ordering::SeqCst);
        let previous = self
            .server
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(device.clone(), (self.generation, mine));
        if let Some((_, old)) = previous {
            tracing::info!(device_id = %device, "a new publisher takes over the camera's stream");
            let _ = old.shutdown(std::net::Shutdown::Both);
        }
        Ok(())
    }

    fn is_current(&self) -> bool {
        let Some(device) = &self.device else {
            return false;
        };
        self.server
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(device)
            .is_some_and(|(g, _)| *g == self.generation)
    }

    fn on_rtp(&mut self, data: &[u8]) -> std::io::Result<()> {
        let (Some(depacketizer), Some(hls)) = (&mut self.depacketizer, &mut self.hls) else {
            return Ok(());
        };
        let units = match depacketizer.push(data) {
            Ok(units) => units,
            Err(e) => {
                tracing::debug!(error = %e, "ignoring a bad RTP packet");
                return Ok(());
            }
        };
        for unit in units {
            let frame = Frame {
                data: &unit.data,
                pts: unit.timestamp,
                keyframe: unit.keyframe,
            };
            if let Err(e) = hls.write(&frame) {
                tracing::warn!(error = %e, "cannot write a frame to HLS");
            }
        }
        if self.checked_at.elapsed() >= RECHECK {
            self.checked_at = Instant::now();
            let token = self.token.clone().unwrap_or_default();
            if self.token_device(&token) != self.device {
                tracing::warn!(device_id = ?self.device, "device revoked: cutting its stream");
                return Err(std::io::Error::other("device revoked"));
            }
        }
        Ok(())
    }

    /// The publisher left (TEARDOWN, closed, timed out or cut): the camera is gone, its files too,
    /// unless another connection took it over.
    fn close(&mut self) {
        let Some(hls) = self.hls.take() else {
            return;
        };
        let device = self.device.clone().expect("recording implies a device");
        if self.is_current() {
            self.server
                .active
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&device);
            self.server.cameras.mark_gone(&device);
            hls.finish();
            tracing::info!(device_id = %device, "camera stopped streaming");
        } else {
            drop(hls);
        }
    }
}
