//! `WS /api/stream`: one JSON frame `{"type", "data"}` per newly stored event or device status change.
//!
//! Each session reads from its bounded hub buffer; the hub drops a session that falls behind, and this
//! task then closes the socket with "too slow". A ping goes out every 10 s; a client silent for 30 s is
//! closed.
//!
//! A socket lives no longer than what opened it: it is closed with 4001 ("session ended") when its
//! login session ends (logout, an admin, the user disabled: the hub tells it), and with 4002 ("token
//! expired") at the `exp` of the access token it was opened with, which the console answers by
//! reconnecting with its renewed token (its catch-up covers the gap).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message};

use super::{ApiFailure, AppState, Caller};
use crate::auth::Principal;
use crate::hub::{JoinSession, Leave, SocketEnd};

const PING_EVERY: Duration = Duration::from_secs(10);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn stream(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiFailure> {
    caller.require_user()?;
    let Principal::User {
        username,
        session: sid,
        token_exp,
        ..
    } = caller.0
    else {
        return Err(ApiFailure::Forbidden(
            "only a user can open the stream".into(),
        ));
    };
    if let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN) {
        let host = req
            .headers()
            .get(actix_web::http::header::HOST)
            .and_then(|h| h.to_str().ok());
        let allowed = origin
            .to_str()
            .is_ok_and(|o| state.allowed_origins.allows(o, host));
        if !allowed {
            return Err(ApiFailure::Forbidden(
                "this page's origin may not open the stream (allowed_origins)".into(),
            ));
        }
    }
    if until_exp(token_exp).is_zero() {
        // Within the clock-skew leeway the token still passes, but a socket would close at once:
        // refuse it, so a client renews its token instead of reconnecting in a loop.
        return Err(ApiFailure::Unauthorized(
            "the token has expired: renew it (POST /api/auth/refresh) and reconnect".into(),
        ));
    }
    let (response, mut session, mut messages) = actix_ws::handle(&req, body)
        .map_err(|e| ApiFailure::BadRequest(format!("WebSocket handshake failed: {e}")))?;
    let joined = state
        .hub
        .send(JoinSession {
            session: sid,
            username,
        })
        .await
        .map_err(|e| ApiFailure::Internal(e.to_string()))?;
    let hub = state.hub.clone();
    let (id, mut frames, mut ended) = (joined.id, joined.frames, joined.ended);
    let expires = tokio::time::sleep(until_exp(token_exp));
    actix_web::rt::spawn(async move {
        let mut ping = actix_web::rt::time::interval(PING_EVERY);
        let mut last_heard = Instant::now();
        tokio::pin!(expires);
        let mut dropped = false;
        let reason = loop {
            tokio::select! {
                // An ended session wins over the closed frame channel that comes with it.
                biased;
                end = &mut ended, if !dropped => match end {
                    Ok(end) => break Some(close_reason(end)),
                    // The hub let this socket go (too slow): the frames channel says so next.
                    Err(_) => dropped = true,
                },
                _ = &mut expires => break Some(close_reason(SocketEnd::TokenExpired)),
                frame = frames.recv() => match frame {
                    Some(text) => {
                        if session.text(text.to_string()).await.is_err() {
                            break None;
                        }
                    }
                    None => break Some(CloseReason {
                        code: CloseCode::Policy,
                        description: Some("too slow: frames were not read in time".into()),
                    }),
                },
                msg = messages.recv() => match msg {
                    Some(Ok(Message::Ping(bytes))) => {
                        last_heard = Instant::now();
                        if session.pong(&bytes).await.is_err() {
                            break None;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                    Some(Ok(_)) => last_heard = Instant::now(),
                },
                _ = ping.tick() => {
                    if last_heard.elapsed() > CLIENT_TIMEOUT {
                        break Some(CloseReason {
                            code: CloseCode::Away,
                            description: Some("no pong".into()),
                        });
                    }
                    if session.ping(b"").await.is_err() {
                        break None;
                    }
                }
            }
        };
        hub.do_send(Leave(id));
        let _ = session.close(reason).await;
    });
    Ok(response)
}

/// How long until the Unix time `exp` (zero when it has passed).
fn until_exp(exp: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(exp).saturating_sub(now)
}

fn close_reason(end: SocketEnd) -> CloseReason {
    CloseReason {
        code: CloseCode::Other(end.code()),
        description: Some(end.reason().into()),
    }
}
