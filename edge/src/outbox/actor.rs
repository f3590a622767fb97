//! The outbox actor (supervised): the one door into the outbox. Sensors send it [`Append`]; it
//! hands appends to the writer thread (which answers once the event is durable), counts the ones
//! refused ([`RefusedCount`]), shows storage failures as `degraded` in readiness, keeps the
//! [`OutboxState`] core up to date from the writer and the uplink, and tells the uplink what to
//! publish. With an API url and token, it also drains a large backlog over HTTP ([`drain`]).
//!
//! Mailbox: actix's default bounded mailbox for `send`; the uplink and the writer use `do_send`,
//! whose volume is bounded by the publish window and the writer's queue. Nothing here blocks: sled
//! flushes happen on the writer thread, and reads come from sled's cache.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use ::actors::{guard, ComponentState, HealthRegistry, RestartPolicy, SharedClock};
use actix::prelude::*;
use protocol::{EventEnvelope, GapRecord, Topic, TopicPrefix};

use super::state::{AckSource, OutboxPolicy, OutboxState};
use super::store::{Store, StoreError};
use super::writer::{self, AppendRequest, WriterConfig, WriterEvent, WriterHandle};
use super::{DroppedCount, OutboxError, QueueDepth, RefusedAckCount, RefusedCount};
use crate::clock_sync::ClockSync;
use crate::uplink::{PublishEvent, PublishGap};
pub use drain::{BulkAnswered, BulkSetup};

mod drain;

/// Its name in the health registry (and its heartbeat's).
pub const NAME: &str = "outbox";

/// Store one activation; answers once it is durable.
#[derive(Message)]
#[rtype(result = "Result<EventEnvelope, OutboxError>")]
pub struct Append(pub AppendRequest);

/// Tells the outbox where to send a trigger for each stored event (the camera).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachCamera(pub Recipient<crate::media::Trigger>);

/// From the writer thread: a durable batch, or a storage failure or recovery.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromWriter(pub WriterEvent);

/// Where to send publishes (set once the uplink exists).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachUplink {
    pub events: Recipient<PublishEvent>,
    pub gaps: Recipient<PublishGap>,
}

/// From the uplink: connected (a fresh session), everything unconfirmed goes out again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LinkUp;

/// From the uplink: disconnected.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LinkDown;

/// From the uplink: the broker acknowledged the publish of `seq` (in flight, not confirmed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PubAcked(pub u64);

/// From the uplink: it could not take the publish of `seq`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PublishFailed(pub u64);

/// The cloud's `acked_seq` (highest contiguous committed `seq`) and where it came from: the uplink
/// sends the `DeviceAck` of `system/{device}/ack` as [`AckSource::Mqtt`], which is refused above the
/// highest seq issued.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct CloudAck {
    pub acked_seq: u64,
    pub source: AckSource,
}

/// The outbox actor.
pub struct OutboxActor {
    device: protocol::DeviceId,
    prefix: TopicPrefix,
    store: Store,
    writer: WriterHandle,
    core: OutboxState,
    policy_cfg: OutboxPolicy,
    uplink: Option<Recipient<PublishEvent>>,
    gap_uplink: Option<Recipient<PublishGap>>,
    depth: QueueDepth,
    refused: RefusedCount,
    dropped: DroppedCount,
    refused_acks: RefusedAckCount,
    /// Gap records the cloud has not confirmed past, by first seq: sent at link up, after each
    /// drop, and again every resend timeout until confirmed.
    gaps: BTreeMap<u64, GapRecord>,
    gaps_sent_at: Option<Duration>,
    /// Unsent events older than this are dropped (checked periodically).
    max_age: Option<Duration>,
    clock_sync: ClockSync,
    /// Pending seqs whose read failed (logged once each).
    unreadable: BTreeSet<u64>,
    clock: SharedClock,
    health: HealthRegistry,
    restart: RestartPolicy,
    /// The bulk drain over HTTP, when an API url and token are configured.
    drain: Option<drain::Drain>,
    /// The camera, told of each stored event.
    camera: Option<Recipient<crate::media::Trigger>>,
}

/// What starting the outbox gives back.
pub struct StartedOutbox {
    pub addr: Addr<OutboxActor>,
    pub writer: WriterHandle,
    pub writer_thread: JoinHandle<()>,
    pub depth: QueueDepth,
    /// Activations refused since start (shown in `/readyz`).
    pub refused: RefusedCount,
    /// Events the bounds ever dropped (shown in `/readyz` and the status).
    pub dropped: DroppedCount,
    /// MQTT acks refused since start (shown in `/readyz` and the status).
    pub refused_acks: RefusedAckCount,
}

/// Everything the outbox needs to start.
pub struct OutboxSetup {
    pub store: Store,
    pub loaded: super::Loaded,
    pub writer: WriterConfig,
    pub policy: OutboxPolicy,
    pub prefix: TopicPrefix,
    pub clock: SharedClock,
    pub health: HealthRegistry,
    /// Drain a large backlog over HTTP (`None`: MQTT only).
    pub bulk: Option<BulkSetup>,
    /// The age bound (`None`: none).
    pub max_age: Option<Duration>,
    /// Stamps each event sent with its clock offset.
    pub clock_sync: ClockSync,
}

impl OutboxActor {
    /// Spawns the writer thread and starts the actor under a `Supervisor`.
    pub fn start(setup: OutboxSetup) -> Result<StartedOutbox, StoreError> {
        let device = setup.writer.device.clone();
        let slot: Arc<OnceLock<Addr<OutboxActor>>> = Arc::new(OnceLock::new());
        let notify = slot.clone();
        let (writer, writer_thread) = writer::spawn(
            setup.store.clone(),
            &setup.loaded,
            setup.writer,
            Box::new(move |event| {
                if let Some(addr) = notify.get() {
                    addr.do_send(FromWriter(event));
                }
            }),
        )
        .map_err(StoreError::Thread)?;
        let depth = QueueDepth::default();
        let refused = RefusedCount::default();
        let dropped = DroppedCount::default();
        dropped.set(setup.loaded.dropped_total);
        let refused_acks = RefusedAckCount::default();
        let mut core = core_from(setup.policy, &setup.loaded);
        let drain = match setup.bulk {
            Some(bulk) => {
                let notify = slot.clone();
                let drain = drain::Drain::spawn(bulk, move |answer| {
                    if let Some(addr) = notify.get() {
                        addr.do_send(answer);
                    }
                })
                .map_err(StoreError::Thread)?;
                core.enable_bulk(drain.policy);
                Some(drain)
            }
            None => None,
        };
        depth.set(core.depth());
        setup.health.register(NAME, true);
        let actor = OutboxActor {
            device,
            prefix: setup.prefix,
            store: setup.store,
            writer: writer.clone(),
            core,
            policy_cfg: setup.policy,
            uplink: None,
            gap_uplink: None,
            depth: depth.clone(),
            refused: refused.clone(),
            dropped: dropped.clone(),
            refused_acks: refused_acks.clone(),
            gaps: setup
                .loaded
                .gaps
                .iter()
                .map(|g| (g.first_seq, g.clone()))
                .collect(),
            gaps_sent_at: None,
            max_age: setup.max_age,
            clock_sync: setup.clock_sync,
            unreadable: BTreeSet::new(),
            clock: setup.clock,
            health: setup.health,
            restart: RestartPolicy::standard(NAME),
            drain,
            camera: None,
        };
        let addr = Supervisor::start(move |_| actor);
        let _ = slot.set(addr.clone());
        Ok(StartedOutbox {
            addr,
            writer,
            writer_thread,
            depth,
            refused,
            dropped,
            refused_acks,
        })
    }

    fn now(&self) -> Duration {
        self.clock.monotonic()
    }

    /// Hands `seqs` to the uplink, oldest first.
    fn publish(&mut self, seqs: Vec<u64>) {
        for seq in seqs {
            let Some(uplink) = self.uplink.clone() else {
                self.core.publish_failed(seq);
                continue;
            };
            let Some(mut event) = self.read_event(seq) else {
                self.core.publish_failed(seq);
                continue;
            };
            self.clock_sync.stamp(&mut event);
            let Some(topic) = Topic::for_event(&event.kind, event.device.clone()) else {
                tracing::error!(seq, kind = %event.kind, "no topic for this event kind");
                continue;
            };
            uplink.do_send(PublishEvent {
                seq,
                event_id: event.id,
                topic: topic.render(&self.prefix),
                payload: event.to_json(),
            });
        }
        self.depth.set(self.core.depth());
    }

    /// Sends every unconfirmed gap record (the cloud takes repeats as no-ops).
    fn send_gaps(&mut self) {
        let Some(uplink) = &self.gap_uplink else {
            return;
        };
        if self.gaps.is_empty() || !self.core.is_link_up() {
            return;
        }
        for gap in self.gaps.values() {
            uplink.do_send(PublishGap {
                topic: Topic::Gap(gap.device.clone()).render(&self.prefix),
                payload: gap.to_json(),
            });
        }
        self.gaps_sent_at = Some(self.now());
    }

    /// Reads a pending event; a missing or unreadable one is logged (once per seq) and `None`.
    fn read_event(&mut self, seq: u64) -> Option<EventEnvelope> {
        match self.store.get(seq) {
            Ok(Some(event)) => Some(event),
            Ok(None) => {
                tracing::error!(seq, "a pending event is missing from the store");
                None
            }
            Err(e) => {
                // Logged once per seq (it is retried every tick): a tampered or corrupted
                // record stays unreadable, and the outbox shows it in readiness.
                if self.unreadable.insert(seq) {
                    tracing::error!(seq, error = %e, "reading a pending event failed");
                    if matches!(e, StoreError::Tampered { .. } | StoreError::Corrupt { .. }) {
                        self.health.set(
                            NAME,
                            ComponentState::Degraded {
                                reason: e.to_string(),
                            },
                        );
                    }
                }
                None
            }
        }
    }

    /// The cloud committed everything up to `acked`: the writer deletes it from the store.
    fn confirm_store(&mut self, acked: u64) {
        tracing::info!(
            acked_seq = acked,
            queue_depth = self.core.depth(),
            "cloud confirmed events"
        );
        self.writer.confirm(acked);
        self.unreadable = self.unreadable.split_off(&(acked + 1));
        self.gaps.retain(|_, g| g.last_seq > acked);
        self.depth.set(self.core.depth());
    }

    /// Runs `body` under [`guard`]: a panic restarts the actor instead of killing it.
    fn guarded(&mut self, ctx: &mut Context<Self>, body: impl FnOnce(&mut Self)) {
        guard(
            self,
            ctx,
            |a| (&mut a.restart, &a.clock, &a.health),
            |a, _| body(a),
        );
    }
}

/// The bookkeeping core for what the store holds: its pending events, confirmed seq, and every
/// seq below its `next_seq` counted as issued (dropped ones too).
fn core_from(policy: OutboxPolicy, loaded: &super::Loaded) -> OutboxState {
    let mut core = OutboxState::new(policy, loaded.confirmed_seq, loaded.pending.iter().copied());
    core.issued_up_to(loaded.next_seq.saturating_sub(1));
    core
}

impl Actor for OutboxActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.restart.apply(&self.clock, ctx);
        // Its heartbeat: stops when its thread is wedged, which stops the systemd watchdog's pings.
        ctx.run_interval(::actors::BEAT_EVERY, |act, _| act.health.beat(NAME));
        let every = (self.policy_cfg.resend_timeout / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        ctx.run_interval(every, |act, ctx| {
            act.guarded(ctx, |a| {
                let now = a.now();
                let seqs = a.core.tick(now);
                a.publish(seqs);
                a.drain();
                let resend = a.policy_cfg.resend_timeout;
                if a.gaps_sent_at
                    .is_none_or(|at| now.saturating_sub(at) >= resend)
                {
                    a.send_gaps();
                }
            })
        });
        if let Some(max_age) = self.max_age {
            let every = (max_age / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
            ctx.run_interval(every, move |act, _| {
                if let Ok(age) = chrono::Duration::from_std(max_age) {
                    act.writer.drop_older_than(act.clock.now() - age);
                }
            });
        }
        self.health.set(NAME, ComponentState::Ready);
        tracing::info!(
            queue_depth = self.core.depth(),
            confirmed_seq = self.core.confirmed_seq(),
            "outbox ready"
        );
    }
}

impl Supervised for OutboxActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // Rebuild the bookkeeping from what is durable; a resend of everything is harmless.
        let link_up = self.core.is_link_up();
        match self.store.load() {
            Ok(loaded) => {
                self.core = core_from(self.policy_cfg, &loaded);
                self.gaps = loaded
                    .gaps
                    .iter()
                    .map(|g| (g.first_seq, g.clone()))
                    .collect();
                if let Some(drain) = self.drain.as_ref().filter(|d| d.enabled()) {
                    self.core.enable_bulk(drain.policy);
                }
                if link_up {
                    let seqs = self.core.link_up(self.now());
                    self.publish(seqs);
                }
            }
            Err(e) => tracing::error!(error = %e, "reloading the outbox after a restart failed"),
        }
    }
}

impl Handler<Append> for OutboxActor {
    type Result = ResponseFuture<Result<EventEnvelope, OutboxError>>;

    fn handle(&mut self, msg: Append, _: &mut Context<Self>) -> Self::Result {
        let sensor = msg.0.sensor.clone();
        let queued = self.writer.append(msg.0);
        let refused = self.refused.clone();
        let camera = self.camera.clone();
        Box::pin(async move {
            let result = match queued {
                Ok(reply) => reply.await.unwrap_or(Err(OutboxError::Closed)),
                Err(e) => Err(e),
            };
            if let (Ok(event), Some(camera)) = (&result, camera) {
                camera.do_send(crate::media::Trigger { event_id: event.id });
            }
            if let Err(e) = &result {
                let refused_total = refused.add_one();
                tracing::warn!(%sensor, refused_total, error = %e, "activation refused by the outbox");
            }
            result
        })
    }
}

impl Handler<FromWriter> for OutboxActor {
    type Result = ();

    fn handle(&mut self, msg: FromWriter, ctx: &mut Context<Self>) {
        self.guarded(ctx, |a| match msg.0 {
            WriterEvent::Stored(batch) => {
                crate::systemd::fault::stall_outbox_if_asked();
                let now = a.now();
                let mut seqs = Vec::new();
                for event in batch {
                    seqs.extend(a.core.stored(event.seq, now));
                }
                a.publish(seqs);
                a.drain();
            }
            // Degraded, not failed: stored events are still sent, and the next append retries.
            WriterEvent::StorageFailed(reason) => a.health.set(
                NAME,
                ComponentState::Degraded {
                    reason: format!("new events refused: {reason}"),
                },
            ),
            WriterEvent::StorageRecovered => a.health.set(NAME, ComponentState::Ready),
            WriterEvent::Dropped { gap, upto, count } => {
                let seqs = a.core.dropped(upto, a.now());
                a.dropped.set(a.dropped.get() + count);
                a.gaps.insert(gap.first_seq, gap);
                a.unreadable = a.unreadable.split_off(&(upto + 1));
                a.depth.set(a.core.depth());
                a.publish(seqs);
                a.send_gaps();
            }
        });
    }
}

impl Handler<AttachCamera> for OutboxActor {
    type Result = ();

    fn handle(&mut self, msg: AttachCamera, _: &mut Context<Self>) {
        self.camera = Some(msg.0);
    }
}

impl Handler<AttachUplink> for OutboxActor {
    type Result = ();

    fn handle(&mut self, msg: AttachUplink, _: &mut Context<Self>) {
        self.uplink = Some(msg.events);
        self.gap_uplink = Some(msg.gaps);
    }
}

impl Handler<LinkUp> for OutboxActor {
    type Result = ();

    fn handle(&mut self, _: LinkUp, ctx: &mut Context<Self>) {
        self.guarded(ctx, |a| {
            let seqs = a.core.link_up(a.now());
            if !seqs.is_empty() {
                tracing::info!(
                    queue_depth = a.core.depth(),
                    "link up: sending unconfirmed events"
                );
            }
            a.publish(seqs);
            a.drain();
            a.send_gaps();
        });
    }
}

impl Handler<LinkDown> for OutboxActor {
    type Result = ();

    fn handle(&mut self, _: LinkDown, ctx: &mut Context<Self>) {
        self.guarded(ctx, |a| a.core.link_down());
    }
}

impl Handler<PubAcked> for OutboxActor {
    type Result = ();

    fn handle(&mut self, msg: PubAcked, ctx: &mut Context<Self>) {
        self.guarded(ctx, |a| {
            let seqs = a.core.pub_acked(msg.0, a.now());
            a.publish(seqs);
        });
    }
}

impl Handler<PublishFailed> for OutboxActor {
    type Result = ();

    fn handle(&mut self, msg: PublishFailed, ctx: &mut Context<Self>) {
        self.guarded(ctx, |a| a.core.publish_failed(msg.0));
    }
}

impl Handler<CloudAck> for OutboxActor {
    type Result = ();

    fn handle(&mut self, msg: CloudAck, ctx: &mut Context<Self>) {
        self.guarded(ctx, |a| {
            let (delete, seqs) = match a.core.confirmed(msg.acked_seq, msg.source, a.now()) {
                Ok(confirmation) => confirmation,
                Err(refused) => {
                    let refused_acks = a.refused_acks.add_one();
                    // Every refusal is counted; a flood is logged for its first 10, then 1 in 1000,
                    // so a forger cannot fill the Pi's disk with log lines.
                    if refused_acks > 10 && refused_acks % 1000 != 0 {
                        return;
                    }
                    tracing::warn!(
                        device_id = %a.device,
                        acked_seq = refused.acked_seq,
                        highest_issued = refused.highest_issued,
                        source = ?msg.source,
                        refused_acks,
                        "ack refused: it confirms seqs this device never issued (forged or stale); \
                         nothing is deleted"
                    );
                    return;
                }
            };
            if let Some(acked) = delete {
                a.confirm_store(acked);
            }
            a.publish(seqs);
            a.drain();
        });
    }
}
