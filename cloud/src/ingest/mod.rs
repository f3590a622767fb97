//! The MQTT ingest actor: validates, batches and commits device messages, acks them only after the
//! commit, publishes each device's committed `seq`, and pushes newly stored rows to the hub.
//!
//! - Persistent session (`clean_session = false`, stable client id) with manual acks: a message is
//!   acked only once the database commit that holds it has succeeded, so a crash or a database outage
//!   makes the broker redeliver it, and the store's dedup by event id makes redelivery harmless.
//! - Adaptive batches ([`Batcher`]): one commit in flight; what arrives meanwhile goes in the next one.
//! - While the database is down (`StoreError::Unavailable`) nothing is acked; the batch is retried
//!   with backoff. That is the only answer that holds a batch back.
//! - An invalid message is acked at once, logged and counted (under the device its topic names);
//!   it never stops the stream.
//! - A batch the store refuses (`Invalid`, `Conflict`, or `Internal` twice in a row) is bisected
//!   ([`bisect`]) down to the messages the store refuses on their own: those are acked, logged and
//!   counted like invalid ones, and the rest of the batch commits. One device's bad message never
//!   stalls every device's events.
//! - After each commit, `system/{device}/ack` (retained) carries each touched device's highest
//!   contiguous committed `seq` — the edge's signal to delete from its outbox.
//! - A clip announced on `video/{device}/captured` is stored once, in the same commit-then-ack
//!   order; the same id with other metadata is counted invalid and logged, and changes nothing.
//! - On SIGTERM, [`Drain`] stops taking deliveries, commits and acks what is in hand, and
//!   disconnects, so the broker keeps the rest in the session for the next process.

mod batcher;
pub mod bisect;
mod drain;
pub mod fault;
mod inbound;
mod metrics;
mod pump;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ::actors::{guard, Backoff, ComponentState, HealthRegistry, RestartPolicy, SharedClock};
use actix::prelude::*;
use chrono::Utc;
use protocol::api::{DeviceView, StreamFrame};
use protocol::media::ClipCaptured;
use protocol::{DeviceAck, DeviceId, DeviceStatus, EventEnvelope, GapRecord, Topic, TopicPrefix};
use rumqttc::{AsyncClient, MqttOptions, Publish, QoS};
use tokio::sync::{mpsc, oneshot};

pub use batcher::Batcher;
use bisect::{Answer, Bisection, Step};
pub use drain::Drain;
pub use inbound::{classify, Inbound};
pub use metrics::IngestMetrics;

use crate::hub::{Broadcast, Hub};
use crate::store::{Announced, Store, StoreError};

/// The health registry name of the ingest.
pub const COMPONENT: &str = "ingest";

/// One message waiting for its commit, with what is needed to ack it.
struct Pending {
    publish: Publish,
    inbound: Inbound,
}

impl Pending {
    /// The device the message is from (its payload agrees with its topic).
    fn device(&self) -> Option<&DeviceId> {
        match &self.inbound {
            Inbound::Event(e) => Some(&e.device),
            Inbound::Status(s) => Some(&s.device),
            Inbound::Gap(g) => Some(&g.device),
            Inbound::Clip(c) => Some(&c.device),
            Inbound::Ignored(_) | Inbound::Invalid(_) => None,
        }
    }

    /// What the message is, for a log line: its kind and its id or range.
    fn describe(&self) -> String {
        match &self.inbound {
            Inbound::Event(e) => format!("event {} (seq {})", e.id, e.seq),
            Inbound::Status(_) => "status".to_owned(),
            Inbound::Gap(g) => format!("gap record {}..={}", g.first_seq, g.last_seq),
            Inbound::Clip(c) => format!("clip {}", c.clip_id),
            Inbound::Ignored(what) => (*what).to_owned(),
            Inbound::Invalid(why) => why.clone(),
        }
    }
}

/// What a commit did.
struct Committed {
    events: Vec<StreamFrame>,
    /// Each recorded status, and whether it changed the device's state (online/offline).
    statuses_seen: Vec<(DeviceView, bool)>,
    acked: BTreeMap<DeviceId, u64>,
    inserted: u64,
    duplicates: u64,
    statuses: u64,
    gaps: u64,
    dropped_by_devices: u64,
    clips_announced: u64,
    /// The devices of clips announced again with other metadata: refused, nothing overwritten.
    clip_conflicts: Vec<DeviceId>,
}

/// Work for the acker task, done strictly in order.
enum AckJob {
    /// PUBACK these deliveries (only after their commit).
    Deliveries(Vec<Publish>),
    /// Publish these devices' committed `seq`, retained.
    DeviceAcks(BTreeMap<DeviceId, u64>),
    /// Answer once every job before this one has been handed to the MQTT client.
    Flush(oneshot::Sender<()>),
}

/// Ingest settings.
#[derive(Clone)]
pub struct IngestSettings {
    pub options: MqttOptions,
    pub prefix: TopicPrefix,
    pub max_batch: usize,
}

pub struct Ingest {
    client: AsyncClient,
    acks: mpsc::UnboundedSender<AckJob>,
    store: Store,
    hub: Addr<Hub>,
    prefix: TopicPrefix,
    batcher: Batcher<Pending>,
    /// The batch being committed, part by part when the store refused it whole.
    settling: Option<Bisection<Pending>>,
    retry: Backoff,
    metrics: Arc<IngestMetrics>,
    health: HealthRegistry,
    clock: SharedClock,
    policy: RestartPolicy,
    /// Last queue depth broadcast per device, so heartbeats that change nothing are not pushed.
    last_depth: HashMap<DeviceId, u64>,
    /// Set by [`Drain`]: the pump forwards no more deliveries, and none is taken.
    draining: Arc<AtomicBool>,
    /// [`Drain`]s waiting for what is in hand to be settled.
    drained: Vec<oneshot::Sender<()>>,
    /// Fires when the pump has seen the client disconnect.
    pump_done: Option<oneshot::Receiver<()>>,
}

impl Ingest {
    /// Connects the MQTT client, starts its event-loop pump and the acker, and starts the supervised
    /// actor.
    pub fn start(
        settings: IngestSettings,
        store: Store,
        hub: Addr<Hub>,
        metrics: Arc<IngestMetrics>,
        health: HealthRegistry,
        clock: SharedClock,
    ) -> Addr<Ingest> {
        health.register(COMPONENT, true);
        health.expect_beats(COMPONENT, ::actors::BEAT_WITHIN);
        let mut options = settings.options;
        options.set_clean_session(false);
        options.set_manual_acks(true);
        options.set_request_channel_capacity(settings.max_batch.max(64) * 4);
        let (client, mut eventloop) = AsyncClient::new(options, settings.max_batch.max(64) * 4);
        // Acks and device acks are small packets: never hold them back for Nagle's algorithm.
        eventloop.network_options.set_tcp_nodelay(true);
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        actix_rt::spawn(run_acker(client.clone(), settings.prefix.clone(), ack_rx));
        let filters = settings.prefix.ingest_filters();
        let pump_client = client.clone();
        let pump_health = health.clone();
        let draining = Arc::new(AtomicBool::new(false));
        let pump_draining = draining.clone();
        let (pump_done_tx, pump_done) = oneshot::channel();
        let addr = Supervisor::start(move |_| Ingest {
            client,
            acks: ack_tx,
            store,
            hub,
            prefix: settings.prefix,
            batcher: Batcher::new(settings.max_batch),
            settling: None,
            retry: Backoff::new(Duration::from_millis(100), Duration::from_secs(10)),
            metrics,
            health,
            clock,
            policy: RestartPolicy::standard(COMPONENT),
            last_depth: HashMap::new(),
            draining: draining.clone(),
            drained: Vec::new(),
            pump_done: Some(pump_done),
        });
        actix_rt::spawn(pump::run(
            eventloop,
            pump_client,
            filters,
            addr.clone(),
            pump_health,
            pump::Draining {
                flag: pump_draining,
                done: pump_done_tx,
            },
        ));
        addr
    }

    /// Starts settling `batch`: its first commit, then as [`bisect`] decides.
    fn settle(&mut self, batch: Vec<Pending>, ctx: &mut Context<Self>) {
        self.settling = Some(Bisection::new(batch));
        self.commit_next(ctx);
    }

    /// Commits the next part of the batch being settled; once it is settled, the next batch.
    fn commit_next(&mut self, ctx: &mut Context<Self>) {
        match self.settling.as_mut().and_then(Bisection::next_part) {
            Some(part) => self.start_commit(part, ctx),
            None => {
                self.settling = None;
                match self.batcher.committed() {
                    Some(next) => self.settle(next, ctx),
                    None => self.wake_drains(),
                }
            }
        }
    }

    fn start_commit(&mut self, batch: Vec<Pending>, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let mut events: Vec<EventEnvelope> = Vec::new();
        let mut statuses: Vec<DeviceStatus> = Vec::new();
        let mut gaps: Vec<GapRecord> = Vec::new();
        let mut clips: Vec<ClipCaptured> = Vec::new();
        for p in &batch {
            match &p.inbound {
                Inbound::Event(e) => events.push(e.clone()),
                Inbound::Status(s) => statuses.push(s.clone()),
                Inbound::Gap(g) => gaps.push(g.clone()),
                Inbound::Clip(c) => clips.push(c.clone()),
                Inbound::Ignored(_) | Inbound::Invalid(_) => {}
            }
        }
        let work = actix_web::rt::task::spawn_blocking(move || {
            commit(&store, &events, &statuses, &gaps, &clips)
        });
        ctx.spawn(work.into_actor(self).map(move |result, act, ctx| {
            let result = result.unwrap_or_else(|e| Err(StoreError::Internal(e.to_string())));
            act.on_commit(batch, result, ctx)
        }));
    }

    fn on_commit(
        &mut self,
        part: Vec<Pending>,
        result: Result<Committed, StoreError>,
        ctx: &mut Context<Self>,
    ) {
        let Some(settling) = self.settling.as_mut() else {
            // Restarted meanwhile: nothing of it was acked, the broker redelivers it.
            return;
        };
        let answer = Answer::of(&result);
        let messages = part.len();
        let (done, error) = match result {
            Ok(done) => (Some(done), None),
            Err(e) => (None, Some(e)),
        };
        if error.is_some() {
            IngestMetrics::add(&self.metrics.commit_failures, 1);
        }
        let error = error.map(|e| e.to_string()).unwrap_or_default();
        match settling.answered(part, answer) {
            Step::Acked(part) => {
                if let Some(done) = done {
                    self.on_committed(part, done);
                }
                self.commit_next(ctx);
            }
            Step::Backoff => {
                let delay = self.retry.next_delay();
                if answer == Answer::Internal {
                    tracing::error!(%error, messages,
                        "database commit failed (internal error); holding acks and retrying once before bisecting");
                } else if self.retry.attempts() == 1 {
                    tracing::error!(%error, messages,
                        "database commit failed; holding acks and retrying with backoff");
                }
                self.health.set(
                    COMPONENT,
                    ComponentState::Degraded {
                        reason: format!("database: {error}"),
                    },
                );
                ctx.run_later(delay, |act, ctx| act.commit_next(ctx));
            }
            Step::Split(first, second) => {
                tracing::warn!(%error, messages, first, second,
                    "the store refused a batch; bisecting it to find the messages it refuses");
                self.commit_next(ctx);
            }
            Step::Refused(p) => {
                self.metrics.add_invalid(p.device(), 1);
                let event_id = match &p.inbound {
                    Inbound::Event(e) => Some(e.id),
                    _ => None,
                };
                tracing::warn!(
                    device_id = p.device().map(DeviceId::as_str),
                    event_id = event_id.map(tracing::field::display),
                    topic = %p.publish.topic,
                    %error,
                    "the store refused {}; acked and dropped, never stored",
                    p.describe()
                );
                let _ = self.acks.send(AckJob::Deliveries(vec![p.publish]));
                self.commit_next(ctx);
            }
        }
    }

    /// A part committed: metrics, its acks, then the devices' acked_seq, then the hub.
    fn on_committed(&mut self, part: Vec<Pending>, done: Committed) {
        fault::after_commit();
        self.retry.reset();
        IngestMetrics::add(&self.metrics.commits, 1);
        IngestMetrics::add(&self.metrics.inserted, done.inserted);
        IngestMetrics::add(&self.metrics.duplicates, done.duplicates);
        IngestMetrics::add(&self.metrics.statuses, done.statuses);
        IngestMetrics::add(&self.metrics.gap_records, done.gaps);
        IngestMetrics::add(&self.metrics.dropped_by_devices, done.dropped_by_devices);
        IngestMetrics::add(&self.metrics.clips_announced, done.clips_announced);
        for device in &done.clip_conflicts {
            self.metrics.add_invalid(Some(device), 1);
        }
        self.health.set(COMPONENT, ComponentState::Ready);
        let _ = self.acks.send(AckJob::Deliveries(
            part.into_iter().map(|p| p.publish).collect(),
        ));
        if !done.acked.is_empty() {
            let _ = self.acks.send(AckJob::DeviceAcks(done.acked));
        }
        let frames = self.worth_pushing(done.events, done.statuses_seen);
        if !frames.is_empty() {
            self.hub.do_send(Broadcast(frames));
        }
    }

    /// Every new event, then each status that changed the device's state or its queue depth
    /// (a heartbeat that changes nothing is not pushed).
    fn worth_pushing(
        &mut self,
        mut frames: Vec<StreamFrame>,
        statuses: Vec<(DeviceView, bool)>,
    ) -> Vec<StreamFrame> {
        for (view, state_changed) in statuses {
            let previous = self.last_depth.insert(view.id.clone(), view.queue_depth);
            if state_changed || previous != Some(view.queue_depth) {
                frames.push(StreamFrame::DeviceStatus(view));
            }
        }
        frames
    }
}

/// The blocking commit: events, then gap records, then statuses, then clips, each through the store.
fn commit(
    store: &Store,
    events: &[EventEnvelope],
    statuses: &[DeviceStatus],
    gaps: &[GapRecord],
    clips: &[ClipCaptured],
) -> Result<Committed, StoreError> {
    let now = Utc::now();
    let mut done = Committed {
        events: Vec::new(),
        statuses_seen: Vec::new(),
        acked: BTreeMap::new(),
        inserted: 0,
        duplicates: 0,
        statuses: 0,
        gaps: 0,
        dropped_by_devices: 0,
        clips_announced: 0,
        clip_conflicts: Vec::new(),
    };
    fault::before_commit(events)?;
    if !events.is_empty() {
        let outcome = store.insert_events(events, now)?;
        done.inserted = outcome.inserted.len() as u64;
        done.duplicates = outcome.duplicates;
        done.acked = outcome.acked;
        done.events = outcome
            .inserted
            .into_iter()
            .map(StreamFrame::Event)
            .collect();
    }
    for gap in gaps {
        let outcome = store.record_gap(gap, now)?;
        done.gaps += 1;
        done.acked.insert(gap.device.clone(), outcome.acked_seq);
        if outcome.newly_dropped > 0 {
            done.dropped_by_devices += outcome.newly_dropped;
            tracing::warn!(
                device_id = %gap.device,
                first_seq = gap.first_seq,
                last_seq = gap.last_seq,
                newly_dropped = outcome.newly_dropped,
                reason = gap.reason.as_str(),
                "device dropped events from its outbox (gap record)"
            );
            done.events.push(StreamFrame::Gap(gap.clone()));
        }
    }
    for status in statuses {
        let (view, changed): (DeviceView, bool) = store.record_status(status, now)?;
        done.statuses += 1;
        if changed {
            tracing::info!(device_id = %view.id, state = view.state.as_str(), "device state changed");
        }
        done.statuses_seen.push((view, changed));
    }
    for clip in clips {
        match store.announce_clip(clip, now)? {
            Announced::New => {
                done.clips_announced += 1;
                tracing::info!(device_id = %clip.device, clip_id = %clip.clip_id,
                    events = clip.event_ids.len(), "clip announced");
            }
            Announced::Known => {}
            Announced::Conflict => {
                done.clip_conflicts.push(clip.device.clone());
                tracing::warn!(device_id = %clip.device, clip_id = %clip.clip_id,
                    "clip announced again with other metadata; refused, the stored one is kept");
            }
        }
    }
    Ok(done)
}

async fn run_acker(
    client: AsyncClient,
    prefix: TopicPrefix,
    mut jobs: mpsc::UnboundedReceiver<AckJob>,
) {
    while let Some(job) = jobs.recv().await {
        match job {
            AckJob::Deliveries(publishes) => {
                for p in publishes {
                    if let Err(e) = client.ack(&p).await {
                        tracing::warn!(error = %e, pkid = p.pkid, "cannot ack delivery; the broker will redeliver");
                    }
                }
            }
            AckJob::Flush(done) => {
                let _ = done.send(());
            }
            AckJob::DeviceAcks(acked) => {
                for (device, seq) in acked {
                    let topic = Topic::Ack(device.clone()).render(&prefix);
                    let payload = DeviceAck::new(device, seq).to_json();
                    if let Err(e) = client.publish(topic, QoS::AtLeastOnce, true, payload).await {
                        tracing::warn!(error = %e, "cannot publish device ack");
                    }
                }
            }
        }
    }
}

impl Actor for Ingest {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Deliveries are bounded upstream (the broker's in-flight window), so the mailbox is not:
        // actix's largest buffer, `usize::MAX >> 2`. Above it (`usize::MAX` was set here) every
        // later clone of an `Addr<Ingest>` overflows actix's sender count and panics in debug
        // builds (found when a second HTTP server cloned the app state after the ingest started).
        ctx.set_mailbox_capacity(usize::MAX >> 2);
        self.policy.apply(&self.clock, ctx);
        // Liveness: this timer runs only while the actor's thread serves it.
        ctx.run_interval(::actors::BEAT_EVERY, |act, _| act.health.beat(COMPONENT));
    }
}

impl Supervised for Ingest {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // Whatever was waiting was never acked: reconnecting makes the broker redeliver it.
        self.batcher.clear();
        self.settling = None;
        let _ = self.client.try_disconnect();
    }
}

/// A delivery from the broker (sent by the pump).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Received(pub Publish);

impl Handler<Received> for Ingest {
    type Result = ();

    fn handle(&mut self, Received(publish): Received, ctx: &mut Context<Self>) {
        if self.draining.load(Ordering::SeqCst) {
            // Not taken: never acked, the broker keeps it for the next process.
            return;
        }
        guard(
            self,
            ctx,
            |a| (&mut a.policy, &a.clock, &a.health),
            |act, ctx| {
                IngestMetrics::add(&act.metrics.received, 1);
                let inbound = classify(&act.prefix, &publish.topic, &publish.payload);
                match &inbound {
                    Inbound::Invalid(reason) => {
                        let device = Topic::parse(&act.prefix, &publish.topic)
                            .ok()
                            .map(|t| t.device().clone());
                        act.metrics.add_invalid(device.as_ref(), 1);
                        tracing::warn!(device_id = device.as_ref().map(DeviceId::as_str),
                            topic = %publish.topic, %reason, "invalid message dropped");
                        let _ = act.acks.send(AckJob::Deliveries(vec![publish]));
                        return;
                    }
                    Inbound::Ignored(what) => {
                        IngestMetrics::add(&act.metrics.ignored, 1);
                        tracing::debug!(topic = %publish.topic, what, "message not stored");
                        let _ = act.acks.send(AckJob::Deliveries(vec![publish]));
                        return;
                    }
                    Inbound::Event(_) | Inbound::Status(_) | Inbound::Gap(_) | Inbound::Clip(_) => {
                    }
                }
                if let Some(batch) = act.batcher.push(Pending { publish, inbound }) {
                    act.settle(batch, ctx);
                }
            },
        );
    }
}

/// Device acks to publish for commits made elsewhere (`POST /api/events`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PublishAcks(pub BTreeMap<DeviceId, u64>);

impl Handler<PublishAcks> for Ingest {
    type Result = ();
    fn handle(&mut self, PublishAcks(acked): PublishAcks, _: &mut Context<Self>) {
        if !acked.is_empty() {
            let _ = self.acks.send(AckJob::DeviceAcks(acked));
        }
    }
}
