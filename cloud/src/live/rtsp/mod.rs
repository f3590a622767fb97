//! The embedded RTSP server (single-machine defaults): accepts publishers only. A Pi pushes its
//! camera to `rtsp://HOST:PORT/live/{device}` with OPTIONS, ANNOUNCE (SDP), SETUP (TCP interleaved
//! transport only), RECORD and TEARDOWN; PLAY, DESCRIBE and UDP are refused with a reason (viewers
//! watch over HLS at `/api/cameras/{id}/stream`).
//!
//! Authentication: Basic, with the device id as user and its API token as password, checked like
//! the API checks device tokens (by hash, in the store): an unknown or revoked device gets `401`,
//! and a stream whose device is revoked while it runs is cut within [`RECHECK`].
//!
//! Before it authenticates a connection is a stranger, and everything it can make the server hold
//! is bounded (issue 12):
//! - memory: a request is read into a buffer of at most [`message::MAX_HEAD`] (head) +
//!   [`message::MAX_BODY`] (body) bytes; past either, `400`/`413` and the connection is closed;
//! - time: [`AUTH_DEADLINE`] from accept to a successful ANNOUNCE, however slowly the bytes drip;
//! - places: unauthenticated connections have their own pool ([`admission`]), apart from the
//!   publishers', so a flood of sockets that never log in cannot keep a Pi out;
//! - guesses: wrong credentials from one address are rate-limited ([`throttle`]); the failures
//!   are counted (in total and per known device) in `/metrics`;
//! - interleaved data before a successful RECORD closes the connection.
//!
//! One thread per connection (at most [`MAX_CONNECTIONS`]); a publisher silent for [`IDLE`] is
//! dropped. A new publisher for a device that is already streaming takes over (the old connection
//! is shut): a Pi that reconnects after a cut is not kept waiting for its own stale session. An
//! `accept` failure (out of file descriptors) backs off (10 ms doubling to 1 s, [`ACCEPT_BACKOFF`])
//! rather than spin.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use protocol::DeviceId;

use admission::{AddressKey, Admission, Limits, Promotion};
use connection::Connection;
pub use metrics::RtspMetrics;
use throttle::FailedLogins;

use super::{LiveCameras, LiveError, LiveSettings};
use crate::store::Store;

pub mod admission;
mod connection;
pub mod message;
mod metrics;
pub mod throttle;

/// Most simultaneous RTSP connection threads (both pools, and those being closed).
pub const MAX_CONNECTIONS: usize = MAX_UNAUTHENTICATED + MAX_PUBLISHERS + 64;
/// Most unauthenticated connections at once.
pub const MAX_UNAUTHENTICATED: usize = 64;
/// Most unauthenticated connections from one address (IPv4, or IPv6 /64).
pub const MAX_UNAUTHENTICATED_PER_ADDRESS: usize = 8;
/// Most authenticated publishers at once.
pub const MAX_PUBLISHERS: usize = 256;
/// From accept to a successful ANNOUNCE; past it the connection is closed, even mid-request.
pub const AUTH_DEADLINE: Duration = Duration::from_secs(15);
/// Wrong logins an address may make before it is refused at once...
pub const LOGIN_FAILURES_ALLOWED: u32 = 10;
/// ...and how often one more is allowed after that.
pub const LOGIN_FAILURE_REFILL: Duration = Duration::from_secs(6);
/// A publisher that sends nothing for this long is gone.
pub const IDLE: Duration = Duration::from_secs(10);
/// How often a running stream's device token is checked again (revocation).
pub const RECHECK: Duration = Duration::from_secs(30);
/// The accept loop's back-off after a failure: first and longest wait.
pub const ACCEPT_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(1));
/// How long the list of known devices (for per-device counts) is trusted.
const KNOWN_DEVICES_TTL: Duration = Duration::from_secs(30);

struct Server {
    settings: LiveSettings,
    store: Store,
    cameras: LiveCameras,
    metrics: Arc<RtspMetrics>,
    connections: AtomicUsize,
    next_generation: AtomicU64,
    /// The current publisher of each device: its generation and socket (to shut on takeover).
    active: Mutex<HashMap<DeviceId, (u64, TcpStream)>>,
    /// The two pools; each unauthenticated connection's socket, to shut when pushed out.
    admission: Mutex<Admission<TcpStream>>,
    failed_logins: Mutex<FailedLogins>,
    /// The devices the store knows, and when that was read.
    known_devices: Mutex<Option<(Instant, HashSet<DeviceId>)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Server {
    fn update_gauges(&self, admission: &Admission<TcpStream>) {
        RtspMetrics::set(
            &self.metrics.unauthenticated_open,
            admission.unauthenticated() as u64,
        );
        RtspMetrics::set(&self.metrics.publishers_open, admission.publishers() as u64);
    }

    /// Connection `id` authenticated.
    fn promote(&self, id: u64) -> Promotion {
        let mut admission = lock(&self.admission);
        let decision = admission.promote(id);
        self.update_gauges(&admission);
        decision
    }

    fn release(&self, id: u64, promoted: bool) {
        let mut admission = lock(&self.admission);
        admission.release(id, promoted);
        self.update_gauges(&admission);
    }

    /// Whether the store knows `device` (read again at most every [`KNOWN_DEVICES_TTL`]).
    fn is_known_device(&self, device: &DeviceId) -> bool {
        let mut known = lock(&self.known_devices);
        let stale = known
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= KNOWN_DEVICES_TTL);
        if stale {
            match self.store.list_devices() {
                Ok(devices) => {
                    let ids = devices.into_iter().map(|d| d.id).collect();
                    *known = Some((Instant::now(), ids));
                }
                Err(e) => tracing::warn!(error = %e, "cannot list the devices for RTSP counters"),
            }
        }
        known.as_ref().is_some_and(|(_, ids)| ids.contains(device))
    }
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
        metrics: cameras.rtsp_metrics(),
        cameras,
        connections: AtomicUsize::new(0),
        next_generation: AtomicU64::new(1),
        active: Mutex::new(HashMap::new()),
        admission: Mutex::new(Admission::new(Limits {
            unauthenticated: MAX_UNAUTHENTICATED,
            per_address: MAX_UNAUTHENTICATED_PER_ADDRESS,
            publishers: MAX_PUBLISHERS,
        })),
        failed_logins: Mutex::new(FailedLogins::new(
            LOGIN_FAILURES_ALLOWED,
            LOGIN_FAILURE_REFILL,
            4096,
        )),
        known_devices: Mutex::new(None),
    });
    std::thread::Builder::new()
        .name("rtsp-accept".into())
        .spawn(move || accept_loop(&server, &listener))
        .map_err(|source| LiveError::Io {
            what: "starting the RTSP server thread",
            path: "rtsp".into(),
            source,
        })?;
    Ok(())
}

/// Accepts forever; a failure (EMFILE, ENFILE, ENOBUFS...) waits, doubling up to the longest wait,
/// so a process out of file descriptors does not spin on `accept`.
fn accept_loop(server: &Arc<Server>, listener: &TcpListener) {
    let mut backoff = ACCEPT_BACKOFF.0;
    let mut next_id: u64 = 0;
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                backoff = ACCEPT_BACKOFF.0;
                next_id += 1;
                admit(server, stream, peer, next_id);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                RtspMetrics::add(&server.metrics.accept_errors, 1);
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                    "cannot accept an RTSP connection; backing off");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
            }
        }
    }
}

/// Puts a new connection in the unauthenticated pool (shutting those it pushes out) and starts
/// its thread.
fn admit(server: &Arc<Server>, stream: TcpStream, peer: SocketAddr, id: u64) {
    RtspMetrics::add(&server.metrics.connections_accepted, 1);
    if server.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
        server.connections.fetch_sub(1, Ordering::SeqCst);
        RtspMetrics::add(&server.metrics.connections_refused, 1);
        tracing::warn!(%peer, "too many RTSP connections; refusing one");
        return;
    }
    let handle = match stream.try_clone() {
        Ok(handle) => handle,
        Err(e) => {
            server.connections.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(%peer, error = %e, "cannot keep an RTSP connection");
            return;
        }
    };
    let pushed_out = {
        let mut admission = lock(&server.admission);
        let out = admission.admit(id, AddressKey::from(peer.ip()), handle);
        server.update_gauges(&admission);
        out
    };
    if !pushed_out.is_empty() {
        RtspMetrics::add(
            &server.metrics.unauthenticated_pushed_out,
            pushed_out.len() as u64,
        );
        tracing::debug!(%peer, pushed_out = pushed_out.len(),
            "unauthenticated RTSP connections closed to make room");
    }
    for old in pushed_out {
        let _ = old.shutdown(std::net::Shutdown::Both);
    }
    let accepted = Instant::now();
    let spawned = std::thread::Builder::new().name("rtsp-conn".into()).spawn({
        let server = server.clone();
        move || serve(&server, stream, peer, id, accepted)
    });
    if spawned.is_err() {
        server.release(id, false);
        server.connections.fetch_sub(1, Ordering::SeqCst);
        tracing::error!(%peer, "cannot start an RTSP connection thread");
    }
}

/// Serves one connection to its end, then releases its place.
fn serve(server: &Server, stream: TcpStream, peer: SocketAddr, id: u64, accepted: Instant) {
    let mut promoted = false;
    match Connection::new(server, stream, peer, id, accepted + AUTH_DEADLINE) {
        Ok(mut conn) => {
            if let Err(e) = conn.run() {
                tracing::debug!(%peer, error = %e, "RTSP connection ended");
            }
            conn.close();
            promoted = conn.promoted();
        }
        Err(e) => tracing::warn!(%peer, error = %e, "cannot serve an RTSP connection"),
    }
    server.release(id, promoted);
    server.connections.fetch_sub(1, Ordering::SeqCst);
}

/// Doc-hidden entry for the fuzzers and the corpus test: reads `data` as one connection's bytes,
/// cut into reads of the sizes its first byte picks, until the reader stops; the messages read.
/// Panics if a bound of the reader is broken (more buffered than its limits, a body above them).
#[doc(hidden)]
pub fn fuzz_requests(data: &[u8]) -> usize {
    use message::{Incoming, MessageReader, ReadError, Untimed, MAX_BODY, MAX_HEAD};
    struct Cut<'a> {
        data: &'a [u8],
        step: usize,
    }
    impl std::io::Read for Cut<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }
    let (step, data) = match data.split_first() {
        Some((&b, rest)) => (usize::from(b % 64) * 97 + 1, rest),
        None => (1, data),
    };
    let mut reader = MessageReader::new(Untimed(Cut { data, step }), IDLE, None);
    let mut messages = 0;
    loop {
        let next = reader.next_message();
        assert!(
            reader.buffered() <= MAX_HEAD + MAX_BODY,
            "reader over its bound"
        );
        match next {
            Ok(Incoming::Request(request)) => {
                assert!(request.body.len() <= MAX_BODY, "body over its bound");
                let _ = message::device_of_url(&request.url);
                if let Some(auth) = request.header("Authorization") {
                    let _ = message::basic_credentials(auth);
                }
                messages += 1;
            }
            Ok(Incoming::Interleaved { data, .. }) => {
                assert!(data.len() <= usize::from(u16::MAX));
                messages += 1;
            }
            Err(ReadError::Closed | ReadError::Truncated(_)) => return messages,
            Err(_) => return messages,
        }
    }
}
