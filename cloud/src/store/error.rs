//! [`StoreError`]: what went wrong in the store, classified so callers know whether to retry.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// An error from the store. Only [`StoreError::Unavailable`] is worth retrying as is.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or dropped the connection (it is down or restarting).
    /// Callers retry later; the ingest holds its MQTT acks until a commit succeeds.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The request was wrong (a bad cursor, a limit out of range, a value out of range).
    #[error("{0}")]
    Invalid(String),
    /// The thing already exists (a user, a provisioned device, a token).
    #[error("{0}")]
    Conflict(String),
    /// The thing to change does not exist (a user).
    #[error("{0}")]
    NotFound(String),
    /// A bug or a database in an unexpected state (a row that does not decode, a failed migration).
    #[error("internal store error: {0}")]
    Internal(String),
}

impl StoreError {
    /// True when the database could not be reached: the same call may succeed later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> StoreError {
        match e {
            DieselError::DatabaseError(kind, info) => {
                let message = info.message().to_owned();
                match kind {
                    DatabaseErrorKind::UniqueViolation => StoreError::Conflict(message),
                    DatabaseErrorKind::ClosedConnection
                    | DatabaseErrorKind::UnableToSendCommand => StoreError::Unavailable(message),
                    _ if is_transient(&message) => StoreError::Unavailable(message),
                    _ => StoreError::Internal(message),
                }
            }
            DieselError::BrokenTransactionManager => StoreError::Unavailable(
                "the connection broke in the middle of a transaction".to_owned(),
            ),
            other => StoreError::Internal(other.to_string()),
        }
    }
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(e: diesel::r2d2::PoolError) -> StoreError {
        StoreError::Unavailable(format!("no database connection could be had: {e}"))
    }
}

/// Messages of errors that mean "the server went away or is busy", not "the query was wrong":
/// PostgreSQL shutting down or restarting, and SQLite still locked after its busy timeout.
fn is_transient(message: &str) -> bool {
    const TRANSIENT: [&str; 6] = [
        "terminating connection",
        "server closed the connection",
        "the database system is shutting down",
        "the database system is starting up",
        "connection to server",
        "database is locked",
    ];
    TRANSIENT.iter().any(|t| message.contains(t))
}

/// A row the store wrote no longer decodes: the database holds something this build cannot read.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("stored {what} does not decode: {detail}"))
}
