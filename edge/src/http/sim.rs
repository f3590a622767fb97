//! `POST /sim/{button|motion}[?sensor=ID]`: injects one activation (post-debounce) into a simulated
//! sensor's actor, the same path a real pin takes, and answers 201 `{"id","seq"}` only once the event
//! is durable in the outbox; 503 when the outbox refuses it; 404 with real (GPIO) sensors or no such
//! sensor; 400 for an unknown kind.

use actix_web::{web, HttpResponse};
use protocol::api::{ApiError, SimulatedEvent};
use protocol::EventKind;
use serde::Deserialize;

use super::AppState;
use crate::sensor::Simulate;

#[derive(Deserialize)]
pub struct SimQuery {
    pub sensor: Option<String>,
}

fn error(status: actix_web::http::StatusCode, message: String) -> HttpResponse {
    HttpResponse::build(status).json(ApiError { error: message })
}

/// The event kind a path segment names.
pub fn kind_of(segment: &str) -> Option<EventKind> {
    match segment {
        "button" => Some(EventKind::ButtonPressed),
        "motion" => Some(EventKind::Motion),
        _ => None,
    }
}

pub async fn simulate(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<SimQuery>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    let Some(kind) = kind_of(&path) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown sensor kind {:?}: use /sim/button or /sim/motion",
                path.as_str()
            ),
        );
    };
    if !state.sensors.simulated {
        return error(
            StatusCode::NOT_FOUND,
            "sensors are real (gpio backend): simulation is off".into(),
        );
    }
    let Some(sensor) = state.sensors.find(&kind, query.sensor.as_deref()) else {
        let which = match &query.sensor {
            Some(id) => format!("no {kind} sensor with id {id:?}"),
            None => format!("no {kind} sensor is configured"),
        };
        return error(StatusCode::NOT_FOUND, which);
    };
    match sensor.addr.send(Simulate).await {
        Ok(Ok(event)) => HttpResponse::Created().json(SimulatedEvent {
            id: event.id,
            seq: event.seq,
        }),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("sensor {} is not answering: {e}", sensor.id),
        ),
    }
}
