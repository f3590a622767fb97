//! Test helpers shared by the outbox's tests and provisioning's: a stored event as a sensor makes it.

use chrono::Utc;
use protocol::{DeviceId, EventEnvelope, EventKind, SensorId, SCHEMA_VERSION};
use uuid::Uuid;

/// A button press of `device` with `seq`, stamped now.
pub(crate) fn event_of(device: &str, seq: u64) -> EventEnvelope {
    EventEnvelope {
        schema_version: SCHEMA_VERSION,
        id: Uuid::now_v7(),
        device: DeviceId::new(device).unwrap(),
        seq,
        sensor: SensorId::new("mat-1").unwrap(),
        kind: EventKind::ButtonPressed,
        occurred_at: protocol::time::to_millis(Utc::now()),
        clock_synced: true,
        boot_id: None,
        boot_ms: None,
        clock_offset_ms: None,
    }
}
