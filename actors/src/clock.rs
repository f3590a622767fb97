//! Time behind a trait: [`SystemClock`] in production, [`SimulatedClock`] in tests, so that timing
//! logic is tested by advancing time rather than sleeping.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// A source of wall-clock and monotonic time.
pub trait Clock: Send + Sync + 'static {
    /// Wall-clock time (may jump when the clock is set).
    fn now(&self) -> DateTime<Utc>;
    /// Monotonic time since an arbitrary fixed origin; never goes backwards.
    fn monotonic(&self) -> Duration;
}

/// A clock shared between actors.
pub type SharedClock = Arc<dyn Clock>;

/// The real clock.
#[derive(Debug, Clone)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }

    pub fn shared() -> SharedClock {
        Arc::new(SystemClock::new())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Clone)]
pub struct SimulatedClock {
    inner: Arc<Mutex<(DateTime<Utc>, Duration)>>,
}

impl SimulatedClock {
    /// A clock showing `wall`, with monotonic time zero.
    pub fn new(wall: DateTime<Utc>) -> Self {
        SimulatedClock {
            inner: Arc::new(Mutex::new((wall, Duration::ZERO))),
        }
    }

    /// Moves both wall and monotonic time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut inner = self.inner.lock().expect("clock lock");
        inner.0 += chrono::Duration::from_std(by).expect("advance fits chrono");
        inner.1 += by;
    }

    /// Sets the wall clock (as NTP would), leaving monotonic time alone.
    pub fn set_wall(&self, wall: DateTime<Utc>) {
        self.inner.lock().expect("clock lock").0 = wall;
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        self.inner.lock().expect("clock lock").0
    }
    fn monotonic(&self) -> Duration {
        self.inner.lock().expect("clock lock").1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_clock_moves_only_when_advanced() {
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let clock = SimulatedClock::new(start);
        assert_eq!(clock.now(), start);
        assert_eq!(clock.monotonic(), Duration::ZERO);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.monotonic(), Duration::from_millis(1500));
        assert_eq!((clock.now() - start).num_milliseconds(), 1500);
    }

    #[test]
    fn setting_the_wall_clock_leaves_monotonic_time_alone() {
        let clock = SimulatedClock::new(DateTime::from_timestamp(0, 0).unwrap());
        clock.advance(Duration::from_secs(3));
        let synced = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        clock.set_wall(synced);
        assert_eq!(clock.now(), synced);
        assert_eq!(clock.monotonic(), Duration::from_secs(3));
    }
}
