//! A new outbox continues above what the cloud already holds for its device id.
//!
//! An outbox with nothing issued yet is either a Pi's first start or a wiped or re-flashed Pi that
//! kept its device id. In the second case the cloud holds seqs from the Pi's earlier life, and
//! issuing them again would give one seq two different events. So, before any seq is issued, the
//! edge asks the cloud over the authenticated API (an empty `POST /api/events` with the device's
//! token answers its `acked_seq`) and, when that is above 0, records it as confirmed with
//! `next_seq` just after it — as the writer does for a bulk answer above `next_seq`.
//!
//! The retained ack on `system/{device}/ack` is not used for this: over MQTT an ack above the highest
//! seq issued is refused ([`super::state::AckSource`]), since any client of a broker without ACL can
//! publish one.

use std::time::Duration;

use super::store::{Loaded, Store, StoreError};

/// Whether this outbox has issued nothing yet (no event, gap or confirmation ever recorded).
pub fn is_new(loaded: &Loaded) -> bool {
    loaded.next_seq <= 1
        && loaded.confirmed_seq == 0
        && loaded.pending.is_empty()
        && loaded.gaps.is_empty()
}

/// Records the cloud's `acked_seq` as confirmed in a new outbox, `next_seq` after it, durably;
/// `loaded` is updated to match. An `acked_seq` of 0 changes nothing.
pub fn continue_above(
    store: &Store,
    loaded: &mut Loaded,
    acked_seq: u64,
) -> Result<(), StoreError> {
    if acked_seq == 0 || acked_seq < loaded.next_seq {
        return Ok(());
    }
    let next_seq = acked_seq + 1;
    store.confirm(acked_seq, next_seq)?;
    store.flush()?;
    loaded.confirmed_seq = acked_seq;
    loaded.next_seq = next_seq;
    Ok(())
}

/// How the start-up ask is retried: `attempts` requests, waiting `pause` (doubling) between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumePolicy {
    pub attempts: u32,
    pub pause: Duration,
}

impl Default for ResumePolicy {
    fn default() -> Self {
        ResumePolicy {
            attempts: 3,
            pause: Duration::from_millis(500),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::OutboxKey;

    #[test]
    fn a_new_outbox_continues_after_the_clouds_acked_seq_and_keeps_it_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let key = OutboxKey::from_bytes([7; 32]);
        let (store, mut loaded) = Store::open(dir.path(), &key).unwrap();
        assert!(is_new(&loaded));
        continue_above(&store, &mut loaded, 41).unwrap();
        assert_eq!((loaded.confirmed_seq, loaded.next_seq), (41, 42));
        assert!(!is_new(&loaded));
        drop(store);
        let (_, reloaded) = Store::open(dir.path(), &key).unwrap();
        assert_eq!((reloaded.confirmed_seq, reloaded.next_seq), (41, 42));
    }

    #[test]
    fn an_acked_seq_of_zero_leaves_a_new_outbox_new() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut loaded) = Store::open(dir.path(), &OutboxKey::from_bytes([7; 32])).unwrap();
        continue_above(&store, &mut loaded, 0).unwrap();
        assert!(is_new(&loaded));
        assert_eq!(loaded.next_seq, 1);
    }
}
