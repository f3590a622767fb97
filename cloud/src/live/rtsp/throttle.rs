//! Failed RTSP logins per address (pure: the time is given). Each address (see [`AddressKey`]) has
//! a bucket of `burst` failures that refills one every `refill`; with the bucket empty the server
//! refuses the address's logins at once, without looking the token up, until a failure's worth has
//! refilled. Only wrong credentials take from it: a request without any (FFmpeg's first ANNOUNCE,
//! before it knows it must authenticate) does not.
//!
//! Memory is bounded: at most `max_addresses` buckets are kept; a new address when full replaces
//! the fullest bucket (the least suspicious).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::admission::AddressKey;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    /// When the bucket was last refilled.
    at: Instant,
}

/// The failure buckets.
#[derive(Debug)]
pub struct FailedLogins {
    burst: u32,
    refill: Duration,
    max_addresses: usize,
    buckets: HashMap<AddressKey, Bucket>,
}

impl FailedLogins {
    pub fn new(burst: u32, refill: Duration, max_addresses: usize) -> Self {
        Self {
            burst,
            refill: refill.max(Duration::from_millis(1)),
            max_addresses: max_addresses.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Whether a login from `address` may be checked now; else how long until it may.
    pub fn check(&mut self, address: AddressKey, now: Instant) -> Result<(), Duration> {
        let Some(bucket) = self.refilled(address, now) else {
            return Ok(());
        };
        if bucket.tokens > 0 {
            Ok(())
        } else {
            Err((bucket.at + self.refill).saturating_duration_since(now))
        }
    }

    /// A login from `address` failed.
    pub fn failed(&mut self, address: AddressKey, now: Instant) {
        if self.refilled(address, now).is_none() {
            if self.buckets.len() >= self.max_addresses {
                let fullest = self
                    .buckets
                    .iter()
                    .max_by_key(|(k, b)| (b.tokens, std::cmp::Reverse(**k)))
                    .map(|(k, _)| *k);
                if let Some(k) = fullest {
                    self.buckets.remove(&k);
                }
            }
            self.buckets.insert(
                address,
                Bucket {
                    tokens: self.burst,
                    at: now,
                },
            );
        }
        if let Some(bucket) = self.buckets.get_mut(&address) {
            bucket.tokens = bucket.tokens.saturating_sub(1);
        }
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    /// The address's bucket brought up to `now`; a bucket refilled whole is forgotten.
    fn refilled(&mut self, address: AddressKey, now: Instant) -> Option<Bucket> {
        let bucket = self.buckets.get_mut(&address)?;
        let steps = now.saturating_duration_since(bucket.at).as_nanos() / self.refill.as_nanos();
        if steps > 0 {
            let steps = u32::try_from(steps).unwrap_or(u32::MAX);
            bucket.tokens = bucket.tokens.saturating_add(steps).min(self.burst);
            bucket.at += self.refill * steps.min(1 << 20);
        }
        if bucket.tokens >= self.burst {
            self.buckets.remove(&address);
            return None;
        }
        Some(*bucket)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn addr(last: u8) -> AddressKey {
        AddressKey::from(IpAddr::from([192, 0, 2, last]))
    }

    const REFILL: Duration = Duration::from_secs(6);

    #[test]
    fn the_failure_after_the_burst_is_refused_until_one_refills() {
        let mut f = FailedLogins::new(3, REFILL, 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(f.check(addr(1), t0), Ok(()));
            f.failed(addr(1), t0);
        }
        assert_eq!(f.check(addr(1), t0), Err(REFILL));
        assert_eq!(
            f.check(addr(1), t0 + Duration::from_secs(4)),
            Err(Duration::from_secs(2))
        );
        assert_eq!(f.check(addr(1), t0 + REFILL), Ok(()));
        f.failed(addr(1), t0 + REFILL);
        assert!(f.check(addr(1), t0 + REFILL).is_err());
        // Another address is not affected.
        assert_eq!(f.check(addr(2), t0), Ok(()));
    }

    #[test]
    fn a_bucket_refilled_whole_is_forgotten() {
        let mut f = FailedLogins::new(3, REFILL, 100);
        let t0 = Instant::now();
        f.failed(addr(1), t0);
        assert_eq!(f.tracked(), 1);
        assert_eq!(f.check(addr(1), t0 + REFILL), Ok(()));
        assert_eq!(f.tracked(), 0);
    }

    #[test]
    fn many_addresses_keep_the_emptiest_buckets_within_the_bound() {
        let mut f = FailedLogins::new(3, REFILL, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            f.failed(addr(0), t0);
        }
        for last in 1..=200 {
            f.failed(addr(last), t0);
        }
        assert!(f.tracked() <= 10);
        assert!(
            f.check(addr(0), t0).is_err(),
            "the emptied bucket is still kept"
        );
    }
}
