//! The ingest's pure bisection core: what to commit next once the store has answered a batch.
//!
//! Only an unavailable database holds a batch back: the same messages are tried again after a
//! backoff, and nothing is acked meanwhile. A batch the store refuses (`Invalid` or `Conflict`, or
//! `Internal` twice in a row: once may be a fluke and is retried) is split in halves, committed one
//! after the other, down to the single messages the store refuses on their own: those are acked
//! (so the broker stops redelivering them), counted and logged, never stored, and every other
//! message of the batch commits. One message cannot hold back every device's events.
//!
//! Performance contract: a batch that commits costs one commit, as before; a batch of n messages
//! with one the store refuses costs about 2·log2(n) commits (n = 128: 15), with k such messages at
//! most about 2·k·log2(n). Splitting moves the messages, it never copies them.

use crate::store::StoreError;

/// The store's answer to one commit, as the bisection needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Committed: ack every message of the part.
    Committed,
    /// The database could not be reached: try the same part again later.
    Unavailable,
    /// A bug or a database in an unexpected state: retried once, then treated as a refusal.
    Internal,
    /// The store refused what the part holds (`Invalid`, `Conflict`, `NotFound`).
    Refused,
}

impl Answer {
    /// The answer a commit's result stands for.
    pub fn of<T>(result: &Result<T, StoreError>) -> Answer {
        match result {
            Ok(_) => Answer::Committed,
            Err(StoreError::Unavailable(_)) => Answer::Unavailable,
            Err(StoreError::Internal(_)) => Answer::Internal,
            Err(StoreError::Invalid(_) | StoreError::Conflict(_) | StoreError::NotFound(_)) => {
                Answer::Refused
            }
        }
    }
}

/// What the actor does after an answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<T> {
    /// Ack these messages (their commit holds them), then commit [`Bisection::next_part`] at once.
    Acked(Vec<T>),
    /// Wait for a backoff, then commit [`Bisection::next_part`] (the same messages again).
    Backoff,
    /// The part was split in two halves (of these sizes); commit [`Bisection::next_part`] at once.
    Split(usize, usize),
    /// This message alone was refused: ack it, count it and log it; it is never stored. Then
    /// commit [`Bisection::next_part`] at once.
    Refused(T),
}

/// One batch being settled: the parts still to commit, the next one last.
#[derive(Debug)]
pub struct Bisection<T> {
    parts: Vec<Vec<T>>,
    /// Whether the part on top already had one `Internal` answer.
    internal_once: bool,
}

impl<T> Bisection<T> {
    pub fn new(batch: Vec<T>) -> Bisection<T> {
        let parts = if batch.is_empty() {
            Vec::new()
        } else {
            vec![batch]
        };
        Bisection {
            parts,
            internal_once: false,
        }
    }

    /// The next part to commit; `None` once every message of the batch is acked or refused.
    pub fn next_part(&mut self) -> Option<Vec<T>> {
        self.parts.pop()
    }

    /// The store answered `answer` to `part`, the last part [`Bisection::next_part`] gave.
    pub fn answered(&mut self, mut part: Vec<T>, answer: Answer) -> Step<T> {
        let refused = match answer {
            Answer::Committed => {
                self.internal_once = false;
                return Step::Acked(part);
            }
            Answer::Unavailable => false,
            Answer::Internal => std::mem::replace(&mut self.internal_once, true),
            Answer::Refused => true,
        };
        if !refused {
            self.parts.push(part);
            return Step::Backoff;
        }
        self.internal_once = false;
        if part.len() <= 1 {
            return match part.pop() {
                Some(message) => Step::Refused(message),
                // An empty part has nothing to refuse; nothing to ack either.
                None => Step::Acked(part),
            };
        }
        let second = part.split_off(part.len() / 2);
        let sizes = (part.len(), second.len());
        self.parts.push(second);
        self.parts.push(part);
        Step::Split(sizes.0, sizes.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Runs a batch through the bisection against a store that refuses (with `refusal`) any part
    /// holding one of `bad`, and is unavailable for the first `outage` commits. Returns what was
    /// acked, what was refused, and how many commits it took.
    fn settle(
        batch: Vec<u32>,
        bad: &[u32],
        refusal: Answer,
        outage: usize,
    ) -> (BTreeSet<u32>, Vec<u32>, usize) {
        let mut b = Bisection::new(batch);
        let (mut acked, mut refused, mut commits) = (BTreeSet::new(), Vec::new(), 0);
        while let Some(part) = b.next_part() {
            commits += 1;
            assert!(commits < 10_000, "the bisection does not end");
            let answer = if commits <= outage {
                Answer::Unavailable
            } else if part.iter().any(|m| bad.contains(m)) {
                refusal
            } else {
                Answer::Committed
            };
            match b.answered(part, answer) {
                Step::Acked(done) => {
                    for m in done {
                        assert!(acked.insert(m), "{m} acked twice");
                    }
                }
                Step::Refused(m) => refused.push(m),
                Step::Backoff | Step::Split(..) => {}
            }
        }
        (acked, refused, commits)
    }

    #[test]
    fn a_batch_the_store_takes_is_acked_in_one_commit() {
        let (acked, refused, commits) = settle((0..128).collect(), &[], Answer::Refused, 0);
        assert_eq!(acked.len(), 128);
        assert!(refused.is_empty());
        assert_eq!(commits, 1);
    }

    #[test]
    fn one_refused_message_is_isolated_and_every_other_one_commits() {
        for bad in [0, 1, 63, 64, 99, 127] {
            let (acked, refused, commits) = settle((0..128).collect(), &[bad], Answer::Refused, 0);
            assert_eq!(refused, vec![bad]);
            assert_eq!(acked, (0..128).filter(|m| *m != bad).collect());
            assert_eq!(
                commits, 15,
                "1 + 2 per halving for 128 messages (bad = {bad})"
            );
        }
    }

    #[test]
    fn several_refused_messages_are_each_isolated() {
        let bad = [3, 4, 77, 120];
        let (acked, mut refused, commits) = settle((0..130).collect(), &bad, Answer::Refused, 0);
        refused.sort_unstable();
        assert_eq!(refused, bad);
        assert_eq!(acked.len(), 130 - bad.len());
        assert!(commits <= 2 * bad.len() * 8 + 1, "{commits} commits");
    }

    #[test]
    fn an_internal_error_is_retried_once_then_bisected() {
        let (acked, refused, commits) = settle((0..128).collect(), &[5], Answer::Internal, 0);
        assert_eq!(refused, vec![5]);
        assert_eq!(acked.len(), 127);
        assert_eq!(commits, 2 + 3 * 7, "each refusing part is tried twice");

        let mut b = Bisection::new(vec![1, 2]);
        let part = b.next_part().unwrap();
        assert_eq!(b.answered(part, Answer::Internal), Step::Backoff);
        let part = b.next_part().unwrap();
        assert_eq!(part, vec![1, 2], "retried whole");
        assert_eq!(b.answered(part, Answer::Internal), Step::Split(1, 1));
    }

    #[test]
    fn an_internal_error_then_a_commit_starts_the_count_again() {
        let mut b = Bisection::new(vec![1, 2, 3, 4]);
        let part = b.next_part().unwrap();
        assert_eq!(b.answered(part, Answer::Refused), Step::Split(2, 2));
        let part = b.next_part().unwrap();
        assert_eq!(b.answered(part, Answer::Internal), Step::Backoff);
        let part = b.next_part().unwrap();
        assert_eq!(b.answered(part, Answer::Committed), Step::Acked(vec![1, 2]));
        let part = b.next_part().unwrap();
        assert_eq!(part, vec![3, 4]);
        assert_eq!(
            b.answered(part, Answer::Internal),
            Step::Backoff,
            "one Internal for this part, not two in a row"
        );
    }

    #[test]
    fn an_unavailable_database_holds_the_batch_back_whole() {
        let mut b = Bisection::new(vec![1, 2, 3]);
        for _ in 0..5 {
            let part = b.next_part().unwrap();
            assert_eq!(part, vec![1, 2, 3]);
            assert_eq!(b.answered(part, Answer::Unavailable), Step::Backoff);
        }
        let (acked, refused, commits) = settle((0..64).collect(), &[9], Answer::Refused, 4);
        assert_eq!((acked.len(), refused, commits), (63, vec![9], 4 + 13));
    }

    #[test]
    fn a_lone_message_the_store_refuses_is_refused_at_once() {
        let mut b = Bisection::new(vec![7]);
        let part = b.next_part().unwrap();
        assert_eq!(b.answered(part, Answer::Refused), Step::Refused(7));
        assert_eq!(b.next_part(), None);
    }

    #[test]
    fn the_answer_follows_the_store_error() {
        let answer = |e: StoreError| Answer::of::<()>(&Err(e));
        assert_eq!(Answer::of(&Ok::<_, StoreError>(())), Answer::Committed);
        assert_eq!(
            answer(StoreError::Unavailable("down".into())),
            Answer::Unavailable
        );
        assert_eq!(answer(StoreError::Internal("bug".into())), Answer::Internal);
        assert_eq!(answer(StoreError::Invalid("seq".into())), Answer::Refused);
        assert_eq!(answer(StoreError::Conflict("id".into())), Answer::Refused);
    }
}
