//! `PUT`, `PATCH` and `GET /api/media/{id}`: a device uploads its own clips and snapshots,
//! resumably, checked by size and SHA-256 (the protocol is in `protocol::media`).
//!
//! A chunk is fsynced in the staging file before `received` moves in the database; the last chunk is
//! verified, written whole to the media store, then marked complete in one transaction, and only then
//! is the staging file removed and `media_ready` pushed. Each step can be repeated after a crash: a
//! `PATCH` with an empty body at offset `size` finishes an upload whose last chunk was received but
//! not completed. One writer per upload at a time; a second one gets 409 with the status.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use protocol::api::StreamFrame;
use protocol::media::{
    MediaManifest, MediaReady, UploadStatus, MAX_CHUNK_BYTES, UPLOAD_OFFSET_HEADER,
};
use protocol::DeviceId;
use uuid::Uuid;

use super::{blocking, ApiFailure, AppState, Caller};
use crate::hub::Broadcast;
use crate::live::LiveCameras;
use crate::media::staging::Appended;
use crate::media::{clip_key, snapshot_key, MediaError, MediaStore, Staging};
use crate::store::{UploadBegun, UploadRecord};

/// The content type of a `PATCH` chunk.
pub const CHUNK_CONTENT_TYPE: &str = "application/offset+octet-stream";

/// What the media routes reach besides [`AppState`].
#[derive(Clone)]
pub struct MediaState {
    pub media: MediaStore,
    pub staging: Staging,
    /// The cameras streaming now (filled by the live gateway; read here).
    pub live: LiveCameras,
    /// Uploads with a `PATCH` in progress in this process.
    writing: Arc<Mutex<HashSet<Uuid>>>,
}

impl MediaState {
    pub fn new(media: MediaStore, staging: Staging, live: LiveCameras) -> MediaState {
        MediaState {
            media,
            staging,
            live,
            writing: Arc::default(),
        }
    }

    /// Claims the upload for one writer; `None` when another request is writing it.
    fn claim(&self, id: Uuid) -> Option<Claim> {
        let mut writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        writing.insert(id).then(|| Claim {
            id,
            writing: self.writing.clone(),
        })
    }
}

/// Releases the upload when the request ends, however it ends.
struct Claim {
    id: Uuid,
    writing: Arc<Mutex<HashSet<Uuid>>>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.writing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl From<MediaError> for ApiFailure {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::Missing(m) => ApiFailure::NotFound(format!(
                "the media file {m} is missing from the media store"
            )),
            other => {
                tracing::warn!(error = %other, "the media store failed");
                ApiFailure::Unavailable("the media store is unavailable; try again shortly".into())
            }
        }
    }
}

pub(super) fn media_id(what: &str, raw: &str) -> Result<Uuid, ApiFailure> {
    Uuid::try_parse(raw)
        .map_err(|_| ApiFailure::BadRequest(format!("{what} id {raw:?} is not a UUID")))
}

fn uploader(caller: &Caller) -> Result<&DeviceId, ApiFailure> {
    caller.device().ok_or_else(|| {
        ApiFailure::Forbidden("only a device uploads media, with its own device token".into())
    })
}

fn status(upload: &UploadRecord) -> UploadStatus {
    UploadStatus {
        id: upload.id,
        received: upload.received,
        size: upload.manifest.size_bytes(),
        complete: upload.complete,
    }
}

/// The caller's own upload, or 404 / 403.
async fn own_upload(
    state: &AppState,
    device: &DeviceId,
    id: Uuid,
) -> Result<UploadRecord, ApiFailure> {
    let store = state.store.clone();
    let upload = blocking(move || store.get_upload(id))
        .await?
        .ok_or_else(|| {
            ApiFailure::NotFound(format!(
                "no upload {id}: start it with PUT /api/media/{id} and its manifest"
            ))
        })?;
    if &upload.device != device {
        return Err(ApiFailure::Forbidden(format!(
            "upload {id} belongs to device {}, not {device}",
            upload.device
        )));
    }
    Ok(upload)
}

/// `PUT /api/media/{id}`: the manifest of what is about to be uploaded.
pub async fn begin(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    manifest: web::Json<MediaManifest>,
) -> Result<HttpResponse, ApiFailure> {
    let device = uploader(&caller)?;
    let id = media_id("media", &path.into_inner())?;
    let manifest = manifest.into_inner();
    if manifest.id() != id {
        return Err(ApiFailure::BadRequest(format!(
            "the manifest is for {} but was sent to /api/media/{id}",
            manifest.id()
        )));
    }
    if manifest.device() != device {
        return Err(ApiFailure::Forbidden(format!(
            "the manifest is for device {}, not for {device} whose token was sent",
            manifest.device()
        )));
    }
    manifest
        .validate()
        .map_err(|reason| ApiFailure::BadRequest(format!("invalid manifest: {reason}")))?;
    let store = state.store.clone();
    let begun = blocking(move || store.begin_upload(&manifest, chrono::Utc::now())).await?;
    Ok(match begun {
        UploadBegun::Created(upload) => {
            tracing::info!(device_id = %upload.device, media_id = %id,
                kind = upload.manifest.kind(), size = upload.manifest.size_bytes(), "upload started");
            HttpResponse::Created().json(status(&upload))
        }
        UploadBegun::Known(upload) => HttpResponse::Ok().json(status(&upload)),
        UploadBegun::Conflict(Some(upload)) => HttpResponse::Conflict().json(status(&upload)),
        UploadBegun::Conflict(None) => {
            return Err(ApiFailure::Conflict(format!(
                "clip {id} was announced with other metadata; nothing was changed"
            )))
        }
    })
}

/// `GET /api/media/{id}`: where to resume.
pub async fn status_of(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiFailure> {
    let device = uploader(&caller)?.clone();
    let id = media_id("media", &path.into_inner())?;
    let upload = own_upload(&state, &device, id).await?;
    Ok(HttpResponse::Ok().json(status(&upload)))
}

fn offset_of(req: &HttpRequest) -> Result<u64, ApiFailure> {
    let raw = req
        .headers()
        .get(UPLOAD_OFFSET_HEADER)
        .ok_or_else(|| {
            ApiFailure::BadRequest(format!(
                "missing header {UPLOAD_OFFSET_HEADER}: send the offset of this chunk (the \
                 `received` of GET /api/media/{{id}})"
            ))
        })?
        .to_str()
        .map_err(|_| ApiFailure::BadRequest(format!("{UPLOAD_OFFSET_HEADER} is not ASCII")))?;
    raw.trim().parse().map_err(|_| {
        ApiFailure::BadRequest(format!(
            "{UPLOAD_OFFSET_HEADER} {raw:?} is not a whole number of bytes"
        ))
    })
}

async fn read_chunk(mut payload: web::Payload) -> Result<Vec<u8>, ApiFailure> {
    let mut chunk = Vec::new();
    while let Some(part) = payload.next().await {
        let part = part.map_err(|e| match e {
            actix_web::error::PayloadError::Overflow => ApiFailure::TooLarge {
                limit: MAX_CHUNK_BYTES,
            },
            e => ApiFailure::BadRequest(format!("cannot read the chunk: {e}")),
        })?;
        if chunk.len() + part.len() > MAX_CHUNK_BYTES {
            return Err(ApiFailure::TooLarge {
                limit: MAX_CHUNK_BYTES,
            });
        }
        chunk.extend_from_slice(&part);
    }
    Ok(chunk)
}

/// `PATCH /api/media/{id}`: one chunk at `Upload-Offset`.
pub async fn append(
    caller: Caller,
    state: web::Data<AppState>,
    media: web::Data<MediaState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiFailure> {
    let device = uploader(&caller)?.clone();
    let id = media_id("media", &path.into_inner())?;
    let offset = offset_of(&req)?;
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != CHUNK_CONTENT_TYPE {
        return Err(ApiFailure::BadRequest(format!(
            "a chunk is sent as {CHUNK_CONTENT_TYPE}, not {content_type:?}"
        )));
    }
    let upload = own_upload(&state, &device, id).await?;
    if let Some(len) = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > MAX_CHUNK_BYTES {
            return Err(ApiFailure::TooLarge {
                limit: MAX_CHUNK_BYTES,
            });
        }
    }
    if upload.complete {
        return Ok(HttpResponse::Ok().json(status(&upload)));
    }
    let Some(_claim) = media.claim(id) else {
        return Ok(HttpResponse::Conflict().json(status(&upload)));
    };
    // Read again under the claim: another writer may have moved it.
    let upload = own_upload(&state, &device, id).await?;
    if upload.complete || offset != upload.received {
        return Ok(HttpResponse::Conflict().json(status(&upload)));
    }
    let chunk = read_chunk(payload).await?;
    let size = upload.manifest.size_bytes();
    if offset + chunk.len() as u64 > size {
        reset(&state, &media, id).await?;
        return Err(ApiFailure::Unprocessable(format!(
            "this chunk ends at byte {} but the manifest says the file has {size} bytes; the \
             upload starts again from 0",
            offset + chunk.len() as u64
        )));
    }
    let staging = media.staging.clone();
    let appended = web::block(move || staging.append(id, offset, &chunk)).await??;
    let received = match appended {
        Appended::Written(n) => n,
        Appended::Lost { on_disk } => {
            tracing::warn!(media_id = %id, on_disk, offset, "staging file shorter than received; upload restarts");
            reset(&state, &media, id).await?;
            let upload = own_upload(&state, &device, id).await?;
            return Ok(HttpResponse::Conflict().json(status(&upload)));
        }
    };
    let store = state.store.clone();
    let moved =
        blocking(move || store.advance_upload(id, offset, received, chrono::Utc::now())).await?;
    if !moved {
        let upload = own_upload(&state, &device, id).await?;
        return Ok(HttpResponse::Conflict().json(status(&upload)));
    }
    if received < size {
        return Ok(HttpResponse::Ok().json(UploadStatus {
            id,
            received,
            size,
            complete: false,
        }));
    }
    finish(&state, &media, &upload).await?;
    Ok(HttpResponse::Ok().json(UploadStatus {
        id,
        received: size,
        size,
        complete: true,
    }))
}

/// Starts an upload again from 0: staging file removed, `received` back to 0.
async fn reset(state: &AppState, media: &MediaState, id: Uuid) -> Result<(), ApiFailure> {
    let staging = media.staging.clone();
    web::block(move || staging.remove(id)).await??;
    let store = state.store.clone();
    blocking(move || store.reset_upload(id, chrono::Utc::now())).await
}

/// Verifies the whole staging file, writes it to the media store, marks it complete, then tells
/// the consoles.
async fn finish(
    state: &AppState,
    media: &MediaState,
    upload: &UploadRecord,
) -> Result<(), ApiFailure> {
    let id = upload.id;
    let manifest = &upload.manifest;
    let size = manifest.size_bytes();
    let staging = media.staging.clone();
    let (len, sha256) = web::block(move || staging.digest(id, size)).await??;
    if len != size || sha256 != manifest.sha256() {
        reset(state, media, id).await?;
        tracing::warn!(media_id = %id, device_id = %upload.device, len, %sha256,
            expected = manifest.sha256(), "uploaded file does not match its manifest; upload reset");
        return Err(ApiFailure::Unprocessable(format!(
            "the uploaded file ({len} bytes, SHA-256 {sha256}) does not match its manifest \
             ({size} bytes, SHA-256 {}); nothing was stored and the upload starts again from 0",
            manifest.sha256()
        )));
    }
    let (key, event_ids) = match manifest {
        MediaManifest::Clip(c) => (clip_key(&c.device, c.clip_id), c.event_ids.clone()),
        MediaManifest::Snapshot(s) => (
            snapshot_key(&s.device, s.snapshot_id),
            s.event_id.into_iter().collect(),
        ),
    };
    // A clip an admin deleted meanwhile is not brought back: the upload completes without a file.
    let deleted = match manifest {
        MediaManifest::Clip(_) => {
            let store = state.store.clone();
            blocking(move || store.get_clip(id))
                .await?
                .is_some_and(|c| c.deleted)
        }
        MediaManifest::Snapshot(_) => false,
    };
    if !deleted {
        media.media.put_file(&key, &media.staging.path(id)).await?;
    }
    let store = state.store.clone();
    let newly = blocking(move || store.complete_upload(id, chrono::Utc::now())).await?;
    let staging = media.staging.clone();
    if let Err(e) = web::block(move || staging.remove(id)).await? {
        tracing::warn!(media_id = %id, error = %e, "cannot remove a finished staging file");
    }
    if newly && !deleted {
        tracing::info!(media_id = %id, device_id = %upload.device, kind = manifest.kind(), %key,
            "media stored");
        state
            .hub
            .do_send(Broadcast(vec![StreamFrame::MediaReady(MediaReady {
                kind: manifest.kind().to_owned(),
                id,
                camera: upload.device.clone(),
                event_ids,
            })]));
    }
    Ok(())
}
