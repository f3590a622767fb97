//! Capped exponential backoff with full jitter: the n-th retry waits a uniformly random time in
//! `[0, min(cap, base * 2^n)]`, so that many devices coming back together do not retry in lockstep.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Retry delays for one thing that can fail (a connection, a commit, an actor).
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    rng: StdRng,
}

impl Backoff {
    /// Backoff from `base` doubling up to `cap`, jittered from the OS's entropy.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self::with_rng(base, cap, StdRng::from_os_rng())
    }

    /// The same with a fixed seed, for reproducible tests.
    pub fn seeded(base: Duration, cap: Duration, seed: u64) -> Self {
        Self::with_rng(base, cap, StdRng::seed_from_u64(seed))
    }

    fn with_rng(base: Duration, cap: Duration, rng: StdRng) -> Self {
        Backoff {
            base,
            cap: cap.max(base),
            attempt: 0,
            rng,
        }
    }

    /// The ceiling of the next delay: `min(cap, base * 2^attempt)`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before the next try; each call counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        if ceiling.is_zero() {
            return Duration::ZERO;
        }
        let nanos = self
            .rng
            .random_range(0..=ceiling.as_nanos().min(u64::MAX as u128) as u64);
        Duration::from_nanos(nanos)
    }

    /// Failures counted since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Call after a success: the next failure starts again from `base`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_ceiling_doubles_until_the_cap() {
        let mut b = Backoff::seeded(100 * MS, 1000 * MS, 1);
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            ceilings.push(b.ceiling().as_millis());
            b.next_delay();
        }
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn every_delay_lies_between_zero_and_the_ceiling() {
        let mut b = Backoff::seeded(10 * MS, 5000 * MS, 7);
        for _ in 0..200 {
            let ceiling = b.ceiling();
            assert!(b.next_delay() <= ceiling);
        }
    }

    #[test]
    fn delays_are_jittered_so_devices_do_not_retry_in_lockstep() {
        let first_delays: Vec<Duration> = (0..100)
            .map(|seed| {
                let mut b = Backoff::seeded(1000 * MS, 60_000 * MS, seed);
                b.next_delay();
                b.next_delay()
            })
            .collect();
        let mut distinct = first_delays.clone();
        distinct.sort();
        distinct.dedup();
        assert!(
            distinct.len() > 90,
            "only {} distinct delays",
            distinct.len()
        );
        let mean = first_delays.iter().sum::<Duration>() / 100;
        assert!(mean > 600 * MS && mean < 1400 * MS, "mean {mean:?}");
    }

    #[test]
    fn a_success_resets_the_schedule() {
        let mut b = Backoff::seeded(100 * MS, 10_000 * MS, 3);
        for _ in 0..5 {
            b.next_delay();
        }
        assert_eq!(b.ceiling(), 3200 * MS);
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.ceiling(), 100 * MS);
    }

    #[test]
    fn many_failures_never_overflow() {
        let mut b = Backoff::seeded(MS, Duration::from_secs(30), 9);
        for _ in 0..10_000 {
            assert!(b.next_delay() <= Duration::from_secs(30));
        }
    }
}
