//! Validated identifiers: device ids and sensor ids are short lowercase slugs.
//!
//! A slug is 1 to 32 characters of `a-z`, `0-9` and `-`, starting with a letter or digit and not ending
//! with `-`. Slugs are safe in MQTT topics (no `/`, `+`, `#`), file names and URLs.

use std::borrow::Cow;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// The longest slug accepted.
pub const MAX_SLUG_LEN: usize = 32;

/// Why a string is not a valid slug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} {value:?} is longer than {MAX_SLUG_LEN} characters")]
    TooLong { what: &'static str, value: String },
    #[error("{what} {value:?} has {ch:?}: only lowercase letters, digits and '-' are allowed")]
    BadChar {
        what: &'static str,
        value: String,
        ch: char,
    },
    #[error("{what} {value:?} must start with a letter or digit and not end with '-'")]
    BadEdge { what: &'static str, value: String },
}

fn check_slug(what: &'static str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { what });
    }
    if value.len() > MAX_SLUG_LEN {
        return Err(IdError::TooLong {
            what,
            value: value.to_owned(),
        });
    }
    if let Some(ch) = value
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(IdError::BadChar {
            what,
            value: value.to_owned(),
            ch,
        });
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Err(IdError::BadEdge {
            what,
            value: value.to_owned(),
        });
    }
    Ok(())
}

macro_rules! slug_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `value` as a slug.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check_slug($what, &value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(value: &str) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "description": concat!("A ", $what, ": a short lowercase slug."),
                    "pattern": "^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$",
                    "maxLength": MAX_SLUG_LEN,
                })
            }
        }
    };
}

slug_type!(
    /// A device (one Raspberry Pi), e.g. `pi-1`. It is also the device's MQTT client id.
    DeviceId,
    "device id"
);
slug_type!(
    /// A sensor on a device, e.g. `mat-1` or `photo-1`.
    SensorId,
    "sensor id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_lowercase_slug_is_a_device_id() {
        assert_eq!(DeviceId::new("pi-1").unwrap().as_str(), "pi-1");
        assert!(DeviceId::new("a").is_ok());
        assert!(DeviceId::new("x".repeat(32)).is_ok());
    }

    #[test]
    fn bad_device_ids_are_rejected_with_the_reason() {
        assert!(matches!(DeviceId::new(""), Err(IdError::Empty { .. })));
        assert!(matches!(
            DeviceId::new("x".repeat(33)),
            Err(IdError::TooLong { .. })
        ));
        assert!(matches!(
            DeviceId::new("Pi-1"),
            Err(IdError::BadChar { ch: 'P', .. })
        ));
        assert!(matches!(
            DeviceId::new("pi/1"),
            Err(IdError::BadChar { ch: '/', .. })
        ));
        assert!(matches!(
            DeviceId::new("pi+"),
            Err(IdError::BadChar { ch: '+', .. })
        ));
        assert!(matches!(DeviceId::new("-pi"), Err(IdError::BadEdge { .. })));
        assert!(matches!(DeviceId::new("pi-"), Err(IdError::BadEdge { .. })));
        let message = DeviceId::new("Pi-1").unwrap_err().to_string();
        assert!(
            message.contains("device id") && message.contains("'P'"),
            "{message}"
        );
    }

    #[test]
    fn a_device_id_in_json_is_validated() {
        let ok: DeviceId = serde_json::from_str("\"pi-2\"").unwrap();
        assert_eq!(ok.as_str(), "pi-2");
        assert!(serde_json::from_str::<DeviceId>("\"PI 2\"").is_err());
    }
}
