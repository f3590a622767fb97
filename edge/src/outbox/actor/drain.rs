//! The outbox actor's bulk drain: asks the core for the next HTTP batch, reads its events, hands it
//! to the [`BulkWorker`] thread, and applies the answer ([`BulkAnswered`]): `acked_seq` confirms
//! like a `DeviceAck`, a failure retries after [`Backoff`], a 413 halves the batch, a 401 turns
//! the drain off (MQTT only).
//! Whether the API answered is shown as the `api` component in `/readyz` (not required), and each
//! change is logged once.

use std::time::Duration;

use ::actors::{Backoff, ComponentState};
use actix::prelude::*;

use super::OutboxActor;
use crate::api::reachability::API;
use crate::api::{ApiClient, ApiStatus, BulkOutcome, BulkRequest, BulkWorker};
use crate::outbox::state::BulkPolicy;

/// Everything the drain needs (built only when an API url and token are configured).
pub struct BulkSetup {
    pub client: ApiClient,
    pub policy: BulkPolicy,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Shared with the clock probe.
    pub api: ApiStatus,
}

/// From the worker thread: the answer to the batch of `seqs`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BulkAnswered {
    pub seqs: Vec<u64>,
    pub outcome: BulkOutcome,
}

/// The drain's IO side, owned by the outbox actor.
pub(super) struct Drain {
    pub(super) policy: BulkPolicy,
    worker: BulkWorker,
    backoff: Backoff,
    api: ApiStatus,
    /// A request is with the worker (survives an actor restart, unlike the core's batch).
    request_out: bool,
    /// The token was refused: no more drains.
    disabled: bool,
    draining: bool,
}

impl Drain {
    /// Spawns the worker thread; `notify` delivers its answers to the actor.
    pub(super) fn spawn(
        setup: BulkSetup,
        notify: impl Fn(BulkAnswered) + Send + 'static,
    ) -> std::io::Result<Drain> {
        let (worker, _thread) = BulkWorker::spawn(
            setup.client,
            Box::new(move |seqs, outcome| notify(BulkAnswered { seqs, outcome })),
        )?;
        Ok(Drain {
            policy: setup.policy,
            worker,
            backoff: Backoff::new(setup.retry_base, setup.retry_max),
            api: setup.api,
            request_out: false,
            disabled: false,
            draining: false,
        })
    }

    /// Whether the core should drain (rebuilt cores are given the policy again).
    pub(super) fn enabled(&self) -> bool {
        !self.disabled
    }
}

impl OutboxActor {
    /// Sends the next HTTP batch when the core has one and no request is out.
    pub(super) fn drain(&mut self) {
        let Some(drain) = &mut self.drain else { return };
        let now = self.clock.monotonic();
        let batch = if drain.request_out || drain.disabled {
            None
        } else {
            self.core.next_bulk_batch(now)
        };
        let draining = self.core.is_draining();
        if draining != drain.draining {
            drain.draining = draining;
            if draining {
                tracing::info!(
                    queue_depth = self.core.depth(),
                    "large backlog: draining the oldest events over HTTP"
                );
            } else {
                tracing::info!(queue_depth = self.core.depth(), "bulk drain finished");
            }
        }
        let Some(batch) = batch else { return };
        let mut seqs = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        for seq in batch {
            if let Some(mut event) = self.read_event(seq) {
                self.clock_sync.stamp(&mut event);
                seqs.push(seq);
                events.push(event.to_json());
            }
        }
        let Some(drain) = &mut self.drain else { return };
        tracing::debug!(
            first_seq = seqs.first(),
            count = seqs.len(),
            "sending a bulk batch"
        );
        match drain.worker.send(BulkRequest { seqs, events }) {
            Ok(()) => drain.request_out = true,
            Err(_) => {
                let delay = drain.backoff.next_delay();
                tracing::error!("the bulk worker thread is gone; retrying later");
                let seqs = self.core.bulk_failed(now, delay);
                self.publish(seqs);
            }
        }
    }

    fn answered(&mut self, msg: BulkAnswered) {
        let now = self.clock.monotonic();
        let Some(drain) = &mut self.drain else { return };
        drain.request_out = false;
        let reachable = match &msg.outcome {
            BulkOutcome::Answered(_) | BulkOutcome::Unauthorized | BulkOutcome::TooLarge => true,
            BulkOutcome::Failed { reachable, .. } => *reachable,
        };
        let reason = match &msg.outcome {
            BulkOutcome::Failed { reason, .. } => reason.as_str(),
            _ => "",
        };
        drain.api.observe(reachable, reason);
        match msg.outcome {
            BulkOutcome::Answered(report) => {
                for rejected in &report.rejected {
                    let seq = msg.seqs.get(rejected.index).copied();
                    tracing::warn!(seq, index = rejected.index, error = %rejected.error,
                        "the cloud rejected an event of a bulk batch");
                }
                let inserted = report.inserted;
                let (delete, seqs) = self.core.bulk_answered(report.acked_seq.unwrap_or(0), now);
                let Some(drain) = &mut self.drain else { return };
                if delete.is_some() || inserted > 0 {
                    drain.backoff.reset();
                } else {
                    // Nothing moved (e.g. every event rejected): do not spin on the same batch.
                    let delay = drain.backoff.next_delay();
                    tracing::warn!(
                        retry_in_ms = delay.as_millis() as u64,
                        duplicates = report.duplicates,
                        "a bulk batch made no progress; retrying later"
                    );
                    let more = self.core.bulk_failed(now, delay);
                    self.publish(more);
                }
                tracing::debug!(
                    inserted,
                    duplicates = report.duplicates,
                    acked_seq = report.acked_seq,
                    "bulk batch answered"
                );
                if let Some(acked) = delete {
                    self.confirm_store(acked);
                }
                self.publish(seqs);
            }
            BulkOutcome::Unauthorized => {
                drain.disabled = true;
                tracing::error!(
                    "the cloud API refused the device token (401): check api.token / \
                     VIGIE_EDGE_TOKEN (`vigie-cloud device add` prints it); bulk drain off, \
                     sending everything over MQTT"
                );
                self.health.set(
                    API,
                    ComponentState::Degraded {
                        reason: "the device token was refused (401); MQTT only".into(),
                    },
                );
                let seqs = self.core.bulk_disabled(now);
                self.publish(seqs);
            }
            BulkOutcome::TooLarge => match self.core.bulk_too_large() {
                Some(batch) => {
                    tracing::warn!(bulk_batch = batch,
                        "the cloud refused a bulk batch as too large (413); sending smaller batches");
                }
                None => {
                    let delay = drain.backoff.next_delay();
                    tracing::error!(
                        retry_in_ms = delay.as_millis() as u64,
                        "the cloud refused a single event as too large (413); retrying later"
                    );
                    let seqs = self.core.bulk_failed(now, delay);
                    self.publish(seqs);
                }
            },
            BulkOutcome::Failed { reason, .. } => {
                let delay = drain.backoff.next_delay();
                if drain.backoff.attempts() == 1 {
                    tracing::warn!(%reason, retry_in_ms = delay.as_millis() as u64,
                        "a bulk request failed; retrying with backoff");
                } else {
                    tracing::debug!(%reason, retry_in_ms = delay.as_millis() as u64,
                        attempts = drain.backoff.attempts(), "a bulk request failed again");
                }
                let seqs = self.core.bulk_failed(now, delay);
                self.publish(seqs);
            }
        }
        self.drain();
    }
}

impl Handler<BulkAnswered> for OutboxActor {
    type Result = ();

    /// Applies the answer, then sends the next batch.
    fn handle(&mut self, msg: BulkAnswered, ctx: &mut Context<Self>) {
        self.guarded(ctx, |a| a.answered(msg));
    }
}
