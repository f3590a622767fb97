//! Whether the API answered: [`Reachability`] is pure, so that a change is logged once, not once
//! per retry; [`ApiStatus`] shares it between the bulk drain and the clock probe, shows it as the
//! `api` readiness component and in the device status.

use std::sync::{Arc, Mutex};

use ::actors::{ComponentState, HealthRegistry};

/// The readiness component name of the API.
pub const API: &str = "api";

/// The API's reachability as every user of the API sees it.
#[derive(Clone)]
pub struct ApiStatus {
    known: Arc<Mutex<Reachability>>,
    health: HealthRegistry,
}

impl ApiStatus {
    /// Registers the `api` component (not required for readiness).
    pub fn new(health: &HealthRegistry) -> ApiStatus {
        health.register(API, false);
        ApiStatus {
            known: Arc::default(),
            health: health.clone(),
        }
    }

    /// Records one request's result: a change is logged once and shown in readiness.
    pub fn observe(&self, reachable: bool, reason: &str) {
        let changed = self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(reachable);
        match changed {
            Some(true) => {
                tracing::info!("the cloud API answers");
                self.health.set(API, ComponentState::Ready);
            }
            Some(false) => {
                tracing::warn!(%reason, "the cloud API is unreachable; retrying with backoff");
                self.health.set(
                    API,
                    ComponentState::Degraded {
                        reason: format!("unreachable: {reason}"),
                    },
                );
            }
            None => {}
        }
    }

    /// `None` until the first request.
    pub fn get(&self) -> Option<bool> {
        self.known.lock().unwrap_or_else(|e| e.into_inner()).known
    }
}

/// The last known reachability of the API (unknown until the first request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reachability {
    known: Option<bool>,
}

impl Reachability {
    /// Records one request's result; returns `Some(reachable)` when it changed (log and show it).
    pub fn observe(&mut self, reachable: bool) -> Option<bool> {
        if self.known == Some(reachable) {
            return None;
        }
        self.known = Some(reachable);
        Some(reachable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_result_is_a_change() {
        assert_eq!(Reachability::default().observe(false), Some(false));
    }

    #[test]
    fn repeated_failures_are_reported_once() {
        let mut r = Reachability::default();
        r.observe(false);
        assert_eq!(r.observe(false), None);
        assert_eq!(r.observe(true), Some(true));
        assert_eq!(r.observe(true), None);
    }
}
