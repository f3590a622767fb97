//! Timestamps on the wire: RFC 3339 in UTC with millisecond precision.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// Truncates a time to the millisecond, the precision Vigie keeps everywhere.
pub fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(3)
}

/// Milliseconds since the Unix epoch.
pub fn epoch_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The time at `ms` milliseconds since the Unix epoch (clamped to chrono's range).
pub fn from_epoch_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Formats as `2026-11-27T13:28:25.123Z`.
pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Parses any RFC 3339 time (any offset), converted to UTC and truncated to the millisecond.
pub fn parse(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|t| to_millis(t.with_timezone(&Utc)))
}

/// Serde adapter for a required timestamp field.
pub mod rfc3339_ms {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse(&raw).map_err(|e| {
            serde::de::Error::custom(format_args!(
                "{raw:?} is not an RFC 3339 time ({e}); expected e.g. 2026-11-27T13:28:25.123Z"
            ))
        })
    }
}

/// Serde adapter for an optional timestamp field.
pub mod rfc3339_ms_opt {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let raw = Option::<std::borrow::Cow<'de, str>>::deserialize(d)?;
        raw.map(|raw| {
            parse(&raw).map_err(|e| {
                serde::de::Error::custom(format_args!("{raw:?} is not an RFC 3339 time ({e})"))
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_kept_to_the_millisecond_in_utc() {
        let t = parse("2026-11-27T14:28:25.123456+01:00").unwrap();
        assert_eq!(format(t), "2026-11-27T13:28:25.123Z");
        assert_eq!(from_epoch_ms(epoch_ms(t)), t);
    }

    #[test]
    fn a_time_without_offset_is_refused() {
        assert!(parse("2026-11-27T13:28:25").is_err());
    }
}
