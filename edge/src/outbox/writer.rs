//! The outbox writer: one dedicated thread that owns every write to the [`Store`], assigns `seq`s and
//! makes appends durable with group commit.
//!
//! Group commit: the thread takes one append, then every append already waiting (up to
//! [`MAX_BATCH`]), assigns their `seq`s, writes them in one atomic sled batch and flushes once; every
//! caller in the batch is answered after that single flush. If the write or the flush fails, the
//! whole batch is refused, its `seq`s are given back (no gap is ever left in a device's sequence) and
//! the next batch reuses them.
//!
//! Storage failures (a full disk): the batch is refused with the reason and nothing stored before is
//! touched. sled then refuses every write until it is reopened (reads still work, so stored events
//! are still sent): every later write first tries [`Store::recover`], which reopens the database
//! once the disk has room again; the first append after space returns succeeds without a restart. [`WriterEvent::StorageFailed`] and
//! [`WriterEvent::StorageRecovered`] tell the actor (readiness).
//!
//! Bounded: the request queue holds [`QUEUE_CAPACITY`] operations; when it is full an append is
//! refused at once with [`OutboxError::Busy`] (the HTTP layer answers 503).
//!
//! The outbox's bounds (`max_events`, and the age bound the actor asks for with
//! [`WriterHandle::drop_older_than`]): with [`WhenFull::DropOldest`] the oldest unsent events make
//! room, deleted in the same atomic write (and flush) as the append that needed the room, together
//! with a gap record (`first_seq..=last_seq`, when, why) that extends the previous one when they
//! touch; [`WriterEvent::Dropped`] tells the actor, which sends the record to the cloud. Nothing is
//! dropped silently. With [`WhenFull::RefuseNew`] appends beyond `max_events` are refused with
//! [`OutboxError::Full`] instead.
//!
//! Boot clock: each event carries the Linux `boot_id` and the milliseconds since boot at its commit
//! (within one group commit of its detection), so that an offset measured against the cloud later
//! in the same boot corrects its time even if the wall clock was stepped in between.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use protocol::{
    DeviceId, EventEnvelope, EventKind, GapReason, GapRecord, SensorId, SCHEMA_VERSION,
};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::store::{Dropping, Loaded, Store, StoreError};
use super::OutboxError;

/// Operations waiting for the writer, at most.
pub const QUEUE_CAPACITY: usize = 1024;
/// Appends made durable by one flush, at most.
pub const MAX_BATCH: usize = 256;

/// An activation to store.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub sensor: SensorId,
    pub kind: EventKind,
    pub occurred_at: DateTime<Utc>,
}

type AppendReply = oneshot::Sender<Result<EventEnvelope, OutboxError>>;

enum WriteOp {
    Append(AppendRequest, AppendReply),
    Confirm(u64),
    DropOlderThan(DateTime<Utc>),
    Close(oneshot::Sender<()>),
}

/// What the outbox does when it holds `max_events` unsent events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// The oldest unsent events make room; a gap record reports them to the cloud.
    DropOldest,
    /// New events are refused (503) until the cloud confirms some.
    RefuseNew,
}

/// Identity and limits the writer stamps on events.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub device: DeviceId,
    pub clock_synced: bool,
    pub max_events: u64,
    pub when_full: WhenFull,
}

/// Age-bound drops read at most this many events per request (the next request goes on).
const MAX_AGE_SCAN: u64 = 10_000;

/// What the writer reports, on its own thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriterEvent {
    /// A durable batch, in `seq` order, reported before its callers are answered.
    Stored(Vec<EventEnvelope>),
    /// A write or flush failed (the reason, e.g. a full disk); appends are refused until it clears.
    StorageFailed(String),
    /// An append succeeded after a failure: the store works again.
    StorageRecovered,
    /// The bounds dropped the unsent events up to `upto` (durably); `gap` is the record that
    /// covers them, new or extended. Reported before the batch that needed the room.
    Dropped {
        gap: GapRecord,
        upto: u64,
        count: u64,
    },
}

/// Called on the writer thread with every [`WriterEvent`].
pub type OnEvent = Box<dyn Fn(WriterEvent) + Send>;

/// The handle used to reach the writer thread; cheap to clone.
#[derive(Clone)]
pub struct WriterHandle {
    tx: SyncSender<WriteOp>,
}

impl WriterHandle {
    /// Queues an append; the receiver answers once the event is durable (or refused).
    pub fn append(
        &self,
        req: AppendRequest,
    ) -> Result<oneshot::Receiver<Result<EventEnvelope, OutboxError>>, OutboxError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(WriteOp::Append(req, reply))
            .map_err(|e| match e {
                TrySendError::Full(_) => OutboxError::Busy(QUEUE_CAPACITY),
                TrySendError::Disconnected(_) => OutboxError::Closed,
            })?;
        Ok(rx)
    }

    /// Deletes events up to `acked_seq` (not flushed: a lost confirmation only causes a resend).
    /// Never blocks: with the queue full the deletion is skipped and the next ack (or the retained
    /// ack after a restart) does it.
    pub fn confirm(&self, acked_seq: u64) {
        if self.tx.try_send(WriteOp::Confirm(acked_seq)).is_err() {
            tracing::warn!(
                acked_seq,
                "outbox writer busy; deleting confirmed events later"
            );
        }
    }

    /// Drops the unsent events that happened before `cutoff` (the age bound), oldest first, with
    /// a gap record. Never blocks: with the queue full it is skipped (the next check retries).
    pub fn drop_older_than(&self, cutoff: DateTime<Utc>) {
        let _ = self.tx.try_send(WriteOp::DropOlderThan(cutoff));
    }

    /// Flushes and stops the thread; the receiver answers when done.
    pub fn close(&self) -> oneshot::Receiver<()> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(WriteOp::Close(reply));
        rx
    }
}

/// Starts the writer thread over `store` as it was `loaded`.
pub fn spawn(
    store: Store,
    loaded: &Loaded,
    config: WriterConfig,
    on_event: OnEvent,
) -> std::io::Result<(WriterHandle, JoinHandle<()>)> {
    let (tx, rx) = sync_channel(QUEUE_CAPACITY);
    let writer = Writer {
        store,
        config,
        on_event,
        next_seq: loaded.next_seq,
        confirmed: loaded.confirmed_seq,
        last_gap: loaded.gaps.last().cloned(),
        dropped_total: loaded.dropped_total,
        boot_id: crate::clock_sync::boot_id(),
        failed: None,
        degraded: false,
    };
    let span = tracing::Span::current();
    let thread = std::thread::Builder::new()
        .name("outbox-writer".into())
        .spawn(move || span.in_scope(|| writer.run(rx)))?;
    Ok((WriterHandle { tx }, thread))
}

struct Writer {
    store: Store,
    config: WriterConfig,
    on_event: OnEvent,
    next_seq: u64,
    confirmed: u64,
    /// The newest gap record the cloud has not confirmed past: the next drop extends it when they
    /// touch.
    last_gap: Option<GapRecord>,
    dropped_total: u64,
    /// This boot's id (`None` where the system does not tell).
    boot_id: Option<String>,
    /// The last storage failure, until the store is reopened.
    failed: Option<String>,
    /// A write failed and no append has succeeded since.
    degraded: bool,
}

impl Writer {
    fn run(mut self, rx: Receiver<WriteOp>) {
        let mut deferred: Option<WriteOp> = None;
        loop {
            let op = match deferred.take() {
                Some(op) => op,
                None => match rx.recv() {
                    Ok(op) => op,
                    Err(_) => break,
                },
            };
            match op {
                WriteOp::Append(req, reply) => {
                    let mut batch = vec![(req, reply)];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(WriteOp::Append(req, reply)) => batch.push((req, reply)),
                            Ok(other) => {
                                deferred = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit(batch);
                }
                WriteOp::Confirm(acked) => self.confirm(acked),
                WriteOp::DropOlderThan(cutoff) => self.drop_older_than(cutoff),
                WriteOp::Close(reply) => {
                    if let Err(e) = self.store.flush() {
                        tracing::error!(error = %e, "outbox flush at shutdown failed");
                    }
                    let _ = reply.send(());
                    break;
                }
            }
        }
        tracing::debug!("outbox writer stopped");
    }

    /// Marks the store failed: the next write reopens it first.
    fn storage_failed(&mut self, reason: String) {
        (self.on_event)(WriterEvent::StorageFailed(reason.clone()));
        self.degraded = true;
        self.failed = Some(reason);
    }

    /// When the store is failed, tries to reopen it; true when it works.
    fn recover(&mut self) -> bool {
        let Some(reason) = self.failed.clone() else {
            return true;
        };
        let result = catch_unwind(AssertUnwindSafe(|| self.store.recover(self.next_seq)));
        match result {
            Ok(Ok(())) => {
                tracing::info!(next_seq = self.next_seq, previous = %reason, "outbox store reopened");
                self.failed = None;
                self.reload_gaps();
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "outbox storage still failing");
                let reason = e.to_string();
                if self.failed.as_deref() != Some(reason.as_str()) {
                    (self.on_event)(WriterEvent::StorageFailed(reason.clone()));
                }
                self.failed = Some(reason);
                false
            }
            Err(_) => {
                self.failed = Some("the storage layer panicked while reopening".into());
                false
            }
        }
    }

    fn commit(&mut self, batch: Vec<(AppendRequest, AppendReply)>) {
        if !self.recover() {
            let reason = self.failed.clone().unwrap_or_default();
            tracing::error!(%reason, count = batch.len(), "outbox append refused: storage still failing");
            for (_, reply) in batch {
                let _ = reply.send(Err(OutboxError::Storage(reason.clone())));
            }
            return;
        }
        let first_seq = self.next_seq;
        let depth = (first_seq - 1).saturating_sub(self.floor());
        let room = match self.config.when_full {
            WhenFull::RefuseNew => self.config.max_events.saturating_sub(depth) as usize,
            WhenFull::DropOldest => self.config.max_events.min(batch.len() as u64) as usize,
        };
        let excess = (depth + room as u64).saturating_sub(self.config.max_events);
        let dropping = match excess {
            0 => None,
            n => Some(self.plan_drop(n.min(depth), GapReason::MaxEvents)),
        };
        let boot = self.boot_id.clone().zip(crate::clock_sync::boot_ms());
        let mut accepted = Vec::new();
        let mut replies = Vec::new();
        for (i, (req, reply)) in batch.into_iter().enumerate() {
            if i >= room {
                let _ = reply.send(Err(OutboxError::Full {
                    limit: self.config.max_events,
                }));
                continue;
            }
            accepted.push(EventEnvelope {
                schema_version: SCHEMA_VERSION,
                id: Uuid::now_v7(),
                device: self.config.device.clone(),
                seq: first_seq + accepted.len() as u64,
                sensor: req.sensor,
                kind: req.kind,
                occurred_at: protocol::time::to_millis(req.occurred_at),
                clock_synced: self.config.clock_synced,
                boot_id: boot.as_ref().map(|(id, _)| id.clone()),
                boot_ms: boot.as_ref().map(|(_, ms)| *ms),
                clock_offset_ms: None,
            });
            replies.push(reply);
        }
        if accepted.is_empty() {
            return;
        }
        let next_seq = first_seq + accepted.len() as u64;
        let result = catch_unwind(AssertUnwindSafe(|| {
            match &dropping {
                Some(d) => self.store.append_dropping(&accepted, next_seq, d)?,
                None => self.store.append(&accepted, next_seq)?,
            }
            self.store.flush()
        }));
        // A sealing failure (the random generator) leaves sled healthy; anything else may not.
        let failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some((e.to_string(), !matches!(e, StoreError::Seal(_)))),
            Err(_) => Some(("the storage layer panicked".to_owned(), true)),
        };
        if let Some((reason, storage)) = failure {
            tracing::error!(%reason, count = accepted.len(), first_seq, "outbox append failed");
            let seqs: Vec<u64> = accepted.iter().map(|e| e.seq).collect();
            let undone = catch_unwind(AssertUnwindSafe(|| {
                self.store.undo_append(&seqs, first_seq)
            }));
            for reply in replies {
                let _ = reply.send(Err(OutboxError::Storage(reason.clone())));
            }
            if storage || !matches!(undone, Ok(Ok(()))) {
                // sled refuses every write after an IO error: reopen before the next one (which
                // also discards whatever of this batch reached the disk).
                self.storage_failed(reason);
            }
            return;
        }
        self.next_seq = next_seq;
        if let Some(d) = dropping {
            self.dropped(d);
        }
        for e in &accepted {
            tracing::info!(event_id = %e.id, seq = e.seq, sensor = %e.sensor, kind = %e.kind, "event stored");
        }
        if std::mem::take(&mut self.degraded) {
            tracing::info!(first_seq, "outbox storage works again");
            (self.on_event)(WriterEvent::StorageRecovered);
        }
        (self.on_event)(WriterEvent::Stored(accepted.clone()));
        for (reply, e) in replies.into_iter().zip(accepted) {
            let _ = reply.send(Ok(e));
        }
    }

    /// Every seq up to here is confirmed or dropped: the oldest unsent event is the next one.
    fn floor(&self) -> u64 {
        self.last_gap
            .as_ref()
            .map_or(self.confirmed, |g| g.last_seq.max(self.confirmed))
    }

    /// The drop of the `count` oldest unsent events: their range and the gap record covering them.
    fn plan_drop(&self, count: u64, reason: GapReason) -> Dropping {
        let first = self.floor() + 1;
        let last = first + count - 1;
        let now = protocol::time::to_millis(Utc::now());
        let at = |seq: u64| match self.store.get(seq) {
            Ok(Some(e)) => e.occurred_at,
            _ => now,
        };
        let (oldest_at, newest_at) = (at(first), at(last));
        let gap = match &self.last_gap {
            Some(g) if g.last_seq + 1 == first => GapRecord {
                last_seq: last,
                reason,
                newest_at,
                dropped_at: now,
                ..g.clone()
            },
            _ => GapRecord {
                schema_version: SCHEMA_VERSION,
                device: self.config.device.clone(),
                first_seq: first,
                last_seq: last,
                reason,
                oldest_at,
                newest_at,
                dropped_at: now,
            },
        };
        Dropping {
            first,
            last,
            gap,
            dropped_total: self.dropped_total + count,
        }
    }

    /// A drop is durable: remember it and tell the actor.
    fn dropped(&mut self, d: Dropping) {
        let count = d.last - d.first + 1;
        tracing::warn!(
            first_seq = d.first,
            last_seq = d.last,
            count,
            reason = d.gap.reason.as_str(),
            gap_first_seq = d.gap.first_seq,
            dropped_total = d.dropped_total,
            "outbox bound reached: dropped the oldest unsent events (a gap record reports them)"
        );
        self.dropped_total = d.dropped_total;
        self.last_gap = Some(d.gap.clone());
        (self.on_event)(WriterEvent::Dropped {
            gap: d.gap,
            upto: d.last,
            count,
        });
    }

    /// The age bound: drops the unsent events that happened before `cutoff`, oldest first, in one
    /// atomic write with their gap record.
    fn drop_older_than(&mut self, cutoff: DateTime<Utc>) {
        if !self.recover() {
            return;
        }
        let floor = self.floor();
        let mut count = 0;
        while count < MAX_AGE_SCAN && floor + count + 1 < self.next_seq {
            match self.store.get(floor + count + 1) {
                Ok(Some(e)) if e.occurred_at < cutoff => count += 1,
                _ => break,
            }
        }
        if count == 0 {
            return;
        }
        let d = self.plan_drop(count, GapReason::MaxAge);
        let written = catch_unwind(AssertUnwindSafe(|| {
            self.store.append_dropping(&[], self.next_seq, &d)?;
            self.store.flush()
        }));
        match written {
            Ok(Ok(())) => self.dropped(d),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "dropping events past the age bound failed");
                self.storage_failed(e.to_string());
            }
            Err(_) => self.storage_failed("the storage layer panicked".into()),
        }
    }

    /// After a reopen: what is on disk decides (a failed write may or may not have landed).
    fn reload_gaps(&mut self) {
        match self.store.load() {
            Ok(loaded) => {
                let before = self.floor();
                self.last_gap = loaded.gaps.last().cloned();
                self.dropped_total = loaded.dropped_total;
                if self.floor() > before {
                    if let Some(gap) = self.last_gap.clone() {
                        let upto = gap.last_seq;
                        (self.on_event)(WriterEvent::Dropped {
                            count: upto - before,
                            gap,
                            upto,
                        });
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "reading the gap records after a reopen failed"),
        }
    }

    fn confirm(&mut self, acked: u64) {
        if acked <= self.confirmed || !self.recover() {
            // Still failing: the next ack (or the retained one after a restart) deletes them.
            return;
        }
        if acked >= self.next_seq {
            tracing::warn!(
                acked_seq = acked,
                next_seq = self.next_seq,
                "the cloud confirmed seqs this device never stored (was its data wiped?); \
                 continuing after them so that no seq is reused"
            );
            self.next_seq = acked + 1;
        }
        match self.store.confirm(acked, self.next_seq) {
            Ok(removed) => {
                self.confirmed = acked;
                if self.last_gap.as_ref().is_some_and(|g| g.last_seq <= acked) {
                    self.last_gap = None;
                }
                tracing::debug!(acked_seq = acked, removed, "confirmed events deleted");
            }
            Err(e) => {
                tracing::error!(error = %e, acked_seq = acked, "deleting confirmed events failed");
                self.storage_failed(e.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests;
