//! The started sensors, for the HTTP layer: find the sensor a `POST /sim/{kind}[?sensor=ID]` means.

use actix::Addr;
use protocol::{EventKind, SensorId};

use super::SensorActor;

/// One started sensor.
#[derive(Clone)]
pub struct SensorHandle {
    pub id: SensorId,
    pub kind: EventKind,
    pub addr: Addr<SensorActor>,
}

/// Every started sensor, in configuration order, and whether they are simulated.
#[derive(Clone, Default)]
pub struct Sensors {
    pub simulated: bool,
    pub all: Vec<SensorHandle>,
}

impl Sensors {
    /// The sensor `id` if given (it must be of `kind`), else the first sensor of `kind`.
    pub fn find(&self, kind: &EventKind, id: Option<&str>) -> Option<&SensorHandle> {
        self.all
            .iter()
            .filter(|s| &s.kind == kind)
            .find(|s| id.is_none_or(|id| s.id.as_str() == id))
    }
}
