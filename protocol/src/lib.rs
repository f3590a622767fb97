//! Vigie's wire format: every message that crosses a process boundary.
//!
//! This crate is the only one that knows how Vigie's messages look on the wire (MQTT payloads, topics,
//! HTTP bodies, WebSocket frames). It does no IO and depends on neither actix nor diesel: other crates
//! convert their own types to and from these at their boundaries.
//!
//! Forward compatibility: readers ignore fields they do not know, new fields arrive with
//! `#[serde(default)]`, and an unknown enum value (a new event kind, a new device state) is carried as
//! `Unknown` rather than failing the whole message.

pub mod api;
pub mod bundle;
pub mod event;
pub mod ids;
pub mod media;
pub mod schema;
pub mod status;
pub mod time;
pub mod topic;

pub use event::{EventEnvelope, EventKind, MAX_CLOCK_OFFSET_MS, MAX_SEQ, SCHEMA_VERSION};
pub use ids::{DeviceId, IdError, SensorId};
pub use status::{DeviceAck, DeviceState, DeviceStatus, GapReason, GapRecord};
pub use topic::{Topic, TopicError, TopicPrefix};

/// An error decoding a message: says which field was wrong and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes were not JSON, or a field had the wrong type or value.
    #[error("invalid {what}: field `{field}`: {reason}")]
    Field {
        what: &'static str,
        field: String,
        reason: String,
    },
    /// The payload was larger than the protocol allows.
    #[error("invalid {what}: payload is {size} bytes, the limit is {limit}")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    /// The message was well formed but disagrees with the topic it came on.
    #[error("invalid {what}: {reason}")]
    Mismatch { what: &'static str, reason: String },
}

/// The largest MQTT payload any Vigie message may have (an event envelope is ~250 bytes).
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// Decodes `bytes` as JSON into `T`, naming the field that was wrong on failure.
pub fn decode_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::TooLarge {
            what,
            size: bytes.len(),
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." {
            "(root)".to_owned()
        } else {
            field
        };
        DecodeError::Field {
            what,
            field,
            reason: e.into_inner().to_string(),
        }
    })
}
