//! Supervision: every long-lived actor runs under actix's `Supervisor`, and this module supplies what
//! `Supervisor` lacks.
//!
//! - `Supervisor` restarts an actor that *stopped*. A panic inside a handler does not stop an actor: it
//!   unwinds out of the actor's task and the actor silently disappears. [`guard`] runs a handler body
//!   under `catch_unwind`, logs the panic, records it in the [`HealthRegistry`] and stops the context,
//!   which `Supervisor` then turns into a restart.
//! - [`RestartPolicy`] (pure, clock-driven) decides how long the restarted actor waits before it takes
//!   messages again: capped exponential backoff with full jitter, reset once the actor has stayed up.
//!   An actor applies it in `started()` with [`RestartPolicy::apply`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use actix::{Actor, ActorContext, AsyncContext, Context};

use crate::{Backoff, ComponentState, HealthRegistry, SharedClock};

/// Restart bookkeeping kept in the actor across restarts (the actor value survives a restart).
#[derive(Debug)]
pub struct RestartPolicy {
    name: &'static str,
    backoff: Backoff,
    /// An actor up this long since its last start is considered healthy again.
    stable_after: Duration,
    restarts: u32,
    last_start: Option<Duration>,
    pending_delay: Duration,
}

impl RestartPolicy {
    pub fn new(name: &'static str, base: Duration, cap: Duration, stable_after: Duration) -> Self {
        RestartPolicy {
            name,
            backoff: Backoff::new(base, cap),
            stable_after,
            restarts: 0,
            last_start: None,
            pending_delay: Duration::ZERO,
        }
    }

    /// The defaults used by Vigie's actors: 100 ms doubling to 30 s, healthy after 60 s up.
    pub fn standard(name: &'static str) -> Self {
        Self::new(
            name,
            Duration::from_millis(100),
            Duration::from_secs(30),
            Duration::from_secs(60),
        )
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// How many times the actor has crashed in all.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Records a crash at monotonic time `now` and returns how long to wait before the next start.
    pub fn crashed(&mut self, now: Duration) -> Duration {
        self.restarts += 1;
        if let Some(start) = self.last_start {
            if now.saturating_sub(start) >= self.stable_after {
                self.backoff.reset();
            }
        }
        self.pending_delay = self.backoff.next_delay();
        self.pending_delay
    }

    /// Records a start at monotonic time `now`; returns the delay to wait before taking messages.
    pub fn started(&mut self, now: Duration) -> Duration {
        self.last_start = Some(now);
        std::mem::take(&mut self.pending_delay)
    }

    /// Call from `Actor::started`: records the start and, after a crash, holds the mailbox for the
    /// backoff delay (`ctx.wait`), so messages queue instead of hitting a crash loop.
    pub fn apply<A>(&mut self, clock: &SharedClock, ctx: &mut Context<A>)
    where
        A: Actor<Context = Context<A>>,
    {
        let delay = self.started(clock.monotonic());
        if !delay.is_zero() {
            tracing::info!(
                actor = self.name,
                delay_ms = delay.as_millis() as u64,
                "restart delayed"
            );
            ctx.wait(actix::fut::wrap_future::<_, A>(actix::clock::sleep(delay)));
        }
    }
}

/// Runs a handler body; a panic in it is logged, recorded as `Restarting` in `health`, and stops the
/// actor so that its `Supervisor` restarts it. Returns `None` when the body panicked.
pub fn guard<A, R>(
    actor: &mut A,
    ctx: &mut A::Context,
    policy: impl FnOnce(&mut A) -> (&mut RestartPolicy, &SharedClock, &HealthRegistry),
    body: impl FnOnce(&mut A, &mut A::Context) -> R,
) -> Option<R>
where
    A: Actor,
    A::Context: ActorContext,
{
    match catch_unwind(AssertUnwindSafe(|| body(actor, ctx))) {
        Ok(r) => Some(r),
        Err(panic) => {
            let reason = panic_message(&panic);
            let (policy, clock, health) = policy(actor);
            let delay = policy.crashed(clock.monotonic());
            tracing::error!(
                actor = policy.name(),
                restarts = policy.restarts(),
                delay_ms = delay.as_millis() as u64,
                %reason,
                "actor panicked; restarting"
            );
            health.set(
                policy.name(),
                ComponentState::Restarting {
                    restarts: policy.restarts(),
                    reason,
                },
            );
            ctx.stop();
            None
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn repeated_crashes_back_off_up_to_the_cap() {
        let mut p = RestartPolicy::new("t", S, 8 * S, 60 * S);
        let mut now = Duration::ZERO;
        p.started(now);
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            ceilings.push(p.backoff.ceiling());
            let delay = p.crashed(now);
            assert!(delay <= *ceilings.last().unwrap());
            now += delay;
            assert_eq!(p.started(now), delay, "the start waits the delay once");
            assert_eq!(p.started(now), Duration::ZERO);
        }
        assert_eq!(ceilings, [S, 2 * S, 4 * S, 8 * S, 8 * S, 8 * S]);
        assert_eq!(p.restarts(), 6);
    }

    #[test]
    fn an_actor_that_stayed_up_long_enough_starts_over_from_the_base_delay() {
        let mut p = RestartPolicy::new("t", S, 64 * S, 60 * S);
        p.started(Duration::ZERO);
        for _ in 0..4 {
            p.crashed(Duration::ZERO);
        }
        assert_eq!(p.backoff.ceiling(), 16 * S);
        p.started(Duration::from_secs(10));
        p.crashed(Duration::from_secs(100));
        assert_eq!(p.backoff.attempts(), 1, "reset, then one failure counted");
    }
}
