//! Live view over HLS: `GET /api/cameras/{id}/stream` (the playlist) and
//! `GET /api/cameras/{id}/stream/{segment}` (one MPEG-TS segment), as the gateway (`crate::live`)
//! writes them, never transcoded.
//!
//! Auth: a user's bearer token, or a signed media link for the scope `/api/cameras/{id}/stream`
//! (`exp` and `sig` in the query, for players that cannot send a header). The playlist's segment
//! URIs point back here and carry the caller's signed query, so a player given a signed playlist
//! URL can fetch its segments; a device token gets 403. A camera not streaming is 404.

use std::collections::HashMap;
use std::path::PathBuf;

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use protocol::DeviceId;

use super::{ApiFailure, AppState, Caller};
use crate::live::hls::{is_segment_name, PLAYLIST};
use crate::live::LiveCameras;

/// The signed-link scope of a camera's stream.
pub fn stream_scope(camera: &DeviceId) -> String {
    format!("/api/cameras/{camera}/stream")
}

/// Checks the caller (user token or signed link); returns the signed query to carry, if any.
async fn authorize(req: &HttpRequest, camera: &DeviceId) -> Result<Option<String>, ApiFailure> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiFailure::Internal("app state missing".into()))?;
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    if let (Some(exp), Some(sig)) = (query.get("exp"), query.get("sig")) {
        let exp: u64 = exp.parse().map_err(|_| {
            ApiFailure::Unauthorized("the media link's `exp` is not a number".into())
        })?;
        let now = jsonwebtoken::get_current_timestamp();
        state
            .auth
            .media_links()
            .verify(&stream_scope(camera), exp, sig, now)
            .map_err(|e| ApiFailure::Unauthorized(e.to_string()))?;
        return Ok(Some(format!("exp={exp}&sig={sig}")));
    }
    let caller = Caller::extract(req).await?;
    caller.require_user()?;
    Ok(None)
}

fn camera_id(raw: &str) -> Result<DeviceId, ApiFailure> {
    DeviceId::new(raw).map_err(|_| ApiFailure::NotFound(format!("no camera {raw:?}")))
}

/// The camera's HLS directory, or 404 saying why.
fn live_dir(req: &HttpRequest, camera: &DeviceId) -> Result<PathBuf, ApiFailure> {
    let cameras = req
        .app_data::<web::Data<LiveCameras>>()
        .ok_or_else(|| ApiFailure::Internal("live cameras registry missing".into()))?;
    cameras.hls_dir(camera).ok_or_else(|| {
        ApiFailure::NotFound(format!(
            "camera {camera} is not streaming now: its Pi must be publishing to the RTSP server"
        ))
    })
}

/// `GET /api/cameras/{id}/stream`: the playlist, segment URIs rewritten to this API.
pub async fn playlist(req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiFailure> {
    let camera = camera_id(&id)?;
    let signed = authorize(&req, &camera).await?;
    let dir = live_dir(&req, &camera)?;
    let text = std::fs::read_to_string(dir.join(PLAYLIST))
        .ok()
        .filter(|text| {
            text.lines()
                .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
        })
        .ok_or_else(|| {
            ApiFailure::NotFound(format!(
                "camera {camera} is starting its stream: try again in a few seconds"
            ))
        })?;
    let body = rewrite_playlist(&text, &stream_scope(&camera), signed.as_deref());
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/vnd.apple.mpegurl"))
        .insert_header((header::CACHE_CONTROL, "no-cache, no-store"))
        .body(body))
}

/// `GET /api/cameras/{id}/stream/{segment}`: one segment (names `seg-<digits>.ts` only).
pub async fn segment(
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiFailure> {
    let (id, name) = path.into_inner();
    let camera = camera_id(&id)?;
    authorize(&req, &camera).await?;
    if !is_segment_name(&name) {
        return Err(ApiFailure::NotFound(format!("no segment {name:?}")));
    }
    let file = live_dir(&req, &camera)?.join(&name);
    let data = web::block(move || std::fs::read(file))
        .await?
        .map_err(|_| {
            ApiFailure::NotFound(format!(
                "segment {name} is gone (the playlist slides on): reload the playlist"
            ))
        })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "video/mp2t"))
        .insert_header((header::CACHE_CONTROL, "private, max-age=60"))
        .body(data))
}

/// Points every segment URI of an HLS playlist at `scope/{segment}`, with `query` appended, and
/// makes `EXT-X-TARGETDURATION` valid: FFmpeg rounds segments shorter than a second down to 0, and
/// the target must be at least every `EXTINF` rounded to the nearest integer (RFC 8216), and 1.
pub fn rewrite_playlist(text: &str, scope: &str, query: Option<&str>) -> String {
    let longest = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("#EXTINF:"))
        .filter_map(|v| v.split(',').next()?.trim().parse::<f64>().ok())
        .fold(0.0f64, f64::max);
    let target = (longest.round() as u64).max(1);
    let mut out = String::with_capacity(text.len() * 2);
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(given) = trimmed.strip_prefix("#EXT-X-TARGETDURATION:") {
            let given: u64 = given.trim().parse().unwrap_or(0);
            out.push_str(&format!("#EXT-X-TARGETDURATION:{}", given.max(target)));
        } else if trimmed.is_empty() || trimmed.starts_with('#') {
            out.push_str(line);
        } else {
            let name = trimmed.rsplit('/').next().unwrap_or(trimmed);
            out.push_str(scope);
            out.push('/');
            out.push_str(name);
            if let Some(query) = query {
                out.push('?');
                out.push_str(query);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_uris_point_at_the_api_and_carry_the_signed_query() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nseg-17.ts\n";
        assert_eq!(
            rewrite_playlist(text, "/api/cameras/pi-1/stream", Some("exp=9&sig=abc")),
            "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n/api/cameras/pi-1/stream/seg-17.ts?exp=9&sig=abc\n"
        );
        assert!(rewrite_playlist(text, "/s", None).ends_with("\n/s/seg-17.ts\n"));
    }

    #[test]
    fn a_target_duration_rounded_down_to_zero_is_raised_to_cover_every_segment() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:0\n#EXTINF:0.500000,\nseg-1.ts\n#EXTINF:1.633,\nseg-2.ts\n";
        let out = rewrite_playlist(text, "/s", None);
        assert!(out.contains("#EXT-X-TARGETDURATION:2\n"), "{out}");
        let about_one = "#EXT-X-TARGETDURATION:1\n#EXTINF:1.033,\nseg-1.ts\n";
        assert!(rewrite_playlist(about_one, "/s", None).contains("#EXT-X-TARGETDURATION:1\n"));
        let short = "#EXT-X-TARGETDURATION:0\n#EXTINF:0.5,\nseg-1.ts\n";
        assert!(rewrite_playlist(short, "/s", None).contains("#EXT-X-TARGETDURATION:1\n"));
    }
}
