//! The cloud's HTTP API, used to drain a large outbox backlog in bulk (`POST /api/events`).
//!
//! - [`client`]: the blocking HTTP client (ureq, gzip body, bearer token, timeouts, rustls with
//!   aws-lc-rs and the platform's root certificates for `https://`).
//! - [`worker`]: the thread that runs one request at a time off the actix system thread and hands
//!   the outcome back.
//! - [`reachability`]: the pure "did the API answer" tracker behind the `api` readiness component.
//!
//! The bookkeeping (which events go by HTTP) is in [`crate::outbox::state`].

pub mod client;
pub mod media;
pub mod reachability;
pub mod worker;

pub use client::{AckedSeqError, ApiClient, BulkOutcome};
pub use media::UploadError;
pub use reachability::{ApiStatus, Reachability};
pub use worker::{BulkRequest, BulkWorker};
