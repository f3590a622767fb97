//! The event envelope: what a Pi publishes when a sensor fires, and what the cloud stores.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{decode_json, DecodeError, DeviceId, SensorId, Topic};

/// The envelope schema this build writes. Readers accept any version: fields they do not know are
/// ignored and fields added later carry defaults.
pub const SCHEMA_VERSION: u32 = 1;

/// The largest sequence number accepted anywhere on the wire (an envelope's `seq`, a gap record's
/// `first_seq` and `last_seq`): 2^62, so that `seq + 1`, a range's length and a few of them summed
/// never overflow an `i64` (the database's column type) or a `u64`. A Pi publishing one event a
/// millisecond would take 146 million years to reach it.
pub const MAX_SEQ: u64 = 1 << 62;

/// The largest clock correction accepted (100 years): a Pi that booted in 1970 is about 57 years off.
pub const MAX_CLOCK_OFFSET_MS: u64 = 100 * 366 * 24 * 3600 * 1000;

/// What happened. Unknown kinds (from a newer Pi) are kept as `Unknown` instead of failing the message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// The pressure mat was pressed.
    ButtonPressed,
    /// The photo sensor saw motion.
    Motion,
    /// A kind this build does not know.
    Unknown(String),
}

impl EventKind {
    /// The kinds this build knows, in a stable order.
    pub const KNOWN: [EventKind; 2] = [EventKind::ButtonPressed, EventKind::Motion];

    pub fn as_str(&self) -> &str {
        match self {
            EventKind::ButtonPressed => "button_pressed",
            EventKind::Motion => "motion",
            EventKind::Unknown(other) => other,
        }
    }

    /// Parses a known kind; anything else is `Unknown`.
    pub fn parse(s: &str) -> EventKind {
        match s {
            "button_pressed" => EventKind::ButtonPressed,
            "motion" => EventKind::Motion,
            other => EventKind::Unknown(other.to_owned()),
        }
    }

    pub fn is_known(&self) -> bool {
        !matches!(self, EventKind::Unknown(_))
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <Cow<'de, str>>::deserialize(d)?;
        Ok(EventKind::parse(&raw))
    }
}

impl JsonSchema for EventKind {
    fn schema_name() -> Cow<'static, str> {
        "EventKind".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "What happened. Known kinds: button_pressed, motion. Readers keep unknown kinds.",
            "examples": ["button_pressed", "motion"],
        })
    }
}

/// One sensor event, made on the Pi at detection and never changed afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventEnvelope {
    /// The envelope schema version the writer used.
    pub schema_version: u32,
    /// UUIDv7 made on the Pi at detection: unique, and sorts by creation time.
    pub id: Uuid,
    /// The device that saw the event.
    pub device: DeviceId,
    /// Per-device sequence number, from 1 to 2^62, without gaps on the device.
    #[schemars(range(min = 1, max = MAX_SEQ))]
    pub seq: u64,
    /// The sensor that fired.
    pub sensor: SensorId,
    pub kind: EventKind,
    /// When it happened, by the device's clock (UTC, millisecond precision).
    #[serde(with = "crate::time::rfc3339_ms")]
    #[schemars(with = "String")]
    pub occurred_at: DateTime<Utc>,
    /// Whether the device's clock was synchronised when the event happened.
    #[serde(default)]
    pub clock_synced: bool,
    /// The device's boot this event happened in (Linux `boot_id`), with `boot_ms`: together they
    /// place the event on a clock that no wall-clock step moves, so that an offset measured later in
    /// the same boot corrects it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// Milliseconds since the device booted (`CLOCK_BOOTTIME`) when the event happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_ms: Option<u64>,
    /// Added when sent, not at detection: the cloud's time minus the device's time for this event,
    /// from the device's measurement against the cloud in the same boot. The cloud's corrected time
    /// is `occurred_at + clock_offset_ms`; absent, it is `occurred_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<i64>,
}

impl EventEnvelope {
    /// The time the cloud lists the event by: the device's time corrected by the measured offset.
    pub fn corrected_at(&self) -> DateTime<Utc> {
        self.clock_offset_ms
            .and_then(|o| {
                self.occurred_at
                    .checked_add_signed(chrono::Duration::milliseconds(o))
            })
            .unwrap_or(self.occurred_at)
    }

    /// Decodes and validates an envelope from JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        let envelope: EventEnvelope = decode_json("event", bytes)?;
        envelope.validate()?;
        Ok(envelope)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serialises")
    }

    /// Checks what the types alone cannot: a known kind, a sequence number from 1 to [`MAX_SEQ`], a
    /// schema version.
    pub fn validate(&self) -> Result<(), DecodeError> {
        let field = |field: &str, reason: String| DecodeError::Field {
            what: "event",
            field: field.to_owned(),
            reason,
        };
        if self.schema_version == 0 {
            return Err(field("schema_version", "must be 1 or more".into()));
        }
        if self.seq == 0 || self.seq > MAX_SEQ {
            return Err(field(
                "seq",
                format!(
                    "{} is out of range: must be 1 to {MAX_SEQ} (2^62)",
                    self.seq
                ),
            ));
        }
        if self
            .boot_id
            .as_ref()
            .is_some_and(|b| b.is_empty() || b.len() > 64)
        {
            return Err(field("boot_id", "must be 1 to 64 characters".into()));
        }
        if self
            .clock_offset_ms
            .is_some_and(|o| o.unsigned_abs() > MAX_CLOCK_OFFSET_MS)
        {
            return Err(field(
                "clock_offset_ms",
                format!("must be within ±{MAX_CLOCK_OFFSET_MS} ms (100 years)"),
            ));
        }
        if !self.kind.is_known() {
            return Err(field(
                "kind",
                format!(
                    "unknown kind {:?}; this build knows button_pressed and motion",
                    self.kind.as_str()
                ),
            ));
        }
        Ok(())
    }

    /// Checks that an envelope received on `topic` agrees with it (device and kind).
    pub fn check_topic(&self, topic: &Topic) -> Result<(), DecodeError> {
        let mismatch = |reason: String| DecodeError::Mismatch {
            what: "event",
            reason,
        };
        match topic.event_kind() {
            Some(kind) if kind == self.kind => {}
            Some(kind) => {
                return Err(mismatch(format!(
                    "kind {} does not match topic kind {kind}",
                    self.kind
                )))
            }
            None => return Err(mismatch(format!("topic {topic:?} does not carry events"))),
        }
        if topic.device() != &self.device {
            return Err(mismatch(format!(
                "device {} does not match topic device {}",
                self.device,
                topic.device()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EventEnvelope {
        EventEnvelope {
            schema_version: SCHEMA_VERSION,
            id: Uuid::now_v7(),
            device: DeviceId::new("pi-1").unwrap(),
            seq: 7,
            sensor: SensorId::new("mat-1").unwrap(),
            kind: EventKind::ButtonPressed,
            occurred_at: crate::time::parse("2026-11-27T13:28:25.123Z").unwrap(),
            clock_synced: true,
            boot_id: None,
            boot_ms: None,
            clock_offset_ms: None,
        }
    }

    #[test]
    fn the_corrected_time_adds_the_measured_offset() {
        let mut e = sample();
        assert_eq!(e.corrected_at(), e.occurred_at);
        e.clock_offset_ms = Some(86_400_000);
        assert_eq!(
            e.corrected_at(),
            crate::time::parse("2026-11-28T13:28:25.123Z").unwrap()
        );
        let back = EventEnvelope::from_json(&e.to_json()).unwrap();
        assert_eq!(back.clock_offset_ms, Some(86_400_000));
        e.clock_offset_ms = Some(i64::MAX);
        let err = EventEnvelope::from_json(&e.to_json()).unwrap_err();
        assert!(err.to_string().contains("clock_offset_ms"), "{err}");
    }

    #[test]
    fn an_envelope_round_trips_through_json() {
        let e = sample();
        assert_eq!(EventEnvelope::from_json(&e.to_json()).unwrap(), e);
    }

    #[test]
    fn a_reader_ignores_fields_it_does_not_know() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["added_in_v2"] = serde_json::json!({"anything": [1, 2]});
        v["schema_version"] = 2.into();
        let e = EventEnvelope::from_json(v.to_string().as_bytes()).unwrap();
        assert_eq!(e.schema_version, 2);
    }

    #[test]
    fn a_missing_optional_field_takes_its_default() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v.as_object_mut().unwrap().remove("clock_synced");
        let e = EventEnvelope::from_json(v.to_string().as_bytes()).unwrap();
        assert!(!e.clock_synced);
    }

    #[test]
    fn an_unknown_kind_decodes_but_does_not_validate() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["kind"] = "smoke".into();
        let decoded: EventEnvelope = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(decoded.kind, EventKind::Unknown("smoke".into()));
        let err = EventEnvelope::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("`kind`"), "{err}");
    }

    #[test]
    fn errors_name_the_field_that_was_wrong() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["device"] = "Not A Slug".into();
        let err = EventEnvelope::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("`device`"), "{err}");

        let mut v = serde_json::to_value(sample()).unwrap();
        v["occurred_at"] = "yesterday".into();
        let err = EventEnvelope::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("`occurred_at`"), "{err}");

        let mut v = serde_json::to_value(sample()).unwrap();
        v.as_object_mut().unwrap().remove("seq");
        let err = EventEnvelope::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("seq"), "{err}");

        let err = EventEnvelope::from_json(b"{not json").unwrap_err();
        assert!(matches!(err, DecodeError::Field { .. }), "{err}");
    }

    #[test]
    fn a_zero_sequence_number_is_refused() {
        let mut e = sample();
        e.seq = 0;
        assert!(EventEnvelope::from_json(&e.to_json())
            .unwrap_err()
            .to_string()
            .contains("`seq`"));
    }

    #[test]
    fn a_sequence_number_above_2_pow_62_is_refused_naming_the_field() {
        let mut e = sample();
        e.seq = MAX_SEQ;
        assert_eq!(EventEnvelope::from_json(&e.to_json()).unwrap().seq, MAX_SEQ);
        for seq in [MAX_SEQ + 1, 1 << 63, u64::MAX] {
            e.seq = seq;
            let err = EventEnvelope::from_json(&e.to_json()).unwrap_err();
            assert!(err.to_string().contains("`seq`"), "{seq}: {err}");
            assert!(err.to_string().contains(&seq.to_string()), "{seq}: {err}");
        }
    }

    #[test]
    fn an_oversized_payload_is_refused_before_parsing() {
        let big = vec![b' '; crate::MAX_PAYLOAD_BYTES + 1];
        assert!(matches!(
            EventEnvelope::from_json(&big),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn an_envelope_must_agree_with_its_topic() {
        let e = sample();
        let pi1 = DeviceId::new("pi-1").unwrap();
        let pi2 = DeviceId::new("pi-2").unwrap();
        assert!(e.check_topic(&Topic::ButtonPressed(pi1.clone())).is_ok());
        assert!(e.check_topic(&Topic::Motion(pi1.clone())).is_err());
        assert!(e.check_topic(&Topic::ButtonPressed(pi2)).is_err());
        assert!(e.check_topic(&Topic::Status(pi1)).is_err());
    }
}
