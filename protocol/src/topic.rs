//! MQTT topics, built and parsed in one place.
//!
//! Seed topics (`{device}` is a [`DeviceId`]):
//! `sensors/{device}/button/pressed`, `sensors/{device}/photo/motion`, `video/{device}/captured`,
//! `system/{device}/status`, `system/{device}/gap` (events dropped by the outbox's bounds), and
//! `system/{device}/ack` (published by the cloud, retained).
//! A [`TopicPrefix`] (e.g. `test-42`) is put in front of every topic so that deployments or test runs
//! sharing one broker never see each other's messages.

use crate::{DeviceId, EventKind, IdError};

/// Why a topic did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic {topic:?} is outside prefix {prefix:?}")]
    OutsidePrefix { topic: String, prefix: String },
    #[error("topic {topic:?} is not a Vigie topic")]
    Unknown { topic: String },
    #[error("topic {topic:?}: {source}")]
    BadDevice {
        topic: String,
        #[source]
        source: IdError,
    },
    #[error("topic prefix {prefix:?} is invalid: {reason}")]
    BadPrefix {
        prefix: String,
        reason: &'static str,
    },
}

/// A validated topic prefix; empty means none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicPrefix(String);

impl TopicPrefix {
    /// Validates a prefix: no MQTT wildcards, no leading `/`; a trailing `/` is dropped.
    pub fn new(prefix: &str) -> Result<Self, TopicError> {
        let trimmed = prefix.trim_end_matches('/');
        let bad = |reason| TopicError::BadPrefix {
            prefix: prefix.to_owned(),
            reason,
        };
        if trimmed.contains(['+', '#']) {
            return Err(bad("it must not contain MQTT wildcards '+' or '#'"));
        }
        if trimmed.starts_with('/') {
            return Err(bad("it must not start with '/'"));
        }
        if trimmed.contains('\0') {
            return Err(bad("it must not contain NUL"));
        }
        Ok(TopicPrefix(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn join(&self, rest: &str) -> String {
        if self.0.is_empty() {
            rest.to_owned()
        } else {
            format!("{}/{rest}", self.0)
        }
    }

    fn strip<'t>(&self, topic: &'t str) -> Option<&'t str> {
        if self.0.is_empty() {
            Some(topic)
        } else {
            topic.strip_prefix(self.0.as_str())?.strip_prefix('/')
        }
    }

    /// The subscriptions the cloud's ingest needs: every device's events and status.
    pub fn ingest_filters(&self) -> Vec<String> {
        [
            "sensors/+/button/pressed",
            "sensors/+/photo/motion",
            "video/+/captured",
            "system/+/status",
            "system/+/gap",
        ]
        .iter()
        .map(|f| self.join(f))
        .collect()
    }
}

/// A parsed Vigie topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `sensors/{device}/button/pressed`
    ButtonPressed(DeviceId),
    /// `sensors/{device}/photo/motion`
    Motion(DeviceId),
    /// `video/{device}/captured`
    ClipCaptured(DeviceId),
    /// `system/{device}/status`
    Status(DeviceId),
    /// `system/{device}/ack` (cloud → device, retained)
    Ack(DeviceId),
    /// `system/{device}/gap`: events the device dropped from its outbox
    Gap(DeviceId),
}

impl Topic {
    /// The topic a device publishes an event of `kind` on; `None` for a kind this build does not know.
    pub fn for_event(kind: &EventKind, device: DeviceId) -> Option<Topic> {
        match kind {
            EventKind::ButtonPressed => Some(Topic::ButtonPressed(device)),
            EventKind::Motion => Some(Topic::Motion(device)),
            EventKind::Unknown(_) => None,
        }
    }

    /// The event kind carried on this topic, if it carries events.
    pub fn event_kind(&self) -> Option<EventKind> {
        match self {
            Topic::ButtonPressed(_) => Some(EventKind::ButtonPressed),
            Topic::Motion(_) => Some(EventKind::Motion),
            _ => None,
        }
    }

    pub fn device(&self) -> &DeviceId {
        match self {
            Topic::ButtonPressed(d)
            | Topic::Motion(d)
            | Topic::ClipCaptured(d)
            | Topic::Status(d)
            | Topic::Ack(d)
            | Topic::Gap(d) => d,
        }
    }

    /// The full topic string under `prefix`.
    pub fn render(&self, prefix: &TopicPrefix) -> String {
        let rest = match self {
            Topic::ButtonPressed(d) => format!("sensors/{d}/button/pressed"),
            Topic::Motion(d) => format!("sensors/{d}/photo/motion"),
            Topic::ClipCaptured(d) => format!("video/{d}/captured"),
            Topic::Status(d) => format!("system/{d}/status"),
            Topic::Ack(d) => format!("system/{d}/ack"),
            Topic::Gap(d) => format!("system/{d}/gap"),
        };
        prefix.join(&rest)
    }

    /// Parses a full topic string under `prefix`. Never panics.
    pub fn parse(prefix: &TopicPrefix, topic: &str) -> Result<Topic, TopicError> {
        let rest = prefix
            .strip(topic)
            .ok_or_else(|| TopicError::OutsidePrefix {
                topic: topic.to_owned(),
                prefix: prefix.as_str().to_owned(),
            })?;
        let parts: Vec<&str> = rest.split('/').collect();
        let unknown = || TopicError::Unknown {
            topic: topic.to_owned(),
        };
        let (root, device, tail) = match parts.as_slice() {
            [root, device, tail @ ..] => (*root, *device, tail),
            _ => return Err(unknown()),
        };
        let make: fn(DeviceId) -> Topic = match (root, tail) {
            ("sensors", ["button", "pressed"]) => Topic::ButtonPressed,
            ("sensors", ["photo", "motion"]) => Topic::Motion,
            ("video", ["captured"]) => Topic::ClipCaptured,
            ("system", ["status"]) => Topic::Status,
            ("system", ["ack"]) => Topic::Ack,
            ("system", ["gap"]) => Topic::Gap,
            _ => return Err(unknown()),
        };
        let device = DeviceId::new(device).map_err(|source| TopicError::BadDevice {
            topic: topic.to_owned(),
            source,
        })?;
        Ok(make(device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pi1() -> DeviceId {
        DeviceId::new("pi-1").unwrap()
    }

    #[test]
    fn seed_topics_render_as_designed() {
        let none = TopicPrefix::default();
        assert_eq!(
            Topic::ButtonPressed(pi1()).render(&none),
            "sensors/pi-1/button/pressed"
        );
        assert_eq!(
            Topic::Motion(pi1()).render(&none),
            "sensors/pi-1/photo/motion"
        );
        assert_eq!(
            Topic::ClipCaptured(pi1()).render(&none),
            "video/pi-1/captured"
        );
        assert_eq!(Topic::Status(pi1()).render(&none), "system/pi-1/status");
        assert_eq!(Topic::Ack(pi1()).render(&none), "system/pi-1/ack");
        assert_eq!(Topic::Gap(pi1()).render(&none), "system/pi-1/gap");
        assert_eq!(
            Topic::parse(&none, "system/pi-1/gap").unwrap(),
            Topic::Gap(pi1())
        );
    }

    #[test]
    fn a_prefix_goes_in_front_of_every_topic_and_is_stripped_when_parsing() {
        let prefix = TopicPrefix::new("run-42/").unwrap();
        let topic = Topic::Status(pi1()).render(&prefix);
        assert_eq!(topic, "run-42/system/pi-1/status");
        assert_eq!(Topic::parse(&prefix, &topic).unwrap(), Topic::Status(pi1()));
        assert!(matches!(
            Topic::parse(&prefix, "system/pi-1/status"),
            Err(TopicError::OutsidePrefix { .. })
        ));
        assert_eq!(
            prefix.ingest_filters()[0],
            "run-42/sensors/+/button/pressed"
        );
    }

    #[test]
    fn a_prefix_with_wildcards_is_refused() {
        assert!(TopicPrefix::new("a/+").is_err());
        assert!(TopicPrefix::new("#").is_err());
        assert!(TopicPrefix::new("/abs").is_err());
    }

    #[test]
    fn topics_that_do_not_parse_are_errors() {
        let none = TopicPrefix::default();
        for bad in [
            "",
            "sensors",
            "sensors/pi-1",
            "sensors/pi-1/button",
            "sensors/pi-1/button/released",
            "sensors/pi-1/photo/motion/extra",
            "other/pi-1/status",
        ] {
            assert!(
                matches!(Topic::parse(&none, bad), Err(TopicError::Unknown { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            Topic::parse(&none, "sensors/PI_1/button/pressed"),
            Err(TopicError::BadDevice { .. })
        ));
    }

    #[test]
    fn event_topics_map_to_their_kind() {
        for kind in EventKind::KNOWN {
            let topic = Topic::for_event(&kind, pi1()).unwrap();
            assert_eq!(topic.event_kind(), Some(kind));
        }
        assert!(Topic::for_event(&EventKind::Unknown("x".into()), pi1()).is_none());
    }
}
