//! Sensors: one supervised actor per input, fed raw edges by a backend.
//!
//! - [`debounce`]: the pure core that turns raw edges into activations.
//! - [`actor`]: the sensor actor (debounce timing, hand-off to the outbox).
//! - [`gpio`]: the rppal backend (one reader thread per pin).
//! - [`registry`]: the started sensors, looked up by kind or id (for `POST /sim/...`).

pub mod actor;
pub mod debounce;
pub mod gpio;
pub mod registry;

pub use actor::{RawEdge, SensorActor, Simulate};
pub use registry::{SensorHandle, Sensors};

/// Why a sensor could not start.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error(
        "sensor {sensor}: GPIO is not available (on a machine that is not a Raspberry Pi, set \
         `sensors.backend = \"simulated\"`)"
    )]
    Gpio {
        sensor: String,
        #[source]
        source: rppal::gpio::Error,
    },
    #[error("sensor {sensor}: no pin configured")]
    NoPin { sensor: String },
    #[error("sensor {sensor}: cannot start its reader thread")]
    Thread {
        sensor: String,
        #[source]
        source: std::io::Error,
    },
}
