//! The WebSocket hub actor: fans every stored event and device status change out to every socket,
//! and closes the sockets of a login session that ended.
//!
//! Each socket has a bounded buffer (`ws_buffer` frames). A frame is serialised once and offered to
//! every socket with `try_send`; a socket whose buffer is full is dropped (closed with "too slow"),
//! so one slow client never stalls the others or the ingest.
//!
//! Sockets are indexed by the login session (`sid`) and the user that opened them. A logout, an admin
//! ending the session, or a change to the user ([`EndSockets`]) closes them at once with
//! [`SocketEnd::SessionEnded`]. Changes made elsewhere (the CLI, another cloud replica on the same
//! database) are caught by a sweep that asks the store, every [`SWEEP_EVERY`], which of the open
//! sessions have ended (one query for all sockets).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use protocol::api::StreamFrame;
use tokio::sync::{mpsc, oneshot};

use crate::ingest::IngestMetrics;
use crate::store::Store;
use ::actors::HealthRegistry;

/// A serialised frame, shared by every session.
pub type Frame = Arc<str>;

/// How often the hub asks the store which open sessions have ended (changes made by the CLI).
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Why the cloud closes a socket: each has its own WebSocket close code (private range 4000-4999),
/// which the console answers (ARCHITECTURE.md, "WebSocket close codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketEnd {
    /// 4001: the login session ended (logout, an admin ended it, the user was disabled or changed):
    /// do not reconnect with this session's tokens.
    SessionEnded,
    /// 4002: the access token the socket was opened with expired: reconnect with a renewed one
    /// (the session is still valid).
    TokenExpired,
    /// 1012 (Service Restart, RFC 6455's registry): this process is stopping (SIGTERM); reconnect,
    /// to another replica or to this one once it is back, and catch up.
    Restarting,
}

impl SocketEnd {
    /// The WebSocket close code.
    pub fn code(self) -> u16 {
        match self {
            SocketEnd::SessionEnded => 4001,
            SocketEnd::TokenExpired => 4002,
            SocketEnd::Restarting => 1012,
        }
    }

    /// The close reason sent with the code.
    pub fn reason(self) -> &'static str {
        match self {
            SocketEnd::SessionEnded => "session ended: log in again",
            SocketEnd::TokenExpired => "token expired: reconnect with a renewed token",
            SocketEnd::Restarting => "the server is restarting: reconnect",
        }
    }
}

/// Which sockets to close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sockets {
    /// Those of one login session.
    OfSession(String),
    /// Those of every session of one user.
    OfUser(String),
    /// Every socket (the process is stopping).
    All,
}

struct Socket {
    frames: mpsc::Sender<Frame>,
    /// `None` for a listener outside any login session (in-process tests).
    owner: Option<Owner>,
    ended: Option<oneshot::Sender<SocketEnd>>,
}

#[derive(Clone)]
struct Owner {
    session: String,
    username: String,
}

pub struct Hub {
    sockets: HashMap<u64, Socket>,
    next_id: u64,
    buffer: usize,
    metrics: Arc<IngestMetrics>,
    /// The store the sweep asks; `None`: no sweep (only [`EndSockets`] closes sockets).
    sessions: Option<Store>,
    sweeping: bool,
    /// Where the hub beats (liveness); `None`: it does not.
    health: Option<HealthRegistry>,
}

/// The hub's name in the health registry (heartbeats only).
pub const COMPONENT: &str = "hub";

impl Hub {
    pub fn new(buffer: usize, metrics: Arc<IngestMetrics>) -> Self {
        Hub {
            sockets: HashMap::new(),
            next_id: 0,
            buffer: buffer.max(1),
            metrics,
            sessions: None,
            sweeping: false,
            health: None,
        }
    }

    /// Beats into `health` every [`::actors::BEAT_EVERY`], so `/healthz` fails once the hub is wedged.
    pub fn beating(mut self, health: HealthRegistry) -> Self {
        health.expect_beats(COMPONENT, ::actors::BEAT_WITHIN);
        self.health = Some(health);
        self
    }

    /// Also closes, within [`SWEEP_EVERY`], the sockets whose session `store` says has ended.
    pub fn watching(mut self, store: Store) -> Self {
        self.sessions = Some(store);
        self
    }

    fn join(&mut self, owner: Option<Owner>) -> Joined {
        let (tx, rx) = mpsc::channel(self.buffer);
        let (ended_tx, ended_rx) = oneshot::channel();
        self.next_id += 1;
        tracing::debug!(
            socket = self.next_id,
            session = owner.as_ref().map(|o| o.session.as_str()),
            sockets = self.sockets.len() + 1,
            "websocket joined"
        );
        self.sockets.insert(
            self.next_id,
            Socket {
                frames: tx,
                owner,
                ended: Some(ended_tx),
            },
        );
        Joined {
            id: self.next_id,
            frames: rx,
            ended: ended_rx,
        }
    }

    /// Closes the matching sockets with `why`; how many.
    fn end(&mut self, which: &Sockets, why: SocketEnd) -> usize {
        let matches = |owner: &Option<Owner>| match (owner, which) {
            (Some(o), Sockets::OfSession(s)) => o.session == *s,
            (Some(o), Sockets::OfUser(u)) => o.username == *u,
            (_, Sockets::All) => true,
            (None, _) => false,
        };
        let ids: Vec<u64> = self
            .sockets
            .iter()
            .filter(|(_, s)| matches(&s.owner))
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            if let Some(mut socket) = self.sockets.remove(id) {
                if let Some(tx) = socket.ended.take() {
                    let _ = tx.send(why);
                }
            }
        }
        if !ids.is_empty() {
            tracing::info!(sockets = ids.len(), which = ?which, code = why.code(), "websockets closed");
        }
        ids.len()
    }

    fn sweep(&mut self, ctx: &mut Context<Self>) {
        let Some(store) = self.sessions.clone() else {
            return;
        };
        if self.sweeping {
            return;
        }
        let mut open: Vec<String> = self
            .sockets
            .values()
            .filter_map(|s| s.owner.as_ref().map(|o| o.session.clone()))
            .collect();
        if open.is_empty() {
            return;
        }
        open.sort();
        open.dedup();
        self.sweeping = true;
        let check =
            tokio::task::spawn_blocking(move || store.ended_sessions(&open, chrono::Utc::now()));
        ctx.spawn(check.into_actor(self).map(|outcome, hub, _| {
            hub.sweeping = false;
            match outcome {
                Ok(Ok(ended)) => {
                    for session in ended {
                        hub.end(&Sockets::OfSession(session), SocketEnd::SessionEnded);
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot check the open websockets' sessions")
                }
                Err(e) => tracing::error!(error = %e, "the websocket session check panicked"),
            }
        }));
    }
}

impl Actor for Hub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.sessions.is_some() {
            ctx.run_interval(SWEEP_EVERY, |hub, ctx| hub.sweep(ctx));
        }
        if self.health.is_some() {
            ctx.run_interval(::actors::BEAT_EVERY, |hub, _| {
                if let Some(health) = &hub.health {
                    health.beat(COMPONENT);
                }
            });
        }
    }
}

impl Supervised for Hub {}

/// A new listener outside any login session: returns its id and the receiving end of its buffer.
#[derive(Message)]
#[rtype(result = "Joined")]
pub struct Join;

/// A new socket of the login session `session` of `username`.
#[derive(Message)]
#[rtype(result = "Joined")]
pub struct JoinSession {
    pub session: String,
    pub username: String,
}

#[derive(MessageResponse)]
pub struct Joined {
    pub id: u64,
    pub frames: mpsc::Receiver<Frame>,
    /// Fires when the hub closes this socket (its session ended); the frames channel closes too.
    pub ended: oneshot::Receiver<SocketEnd>,
}

impl Handler<Join> for Hub {
    type Result = Joined;
    fn handle(&mut self, _: Join, _: &mut Context<Self>) -> Joined {
        self.join(None)
    }
}

impl Handler<JoinSession> for Hub {
    type Result = Joined;
    fn handle(&mut self, msg: JoinSession, _: &mut Context<Self>) -> Joined {
        self.join(Some(Owner {
            session: msg.session,
            username: msg.username,
        }))
    }
}

/// Closes the sockets of a session or a user that ended, with [`SocketEnd::SessionEnded`]; answers
/// how many were closed.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct EndSockets(pub Sockets);

impl Handler<EndSockets> for Hub {
    type Result = usize;
    fn handle(&mut self, EndSockets(which): EndSockets, _: &mut Context<Self>) -> usize {
        self.end(&which, SocketEnd::SessionEnded)
    }
}

/// Closes every socket with [`SocketEnd::Restarting`] (1012): the process is stopping. Answers how
/// many were closed.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct EndAllSockets;

impl Handler<EndAllSockets> for Hub {
    type Result = usize;
    fn handle(&mut self, _: EndAllSockets, _: &mut Context<Self>) -> usize {
        self.end(&Sockets::All, SocketEnd::Restarting)
    }
}

/// A socket ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave(pub u64);

impl Handler<Leave> for Hub {
    type Result = ();
    fn handle(&mut self, Leave(id): Leave, _: &mut Context<Self>) {
        self.sockets.remove(&id);
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
            self.sockets
                .retain(|id, s| match s.frames.try_send(text.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::warn!(socket = id, "websocket session too slow; dropping it");
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
        self.sockets.len()
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
            security: Default::default(),
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

    fn of(session: &str, username: &str) -> JoinSession {
        JoinSession {
            session: session.into(),
            username: username.into(),
        }
    }

    #[actix_rt::test]
    async fn ending_a_session_or_a_user_closes_only_their_sockets_with_the_session_ended_code() {
        let hub = Hub::new(4, Arc::new(IngestMetrics::default())).start();
        let ada_1 = hub.send(of("s-1", "ada")).await.unwrap();
        let mut ada_2 = hub.send(of("s-2", "ada")).await.unwrap();
        let mut vic = hub.send(of("s-3", "vic")).await.unwrap();
        let anonymous = hub.send(Join).await.unwrap();

        let closed = hub
            .send(EndSockets(Sockets::OfSession("s-1".into())))
            .await
            .unwrap();
        assert_eq!(closed, 1);
        assert_eq!(ada_1.ended.await.unwrap(), SocketEnd::SessionEnded);
        assert_eq!(hub.send(SessionCount).await.unwrap(), 3);

        let closed = hub
            .send(EndSockets(Sockets::OfUser("ada".into())))
            .await
            .unwrap();
        assert_eq!(closed, 1);
        assert_eq!((&mut ada_2.ended).await.unwrap(), SocketEnd::SessionEnded);
        assert!(ada_2.frames.recv().await.is_none(), "its frames stop too");
        assert!(vic.ended.try_recv().is_err(), "vic's socket stays open");
        assert_eq!(hub.send(SessionCount).await.unwrap(), 2);
        assert_eq!(SocketEnd::SessionEnded.code(), 4001);
        assert_eq!(SocketEnd::TokenExpired.code(), 4002);
        assert_eq!(SocketEnd::Restarting.code(), 1012);
        let _ = anonymous.id;
    }
}
