//! `/healthz` (the process is alive: its actors beat), `/readyz` (every required component is ready and the database
//! answers), `/metrics` (Prometheus text). On the API's port `/readyz` gives its status code and
//! nothing else; the detailed readiness and the metrics are on the metrics listener
//! ([`ops_routes`]), which a deployment keeps inside the cluster: component names, failure reasons
//! and per-device counters are not for the Internet.

use actix_web::{web, HttpResponse};
use actors::ComponentState;

use super::AppState;

/// Liveness: 200 while every beating actor (ingest, hub) beat within its allowance, else 503
/// naming the late ones, so a liveness probe restarts a process whose actors are wedged.
pub async fn healthz(state: Option<web::Data<AppState>>) -> HttpResponse {
    let late = state
        .map(|s| s.health.late_at(std::time::Instant::now()))
        .unwrap_or_default();
    if late.is_empty() {
        HttpResponse::Ok().json(serde_json::json!({"status": "alive"}))
    } else {
        tracing::error!(?late, "liveness failed: an actor missed its heartbeat");
        HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "stalled", "late": late}))
    }
}

/// The metrics listener's routes: `/healthz`, the detailed `/readyz`, `/metrics`.
pub fn ops_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

/// `/readyz` on the API's port: 200 or 503, with no detail.
pub async fn readyz_status(state: web::Data<AppState>) -> HttpResponse {
    let ready = readiness(&state).await.ready;
    let (mut response, text) = if ready {
        (HttpResponse::Ok(), "ready\n")
    } else {
        (HttpResponse::ServiceUnavailable(), "not ready\n")
    };
    response
        .content_type("text/plain; charset=utf-8")
        .body(text)
}

/// `/readyz` on the metrics listener: the status and each component's state.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let readiness = readiness(&state).await;
    let mut response = if readiness.ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response.json(readiness)
}

/// Pings the database, records it as a component, and reads the registry.
async fn readiness(state: &AppState) -> actors::health::Readiness {
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
    state.health.readiness()
}

/// The ingest counters, the RTSP server's (when the live registry is there), then per-device
/// gauges of missing and dropped events (read from the store; left out when the database does not
/// answer).
pub async fn metrics(
    state: web::Data<AppState>,
    cameras: Option<web::Data<crate::live::LiveCameras>>,
) -> HttpResponse {
    let mut body = state.metrics.render();
    if let Some(cameras) = cameras {
        body.push_str(&cameras.rtsp_metrics().render());
    }
    let store = state.store.clone();
    if let Ok(Ok(devices)) = web::block(move || store.list_devices()).await {
        render_device_gauges(&mut body, &devices);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}

fn render_device_gauges(out: &mut String, devices: &[protocol::api::DeviceView]) {
    use std::fmt::Write;
    for (name, help, value) in [
        (
            "vigie_device_missing_events",
            "seqs above acked_seq neither stored nor reported dropped (on their way, or lost)",
            (|d: &protocol::api::DeviceView| d.missing_events) as fn(&_) -> u64,
        ),
        (
            "vigie_device_lost_events",
            "events the device reported dropped from its outbox",
            |d| d.lost_events,
        ),
        (
            "vigie_device_acked_seq",
            "highest contiguous committed seq",
            |d| d.acked_seq,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for d in devices {
            let _ = writeln!(out, "{name}{{device=\"{}\"}} {}", d.id, value(d));
        }
    }
}
