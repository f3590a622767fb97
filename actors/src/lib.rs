//! Plumbing shared by the edge's and the cloud's actors.
//!
//! - [`clock`]: time behind a trait, with a simulated clock for tests.
//! - [`backoff`]: capped exponential backoff with full jitter.
//! - [`supervise`]: restart policy for supervised actors, and [`supervise::guard`], which turns a panic
//!   in a handler into a logged, backed-off restart (actix's `Supervisor` only restarts an actor that
//!   *stopped*; a panic would otherwise kill the actor for good).
//! - [`health`]: a registry of each component's state that the `/readyz` endpoints read.
//!
//! Architecture invariant: this crate knows nothing of Vigie's domain or wire format.

pub mod backoff;
pub mod clock;
pub mod health;
pub mod supervise;

pub use backoff::Backoff;
pub use clock::{Clock, SharedClock, SimulatedClock, SystemClock};
pub use health::{ComponentState, HealthRegistry, LateBeat, BEAT_EVERY, BEAT_WITHIN};
pub use supervise::{guard, RestartPolicy};
