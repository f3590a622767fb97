//! The outbox's sled database, encrypted at rest: events keyed by `seq`, plus the next `seq`, the
//! confirmed `seq` and a key-check record.
//!
//! Layout (one tree, so that a batch of events and the meta keys change atomically):
//! `e/<seq as u64 big-endian>` → the event envelope as JSON, sealed ([`super::seal`]: a fresh nonce
//! per record, the record's key as associated data); `m/next_seq` and `m/confirmed_seq` → u64
//! big-endian (plain: counters, no event data); `m/key_check` → a known text sealed with the key,
//! written when the outbox is created and verified at every open, so a wrong key is refused at start
//! rather than at the first read. `g/<first seq>` → a [`GapRecord`] (sealed like an event): events
//! dropped by the outbox's bounds, kept until the cloud confirms past its `last_seq`;
//! `m/dropped_total` → how many events the bounds ever dropped (plain u64).
//!
//! Invariant: every `seq` in `confirmed+1 .. next_seq` is either stored as an event or covered by a
//! stored gap record, and the gap records cover the lowest of those seqs (the oldest go first).
//!
//! Storage failures: after an IO error (a full disk) sled refuses every later write until it is
//! reopened (reads still work). [`Store::recover`] reopens it in place once the disk has room (the
//! handle is shared, so every clone sees the new database) and discards what a refused append may
//! have left behind.
//!
//! Performance contract: [`Store::append`] and [`Store::confirm`] do not flush; [`Store::flush`] blocks
//! until sled has written (one flush per group commit) and must run off the actix system thread.
//! Reads ([`Store::get`]) come from sled's page cache plus one decryption and are cheap.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use protocol::{EventEnvelope, GapRecord};

use super::key::OutboxKey;
use super::seal::{SealError, Sealer};

const EVENT_PREFIX: &[u8] = b"e/";
const NEXT_SEQ: &[u8] = b"m/next_seq";
const CONFIRMED_SEQ: &[u8] = b"m/confirmed_seq";
const KEY_CHECK: &[u8] = b"m/key_check";
const GAP_PREFIX: &[u8] = b"g/";
/// sled 0.34 keeps its whole log in this one file of the directory.
const SLED_DATA_FILE: &str = "db";
const DROPPED_TOTAL: &[u8] = b"m/dropped_total";
const KEY_CHECK_TEXT: &[u8] = b"vigie-edge outbox key check v1";
/// sled needs a fresh segment (512 KiB) to reopen: below this much free space, [`Store::recover`]
/// keeps the failed handle (reads still work on it) instead of closing it for an open that fails.
const REOPEN_MIN_FREE: u64 = 1024 * 1024;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the outbox at {path} is in use by another process (another vigie-edge on the same data \
         directory?)"
    )]
    Locked { path: PathBuf },
    #[error("cannot open the outbox at {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    /// Kept without `#[source]` so that the 503 message carries the reason once.
    #[error("outbox storage failed: {0}")]
    Sled(sled::Error),
    #[error("no space left on the disk holding the outbox ({path}): new events are refused until space is freed")]
    DiskFull { path: PathBuf },
    #[error("the outbox at {path} is unavailable after a storage failure ({reason}); retrying at the next write")]
    Unavailable { path: PathBuf, reason: String },
    #[error("cannot start the outbox writer thread: {0}")]
    Thread(std::io::Error),
    #[error("stored event {seq} is unreadable: {reason}")]
    Corrupt { seq: u64, reason: String },
    #[error(
        "stored event {seq} failed authentication ({source}): the record was altered or corrupted \
         on disk; it cannot be sent"
    )]
    Tampered { seq: u64, source: SealError },
    #[error(
        "the outbox key does not open the outbox at {path}: it was created with another key. \
         Use the key file it was created with; if that key is lost, its unsent events are \
         unrecoverable: move {path} aside to start an empty outbox"
    )]
    WrongKey { path: PathBuf },
    #[error(
        "the outbox at {path} holds {count} unencrypted events written by an older vigie-edge; \
         let that version send them (queue_depth 0 in /readyz), or move {path} aside, then start again"
    )]
    Unencrypted { path: PathBuf, count: usize },
    #[error("cannot encrypt an event: {0}")]
    Seal(SealError),
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Sled(e)
    }
}

impl StoreError {
    /// True for a full disk (or quota), whatever layer reported it.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::DiskFull { .. } => true,
            StoreError::Sled(sled::Error::Io(e))
            | StoreError::Open {
                source: sled::Error::Io(e),
                ..
            } => {
                e.kind() == std::io::ErrorKind::StorageFull
                    || e.kind() == std::io::ErrorKind::QuotaExceeded
                    || e.to_string().contains("No space left")
            }
            _ => false,
        }
    }

    /// Names the directory when the disk is full.
    fn at(self, dir: &Path) -> StoreError {
        if self.is_disk_full() {
            StoreError::DiskFull {
                path: dir.to_owned(),
            }
        } else {
            self
        }
    }
}

/// What a reopened store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub next_seq: u64,
    pub confirmed_seq: u64,
    /// Stored, unconfirmed events, ascending.
    pub pending: Vec<u64>,
    /// Gap records the cloud has not confirmed yet, ascending.
    pub gaps: Vec<GapRecord>,
    /// Events the bounds ever dropped.
    pub dropped_total: u64,
}

/// Events dropped by the outbox's bounds in the same atomic write as an append (or alone): the
/// oldest unconfirmed events `first..=last`, and the gap record that now covers them (new, or an
/// earlier one extended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropping {
    pub first: u64,
    pub last: u64,
    pub gap: GapRecord,
    /// The new total of dropped events.
    pub dropped_total: u64,
}

/// A handle on the outbox database; cheap to clone, and every clone sees a [`Store::recover`].
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    sealer: Sealer,
    /// `None` only between a failed reopen and the next successful one.
    db: RwLock<Option<sled::Db>>,
}

fn event_key(seq: u64) -> [u8; 10] {
    let mut key = [0u8; 10];
    key[..2].copy_from_slice(EVENT_PREFIX);
    key[2..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn gap_key(first_seq: u64) -> [u8; 10] {
    let mut key = [0u8; 10];
    key[..2].copy_from_slice(GAP_PREFIX);
    key[2..].copy_from_slice(&first_seq.to_be_bytes());
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

/// sled's refusal to open a directory another handle (or process) holds: it says so only in its
/// message.
fn is_locked(e: &sled::Error) -> bool {
    e.to_string().contains("could not acquire lock")
}

fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    // A sled handle dropped a moment ago in this process may still hold the file lock while its
    // background threads wind down (a reopen in place): retry "could not acquire lock" briefly.
    let mut attempt = 0;
    let opened = loop {
        match sled::Config::new().path(dir).open() {
            Err(e) if attempt < 40 && is_locked(&e) => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => break other,
        }
    };
    opened.map_err(|source| {
        if is_locked(&source) {
            return StoreError::Locked {
                path: dir.to_owned(),
            };
        }
        StoreError::Open {
            path: dir.to_owned(),
            source,
        }
        .at(dir)
    })
}

/// Verifies the key-check record, or writes it into a new (or emptied, older) outbox.
fn check_key(db: &sled::Db, dir: &Path, sealer: &Sealer) -> Result<(), StoreError> {
    if let Some(sealed) = db.get(KEY_CHECK)? {
        return match sealer.open(KEY_CHECK, &sealed) {
            Ok(text) if text.as_slice() == KEY_CHECK_TEXT => Ok(()),
            _ => Err(StoreError::WrongKey {
                path: dir.to_owned(),
            }),
        };
    }
    let count = db.scan_prefix(EVENT_PREFIX).count();
    if count > 0 {
        return Err(StoreError::Unencrypted {
            path: dir.to_owned(),
            count,
        });
    }
    let sealed = sealer
        .seal(KEY_CHECK, KEY_CHECK_TEXT)
        .map_err(StoreError::Seal)?;
    db.insert(KEY_CHECK, sealed)?;
    db.flush()?;
    Ok(())
}

impl Store {
    /// Opens (or creates) the outbox in `dir` with `key` and reports what it holds. Blocking.
    /// Refuses a key other than the one the outbox was created with.
    pub fn open(dir: &Path, key: &OutboxKey) -> Result<(Store, Loaded), StoreError> {
        let sealer = key.sealer();
        let db = open_db(dir)?;
        check_key(&db, dir, &sealer).map_err(|e| e.at(dir))?;
        let store = Store {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                sealer,
                db: RwLock::new(Some(db)),
            }),
        };
        let loaded = store.load()?;
        Ok((store, loaded))
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Runs `f` on the open database; storage errors name the directory when the disk is full.
    fn with_db<T>(
        &self,
        f: impl FnOnce(&sled::Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let guard = self.inner.db.read().unwrap_or_else(|e| e.into_inner());
        let Some(db) = guard.as_ref() else {
            return Err(StoreError::Unavailable {
                path: self.inner.dir.clone(),
                reason: "the database could not be reopened".into(),
            });
        };
        f(db).map_err(|e| e.at(&self.inner.dir))
    }

    /// Reads the meta keys and the stored seqs.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        self.with_db(|db| {
            let confirmed_seq = read_u64(db, CONFIRMED_SEQ)?;
            let mut pending = Vec::new();
            for item in db.scan_prefix(EVENT_PREFIX).keys() {
                if let Some(seq) = seq_of(&item?) {
                    if seq > confirmed_seq {
                        pending.push(seq);
                    }
                }
            }
            let mut gaps = Vec::new();
            for item in db.scan_prefix(GAP_PREFIX) {
                let (key, sealed) = item?;
                let gap = self.open_gap(&key, &sealed)?;
                if gap.last_seq > confirmed_seq {
                    gaps.push(gap);
                }
            }
            let last = pending
                .last()
                .copied()
                .unwrap_or(0)
                .max(confirmed_seq)
                .max(gaps.last().map_or(0, |g| g.last_seq));
            let next_seq = read_u64(db, NEXT_SEQ)?.max(last + 1);
            Ok(Loaded {
                next_seq,
                confirmed_seq,
                pending,
                gaps,
                dropped_total: read_u64(db, DROPPED_TOTAL)?,
            })
        })
    }

    fn open_gap(&self, key: &[u8], sealed: &[u8]) -> Result<GapRecord, StoreError> {
        let seq = key
            .strip_prefix(GAP_PREFIX)
            .and_then(|k| <[u8; 8]>::try_from(k).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        let json = self
            .inner
            .sealer
            .open(key, sealed)
            .map_err(|source| StoreError::Tampered { seq, source })?;
        GapRecord::from_json(&json).map_err(|e| StoreError::Corrupt {
            seq,
            reason: format!("gap record: {e}"),
        })
    }

    /// Deletes the events `dropping.first..=dropping.last` and writes the gap record covering them,
    /// with `events` and `next_seq`, in one atomic batch. Not durable until [`Store::flush`].
    pub fn append_dropping(
        &self,
        events: &[EventEnvelope],
        next_seq: u64,
        dropping: &Dropping,
    ) -> Result<(), StoreError> {
        let mut batch = self.append_batch(events, next_seq)?;
        for seq in dropping.first..=dropping.last {
            batch.remove(&event_key(seq));
        }
        let key = gap_key(dropping.gap.first_seq);
        let sealed = self
            .inner
            .sealer
            .seal(&key, &dropping.gap.to_json())
            .map_err(StoreError::Seal)?;
        batch.insert(&key, sealed);
        batch.insert(DROPPED_TOTAL, &dropping.dropped_total.to_be_bytes());
        self.with_db(|db| Ok(db.apply_batch(batch)?))
    }

    /// Inserts `events` (sealed) and records `next_seq`, atomically. Not durable until
    /// [`Store::flush`].
    pub fn append(&self, events: &[EventEnvelope], next_seq: u64) -> Result<(), StoreError> {
        let batch = self.append_batch(events, next_seq)?;
        self.with_db(|db| Ok(db.apply_batch(batch)?))
    }

    fn append_batch(
        &self,
        events: &[EventEnvelope],
        next_seq: u64,
    ) -> Result<sled::Batch, StoreError> {
        let mut batch = sled::Batch::default();
        for e in events {
            let key = event_key(e.seq);
            let sealed = self
                .inner
                .sealer
                .seal(&key, &e.to_json())
                .map_err(StoreError::Seal)?;
            batch.insert(&key, sealed);
        }
        batch.insert(NEXT_SEQ, &next_seq.to_be_bytes());
        Ok(batch)
    }

    /// Removes `seqs` and restores `next_seq` (undoing an append whose flush failed).
    pub fn undo_append(&self, seqs: &[u64], next_seq: u64) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for seq in seqs {
            batch.remove(&event_key(*seq));
        }
        batch.insert(NEXT_SEQ, &next_seq.to_be_bytes());
        self.with_db(|db| Ok(db.apply_batch(batch)?))
    }

    /// Deletes every event up to `acked_seq`, and the gap records it covers, and records it as
    /// confirmed (with `next_seq`), atomically.
    /// Returns how many events were deleted.
    pub fn confirm(&self, acked_seq: u64, next_seq: u64) -> Result<usize, StoreError> {
        self.with_db(|db| {
            let mut batch = sled::Batch::default();
            let mut removed = 0;
            for key in db.range(event_key(0)..=event_key(acked_seq)).keys() {
                batch.remove(key?);
                removed += 1;
            }
            // Gap records the cloud confirmed past (an extended one may still reach beyond).
            for item in db.range(gap_key(0)..=gap_key(acked_seq)) {
                let (key, sealed) = item?;
                let covered = self
                    .open_gap(&key, &sealed)
                    .map_or(true, |gap| gap.last_seq <= acked_seq);
                if covered {
                    batch.remove(key);
                }
            }
            batch.insert(CONFIRMED_SEQ, &acked_seq.to_be_bytes());
            batch.insert(NEXT_SEQ, &next_seq.to_be_bytes());
            db.apply_batch(batch)?;
            Ok(removed)
        })
    }

    /// Makes everything written so far durable, power cuts included. Blocking.
    ///
    /// sled's own flush ends with `sync_file_range` on Linux: the data reaches the device, but
    /// neither a grown file's size nor the device's volatile write cache is made durable, so a
    /// power cut could still lose what it returned for. An `fdatasync` of sled's data file after
    /// it closes that gap (one per group commit).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.with_db(|db| {
            db.flush()?;
            Ok(())
        })?;
        let data = self.inner.dir.join(SLED_DATA_FILE);
        std::fs::File::open(&data)
            .and_then(|f| f.sync_data())
            .map_err(|e| StoreError::Sled(sled::Error::Io(e)).at(&self.inner.dir))
    }

    /// One stored event, `None` when it is not (or no longer) stored. A record that fails
    /// authentication is [`StoreError::Tampered`], naming its `seq`.
    pub fn get(&self, seq: u64) -> Result<Option<EventEnvelope>, StoreError> {
        let key = event_key(seq);
        let Some(sealed) = self.with_db(|db| Ok(db.get(key)?))? else {
            return Ok(None);
        };
        let json = self
            .inner
            .sealer
            .open(&key, &sealed)
            .map_err(|source| StoreError::Tampered { seq, source })?;
        EventEnvelope::from_json(&json)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                seq,
                reason: e.to_string(),
            })
    }

    /// Reopens the database after a storage failure (sled refuses every write after an IO error
    /// until reopened; refused at once, keeping the old handle for reads, while the disk has less than
    /// 1 MiB free), then makes it match the writer: no event at or after `next_seq` (a refused
    /// append may have reached the disk), `m/next_seq = next_seq`. Blocking; the writer thread calls
    /// it. Writes nothing when nothing differs.
    pub fn recover(&self, next_seq: u64) -> Result<(), StoreError> {
        let dir = &self.inner.dir;
        if fs2::available_space(dir).is_ok_and(|free| free < REOPEN_MIN_FREE) {
            return Err(StoreError::DiskFull {
                path: dir.to_owned(),
            });
        }
        let mut slot = self.inner.db.write().unwrap_or_else(|e| e.into_inner());
        // sled holds a file lock until its last handle is gone: close before reopening.
        drop(slot.take());
        let db = open_db(dir)?;
        check_key(&db, dir, &self.inner.sealer).map_err(|e| e.at(dir))?;
        let stale: Vec<sled::IVec> = db
            .range(event_key(next_seq)..=event_key(u64::MAX))
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::from(e).at(dir))?;
        let stored_next = read_u64(&db, NEXT_SEQ).map_err(|e| e.at(dir))?;
        if !stale.is_empty() || stored_next != next_seq {
            let mut batch = sled::Batch::default();
            for key in &stale {
                batch.remove(key);
            }
            batch.insert(NEXT_SEQ, &next_seq.to_be_bytes());
            let written = db.apply_batch(batch).and_then(|()| db.flush().map(drop));
            if let Err(e) = written {
                // Keep the (now failed) handle: the next recovery closes it first.
                *slot = Some(db);
                return Err(StoreError::from(e).at(dir));
            }
            tracing::info!(
                discarded = stale.len(),
                next_seq,
                "outbox reopened; refused events discarded"
            );
        }
        *slot = Some(db);
        Ok(())
    }

    /// The raw sealed bytes of an event (tests of tampering and of the on-disk format).
    #[doc(hidden)]
    pub fn raw_event(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_db(|db| Ok(db.get(event_key(seq))?.map(|v| v.to_vec())))
    }

    /// Overwrites the raw bytes of an event (tests of tampering).
    #[doc(hidden)]
    pub fn put_raw_event(&self, seq: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.with_db(|db| {
            db.insert(event_key(seq), bytes)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
