//! RTSP messages for the embedded server: reading a request, writing an answer, and the two
//! things taken from a request (the device in its path, the Basic credentials). Pure but for the
//! reader it is given.

use std::io::BufRead;

use base64::Engine;
use protocol::DeviceId;

/// Largest RTSP request head or body.
const MAX_MESSAGE: usize = 64 * 1024;

/// One RTSP request.
#[derive(Debug)]
pub(super) struct Request {
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

/// A response: status, reason, extra header lines.
pub(super) struct Response {
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

/// Reads one request (head and body) from `reader`.
pub(super) fn read_request(reader: &mut impl BufRead) -> std::io::Result<Request> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad("connection closed inside a request"));
        }
        total += line.len();
        if total > MAX_MESSAGE {
            return Err(bad("RTSP request head too large"));
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(line);
    }
    let mut parts = lines[0].split_whitespace();
    let (Some(method), Some(url)) = (parts.next(), parts.next()) else {
        return Err(bad("malformed RTSP request line"));
    };
    let headers: Vec<(String, String)> = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut request = Request {
        method: method.to_owned(),
        url: url.to_owned(),
        headers,
        body: Vec::new(),
    };
    let length: usize = request
        .header("Content-Length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if length > MAX_MESSAGE {
        return Err(bad("RTSP body too large"));
    }
    request.body = vec![0u8; length];
    reader.read_exact(&mut request.body)?;
    Ok(request)
}

/// The device in `rtsp://host[:port]/live/{device}[/streamid=N]`.
pub(super) fn device_of_url(url: &str) -> Option<DeviceId> {
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
pub(super) fn basic_credentials(header: &str) -> Option<(String, String)> {
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
mod tests {
    use super::*;

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
}
