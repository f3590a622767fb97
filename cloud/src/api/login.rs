//! `POST /api/auth/login`: username and password against the stored argon2id hash, answered with a
//! JWT. A wrong username and a wrong password get the same answer.

use actix_web::{web, HttpResponse};
use protocol::api::LoginRequest;

use super::{blocking, ApiFailure, AppState};
use crate::auth::verify_password;

pub async fn login(
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiFailure> {
    let LoginRequest { username, password } = body.into_inner();
    let store = state.store.clone();
    let lookup = username.clone();
    let user = blocking(move || store.find_user(&lookup)).await?;
    let ok = match user {
        Some(user) => {
            let hash = user.password_hash.clone();
            let verified = web::block(move || verify_password(&password, &hash)).await?;
            verified.then_some(user)
        }
        None => None,
    };
    match ok {
        Some(user) => {
            tracing::info!(username = %user.username, "login");
            Ok(HttpResponse::Ok().json(state.auth.issue(&user.username, user.role)))
        }
        None => {
            tracing::warn!(%username, "failed login");
            Err(ApiFailure::Unauthorized(
                "invalid username or password".into(),
            ))
        }
    }
}
