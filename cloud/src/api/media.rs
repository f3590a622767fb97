//! What users read of video: `GET /api/cameras`, a camera's snapshots (pages and JPEGs), clips (the
//! MP4 with HTTP Range, its info, admin delete) and `GET /api/events/{id}/media`.
//!
//! The files themselves (`/api/clips/{id}`, `/api/cameras/{id}/snapshots/{sid}`) accept either the
//! usual `Authorization: Bearer` JWT or a signed link (`?exp=&sig=`, scope = the path), because
//! `<video>` and `<img>` cannot send headers; every view carries a freshly signed `url`. Audited:
//! a clip viewed (fetched with a user's token, or its info or links asked for) and a clip deleted.

use actix_web::body::SizedStream;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use protocol::media::{CameraView, ClipView, EventMedia, SnapshotPage, SnapshotView};
use protocol::DeviceId;
use serde::Deserialize;
use uuid::Uuid;

use super::uploads::{media_id, MediaState};
use super::{blocking, ApiFailure, AppState, Caller};
use crate::auth::LINK_TTL_S;
use crate::media::range::{self, RangeError};
use crate::media::{clip_key, snapshot_key, ByteRange};
use crate::store::{AuditRecord, ClipRecord, SnapshotRecord};

const DEFAULT_SNAPSHOTS: u32 = 50;
const MAX_SNAPSHOTS: u32 = 500;

fn now_s() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0)
}

fn sign(state: &AppState, scope: &str) -> String {
    state.auth.media_links().sign(scope, now_s(), LINK_TTL_S)
}

fn camera_id(raw: &str) -> Result<DeviceId, ApiFailure> {
    DeviceId::new(raw).map_err(|e| ApiFailure::BadRequest(format!("camera id {raw:?}: {e}")))
}

fn clip_scope(id: Uuid) -> String {
    format!("/api/clips/{}", id.as_hyphenated())
}

fn snapshot_scope(camera: &DeviceId, id: Uuid) -> String {
    format!("/api/cameras/{camera}/snapshots/{}", id.as_hyphenated())
}

fn snapshot_view(state: &AppState, s: SnapshotRecord) -> SnapshotView {
    let url = sign(state, &snapshot_scope(&s.device, s.id));
    SnapshotView {
        id: s.id,
        camera: s.device,
        event_id: s.event_id,
        taken_at: s.taken_at,
        width: s.width,
        height: s.height,
        size_bytes: s.size_bytes,
        url,
    }
}

fn clip_view(state: &AppState, r: ClipRecord) -> ClipView {
    let c = r.clip;
    let url = r.available.then(|| sign(state, &clip_scope(c.clip_id)));
    ClipView {
        id: c.clip_id,
        camera: c.device,
        event_ids: c.event_ids,
        started_at: c.started_at,
        ended_at: c.ended_at,
        duration_ms: c.duration_ms,
        trigger_offsets_ms: c.trigger_offsets_ms,
        size_bytes: c.size_bytes,
        sha256: c.sha256,
        codec: c.codec,
        width: c.width,
        height: c.height,
        available: r.available,
        url,
    }
}

async fn audit_clip(
    state: &AppState,
    req: &HttpRequest,
    user: &str,
    action: &'static str,
    clip: Uuid,
) {
    super::login::audit(
        state,
        AuditRecord {
            at: chrono::Utc::now(),
            actor: user.to_owned(),
            action,
            target: Some(clip.to_string()),
            detail: None,
            source: super::login::client_addr(req).map(|a| a.to_string()),
        },
    )
    .await;
}

/// Who may fetch a media file: a user by header, or anyone holding a valid signed link.
enum Access {
    User(String),
    Link,
}

#[derive(Deserialize)]
struct LinkQuery {
    exp: Option<u64>,
    sig: Option<String>,
}

async fn media_access(req: &HttpRequest, state: &AppState) -> Result<Access, ApiFailure> {
    if req
        .headers()
        .contains_key(actix_web::http::header::AUTHORIZATION)
    {
        let caller = Caller::extract(req).await?;
        let (user, _) = caller.require_user()?;
        return Ok(Access::User(user.to_owned()));
    }
    let query = web::Query::<LinkQuery>::from_query(req.query_string())
        .map_err(|e| ApiFailure::BadRequest(format!("invalid media link query: {e}")))?;
    match (query.exp, query.sig.as_deref()) {
        (Some(exp), Some(sig)) => {
            state
                .auth
                .media_links()
                .verify(req.path(), exp, sig, now_s())
                .map_err(|e| ApiFailure::Unauthorized(e.to_string()))?;
            Ok(Access::Link)
        }
        _ => Err(ApiFailure::Unauthorized(
            "send `Authorization: Bearer <token>`, or use the signed url the API gave".into(),
        )),
    }
}

/// Streams `range` of an object (the whole file when `range` is `None`).
async fn send_file(
    media: &MediaState,
    key: &object_store::path::Path,
    content_type: &str,
    size: u64,
    range: Option<ByteRange>,
) -> Result<HttpResponse, ApiFailure> {
    let (status, read) = match range {
        Some(r) => (actix_web::http::StatusCode::PARTIAL_CONTENT, r),
        None => (
            actix_web::http::StatusCode::OK,
            ByteRange {
                start: 0,
                end: size - 1,
                size,
            },
        ),
    };
    let stream = media.media.read_range(key, read.to_read()).await?;
    let mut response = HttpResponse::build(status);
    response
        .insert_header(("Content-Type", content_type))
        .insert_header(("Accept-Ranges", "bytes"))
        .insert_header(("Cache-Control", "private, max-age=300"));
    if range.is_some() {
        response.insert_header(("Content-Range", read.content_range()));
    }
    let body = stream.map(|chunk| {
        chunk.map_err(|e| {
            tracing::error!(error = %e, "media read failed mid-stream");
            std::io::Error::other(e.to_string())
        })
    });
    Ok(response.body(SizedStream::new(read.len(), body)))
}

/// `GET /api/clips/{id}`: the MP4, whole or by HTTP Range.
pub async fn clip_file(
    state: web::Data<AppState>,
    media: web::Data<MediaState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiFailure> {
    let access = media_access(&req, &state).await?;
    let id = media_id("clip", &path.into_inner())?;
    let store = state.store.clone();
    let record = blocking(move || store.get_clip(id))
        .await?
        .ok_or_else(|| ApiFailure::NotFound(format!("no clip {id}")))?;
    if record.deleted {
        return Err(ApiFailure::NotFound(format!("clip {id} was deleted")));
    }
    if !record.available {
        return Err(ApiFailure::NotFound(format!(
            "clip {id} is announced but not uploaded yet"
        )));
    }
    let size = record.clip.size_bytes;
    let range = match req
        .headers()
        .get(actix_web::http::header::RANGE)
        .and_then(|v| v.to_str().ok())
    {
        None => None,
        Some(header) => match range::parse(header, size) {
            Ok(r) => Some(r),
            Err(RangeError::Malformed(_)) => None,
            Err(e @ RangeError::Unsatisfiable { .. }) => {
                return Err(ApiFailure::RangeNotSatisfiable {
                    message: e.to_string(),
                    size,
                })
            }
        },
    };
    if let Access::User(user) = &access {
        if range.is_none_or(|r| r.start == 0) {
            audit_clip(&state, &req, user, "clip_viewed", id).await;
        }
    }
    let key = clip_key(&record.clip.device, id);
    send_file(&media, &key, "video/mp4", size, range).await
}

/// `GET /api/clips/{id}/info`.
pub async fn clip_info(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiFailure> {
    let (user, _) = caller.require_user()?;
    let id = media_id("clip", &path.into_inner())?;
    let store = state.store.clone();
    let record = blocking(move || store.get_clip(id))
        .await?
        .filter(|r| !r.deleted)
        .ok_or_else(|| ApiFailure::NotFound(format!("no clip {id}")))?;
    audit_clip(&state, &req, user, "clip_viewed", id).await;
    Ok(HttpResponse::Ok().json(clip_view(&state, record)))
}

/// `DELETE /api/clips/{id}` (admins): removes the file; the clip stays known as deleted.
pub async fn delete_clip(
    caller: Caller,
    state: web::Data<AppState>,
    media: web::Data<MediaState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiFailure> {
    let admin = caller.require_admin()?.to_owned();
    let id = media_id("clip", &path.into_inner())?;
    let store = state.store.clone();
    let record = blocking(move || store.get_clip(id))
        .await?
        .ok_or_else(|| ApiFailure::NotFound(format!("no clip {id}")))?;
    // The file first: a crash between the two leaves a clip marked available whose file is gone
    // (404 on fetch), and the delete can be repeated.
    media
        .media
        .delete(&clip_key(&record.clip.device, id))
        .await?;
    let store = state.store.clone();
    let newly = blocking(move || store.delete_clip(id, chrono::Utc::now())).await?;
    if newly == Some(true) {
        tracing::info!(clip_id = %id, admin = %admin, "clip deleted");
        audit_clip(&state, &req, &admin, "clip_deleted", id).await;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/events/{id}/media`.
pub async fn event_media(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiFailure> {
    let (user, _) = caller.require_user()?;
    let raw = path.into_inner();
    let id = Uuid::try_parse(&raw)
        .map_err(|_| ApiFailure::BadRequest(format!("event id {raw:?} is not a UUID")))?;
    let store = state.store.clone();
    let (event, (clip, snapshot)) =
        blocking(move || Ok((store.get_event(id)?, store.media_of_event(id)?))).await?;
    if event.is_none() && clip.is_none() && snapshot.is_none() {
        return Err(ApiFailure::NotFound(format!("no event {id}")));
    }
    if let Some(clip) = &clip {
        audit_clip(&state, &req, user, "clip_viewed", clip.clip.clip_id).await;
    }
    Ok(HttpResponse::Ok().json(EventMedia {
        event_id: id,
        clip: clip.map(|c| clip_view(&state, c)),
        snapshot: snapshot.map(|s| snapshot_view(&state, s)),
    }))
}

/// `GET /api/cameras`: every device with media or streaming now, sorted by id.
pub async fn cameras(
    caller: Caller,
    state: web::Data<AppState>,
    media: web::Data<MediaState>,
) -> Result<HttpResponse, ApiFailure> {
    caller.require_user()?;
    let store = state.store.clone();
    let live = media.live.cameras();
    let found = blocking(move || {
        let mut cameras: std::collections::BTreeMap<DeviceId, (u64, Option<SnapshotRecord>)> =
            Default::default();
        for camera in store.list_cameras()? {
            cameras.insert(camera.device, (camera.clips, None));
        }
        for device in live {
            cameras.entry(device).or_default();
        }
        for (device, (_, last)) in cameras.iter_mut() {
            *last = store.list_snapshots(device, 1, None)?.0.pop();
        }
        Ok(cameras)
    })
    .await?;
    let views: Vec<CameraView> = found
        .into_iter()
        .map(|(device, (clips, last))| CameraView {
            id: device.clone(),
            device: device.clone(),
            live: media.live.is_live(&device),
            stream_url: sign(&state, &format!("/api/cameras/{device}/stream")),
            last_snapshot: last.map(|s| snapshot_view(&state, s)),
            clips,
        })
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// `GET /api/cameras/{id}/snapshots` query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/cameras/{id}/snapshots?limit=&cursor=`: newest first.
pub async fn snapshots(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<SnapshotQuery>,
) -> Result<HttpResponse, ApiFailure> {
    caller.require_user()?;
    let camera = camera_id(&path.into_inner())?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_SNAPSHOTS,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_SNAPSHOTS).contains(n))
            .ok_or_else(|| {
                ApiFailure::BadRequest(format!(
                    "query parameter `limit`: {s:?} must be a number from 1 to {MAX_SNAPSHOTS}"
                ))
            })?,
    };
    let cursor = query.cursor.clone().filter(|c| !c.is_empty());
    let store = state.store.clone();
    let (items, next_cursor) =
        blocking(move || store.list_snapshots(&camera, limit, cursor.as_deref())).await?;
    Ok(HttpResponse::Ok().json(SnapshotPage {
        items: items
            .into_iter()
            .map(|s| snapshot_view(&state, s))
            .collect(),
        next_cursor,
    }))
}

/// `GET /api/cameras/{id}/snapshots/{snapshot_id}`: the JPEG.
pub async fn snapshot_file(
    state: web::Data<AppState>,
    media: web::Data<MediaState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiFailure> {
    media_access(&req, &state).await?;
    let (camera, raw) = path.into_inner();
    let camera = camera_id(&camera)?;
    let id = media_id("snapshot", &raw)?;
    let store = state.store.clone();
    let snapshot = blocking(move || store.get_snapshot(id))
        .await?
        .filter(|s| s.device == camera)
        .ok_or_else(|| ApiFailure::NotFound(format!("no snapshot {id} of camera {camera}")))?;
    let key = snapshot_key(&snapshot.device, id);
    send_file(&media, &key, "image/jpeg", snapshot.size_bytes, None).await
}
