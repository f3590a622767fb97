//! Drives the ingest's rumqttc event loop: forwards deliveries to the actor in order, (re)subscribes
//! after each connection, and reconnects with capped, jittered backoff. Logs each change of link state
//! once, not once per retry. While draining it forwards nothing more and ends once the client's
//! disconnect has gone out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actors::{Backoff, ComponentState, HealthRegistry};
use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, QoS, SubscribeFilter};
use tokio::sync::oneshot;

use super::{Ingest, Received, COMPONENT};

/// The drain's side of the pump: set when the ingest drains; fired when the pump ends.
pub struct Draining {
    pub flag: Arc<AtomicBool>,
    pub done: oneshot::Sender<()>,
}

pub async fn run(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<String>,
    ingest: Addr<Ingest>,
    health: HealthRegistry,
    draining: Draining,
) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(15));
    let mut connected: Option<bool> = None;
    loop {
        let polled = eventloop.poll().await;
        if draining.flag.load(Ordering::SeqCst) {
            match polled {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => {
                    let _ = draining.done.send(());
                    return;
                }
                // Taken no more: never acked, kept by the broker for the next process.
                _ => continue,
            }
        }
        match polled {
            Ok(Event::Incoming(Packet::Publish(publish))) => ingest.do_send(Received(publish)),
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff.reset();
                if connected != Some(true) {
                    tracing::info!(
                        session_present = ack.session_present,
                        "ingest connected to the MQTT broker"
                    );
                }
                connected = Some(true);
                // Ready only at the SubAck: on a fresh session the broker drops what is published
                // before the subscription exists.
                let subs = filters
                    .iter()
                    .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                if let Err(e) = client.try_subscribe_many(subs) {
                    tracing::error!(error = %e, "cannot subscribe");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                health.set(COMPONENT, ComponentState::Ready);
            }
            Ok(_) => {}
            Err(e) => {
                if connected != Some(false) {
                    tracing::warn!(error = %e, "ingest lost the MQTT broker; reconnecting with backoff");
                }
                connected = Some(false);
                health.set(
                    COMPONENT,
                    ComponentState::Degraded {
                        reason: format!("MQTT broker unreachable: {e}"),
                    },
                );
                actix_rt::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}
