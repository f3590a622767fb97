//! A request body must keep coming: after a grace period it must have averaged at least
//! [`MIN_RATE`] bytes a second, or the request fails (408) and its connection is freed. actix-web
//! bounds the time to receive a request's head (`client_request_timeout`), not its body: without
//! this, a client dripping one byte every few seconds into a declared 4 MiB body holds a connection
//! (and a worker's buffer) for as long as it likes. The slowest honest sender, a Pi uploading a
//! 1 MiB clip chunk over a poor link, is far above the rate. Only requests that declare a body
//! are held to it: a WebSocket's frames follow its upgrade request on the same stream.

use std::pin::Pin;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::time::Instant;

/// Time a body has before its rate counts.
pub const GRACE: Duration = Duration::from_secs(10);
/// The slowest average a body may arrive at after [`GRACE`]: 4 KiB/s (32 kbit/s).
pub const MIN_RATE: u64 = 4096;

/// The rule: a grace period, then a minimum average rate.
#[derive(Clone, Copy, Debug)]
pub struct BodyRate {
    pub grace: Duration,
    /// Bytes a second, averaged from the start of the body.
    pub min_rate: u64,
}

impl BodyRate {
    /// The API's: [`GRACE`], then [`MIN_RATE`].
    pub const API: BodyRate = BodyRate {
        grace: GRACE,
        min_rate: MIN_RATE,
    };

    /// The moment a body that has delivered `received` bytes since `start` is too slow.
    pub fn deadline(&self, start: Instant, received: u64) -> Instant {
        start + self.grace + Duration::from_millis(received.saturating_mul(1000) / self.min_rate)
    }
}

type Chunks = Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>;

/// `payload` with the deadline: ends with a timeout error when the next bytes come too late.
fn with_deadline(payload: Payload, rule: BodyRate) -> Chunks {
    let start = Instant::now();
    let state = (payload, 0u64, false);
    Box::pin(futures_util::stream::unfold(
        state,
        move |(mut payload, received, failed)| async move {
            if failed {
                return None;
            }
            match tokio::time::timeout_at(rule.deadline(start, received), payload.next()).await {
                Ok(Some(Ok(chunk))) => {
                    let received = received + chunk.len() as u64;
                    Some((Ok(chunk), (payload, received, false)))
                }
                Ok(Some(Err(e))) => Some((Err(e), (payload, received, true))),
                Ok(None) => None,
                Err(_) => {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "the request body came too slowly ({received} bytes in {:.0?}; at \
                             least {} bytes/s after {:?})",
                            start.elapsed(),
                            rule.min_rate,
                            rule.grace
                        ),
                    );
                    Some((Err(PayloadError::Io(e)), (payload, received, true)))
                }
            }
        },
    ))
}

/// Whether the request declares a body (`Content-Length` above 0, or `Transfer-Encoding`). A
/// WebSocket upgrade declares none: what follows it on the connection is the socket's frames,
/// which come when the user's console has something to say, and must never be held to a rate.
pub fn declares_body(headers: &actix_web::http::header::HeaderMap) -> bool {
    use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// Middleware: every request body under the deadline.
pub async fn enforce(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if declares_body(req.headers()) {
        let payload = std::mem::replace(req.parts_mut().1, Payload::None);
        req.set_payload(Payload::Stream {
            payload: with_deadline(payload, BodyRate::API),
        });
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_grows_with_what_has_arrived_at_the_minimum_rate() {
        let rule = BodyRate::API;
        let start = Instant::now();
        assert_eq!(rule.deadline(start, 0), start + GRACE);
        assert_eq!(
            rule.deadline(start, MIN_RATE * 5),
            start + GRACE + Duration::from_secs(5)
        );
        assert_eq!(
            rule.deadline(start, u64::MAX),
            start + GRACE + Duration::from_millis(u64::MAX / MIN_RATE),
            "no overflow"
        );
    }

    #[test]
    fn a_websocket_upgrade_or_a_bodiless_request_is_not_held_to_the_rate() {
        use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                map.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
            }
            map
        };
        assert!(!declares_body(&headers(&[
            ("upgrade", "websocket"),
            ("connection", "Upgrade")
        ])));
        assert!(!declares_body(&headers(&[("content-length", "0")])));
        assert!(declares_body(&headers(&[("content-length", "1000")])));
        assert!(declares_body(&headers(&[("transfer-encoding", "chunked")])));
    }

    #[actix_web::test]
    async fn a_body_that_stops_coming_fails_at_its_deadline_and_a_steady_one_arrives_whole() {
        // The deadline is the signal waited for: 50 ms of grace, then 1 byte/s.
        let rule = BodyRate {
            grace: Duration::from_millis(50),
            min_rate: 1000,
        };
        let (mut sender, payload) = actix_http::h1::Payload::create(false);
        let mut chunks = with_deadline(Payload::from(payload), rule);
        sender.feed_data(Bytes::from_static(b"x"));
        assert_eq!(
            chunks.next().await.unwrap().unwrap(),
            Bytes::from_static(b"x")
        );
        let started = std::time::Instant::now();
        let err = chunks.next().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("too slowly"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "failed at its deadline"
        );
        assert!(
            chunks.next().await.is_none(),
            "the body ends after its error"
        );
        drop(sender);

        let (mut sender, payload) = actix_http::h1::Payload::create(false);
        let mut chunks = with_deadline(Payload::from(payload), rule);
        sender.feed_data(Bytes::from(vec![0u8; 64 * 1024]));
        sender.feed_eof();
        assert_eq!(chunks.next().await.unwrap().unwrap().len(), 64 * 1024);
        assert!(chunks.next().await.is_none());
    }
}
