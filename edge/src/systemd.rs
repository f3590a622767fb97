//! The edge under systemd (`Type=notify`, `WatchdogSec=`; `edge/debian/vigie-edge.service`): READY
//! once the outbox is open and the actors started, STOPPING at shutdown, and watchdog pings from a
//! thread of their own while every beating actor (the outbox) beats. A wedged outbox (its thread
//! blocked) stops the pings within the watchdog period, so systemd restarts the edge; a Pi that is
//! merely offline keeps pinging (readiness is not liveness). Outside systemd (no `NOTIFY_SOCKET`)
//! every call here does nothing.

use std::time::{Duration, Instant};

use ::actors::{HealthRegistry, BEAT_EVERY, BEAT_WITHIN};
use sd_notify::NotifyState;

/// The watchdog period systemd asks for (`WATCHDOG_USEC`), if any.
pub fn watchdog() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|period| !period.is_zero())
}

/// How long a beating actor may stay silent: the usual allowance, or half the watchdog period when
/// that is shorter (so the pings stop well before systemd gives up), never under two beats.
pub fn beat_allowance(watchdog: Option<Duration>) -> Duration {
    match watchdog {
        Some(period) => (period / 2).clamp(2 * BEAT_EVERY, BEAT_WITHIN),
        None => BEAT_WITHIN,
    }
}

/// Tells systemd the edge is up, with a status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd the edge is stopping (the outbox being flushed).
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: flushing the outbox"),
    ]);
}

/// A status line while starting (e.g. waiting for the outbox's lock).
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// With a watchdog period, pings it every quarter period from a thread of its own, as long as no
/// beating actor is late in `health`.
pub fn spawn_watchdog(health: HealthRegistry, period: Duration) -> std::io::Result<()> {
    let every = (period / 4).max(Duration::from_millis(100));
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            let mut withheld = false;
            loop {
                std::thread::sleep(every);
                let late = health.late_at(Instant::now());
                if late.is_empty() {
                    if withheld {
                        tracing::info!("every actor beats again: watchdog pings resume");
                        withheld = false;
                    }
                    send(&[NotifyState::Watchdog]);
                } else if !withheld {
                    tracing::error!(
                        ?late,
                        "an actor stopped beating: no more watchdog pings, \
                                            systemd will restart the edge"
                    );
                    withheld = true;
                }
            }
        })
        .map(|_| ())
}

/// Fault injection, for the tests only.
pub mod fault {
    use std::sync::OnceLock;

    /// `VIGIE_EDGE_FAULT_STALL_OUTBOX=1` blocks the outbox actor's thread for good at its first
    /// stored event, as a deadlock would, to prove the watchdog pings then stop
    /// (`edge/tests/systemd_notify.rs`). Never set it on a device.
    pub const STALL_OUTBOX: &str = "VIGIE_EDGE_FAULT_STALL_OUTBOX";

    pub fn stall_outbox_if_asked() {
        static STALL: OnceLock<bool> = OnceLock::new();
        if *STALL.get_or_init(|| std::env::var(STALL_OUTBOX).is_ok_and(|v| v.trim() == "1")) {
            eprintln!("{STALL_OUTBOX}: the outbox's thread stops here, as in a deadlock");
            loop {
                std::thread::park();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowance_stays_inside_half_the_watchdog_period() {
        assert_eq!(beat_allowance(None), BEAT_WITHIN);
        assert_eq!(beat_allowance(Some(Duration::from_secs(60))), BEAT_WITHIN);
        assert_eq!(
            beat_allowance(Some(Duration::from_secs(8))),
            Duration::from_secs(4)
        );
        assert_eq!(beat_allowance(Some(Duration::from_secs(1))), 2 * BEAT_EVERY);
    }
}
