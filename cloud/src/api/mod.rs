//! HTTP routes: `/api/*` (JWT or device token on every route; media files also by signed link),
//! `/healthz`, `/readyz`, `/metrics`. The media routes need a [`MediaState`] beside [`AppState`].

mod admin;
pub mod body_deadline;
mod caller;
pub mod console;
mod error;
mod events;
pub mod health;
pub mod inflate;
pub mod live;
mod live_auth;
mod login;
mod media;
pub mod origin;
mod stream;
mod uploads;

use std::sync::Arc;

use actix::Addr;
use actix_web::web;
use actors::HealthRegistry;

pub use caller::Caller;
pub use error::{blocking, ApiFailure};
pub use live_auth::LiveReader;
pub use uploads::{MediaState, CHUNK_CONTENT_TYPE};

use crate::auth::Auth;
use crate::hub::Hub;
use crate::ingest::{Ingest, IngestMetrics};
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub auth: Auth,
    pub hub: Addr<Hub>,
    pub ingest: Option<Addr<Ingest>>,
    pub metrics: Arc<IngestMetrics>,
    pub health: HealthRegistry,
    pub max_body_bytes: usize,
    pub password_cost: crate::auth::PasswordCost,
    pub login_policy: crate::auth::LoginPolicy,
    pub login_throttle: crate::auth::LoginThrottle,
    pub allowed_origins: origin::AllowedOrigins,
}

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    let json_config = |limit: usize| {
        web::JsonConfig::default()
            .limit(limit)
            .error_handler(move |err, _| {
                use actix_web::error::{JsonPayloadError, PayloadError};
                let failure = match &err {
                    JsonPayloadError::OverflowKnownLength { limit, .. }
                    | JsonPayloadError::Overflow { limit } => {
                        ApiFailure::TooLarge { limit: *limit }
                    }
                    // The capped gzip decoding passed the limit (`inflate`).
                    JsonPayloadError::Payload(PayloadError::Overflow) => {
                        ApiFailure::TooLarge { limit }
                    }
                    other => ApiFailure::BadRequest(format!("invalid JSON body: {other}")),
                };
                failure.into()
            })
    };
    let json_errors = json_config(max_body_bytes);
    let query_errors = web::QueryConfig::default()
        .error_handler(|err, _| ApiFailure::BadRequest(format!("invalid query: {err}")).into());
    cfg.app_data(json_errors)
        .app_data(query_errors)
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz_status))
        .route(
            "/metrics",
            web::get().to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiFailure::NotFound(
                    "metrics are served on their own listener (VIGIE_METRICS_LISTEN, default \
                     127.0.0.1:9464), not on the API's port"
                        .into(),
                ))
            }),
        )
        .service(
            web::scope("/api")
                .wrap(actix_web::middleware::from_fn(
                    move |req: actix_web::dev::ServiceRequest,
                          next: actix_web::middleware::Next<_>| {
                        inflate::capped_inflate(max_body_bytes, req, next)
                    },
                ))
                .service(
                    web::resource("/auth/login")
                        .app_data(json_config(inflate::LOGIN_BODY_LIMIT))
                        .route(web::post().to(login::login)),
                )
                .service(
                    web::resource("/auth/refresh")
                        .app_data(json_config(inflate::LOGIN_BODY_LIMIT))
                        .route(web::post().to(login::refresh)),
                )
                .service(
                    web::resource("/live/auth")
                        .app_data(json_config(inflate::LOGIN_BODY_LIMIT))
                        .route(web::post().to(live_auth::hook)),
                )
                .route("/auth/logout", web::post().to(login::logout))
                .route("/audit", web::get().to(events::audit_trail))
                .route("/users", web::get().to(admin::list_users))
                .route("/users", web::post().to(admin::add_user))
                .route("/users/{name}", web::patch().to(admin::change_user))
                .route(
                    "/users/{name}/end-sessions",
                    web::post().to(admin::end_user_sessions),
                )
                .route("/users/{name}/unlock", web::post().to(admin::unlock_user))
                .route("/devices/{id}/revoke", web::post().to(admin::revoke_device))
                .route("/events", web::get().to(events::list))
                .route("/events", web::post().to(events::bulk))
                .route("/events/{id}", web::get().to(events::one))
                .route("/events/{id}/ack", web::post().to(events::acknowledge))
                .route("/devices", web::get().to(events::devices))
                .route("/time", web::get().to(events::time))
                .route("/stream", web::get().to(stream::stream))
                .route("/media/{id}", web::put().to(uploads::begin))
                .route("/media/{id}", web::patch().to(uploads::append))
                .route("/media/{id}", web::get().to(uploads::status_of))
                .route("/cameras", web::get().to(media::cameras))
                .route("/cameras/{id}/snapshots", web::get().to(media::snapshots))
                .route(
                    "/cameras/{id}/snapshots/{snapshot_id}",
                    web::get().to(media::snapshot_file),
                )
                .route("/clips/{id}", web::get().to(media::clip_file))
                .route("/clips/{id}", web::delete().to(media::delete_clip))
                .route("/clips/{id}/info", web::get().to(media::clip_info))
                .route("/events/{id}/media", web::get().to(media::event_media))
                .route("/cameras/{id}/stream", web::get().to(live::playlist))
                .route(
                    "/cameras/{id}/stream/{segment}",
                    web::get().to(live::segment),
                )
                .default_service(web::to(|| async {
                    Err::<actix_web::HttpResponse, _>(ApiFailure::NotFound(
                        "no such API route".into(),
                    ))
                })),
        );
}
