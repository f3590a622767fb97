//! The RTSP server's counters and gauges, read by `/metrics` (Prometheus text, through
//! [`LiveCameras::rtsp_metrics`](crate::live::LiveCameras::rtsp_metrics)) and by tests. Refused
//! logins are also counted per device, for devices the store knows (the id in a refused request's
//! path is the caller's word: an unknown one is counted only in the total, so a scan of made-up
//! ids cannot grow the label set).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use protocol::DeviceId;

/// Counters (monotonic) and gauges (now) of the RTSP server.
#[derive(Debug, Default)]
pub struct RtspMetrics {
    pub connections_accepted: AtomicU64,
    /// `accept` failures (out of file descriptors, ...), each followed by a back-off.
    pub accept_errors: AtomicU64,
    /// Unauthenticated connections closed to make room for newer ones.
    pub unauthenticated_pushed_out: AtomicU64,
    /// Connections refused because every thread slot was taken.
    pub connections_refused: AtomicU64,
    /// Connections closed at their authentication deadline.
    pub deadline_closed: AtomicU64,
    /// Requests refused for a head or body above the limits.
    pub oversized_requests: AtomicU64,
    pub malformed_requests: AtomicU64,
    /// Connections closed for interleaved data before a successful RECORD.
    pub early_interleaved: AtomicU64,
    /// Logins refused: wrong token, another device's path, unknown or revoked device.
    pub logins_refused: AtomicU64,
    /// Logins refused at once because their address failed too often.
    pub logins_throttled: AtomicU64,
    /// Authenticated publishers refused because the publishers' pool was full.
    pub publishers_refused: AtomicU64,
    pub unauthenticated_open: AtomicU64,
    pub publishers_open: AtomicU64,
    refused_by_device: Mutex<BTreeMap<DeviceId, u64>>,
}

impl RtspMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set(gauge: &AtomicU64, n: u64) {
        gauge.store(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// A refused login for `device`, a device the store knows.
    pub fn refused_for(&self, device: &DeviceId) {
        *self
            .refused_by_device
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(device.clone())
            .or_default() += 1;
    }

    /// Refused logins per known device so far.
    pub fn refused_by_device(&self) -> BTreeMap<DeviceId, u64> {
        self.refused_by_device
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Refused logins of `device` so far.
    pub fn refused_of(&self, device: &DeviceId) -> u64 {
        self.refused_by_device
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(device)
            .copied()
            .unwrap_or(0)
    }

    /// The counters and gauges in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, kind, help, c) in [
            (
                "vigie_rtsp_connections_accepted_total",
                "counter",
                "RTSP connections accepted",
                &self.connections_accepted,
            ),
            (
                "vigie_rtsp_accept_errors_total",
                "counter",
                "RTSP accept failures (each backed off)",
                &self.accept_errors,
            ),
            (
                "vigie_rtsp_unauthenticated_pushed_out_total",
                "counter",
                "unauthenticated RTSP connections closed to make room",
                &self.unauthenticated_pushed_out,
            ),
            (
                "vigie_rtsp_connections_refused_total",
                "counter",
                "RTSP connections refused with every thread slot taken",
                &self.connections_refused,
            ),
            (
                "vigie_rtsp_deadline_closed_total",
                "counter",
                "RTSP connections closed at their authentication deadline",
                &self.deadline_closed,
            ),
            (
                "vigie_rtsp_oversized_requests_total",
                "counter",
                "RTSP requests refused for a head or body above the limits",
                &self.oversized_requests,
            ),
            (
                "vigie_rtsp_malformed_requests_total",
                "counter",
                "malformed RTSP messages",
                &self.malformed_requests,
            ),
            (
                "vigie_rtsp_early_interleaved_total",
                "counter",
                "RTSP connections closed for interleaved data before RECORD",
                &self.early_interleaved,
            ),
            (
                "vigie_rtsp_logins_refused_total",
                "counter",
                "RTSP publisher logins refused (wrong or revoked credentials)",
                &self.logins_refused,
            ),
            (
                "vigie_rtsp_logins_throttled_total",
                "counter",
                "RTSP logins refused at once after too many failures from the address",
                &self.logins_throttled,
            ),
            (
                "vigie_rtsp_publishers_refused_total",
                "counter",
                "authenticated RTSP publishers refused with the publishers' pool full",
                &self.publishers_refused,
            ),
            (
                "vigie_rtsp_unauthenticated_connections",
                "gauge",
                "RTSP connections open and not yet authenticated",
                &self.unauthenticated_open,
            ),
            (
                "vigie_rtsp_publishers",
                "gauge",
                "authenticated RTSP publishers connected",
                &self.publishers_open,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                Self::get(c)
            );
        }
        let name = "vigie_rtsp_device_logins_refused_total";
        let _ = writeln!(
            out,
            "# HELP {name} RTSP logins refused, per known device\n# TYPE {name} counter"
        );
        for (device, n) in self
            .refused_by_device
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(out, "{name}{{device=\"{device}\"}} {n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_logins_render_in_total_and_per_known_device() {
        let m = RtspMetrics::default();
        RtspMetrics::add(&m.logins_refused, 3);
        let device = DeviceId::new("pi-1").unwrap();
        m.refused_for(&device);
        m.refused_for(&device);
        let text = m.render();
        assert!(
            text.contains("\nvigie_rtsp_logins_refused_total 3\n"),
            "{text}"
        );
        assert!(
            text.contains("vigie_rtsp_device_logins_refused_total{device=\"pi-1\"} 2\n"),
            "{text}"
        );
        assert_eq!(m.refused_of(&device), 2);
    }
}
