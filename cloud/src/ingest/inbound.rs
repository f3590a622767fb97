//! Classifying one MQTT message: the pure step between a raw publish and the batcher.

use protocol::media::ClipCaptured;
use protocol::{DecodeError, DeviceStatus, EventEnvelope, GapRecord, Topic, TopicPrefix};

/// What an inbound message is, after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A valid event, to be stored.
    Event(EventEnvelope),
    /// A device heartbeat or last will.
    Status(DeviceStatus),
    /// Events a device dropped from its outbox.
    Gap(GapRecord),
    /// A clip announced on `video/{device}/captured`, to be stored once.
    Clip(ClipCaptured),
    /// A valid message on a topic the ingest does not store; acked and counted.
    Ignored(&'static str),
    /// Refused: acked, logged and counted, never stored; the stream goes on.
    Invalid(String),
}

/// Validates a message by its topic and payload. Never panics.
pub fn classify(prefix: &TopicPrefix, topic: &str, payload: &[u8]) -> Inbound {
    let parsed = match Topic::parse(prefix, topic) {
        Ok(t) => t,
        Err(e) => return Inbound::Invalid(e.to_string()),
    };
    match parsed {
        Topic::ButtonPressed(_) | Topic::Motion(_) => {
            match EventEnvelope::from_json(payload).and_then(|e| e.check_topic(&parsed).map(|_| e))
            {
                Ok(e) => Inbound::Event(e),
                Err(e) => Inbound::Invalid(format!("on {topic}: {e}")),
            }
        }
        Topic::Status(ref device) => match DeviceStatus::from_json(payload) {
            Ok(s) if &s.device == device => Inbound::Status(s),
            Ok(s) => Inbound::Invalid(
                DecodeError::Mismatch {
                    what: "device status",
                    reason: format!(
                        "on {topic}: device {} does not match topic device {device}",
                        s.device
                    ),
                }
                .to_string(),
            ),
            Err(e) => Inbound::Invalid(format!("on {topic}: {e}")),
        },
        Topic::Gap(ref device) => match GapRecord::from_json(payload) {
            Ok(g) if &g.device == device => Inbound::Gap(g),
            Ok(g) => Inbound::Invalid(format!(
                "on {topic}: gap record of device {} does not match topic device {device}",
                g.device
            )),
            Err(e) => Inbound::Invalid(format!("on {topic}: {e}")),
        },
        Topic::ClipCaptured(_) => match ClipCaptured::from_mqtt(&parsed, payload) {
            Ok(c) => Inbound::Clip(c),
            Err(e) => Inbound::Invalid(format!("on {topic}: {e}")),
        },
        Topic::Ack(_) => Inbound::Ignored("ack (published by the cloud)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{DeviceId, EventKind, SensorId, SCHEMA_VERSION};

    fn envelope(device: &str, kind: EventKind) -> EventEnvelope {
        EventEnvelope {
            schema_version: SCHEMA_VERSION,
            id: uuid::Uuid::now_v7(),
            device: DeviceId::new(device).unwrap(),
            seq: 1,
            sensor: SensorId::new("mat-1").unwrap(),
            kind,
            occurred_at: protocol::time::to_millis(chrono::Utc::now()),
            clock_synced: true,
            boot_id: None,
            boot_ms: None,
            clock_offset_ms: None,
        }
    }

    #[test]
    fn a_valid_event_on_its_topic_is_an_event() {
        let e = envelope("pi-1", EventKind::ButtonPressed);
        let p = TopicPrefix::new("t").unwrap();
        assert_eq!(
            classify(&p, "t/sensors/pi-1/button/pressed", &e.to_json()),
            Inbound::Event(e)
        );
    }

    #[test]
    fn bad_messages_are_invalid_with_a_reason() {
        let p = TopicPrefix::default();
        let e = envelope("pi-1", EventKind::Motion);
        let cases: [(&str, Vec<u8>, &str); 5] = [
            ("sensors/pi-1/photo/motion", b"{".to_vec(), "invalid event"),
            (
                "sensors/pi-2/photo/motion",
                e.to_json(),
                "does not match topic device",
            ),
            (
                "sensors/pi-1/button/pressed",
                e.to_json(),
                "does not match topic kind",
            ),
            ("sensors/PI/photo/motion", e.to_json(), "device id"),
            ("elsewhere/pi-1", e.to_json(), "not a Vigie topic"),
        ];
        for (topic, payload, expect) in cases {
            match classify(&p, topic, &payload) {
                Inbound::Invalid(reason) => assert!(reason.contains(expect), "{topic}: {reason}"),
                other => panic!("{topic}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_status_must_come_from_its_own_device() {
        let p = TopicPrefix::default();
        let s = DeviceStatus::last_will(DeviceId::new("pi-1").unwrap());
        assert!(matches!(
            classify(&p, "system/pi-1/status", &s.to_json()),
            Inbound::Status(_)
        ));
        assert!(matches!(
            classify(&p, "system/pi-2/status", &s.to_json()),
            Inbound::Invalid(_)
        ));
    }

    #[test]
    fn a_clip_announcement_is_a_clip_only_on_its_own_device_topic() {
        let t = protocol::time::to_millis(chrono::Utc::now());
        let clip = ClipCaptured {
            schema_version: protocol::media::MEDIA_SCHEMA_VERSION,
            clip_id: uuid::Uuid::now_v7(),
            device: DeviceId::new("pi-1").unwrap(),
            event_ids: vec![],
            started_at: t,
            ended_at: t,
            duration_ms: 0,
            trigger_offsets_ms: vec![],
            size_bytes: 10,
            sha256: "ab".repeat(32),
            codec: "h264".into(),
            width: 1,
            height: 1,
            fps: 1,
        };
        let p = TopicPrefix::default();
        let payload = serde_json::to_vec(&clip).unwrap();
        assert_eq!(
            classify(&p, "video/pi-1/captured", &payload),
            Inbound::Clip(clip)
        );
        for (topic, payload) in [
            ("video/pi-2/captured", payload.as_slice()),
            ("video/pi-1/captured", b"{}".as_slice()),
        ] {
            assert!(
                matches!(classify(&p, topic, payload), Inbound::Invalid(_)),
                "{topic}"
            );
        }
    }
}
