//! The uplink actor (supervised): owns the rumqttc client, drives its event loop, publishes the
//! outbox's events (QoS 1, not retained) and the retained status heartbeat, and reports back to the
//! outbox: link up/down, broker PubAcks (by `seq`) and the cloud's `DeviceAck`.
//!
//! The event loop runs as a future spawned in the actor's context; it forwards every rumqttc event
//! with `send` (so it waits while the actor is busy: bounded) and, after an error, sleeps the delay
//! the actor picks from its [`Backoff`] before rumqttc reconnects. Connectivity changes are logged
//! once each, not once per retry.

use std::time::Duration;

use ::actors::{guard, Backoff, ComponentState, HealthRegistry, RestartPolicy, SharedClock};
use actix::prelude::*;
use protocol::{DeviceAck, DeviceId, DeviceState, DeviceStatus, Topic, TopicPrefix};
use rumqttc::{AsyncClient, Event, Incoming, Outgoing, QoS};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::options::{mqtt_options, request_capacity};
use super::tracker::{PkidTracker, Tag};
use crate::config::Config;
use crate::outbox::actor::{CloudAck, LinkDown, LinkUp, PubAcked, PublishFailed};
use crate::outbox::{AckSource, OutboxActor, QueueDepth};

const NAME: &str = "uplink";

/// From the outbox: publish one event.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct PublishEvent {
    pub seq: u64,
    pub event_id: Uuid,
    pub topic: String,
    pub payload: Vec<u8>,
}

/// Publish a gap record (QoS 1); the outbox resends it until the cloud's ack passes it.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct PublishGap {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// Announce a clip on `video/{device}/captured` (QoS 1) if the link is up. Best effort: the
/// clip's upload (`PUT /api/media/{id}`) also announces it, so a lost announcement delays nothing
/// that matters.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct PublishClip {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// What the status reports besides the queue: API reachability, clock offset, dropped events;
/// and the clock probe to run at each connect.
#[derive(Clone, Default)]
pub struct StatusFacts {
    pub api: Option<crate::api::ApiStatus>,
    pub clock: crate::clock_sync::ClockSync,
    pub dropped: crate::outbox::DroppedCount,
    /// MQTT acks the outbox refused (forged or stale).
    pub refused_acks: crate::outbox::RefusedAckCount,
    pub prober: Option<crate::clock_sync::Prober>,
}

/// Publish an offline status and disconnect cleanly; answers when done (or after a timeout).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

#[derive(Message)]
#[rtype(result = "()")]
struct MqttEvent(Event);

/// The event loop failed; the answer is how long to wait before reconnecting.
#[derive(Message)]
#[rtype(result = "Duration")]
struct ConnectionLost(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Starting,
    Up,
    Down,
    Closing,
}

/// The uplink actor.
pub struct UplinkActor {
    config: Config,
    outbox: Addr<OutboxActor>,
    depth: QueueDepth,
    facts: StatusFacts,
    clock: SharedClock,
    health: HealthRegistry,
    restart: RestartPolicy,
    started_at: Duration,
    client: Option<AsyncClient>,
    tracker: PkidTracker,
    link: Link,
    backoff: Backoff,
    closed: Option<oneshot::Sender<()>>,
}

impl UplinkActor {
    pub fn new(
        config: Config,
        outbox: Addr<OutboxActor>,
        depth: QueueDepth,
        facts: StatusFacts,
        clock: SharedClock,
        health: HealthRegistry,
    ) -> Self {
        health.register(NAME, false);
        let backoff = Backoff::new(config.reconnect_base, config.reconnect_max);
        UplinkActor {
            started_at: clock.monotonic(),
            config,
            outbox,
            depth,
            facts,
            clock,
            health,
            restart: RestartPolicy::standard(NAME),
            client: None,
            tracker: PkidTracker::default(),
            link: Link::Starting,
            backoff,
            closed: None,
        }
    }

    fn device(&self) -> &DeviceId {
        &self.config.device
    }

    fn prefix(&self) -> &TopicPrefix {
        &self.config.prefix
    }

    fn broker(&self) -> String {
        let scheme = if self.config.mqtt.tls {
            "mqtts"
        } else {
            "mqtt"
        };
        format!(
            "{scheme}://{}:{}",
            self.config.mqtt.host, self.config.mqtt.port
        )
    }

    fn status(&self, state: DeviceState) -> DeviceStatus {
        DeviceStatus {
            schema_version: protocol::SCHEMA_VERSION,
            device: self.device().clone(),
            state,
            queue_depth: self.depth.get(),
            uptime_s: self
                .clock
                .monotonic()
                .saturating_sub(self.started_at)
                .as_secs(),
            at: Some(protocol::time::to_millis(self.clock.now())),
            clock_synced: self.config.clock_synced,
            api_reachable: self.facts.api.as_ref().and_then(|a| a.get()),
            clock_offset_ms: self.facts.clock.offset_ms(),
            dropped_events: self.facts.dropped.get(),
            refused_acks: self.facts.refused_acks.get(),
        }
    }

    fn publish_status(&mut self, state: DeviceState) {
        if self.link != Link::Up && state == DeviceState::Online {
            return;
        }
        let Some(client) = &self.client else { return };
        let topic = Topic::Status(self.device().clone()).render(self.prefix());
        let status = self.status(state);
        match client.try_publish(topic, QoS::AtLeastOnce, true, status.to_json()) {
            Ok(()) => self.tracker.requested(Tag::Status),
            Err(e) => tracing::debug!(error = %e, "status not queued"),
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Incoming(Incoming::ConnAck(ack)) => self.on_connected(ack.session_present),
            Event::Incoming(Incoming::Publish(p)) => self.on_message(&p.topic, &p.payload),
            Event::Incoming(Incoming::PubAck(ack)) => {
                if let Some(Tag::Event(seq)) = self.tracker.puback(ack.pkid) {
                    tracing::debug!(seq, pkid = ack.pkid, "broker acknowledged event");
                    self.outbox.do_send(PubAcked(seq));
                }
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => self.tracker.outgoing_publish(pkid),
            Event::Outgoing(Outgoing::Disconnect) => {
                if let Some(done) = self.closed.take() {
                    let _ = done.send(());
                }
            }
            _ => {}
        }
    }

    fn on_connected(&mut self, session_present: bool) {
        self.tracker.connected(session_present);
        self.backoff.reset();
        if self.link != Link::Up {
            tracing::info!(broker = %self.broker(), session_present, "uplink connected");
        }
        self.link = Link::Up;
        self.health.set(NAME, ComponentState::Ready);
        let ack_topic = Topic::Ack(self.device().clone()).render(self.prefix());
        if let Some(client) = &self.client {
            if let Err(e) = client.try_subscribe(ack_topic, QoS::AtLeastOnce) {
                tracing::warn!(error = %e, "subscribing to the ack topic failed");
            }
        }
        if let Some(prober) = &self.facts.prober {
            prober.probe_now();
        }
        self.publish_status(DeviceState::Online);
        self.outbox.do_send(LinkUp);
    }

    fn on_message(&mut self, topic: &str, payload: &[u8]) {
        match Topic::parse(self.prefix(), topic) {
            Ok(Topic::Ack(device)) if &device == self.device() => {}
            _ => {
                tracing::debug!(topic, "ignoring a message on an unexpected topic");
                return;
            }
        }
        if payload.is_empty() {
            return; // a cleared retained ack
        }
        match DeviceAck::from_json(payload) {
            Ok(ack) if &ack.device == self.device() => {
                tracing::debug!(acked_seq = ack.acked_seq, "cloud ack received");
                // Over MQTT: the outbox refuses it above the highest seq this device issued.
                self.outbox.do_send(CloudAck {
                    acked_seq: ack.acked_seq,
                    source: AckSource::Mqtt,
                });
            }
            Ok(ack) => tracing::warn!(device = %ack.device, "ignoring an ack for another device"),
            Err(e) => tracing::warn!(error = %e, "ignoring an unreadable ack"),
        }
    }

    fn on_lost(&mut self, reason: String) -> Duration {
        match self.link {
            Link::Up => {
                tracing::warn!(broker = %self.broker(), %reason, "uplink lost; events queue locally");
                self.outbox.do_send(LinkDown);
            }
            Link::Starting => {
                tracing::warn!(broker = %self.broker(), %reason, "broker unreachable; retrying with backoff");
            }
            Link::Down => {}
            Link::Closing => return Duration::from_secs(3600), // shutting down: do not reconnect
        }
        self.link = Link::Down;
        self.health.set(
            NAME,
            ComponentState::Degraded {
                reason: format!("broker {} unreachable: {reason}", self.broker()),
            },
        );
        let delay = self.backoff.next_delay();
        tracing::debug!(%reason, delay_ms = delay.as_millis() as u64, "reconnecting");
        delay
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        let options = mqtt_options(&self.config);
        let (client, mut eventloop) =
            AsyncClient::new(options, request_capacity(self.config.outbox.max_in_flight));
        // Small QoS 1 packets must not wait for Nagle's algorithm.
        eventloop.network_options.set_tcp_nodelay(true);
        self.client = Some(client);
        self.tracker = PkidTracker::default();
        let addr = ctx.address();
        ctx.spawn(actix::fut::wrap_future(async move {
            loop {
                match eventloop.poll().await {
                    Ok(event) => {
                        if addr.send(MqttEvent(event)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => match addr.send(ConnectionLost(e.to_string())).await {
                        Ok(delay) => actix_rt::time::sleep(delay).await,
                        Err(_) => break,
                    },
                }
            }
        }));
    }
}

impl Actor for UplinkActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.restart.apply(&self.clock, ctx);
        self.connect(ctx);
        ctx.run_interval(self.config.heartbeat, |act, _| {
            act.publish_status(DeviceState::Online)
        });
    }
}

impl Supervised for UplinkActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // The old event loop future died with the old context; a new client starts in `started`.
        self.client = None;
        if self.link == Link::Up {
            self.outbox.do_send(LinkDown);
        }
        self.link = Link::Starting;
    }
}

impl Handler<MqttEvent> for UplinkActor {
    type Result = ();

    fn handle(&mut self, msg: MqttEvent, ctx: &mut Context<Self>) {
        guard(
            self,
            ctx,
            |a| (&mut a.restart, &a.clock, &a.health),
            |a, _| a.on_event(msg.0),
        );
    }
}

impl Handler<ConnectionLost> for UplinkActor {
    type Result = MessageResult<ConnectionLost>;

    fn handle(&mut self, msg: ConnectionLost, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.on_lost(msg.0))
    }
}

impl Handler<PublishEvent> for UplinkActor {
    type Result = ();

    fn handle(&mut self, msg: PublishEvent, _: &mut Context<Self>) {
        let client = match (&self.client, self.link) {
            (Some(client), Link::Up) => client,
            _ => {
                self.outbox.do_send(PublishFailed(msg.seq));
                return;
            }
        };
        match client.try_publish(msg.topic, QoS::AtLeastOnce, false, msg.payload) {
            Ok(()) => {
                tracing::debug!(seq = msg.seq, event_id = %msg.event_id, "event published");
                self.tracker.requested(Tag::Event(msg.seq));
            }
            Err(e) => {
                tracing::debug!(seq = msg.seq, error = %e, "publish not queued");
                self.outbox.do_send(PublishFailed(msg.seq));
            }
        }
    }
}

impl Handler<PublishGap> for UplinkActor {
    type Result = ();

    fn handle(&mut self, msg: PublishGap, _: &mut Context<Self>) {
        let Some(client) = self.client.as_ref().filter(|_| self.link == Link::Up) else {
            return; // sent again at the next link up
        };
        match client.try_publish(msg.topic, QoS::AtLeastOnce, false, msg.payload) {
            Ok(()) => self.tracker.requested(Tag::Gap),
            Err(e) => tracing::debug!(error = %e, "gap record not queued; resent later"),
        }
    }
}

impl Handler<PublishClip> for UplinkActor {
    type Result = ();

    fn handle(&mut self, msg: PublishClip, _: &mut Context<Self>) {
        let Some(client) = self.client.as_ref().filter(|_| self.link == Link::Up) else {
            tracing::debug!("link down: clip announced by its upload instead");
            return;
        };
        match client.try_publish(msg.topic, QoS::AtLeastOnce, false, msg.payload) {
            Ok(()) => self.tracker.requested(Tag::Clip),
            Err(e) => {
                tracing::debug!(error = %e, "clip announcement not queued; its upload announces it")
            }
        }
    }
}

impl Handler<Shutdown> for UplinkActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> Self::Result {
        let was_up = self.link == Link::Up;
        if was_up {
            self.publish_status(DeviceState::Offline);
        }
        self.link = Link::Closing;
        let (done, rx) = oneshot::channel();
        self.closed = Some(done);
        let sent = self
            .client
            .as_ref()
            .map(|c| c.try_disconnect().is_ok())
            .unwrap_or(false);
        Box::pin(async move {
            if was_up && sent {
                let _ = actix_rt::time::timeout(Duration::from_secs(2), rx).await;
            }
        })
    }
}
