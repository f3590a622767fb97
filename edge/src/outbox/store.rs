//! The outbox's sled database: events keyed by `seq`, plus the next `seq` and the confirmed `seq`.
//!
//! Layout (one tree, so that a batch of events and the meta keys change atomically):
//! `e/<seq as u64 big-endian>` → the event envelope as JSON; `m/next_seq` and `m/confirmed_seq` → u64
//! big-endian. Events are contiguous: every `seq` in `confirmed+1 .. next_seq` is stored.
//!
//! Performance contract: [`Store::append`] and [`Store::confirm`] do not flush; [`Store::flush`] blocks
//! until sled has written (one flush per group commit) and must run off the actix system thread.
//! Reads ([`Store::get`]) come from sled's page cache and are cheap.

use std::path::{Path, PathBuf};

use protocol::EventEnvelope;

const EVENT_PREFIX: &[u8] = b"e/";
const NEXT_SEQ: &[u8] = b"m/next_seq";
const CONFIRMED_SEQ: &[u8] = b"m/confirmed_seq";

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the outbox at {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    /// Kept without `#[source]` so that the 503 message carries the reason once.
    #[error("outbox storage failed: {0}")]
    Sled(sled::Error),
    #[error("cannot start the outbox writer thread: {0}")]
    Thread(std::io::Error),
    #[error("stored event {seq} is unreadable: {reason}")]
    Corrupt { seq: u64, reason: String },
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Sled(e)
    }
}

/// What a reopened store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub next_seq: u64,
    pub confirmed_seq: u64,
    /// Stored, unconfirmed events, ascending.
    pub pending: Vec<u64>,
}

/// A handle on the outbox database; cheap to clone (sled's `Db` is shared).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
}

fn event_key(seq: u64) -> [u8; 10] {
    let mut key = [0u8; 10];
    key[..2].copy_from_slice(EVENT_PREFIX);
    key[2..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn seq_of(key: &[u8]) -> Option<u64> {
    key.strip_prefix(EVENT_PREFIX)?
        .try_into()
        .ok()
        .map(u64::from_be_bytes)
}

fn read_u64(db: &sled::Db, key: &[u8]) -> Result<u64, StoreError> {
    Ok(db
        .get(key)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0))
}

impl Store {
    /// Opens (or creates) the outbox in `dir` and reports what it holds. Blocking.
    pub fn open(dir: &Path) -> Result<(Store, Loaded), StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .open()
            .map_err(|source| StoreError::Open {
                path: dir.to_owned(),
                source,
            })?;
        let store = Store { db };
        let loaded = store.load()?;
        Ok((store, loaded))
    }

    /// Reads the meta keys and the stored seqs.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let confirmed_seq = read_u64(&self.db, CONFIRMED_SEQ)?;
        let mut pending = Vec::new();
        for item in self.db.scan_prefix(EVENT_PREFIX).keys() {
            if let Some(seq) = seq_of(&item?) {
                if seq > confirmed_seq {
                    pending.push(seq);
                }
            }
        }
        let last = pending.last().copied().unwrap_or(0).max(confirmed_seq);
        let next_seq = read_u64(&self.db, NEXT_SEQ)?.max(last + 1);
        Ok(Loaded {
            next_seq,
            confirmed_seq,
            pending,
        })
    }

    /// Inserts `events` and records `next_seq`, atomically. Not durable until [`Store::flush`].
    pub fn append(&self, events: &[EventEnvelope], next_seq: u64) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for e in events {
            batch.insert(&event_key(e.seq), e.to_json());
        }
        batch.insert(NEXT_SEQ, &next_seq.to_be_bytes());
        self.db.apply_batch(batch)?;
        Ok(())
    }

    /// Removes `seqs` and restores `next_seq` (undoing an append whose flush failed).
    pub fn undo_append(&self, seqs: &[u64], next_seq: u64) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for seq in seqs {
            batch.remove(&event_key(*seq));
        }
        batch.insert(NEXT_SEQ, &next_seq.to_be_bytes());
        self.db.apply_batch(batch)?;
        Ok(())
    }

    /// Deletes every event up to `acked_seq` and records it as confirmed (with `next_seq`), atomically.
    /// Returns how many events were deleted.
    pub fn confirm(&self, acked_seq: u64, next_seq: u64) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut removed = 0;
        for key in self.db.range(event_key(0)..=event_key(acked_seq)).keys() {
            batch.remove(key?);
            removed += 1;
        }
        batch.insert(CONFIRMED_SEQ, &acked_seq.to_be_bytes());
        batch.insert(NEXT_SEQ, &next_seq.to_be_bytes());
        self.db.apply_batch(batch)?;
        Ok(removed)
    }

    /// Makes everything written so far durable. Blocking.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// One stored event, `None` when it is not (or no longer) stored.
    pub fn get(&self, seq: u64) -> Result<Option<EventEnvelope>, StoreError> {
        let Some(bytes) = self.db.get(event_key(seq))? else {
            return Ok(None);
        };
        EventEnvelope::from_json(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                seq,
                reason: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests;
