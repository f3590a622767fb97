//! Login sessions as the API sees them: refresh tokens (`vgr_` + 256 random bits, stored as their
//! SHA-256 like device tokens), the lockout policy, and the per-client throttle of login attempts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::{HashPool, HashingError, PasswordCost, TrustedProxies};
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

/// Login attempts per client (an IPv4 address or an IPv6 /64, see [`super::client_key`]) in the
/// current window, in memory (a restart forgets it; the locks in the database stay); the proxies
/// whose `X-Forwarded-For` names the client; and the pool every password hash runs on (one thread
/// per core, [`HashPool`]).
///
/// An attempt is counted before its password is hashed ([`LoginThrottle::attempt`]), so parallel
/// guesses cannot all pass the check before any is counted; a success takes back its own attempt
/// only ([`LoginThrottle::succeeded`]), never the failures before it.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    attempts: Arc<Mutex<HashMap<IpAddr, (Instant, u32)>>>,
    proxies: Arc<TrustedProxies>,
    hashing: Arc<HashPool>,
    dummy: Arc<OnceLock<String>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::new(TrustedProxies::default())
    }
}

impl LoginThrottle {
    /// A throttle believing `X-Forwarded-For` from `proxies`; as many hashes at once as cores.
    pub fn new(proxies: TrustedProxies) -> LoginThrottle {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        LoginThrottle {
            attempts: Arc::default(),
            proxies: Arc::new(proxies),
            hashing: HashPool::new(cores),
            dummy: Arc::default(),
        }
    }

    /// The proxies whose `X-Forwarded-For` is believed.
    pub fn proxies(&self) -> &TrustedProxies {
        &self.proxies
    }

    /// Counts an attempt of `client`, or `Err(wait)` when it has failed too often lately (the
    /// refused attempt is not counted).
    pub fn attempt(
        &self,
        client: IpAddr,
        policy: &LoginPolicy,
        now: Instant,
    ) -> Result<(), Duration> {
        let mut map = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        // Forget old windows now and then, so the map stays small.
        if map.len() > 10_000 {
            map.retain(|_, (start, _)| {
                now.saturating_duration_since(*start) < policy.throttle_window
            });
        }
        let entry = map.entry(client).or_insert((now, 0));
        let elapsed = now.saturating_duration_since(entry.0);
        if elapsed >= policy.throttle_window {
            *entry = (now, 0);
        } else if entry.1 >= policy.throttle_failures {
            return Err(policy.throttle_window - elapsed);
        }
        entry.1 += 1;
        Ok(())
    }

    /// A success takes back its own attempt (the failures before it still count).
    pub fn succeeded(&self, client: IpAddr) {
        let mut map = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = map.get_mut(&client) {
            entry.1 = entry.1.saturating_sub(1);
        }
    }

    /// Runs a password hash or check on a hashing thread, at most one per core at once (a flood
    /// of logins queues here, asynchronously, instead of starving the machine or its memory).
    pub async fn hash<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        self.hashing.run(work).await
    }

    /// The fixed argon2id hash an unknown user's password is checked against, made once with the
    /// same parameters as real ones, so an unknown user costs the same time as a wrong password.
    pub fn dummy_hash(&self, cost: PasswordCost) -> String {
        self.dummy
            .get_or_init(|| super::hash_password("no user has this password", cost))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_throttled_after_its_attempts_until_the_window_passes() {
        let policy = LoginPolicy {
            throttle_failures: 3,
            throttle_window: Duration::from_secs(60),
            ..LoginPolicy::default()
        };
        let t = LoginThrottle::default();
        let addr: IpAddr = "127.0.0.9".parse().unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(t.attempt(addr, &policy, start).is_ok());
        }
        let wait = t
            .attempt(addr, &policy, start + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(t
            .attempt(addr, &policy, start + Duration::from_secs(61))
            .is_ok());
        let other: IpAddr = "127.0.0.10".parse().unwrap();
        assert!(t.attempt(other, &policy, start).is_ok(), "per address");
    }

    #[test]
    fn a_success_takes_back_its_own_attempt_but_not_the_failures_before_it() {
        let policy = LoginPolicy {
            throttle_failures: 3,
            throttle_window: Duration::from_secs(60),
            ..LoginPolicy::default()
        };
        let t = LoginThrottle::default();
        let addr: IpAddr = "127.0.0.9".parse().unwrap();
        let now = Instant::now();
        // Two failures, then a success: the success's attempt is taken back, the failures stay.
        for _ in 0..3 {
            t.attempt(addr, &policy, now).unwrap();
        }
        t.succeeded(addr);
        t.attempt(addr, &policy, now).unwrap();
        assert!(
            t.attempt(addr, &policy, now).is_err(),
            "the two failures still count after a success"
        );
    }

    #[actix_rt::test]
    async fn password_hashes_run_at_most_one_per_core_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let t = LoginThrottle::default();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs: Vec<_> = (0..cores * 4)
            .map(|_| {
                let (t, running, peak) = (t.clone(), running.clone(), peak.clone());
                async move {
                    t.hash(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        // Stands for the argon2 work.
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                    .unwrap()
                }
            })
            .collect();
        futures_util::future::join_all(jobs).await;
        assert_eq!(peak.load(Ordering::SeqCst), cores);
    }

    #[test]
    fn refresh_tokens_are_random_and_prefixed() {
        let a = new_refresh_token();
        assert!(a.starts_with(REFRESH_PREFIX) && a.len() == 4 + 43);
        assert_ne!(a, new_refresh_token());
    }
}
