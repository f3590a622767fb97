//! The WebSocket hub actor: fans every stored event and device status change out to every session.
//!
//! Each session has a bounded buffer (`ws_buffer` frames). A frame is serialised once and offered to
//! every session with `try_send`; a session whose buffer is full is dropped (its socket is closed with
//! "too slow"), so one slow client never stalls the others or the ingest.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use protocol::api::StreamFrame;
use tokio::sync::mpsc;

use crate::ingest::IngestMetrics;

/// A serialised frame, shared by every session.
pub type Frame = Arc<str>;

pub struct Hub {
    sessions: HashMap<u64, mpsc::Sender<Frame>>,
    next_id: u64,
    buffer: usize,
    metrics: Arc<IngestMetrics>,
}

impl Hub {
    pub fn new(buffer: usize, metrics: Arc<IngestMetrics>) -> Self {
        Hub {
            sessions: HashMap::new(),
            next_id: 0,
            buffer: buffer.max(1),
            metrics,
        }
    }
}

impl Actor for Hub {
    type Context = Context<Self>;
}

impl Supervised for Hub {}

/// A new session: returns its id and the receiving end of its buffer.
#[derive(Message)]
#[rtype(result = "Joined")]
pub struct Join;

#[derive(MessageResponse)]
pub struct Joined {
    pub id: u64,
    pub frames: mpsc::Receiver<Frame>,
}

impl Handler<Join> for Hub {
    type Result = Joined;
    fn handle(&mut self, _: Join, _: &mut Context<Self>) -> Joined {
        let (tx, rx) = mpsc::channel(self.buffer);
        self.next_id += 1;
        self.sessions.insert(self.next_id, tx);
        tracing::debug!(
            session = self.next_id,
            sessions = self.sessions.len(),
            "websocket joined"
        );
        Joined {
            id: self.next_id,
            frames: rx,
        }
    }
}

/// A session ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave(pub u64);

impl Handler<Leave> for Hub {
    type Result = ();
    fn handle(&mut self, Leave(id): Leave, _: &mut Context<Self>) {
        self.sessions.remove(&id);
    }
}

/// Frames to send to every session, in order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Broadcast(pub Vec<StreamFrame>);

impl Handler<Broadcast> for Hub {
    type Result = ();
    fn handle(&mut self, Broadcast(frames): Broadcast, _: &mut Context<Self>) {
        for frame in frames {
            let text: Frame = match serde_json::to_string(&frame) {
                Ok(t) => t.into(),
                Err(e) => {
                    tracing::error!(error = %e, "cannot serialise a stream frame");
                    continue;
                }
            };
            let metrics = &self.metrics;
            self.sessions
                .retain(|id, tx| match tx.try_send(text.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::warn!(session = id, "websocket session too slow; dropping it");
                        IngestMetrics::add(&metrics.ws_sessions_dropped, 1);
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                });
        }
    }
}

/// How many sessions are connected (for tests and `/readyz`).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct SessionCount;

impl Handler<SessionCount> for Hub {
    type Result = usize;
    fn handle(&mut self, _: SessionCount, _: &mut Context<Self>) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::api::DeviceView;
    use protocol::{DeviceId, DeviceState};

    fn frame(n: u64) -> StreamFrame {
        StreamFrame::DeviceStatus(DeviceView {
            id: DeviceId::new("pi-1").unwrap(),
            state: DeviceState::Online,
            last_seen: None,
            queue_depth: n,
            uptime_s: 0,
            clock_synced: true,
            acked_seq: 0,
            missing_events: 0,
            lost_events: 0,
            api_reachable: None,
            clock_offset_ms: None,
        })
    }

    #[actix_rt::test]
    async fn a_slow_session_is_dropped_and_never_stalls_the_others() {
        let metrics = Arc::new(IngestMetrics::default());
        let hub = Hub::new(2, metrics.clone()).start();
        let mut fast = hub.send(Join).await.unwrap();
        let mut slow = hub.send(Join).await.unwrap();
        for n in 0..5 {
            hub.send(Broadcast(vec![frame(n)])).await.unwrap();
            // The fast session reads as frames come.
            let text = fast.frames.recv().await.unwrap();
            assert!(text.contains(&format!("\"queue_depth\":{n}")));
        }
        assert_eq!(hub.send(SessionCount).await.unwrap(), 1);
        assert_eq!(IngestMetrics::get(&metrics.ws_sessions_dropped), 1);
        // The slow one got what fitted, then its channel closed.
        assert!(slow.frames.recv().await.is_some());
        assert!(slow.frames.recv().await.is_some());
        assert!(slow.frames.recv().await.is_none());
        let _ = fast.id;
    }
}
