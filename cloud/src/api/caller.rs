//! Who is calling: the `Caller` extractor checks the bearer token on every `/api` route.
//!
//! A user presents a JWT (from `POST /api/auth/login`); a device presents its opaque token (from
//! `vigie-cloud device add`), looked up by its hash. Browsers, which cannot set headers on a
//! WebSocket, may pass the token as `?access_token=` on `/api/stream` only. Tokens are never logged.
//!
//! A user's token is checked twice: its signature and `exp`, then its session and its user's row in
//! one query, which also gives the role (a role change applies to the next request).

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};
use protocol::DeviceId;

use super::{blocking, ApiFailure, AppState};
use crate::auth::{device_token_hash, is_device_token, Principal, Role};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// Users (admin or viewer) may read.
    pub fn require_user(&self) -> Result<(&str, Role), ApiFailure> {
        match &self.0 {
            Principal::User { username, role, .. } => Ok((username, *role)),
            Principal::Device { .. } => Err(ApiFailure::Forbidden(
                "a device token can only post events and upload its own media; log in as a user"
                    .into(),
            )),
        }
    }

    /// Admins only (user and device management, the audit trail).
    pub fn require_admin(&self) -> Result<&str, ApiFailure> {
        match self.require_user()? {
            (username, Role::Admin) => Ok(username),
            (_, Role::Viewer) => Err(ApiFailure::Forbidden(
                "this needs the admin role; a viewer can only look and acknowledge".into(),
            )),
        }
    }

    pub fn device(&self) -> Option<&DeviceId> {
        match &self.0 {
            Principal::Device { id } => Some(id),
            Principal::User { .. } => None,
        }
    }
}

fn bearer(req: &HttpRequest) -> Result<String, ApiFailure> {
    if let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| ApiFailure::Unauthorized("Authorization header is not ASCII".into()))?;
        return match value.split_once(' ') {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
            {
                Ok(token.trim().to_owned())
            }
            _ => Err(ApiFailure::Unauthorized(
                "Authorization header must be `Bearer <token>`".into(),
            )),
        };
    }
    if req.path() == "/api/stream" {
        if let Ok(q) =
            web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        {
            if let Some(token) = q.get("access_token").filter(|t| !t.is_empty()) {
                return Ok(token.clone());
            }
        }
    }
    Err(ApiFailure::Unauthorized(
        "missing bearer token: log in at POST /api/auth/login".into(),
    ))
}

impl FromRequest for Caller {
    type Error = ApiFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiFailure>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiFailure::Internal("app state missing".into()))?;
            let token = token?;
            if is_device_token(&token) {
                let hash = device_token_hash(&token);
                let store = state.store.clone();
                let device = blocking(move || store.device_for_token_hash(&hash)).await?;
                return device
                    .map(|id| Caller(Principal::Device { id }))
                    .ok_or_else(|| ApiFailure::Unauthorized("unknown device token".into()));
            }
            let principal = state
                .auth
                .verify_user_token(&token)
                .map_err(|e| ApiFailure::Unauthorized(e.to_string()))?;
            let Principal::User {
                session, token_exp, ..
            } = principal
            else {
                return Err(ApiFailure::Internal("a user token named a device".into()));
            };
            // The session and its user's row in one query: the role is the row's, not the
            // token's, so a role change, a disabled user or an ended session applies at once.
            let store = state.store.clone();
            let sid = session.clone();
            let found = blocking(move || store.session_caller(&sid, chrono::Utc::now())).await?;
            let Some((username, role)) = found else {
                return Err(ApiFailure::Unauthorized(
                    "the session has ended (logged out, expired, or the user was disabled): log in again"
                        .into(),
                ));
            };
            let principal = Principal::User {
                username,
                role,
                session,
                token_exp,
            };
            Ok(Caller(principal))
        })
    }
}
