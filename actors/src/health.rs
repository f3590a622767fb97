//! A registry of each component's state, shared by the actors that report into it and the `/readyz`
//! endpoint that reads it. Cheap to clone; readers get a consistent snapshot.
//!
//! It also keeps heartbeats, for liveness (`/healthz`): an actor that [`HealthRegistry::expect_beats`]
//! calls [`HealthRegistry::beat`] from a timer of its own, so a wedged actor (its thread blocked, its
//! mailbox never served) stops beating, and [`HealthRegistry::late_at`] names it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What a component says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ComponentState {
    /// Not ready yet (connecting, opening storage).
    Starting,
    /// Working.
    Ready,
    /// Working but impaired (e.g. the uplink is down and events queue locally).
    Degraded { reason: String },
    /// Crashed and waiting to be restarted by its supervisor.
    Restarting { restarts: u32, reason: String },
    /// Stopped for good.
    Failed { reason: String },
}

impl ComponentState {
    /// Whether a component in this state lets the process count as ready.
    pub fn is_ready(&self) -> bool {
        matches!(
            self,
            ComponentState::Ready | ComponentState::Degraded { .. }
        )
    }
}

/// One component's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentHealth {
    #[serde(flatten)]
    pub state: ComponentState,
    /// Whether this component must be ready for the process to be ready.
    pub required: bool,
    pub since: DateTime<Utc>,
}

/// The registry, shared between threads.
#[derive(Debug, Clone, Default)]
pub struct HealthRegistry {
    inner: Arc<RwLock<BTreeMap<String, ComponentHealth>>>,
    /// Per beating component: its last beat and the longest silence allowed.
    beats: Arc<Mutex<BTreeMap<String, (Instant, Duration)>>>,
}

/// How often a beating actor beats.
pub const BEAT_EVERY: Duration = Duration::from_secs(1);
/// How long a beating actor may stay silent before liveness fails: ten missed beats, so a busy
/// moment never fails it.
pub const BEAT_WITHIN: Duration = Duration::from_secs(10);

/// A component whose heartbeat is late: its name and how long it has been silent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LateBeat {
    pub component: String,
    pub silent_ms: u64,
}

/// What `/readyz` serves.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub components: BTreeMap<String, ComponentHealth>,
}

impl HealthRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a component; `required` ones must be ready for the process to be ready.
    pub fn register(&self, name: &str, required: bool) {
        let mut map = self.inner.write().expect("health lock");
        map.entry(name.to_owned()).or_insert(ComponentHealth {
            state: ComponentState::Starting,
            required,
            since: Utc::now(),
        });
    }

    /// Records a component's state; `since` changes only when the state does.
    pub fn set(&self, name: &str, state: ComponentState) {
        let mut map = self.inner.write().expect("health lock");
        let entry = map.entry(name.to_owned()).or_insert(ComponentHealth {
            state: ComponentState::Starting,
            required: true,
            since: Utc::now(),
        });
        if entry.state != state {
            entry.state = state;
            entry.since = Utc::now();
        }
    }

    pub fn get(&self, name: &str) -> Option<ComponentState> {
        let map = self.inner.read().expect("health lock");
        map.get(name).map(|c| c.state.clone())
    }

    /// Declares that `name` beats at least every `within` from now on (counted from this call).
    pub fn expect_beats(&self, name: &str, within: Duration) {
        let mut beats = self.beats.lock().unwrap_or_else(|e| e.into_inner());
        beats.insert(name.to_owned(), (Instant::now(), within));
    }

    /// `name` is alive now; nothing for a component that does not [`expect_beats`](Self::expect_beats).
    pub fn beat(&self, name: &str) {
        let mut beats = self.beats.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((last, _)) = beats.get_mut(name) {
            *last = Instant::now();
        }
    }

    /// The components silent for longer than they are allowed at `now`, by name.
    pub fn late_at(&self, now: Instant) -> Vec<LateBeat> {
        let beats = self.beats.lock().unwrap_or_else(|e| e.into_inner());
        beats
            .iter()
            .filter_map(|(name, (last, within))| {
                let silent = now.saturating_duration_since(*last);
                (silent > *within).then(|| LateBeat {
                    component: name.clone(),
                    silent_ms: u64::try_from(silent.as_millis()).unwrap_or(u64::MAX),
                })
            })
            .collect()
    }

    /// A consistent snapshot: ready when every required component is ready.
    pub fn readiness(&self) -> Readiness {
        let components = self.inner.read().expect("health lock").clone();
        let ready = components
            .values()
            .all(|c| !c.required || c.state.is_ready());
        Readiness { ready, components }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_is_ready_only_when_every_required_component_is() {
        let health = HealthRegistry::new();
        health.register("outbox", true);
        health.register("uplink", false);
        assert!(!health.readiness().ready);
        health.set("outbox", ComponentState::Ready);
        assert!(
            health.readiness().ready,
            "an optional component does not block"
        );
        health.set(
            "outbox",
            ComponentState::Restarting {
                restarts: 1,
                reason: "panic".into(),
            },
        );
        assert!(!health.readiness().ready);
        health.set(
            "outbox",
            ComponentState::Degraded {
                reason: "slow disk".into(),
            },
        );
        assert!(health.readiness().ready);
    }

    #[test]
    fn a_component_is_late_once_silent_for_longer_than_it_may_be() {
        let health = HealthRegistry::new();
        health.expect_beats("ingest", Duration::from_secs(10));
        health.expect_beats("hub", Duration::from_secs(10));
        health.beat("never-declared");
        let now = Instant::now();
        assert!(health.late_at(now).is_empty());
        let later = now + Duration::from_secs(11);
        let late = health.late_at(later);
        assert_eq!(
            late.iter()
                .map(|l| l.component.as_str())
                .collect::<Vec<_>>(),
            ["hub", "ingest"]
        );
        assert!(late[0].silent_ms >= 11_000);
        health.beat("ingest");
        let late = health.late_at(Instant::now() + Duration::from_secs(11));
        assert!(late.iter().any(|l| l.component == "hub"));
        assert!(
            health.late_at(Instant::now()).is_empty(),
            "both beat or were declared just now"
        );
    }

    #[test]
    fn readiness_serialises_each_component_with_its_state() {
        let health = HealthRegistry::new();
        health.register("uplink", true);
        health.set(
            "uplink",
            ComponentState::Degraded {
                reason: "broker unreachable".into(),
            },
        );
        let v = serde_json::to_value(health.readiness()).unwrap();
        assert_eq!(v["ready"], true);
        assert_eq!(v["components"]["uplink"]["state"], "degraded");
        assert_eq!(v["components"]["uplink"]["reason"], "broker unreachable");
    }
}
