//! The bulk worker thread: takes one [`BulkRequest`] at a time from a bounded channel, posts it with
//! the blocking [`ApiClient`], and hands the outcome to a callback (the outbox actor's mailbox).
//! The outbox sends one batch at a time, so the channel (capacity 1) is never full in practice;
//! when it is, the request is refused and the outbox treats it as a failed request.

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;

use super::client::{ApiClient, BulkOutcome};

/// One batch to post: the seqs (for the answer) and their envelopes' JSON.
pub struct BulkRequest {
    pub seqs: Vec<u64>,
    pub events: Vec<Vec<u8>>,
}

/// Called on the worker thread with each request's seqs and outcome.
pub type OnOutcome = Box<dyn Fn(Vec<u64>, BulkOutcome) + Send>;

/// The handle to the worker thread; dropping it ends the thread after the request in progress.
#[derive(Clone)]
pub struct BulkWorker {
    tx: SyncSender<BulkRequest>,
}

impl BulkWorker {
    pub fn spawn(
        client: ApiClient,
        on_outcome: OnOutcome,
    ) -> std::io::Result<(BulkWorker, JoinHandle<()>)> {
        let (tx, rx) = mpsc::sync_channel::<BulkRequest>(1);
        let span = tracing::Span::current();
        let thread = std::thread::Builder::new()
            .name("vigie-bulk".into())
            .spawn(move || {
                let _entered = span.enter();
                while let Ok(request) = rx.recv() {
                    let outcome = client.post_events(&request.events);
                    on_outcome(request.seqs, outcome);
                }
            })?;
        Ok((BulkWorker { tx }, thread))
    }

    /// Queues `request`; gives it back when the worker is busy or gone.
    pub fn send(&self, request: BulkRequest) -> Result<(), BulkRequest> {
        self.tx.try_send(request).map_err(|e| match e {
            TrySendError::Full(r) | TrySendError::Disconnected(r) => r,
        })
    }
}
