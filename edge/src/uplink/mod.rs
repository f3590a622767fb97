//! The uplink: MQTT to the cloud.
//!
//! - [`actor`]: the supervised actor that owns the rumqttc client and event loop.
//! - [`tracker`]: the pure pkid ↔ `seq` bookkeeping.
//! - [`options`]: the connection options (client id, session, last will, transport).

pub mod actor;
pub mod options;
pub mod tracker;

pub use actor::{PublishClip, PublishEvent, PublishGap, Shutdown, StatusFacts, UplinkActor};
