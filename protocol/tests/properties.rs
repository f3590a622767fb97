//! Property tests: round trips, and parsers that never panic on arbitrary input.

use proptest::prelude::*;
use vigie_protocol::{
    time, DeviceId, DeviceStatus, EventEnvelope, EventKind, SensorId, Topic, TopicPrefix, MAX_SEQ,
    SCHEMA_VERSION,
};

fn slug() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?"
}

fn envelope() -> impl Strategy<Value = EventEnvelope> {
    (
        slug(),
        slug(),
        1u64..=MAX_SEQ,
        any::<u128>(),
        0i64..4_102_444_800_000,
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(-1_000_000_000_000i64..1_000_000_000_000),
    )
        .prop_map(
            |(device, sensor, seq, id, ms, motion, synced, offset)| EventEnvelope {
                schema_version: SCHEMA_VERSION,
                id: uuid::Uuid::from_u128(id),
                device: DeviceId::new(device).unwrap(),
                seq,
                sensor: SensorId::new(sensor).unwrap(),
                kind: if motion {
                    EventKind::Motion
                } else {
                    EventKind::ButtonPressed
                },
                occurred_at: time::from_epoch_ms(ms),
                clock_synced: synced,
                boot_id: offset.map(|_| "3f1c2a9e-boot".to_owned()),
                boot_ms: offset.map(|o| o.unsigned_abs() / 7),
                clock_offset_ms: offset,
            },
        )
}

proptest! {
    #[test]
    fn every_valid_envelope_round_trips(e in envelope()) {
        prop_assert_eq!(EventEnvelope::from_json(&e.to_json()).unwrap(), e);
    }

    #[test]
    fn every_seq_above_2_pow_62_is_refused(mut e in envelope(), seq in (MAX_SEQ + 1)..=u64::MAX) {
        e.seq = seq;
        let err = EventEnvelope::from_json(&e.to_json()).unwrap_err();
        prop_assert!(err.to_string().contains("`seq`"), "{}", err);
    }

    #[test]
    fn every_event_topic_round_trips_under_any_prefix(e in envelope(), prefix in "[a-z0-9/_-]{0,12}") {
        let prefix = TopicPrefix::new(prefix.trim_start_matches('/')).unwrap();
        let topic = Topic::for_event(&e.kind, e.device.clone()).unwrap();
        let rendered = topic.render(&prefix);
        prop_assert_eq!(Topic::parse(&prefix, &rendered).unwrap(), topic.clone());
        prop_assert!(e.check_topic(&topic).is_ok());
    }

    #[test]
    fn topic_parsing_never_panics(s in "\\PC{0,64}", prefix in "[a-z]{0,4}") {
        let _ = Topic::parse(&TopicPrefix::new(&prefix).unwrap(), &s);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = EventEnvelope::from_json(&bytes);
        let _ = DeviceStatus::from_json(&bytes);
    }

    #[test]
    fn slugs_are_exactly_the_valid_device_ids(s in "[a-zA-Z0-9_/+ -]{0,40}") {
        let valid = !s.is_empty()
            && s.len() <= 32
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        prop_assert_eq!(DeviceId::new(s.clone()).is_ok(), valid);
    }
}
