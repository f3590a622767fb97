//! The ingest's pure batching core: adaptive batches with at most one commit in flight.
//!
//! When no commit is in flight, an arriving message starts one at once with everything waiting, so a
//! lone event pays no batching window; while a commit runs, arrivals accumulate and go together in the
//! next one. A batch is in flight until the ingest has settled all of it (committed, retried after
//! an outage, or bisected: see `bisect`), so batches never overlap and keep their order.
//! Performance contract: `push` and `committed` are O(batch) moves, no allocation beyond the batch.

use std::collections::VecDeque;

/// Decisions about when to commit what. `T` is whatever the actor needs to commit and later ack.
#[derive(Debug)]
pub struct Batcher<T> {
    waiting: VecDeque<T>,
    in_flight: bool,
    max_batch: usize,
}

impl<T> Batcher<T> {
    pub fn new(max_batch: usize) -> Self {
        Batcher {
            waiting: VecDeque::new(),
            in_flight: false,
            max_batch: max_batch.max(1),
        }
    }

    /// Messages waiting for a commit.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// A message arrived. Returns a batch to commit now, if no commit is in flight.
    pub fn push(&mut self, item: T) -> Option<Vec<T>> {
        self.waiting.push_back(item);
        self.next()
    }

    /// The batch in flight is settled. Returns the next batch, if anything is waiting.
    pub fn committed(&mut self) -> Option<Vec<T>> {
        self.in_flight = false;
        self.next()
    }

    /// Forgets everything (after a restart the broker redelivers what was never acked).
    pub fn clear(&mut self) {
        self.waiting.clear();
        self.in_flight = false;
    }

    fn next(&mut self) -> Option<Vec<T>> {
        if self.in_flight || self.waiting.is_empty() {
            return None;
        }
        let n = self.waiting.len().min(self.max_batch);
        self.in_flight = true;
        Some(self.waiting.drain(..n).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_message_is_committed_at_once() {
        let mut b = Batcher::new(100);
        assert_eq!(b.push(1), Some(vec![1]));
        assert!(b.in_flight());
    }

    #[test]
    fn messages_arriving_during_a_commit_go_together_in_the_next_one() {
        let mut b = Batcher::new(100);
        assert_eq!(b.push(1), Some(vec![1]));
        assert_eq!(b.push(2), None);
        assert_eq!(b.push(3), None);
        assert_eq!(b.committed(), Some(vec![2, 3]));
        assert_eq!(b.committed(), None);
        assert!(!b.in_flight());
        assert_eq!(b.push(4), Some(vec![4]));
    }

    #[test]
    fn a_batch_never_exceeds_the_maximum() {
        let mut b = Batcher::new(3);
        b.push(0);
        for i in 1..=7 {
            b.push(i);
        }
        assert_eq!(b.committed(), Some(vec![1, 2, 3]));
        assert_eq!(b.committed(), Some(vec![4, 5, 6]));
        assert_eq!(b.committed(), Some(vec![7]));
    }

    #[test]
    fn nothing_starts_until_the_batch_in_flight_is_settled() {
        let mut b = Batcher::new(10);
        assert_eq!(b.push(1), Some(vec![1]));
        assert_eq!(b.push(2), None);
        assert_eq!(
            b.push(3),
            None,
            "nothing starts while a batch is retried or bisected"
        );
        assert_eq!(b.waiting(), 2);
        assert_eq!(b.committed(), Some(vec![2, 3]));
    }

    #[test]
    fn clearing_forgets_everything() {
        let mut b = Batcher::new(10);
        b.push(1);
        b.push(2);
        b.clear();
        assert_eq!(b.waiting(), 0);
        assert_eq!(b.push(5), Some(vec![5]));
    }
}
