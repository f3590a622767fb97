//! The GPIO backend (rppal): each input pin gets a dedicated reader thread that waits for edge
//! interrupts and sends them, as [`RawEdge`]s, into the same sensor actor a simulated input uses.
//! Opening the pin happens at startup so that a machine without GPIO (not a Pi) fails clearly.

use std::thread::JoinHandle;
use std::time::Duration;

use ::actors::SharedClock;
use actix::Addr;
use rppal::gpio::{Gpio, InputPin, Level, Trigger};

use super::{RawEdge, SensorActor, SensorError};
use crate::config::{Active, Pull, SensorConfig};

/// How long one interrupt wait lasts before the thread checks whether its actor is still there.
const POLL_TIMEOUT: Duration = Duration::from_secs(1);

/// Opens the pin of `sensor` as an input with its pull resistor.
pub fn open(sensor: &SensorConfig) -> Result<InputPin, SensorError> {
    let err = |source| SensorError::Gpio {
        sensor: sensor.id.to_string(),
        source,
    };
    let pin_no = sensor.pin.ok_or_else(|| SensorError::NoPin {
        sensor: sensor.id.to_string(),
    })?;
    let pin = Gpio::new().map_err(err)?.get(pin_no).map_err(err)?;
    let mut input = match sensor.pull {
        Pull::Up => pin.into_input_pullup(),
        Pull::Down => pin.into_input_pulldown(),
        Pull::None => pin.into_input(),
    };
    input.set_interrupt(Trigger::Both, None).map_err(err)?;
    Ok(input)
}

fn is_active(level: Level, active: Active) -> bool {
    matches!(
        (level, active),
        (Level::High, Active::High) | (Level::Low, Active::Low)
    )
}

/// Starts the reader thread for an opened pin.
pub fn spawn_reader(
    sensor: &SensorConfig,
    mut pin: InputPin,
    addr: Addr<SensorActor>,
    clock: SharedClock,
) -> Result<JoinHandle<()>, SensorError> {
    let id = sensor.id.to_string();
    let active = sensor.active;
    let thread_id = id.clone();
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name(format!("gpio-{id}"))
        .spawn(move || {
            let _entered = span.enter();
            let send = |level: Level| {
                let edge = RawEdge {
                    active: is_active(level, active),
                    at: clock.monotonic(),
                };
                if addr.try_send(edge).is_err() {
                    tracing::warn!(sensor = %thread_id, "sensor mailbox full; edge dropped");
                }
            };
            send(pin.read());
            while addr.connected() {
                match pin.poll_interrupt(true, Some(POLL_TIMEOUT)) {
                    Ok(Some(event)) => send(match event.trigger {
                        Trigger::RisingEdge => Level::High,
                        Trigger::FallingEdge => Level::Low,
                        _ => pin.read(),
                    }),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(sensor = %thread_id, error = %e, "GPIO read failed; reader stops");
                        break;
                    }
                }
            }
        })
        .map_err(|source| SensorError::Thread { sensor: id, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_active_level_maps_pin_levels_to_pressed() {
        assert!(is_active(Level::Low, Active::Low));
        assert!(!is_active(Level::High, Active::Low));
        assert!(is_active(Level::High, Active::High));
        assert!(!is_active(Level::Low, Active::High));
    }
}
