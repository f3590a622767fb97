//! Ingest counters, read by `/metrics` (Prometheus text) and by tests.
//!
//! `vigie_ingest_invalid_total` has one series without labels, every refused message, and one per
//! device the refused messages' topics named (`{device="..."}`): the device that sent them, as far
//! as the broker's ACL vouches for it. At most [`MAX_DEVICE_SERIES`] devices get a series of their
//! own; refusals from further devices are counted under `device="(other)"`, so a flood of made-up
//! device ids cannot grow the ingest's memory.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use protocol::DeviceId;

/// The most devices with a `vigie_ingest_invalid_total` series of their own.
pub const MAX_DEVICE_SERIES: usize = 1024;

/// The series refusals from devices beyond [`MAX_DEVICE_SERIES`] are counted under (not a valid
/// device id, so it names no device).
pub const OTHER_DEVICES: &str = "(other)";

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
    /// Refused messages per device named by their topic (bounded, see [`MAX_DEVICE_SERIES`]).
    invalid_by_device: Mutex<BTreeMap<String, u64>>,
}

impl IngestMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counts `n` refused messages, under `device` too when their topic named one.
    pub fn add_invalid(&self, device: Option<&DeviceId>, n: u64) {
        Self::add(&self.invalid, n);
        let Some(device) = device else { return };
        let mut by_device = self
            .invalid_by_device
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = if by_device.contains_key(device.as_str()) || by_device.len() < MAX_DEVICE_SERIES
        {
            device.as_str()
        } else {
            OTHER_DEVICES
        };
        *by_device.entry(key.to_owned()).or_default() += n;
    }

    /// Refused messages whose topic named `device` (0 when none was).
    pub fn invalid_of(&self, device: &str) -> u64 {
        self.invalid_by_device
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(device)
            .copied()
            .unwrap_or(0)
    }

    /// Refused messages per device their topics named (the bounded series, `(other)` included).
    pub fn invalid_by_device(&self) -> BTreeMap<String, u64> {
        self.invalid_by_device
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
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
                "messages refused as invalid (no label: all; device: those whose topic named it)",
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
            if name == "vigie_ingest_invalid_total" {
                let by_device = self
                    .invalid_by_device
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                for (device, n) in by_device.iter() {
                    let _ = writeln!(out, "{name}{{device=\"{}\"}} {n}", label_value(device));
                }
            }
        }
        out
    }
}

/// A Prometheus label value, escaped (backslash, double quote, line feed).
pub fn label_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str) -> DeviceId {
        DeviceId::new(id).unwrap()
    }

    #[test]
    fn refused_messages_are_counted_in_all_and_under_their_device() {
        let m = IngestMetrics::default();
        m.add_invalid(Some(&device("pi-1")), 1);
        m.add_invalid(Some(&device("pi-1")), 2);
        m.add_invalid(Some(&device("pi-2")), 1);
        m.add_invalid(None, 4);
        assert_eq!(IngestMetrics::get(&m.invalid), 8);
        assert_eq!((m.invalid_of("pi-1"), m.invalid_of("pi-2")), (3, 1));
        let text = m.render();
        for line in [
            "vigie_ingest_invalid_total 8",
            "vigie_ingest_invalid_total{device=\"pi-1\"} 3",
            "vigie_ingest_invalid_total{device=\"pi-2\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
    }

    #[test]
    fn devices_beyond_the_bound_share_one_series() {
        let m = IngestMetrics::default();
        for i in 0..MAX_DEVICE_SERIES + 10 {
            m.add_invalid(Some(&device(&format!("pi-{i}"))), 1);
        }
        m.add_invalid(Some(&device("pi-0")), 1);
        assert_eq!(m.invalid_of("pi-0"), 2, "a known device keeps its series");
        assert_eq!(m.invalid_of(OTHER_DEVICES), 10);
        let series = m.render().matches("vigie_ingest_invalid_total{").count();
        assert_eq!(series, MAX_DEVICE_SERIES + 1);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("pi-1"), "pi-1");
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
