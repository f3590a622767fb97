//! Compressed request bodies, inflated with a cap: a `Content-Encoding: gzip` body is decoded as it
//! streams in, and the decoding stops as soon as it passes the route's limit (the stream then fails
//! with `Overflow`, which the handlers answer 413). actix's own decoder inflated a whole network
//! chunk before any size check: 8 parallel 1 MiB gzip bombs at the login answered 413 but grew the
//! process by 549 MiB.
//!
//! Limits: [`LOGIN_BODY_LIMIT`] for `/api/auth/*`, `MAX_CHUNK_BYTES` for `/api/media/*`, and
//! `max_body_bytes` for everything else. Another encoding than gzip or identity is refused (415).

use std::io::Write;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::HttpMessage;
use futures_util::StreamExt;

use super::ApiFailure;

/// The largest body `/api/auth/*` takes (a login is a name and a password).
pub const LOGIN_BODY_LIMIT: usize = 8 * 1024;

/// The decoded body's limit for `path`.
pub fn limit_for(path: &str, max_body_bytes: usize) -> usize {
    if path.starts_with("/api/auth/") {
        LOGIN_BODY_LIMIT
    } else if path.starts_with("/api/media/") {
        protocol::media::MAX_CHUNK_BYTES
    } else {
        max_body_bytes
    }
}

/// Writes what the gzip decoder produces, failing once more than `limit` bytes came out in all.
struct Capped {
    out: Vec<u8>,
    total: usize,
    limit: usize,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.total += buf.len();
        if self.total > self.limit {
            return Err(std::io::Error::other("decoded body over its limit"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Decodes one gzip stream pushed chunk by chunk; never holds more than `limit` decoded bytes.
pub struct CappedGunzip {
    decoder: flate2::write::GzDecoder<Capped>,
}

impl CappedGunzip {
    pub fn new(limit: usize) -> CappedGunzip {
        CappedGunzip {
            decoder: flate2::write::GzDecoder::new(Capped {
                out: Vec::new(),
                total: 0,
                limit,
            }),
        }
    }

    fn over(&self) -> bool {
        self.decoder.get_ref().total > self.decoder.get_ref().limit
    }

    fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.decoder.get_mut().out))
    }

    /// The bytes decoded from `compressed`.
    pub fn push(&mut self, compressed: &[u8]) -> Result<Bytes, PayloadError> {
        match self.decoder.write_all(compressed) {
            Ok(()) => Ok(self.take()),
            Err(_) if self.over() => Err(PayloadError::Overflow),
            Err(_) => Err(PayloadError::EncodingCorrupted),
        }
    }

    /// The last decoded bytes, once the body has ended.
    pub fn finish(&mut self) -> Result<Bytes, PayloadError> {
        match self.decoder.try_finish() {
            Ok(()) => Ok(self.take()),
            Err(_) if self.over() => Err(PayloadError::Overflow),
            Err(_) => Err(PayloadError::EncodingCorrupted),
        }
    }
}

/// Middleware: replaces a gzip body by its capped decoding (and drops the header, so nothing
/// decodes it again).
pub async fn capped_inflate(
    max_body_bytes: usize,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let encoding = req
        .headers()
        .get(CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("identity") => {}
        Some("gzip") | Some("x-gzip") => {
            let limit = limit_for(req.path(), max_body_bytes);
            let raw = req.take_payload();
            let decoded = futures_util::stream::unfold(
                (raw, CappedGunzip::new(limit), false),
                |(mut raw, mut gunzip, done)| async move {
                    if done {
                        return None;
                    }
                    loop {
                        match raw.next().await {
                            Some(Ok(chunk)) => match gunzip.push(&chunk) {
                                Ok(out) if out.is_empty() => continue,
                                Ok(out) => return Some((Ok(out), (raw, gunzip, false))),
                                Err(e) => return Some((Err(e), (raw, gunzip, true))),
                            },
                            Some(Err(e)) => return Some((Err(e), (raw, gunzip, true))),
                            None => return Some((gunzip.finish(), (raw, gunzip, true))),
                        }
                    }
                },
            );
            let stream: std::pin::Pin<
                Box<dyn futures_util::Stream<Item = Result<Bytes, PayloadError>>>,
            > = Box::pin(decoded);
            req.set_payload(Payload::from(stream));
            let headers = req.headers_mut();
            headers.remove(CONTENT_ENCODING);
            // The length on the wire is not the decoded one.
            headers.remove(CONTENT_LENGTH);
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("identity"));
        }
        Some(other) => {
            return Err(ApiFailure::UnsupportedMediaType(format!(
                "Content-Encoding {other:?} is not accepted: send gzip or nothing"
            ))
            .into())
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_body_within_its_limit_decodes_whole_in_any_chunking() {
        let body = b"[{\"a\": 1}]".repeat(100);
        let packed = gzip(&body);
        let mut g = CappedGunzip::new(body.len());
        let mut out = Vec::new();
        for part in packed.chunks(7) {
            out.extend_from_slice(&g.push(part).unwrap());
        }
        out.extend_from_slice(&g.finish().unwrap());
        assert_eq!(out, body);
    }

    #[test]
    fn a_bomb_stops_decoding_just_past_the_limit() {
        let packed = gzip(&vec![0u8; 64 * 1024 * 1024]);
        let mut g = CappedGunzip::new(8 * 1024);
        let mut decoded = 0;
        let mut failed = None;
        for part in packed.chunks(16 * 1024) {
            match g.push(part) {
                Ok(out) => decoded += out.len(),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        assert!(matches!(failed, Some(PayloadError::Overflow)), "{failed:?}");
        assert!(decoded <= 8 * 1024);
        assert!(
            g.decoder.get_ref().out.capacity() <= 64 * 1024,
            "no more kept than a step"
        );
    }

    #[test]
    fn garbage_is_a_corrupt_encoding_not_an_overflow() {
        let mut g = CappedGunzip::new(1024);
        let err = g.push(b"this is not gzip at all").and_then(|_| g.finish());
        assert!(
            matches!(err, Err(PayloadError::EncodingCorrupted)),
            "{err:?}"
        );
    }
}
