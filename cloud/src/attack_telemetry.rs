//! Attack telemetry into the store, so the console can warn about a device (`DeviceView::security`).
//!
//! The ingest (refused messages) and the live push (refused logins: RTSP server, MediaMTX hook)
//! count per device in memory, for `/metrics`. Every [`FLUSH_EVERY`] the [`Flusher`] adds what
//! those counters grew by since its last write to the devices' rows, in one transaction: a flood of
//! refusals costs one small write a second, not one per refusal. A failed write is retried at the
//! next tick (nothing is lost while the process runs; what a crash takes is still in the logs).
//! Refused acks are reported by the devices themselves and counted with their statuses.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::ingest::IngestMetrics;
use crate::live::rtsp::RtspMetrics;
use crate::store::{AttackTally, Store, StoreError};

/// How often the counters' growth is written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The in-memory counts per device, as one map of tallies.
fn tallies(ingest: &IngestMetrics, rtsp: &RtspMetrics) -> BTreeMap<String, AttackTally> {
    let mut all: BTreeMap<String, AttackTally> = BTreeMap::new();
    for (device, n) in ingest.invalid_by_device() {
        all.entry(device).or_default().invalid_messages = clamp(n);
    }
    for (device, n) in rtsp.refused_by_device() {
        all.entry(device.as_str().to_owned())
            .or_default()
            .refused_live_logins = clamp(n);
    }
    all
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// What each device's counts grew by from `before` to `now` (counters only grow).
fn growth(
    before: &BTreeMap<String, AttackTally>,
    now: &BTreeMap<String, AttackTally>,
) -> Vec<(String, AttackTally)> {
    now.iter()
        .filter_map(|(device, n)| {
            let b = before.get(device).copied().unwrap_or_default();
            let grown = AttackTally {
                refused_acks: 0,
                invalid_messages: n.invalid_messages.saturating_sub(b.invalid_messages),
                refused_live_logins: n.refused_live_logins.saturating_sub(b.refused_live_logins),
            };
            (!grown.is_empty()).then(|| (device.clone(), grown))
        })
        .collect()
}

/// Writes the growth of the in-memory counters to the store.
pub struct Flusher {
    store: Store,
    ingest: Arc<IngestMetrics>,
    rtsp: Arc<RtspMetrics>,
    /// The counts last written.
    written: BTreeMap<String, AttackTally>,
}

impl Flusher {
    pub fn new(store: Store, ingest: Arc<IngestMetrics>, rtsp: Arc<RtspMetrics>) -> Flusher {
        Flusher {
            store,
            ingest,
            rtsp,
            written: BTreeMap::new(),
        }
    }

    /// Writes what grew since the last successful write; how many devices' rows it touched.
    pub fn flush(&mut self) -> Result<usize, StoreError> {
        let now = tallies(&self.ingest, &self.rtsp);
        let grown = growth(&self.written, &now);
        if !grown.is_empty() {
            self.store.record_attacks(&grown, chrono::Utc::now())?;
        }
        self.written = now;
        Ok(grown.len())
    }

    /// Flushes every [`FLUSH_EVERY`] on a thread of its own, for the life of the process.
    pub fn spawn(mut self) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("attack-telemetry".into())
            .spawn(move || loop {
                std::thread::sleep(FLUSH_EVERY);
                if let Err(e) = self.flush() {
                    tracing::warn!(error = %e, "cannot write the attack telemetry; retrying");
                }
            })
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(invalid: i64, logins: i64) -> AttackTally {
        AttackTally {
            refused_acks: 0,
            invalid_messages: invalid,
            refused_live_logins: logins,
        }
    }

    #[test]
    fn only_what_grew_since_the_last_write_is_written() {
        let before = BTreeMap::from([("pi-1".to_owned(), tally(3, 1))]);
        let now = BTreeMap::from([
            ("pi-1".to_owned(), tally(5, 1)),
            ("pi-2".to_owned(), tally(0, 2)),
        ]);
        assert_eq!(
            growth(&before, &now),
            vec![
                ("pi-1".to_owned(), tally(2, 0)),
                ("pi-2".to_owned(), tally(0, 2))
            ]
        );
        assert!(growth(&now, &now).is_empty());
    }

    #[test]
    fn the_ingest_and_the_rtsp_counts_meet_per_device() {
        let ingest = IngestMetrics::default();
        let rtsp = RtspMetrics::default();
        let pi = protocol::DeviceId::new("pi-1").unwrap();
        ingest.add_invalid(Some(&pi), 4);
        rtsp.refused_for(&pi);
        assert_eq!(tallies(&ingest, &rtsp)["pi-1"], tally(4, 1));
    }
}
