//! The debounce core: pure, fed raw edges `(active, monotonic time)`, it decides when a press counts.
//!
//! Rules:
//! - A press starts at the first active edge after the input was released.
//! - It counts (one [`Step::activation`]) once the input has been stable (no edge) for `debounce`
//!   while active, and the press has lasted at least `min_active`.
//! - Bounces inside a press (inactive spells shorter than `debounce`) do not start a new press; a
//!   press that already counted never counts again until the input is released, i.e. stable-inactive
//!   for `debounce`.
//!
//! Time only moves when the caller says so: [`Debounce::edge`] and [`Debounce::poll`] take `now`, and
//! every step returns `wake_at`, the next time the caller must call `poll` if no edge comes first.

use std::time::Duration;

/// The two durations that shape a press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebounceConfig {
    /// The input must show no edge for this long to be considered stable.
    pub debounce: Duration,
    /// A press must last at least this long (from its first active edge) to count.
    pub min_active: Duration,
}

/// A press that counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activation {
    /// When the press started (its first active edge).
    pub pressed_at: Duration,
    /// When it was recognised (the detection time).
    pub detected_at: Duration,
}

/// What the caller must do after feeding an edge or polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Step {
    /// A press counted now.
    pub activation: Option<Activation>,
    /// Call [`Debounce::poll`] at this time unless another edge arrives first.
    pub wake_at: Option<Duration>,
}

/// The debounce state for one input.
#[derive(Debug, Clone)]
pub struct Debounce {
    config: DebounceConfig,
    active: bool,
    last_edge: Duration,
    /// Start of the current press, `None` while released.
    press_start: Option<Duration>,
    /// Whether the current press already counted.
    fired: bool,
}

impl Debounce {
    /// A released input.
    pub fn new(config: DebounceConfig) -> Self {
        Debounce {
            config,
            active: false,
            last_edge: Duration::ZERO,
            press_start: None,
            fired: false,
        }
    }

    /// Feeds one raw edge. A repeated level (no change) is ignored.
    pub fn edge(&mut self, active: bool, now: Duration) -> Step {
        // Settle whatever became due before this edge (e.g. a press that counted just before release).
        let before = self.settle(now);
        if active != self.active {
            self.active = active;
            self.last_edge = now;
            if active && self.press_start.is_none() {
                self.press_start = Some(now);
                self.fired = false;
            }
        }
        let after = self.settle(now);
        Step {
            activation: before.or(after),
            wake_at: self.wake_at(),
        }
    }

    /// Advances time to `now` without an edge.
    pub fn poll(&mut self, now: Duration) -> Step {
        let activation = self.settle(now);
        Step {
            activation,
            wake_at: self.wake_at(),
        }
    }

    /// Whether the input is inside a press (from its first active edge until its release).
    pub fn is_pressed(&self) -> bool {
        self.press_start.is_some()
    }

    fn settle(&mut self, now: Duration) -> Option<Activation> {
        let start = self.press_start?;
        let stable = now >= self.last_edge + self.config.debounce;
        if self.active {
            if !self.fired && stable && now >= start + self.config.min_active {
                self.fired = true;
                return Some(Activation {
                    pressed_at: start,
                    detected_at: self.due_at(start).max(self.last_edge).min(now),
                });
            }
        } else if stable {
            self.press_start = None;
            self.fired = false;
        }
        None
    }

    /// The earliest time the current press could count, ignoring future edges.
    fn due_at(&self, start: Duration) -> Duration {
        (self.last_edge + self.config.debounce).max(start + self.config.min_active)
    }

    fn wake_at(&self) -> Option<Duration> {
        let start = self.press_start?;
        match (self.active, self.fired) {
            (true, false) => Some(self.due_at(start)),
            (true, true) => None,
            (false, _) => Some(self.last_edge + self.config.debounce),
        }
    }
}

#[cfg(test)]
mod tests;
