//! A registry of each component's state, shared by the actors that report into it and the `/readyz`
//! endpoint that reads it. Cheap to clone; readers get a consistent snapshot.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

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
