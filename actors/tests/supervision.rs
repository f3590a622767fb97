//! A panic in a supervised actor's handler becomes a restart, and the actor keeps serving.

use std::time::Duration;

use actix::prelude::*;
use vigie_actors::{
    guard, ComponentState, HealthRegistry, RestartPolicy, SharedClock, SystemClock,
};

struct Counter {
    policy: RestartPolicy,
    clock: SharedClock,
    health: HealthRegistry,
    handled: u32,
    starts: u32,
}

impl Actor for Counter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.starts += 1;
        self.policy.apply(&self.clock, ctx);
        self.health.set("counter", ComponentState::Ready);
    }
}

impl Supervised for Counter {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // The value survives; a real actor reopens its resources here.
    }
}

#[derive(Message)]
#[rtype(result = "u32")]
struct Bump {
    explode: bool,
}

impl Handler<Bump> for Counter {
    type Result = u32;

    fn handle(&mut self, msg: Bump, ctx: &mut Context<Self>) -> u32 {
        guard(
            self,
            ctx,
            |a| (&mut a.policy, &a.clock, &a.health),
            |a, _| {
                if msg.explode {
                    panic!("sensor driver exploded");
                }
                a.handled += 1;
                a.handled
            },
        )
        .unwrap_or(0)
    }
}

#[derive(Message)]
#[rtype(result = "Result<(u32, u32), ()>")]
struct Stats;

impl Handler<Stats> for Counter {
    type Result = Result<(u32, u32), ()>;
    fn handle(&mut self, _: Stats, _: &mut Context<Self>) -> Result<(u32, u32), ()> {
        Ok((self.starts, self.policy.restarts()))
    }
}

#[actix_rt::test]
async fn a_panicking_handler_restarts_the_actor_which_keeps_its_mailbox() {
    let health = HealthRegistry::new();
    let health2 = health.clone();
    let addr = Supervisor::start(move |_| Counter {
        // Zero delay: this test is about the restart, not its timing (see the policy's unit tests).
        policy: RestartPolicy::new(
            "counter",
            Duration::ZERO,
            Duration::ZERO,
            Duration::from_secs(60),
        ),
        clock: SystemClock::shared(),
        health: health2,
        handled: 0,
        starts: 0,
    });

    assert_eq!(addr.send(Bump { explode: false }).await.unwrap(), 1);
    assert_eq!(addr.send(Bump { explode: true }).await.unwrap(), 0);
    // The same address still answers, from a restarted actor that kept its state.
    assert_eq!(addr.send(Bump { explode: false }).await.unwrap(), 2);
    let (starts, restarts) = addr.send(Stats).await.unwrap().unwrap();
    assert_eq!((starts, restarts), (2, 1));
    assert_eq!(health.get("counter"), Some(ComponentState::Ready));
}

#[actix_rt::test]
async fn messages_sent_during_the_restart_are_not_lost() {
    let addr = Supervisor::start(|_| Counter {
        policy: RestartPolicy::new(
            "counter",
            Duration::ZERO,
            Duration::ZERO,
            Duration::from_secs(60),
        ),
        clock: SystemClock::shared(),
        health: HealthRegistry::new(),
        handled: 0,
        starts: 0,
    });
    let boom = addr.send(Bump { explode: true });
    let after: Vec<_> = (0..10)
        .map(|_| addr.send(Bump { explode: false }))
        .collect();
    assert_eq!(boom.await.unwrap(), 0);
    let mut results = Vec::new();
    for r in after {
        results.push(r.await.unwrap());
    }
    assert_eq!(results, (1..=10).collect::<Vec<_>>());
}
