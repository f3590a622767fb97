//! The edge's local HTTP port (actix-web): `GET /healthz`, `GET /readyz`, and with simulated sensors
//! `POST /sim/{button|motion}[?sensor=ID]`.

pub mod health;
pub mod sim;

use ::actors::HealthRegistry;
use actix_web::web;

use crate::outbox::{DroppedCount, QueueDepth, RefusedAckCount, RefusedCount};
use crate::sensor::Sensors;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub health: HealthRegistry,
    pub depth: QueueDepth,
    pub refused: RefusedCount,
    pub dropped: DroppedCount,
    pub refused_acks: RefusedAckCount,
    pub sensors: Sensors,
    /// The media outbox's counts, when the Pi has a camera.
    pub media: Option<std::sync::Arc<crate::media::MediaCounters>>,
}

/// Registers every route (used by the server and by in-process tests).
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .route("/healthz", web::get().to(health::healthz))
            .route("/readyz", web::get().to(health::readyz))
            .route("/sim/{kind}", web::post().to(sim::simulate));
    }
}
