//! `POST /api/auth/login`, `POST /api/auth/refresh`, `POST /api/auth/logout`.
//!
//! - Login checks the password against the stored argon2id hash; a wrong username and a wrong
//!   password get the same answer. Success opens a session: a short-lived JWT naming it, and a
//!   refresh token that works once (each refresh hands out the next one).
//! - Brute force: [`crate::auth::LoginPolicy::max_failures`] failures in a row lock the user for
//!   `lock_for` (429 with `Retry-After`, even with the right password), and an address that fails
//!   `throttle_failures` times within `throttle_window` gets 429 before any password is checked.
//! - Logout ends the session: its access tokens stop working at once (every request checks it).
//! - Every login, failure, lock and logout goes to the audit trail; no secret is logged anywhere.

use std::net::IpAddr;
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use protocol::api::{LoginRequest, RefreshRequest, TokenResponse};

use super::{blocking, ApiFailure, AppState, Caller};
use crate::auth::{device_token_hash, new_refresh_token, verify_password, Principal, Role};
use crate::store::{AuditRecord, NewSession, Store};

/// The client's address (the TCP peer; a proxy in front should be the only peer).
pub fn client_addr(req: &HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|a| a.ip())
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

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiFailure> {
    let LoginRequest { username, password } = body.into_inner();
    let addr = client_addr(&req);
    let policy = state.login_policy;
    if let Some(wait) = addr.and_then(|a| state.login_throttle.blocked(a, &policy, Instant::now()))
    {
        tracing::warn!(source = ?addr, "login throttled: too many failures from this address");
        return Err(too_many(
            "too many failed logins from this address; try again later".into(),
            wait,
        ));
    }
    let store = state.store.clone();
    let lookup = username.clone();
    let user = blocking(move || store.find_user(&lookup)).await?;
    let now = Utc::now();
    if let Some(until) = user
        .as_ref()
        .and_then(|u| u.locked_until)
        .filter(|t| *t > now)
    {
        audit(&state, record(&username, "login_locked", None, addr)).await;
        let wait = (until - now).to_std().unwrap_or_default();
        return Err(too_many(
            format!(
                "this account is locked after repeated failed logins; try again in {} s",
                wait.as_secs().max(1)
            ),
            wait,
        ));
    }
    let verified = match &user {
        Some(user) => {
            let hash = user.password_hash.clone();
            web::block(move || verify_password(&password, &hash)).await?
        }
        None => false,
    };
    let Some(user) = user.filter(|_| verified) else {
        tracing::warn!(%username, source = ?addr, "failed login");
        if let Some(a) = addr {
            state.login_throttle.failed(a, &policy, Instant::now());
        }
        let store = state.store.clone();
        let name = username.clone();
        let locked = blocking(move || {
            store.login_failed(&name, Utc::now(), policy.max_failures, policy.lock_for)
        })
        .await?;
        audit(&state, record(&username, "login_failed", None, addr)).await;
        if let Some(until) = locked {
            tracing::warn!(%username, locked_until = %until, "user locked after repeated failed logins");
            audit(
                &state,
                record(&username, "user_locked", Some(until.to_rfc3339()), addr),
            )
            .await;
        }
        return Err(ApiFailure::Unauthorized(
            "invalid username or password".into(),
        ));
    };
    if let Some(a) = addr {
        state.login_throttle.succeeded(a);
    }
    let tokens = open_session(&state, &user.username, user.role).await?;
    tracing::info!(username = %user.username, "login");
    audit(&state, record(&user.username, "login", None, addr)).await;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(tokens))
}

/// A new session for `username`: its access and refresh tokens.
async fn open_session(
    state: &AppState,
    username: &str,
    role: Role,
) -> Result<TokenResponse, ApiFailure> {
    let refresh = new_refresh_token();
    let session_id = uuid::Uuid::now_v7().to_string();
    let now = Utc::now();
    let ttl = state.login_policy.session_ttl;
    let expires_at = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(30));
    let store = state.store.clone();
    let (id, name, hash) = (
        session_id.clone(),
        username.to_owned(),
        device_token_hash(&refresh),
    );
    blocking(move || {
        store.login_succeeded(&name)?;
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
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiFailure> {
    let old = body.into_inner().refresh_token;
    let next = new_refresh_token();
    let store = state.store.clone();
    let (old_hash, new_hash) = (device_token_hash(&old), device_token_hash(&next));
    let rotated = blocking(move || {
        let Some((session, username)) = store.rotate_refresh(&old_hash, &new_hash, Utc::now())?
        else {
            return Ok(None);
        };
        Ok(store.find_user(&username)?.map(|user| (session, user)))
    })
    .await?;
    let Some((session, user)) = rotated else {
        return Err(ApiFailure::Unauthorized(
            "the refresh token is unknown, already used, or its session ended: log in again".into(),
        ));
    };
    let mut tokens = state.auth.issue(&user.username, user.role, &session);
    tokens.refresh_token = Some(next);
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(tokens))
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
    tracing::info!(%username, "logout");
    audit(&state, record(username, "logout", None, client_addr(&req))).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Checks a user's session on every request: a logout or an expired session refuses its tokens.
pub async fn session_active(store: &Store, session: &str) -> Result<bool, ApiFailure> {
    let store = store.clone();
    let id = session.to_owned();
    blocking(move || store.session_active(&id, Utc::now())).await
}
