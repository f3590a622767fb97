//! `GET /api/events` (filters, cursor pages, newest first), `POST /api/events` (bulk, idempotent:
//! one bad item never rejects the rest) and `GET /api/devices`.

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use protocol::api::{parse_kind_filter, IngestReport, Rejected, StreamFrame};
use protocol::{time, DeviceId, EventEnvelope};
use serde::Deserialize;

use super::{blocking, ApiFailure, AppState, Caller};
use crate::auth::Role;
use crate::hub::Broadcast;
use crate::ingest::PublishAcks;
use crate::store::EventFilter;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// Most events in one `POST /api/events`.
pub const MAX_BULK_ITEMS: usize = 10_000;

/// `GET /api/events` query parameters, exactly as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    device: Option<String>,
    kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    acknowledged: Option<String>,
    received_since: Option<String>,
}

fn bad(param: &str, message: impl std::fmt::Display) -> ApiFailure {
    ApiFailure::BadRequest(format!("query parameter `{param}`: {message}"))
}

fn parse_filter(q: &ListQuery) -> Result<(EventFilter, u32), ApiFailure> {
    let device = q
        .device
        .as_deref()
        .map(DeviceId::new)
        .transpose()
        .map_err(|e| bad("device", e))?;
    let kind = q
        .kind
        .as_deref()
        .map(parse_kind_filter)
        .transpose()
        .map_err(|e| bad("kind", e))?;
    let parse_time = |param: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| {
                time::parse(s).map_err(|e| {
                    bad(
                        param,
                        format!("{s:?} is not an RFC 3339 time ({e}), e.g. 2026-11-27T13:28:25Z"),
                    )
                })
            })
            .transpose()
    };
    let since = parse_time("since", &q.since)?;
    let received_since = parse_time("received_since", &q.received_since)?;
    let acknowledged = match q.acknowledged.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(bad(
                "acknowledged",
                format!("{other:?} must be true or false"),
            ))
        }
    };
    let until = parse_time("until", &q.until)?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(bad("since", "must not be after `until`"));
        }
    }
    let limit = match q.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(bad(
                    "limit",
                    format!("{s:?} must be a number from 1 to {MAX_LIMIT}"),
                ))
            }
        },
    };
    Ok((
        EventFilter {
            device,
            kind,
            since,
            until,
            acknowledged,
            received_since,
        },
        limit,
    ))
}

pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiFailure> {
    caller.require_user()?;
    let (filter, limit) = parse_filter(&query)?;
    let cursor = query.cursor.clone().filter(|c| !c.is_empty());
    let store = state.store.clone();
    let page = blocking(move || store.list_events(&filter, limit, cursor.as_deref())).await?;
    Ok(HttpResponse::Ok().json(page))
}

pub async fn devices(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiFailure> {
    caller.require_user()?;
    let store = state.store.clone();
    let devices = blocking(move || store.list_devices()).await?;
    Ok(HttpResponse::Ok().json(devices))
}

fn event_id(raw: &str) -> Result<uuid::Uuid, ApiFailure> {
    uuid::Uuid::try_parse(raw)
        .map_err(|_| ApiFailure::BadRequest(format!("event id {raw:?} is not a UUID")))
}

/// `GET /api/events/{id}`: one event (a link to it from an alert or a notification).
pub async fn one(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiFailure> {
    caller.require_user()?;
    let id = event_id(&path.into_inner())?;
    let store = state.store.clone();
    match blocking(move || store.get_event(id)).await? {
        Some(item) => Ok(HttpResponse::Ok().json(item)),
        None => Err(ApiFailure::NotFound(format!("no event {id}"))),
    }
}

/// `POST /api/events/{id}/ack`: a user acknowledges an alert (any role). Idempotent: the first
/// acknowledgement is kept and repeats answer the same event. Pushed to every console as an
/// `acknowledged` frame, so their unacknowledged counters agree.
pub async fn acknowledge(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiFailure> {
    let (user, _) = caller.require_user()?;
    let user = user.to_owned();
    let id = event_id(&path.into_inner())?;
    let store = state.store.clone();
    let who = user.clone();
    let outcome = blocking(move || store.acknowledge_event(id, &who, chrono::Utc::now())).await?;
    let Some((item, newly)) = outcome else {
        return Err(ApiFailure::NotFound(format!("no event {id}")));
    };
    if newly {
        tracing::info!(event_id = %id, user = %user, "event acknowledged");
        super::login::audit(
            &state,
            crate::store::AuditRecord {
                at: chrono::Utc::now(),
                actor: user.clone(),
                action: "event_acknowledged",
                target: Some(id.to_string()),
                detail: None,
                source: None,
            },
        )
        .await;
        state
            .hub
            .do_send(Broadcast(vec![StreamFrame::Acknowledged(item.clone())]));
    }
    Ok(HttpResponse::Ok().json(item))
}

/// `GET /api/audit?before=&limit=`: the audit trail, newest first (admins only).
pub async fn audit_trail(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiFailure> {
    caller.require_admin()?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                bad(
                    "limit",
                    format!("{s:?} must be a number from 1 to {MAX_LIMIT}"),
                )
            })?,
    };
    let before = query
        .before
        .as_deref()
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| bad("before", format!("{s:?} is not an entry id")))
        })
        .transpose()?;
    let store = state.store.clone();
    let entries = blocking(move || store.list_audit(before, limit)).await?;
    Ok(HttpResponse::Ok().json(entries))
}

/// `GET /api/audit` query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    before: Option<String>,
    limit: Option<String>,
}

/// `GET /api/time`: the cloud's clock, for a device (or a console) measuring its offset. Any
/// authenticated caller.
pub async fn time(_caller: Caller) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(protocol::api::ClockReading {
            now: chrono::Utc::now(),
        })
}

/// Reads the (possibly gzip-compressed) body, refusing more than `limit` bytes after decompression.
async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiFailure> {
    if let Some(len) = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return Err(ApiFailure::TooLarge { limit });
        }
    }
    let mut stream = actix_web::dev::Decompress::from_headers(payload.into_inner(), req.headers());
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| match e {
            actix_web::error::PayloadError::Overflow => ApiFailure::TooLarge { limit },
            e => ApiFailure::BadRequest(format!("cannot read body: {e}")),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiFailure::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Splits a JSON array into valid envelopes and per-item rejections.
fn decode_bulk(
    body: &[u8],
    device: Option<&DeviceId>,
) -> Result<(Vec<EventEnvelope>, Vec<Rejected>), ApiFailure> {
    let items: Vec<Box<serde_json::value::RawValue>> =
        serde_json::from_slice(body).map_err(|e| {
            ApiFailure::BadRequest(format!("body must be a JSON array of event envelopes: {e}"))
        })?;
    if items.len() > MAX_BULK_ITEMS {
        return Err(ApiFailure::BadRequest(format!(
            "{} events in one request; at most {MAX_BULK_ITEMS}",
            items.len()
        )));
    }
    let mut valid = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for (index, raw) in items.iter().enumerate() {
        match EventEnvelope::from_json(raw.get().as_bytes()) {
            Ok(e) if device.is_some_and(|d| d != &e.device) => rejected.push(Rejected {
                index,
                error: format!(
                    "event of device {} posted with the token of device {}",
                    e.device,
                    device.expect("checked")
                ),
            }),
            Ok(e) => valid.push(e),
            Err(e) => rejected.push(Rejected {
                index,
                error: e.to_string(),
            }),
        }
    }
    Ok((valid, rejected))
}

pub async fn bulk(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiFailure> {
    if let Ok((_, role)) = caller.require_user() {
        if role != Role::Admin {
            return Err(ApiFailure::Forbidden(
                "only devices and admins may post events".into(),
            ));
        }
    }
    let device = caller.device().cloned();
    let body = read_body(&req, payload, state.max_body_bytes).await?;
    let (valid, rejected) = decode_bulk(&body, device.as_ref())?;
    let store = state.store.clone();
    let outcome = if valid.is_empty() {
        None
    } else {
        Some(blocking(move || store.insert_events(&valid, chrono::Utc::now())).await?)
    };
    let mut report = IngestReport {
        inserted: 0,
        duplicates: 0,
        rejected,
        acked_seq: None,
    };
    if let Some(outcome) = outcome {
        report.inserted = outcome.inserted.len() as u64;
        report.duplicates = outcome.duplicates;
        if let Some(ingest) = &state.ingest {
            ingest.do_send(PublishAcks(outcome.acked.clone()));
        }
        let frames: Vec<StreamFrame> = outcome
            .inserted
            .into_iter()
            .map(StreamFrame::Event)
            .collect();
        if !frames.is_empty() {
            state.hub.do_send(Broadcast(frames));
        }
        report.acked_seq = device.as_ref().and_then(|d| outcome.acked.get(d).copied());
    }
    if report.acked_seq.is_none() {
        if let Some(d) = device {
            let store = state.store.clone();
            report.acked_seq = Some(blocking(move || store.acked_seq(&d)).await?);
        }
    }
    Ok(HttpResponse::Ok().json(report))
}
