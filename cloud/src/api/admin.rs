//! Admin-only management over the API: users (`GET`/`POST /api/users`, `PATCH /api/users/{name}`
//! to change a role or a password or to disable a user, `POST /api/users/{name}/end-sessions`,
//! `POST /api/users/{name}/unlock`) and device revocation (`POST /api/devices/{id}/revoke`). Every
//! change goes to the audit trail. Viewers get 403.
//!
//! A role change applies to the user's next request (every request reads the role with the
//! session). Disabling a user, a new password and ending the sessions all end every session of the
//! user: their tokens answer 401 and their WebSockets are closed (4001) at once.

use actix_web::{web, HttpRequest, HttpResponse};
use protocol::api::{NewUser, UserChange};
use protocol::DeviceId;

use super::login::{audit, client_addr};
use super::{blocking, ApiFailure, AppState, Caller};
use crate::auth::{hash_password, Role};
use crate::hub::{EndSockets, Sockets};
use crate::store::AuditRecord;

fn record(actor: &str, action: &'static str, target: &str, req: &HttpRequest) -> AuditRecord {
    AuditRecord {
        at: chrono::Utc::now(),
        actor: actor.to_owned(),
        action,
        target: Some(target.to_owned()),
        detail: None,
        source: client_addr(req).map(|a| a.to_string()),
    }
}

pub async fn list_users(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiFailure> {
    caller.require_admin()?;
    let store = state.store.clone();
    Ok(HttpResponse::Ok().json(blocking(move || store.list_users()).await?))
}

pub async fn add_user(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<NewUser>,
) -> Result<HttpResponse, ApiFailure> {
    let admin = caller.require_admin()?.to_owned();
    let NewUser {
        username,
        role,
        password,
    } = body.into_inner();
    let role: Role = role
        .parse()
        .map_err(|e| ApiFailure::BadRequest(format!("role: {e}")))?;
    if username.chars().any(char::is_control) {
        return Err(ApiFailure::BadRequest(
            "username: control characters are not allowed".into(),
        ));
    }
    check_password(&password)?;
    let cost = state.password_cost;
    let hash = state
        .login_throttle
        .hash(move || hash_password(&password, cost))
        .await
        .map_err(|e| ApiFailure::Internal(e.to_string()))?;
    let store = state.store.clone();
    let name = username.clone();
    blocking(move || store.add_user(&name, role, &hash)).await?;
    tracing::info!(%admin, user = %username, role = role.as_str(), "user added");
    audit(&state, record(&admin, "user_added", &username, &req)).await;
    Ok(HttpResponse::Created().finish())
}

pub async fn revoke_device(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiFailure> {
    let admin = caller.require_admin()?.to_owned();
    let id = DeviceId::new(path.into_inner())
        .map_err(|e| ApiFailure::BadRequest(format!("device: {e}")))?;
    let store = state.store.clone();
    let target = id.clone();
    if !blocking(move || store.revoke_device(&target)).await? {
        return Err(ApiFailure::NotFound(format!(
            "device {id} is not provisioned, or already revoked"
        )));
    }
    tracing::warn!(%admin, device_id = %id, "device revoked: regenerate the broker files and reload the broker");
    audit(&state, record(&admin, "device_revoked", id.as_str(), &req)).await;
    Ok(HttpResponse::NoContent().finish())
}

fn check_password(password: &str) -> Result<(), ApiFailure> {
    if password.chars().count() < 8 {
        return Err(ApiFailure::BadRequest(
            "password: it must have at least 8 characters".into(),
        ));
    }
    Ok(())
}

/// Closes the WebSockets of a user whose sessions just ended.
fn close_sockets(state: &AppState, username: &str, ended: usize) {
    if ended > 0 {
        state
            .hub
            .do_send(EndSockets(Sockets::OfUser(username.to_owned())));
    }
}

pub async fn change_user(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<UserChange>,
) -> Result<HttpResponse, ApiFailure> {
    let admin = caller.require_admin()?.to_owned();
    let username = path.into_inner();
    let UserChange {
        role,
        password,
        disabled,
    } = body.into_inner();
    let role: Option<Role> = role
        .map(|r| r.parse())
        .transpose()
        .map_err(|e| ApiFailure::BadRequest(format!("role: {e}")))?;
    if role.is_none() && password.is_none() && disabled.is_none() {
        return Err(ApiFailure::BadRequest(
            "nothing to change: give role, password or disabled".into(),
        ));
    }
    let hash = match password {
        Some(password) => {
            check_password(&password)?;
            let cost = state.password_cost;
            Some(
                state
                    .login_throttle
                    .hash(move || hash_password(&password, cost))
                    .await
                    .map_err(|e| ApiFailure::Internal(e.to_string()))?,
            )
        }
        None => None,
    };
    let store = state.store.clone();
    let name = username.clone();
    let has_password = hash.is_some();
    let ended = blocking(move || {
        let now = chrono::Utc::now();
        let mut ended = 0;
        if let Some(role) = role {
            store.set_user_role(&name, role)?;
        }
        if let Some(hash) = &hash {
            ended += store.set_user_password(&name, hash, now)?;
        }
        if let Some(disabled) = disabled {
            ended += store.set_user_disabled(&name, disabled, now)?;
        }
        Ok(ended)
    })
    .await?;
    close_sockets(&state, &username, ended);
    if let Some(role) = role {
        tracing::info!(%admin, user = %username, role = role.as_str(), "user role changed");
        let mut entry = record(&admin, "user_role_changed", &username, &req);
        entry.detail = Some(format!("role {}", role.as_str()));
        audit(&state, entry).await;
    }
    if has_password {
        tracing::info!(%admin, user = %username, ended, "user password changed");
        audit(
            &state,
            record(&admin, "user_password_changed", &username, &req),
        )
        .await;
    }
    match disabled {
        Some(true) => {
            tracing::warn!(%admin, user = %username, ended, "user disabled");
            audit(&state, record(&admin, "user_disabled", &username, &req)).await;
        }
        Some(false) => {
            tracing::info!(%admin, user = %username, "user enabled");
            audit(&state, record(&admin, "user_enabled", &username, &req)).await;
        }
        None => {}
    }
    Ok(HttpResponse::NoContent().finish())
}

pub async fn end_user_sessions(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiFailure> {
    let admin = caller.require_admin()?.to_owned();
    let username = path.into_inner();
    let store = state.store.clone();
    let name = username.clone();
    let ended = blocking(move || store.end_user_sessions(&name, chrono::Utc::now())).await?;
    state
        .hub
        .do_send(EndSockets(Sockets::OfUser(username.clone())));
    tracing::info!(%admin, user = %username, ended, "user sessions ended");
    let mut entry = record(&admin, "sessions_ended", &username, &req);
    entry.detail = Some(format!("{ended} sessions"));
    audit(&state, entry).await;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "ended": ended })))
}

pub async fn unlock_user(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiFailure> {
    let admin = caller.require_admin()?.to_owned();
    let username = path.into_inner();
    let store = state.store.clone();
    let name = username.clone();
    blocking(move || store.unlock_user(&name)).await?;
    tracing::info!(%admin, user = %username, "user unlocked");
    audit(&state, record(&admin, "user_unlocked", &username, &req)).await;
    Ok(HttpResponse::NoContent().finish())
}
