//! Draining the ingest for a stop (SIGTERM): take no more deliveries, settle what is in hand
//! (commit, ack, publish the devices' acks), hand every ack to the MQTT client, then disconnect
//! cleanly. What the broker delivered after the drain began is never acked, so it stays in the
//! persistent session for the next process; nothing committed is redelivered.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{AckJob, Ingest};

/// How long the drain waits for the pump to see its disconnect go out.
const DISCONNECT_WAIT: Duration = Duration::from_secs(5);

/// Stop taking deliveries and settle what is in hand; answers once it is acked and the client
/// disconnected (or at once when it already was).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

impl Ingest {
    /// Nothing waiting and nothing being committed.
    fn idle(&self) -> bool {
        self.settling.is_none() && self.batcher.waiting() == 0 && !self.batcher.in_flight()
    }

    /// Called when a settled batch leaves nothing to commit: answers the waiting drains.
    pub(super) fn wake_drains(&mut self) {
        for waiting in self.drained.drain(..) {
            let _ = waiting.send(());
        }
    }
}

impl Handler<Drain> for Ingest {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        self.draining.store(true, Ordering::SeqCst);
        let (settled_tx, settled) = oneshot::channel();
        if self.idle() {
            let _ = settled_tx.send(());
        } else {
            self.drained.push(settled_tx);
        }
        let acks = self.acks.clone();
        let client = self.client.clone();
        let pump_done = self.pump_done.take();
        let waiting = self.batcher.waiting();
        tracing::info!(
            waiting,
            committing = self.settling.is_some(),
            "draining the ingest: no more deliveries taken; settling what is in hand"
        );
        Box::pin(async move {
            let _ = settled.await;
            let (flushed_tx, flushed) = oneshot::channel();
            if acks.send(AckJob::Flush(flushed_tx)).is_ok() {
                let _ = flushed.await;
            }
            // Queued behind every ack: the event loop sends them first.
            if let Err(e) = client.disconnect().await {
                tracing::warn!(error = %e, "cannot disconnect the ingest cleanly");
            }
            if let Some(done) = pump_done {
                if actix_rt::time::timeout(DISCONNECT_WAIT, done)
                    .await
                    .is_err()
                {
                    tracing::warn!("the ingest's disconnect did not go out in time");
                }
            }
            tracing::info!("ingest drained: what it took is committed and acked");
        })
    }
}
