//! The bounded reader's contract: whole messages however the bytes are cut, every bound refused as
//! soon as it is passed (having read at most one chunk past it), and the deadline.

use std::io::Read;
use std::time::{Duration, Instant};

use super::*;

/// Serves `data` at most `step` bytes per read.
struct Dripping<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Dripping<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// An endless stream of one byte; counts what it served.
struct Endless {
    byte: u8,
    served: usize,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        buf.fill(self.byte);
        self.served += buf.len();
        Ok(buf.len())
    }
}

/// Every read times out.
struct Silent;

impl Read for Silent {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::WouldBlock.into())
    }
}

const IDLE: Duration = Duration::from_secs(10);

fn reader<R: Read>(r: R) -> MessageReader<Untimed<R>> {
    MessageReader::new(Untimed(r), IDLE, None)
}

const ANNOUNCE: &[u8] = b"ANNOUNCE rtsp://127.0.0.1:8554/live/pi-1 RTSP/1.0\r\nCSeq: 2\r\n\
Content-Type: application/sdp\r\nContent-Length: 10\r\n\r\nv=0\r\nm=vid";

#[test]
fn a_request_cut_into_one_byte_reads_is_read_whole_with_its_body() {
    let mut r = reader(Dripping {
        data: ANNOUNCE,
        step: 1,
    });
    let Incoming::Request(request) = r.next_message().unwrap() else {
        panic!("a request");
    };
    assert_eq!(request.method, "ANNOUNCE");
    assert_eq!(request.url, "rtsp://127.0.0.1:8554/live/pi-1");
    assert_eq!(request.header("cseq"), Some("2"));
    assert_eq!(request.body, b"v=0\r\nm=vid");
    assert!(matches!(r.next_message(), Err(ReadError::Closed)));
}

#[test]
fn pipelined_requests_and_interleaved_frames_come_out_in_order() {
    let mut wire = b"\r\nOPTIONS rtsp://h/live/pi-1 RTSP/1.0\r\nCSeq: 1\r\n\r\n".to_vec();
    wire.extend_from_slice(&[b'$', 0, 0, 3, 0x80, 0x60, 0x00]);
    wire.extend_from_slice(b"TEARDOWN rtsp://h/live/pi-1 RTSP/1.0\r\nCSeq: 3\r\n\r\n");
    let mut r = reader(Dripping {
        data: &wire,
        step: 7,
    });
    assert!(matches!(r.next_message(), Ok(Incoming::Request(q)) if q.method == "OPTIONS"));
    assert!(matches!(
        r.next_message(),
        Ok(Incoming::Interleaved { channel: 0, data }) if data == [0x80, 0x60, 0x00]
    ));
    assert!(matches!(r.next_message(), Ok(Incoming::Request(q)) if q.method == "TEARDOWN"));
}

#[test]
fn an_endless_request_line_is_refused_after_at_most_one_chunk_past_the_head_limit() {
    let mut r = reader(Endless {
        byte: b'A',
        served: 0,
    });
    assert!(matches!(r.next_message(), Err(ReadError::HeadTooLarge)));
    assert!(r.buffered() <= MAX_HEAD + READ_CHUNK);
    let Untimed(endless) = r.wire;
    assert!(
        endless.served <= MAX_HEAD + READ_CHUNK,
        "{}",
        endless.served
    );
}

#[test]
fn endless_headers_are_refused_like_an_endless_line() {
    let mut wire = b"OPTIONS rtsp://h/live/pi-1 RTSP/1.0\r\n".to_vec();
    while wire.len() < 4 * MAX_HEAD {
        wire.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let mut r = reader(Dripping {
        data: &wire,
        step: 100,
    });
    assert!(matches!(r.next_message(), Err(ReadError::HeadTooLarge)));
}

#[test]
fn a_body_above_the_limit_is_refused_from_its_content_length_before_it_is_read() {
    let head = format!(
        "ANNOUNCE rtsp://h/live/pi-1 RTSP/1.0\r\nCSeq: 2\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY + 1
    );
    let mut r = reader(head.as_bytes().chain(Endless {
        byte: b'x',
        served: 0,
    }));
    assert!(matches!(
        r.next_message(),
        Err(ReadError::BodyTooLarge(n)) if n == MAX_BODY + 1
    ));
    assert!(r.buffered() <= READ_CHUNK);
}

#[test]
fn a_body_at_the_limit_is_read() {
    let head =
        format!("ANNOUNCE rtsp://h/live/pi-1 RTSP/1.0\r\nContent-Length: {MAX_BODY}\r\n\r\n");
    let mut wire = head.into_bytes();
    wire.resize(wire.len() + MAX_BODY, b'v');
    let mut r = reader(Dripping {
        data: &wire,
        step: 1000,
    });
    assert!(matches!(r.next_message(), Ok(Incoming::Request(q)) if q.body.len() == MAX_BODY));
}

#[test]
fn garbage_a_response_or_a_bad_content_length_is_malformed_and_a_cut_is_truncated() {
    for wire in [
        &b"\x16\x03\x01 hello\r\n\r\n"[..],
        b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n",
        b"ANNOUNCE rtsp://h/live/pi-1 RTSP/1.0\r\nContent-Length: lots\r\n\r\n",
        b"OPTIONS rtsp://h/live/pi-1 HTTP/1.1\r\n\r\n",
    ] {
        let mut r = reader(wire);
        assert!(
            matches!(r.next_message(), Err(ReadError::Malformed)),
            "{}",
            String::from_utf8_lossy(wire)
        );
    }
    let mut r = reader(&ANNOUNCE[..20]);
    assert!(matches!(r.next_message(), Err(ReadError::Truncated(20))));
}

#[test]
fn a_passed_deadline_ends_the_read_and_silence_before_it_is_idle() {
    let mut r = MessageReader::new(Untimed(Silent), IDLE, Some(Instant::now()));
    assert!(matches!(r.next_message(), Err(ReadError::Deadline)));
    let later = Instant::now() + Duration::from_secs(60);
    let mut r = MessageReader::new(Untimed(Silent), IDLE, Some(later));
    assert!(matches!(r.next_message(), Err(ReadError::Idle(_))));
    r.set_deadline(None);
    assert!(matches!(r.next_message(), Err(ReadError::Idle(_))));
}

#[test]
fn the_device_comes_from_the_live_path_only() {
    let d = |u: &str| device_of_url(u).map(|d| d.as_str().to_owned());
    assert_eq!(d("rtsp://h:8554/live/pi-1").as_deref(), Some("pi-1"));
    assert_eq!(d("rtsp://h/live/pi-1/streamid=0").as_deref(), Some("pi-1"));
    assert_eq!(d("rtsp://h/other/pi-1"), None);
    assert_eq!(d("rtsp://h/live/pi-1/../x"), None);
    assert_eq!(d("rtsp://h/live/Pi_1"), None);
}

#[test]
fn basic_credentials_are_decoded() {
    assert_eq!(
        basic_credentials("Basic cGktMTp2Z2RfYWJj"),
        Some(("pi-1".into(), "vgd_abc".into()))
    );
    assert_eq!(basic_credentials("Digest x"), None);
}
