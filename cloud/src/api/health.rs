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
