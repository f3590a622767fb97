//! Device status (`system/{device}/status`) and the cloud's commit acknowledgement
//! (`system/{device}/ack`).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::{decode_json, DecodeError, DeviceId, MAX_SEQ, SCHEMA_VERSION};

/// Whether a device is connected. Unknown states from newer devices are kept, not refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeviceState {
    Online,
    Offline,
    Unknown(String),
}

impl DeviceState {
    pub fn as_str(&self) -> &str {
        match self {
            DeviceState::Online => "online",
            DeviceState::Offline => "offline",
            DeviceState::Unknown(s) => s,
        }
    }
}

impl Serialize for DeviceState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DeviceState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <Cow<'de, str>>::deserialize(d)?;
        Ok(match raw.as_ref() {
            "online" => DeviceState::Online,
            "offline" => DeviceState::Offline,
            other => DeviceState::Unknown(other.to_owned()),
        })
    }
}

impl JsonSchema for DeviceState {
    fn schema_name() -> Cow<'static, str> {
        "DeviceState".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "online or offline; readers keep states they do not know.",
            "examples": ["online", "offline"],
        })
    }
}

/// A device's heartbeat, or its last will (`state: offline`, published by the broker for it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeviceStatus {
    pub schema_version: u32,
    pub device: DeviceId,
    pub state: DeviceState,
    /// Events stored on the device and not yet confirmed by the cloud.
    #[serde(default)]
    pub queue_depth: u64,
    /// Seconds since `vigie-edge` started.
    #[serde(default)]
    pub uptime_s: u64,
    /// When the device sent this status (absent in a last will, which is written at connect).
    #[serde(default, with = "crate::time::rfc3339_ms_opt")]
    #[schemars(with = "Option<String>")]
    pub at: Option<DateTime<Utc>>,
    /// Whether the device's clock is synchronised.
    #[serde(default)]
    pub clock_synced: bool,
    /// Whether the device reaches the cloud's HTTP API (absent: no API configured). The broker is
    /// reachable by definition when a status arrives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_reachable: Option<bool>,
    /// The cloud's time minus the device's, as the device last measured it (absent: not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<i64>,
    /// Events the device dropped from its outbox because of its size or age bound, since it was
    /// installed (each drop is also reported by a [`GapRecord`]).
    #[serde(default)]
    pub dropped_events: u64,
    /// Acks on `system/{device}/ack` the device refused since it started because they confirmed
    /// seqs it never issued (a forged or stale ack); each is also logged by the device.
    #[serde(default)]
    pub refused_acks: u64,
}

impl DeviceStatus {
    /// The last will a device registers at connect: the broker publishes it if the device vanishes.
    pub fn last_will(device: DeviceId) -> DeviceStatus {
        DeviceStatus {
            schema_version: SCHEMA_VERSION,
            device,
            state: DeviceState::Offline,
            queue_depth: 0,
            uptime_s: 0,
            at: None,
            clock_synced: false,
            api_reachable: None,
            clock_offset_ms: None,
            dropped_events: 0,
            refused_acks: 0,
        }
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_json("device status", bytes)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a status always serialises")
    }
}

/// Why a device dropped events from its outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GapReason {
    /// The outbox held `outbox.max_events`.
    MaxEvents,
    /// The events were older than `outbox.max_age`.
    MaxAge,
}

impl GapReason {
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::MaxEvents => "max_events",
            GapReason::MaxAge => "max_age",
        }
    }
}

/// `system/{device}/gap`: the device dropped the unsent events `first_seq..=last_seq` from its
/// outbox (its size or age bound was reached). Never silent: the cloud stores it, alerts, and lets
/// the device's `acked_seq` pass over these seqs. A later drop right after it extends the same
/// record (same `first_seq`, higher `last_seq`). `1 <= first_seq <= last_seq <= 2^62`
/// (`MAX_SEQ`), so a record never spans more than 2^62 seqs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GapRecord {
    pub schema_version: u32,
    pub device: DeviceId,
    #[schemars(range(min = 1, max = MAX_SEQ))]
    pub first_seq: u64,
    #[schemars(range(min = 1, max = MAX_SEQ))]
    pub last_seq: u64,
    pub reason: GapReason,
    /// When the first and the last dropped events happened, by the device's clock.
    #[serde(with = "crate::time::rfc3339_ms")]
    #[schemars(with = "String")]
    pub oldest_at: DateTime<Utc>,
    #[serde(with = "crate::time::rfc3339_ms")]
    #[schemars(with = "String")]
    pub newest_at: DateTime<Utc>,
    /// When the device dropped them (the latest drop), by its clock.
    #[serde(with = "crate::time::rfc3339_ms")]
    #[schemars(with = "String")]
    pub dropped_at: DateTime<Utc>,
}

impl GapRecord {
    /// How many events the record says were dropped: 0 for a range [`GapRecord::validate`]
    /// refuses as empty, and never an overflow whatever the fields hold.
    pub fn count(&self) -> u64 {
        self.last_seq
            .checked_sub(self.first_seq)
            .and_then(|n| n.checked_add(1))
            .unwrap_or(0)
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        let gap: GapRecord = decode_json("gap record", bytes)?;
        gap.validate()?;
        Ok(gap)
    }

    /// Checks what the types alone cannot: `1 <= first_seq <= last_seq <= 2^62`, which also bounds
    /// the span at 2^62 seqs.
    pub fn validate(&self) -> Result<(), DecodeError> {
        let field = |field: &str, reason: String| DecodeError::Field {
            what: "gap record",
            field: field.to_owned(),
            reason,
        };
        for (name, seq) in [("first_seq", self.first_seq), ("last_seq", self.last_seq)] {
            if seq == 0 || seq > MAX_SEQ {
                return Err(field(
                    name,
                    format!("{seq} is out of range: must be 1 to {MAX_SEQ} (2^62)"),
                ));
            }
        }
        if self.last_seq < self.first_seq {
            return Err(field(
                "last_seq",
                format!(
                    "the range {}..={} is empty: last_seq must be at least first_seq",
                    self.first_seq, self.last_seq
                ),
            ));
        }
        Ok(())
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a gap record always serialises")
    }
}

/// The cloud's confirmation: every event of `device` with `seq <= acked_seq` is committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeviceAck {
    pub schema_version: u32,
    pub device: DeviceId,
    /// The highest sequence number below which the cloud holds every event of the device.
    pub acked_seq: u64,
}

impl DeviceAck {
    pub fn new(device: DeviceId, acked_seq: u64) -> DeviceAck {
        DeviceAck {
            schema_version: SCHEMA_VERSION,
            device,
            acked_seq,
        }
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_json("device ack", bytes)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an ack always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_last_will_says_offline_and_round_trips() {
        let will = DeviceStatus::last_will(DeviceId::new("pi-1").unwrap());
        let back = DeviceStatus::from_json(&will.to_json()).unwrap();
        assert_eq!(back, will);
        assert_eq!(back.state, DeviceState::Offline);
    }

    #[test]
    fn a_new_device_state_does_not_crash_an_old_reader() {
        let s = DeviceStatus::from_json(
            br#"{"schema_version":3,"device":"pi-1","state":"sleeping","battery":0.5}"#,
        )
        .unwrap();
        assert_eq!(s.state, DeviceState::Unknown("sleeping".into()));
    }

    #[test]
    fn a_gap_record_round_trips_and_refuses_an_empty_range() {
        let at = crate::time::parse("2026-11-27T10:00:00.000Z").unwrap();
        let gap = GapRecord {
            schema_version: SCHEMA_VERSION,
            device: DeviceId::new("pi-1").unwrap(),
            first_seq: 11,
            last_seq: 20,
            reason: GapReason::MaxEvents,
            oldest_at: at,
            newest_at: at,
            dropped_at: at,
        };
        assert_eq!(GapRecord::from_json(&gap.to_json()).unwrap(), gap);
        assert_eq!(gap.count(), 10);
        let mut bad = serde_json::to_value(&gap).unwrap();
        bad["last_seq"] = 10.into();
        let err = GapRecord::from_json(bad.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("last_seq"), "{err}");
    }

    #[test]
    fn a_gap_record_is_bounded_at_2_pow_62_naming_the_field() {
        let at = crate::time::parse("2026-11-27T10:00:00.000Z").unwrap();
        let gap = |first_seq, last_seq| GapRecord {
            schema_version: SCHEMA_VERSION,
            device: DeviceId::new("pi-1").unwrap(),
            first_seq,
            last_seq,
            reason: GapReason::MaxAge,
            oldest_at: at,
            newest_at: at,
            dropped_at: at,
        };
        let widest = gap(1, MAX_SEQ);
        assert_eq!(GapRecord::from_json(&widest.to_json()).unwrap(), widest);
        assert_eq!(widest.count(), MAX_SEQ);
        for (first, last, field) in [
            (0, 5, "first_seq"),
            (1 << 63, 1 << 63, "first_seq"),
            (1, MAX_SEQ + 1, "last_seq"),
            (1, u64::MAX, "last_seq"),
            (9, 8, "last_seq"),
        ] {
            let err = GapRecord::from_json(&gap(first, last).to_json()).unwrap_err();
            assert!(
                err.to_string().contains(&format!("`{field}`")),
                "{first}..={last}: {err}"
            );
        }
        assert_eq!(gap(0, u64::MAX).count(), 0, "no overflow, even unvalidated");
        assert_eq!(gap(9, 8).count(), 0);
    }

    #[test]
    fn an_ack_round_trips() {
        let ack = DeviceAck::new(DeviceId::new("pi-2").unwrap(), 41);
        assert_eq!(DeviceAck::from_json(&ack.to_json()).unwrap(), ack);
        let err = DeviceAck::from_json(br#"{"schema_version":1,"device":"pi-2","acked_seq":-1}"#)
            .unwrap_err();
        assert!(err.to_string().contains("acked_seq"), "{err}");
    }
}
