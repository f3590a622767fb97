//! Device status (`system/{device}/status`) and the cloud's commit acknowledgement
//! (`system/{device}/ack`).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::{decode_json, DecodeError, DeviceId, SCHEMA_VERSION};

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
        }
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_json("device status", bytes)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a status always serialises")
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
    fn an_ack_round_trips() {
        let ack = DeviceAck::new(DeviceId::new("pi-2").unwrap(), 41);
        assert_eq!(DeviceAck::from_json(&ack.to_json()).unwrap(), ack);
        let err = DeviceAck::from_json(br#"{"schema_version":1,"device":"pi-2","acked_seq":-1}"#)
            .unwrap_err();
        assert!(err.to_string().contains("acked_seq"), "{err}");
    }
}
