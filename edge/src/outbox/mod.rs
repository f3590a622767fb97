//! The outbox: every event is durable here first and stays until the cloud confirms its commit.
//!
//! - [`store`]: the sled database (events by `seq`, next and confirmed `seq`), encrypted at rest.
//! - [`seal`]: the record cipher (XChaCha20-Poly1305, random nonce, the record key as associated
//!   data); [`key`]: the key file (load with its checks, `keygen`).
//! - [`writer`]: the single writer thread (seq assignment, group commit).
//! - [`state`]: the pure bookkeeping core (window, resends, confirmations, refused acks).
//! - [`resume`]: a new outbox continues above the `acked_seq` the cloud holds for the device.
//! - [`actor`]: the supervised actor that ties them to the sensors and the uplink.

pub mod actor;
pub mod key;
pub mod resume;
pub mod seal;
pub mod state;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;
pub mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use actor::{Append, OutboxActor};
pub use key::{KeyError, OutboxKey};
pub use state::{AckSource, OutboxPolicy, OutboxState, RefusedAck};
pub use store::{Loaded, Store, StoreError};
pub use writer::{AppendRequest, WhenFull, WriterConfig, WriterEvent, WriterHandle};

/// Why an activation was not stored (the HTTP layer answers 503 with this message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboxError {
    #[error("the outbox is full: {limit} events await the cloud's confirmation; it drains when the uplink is back")]
    Full { limit: u64 },
    #[error("the outbox is busy: {0} writes are already waiting; retry shortly")]
    Busy(usize),
    #[error("the outbox could not store the event: {0}")]
    Storage(String),
    #[error("the outbox is closed (shutting down or restarting)")]
    Closed,
}

/// The number of stored, unconfirmed events, shared with the uplink (heartbeat) and `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct QueueDepth(Arc<AtomicU64>);

impl QueueDepth {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, depth: u64) {
        self.0.store(depth, Ordering::Relaxed);
    }
}

/// How many events the outbox's bounds ever dropped (persisted in the store; each drop is also
/// reported to the cloud by a gap record); shown in `/readyz` and the device status.
#[derive(Debug, Clone, Default)]
pub struct DroppedCount(Arc<AtomicU64>);

impl DroppedCount {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, total: u64) {
        self.0.store(total, Ordering::Relaxed);
    }
}

/// How many cloud acks over MQTT the outbox refused since start because they confirmed seqs it
/// never issued (a forged or stale `system/{device}/ack`); shown in `/readyz` as `refused_acks` and
/// in the device status.
#[derive(Debug, Clone, Default)]
pub struct RefusedAckCount(Arc<AtomicU64>);

impl RefusedAckCount {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts one more refused ack; returns the new total.
    pub fn add_one(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// How many activations the outbox refused (full, busy, storage failure, closed) since start;
/// shown in `/readyz` as `refused_events`.
#[derive(Debug, Clone, Default)]
pub struct RefusedCount(Arc<AtomicU64>);

impl RefusedCount {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts one more refusal; returns the new total.
    pub fn add_one(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}
