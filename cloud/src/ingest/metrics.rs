//! Ingest counters, read by `/metrics` (Prometheus text) and by tests.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters; cheap to bump from the ingest actor.
#[derive(Debug, Default)]
pub struct IngestMetrics {
    pub received: AtomicU64,
    pub inserted: AtomicU64,
    pub duplicates: AtomicU64,
    pub invalid: AtomicU64,
    pub ignored: AtomicU64,
    pub statuses: AtomicU64,
    pub commits: AtomicU64,
    pub commit_failures: AtomicU64,
    /// Gap records received (new, extended or repeated).
    pub gap_records: AtomicU64,
    /// Events devices reported dropped from their outboxes (counted once per seq).
    pub dropped_by_devices: AtomicU64,
    pub ws_sessions_dropped: AtomicU64,
    /// Clips newly announced on `video/{device}/captured`.
    pub clips_announced: AtomicU64,
}

impl IngestMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// The counters in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, help, c) in [
            (
                "vigie_ingest_received_total",
                "MQTT messages received",
                &self.received,
            ),
            (
                "vigie_ingest_inserted_total",
                "events newly stored",
                &self.inserted,
            ),
            (
                "vigie_ingest_duplicates_total",
                "events already stored",
                &self.duplicates,
            ),
            (
                "vigie_ingest_invalid_total",
                "messages refused as invalid",
                &self.invalid,
            ),
            (
                "vigie_ingest_ignored_total",
                "valid messages not stored",
                &self.ignored,
            ),
            (
                "vigie_ingest_statuses_total",
                "device statuses recorded",
                &self.statuses,
            ),
            (
                "vigie_ingest_commits_total",
                "database commits",
                &self.commits,
            ),
            (
                "vigie_ingest_commit_failures_total",
                "failed database commits",
                &self.commit_failures,
            ),
            (
                "vigie_ingest_gap_records_total",
                "gap records received from devices",
                &self.gap_records,
            ),
            (
                "vigie_device_events_dropped_total",
                "events devices reported dropped from their outbox (size or age bound)",
                &self.dropped_by_devices,
            ),
            (
                "vigie_ingest_clips_announced_total",
                "clips newly announced on video/{device}/captured",
                &self.clips_announced,
            ),
            (
                "vigie_ws_sessions_dropped_total",
                "WebSocket sessions dropped as too slow",
                &self.ws_sessions_dropped,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                Self::get(c)
            );
        }
        out
    }
}
