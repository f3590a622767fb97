//! One RTSP connection, from accept to close: reads messages with the bounded reader (under the
//! authentication deadline until a successful ANNOUNCE), answers them, authenticates the publisher
//! (rate-limited per address, refusals counted), and turns its interleaved RTP into HLS once it has
//! RECORDed.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::Instant;

use protocol::DeviceId;

use super::admission::{AddressKey, Promotion};
use super::message::{
    basic_credentials, device_of_url, Incoming, MessageReader, ReadError, Request, Response,
    MAX_BODY, MAX_HEAD,
};
use super::{lock, RtspMetrics, Server, IDLE, RECHECK};
use crate::auth::{device_token_hash, is_live_token};
use crate::live::camera_dir;
use crate::live::hls::{h264_parameters, Frame, HlsWriter};
use crate::live::rtp::{parse_sprop, Depacketizer};

const RTP_CLOCK: i32 = 90_000;
// The refusals' reasons name the limits.
const _: () = assert!(MAX_HEAD == 8192 && MAX_BODY == 65536);

/// An answer, and whether the connection closes after it.
type Answer = (Response, bool);

/// The publisher's state on one connection.
pub(super) struct Connection<'a> {
    server: &'a Server,
    reader: MessageReader<TcpStream>,
    writer: TcpStream,
    peer: SocketAddr,
    id: u64,
    /// Authenticated (ANNOUNCE succeeded): in the publishers' pool, no deadline.
    promoted: bool,
    device: Option<DeviceId>,
    token: Option<String>,
    checked_at: Instant,
    session: String,
    depacketizer: Option<Depacketizer>,
    hls: Option<HlsWriter>,
    generation: u64,
}

impl<'a> Connection<'a> {
    pub fn new(
        server: &'a Server,
        stream: TcpStream,
        peer: SocketAddr,
        id: u64,
        deadline: Instant,
    ) -> std::io::Result<Self> {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(IDLE))?;
        let writer = stream.try_clone()?;
        Ok(Self {
            server,
            reader: MessageReader::new(stream, IDLE, Some(deadline)),
            writer,
            peer,
            id,
            promoted: false,
            device: None,
            token: None,
            checked_at: Instant::now(),
            session: format!("{:016x}", rand::random::<u64>()),
            depacketizer: None,
            hls: None,
            generation: 0,
        })
    }

    pub fn promoted(&self) -> bool {
        self.promoted
    }

    pub fn run(&mut self) -> Result<(), ReadError> {
        let metrics = &self.server.metrics;
        loop {
            let request = match self.reader.next_message() {
                Ok(Incoming::Request(request)) => request,
                Ok(Incoming::Interleaved { channel, data }) => {
                    if self.hls.is_none() {
                        RtspMetrics::add(&metrics.early_interleaved, 1);
                        tracing::warn!(peer = %self.peer, device_id = ?self.device,
                            "interleaved data before RECORD: closing the RTSP connection");
                        return Ok(());
                    }
                    if channel == 0 {
                        self.on_rtp(&data)?;
                    }
                    continue;
                }
                Err(ReadError::Closed) => return Ok(()),
                Err(e) => return Err(self.refuse_unreadable(e)),
            };
            let cseq = request.header("CSeq").unwrap_or("0").to_owned();
            let (response, close) = self.handle(&request);
            self.writer.write_all(&response.to_bytes(&cseq))?;
            if close {
                return Ok(());
            }
        }
    }

    /// Counts why a message could not be read, and answers it where an answer helps.
    fn refuse_unreadable(&mut self, e: ReadError) -> ReadError {
        let metrics = &self.server.metrics;
        let answer = match &e {
            ReadError::HeadTooLarge => {
                RtspMetrics::add(&metrics.oversized_requests, 1);
                Some(Response::new(
                    400,
                    "Bad Request - request head above 8192 bytes",
                ))
            }
            ReadError::BodyTooLarge(_) => {
                RtspMetrics::add(&metrics.oversized_requests, 1);
                Some(Response::new(
                    413,
                    "Request Entity Too Large - body above 65536 bytes",
                ))
            }
            ReadError::Malformed => {
                RtspMetrics::add(&metrics.malformed_requests, 1);
                Some(Response::new(400, "Bad Request - not an RTSP request"))
            }
            ReadError::Deadline => {
                RtspMetrics::add(&metrics.deadline_closed, 1);
                tracing::info!(peer = %self.peer, "RTSP connection closed at its authentication deadline");
                None
            }
            _ => None,
        };
        if let Some(response) = answer {
            tracing::info!(peer = %self.peer, error = %e, "refusing an RTSP request");
            let _ = self.writer.write_all(&response.to_bytes("0"));
        }
        let _ = self.writer.shutdown(std::net::Shutdown::Both);
        e
    }

    /// Answers one request; true when the connection should close after the answer.
    fn handle(&mut self, request: &Request) -> Answer {
        const PUBLIC: &str = "Public: OPTIONS, ANNOUNCE, SETUP, RECORD, TEARDOWN";
        match request.method.as_str() {
            "OPTIONS" => (Response::new(200, "OK").header(PUBLIC), false),
            "ANNOUNCE" => self.announce(request),
            "SETUP" => self.setup(request),
            "RECORD" => self.record(request),
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

    /// Checks the path and the Basic credentials; the device it names. Wrong credentials take from
    /// the address's failure bucket; with it empty, logins are refused at once (no store lookup)
    /// and the connection closed.
    fn authenticate(&self, request: &Request) -> Result<(DeviceId, String), Answer> {
        let unauthorized =
            || Response::new(401, "Unauthorized").header("WWW-Authenticate: Basic realm=\"vigie\"");
        let Some(device) = device_of_url(&request.url) else {
            return Err((
                Response::new(404, "Not Found - publish to rtsp://HOST:PORT/live/{device}"),
                false,
            ));
        };
        let Some((user, token)) = request.header("Authorization").and_then(basic_credentials)
        else {
            return Err((unauthorized(), false));
        };
        let address = AddressKey::from(self.peer.ip());
        if let Err(wait) = lock(&self.server.failed_logins).check(address, Instant::now()) {
            RtspMetrics::add(&self.server.metrics.logins_throttled, 1);
            tracing::warn!(peer = %self.peer, device_id = %device,
                "RTSP login refused at once: too many failed logins from this address");
            let retry = wait.as_secs().max(1);
            return Err((
                Response::new(
                    503,
                    "Service Unavailable - too many failed logins from this address",
                )
                .header(format!("Retry-After: {retry}")),
                true,
            ));
        }
        if user != device.as_str() {
            self.login_failed(&device, "the user is not the path's device");
            return Err((
                Response::new(
                    403,
                    "Forbidden - a device may only publish to /live/{its own id}",
                ),
                false,
            ));
        }
        if self.token_device(&token).as_ref() != Some(&device) {
            self.login_failed(&device, "unknown or revoked live-push token");
            return Err((unauthorized(), false));
        }
        Ok((device, token))
    }

    /// Counts a refused login (per device when the store knows it) and takes from the bucket.
    fn login_failed(&self, device: &DeviceId, why: &'static str) {
        let server = self.server;
        lock(&server.failed_logins).failed(AddressKey::from(self.peer.ip()), Instant::now());
        RtspMetrics::add(&server.metrics.logins_refused, 1);
        if server.is_known_device(device) {
            server.metrics.refused_for(device);
        }
        tracing::warn!(peer = %self.peer, device_id = %device, reason = why, "RTSP publisher refused");
    }

    /// The device a live-push token belongs to. The device's API token is not one: the push
    /// carries its credential in clear, so it takes only the token made for it.
    fn token_device(&self, token: &str) -> Option<DeviceId> {
        if !is_live_token(token) {
            return None;
        }
        match self
            .server
            .store
            .device_for_live_token_hash(&device_token_hash(token))
        {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check an RTSP publisher's token");
                None
            }
        }
    }

    fn announce(&mut self, request: &Request) -> Answer {
        let (device, token) = match self.authenticate(request) {
            Ok(found) => found,
            Err(answer) => return answer,
        };
        if !self.promoted {
            match self.server.promote(self.id) {
                Promotion::Promoted => {
                    self.promoted = true;
                    self.reader.set_deadline(None);
                }
                Promotion::PublishersFull => {
                    RtspMetrics::add(&self.server.metrics.publishers_refused, 1);
                    tracing::warn!(device_id = %device, "RTSP publishers' pool full; refusing one");
                    return (
                        Response::new(503, "Service Unavailable - too many publishers"),
                        true,
                    );
                }
                Promotion::Evicted => {
                    return (Response::new(503, "Service Unavailable - try again"), true)
                }
            }
        }
        let sdp = String::from_utf8_lossy(&request.body);
        if !sdp.contains("H264/90000") {
            return (
                Response::new(415, "Unsupported Media Type - only H.264 video is taken"),
                false,
            );
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
        (Response::new(200, "OK"), false)
    }

    fn setup(&mut self, request: &Request) -> Answer {
        if let Err(answer) = self.authenticate(request) {
            return answer;
        }
        let transport = request.header("Transport").unwrap_or("");
        if !transport.contains("TCP") || transport.contains("multicast") {
            return (
                Response::new(
                    461,
                    "Unsupported Transport - use RTP/AVP/TCP interleaved (rtsp_transport=tcp)",
                ),
                false,
            );
        }
        (
            Response::new(200, "OK")
                .header("Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record")
                .header(format!("Session: {};timeout=60", self.session)),
            false,
        )
    }

    fn record(&mut self, request: &Request) -> Answer {
        let (device, _) = match self.authenticate(request) {
            Ok(found) => found,
            Err(answer) => return answer,
        };
        let internal = || (Response::new(500, "Internal Server Error"), false);
        let Some(depacketizer) = &self.depacketizer else {
            return (
                Response::new(455, "Method Not Valid in This State - ANNOUNCE first"),
                false,
            );
        };
        if self.device.as_ref() != Some(&device) {
            return (
                Response::new(
                    455,
                    "Method Not Valid in This State - RECORD the ANNOUNCEd path",
                ),
                false,
            );
        }
        let (sps, pps) = depacketizer.parameter_sets();
        let parameters = h264_parameters(sps, pps);
        if let Err(e) = self.take_over(&device) {
            tracing::error!(device_id = %device, error = %e, "cannot take the camera's stream");
            return internal();
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
                return internal();
            }
        }
        self.server.cameras.mark_live(device.clone(), dir);
        tracing::info!(device_id = %device, "camera streaming");
        (
            Response::new(200, "OK").header(format!("Session: {}", self.session)),
            false,
        )
    }

    /// Makes this connection the device's publisher, shutting the previous one.
    fn take_over(&mut self, device: &DeviceId) -> std::io::Result<()> {
        let mine = self.writer.try_clone()?;
        self.generation = self.server.next_generation.fetch_add(1, Ordering::SeqCst);
        let previous = lock(&self.server.active).insert(device.clone(), (self.generation, mine));
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
        lock(&self.server.active)
            .get(device)
            .is_some_and(|(g, _)| *g == self.generation)
    }

    fn on_rtp(&mut self, data: &[u8]) -> Result<(), ReadError> {
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
                return Err(ReadError::Io(std::io::Error::other("device revoked")));
            }
        }
        Ok(())
    }

    /// The publisher left (TEARDOWN, closed, timed out or cut): the camera is gone, its files too,
    /// unless another connection took it over.
    pub fn close(&mut self) {
        let Some(hls) = self.hls.take() else {
            return;
        };
        let Some(device) = self.device.clone() else {
            return;
        };
        if self.is_current() {
            lock(&self.server.active).remove(&device);
            // Files first: once the camera is no longer listed, none of its files is left.
            hls.finish();
            self.server.cameras.mark_gone(&device);
            tracing::info!(device_id = %device, "camera stopped streaming");
        } else {
            drop(hls);
        }
    }
}
