//! `POST /api/live/auth`: the MediaMTX auth hook (`authMethod: http`, `authHTTPAddress` pointing
//! here), for a cluster whose RTSP server is MediaMTX rather than the cloud's own.
//!
//! MediaMTX posts `{user, password, ip, action, path, protocol, id, query}` for every client and
//! lets it in on any 2xx. Allowed: `publish` to `live/{device}` by that device (user = its id) with
//! its live-push token, the same rule as the cloud's RTSP server; and `read` of a `live/{device}`
//! path by the cloud's own reader, with the credentials of its pull URL's userinfo
//! (`rtsp_source_url`, [`LiveReader`]). Everything else is refused: the API token of a device (it
//! must never travel in RTSP Basic auth), another device's path, any other reader (viewers watch
//! through the cloud's HLS, never from MediaMTX directly), and every other action. A request
//! without credentials gets 401, on which MediaMTX asks the client for them. Refused publishers
//! naming a known device are counted as its refused live logins (`/metrics`, the console's warning).

use actix_web::{web, HttpResponse};
use protocol::DeviceId;
use serde::Deserialize;

use super::{blocking, ApiFailure, AppState};
use crate::auth::{device_token_hash, is_live_token};
use crate::live::LiveCameras;

/// The body of MediaMTX's request; fields it sends that are not read here are ignored.
#[derive(Debug, Deserialize)]
pub struct HookRequest {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    ip: String,
    action: String,
    #[serde(default)]
    path: String,
}

/// The device a MediaMTX path names: `live/{device}` exactly.
fn device_of_path(path: &str) -> Option<DeviceId> {
    let device = path.trim_start_matches('/').strip_prefix("live/")?;
    DeviceId::new(device).ok()
}

/// The cloud's own reader at the cluster's RTSP server: the user and password in the userinfo of
/// its pull URL (`rtsp_source_url`, percent-decoded), the one reader the hook lets in.
#[derive(Clone)]
pub struct LiveReader {
    user: String,
    password_hash: String,
}

impl LiveReader {
    /// The reader of `rtsp://user:password@host:port/...`; `None` without both.
    pub fn from_pull_url(url: &str) -> Option<LiveReader> {
        let (_, rest) = url.split_once("://")?;
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        let (userinfo, _) = authority.rsplit_once('@')?;
        let (user, password) = userinfo.split_once(':')?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned())
        };
        let (user, password) = (decode(user)?, decode(password)?);
        (!user.is_empty() && !password.is_empty()).then(|| LiveReader {
            user,
            password_hash: device_token_hash(&password),
        })
    }

    /// Compared as hashes, so the time taken says nothing about the password.
    fn accepts(&self, user: &str, password: &str) -> bool {
        user == self.user && device_token_hash(password) == self.password_hash
    }
}

pub async fn hook(
    state: web::Data<AppState>,
    cameras: web::Data<LiveCameras>,
    reader: Option<web::Data<LiveReader>>,
    body: web::Json<HookRequest>,
) -> Result<HttpResponse, ApiFailure> {
    let request = body.into_inner();
    if request.action != "publish" && request.action != "read" {
        return Err(ApiFailure::Forbidden(format!(
            "action {:?}: only devices publishing their live stream and the cloud reading it are \
             let in",
            request.action
        )));
    }
    let Some(device) = device_of_path(&request.path) else {
        return Err(ApiFailure::NotFound(
            "path: a device's stream is at live/{its id}".into(),
        ));
    };
    if request.user.is_empty() && request.password.is_empty() {
        return Err(ApiFailure::Unauthorized(
            "credentials required: the device id and its live-push token".into(),
        ));
    }
    if request.action == "read" {
        if reader.is_some_and(|r| r.accepts(&request.user, &request.password)) {
            return Ok(HttpResponse::Ok().finish());
        }
        tracing::warn!(device_id = %device, client = %bounded(&request.ip),
            "live reader refused by the MediaMTX hook");
        return Err(ApiFailure::Forbidden(
            "only the cloud reads from the RTSP server; viewers watch through the cloud's HLS"
                .into(),
        ));
    }
    let store = state.store.clone();
    let (token, named) = (request.password.clone(), device.clone());
    let (owner, known) = blocking(move || {
        let owner = if is_live_token(&token) {
            store.device_for_live_token_hash(&device_token_hash(&token))?
        } else {
            None
        };
        let known = owner.as_ref() == Some(&named) || store.device_exists(&named)?;
        Ok((owner, known))
    })
    .await?;
    let refused = |why: &'static str| {
        if known {
            cameras.rtsp_metrics().refused_for(&device);
        }
        crate::live::rtsp::RtspMetrics::add(&cameras.rtsp_metrics().logins_refused, 1);
        tracing::warn!(device_id = %device, client = %bounded(&request.ip), reason = why,
            "live publisher refused by the MediaMTX hook");
    };
    if request.user != device.as_str() {
        refused("the user is not the path's device");
        return Err(ApiFailure::Forbidden(
            "a device may only publish to live/{its own id}".into(),
        ));
    }
    if owner.as_ref() != Some(&device) {
        refused("unknown or revoked live-push token");
        return Err(ApiFailure::Unauthorized(
            "unknown or revoked live-push token (the bundle's live.token; the API token is not one)"
                .into(),
        ));
    }
    Ok(HttpResponse::Ok().finish())
}

/// The client address MediaMTX reports, as logged: the caller's word, so bounded and escaped.
fn bounded(ip: &str) -> String {
    ip.chars().take(64).flat_map(char::escape_default).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_live_path_of_one_device_names_it() {
        assert_eq!(device_of_path("live/pi-1").unwrap().as_str(), "pi-1");
        assert_eq!(device_of_path("/live/pi-1").unwrap().as_str(), "pi-1");
        assert!(device_of_path("live/pi-1/more").is_none());
        assert!(device_of_path("other/pi-1").is_none());
        assert!(device_of_path("live/").is_none());
    }

    #[test]
    fn the_reader_is_the_pull_urls_userinfo_percent_decoded() {
        let r = LiveReader::from_pull_url("rtsp://vigie%2Dreader:p%40ss:w@mtx:8554/live/{device}")
            .unwrap();
        assert!(r.accepts("vigie-reader", "p@ss:w"));
        assert!(!r.accepts("vigie-reader", "p@ss"));
        assert!(!r.accepts("someone", "p@ss:w"));
        assert!(LiveReader::from_pull_url("rtsp://mtx:8554/live/{device}").is_none());
        assert!(LiveReader::from_pull_url("rtsp://user@mtx:8554/live/{device}").is_none());
        assert!(LiveReader::from_pull_url("rtsp://:pw@mtx:8554/live/{device}").is_none());
    }

    #[test]
    fn a_reported_address_is_logged_bounded_and_escaped() {
        assert_eq!(bounded("10.0.0.1"), "10.0.0.1");
        assert_eq!(bounded("a\nb"), "a\\nb");
        assert_eq!(bounded(&"x".repeat(100)).len(), 64);
    }
}
