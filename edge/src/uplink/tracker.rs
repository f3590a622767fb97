//! Which MQTT packet id carries which publish: pure bookkeeping that turns rumqttc's
//! `Outgoing::Publish(pkid)` and `Incoming::PubAck(pkid)` events back into event `seq`s.
//!
//! rumqttc assigns packet ids inside its event loop, in the order publishes were requested, and
//! reports each as `Outgoing::Publish(pkid)`. So requests wait in a FIFO until their pkid shows up.
//! On a resumed session rumqttc replays its unacknowledged publishes with their old pkids: a pkid
//! already known is a replay, not a new request. On a new session (`session_present = false`)
//! rumqttc drops everything it had: so does the tracker.

use std::collections::{HashMap, VecDeque};

/// What a publish carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// An outbox event.
    Event(u64),
    /// A status heartbeat.
    Status,
    /// A gap record (confirmed by the cloud's ack, not by the PubAck).
    Gap,
    /// A clip announcement (`video/{device}/captured`; the upload is what makes a clip durable).
    Clip,
}

/// Requests waiting for their pkid, and pkids waiting for their PubAck.
#[derive(Debug, Default)]
pub struct PkidTracker {
    waiting: VecDeque<Tag>,
    by_pkid: HashMap<u16, Tag>,
}

impl PkidTracker {
    /// A publish was handed to rumqttc.
    pub fn requested(&mut self, tag: Tag) {
        self.waiting.push_back(tag);
    }

    /// rumqttc wrote a publish with `pkid`.
    pub fn outgoing_publish(&mut self, pkid: u16) {
        if self.by_pkid.contains_key(&pkid) {
            return; // a replay from a resumed session
        }
        if let Some(tag) = self.waiting.pop_front() {
            self.by_pkid.insert(pkid, tag);
        }
    }

    /// The broker acknowledged `pkid`.
    pub fn puback(&mut self, pkid: u16) -> Option<Tag> {
        self.by_pkid.remove(&pkid)
    }

    /// A connection was accepted; without a session everything outstanding is gone.
    pub fn connected(&mut self, session_present: bool) {
        if !session_present {
            self.waiting.clear();
            self.by_pkid.clear();
        }
    }

    /// Publishes requested or written and not acknowledged.
    pub fn outstanding(&self) -> usize {
        self.waiting.len() + self.by_pkid.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkids_are_matched_to_requests_in_request_order() {
        let mut t = PkidTracker::default();
        t.requested(Tag::Event(1));
        t.requested(Tag::Status);
        t.requested(Tag::Event(2));
        t.outgoing_publish(7);
        t.outgoing_publish(8);
        t.outgoing_publish(9);
        assert_eq!(t.puback(9), Some(Tag::Event(2)));
        assert_eq!(t.puback(8), Some(Tag::Status));
        assert_eq!(t.puback(7), Some(Tag::Event(1)));
        assert_eq!(t.puback(7), None, "an ack counts once");
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn a_replayed_publish_on_a_resumed_session_keeps_its_request() {
        let mut t = PkidTracker::default();
        t.requested(Tag::Event(1));
        t.outgoing_publish(1);
        t.requested(Tag::Event(2));
        t.connected(true);
        t.outgoing_publish(1); // replay of seq 1
        t.outgoing_publish(2); // seq 2, first written now
        assert_eq!(t.puback(1), Some(Tag::Event(1)));
        assert_eq!(t.puback(2), Some(Tag::Event(2)));
    }

    #[test]
    fn a_new_session_forgets_everything_rumqttc_dropped() {
        let mut t = PkidTracker::default();
        t.requested(Tag::Event(1));
        t.outgoing_publish(1);
        t.requested(Tag::Event(2));
        t.connected(false);
        assert_eq!(t.outstanding(), 0);
        t.requested(Tag::Event(3));
        t.outgoing_publish(1);
        assert_eq!(t.puback(1), Some(Tag::Event(3)));
    }

    #[test]
    fn a_pkid_freed_by_its_ack_can_carry_a_new_request() {
        let mut t = PkidTracker::default();
        t.requested(Tag::Event(1));
        t.outgoing_publish(1);
        assert_eq!(t.puback(1), Some(Tag::Event(1)));
        t.requested(Tag::Event(2));
        t.outgoing_publish(1);
        assert_eq!(t.puback(1), Some(Tag::Event(2)));
    }
}
