//! The media upload calls (`/api/media/{id}`, see `protocol::media`): the manifest, the status, and
//! one chunk at an offset. Blocking; run only on the media uploader's thread.

use protocol::media::{MediaManifest, UploadStatus, UPLOAD_OFFSET_HEADER};
use uuid::Uuid;

use super::ApiClient;

/// Why an upload call did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// No answer (connection refused, timeout): retried later.
    #[error("the API did not answer: {0}")]
    Unreachable(String),
    /// 409 on a chunk: the cloud holds another offset; resume from its `received`.
    #[error("the cloud expects offset {}", .0.received)]
    Offset(UploadStatus),
    /// 422: the whole file did not match its manifest's size or SHA-256; the cloud started over.
    #[error("the cloud refused the file: {0}")]
    Integrity(String),
    /// 409 on the manifest: the cloud knows this id with another manifest.
    #[error("the cloud knows this media id with another manifest: {0}")]
    Conflict(String),
    /// 401 or 403: the token is wrong or the device revoked.
    #[error("the cloud refused the device's token (HTTP {status}): {message}")]
    Unauthorized { status: u16, message: String },
    /// Any other answer.
    #[error("HTTP {status}: {message}")]
    Failed { status: u16, message: String },
}

impl ApiClient {
    fn media_url(&self, id: Uuid) -> String {
        format!("{}/api/media/{}", self.base, id.as_hyphenated())
    }

    /// `PUT /api/media/{id}`: announces what is about to be uploaded (idempotent).
    pub fn put_manifest(&self, manifest: &MediaManifest) -> Result<UploadStatus, UploadError> {
        let body = serde_json::to_vec(manifest).expect("a manifest serialises");
        let response = self
            .agent
            .put(&self.media_url(manifest.id()))
            .header("Authorization", &self.authorization)
            .header("Content-Type", "application/json")
            .send(&body[..]);
        self.answer(response, "PUT", |status, text| match status {
            409 => UploadError::Conflict(text),
            _ => failed(status, text),
        })
    }

    /// `GET /api/media/{id}`: where the upload stands.
    pub fn media_status(&self, id: Uuid) -> Result<UploadStatus, UploadError> {
        let response = self
            .agent
            .get(&self.media_url(id))
            .header("Authorization", &self.authorization)
            .call();
        self.answer(response, "GET", failed)
    }

    /// `PATCH /api/media/{id}`: `chunk` at `offset`.
    pub fn patch_chunk(
        &self,
        id: Uuid,
        offset: u64,
        chunk: &[u8],
    ) -> Result<UploadStatus, UploadError> {
        let response = self
            .agent
            .patch(&self.media_url(id))
            .header("Authorization", &self.authorization)
            .header("Content-Type", "application/offset+octet-stream")
            .header(UPLOAD_OFFSET_HEADER, offset.to_string())
            .send(chunk);
        self.answer(response, "PATCH", |status, text| match status {
            409 => match serde_json::from_str::<UploadStatus>(&text) {
                Ok(at) => UploadError::Offset(at),
                Err(_) => failed(status, text),
            },
            422 => UploadError::Integrity(text),
            _ => failed(status, text),
        })
    }

    fn answer(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        method: &str,
        refused: impl FnOnce(u16, String) -> UploadError,
    ) -> Result<UploadStatus, UploadError> {
        let mut response = response.map_err(|e| UploadError::Unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| UploadError::Unreachable(format!("{method}: reading the answer: {e}")))?;
        match status {
            200 | 201 => serde_json::from_str(&text).map_err(|e| UploadError::Failed {
                status,
                message: format!("{method}: unreadable answer: {e}"),
            }),
            401 | 403 => Err(UploadError::Unauthorized {
                status,
                message: short(&text),
            }),
            _ => Err(refused(status, text)),
        }
    }
}

fn failed(status: u16, text: String) -> UploadError {
    UploadError::Failed {
        status,
        message: short(&text),
    }
}

fn short(text: &str) -> String {
    text.chars().take(300).collect()
}
