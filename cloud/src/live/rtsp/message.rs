//! RTSP messages for the embedded server: the bounded reader (requests and interleaved frames,
//! parsed by `rtsp-types`), writing an answer, and the two things taken from a request (the device
//! in its path, the Basic credentials). Pure but for the wire it is given.
//!
//! Memory contract: a connection never holds more than [`MAX_HEAD`] + [`MAX_BODY`] received bytes.
//! A head that passes [`MAX_HEAD`] without its blank line, or a `Content-Length` above
//! [`MAX_BODY`], is refused as soon as it is seen, never read to its end. CPU contract: the head's
//! end is searched for only in the bytes that arrived since the last read, and a message is parsed
//! once its head has arrived, then again only when all of the body it announced is there.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use protocol::DeviceId;

/// Largest RTSP request head (request line and headers, up to the blank line).
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest RTSP request body (an ANNOUNCE's SDP is well under 1 KiB).
pub const MAX_BODY: usize = 64 * 1024;
/// Most bytes asked of the wire in one read.
const READ_CHUNK: usize = 16 * 1024;

/// One RTSP request.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a client sent: a request, or an interleaved frame (`$`, channel, 16-bit length, data).
#[derive(Debug)]
pub enum Incoming {
    Request(Request),
    Interleaved { channel: u8, data: Vec<u8> },
}

/// Why no message came; each ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("connection closed")]
    Closed,
    #[error("connection closed {0} bytes into a message")]
    Truncated(usize),
    #[error("RTSP request head passed {MAX_HEAD} bytes without its end")]
    HeadTooLarge,
    #[error("RTSP request body of {0} bytes is above the {MAX_BODY}-byte limit")]
    BodyTooLarge(usize),
    #[error("malformed RTSP message (not an RTSP/1.0 or 2.0 request or interleaved frame)")]
    Malformed,
    #[error("not authenticated before the connection's deadline")]
    Deadline,
    #[error("nothing received for {0:?}")]
    Idle(Duration),
    #[error("reading the connection: {0}")]
    Io(#[from] std::io::Error),
}

/// A byte source whose reads can be given a timeout (a socket; slices in tests and fuzzing).
pub trait Wire: Read {
    fn set_read_timeout(&mut self, timeout: Duration) -> std::io::Result<()>;
}

impl Wire for TcpStream {
    fn set_read_timeout(&mut self, timeout: Duration) -> std::io::Result<()> {
        TcpStream::set_read_timeout(self, Some(timeout))
    }
}

/// Any reader, with no timeouts (tests, fuzzing).
pub struct Untimed<R>(pub R);

impl<R: Read> Read for Untimed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Wire for Untimed<R> {
    fn set_read_timeout(&mut self, _: Duration) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads messages off a wire into a buffer that never passes [`MAX_HEAD`] + [`MAX_BODY`] bytes.
pub struct MessageReader<W> {
    wire: W,
    /// Received and not yet taken.
    buf: Vec<u8>,
    /// How far `buf` was searched for the head's end.
    scanned: usize,
    /// Where the head ends in `buf`, once found.
    head_end: Option<usize>,
    /// The buffer length below which parsing again cannot succeed.
    want: usize,
    idle: Duration,
    deadline: Option<Instant>,
}

impl<W: Wire> MessageReader<W> {
    /// Every read waits at most `idle`, and none goes past `deadline` while one is set.
    pub fn new(wire: W, idle: Duration, deadline: Option<Instant>) -> Self {
        Self {
            wire,
            buf: Vec::with_capacity(READ_CHUNK),
            scanned: 0,
            head_end: None,
            want: 1,
            idle,
            deadline,
        }
    }

    /// Sets or lifts (authenticated) the absolute deadline.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// Bytes held now (received, not yet taken); never above [`MAX_HEAD`] + [`MAX_BODY`].
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next message.
    pub fn next_message(&mut self) -> Result<Incoming, ReadError> {
        loop {
            if let Some(message) = self.try_take()? {
                return Ok(message);
            }
            self.fill()?;
        }
    }

    /// A whole message from the buffer, if there is one; an error as soon as a bound is passed.
    fn try_take(&mut self) -> Result<Option<Incoming>, ReadError> {
        // Blank lines between messages are allowed (keep-alives).
        let blank = self
            .buf
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        if blank > 0 {
            self.consume(blank);
        }
        let Some(&first) = self.buf.first() else {
            return Ok(None);
        };
        if self.buf.len() < self.want {
            return Ok(None);
        }
        let head_end = if first == b'$' {
            0
        } else {
            match self.find_head_end() {
                Some(end) if end > MAX_HEAD => return Err(ReadError::HeadTooLarge),
                Some(end) => end,
                None if self.buf.len() >= MAX_HEAD => return Err(ReadError::HeadTooLarge),
                None => return Ok(None),
            }
        };
        match rtsp_types::Message::<Vec<u8>>::parse(&self.buf) {
            Ok((message, consumed)) => {
                self.consume(consumed);
                match message {
                    rtsp_types::Message::Request(request) => {
                        Ok(Some(Incoming::Request(Request::from_parsed(request))))
                    }
                    rtsp_types::Message::Data(data) => Ok(Some(Incoming::Interleaved {
                        channel: data.channel_id(),
                        data: data.into_body(),
                    })),
                    // This server sends no requests, so it expects no responses.
                    rtsp_types::Message::Response(_) => Err(ReadError::Malformed),
                }
            }
            Err(rtsp_types::ParseError::Incomplete(needed)) => {
                let total = self.buf.len() + needed.map_or(1, |n| n.get());
                if first != b'$' && total - head_end > MAX_BODY {
                    return Err(ReadError::BodyTooLarge(total - head_end));
                }
                self.want = total;
                Ok(None)
            }
            Err(rtsp_types::ParseError::Error) => Err(ReadError::Malformed),
        }
    }

    /// Where the blank line ending the head is (just past it), searching only new bytes.
    fn find_head_end(&mut self) -> Option<usize> {
        if self.head_end.is_none() {
            let from = self.scanned.saturating_sub(3);
            self.head_end = self.buf[from..]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| from + i + 4);
            self.scanned = self.buf.len();
        }
        self.head_end
    }

    fn consume(&mut self, n: usize) {
        self.buf.drain(..n);
        self.scanned = 0;
        self.head_end = None;
        self.want = 1;
    }

    /// One read from the wire, bounded by the idle time, the deadline and the buffer's room.
    fn fill(&mut self) -> Result<(), ReadError> {
        let timeout = match self.deadline {
            None => self.idle,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ReadError::Deadline);
                }
                left.min(self.idle)
            }
        };
        self.wire.set_read_timeout(timeout)?;
        let start = self.buf.len();
        let room = (MAX_HEAD + MAX_BODY).saturating_sub(start).min(READ_CHUNK);
        if room == 0 {
            return Err(ReadError::HeadTooLarge);
        }
        self.buf.resize(start + room, 0);
        let read = self.wire.read(&mut self.buf[start..]);
        self.buf.truncate(start + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) if start == 0 => Err(ReadError::Closed),
            Ok(0) => Err(ReadError::Truncated(start)),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if self.deadline.is_some_and(|d| Instant::now() >= d) {
                    Err(ReadError::Deadline)
                } else {
                    Err(ReadError::Idle(self.idle))
                }
            }
            Err(e) => Err(ReadError::Io(e)),
        }
    }
}

impl Request {
    fn from_parsed(request: rtsp_types::Request<Vec<u8>>) -> Request {
        let method = <&str>::from(request.method()).to_owned();
        let url = request
            .request_uri()
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default();
        let headers = request
            .headers()
            .map(|(k, v)| (k.as_str().to_owned(), v.as_str().to_owned()))
            .collect();
        Request {
            method,
            url,
            headers,
            body: request.into_body(),
        }
    }
}

/// A response: status, reason, extra header lines.
pub struct Response {
    pub status: u16,
    pub reason: &'static str,
    pub headers: Vec<String>,
}

impl Response {
    pub fn new(status: u16, reason: &'static str) -> Self {
        Self {
            status,
            reason,
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, line: impl Into<String>) -> Self {
        self.headers.push(line.into());
        self
    }

    /// The answer's bytes, with the request's `CSeq`.
    pub fn to_bytes(&self, cseq: &str) -> Vec<u8> {
        let mut text = format!(
            "RTSP/1.0 {} {}\r\nCSeq: {cseq}\r\nServer: vigie-cloud\r\n",
            self.status, self.reason
        );
        for line in &self.headers {
            text.push_str(line);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        text.into_bytes()
    }
}

/// The device in `rtsp://host[:port]/live/{device}[/streamid=N]`.
pub fn device_of_url(url: &str) -> Option<DeviceId> {
    let rest = url.strip_prefix("rtsp://")?;
    let path = &rest[rest.find('/')?..];
    let mut parts = path.trim_start_matches('/').split('/');
    if parts.next()? != "live" {
        return None;
    }
    let device = parts.next()?;
    match parts.next() {
        None => {}
        Some(control) if control.starts_with("streamid=") || control.starts_with("trackID=") => {}
        Some(_) => return None,
    }
    DeviceId::new(device).ok()
}

/// `Basic base64(user:password)` → (user, password).
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests;
