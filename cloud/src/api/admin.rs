//! Admin-only management over the API: users (`GET`/`POST /api/users`) and device revocation
//! (`POST /api/devices/{id}/revoke`). Every change goes to the audit trail. Viewers get 403.

use actix_web::{web, HttpRequest, HttpResponse};
use protocol::api::NewUser;
use protocol::DeviceId;

use super::login::{audit, client_addr};
use super::{blocking, ApiFailure, AppState, Caller};
use crate::auth::{hash_password, Role};
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
    if password.chars().count() < 8 {
        return Err(ApiFailure::BadRequest(
            "password: it must have at least 8 characters".into(),
        ));
    }
    if username.chars().any(char::is_control) {
        return Err(ApiFailure::BadRequest(
            "username: control characters are not allowed".into(),
        ));
    }
    let cost = state.password_cost;
    let hash = web::block(move || hash_password(&password, cost)).await?;
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
