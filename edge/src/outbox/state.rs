//! The outbox bookkeeping core: pure, no IO (like rumqttc's `MqttState`). Methods change the state
//! and return decisions: which `seq`s to publish now, and up to which `seq` the store may delete.
//!
//! An event's life: `Queued` (stored, to be published) → `Sent` (handed to the uplink, no broker
//! PubAck yet) → `Delivered` (broker PubAck: only "in flight", the broker may still lose it) → gone
//! when the cloud confirms its commit (`acked_seq >= seq`).
//!
//! Rules:
//! - At most `max_in_flight` events are `Sent` at once (the window); publishing happens only while the
//!   link is up, oldest `seq` first.
//! - When the link comes up, every unconfirmed event is queued again (rumqttc drops its own
//!   unacknowledged publishes on a new session; a resend is harmless, the cloud dedups by id).
//! - An event `Sent` or `Delivered` and not confirmed within its resend timeout is queued again; the
//!   timeout doubles with each attempt up to `resend_timeout_max`.
//!
//! Bulk drain (only when enabled with [`OutboxState::enable_bulk`], i.e. an API url and token are
//! configured):
//! - When more than `threshold` events are unconfirmed, a drain starts: every event up to the
//!   newest one stored at that moment (the drain mark) goes to the cloud over HTTP, oldest first,
//!   in batches of at most `batch` ([`OutboxState::next_bulk_batch`], one batch at a time). Events
//!   above the mark (live events) keep going over MQTT in the normal window, so they are not
//!   starved; the cloud's `acked_seq` only advances over a contiguous run, so overtaking is safe.
//! - An event in a batch (`Stage::Bulk`) is not published over MQTT, and an event in the MQTT
//!   window is not put in a batch.
//! - A batch's answer confirms like a `DeviceAck`; what it did not confirm is queued again.
//! - A failed request queues the batch again and waits the given retry delay; while waiting, the
//!   MQTT window may take old events too, so a dead API never stalls the outbox.
//! - A batch refused as too large (413) is queued again and later batches are half as big.
//! - A refused token (401) turns the drain off for good: everything goes over MQTT.
//! - The drain ends when every event up to the mark is confirmed.
//!
//! Bounds: events the outbox's size or age bound dropped leave the bookkeeping through
//! [`OutboxState::dropped`] (a gap record, sent by the actor, tells the cloud), whatever their stage.
//!
//! Acks and where they come from ([`AckSource`]): an ack over MQTT (`system/{device}/ack`, which
//! any client of a broker without ACL can publish, retained) above the highest `seq` this outbox
//! ever issued is refused ([`RefusedAck`]) and changes nothing: it cannot confirm events that do not
//! exist yet. An ack over the authenticated API (a bulk answer, or the device's `acked_seq` read at
//! start) may pass it: the cloud holds seqs from an earlier life of this device (a wiped or
//! re-flashed Pi), and the writer then moves `next_seq` past it so that no seq is reused.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The window and timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxPolicy {
    pub max_in_flight: usize,
    pub resend_timeout: Duration,
    pub resend_timeout_max: Duration,
}

/// When to drain over HTTP, and how much per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkPolicy {
    /// A drain starts when more than this many events are unconfirmed.
    pub threshold: u64,
    /// Events per HTTP request, at most.
    pub batch: usize,
}

/// Where one event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Queued,
    Sent {
        at: Duration,
    },
    Delivered {
        at: Duration,
    },
    /// In the HTTP batch being sent.
    Bulk,
}

/// The bulk drain's state.
#[derive(Debug, Clone)]
struct Bulk {
    policy: BulkPolicy,
    /// Events up to this `seq` go over HTTP while a drain runs.
    mark: Option<u64>,
    /// The batch being sent (at most one).
    batch: Vec<u64>,
    /// After a failed request: no new batch before this time.
    retry_at: Option<Duration>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    stage: Stage,
    attempts: u32,
}

/// Where a cloud ack came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckSource {
    /// `system/{device}/ack` over MQTT: trusted only up to the highest seq issued.
    Mqtt,
    /// The cloud's API, authenticated with the device's token (bulk answer, start-up sync).
    Api,
}

/// An ack refused: over MQTT, above the highest seq this outbox ever issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ack of seq {acked_seq} refused: the highest seq this device issued is {highest_issued}")]
pub struct RefusedAck {
    pub acked_seq: u64,
    pub highest_issued: u64,
}

/// What an accepted ack asks for: the store deletes up to `delete` (when it moved), and `publish`
/// goes out now.
pub type Confirmation = (Option<u64>, Vec<u64>);

/// The bookkeeping for every stored, unconfirmed event.
#[derive(Debug, Clone)]
pub struct OutboxState {
    policy: OutboxPolicy,
    entries: BTreeMap<u64, Entry>,
    queued: BTreeSet<u64>,
    in_flight: usize,
    confirmed: u64,
    /// The highest seq ever issued (stored, dropped or confirmed through the API); an MQTT ack
    /// above it is refused.
    highest_issued: u64,
    link_up: bool,
    bulk: Option<Bulk>,
}

impl OutboxState {
    /// The state after a (re)start: `pending` are the stored events, all queued; the link is down.
    /// The highest seq issued is taken as the highest of `confirmed` and `pending`; give the
    /// store's `next_seq - 1` with [`Self::issued_up_to`] when seqs above were dropped.
    pub fn new(
        policy: OutboxPolicy,
        confirmed: u64,
        pending: impl IntoIterator<Item = u64>,
    ) -> Self {
        let mut state = OutboxState {
            policy,
            entries: BTreeMap::new(),
            queued: BTreeSet::new(),
            in_flight: 0,
            confirmed,
            highest_issued: confirmed,
            link_up: false,
            bulk: None,
        };
        for seq in pending {
            state.stored(seq, Duration::ZERO);
        }
        state
    }

    /// Seqs up to `highest` were issued (the store's `next_seq - 1`, after a restart).
    pub fn issued_up_to(&mut self, highest: u64) {
        self.highest_issued = self.highest_issued.max(highest);
    }

    /// The highest seq ever issued, as far as this core knows.
    pub fn highest_issued(&self) -> u64 {
        self.highest_issued
    }

    /// Turns on the bulk drain over HTTP (an API url and token are configured).
    pub fn enable_bulk(&mut self, policy: BulkPolicy) {
        self.bulk = Some(Bulk {
            policy,
            mark: None,
            batch: Vec::new(),
            retry_at: None,
        });
    }

    /// A newly stored event; returns what to publish now.
    pub fn stored(&mut self, seq: u64, now: Duration) -> Vec<u64> {
        self.highest_issued = self.highest_issued.max(seq);
        if seq > self.confirmed && !self.entries.contains_key(&seq) {
            self.entries.insert(
                seq,
                Entry {
                    stage: Stage::Queued,
                    attempts: 0,
                },
            );
            self.queued.insert(seq);
        }
        self.next_publishes(now)
    }

    /// The link is up (a fresh MQTT connection): everything unconfirmed is queued again.
    pub fn link_up(&mut self, now: Duration) -> Vec<u64> {
        self.link_up = true;
        for (seq, entry) in self.entries.iter_mut() {
            if entry.stage != Stage::Bulk {
                entry.stage = Stage::Queued;
                self.queued.insert(*seq);
            }
        }
        self.in_flight = 0;
        self.next_publishes(now)
    }

    /// The link is down: nothing is published; what had no PubAck is queued again.
    pub fn link_down(&mut self) {
        self.link_up = false;
        for (seq, entry) in self.entries.iter_mut() {
            if matches!(entry.stage, Stage::Sent { .. }) {
                entry.stage = Stage::Queued;
                self.queued.insert(*seq);
            }
        }
        self.in_flight = 0;
    }

    /// The broker acknowledged `seq`'s publish: in flight, not confirmed.
    pub fn pub_acked(&mut self, seq: u64, now: Duration) -> Vec<u64> {
        if let Some(entry) = self.entries.get_mut(&seq) {
            match entry.stage {
                Stage::Sent { at } => {
                    entry.stage = Stage::Delivered { at };
                    self.in_flight -= 1;
                }
                Stage::Queued => {
                    // A resend from an older session was acknowledged: no need to send it again.
                    entry.stage = Stage::Delivered { at: now };
                    self.queued.remove(&seq);
                }
                Stage::Delivered { .. } | Stage::Bulk => {}
            }
        }
        self.next_publishes(now)
    }

    /// The uplink could not take `seq` (its queue was full): queue it again; the next tick retries.
    pub fn publish_failed(&mut self, seq: u64) {
        if let Some(entry) = self.entries.get_mut(&seq) {
            if matches!(entry.stage, Stage::Sent { .. }) {
                entry.stage = Stage::Queued;
                self.queued.insert(seq);
                self.in_flight -= 1;
            }
        }
    }

    /// The cloud committed every event up to `acked_seq`. Returns `Some(acked_seq)` when the store
    /// must delete up to it and persist it, `None` for an old or repeated ack. Over MQTT, an ack
    /// above the highest seq issued is refused and changes nothing; over the API it is taken, and
    /// the seqs up to it count as issued (the writer continues after it).
    pub fn confirmed(
        &mut self,
        acked_seq: u64,
        source: AckSource,
        now: Duration,
    ) -> Result<Confirmation, RefusedAck> {
        if source == AckSource::Mqtt && acked_seq > self.highest_issued {
            return Err(RefusedAck {
                acked_seq,
                highest_issued: self.highest_issued,
            });
        }
        Ok(self.accept_ack(acked_seq, now))
    }

    /// Applies an ack already trusted (see [`Self::confirmed`]).
    fn accept_ack(&mut self, acked_seq: u64, now: Duration) -> Confirmation {
        if acked_seq <= self.confirmed {
            return (None, Vec::new());
        }
        self.highest_issued = self.highest_issued.max(acked_seq);
        self.confirmed = acked_seq;
        self.forget_up_to(acked_seq);
        (Some(acked_seq), self.next_publishes(now))
    }

    /// The outbox's bounds dropped every unsent event up to `upto` (a gap record reports them to
    /// the cloud): they leave the bookkeeping unconfirmed. Returns what to publish now.
    pub fn dropped(&mut self, upto: u64, now: Duration) -> Vec<u64> {
        self.highest_issued = self.highest_issued.max(upto);
        self.forget_up_to(upto);
        self.next_publishes(now)
    }

    fn forget_up_to(&mut self, upto: u64) {
        let kept = self.entries.split_off(&(upto + 1));
        for (seq, entry) in std::mem::replace(&mut self.entries, kept) {
            match entry.stage {
                Stage::Queued => {
                    self.queued.remove(&seq);
                }
                Stage::Sent { .. } => self.in_flight -= 1,
                Stage::Delivered { .. } | Stage::Bulk => {}
            }
        }
        if let Some(bulk) = &mut self.bulk {
            bulk.batch.retain(|seq| *seq > upto);
        }
    }

    /// Time passed: events unconfirmed past their resend timeout are queued again.
    pub fn tick(&mut self, now: Duration) -> Vec<u64> {
        for (seq, entry) in self.entries.iter_mut() {
            let at = match entry.stage {
                Stage::Sent { at } | Stage::Delivered { at } => at,
                Stage::Queued | Stage::Bulk => continue,
            };
            if now.saturating_sub(at) >= timeout(&self.policy, entry.attempts) {
                if matches!(entry.stage, Stage::Sent { .. }) {
                    self.in_flight -= 1;
                }
                entry.stage = Stage::Queued;
                self.queued.insert(*seq);
            }
        }
        self.next_publishes(now)
    }

    /// The next HTTP batch (oldest first), when a drain runs, no batch is out and no retry delay is
    /// pending; its events leave the queue until [`Self::bulk_answered`] or [`Self::bulk_failed`].
    pub fn next_bulk_batch(&mut self, now: Duration) -> Option<Vec<u64>> {
        self.update_drain();
        let bulk = self.bulk.as_mut()?;
        let mark = bulk.mark?;
        if !bulk.batch.is_empty() || bulk.retry_at.is_some_and(|at| now < at) {
            return None;
        }
        bulk.retry_at = None;
        let batch: Vec<u64> = self
            .queued
            .range(..=mark)
            .take(bulk.policy.batch)
            .copied()
            .collect();
        if batch.is_empty() {
            return None;
        }
        for seq in &batch {
            self.queued.remove(seq);
            if let Some(entry) = self.entries.get_mut(seq) {
                entry.stage = Stage::Bulk;
                entry.attempts = entry.attempts.saturating_add(1);
            }
        }
        bulk.batch = batch.clone();
        Some(batch)
    }

    /// The cloud answered the batch with its `acked_seq` (highest contiguous committed `seq`):
    /// confirms like a `DeviceAck`; the batch's unconfirmed events are queued again. Returns what
    /// the store must delete up to, and what to publish over MQTT now.
    pub fn bulk_answered(&mut self, acked_seq: u64, now: Duration) -> Confirmation {
        self.requeue_batch();
        self.accept_ack(acked_seq, now)
    }

    /// The request failed (network error, 5xx, …): the batch is queued again; no new batch before
    /// `retry_after` has passed. Returns what to publish over MQTT now (the window may take old
    /// events while the API waits).
    pub fn bulk_failed(&mut self, now: Duration, retry_after: Duration) -> Vec<u64> {
        self.requeue_batch();
        if let Some(bulk) = &mut self.bulk {
            bulk.retry_at = Some(now + retry_after);
        }
        self.next_publishes(now)
    }

    /// The API refused the batch as too large (413): it is queued again and later batches are half
    /// as big. Returns the new batch size, or `None` when a single event was refused (then it is
    /// handled as a failed request).
    pub fn bulk_too_large(&mut self) -> Option<usize> {
        self.requeue_batch();
        let bulk = self.bulk.as_mut()?;
        if bulk.policy.batch <= 1 {
            return None;
        }
        bulk.policy.batch /= 2;
        Some(bulk.policy.batch)
    }

    /// The API refused the token (401): no more drains, everything goes over MQTT.
    pub fn bulk_disabled(&mut self, now: Duration) -> Vec<u64> {
        self.requeue_batch();
        self.bulk = None;
        self.next_publishes(now)
    }

    /// Whether a drain runs (events up to a mark go over HTTP).
    pub fn is_draining(&self) -> bool {
        self.bulk.as_ref().is_some_and(|b| b.mark.is_some())
    }

    /// Stored events not yet confirmed by the cloud.
    pub fn depth(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Events handed to the uplink without a broker PubAck.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn confirmed_seq(&self) -> u64 {
        self.confirmed
    }

    pub fn is_link_up(&self) -> bool {
        self.link_up
    }

    pub fn stage(&self, seq: u64) -> Option<Stage> {
        self.entries.get(&seq).map(|e| e.stage)
    }

    fn requeue_batch(&mut self) {
        let Some(bulk) = &mut self.bulk else { return };
        for seq in std::mem::take(&mut bulk.batch) {
            if let Some(entry) = self.entries.get_mut(&seq) {
                if entry.stage == Stage::Bulk {
                    entry.stage = Stage::Queued;
                    self.queued.insert(seq);
                }
            }
        }
    }

    /// Starts a drain when too many events wait, ends it when everything up to its mark is gone.
    fn update_drain(&mut self) {
        let Some(bulk) = &mut self.bulk else { return };
        match bulk.mark {
            Some(mark) if self.entries.range(..=mark).next().is_none() => bulk.mark = None,
            Some(_) => {}
            None => {}
        }
        if bulk.mark.is_none() && self.entries.len() as u64 > bulk.policy.threshold {
            bulk.mark = self.entries.last_key_value().map(|(seq, _)| *seq);
        }
    }

    /// The lowest `seq` the MQTT window may take: above the drain mark while a drain runs and no
    /// retry delay is pending.
    fn mqtt_floor(&self, now: Duration) -> u64 {
        match &self.bulk {
            Some(Bulk {
                mark: Some(mark),
                retry_at,
                ..
            }) if !retry_at.is_some_and(|at| now < at) => mark + 1,
            _ => 0,
        }
    }

    fn next_publishes(&mut self, now: Duration) -> Vec<u64> {
        self.update_drain();
        let floor = self.mqtt_floor(now);
        let mut out = Vec::new();
        while self.link_up && self.in_flight < self.policy.max_in_flight {
            let Some(&seq) = self.queued.range(floor..).next() else {
                break;
            };
            self.queued.remove(&seq);
            let entry = self.entries.get_mut(&seq).expect("queued seqs are entries");
            entry.stage = Stage::Sent { at: now };
            entry.attempts = entry.attempts.saturating_add(1);
            self.in_flight += 1;
            out.push(seq);
        }
        out
    }
}

/// The resend timeout after `attempts` sends: base, doubling per resend, capped.
fn timeout(policy: &OutboxPolicy, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(20);
    policy
        .resend_timeout
        .saturating_mul(1 << doublings)
        .min(policy.resend_timeout_max)
}

#[cfg(test)]
mod tests;
