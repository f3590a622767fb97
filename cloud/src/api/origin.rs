//! Which web pages may call the API: the console's own origin (same scheme-less host and port as
//! the request's `Host`), plus the origins listed in `allowed_origins` (`VIGIE_ALLOWED_ORIGINS`).
//! Requests from any other origin are refused by the CORS layer (HTTP) and by the WebSocket
//! handshake (`Origin` checked there too: browsers do not apply CORS to WebSockets). Requests
//! without an `Origin` (devices, scripts, curl) are not browser requests and pass on to the token
//! check. Also the security headers every answer carries.

use std::sync::Arc;

use actix_cors::Cors;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::{DefaultHeaders, Next};

/// The allowed cross-origin callers, normalised (`scheme://host[:port]`, no trailing slash).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins(Arc<Vec<String>>);

impl AllowedOrigins {
    pub fn new(origins: Vec<String>) -> AllowedOrigins {
        AllowedOrigins(Arc::new(
            origins
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        ))
    }

    /// Whether a page at `origin` may call a server reached as `host` (the `Host` header).
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        let authority = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        if let (Some(authority), Some(host)) = (authority, host) {
            if authority == host.to_ascii_lowercase() {
                return true;
            }
        }
        self.0.contains(&origin)
    }
}

/// The CORS layer: same origin and the listed origins, the API's methods and headers only.
pub fn cors(allowed: AllowedOrigins) -> Cors {
    Cors::default()
        .allowed_origin_fn(move |origin, head| {
            let host = head
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok());
            origin
                .to_str()
                .is_ok_and(|origin| allowed.allows(origin, host))
        })
        .allowed_methods([Method::GET, Method::POST])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
        ])
        .max_age(600)
}

/// Refuses (403) any request that comes from a web page of another origin, before any handler
/// runs: the CORS layer alone only stops the browser from reading the answer, not the request.
pub async fn refuse_foreign_origin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok());
        let allowed = req
            .app_data::<actix_web::web::Data<super::AppState>>()
            .is_some_and(|state| {
                origin
                    .to_str()
                    .is_ok_and(|o| state.allowed_origins.allows(o, host))
            });
        if !allowed {
            let failure = super::ApiFailure::Forbidden(
                "requests from this web origin are not allowed (allowed_origins)".into(),
            );
            return Ok(req.error_response(failure));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The console's Content-Security-Policy: its own scripts and connections only (the WebSocket is
/// same-origin), inline style attributes (React), images and media from itself, `data:` and `blob:`
/// (hls.js feeds video through blob URLs and may use a blob worker), never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob:; \
     connect-src 'self'; worker-src 'self' blob:; object-src 'none'; frame-ancestors 'none'; \
     base-uri 'self'; form-action 'self'";

/// Headers on every answer: the console's CSP, no MIME sniffing, no framing (clickjacking), no
/// referrer leak, no powerful browser features, and no cross-window access.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=(), payment=()",
        ))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_host_and_listed_origins_are_allowed_others_not() {
        let allowed = AllowedOrigins::new(vec!["https://console.example.org/".into()]);
        let host = Some("vigie.local:8080");
        assert!(allowed.allows("http://vigie.local:8080", host));
        assert!(allowed.allows("https://VIGIE.local:8080", host));
        assert!(allowed.allows("https://console.example.org", host));
        assert!(
            !allowed.allows("http://vigie.local:8081", host),
            "another port"
        );
        assert!(!allowed.allows("http://evil.example", host));
        assert!(!allowed.allows("null", host));
        assert!(
            !allowed.allows("http://vigie.local:8080", None),
            "without a Host only the list counts"
        );
    }
}
