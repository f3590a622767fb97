//! `vigie-cloud probe URL`: one HTTP GET, for health checks where the image has no shell and no
//! curl (the container's own checks, the chart's `helm test` Pod). Plain `http://` only (probes run
//! inside the pod or the cluster); the answer's status decides: 2xx is healthy.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why a probe failed before any status came back.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "{0:?}: expected http://host[:port][/path] (probes speak plain HTTP inside the cluster)"
    )]
    BadUrl(String),
    #[error("{host}: {source}")]
    Connect {
        host: String,
        source: std::io::Error,
    },
    #[error("{host}: no HTTP status line in the answer ({reason})")]
    BadAnswer { host: String, reason: String },
}

/// `/healthz` of the API at `listen` (`VIGIE_LISTEN`; unset: the default 127.0.0.1:8080), with an
/// unspecified address (0.0.0.0, ::) probed on loopback.
pub fn own_healthz(listen: Option<&str>) -> String {
    let listen = listen.unwrap_or("127.0.0.1:8080");
    match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => {
            let loopback = if addr.is_ipv4() { "127.0.0.1" } else { "[::1]" };
            format!("http://{loopback}:{}/healthz", addr.port())
        }
        _ => format!("http://{listen}/healthz"),
    }
}

/// `http://host[:port][/path]` split into `(host, port, path)`.
fn split(url: &str) -> Result<(String, u16, String), ProbeError> {
    let bad = || ProbeError::BadUrl(url.to_owned());
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') || path.contains(char::is_whitespace) {
        return Err(bad());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            (host, port.parse().map_err(|_| bad())?)
        }
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port, path.to_owned()))
}

/// GETs `url` within `timeout` (connecting, and again for the answer); the answer's status code.
pub fn probe(url: &str, timeout: Duration) -> Result<u16, ProbeError> {
    let (host, port, path) = split(url)?;
    let named = format!("{host}:{port}");
    let connect = |source| ProbeError::Connect {
        host: named.clone(),
        source,
    };
    let address = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(connect)?
        .next()
        .ok_or_else(|| connect(std::io::Error::other("the name has no address")))?;
    let mut stream = TcpStream::connect_timeout(&address, timeout).map_err(connect)?;
    stream.set_read_timeout(Some(timeout)).map_err(connect)?;
    stream.set_write_timeout(Some(timeout)).map_err(connect)?;
    let host_header = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: vigie-cloud-probe\r\nConnection: close\r\n\r\n"
    )
    .map_err(connect)?;
    let mut line = String::new();
    BufReader::new(std::io::Read::take(stream, MAX_STATUS_LINE))
        .read_line(&mut line)
        .map_err(connect)?;
    status_of(&line).ok_or_else(|| ProbeError::BadAnswer {
        host: named.clone(),
        reason: format!("{:?}", line.trim_end()),
    })
}

/// The status code of an HTTP/1.x status line.
fn status_of(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code: u16 = parts.next()?.parse().ok()?;
    (100..=599).contains(&code).then_some(code)
}

/// At most this much of the answer is read: the status line is all a probe needs.
const MAX_STATUS_LINE: u64 = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_split_into_host_port_and_path() {
        let parts = |u| split(u).unwrap();
        assert_eq!(
            parts("http://127.0.0.1:8080/healthz"),
            ("127.0.0.1".into(), 8080, "/healthz".into())
        );
        assert_eq!(parts("http://vigie"), ("vigie".into(), 80, "/".into()));
        assert_eq!(
            parts("http://[::1]:9464/readyz"),
            ("::1".into(), 9464, "/readyz".into())
        );
        for bad in [
            "https://x/healthz",
            "x:80/healthz",
            "http://",
            "http://u:p@x/",
            "http://x:port/",
        ] {
            assert!(split(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn without_a_url_the_probe_asks_the_apis_own_address() {
        assert_eq!(own_healthz(None), "http://127.0.0.1:8080/healthz");
        assert_eq!(
            own_healthz(Some("0.0.0.0:9000")),
            "http://127.0.0.1:9000/healthz"
        );
        assert_eq!(own_healthz(Some("[::]:9000")), "http://[::1]:9000/healthz");
        assert_eq!(
            own_healthz(Some("10.0.0.5:8080")),
            "http://10.0.0.5:8080/healthz"
        );
    }

    #[test]
    fn only_an_http_status_line_gives_a_status() {
        assert_eq!(status_of("HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_of("HTTP/1.0 503 Service Unavailable\r\n"), Some(503));
        assert_eq!(status_of("SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_of("HTTP/1.1 abc\r\n"), None);
        assert_eq!(status_of(""), None);
    }
}
