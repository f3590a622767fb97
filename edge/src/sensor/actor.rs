//! The sensor actor (supervised, one per input): feeds raw edges into its [`Debounce`] core, wakes
//! itself when the core asks, and hands every activation to the outbox. A simulated activation
//! ([`Simulate`]) enters here too, after the debounce, and is answered once it is durable.
//!
//! Mailbox: actix's bounded default; the GPIO reader uses `try_send` and drops an edge when the
//! mailbox is full (the debounce settles on the next edge).

use std::time::Duration;

use ::actors::{guard, ComponentState, HealthRegistry, RestartPolicy, SharedClock};
use actix::prelude::*;
use protocol::{EventEnvelope, EventKind, SensorId};

use super::debounce::{Debounce, DebounceConfig, Step};
use crate::outbox::{Append, AppendRequest, OutboxActor, OutboxError};

/// A raw edge: the input is now `active` (after the active-level mapping), seen at monotonic `at`.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct RawEdge {
    pub active: bool,
    pub at: Duration,
}

/// One activation injected after the debounce (simulated sensors); answered once durable.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<EventEnvelope, OutboxError>")]
pub struct Simulate;

/// The sensor actor.
pub struct SensorActor {
    id: SensorId,
    kind: EventKind,
    config: DebounceConfig,
    debounce: Debounce,
    wake: Option<SpawnHandle>,
    outbox: Addr<OutboxActor>,
    clock: SharedClock,
    health: HealthRegistry,
    restart: RestartPolicy,
    health_name: String,
}

impl SensorActor {
    pub fn new(
        id: SensorId,
        kind: EventKind,
        config: DebounceConfig,
        outbox: Addr<OutboxActor>,
        clock: SharedClock,
        health: HealthRegistry,
    ) -> Self {
        let health_name = format!("sensor/{id}");
        health.register(&health_name, true);
        SensorActor {
            id,
            kind,
            config,
            debounce: Debounce::new(config),
            wake: None,
            outbox,
            clock,
            health,
            restart: RestartPolicy::standard("sensor"),
            health_name,
        }
    }

    /// Acts on a debounce step: hands over an activation, schedules the next wake-up.
    fn apply(&mut self, step: Step, ctx: &mut Context<Self>) {
        if step.activation.is_some() {
            let id = self.id.clone();
            let append = self.append();
            ctx.spawn(actix::fut::wrap_future(async move {
                match append.await {
                    Ok(e) => tracing::info!(sensor = %id, event_id = %e.id, seq = e.seq, "activation stored"),
                    Err(e) => tracing::error!(sensor = %id, error = %e, "activation LOST: the outbox refused it"),
                }
            }));
        }
        if let Some(handle) = self.wake.take() {
            ctx.cancel_future(handle);
        }
        if let Some(at) = step.wake_at {
            let delay = at.saturating_sub(self.clock.monotonic());
            self.wake = Some(ctx.run_later(delay, |act, ctx| {
                act.wake = None;
                let step = act.debounce.poll(act.clock.monotonic());
                act.apply(step, ctx);
            }));
        }
    }

    /// The outbox append for an activation detected now.
    fn append(&self) -> impl std::future::Future<Output = Result<EventEnvelope, OutboxError>> {
        let request = AppendRequest {
            sensor: self.id.clone(),
            kind: self.kind.clone(),
            occurred_at: self.clock.now(),
        };
        let sent = self.outbox.send(Append(request));
        async move { sent.await.unwrap_or(Err(OutboxError::Closed)) }
    }
}

impl Actor for SensorActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.restart.apply(&self.clock, ctx);
        self.health.set(&self.health_name, ComponentState::Ready);
    }
}

impl Supervised for SensorActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.debounce = Debounce::new(self.config);
        self.wake = None;
    }
}

impl Handler<RawEdge> for SensorActor {
    type Result = ();

    fn handle(&mut self, msg: RawEdge, ctx: &mut Context<Self>) {
        guard(
            self,
            ctx,
            |a| (&mut a.restart, &a.clock, &a.health),
            |a, ctx| {
                let step = a.debounce.edge(msg.active, msg.at);
                a.apply(step, ctx);
            },
        );
    }
}

impl Handler<Simulate> for SensorActor {
    type Result = ResponseFuture<Result<EventEnvelope, OutboxError>>;

    fn handle(&mut self, _: Simulate, _: &mut Context<Self>) -> Self::Result {
        tracing::debug!(sensor = %self.id, "simulated activation");
        Box::pin(self.append())
    }
}
