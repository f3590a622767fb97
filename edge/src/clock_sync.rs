//! The device's clock against the cloud's: each event carries the boot it happened in and the
//! milliseconds since that boot (a clock no wall-clock step moves); the [`Prober`] asks the cloud
//! for its time (`GET /api/time`) when the uplink connects and every `api.clock_probe_s` after; and
//! when an event is sent, [`ClockSync::stamp`] adds the offset that places it on the cloud's clock
//! (`clock_offset_ms`), if a measurement was made in the same boot.
//!
//! Why the boot clock and not the wall clock: a Pi that boots offline starts with a wrong wall
//! clock, and NTP steps it when the Internet returns, about when the first measurement is made.
//! An offset between wall clocks measured after the step would leave every earlier event where the
//! wrong clock put it; the time since boot is the same before and after the step.
//!
//! Events from an earlier boot keep their own time (no measurement covers them); the cloud then
//! lists them by `occurred_at`, and `clock_synced` says whether to trust it.

use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ::actors::SharedClock;
use chrono::{DateTime, Utc};
use protocol::EventEnvelope;

use crate::api::{ApiClient, ApiStatus};

/// This boot's id (`/proc/sys/kernel/random/boot_id`), `None` where the system has none.
pub fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty() && id.len() <= 64).then(|| id.to_owned())
}

/// Milliseconds since boot, suspend included (`/proc/uptime`, 10 ms resolution).
pub fn boot_ms() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let seconds: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some((seconds * 1000.0) as u64)
}

/// A point in time the device and the cloud agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockSample {
    pub boot_id: String,
    /// The device's time since boot at the middle of the request.
    pub boot_ms: u64,
    /// The cloud's time at that moment.
    pub cloud_at: DateTime<Utc>,
    /// The cloud's time minus the device's wall clock at that moment.
    pub offset_ms: i64,
}

impl ClockSample {
    /// The offset that puts `event` on the cloud's clock, when it happened in this sample's boot.
    pub fn offset_for(&self, event: &EventEnvelope) -> Option<i64> {
        if event.boot_id.as_deref() != Some(self.boot_id.as_str()) {
            return None;
        }
        let since = i64::try_from(event.boot_ms?).ok()? - i64::try_from(self.boot_ms).ok()?;
        let corrected = self
            .cloud_at
            .checked_add_signed(chrono::Duration::milliseconds(since))?;
        let offset = (corrected - event.occurred_at).num_milliseconds();
        (offset.unsigned_abs() <= protocol::MAX_CLOCK_OFFSET_MS).then_some(offset)
    }
}

/// The latest measurement, shared by the prober (writes), the outbox (stamps) and the uplink
/// (status).
#[derive(Debug, Clone, Default)]
pub struct ClockSync(Arc<RwLock<Option<ClockSample>>>);

impl ClockSync {
    pub fn set(&self, sample: ClockSample) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(sample);
    }

    pub fn get(&self) -> Option<ClockSample> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The measured offset (cloud minus device wall clock), for the status.
    pub fn offset_ms(&self) -> Option<i64> {
        self.get().map(|s| s.offset_ms)
    }

    /// Adds `clock_offset_ms` to an event about to be sent, when a measurement covers it.
    pub fn stamp(&self, event: &mut EventEnvelope) {
        if let Some(sample) = self.0.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            event.clock_offset_ms = sample.offset_for(event);
        }
    }
}

/// The prober thread's handle: [`Prober::probe_now`] asks for a measurement (the uplink connected).
#[derive(Clone)]
pub struct Prober {
    tx: SyncSender<()>,
}

impl Prober {
    /// Starts the thread: one measurement at start, on each [`Prober::probe_now`], and every
    /// `every`.
    pub fn spawn(
        client: ApiClient,
        clock: SharedClock,
        sync: ClockSync,
        api: ApiStatus,
        every: Duration,
    ) -> std::io::Result<Prober> {
        let (tx, rx) = mpsc::sync_channel::<()>(1);
        let span = tracing::Span::current();
        std::thread::Builder::new()
            .name("vigie-clock".into())
            .spawn(move || {
                let _entered = span.enter();
                loop {
                    measure(&client, &clock, &sync, &api);
                    match rx.recv_timeout(every) {
                        Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            })?;
        Ok(Prober { tx })
    }

    pub fn probe_now(&self) {
        let _ = self.tx.try_send(());
    }
}

/// One round trip: the cloud's time is taken to be at the middle of it.
fn measure(client: &ApiClient, clock: &SharedClock, sync: &ClockSync, api: &ApiStatus) {
    let (Some(boot_id), Some(boot_before)) = (boot_id(), boot_ms()) else {
        return;
    };
    let wall_before = clock.now();
    let answer = client.get_time();
    let (Some(boot_after), wall_after) = (boot_ms(), clock.now()) else {
        return;
    };
    match answer {
        Ok(cloud_at) => {
            api.observe(true, "");
            let wall_mid = wall_before + (wall_after - wall_before) / 2;
            let sample = ClockSample {
                boot_id,
                boot_ms: boot_before + boot_after.saturating_sub(boot_before) / 2,
                cloud_at,
                offset_ms: (cloud_at - wall_mid).num_milliseconds(),
            };
            let previous = sync.offset_ms();
            if previous.is_none_or(|p| (p - sample.offset_ms).abs() > 1000) {
                tracing::info!(
                    clock_offset_ms = sample.offset_ms,
                    round_trip_ms = boot_after.saturating_sub(boot_before),
                    "measured the clock offset against the cloud"
                );
            }
            sync.set(sample);
        }
        Err((reachable, reason)) => {
            api.observe(reachable, &reason);
            tracing::debug!(%reason, "clock probe failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{DeviceId, EventKind, SensorId, SCHEMA_VERSION};

    fn event(occurred: &str, boot_id: &str, boot_ms: u64) -> EventEnvelope {
        EventEnvelope {
            schema_version: SCHEMA_VERSION,
            id: uuid::Uuid::now_v7(),
            device: DeviceId::new("pi-1").unwrap(),
            seq: 1,
            sensor: SensorId::new("mat-1").unwrap(),
            kind: EventKind::ButtonPressed,
            occurred_at: protocol::time::parse(occurred).unwrap(),
            clock_synced: false,
            boot_id: Some(boot_id.into()),
            boot_ms: Some(boot_ms),
            clock_offset_ms: None,
        }
    }

    fn sample() -> ClockSample {
        // 10 minutes after boot, the cloud said 2026-11-27T12:10:00Z.
        ClockSample {
            boot_id: "boot-a".into(),
            boot_ms: 600_000,
            cloud_at: protocol::time::parse("2026-11-27T12:10:00.000Z").unwrap(),
            offset_ms: 0,
        }
    }

    #[test]
    fn an_event_of_a_pi_that_booted_in_1970_is_placed_on_the_cloud_clock() {
        // One minute after boot, with the wall clock still at the epoch.
        let e = event("1970-01-01T00:01:00.000Z", "boot-a", 60_000);
        let offset = sample().offset_for(&e).unwrap();
        let mut stamped = e.clone();
        stamped.clock_offset_ms = Some(offset);
        assert_eq!(
            stamped.corrected_at(),
            protocol::time::parse("2026-11-27T12:01:00.000Z").unwrap()
        );
    }

    #[test]
    fn a_wall_clock_step_between_event_and_measurement_does_not_matter() {
        // The event was stamped with the right wall time (NTP had synced): the offset is 0 whatever
        // the wall clock did afterwards, because only the boot clock links the two.
        let e = event("2026-11-27T12:05:00.000Z", "boot-a", 300_000);
        assert_eq!(sample().offset_for(&e), Some(0));
    }

    #[test]
    fn an_event_of_another_boot_is_not_corrected() {
        let e = event("1970-01-01T00:01:00.000Z", "boot-b", 60_000);
        assert_eq!(sample().offset_for(&e), None);
        let sync = ClockSync::default();
        let mut e = e;
        sync.stamp(&mut e);
        assert_eq!(e.clock_offset_ms, None);
    }

    #[test]
    fn this_machine_has_a_boot_clock() {
        let id = boot_id().expect("Linux has a boot id");
        assert!(!id.is_empty());
        let a = boot_ms().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert!(boot_ms().unwrap() > a);
    }
}
