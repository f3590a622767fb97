//! Login sessions as the API sees them: refresh tokens (`vgr_` + 256 random bits, stored as their
//! SHA-256 like device tokens), the lockout policy, and the per-address throttle of failed logins.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

/// Every refresh token starts with this.
pub const REFRESH_PREFIX: &str = "vgr_";

/// A new refresh token.
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{REFRESH_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// How logins are protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// How long a session (and its refresh token) lives.
    pub session_ttl: Duration,
    /// Failed logins in a row that lock a user.
    pub max_failures: u32,
    /// How long a lock lasts.
    pub lock_for: Duration,
    /// Failed logins from one address within `throttle_window` before it gets 429s.
    pub throttle_failures: u32,
    pub throttle_window: Duration,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        LoginPolicy {
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            max_failures: 5,
            lock_for: Duration::from_secs(15 * 60),
            throttle_failures: 20,
            throttle_window: Duration::from_secs(5 * 60),
        }
    }
}

/// Failed logins per client address in the current window (in memory: a restart forgets it, the
/// per-user lock in the database does not).
#[derive(Debug, Clone, Default)]
pub struct LoginThrottle {
    failures: Arc<Mutex<HashMap<IpAddr, (Instant, u32)>>>,
}

impl LoginThrottle {
    /// `Some(wait)` when `addr` has failed too often lately.
    pub fn blocked(&self, addr: IpAddr, policy: &LoginPolicy, now: Instant) -> Option<Duration> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let &(start, count) = map.get(&addr)?;
        let elapsed = now.saturating_duration_since(start);
        (elapsed < policy.throttle_window && count >= policy.throttle_failures)
            .then(|| policy.throttle_window - elapsed)
    }

    /// Counts a failure of `addr`.
    pub fn failed(&self, addr: IpAddr, policy: &LoginPolicy, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Forget old windows now and then, so the map stays small.
        if map.len() > 10_000 {
            map.retain(|_, (start, _)| {
                now.saturating_duration_since(*start) < policy.throttle_window
            });
        }
        let entry = map.entry(addr).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= policy.throttle_window {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// A success from `addr` clears its count.
    pub fn succeeded(&self, addr: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_throttled_after_its_failures_until_the_window_passes() {
        let policy = LoginPolicy {
            throttle_failures: 3,
            throttle_window: Duration::from_secs(60),
            ..LoginPolicy::default()
        };
        let t = LoginThrottle::default();
        let addr: IpAddr = "127.0.0.9".parse().unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(t.blocked(addr, &policy, start).is_none());
            t.failed(addr, &policy, start);
        }
        let wait = t
            .blocked(addr, &policy, start + Duration::from_secs(10))
            .unwrap();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(t
            .blocked(addr, &policy, start + Duration::from_secs(61))
            .is_none());
        let other: IpAddr = "127.0.0.10".parse().unwrap();
        assert!(t.blocked(other, &policy, start).is_none(), "per address");
        t.succeeded(addr);
        assert!(t.blocked(addr, &policy, start).is_none());
    }

    #[test]
    fn refresh_tokens_are_random_and_prefixed() {
        let a = new_refresh_token();
        assert!(a.starts_with(REFRESH_PREFIX) && a.len() == 4 + 43);
        assert_ne!(a, new_refresh_token());
    }
}
