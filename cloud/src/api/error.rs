//! The one place that maps an API failure to an HTTP status and a JSON body `{"error": ...}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use protocol::api::ApiError;

use crate::store::StoreError;

/// Everything an API handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// 409: the request conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// 422: well formed, but its content is wrong (an upload that does not match its manifest).
    #[error("{0}")]
    Unprocessable(String),
    /// 416 with `Content-Range: bytes */size`.
    #[error("{message}")]
    RangeNotSatisfiable { message: String, size: u64 },
    #[error("request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// 415: a body in an encoding the API does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429 with `Retry-After`.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_s: u64 },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ResponseError for ApiFailure {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiFailure::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiFailure::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiFailure::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiFailure::NotFound(_) => StatusCode::NOT_FOUND,
            ApiFailure::Conflict(_) => StatusCode::CONFLICT,
            ApiFailure::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiFailure::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiFailure::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiFailure::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiFailure::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiFailure::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiFailure::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // What went wrong inside stays in the log: a client gets a reference to quote.
        let message = match self {
            ApiFailure::Internal(detail) => {
                let reference = format!("{:08x}", rand::random::<u32>());
                tracing::error!(%detail, %reference, "internal API error");
                format!("internal error (reference {reference}); the cloud's log has the details")
            }
            other => other.to_string(),
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiFailure::Unauthorized(_)) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let ApiFailure::RangeNotSatisfiable { size, .. } = self {
            response.insert_header(("Content-Range", format!("bytes */{size}")));
        }
        if let ApiFailure::TooManyRequests { retry_after_s, .. } = self {
            response.insert_header(("Retry-After", retry_after_s.to_string()));
        }
        response.json(ApiError { error: message })
    }
}

impl From<StoreError> for ApiFailure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => ApiFailure::BadRequest(m),
            StoreError::Conflict(m) => ApiFailure::BadRequest(m),
            StoreError::NotFound(m) => ApiFailure::NotFound(m),
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "the database is unavailable");
                ApiFailure::Unavailable("the database is unavailable; try again shortly".into())
            }
            StoreError::Internal(m) => ApiFailure::Internal(m),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiFailure {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiFailure::Internal(e.to_string())
    }
}

/// Runs blocking store work off the async runtime.
pub async fn blocking<T, F>(f: F) -> Result<T, ApiFailure>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    Ok(actix_web::web::block(f).await??)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(failure: ApiFailure) -> String {
        let response = failure.error_response();
        let bytes = actix_web::body::to_bytes(response.into_body());
        let bytes = futures_util::FutureExt::now_or_never(bytes)
            .expect("a JSON body is ready at once")
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn an_internal_error_or_a_database_outage_shows_no_detail_to_the_client() {
        let internal = body(ApiFailure::from(StoreError::Internal(
            "relation \"events\" does not exist at 10.1.2.3".into(),
        )));
        assert!(internal.contains("reference"), "{internal}");
        assert!(
            !internal.contains("events") && !internal.contains("10.1.2.3"),
            "{internal}"
        );
        let outage = body(ApiFailure::from(StoreError::Unavailable(
            "connection to server at \"db.internal\" (10.1.2.3), port 5432 failed".into(),
        )));
        assert!(outage.contains("unavailable"), "{outage}");
        assert!(
            !outage.contains("db.internal") && !outage.contains("5432"),
            "{outage}"
        );
        let bad = body(ApiFailure::BadRequest("limit must be 1..=500".into()));
        assert!(
            bad.contains("limit must be 1..=500"),
            "the client's own mistakes are explained"
        );
    }
}
