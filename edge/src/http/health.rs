//! `GET /healthz` (the process is alive) and `GET /readyz` (every required actor is ready; the
//! uplink being down is `degraded`, not unready: the Pi still stores events).

use ::actors::health::Readiness;
use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::AppState;

/// The `/readyz` body: each component's state, the outbox depth and its refusals.
#[derive(Serialize)]
pub struct ReadyBody {
    #[serde(flatten)]
    pub readiness: Readiness,
    /// Stored events the cloud has not confirmed yet.
    pub queue_depth: u64,
    /// Activations the outbox refused since start (full, busy, disk full or failing, closed).
    pub refused_events: u64,
    /// Unsent events the outbox's size or age bound ever dropped (each reported by a gap record).
    pub dropped_events: u64,
    /// Acks over MQTT refused since start: they confirmed seqs this device never issued (forged or
    /// stale); nothing was deleted for them.
    pub refused_acks: u64,
    /// The media outbox, when the Pi has a camera.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaBody>,
}

/// Clips and snapshots: waiting for the cloud, confirmed since start, and lost to retention.
#[derive(Serialize)]
pub struct MediaBody {
    /// Clips and snapshots on the Pi the cloud does not have yet (as of the uploader's last pass).
    pub pending: u64,
    /// Confirmed by the cloud (size and SHA-256) since start.
    pub uploaded: u64,
    /// Deleted by the retention bounds before the cloud had them, since start.
    pub lost: u64,
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "alive" }))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let body = ReadyBody {
        readiness: state.health.readiness(),
        queue_depth: state.depth.get(),
        refused_events: state.refused.get(),
        dropped_events: state.dropped.get(),
        refused_acks: state.refused_acks.get(),
        media: state.media.as_ref().map(|m| {
            use std::sync::atomic::Ordering::Relaxed;
            MediaBody {
                pending: m.pending.load(Relaxed),
                uploaded: m.uploaded.load(Relaxed),
                lost: m.dropped_unsent.load(Relaxed),
            }
        }),
    };
    if body.readiness.ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
