//! `POST /api/auth/login`, `POST /api/auth/refresh`, `POST /api/auth/logout`.
//!
//! - Login checks the password against the stored argon2id hash; an unknown user is checked against
//!   a fixed dummy hash of the same parameters and gets the same answer as a wrong password.
//!   Success opens a session: a short-lived JWT naming it, and a refresh token that works once (each
//!   refresh hands out the next one).
//! - The client is the TCP peer, or behind `trusted_proxies` the rightmost `X-Forwarded-For` hop
//!   that is not one of them ([`crate::auth::TrustedProxies`]); IPv6 clients count per /64.
//! - Brute force: a client gets 429 after `throttle_failures` attempts within `throttle_window`;
//!   the attempt is counted before the password is hashed, and hashes run under a semaphore (one
//!   per core). `max_failures` failures of a user from one client lock that (user, client) for
//!   `lock_for`; failures from clients that never logged in as that user also lock the user for
//!   every such client, never for the places the user logged in from (`vigie-cloud user unlock`).
//! - A refresh token presented a second time is a replay: the session is revoked (its newest
//!   refresh token and its access tokens answer 401) and `refresh_reuse` is audited.
//! - Logout ends the session: its access tokens stop working at once (every request checks it) and
//!   its WebSockets are closed (4001).
//! - Every login, failure, lock and logout goes to the audit trail; no secret is logged anywhere.

use std::net::IpAddr;
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use protocol::api::{LoginRequest, RefreshRequest, TokenResponse};

use super::{blocking, ApiFailure, AppState, Caller};
use crate::auth::{
    client_key, device_token_hash, new_refresh_token, verify_password, Principal, Role,
};
use crate::hub::{EndSockets, Sockets};
use crate::store::{AuditRecord, NewSession, Rotation};

/// The client's address: the TCP peer, or behind a trusted proxy the rightmost `X-Forwarded-For`
/// hop that is not a trusted proxy.
pub fn client_addr(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Some(peer);
    };
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok());
    Some(state.login_throttle.proxies().client(peer, forwarded))
}

/// Appends to the audit trail; a failure to do so is logged, never hidden, never fatal.
pub async fn audit(state: &AppState, record: AuditRecord) {
    let store = state.store.clone();
    let action = record.action;
    if let Err(e) = blocking(move || store.audit(&record)).await {
        tracing::error!(error = %e, action, "cannot write the audit trail");
    }
}

fn record(
    actor: &str,
    action: &'static str,
    target: Option<String>,
    source: Option<IpAddr>,
) -> AuditRecord {
    AuditRecord {
        at: Utc::now(),
        actor: actor.to_owned(),
        action,
        target,
        detail: None,
        source: source.map(|a| a.to_string()),
    }
}

fn too_many(message: String, wait: std::time::Duration) -> ApiFailure {
    ApiFailure::TooManyRequests {
        message,
        retry_after_s: wait.as_secs().max(1),
    }
}

/// At most [`SHOWN_USERNAME_CHARS`] characters of `name`, control characters escaped (a newline
/// or a terminal escape sequence in a login request cannot forge a log line), `…` when cut.
fn shown_username(name: &str) -> String {
    let mut shown: String = name
        .chars()
        .take(SHOWN_USERNAME_CHARS)
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    if name.chars().count() > SHOWN_USERNAME_CHARS {
        shown.push('…');
    }
    shown
}

/// The longest user name logs and the audit trail show of a login attempt (names are 1–64).
const SHOWN_USERNAME_CHARS: usize = 64;

fn wrong_credentials() -> ApiFailure {
    ApiFailure::Unauthorized("invalid username or password".into())
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiFailure> {
    let LoginRequest { username, password } = body.into_inner();
    // The name as the client typed it goes into logs and the audit trail bounded and escaped.
    let shown = shown_username(&username);
    let addr = client_addr(&req);
    let key = addr.map(client_key);
    // Locks are kept per (user, client key); a request without a peer (in-process tests only)
    // shares one key.
    let lock_key = key.map_or_else(|| "unknown".to_owned(), |k| k.to_string());
    let policy = state.login_policy;
    if let Some(k) = key {
        if let Err(wait) = state.login_throttle.attempt(k, &policy, Instant::now()) {
            tracing::warn!(source = %k, "login throttled: too many attempts from this address");
            return Err(too_many(
                "too many failed logins from this address; try again later".into(),
                wait,
            ));
        }
    }
    let store = state.store.clone();
    let (lookup, pair) = (username.clone(), lock_key.clone());
    let (user, lock) = blocking(move || {
        let user = store.find_user(&lookup)?;
        let lock = match &user {
            Some(_) => store.login_lock(&lookup, &pair, Utc::now())?,
            None => None,
        };
        Ok((user, lock))
    })
    .await?;
    let now = Utc::now();
    if let Some(until) = lock {
        audit(&state, record(&shown, "login_locked", None, addr)).await;
        let wait = (until - now).to_std().unwrap_or_default();
        return Err(too_many(
            format!(
                "this account is locked here after repeated failed logins; try again in {} s",
                wait.as_secs().max(1)
            ),
            wait,
        ));
    }
    // An unknown user costs the same argon2id work as a known one, and gets the same answer.
    let known = user.as_ref().map(|u| u.password_hash.clone());
    let (throttle, cost) = (state.login_throttle.clone(), state.password_cost);
    let verified = state
        .login_throttle
        .hash(move || {
            let hash = known.unwrap_or_else(|| throttle.dummy_hash(cost));
            verify_password(&password, &hash)
        })
        .await
        .map_err(|e| ApiFailure::Internal(e.to_string()))?;
    let Some(user) = user.filter(|_| verified) else {
        tracing::warn!(username = %shown, source = ?addr, "failed login");
        let store = state.store.clone();
        let (name, pair) = (username.clone(), lock_key.clone());
        let failure = blocking(move || {
            store.login_failed(
                &name,
                &pair,
                Utc::now(),
                policy.max_failures,
                policy.lock_for,
            )
        })
        .await?;
        audit(&state, record(&shown, "login_failed", None, addr)).await;
        for (until, scope) in [
            (failure.address_locked, "this address"),
            (failure.user_locked, "addresses that never logged in"),
        ] {
            if let Some(until) = until {
                tracing::warn!(username = %shown, locked_until = %until, scope, "user locked after repeated failed logins");
                let mut entry = record(&shown, "user_locked", Some(until.to_rfc3339()), addr);
                entry.detail = Some(format!("for {scope}"));
                audit(&state, entry).await;
            }
        }
        return Err(wrong_credentials());
    };
    if user.disabled {
        audit(&state, record(&user.username, "login_disabled", None, addr)).await;
        return Err(ApiFailure::Forbidden(
            "this account is disabled: ask an admin".into(),
        ));
    }
    if let Some(k) = key {
        state.login_throttle.succeeded(k);
    }
    let tokens = open_session(&state, &user.username, user.role, &lock_key).await?;
    tracing::info!(username = %user.username, "login");
    audit(&state, record(&user.username, "login", None, addr)).await;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(tokens))
}

/// A new session for `username`, who logged in from `client`: its access and refresh tokens.
async fn open_session(
    state: &AppState,
    username: &str,
    role: Role,
    client: &str,
) -> Result<TokenResponse, ApiFailure> {
    let refresh = new_refresh_token();
    let session_id = uuid::Uuid::now_v7().to_string();
    let now = Utc::now();
    let ttl = state.login_policy.session_ttl;
    let expires_at = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(30));
    let store = state.store.clone();
    let (id, name, hash, client) = (
        session_id.clone(),
        username.to_owned(),
        device_token_hash(&refresh),
        client.to_owned(),
    );
    blocking(move || {
        store.login_succeeded(&name, &client, now)?;
        store.create_session(&NewSession {
            id: &id,
            username: &name,
            refresh_hash: &hash,
            created_at: now,
            expires_at,
        })
    })
    .await?;
    let mut tokens = state.auth.issue(username, role, &session_id);
    tokens.refresh_token = Some(refresh);
    tokens.refresh_expires_in = Some(ttl.as_secs());
    Ok(tokens)
}

pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiFailure> {
    let old = body.into_inner().refresh_token;
    let next = new_refresh_token();
    let store = state.store.clone();
    let (old_hash, new_hash) = (device_token_hash(&old), device_token_hash(&next));
    let rotated = blocking(move || {
        let rotation = store.present_refresh(&old_hash, &new_hash, Utc::now())?;
        let user = match &rotation {
            Rotation::Rotated { username, .. } => store.find_user(username)?,
            _ => None,
        };
        Ok((rotation, user))
    })
    .await?;
    let refused = || {
        ApiFailure::Unauthorized(
            "the refresh token is unknown, already used, or its session ended: log in again".into(),
        )
    };
    match rotated {
        (Rotation::Rotated { session, .. }, Some(user)) if !user.disabled => {
            let mut tokens = state.auth.issue(&user.username, user.role, &session);
            tokens.refresh_token = Some(next);
            Ok(HttpResponse::Ok()
                .insert_header(("Cache-Control", "no-store"))
                .json(tokens))
        }
        (
            Rotation::Reused {
                session,
                username,
                revoked,
            },
            _,
        ) => {
            tracing::warn!(%username, session, revoked, "a used refresh token was presented again: session revoked");
            state
                .hub
                .do_send(EndSockets(Sockets::OfSession(session.clone())));
            let mut entry = record(&username, "refresh_reuse", Some(session), client_addr(&req));
            entry.detail = Some(if revoked {
                "session revoked".into()
            } else {
                "session already ended".into()
            });
            audit(&state, entry).await;
            Err(refused())
        }
        _ => Err(refused()),
    }
}

pub async fn logout(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiFailure> {
    let Principal::User {
        username, session, ..
    } = &caller.0
    else {
        return Err(ApiFailure::Forbidden("only a user can log out".into()));
    };
    let store = state.store.clone();
    let id = session.clone();
    blocking(move || store.revoke_session(&id, Utc::now())).await?;
    state
        .hub
        .do_send(EndSockets(Sockets::OfSession(session.clone())));
    tracing::info!(%username, "logout");
    audit(&state, record(username, "logout", None, client_addr(&req))).await;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_attempts_name_is_shown_bounded_and_with_its_control_characters_escaped() {
        assert_eq!(shown_username("admin"), "admin");
        assert_eq!(
            shown_username("eve\n2026-12-03 INFO login username=admin\u{1b}[2J"),
            "eve\\n2026-12-03 INFO login username=admin\\u{1b}[2J"
        );
        let long = "é".repeat(10_000);
        let shown = shown_username(&long);
        assert_eq!(shown.chars().count(), SHOWN_USERNAME_CHARS + 1);
        assert!(shown.ends_with('…'));
    }
}
