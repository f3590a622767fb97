//! `/healthz` (the process is alive), `/readyz` (every required component is ready and the database
//! answers), `/metrics` (Prometheus text).

use actix_web::{web, HttpResponse};
use actors::ComponentState;

use super::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "alive"}))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = state.store.clone();
    let db = web::block(move || store.ping()).await;
    let db_state = match db {
        Ok(Ok(())) => ComponentState::Ready,
        Ok(Err(e)) => ComponentState::Failed {
            reason: e.to_string(),
        },
        Err(e) => ComponentState::Failed {
            reason: e.to_string(),
        },
    };
    state.health.set("database", db_state);
    let readiness = state.health.readiness();
    let mut response = if readiness.ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response.json(readiness)
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
