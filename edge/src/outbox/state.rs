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

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The window and timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxPolicy {
    pub max_in_flight: usize,
    pub resend_timeout: Duration,
    pub resend_timeout_max: Duration,
}

/// Where one event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Queued,
    Sent { at: Duration },
    Delivered { at: Duration },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    stage: Stage,
    attempts: u32,
}

/// The bookkeeping for every stored, unconfirmed event.
#[derive(Debug, Clone)]
pub struct OutboxState {
    policy: OutboxPolicy,
    entries: BTreeMap<u64, Entry>,
    queued: BTreeSet<u64>,
    in_flight: usize,
    confirmed: u64,
    link_up: bool,
}

impl OutboxState {
    /// The state after a (re)start: `pending` are the stored events, all queued; the link is down.
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
            link_up: false,
        };
        for seq in pending {
            state.stored(seq, Duration::ZERO);
        }
        state
    }

    /// A newly stored event; returns what to publish now.
    pub fn stored(&mut self, seq: u64, now: Duration) -> Vec<u64> {
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
            entry.stage = Stage::Queued;
            self.queued.insert(*seq);
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
                Stage::Delivered { .. } => {}
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
    /// must delete up to it and persist it, `None` for an old or repeated ack.
    pub fn confirmed(&mut self, acked_seq: u64, now: Duration) -> (Option<u64>, Vec<u64>) {
        if acked_seq <= self.confirmed {
            return (None, Vec::new());
        }
        self.confirmed = acked_seq;
        let kept = self.entries.split_off(&(acked_seq + 1));
        for (seq, entry) in std::mem::replace(&mut self.entries, kept) {
            match entry.stage {
                Stage::Queued => {
                    self.queued.remove(&seq);
                }
                Stage::Sent { .. } => self.in_flight -= 1,
                Stage::Delivered { .. } => {}
            }
        }
        (Some(acked_seq), self.next_publishes(now))
    }

    /// Time passed: events unconfirmed past their resend timeout are queued again.
    pub fn tick(&mut self, now: Duration) -> Vec<u64> {
        for (seq, entry) in self.entries.iter_mut() {
            let at = match entry.stage {
                Stage::Sent { at } | Stage::Delivered { at } => at,
                Stage::Queued => continue,
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

    fn next_publishes(&mut self, now: Duration) -> Vec<u64> {
        let mut out = Vec::new();
        while self.link_up && self.in_flight < self.policy.max_in_flight {
            let Some(seq) = self.queued.pop_first() else {
                break;
            };
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
