//! The blocking HTTP client for `POST /api/events`: a JSON array of event envelopes, gzip-compressed,
//! with the device's bearer token. Every request has a global timeout. Runs only on the
//! [`super::worker`] thread, never on the actix system thread.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use protocol::api::IngestReport;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

/// The answer to one bulk request, as the outbox needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkOutcome {
    /// 200: what the cloud stored and its `acked_seq` for this device.
    Answered(IngestReport),
    /// 401: the token is wrong (a configuration error; the edge falls back to MQTT).
    Unauthorized,
    /// 413: the batch is above the cloud's limits (10,000 items, 4 MiB decoded).
    TooLarge,
    /// Anything else: retried later. `reachable` is true when the API answered at all.
    Failed { reachable: bool, reason: String },
}

/// Why the cloud's `acked_seq` for this device could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckedSeqError {
    #[error("the cloud refused the device token (HTTP 401); check api.token")]
    Unauthorized,
    #[error("the cloud's answer has no acked_seq (is api.token a device token?)")]
    NoAckedSeq,
    #[error("asking the cloud for the device's acked_seq failed: {0}")]
    Failed(String),
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("api.url {0:?} must start with http:// or https://")]
    Scheme(String),
}

/// One API endpoint with its token.
pub struct ApiClient {
    pub(super) agent: ureq::Agent,
    pub(super) base: String,
    events_url: String,
    time_url: String,
    pub(super) authorization: String,
}

impl ApiClient {
    /// A client for `base_url` (`http://host:port` or `https://…`, with or without a trailing `/`).
    pub fn new(base_url: &str, token: &str, timeout: Duration) -> Result<Self, ClientError> {
        let base = base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Scheme(base_url.to_owned()));
        }
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("vigie-edge/", env!("CARGO_PKG_VERSION")));
        if base.starts_with("https://") {
            config = config.tls_config(tls_config());
        }
        Ok(ApiClient {
            agent: config.build().into(),
            base: base.to_owned(),
            events_url: format!("{base}/api/events"),
            time_url: format!("{base}/api/time"),
            authorization: format!("Bearer {token}"),
        })
    }

    /// `GET /api/time`: the cloud's clock. The error says whether the API answered at all.
    pub fn get_time(&self) -> Result<chrono::DateTime<chrono::Utc>, (bool, String)> {
        let mut response = self
            .agent
            .get(&self.time_url)
            .header("Authorization", &self.authorization)
            .call()
            .map_err(|e| (false, e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| (true, e.to_string()))?;
        if status != 200 {
            return Err((true, format!("GET /api/time: HTTP {status}")));
        }
        serde_json::from_str::<protocol::api::ClockReading>(&text)
            .map(|r| r.now)
            .map_err(|e| (true, format!("GET /api/time: unreadable answer: {e}")))
    }

    /// The cloud's `acked_seq` for this device (highest contiguous committed seq), read with an
    /// empty `POST /api/events` under the device's token.
    pub fn acked_seq(&self) -> Result<u64, AckedSeqError> {
        match self.post_events(&[]) {
            BulkOutcome::Answered(report) => report.acked_seq.ok_or(AckedSeqError::NoAckedSeq),
            BulkOutcome::Unauthorized => Err(AckedSeqError::Unauthorized),
            BulkOutcome::TooLarge => {
                Err(AckedSeqError::Failed("HTTP 413 for an empty batch".into()))
            }
            BulkOutcome::Failed { reason, .. } => Err(AckedSeqError::Failed(reason)),
        }
    }

    /// Posts `events` (each an `EventEnvelope` JSON document) as one gzip-compressed array.
    pub fn post_events(&self, events: &[Vec<u8>]) -> BulkOutcome {
        let body = match gzip_array(events) {
            Ok(body) => body,
            Err(e) => {
                return BulkOutcome::Failed {
                    reachable: false,
                    reason: format!("compressing the batch failed: {e}"),
                }
            }
        };
        let response = self
            .agent
            .post(&self.events_url)
            .header("Authorization", &self.authorization)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .send(&body[..]);
        let mut response = match response {
            Ok(response) => response,
            Err(e) => {
                return BulkOutcome::Failed {
                    reachable: false,
                    reason: e.to_string(),
                }
            }
        };
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string();
        match (status, text) {
            (200, Ok(text)) => match serde_json::from_str::<IngestReport>(&text) {
                Ok(report) => BulkOutcome::Answered(report),
                Err(e) => BulkOutcome::Failed {
                    reachable: true,
                    reason: format!("unreadable answer: {e}"),
                },
            },
            (401, _) => BulkOutcome::Unauthorized,
            (413, _) => BulkOutcome::TooLarge,
            (status, text) => BulkOutcome::Failed {
                reachable: true,
                reason: format!(
                    "HTTP {status}: {}",
                    text.unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect::<String>()
                ),
            },
        }
    }
}

/// `[e1,e2,…]`, gzip-compressed.
fn gzip_array(events: &[Vec<u8>]) -> std::io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(b"[")?;
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            gz.write_all(b",")?;
        }
        gz.write_all(event)?;
    }
    gz.write_all(b"]")?;
    gz.finish()
}

/// rustls with aws-lc-rs (the provider rumqttc already brings) and the platform's root
/// certificates, as the MQTT uplink uses.
fn tls_config() -> TlsConfig {
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(%error, "loading a platform root certificate failed");
    }
    let roots: Vec<Certificate<'static>> = native
        .certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::from(roots))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn a_batch_is_one_gzip_compressed_json_array() {
        let body = gzip_array(&[b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]).unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "[{\"a\":1},{\"b\":2}]");
    }

    #[test]
    fn an_https_client_builds_with_the_aws_lc_rs_provider() {
        assert!(ApiClient::new("https://cloud.example/", "t", Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn a_url_without_an_http_scheme_is_refused() {
        assert!(ApiClient::new("ftp://x", "t", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn a_refused_connection_is_a_failure_with_the_api_unreachable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = ApiClient::new(
            &format!("http://127.0.0.1:{port}"),
            "t",
            Duration::from_secs(2),
        )
        .unwrap();
        assert!(matches!(
            client.post_events(&[b"{}".to_vec()]),
            BulkOutcome::Failed {
                reachable: false,
                ..
            }
        ));
    }
}
