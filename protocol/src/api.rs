//! HTTP and WebSocket payloads of the cloud API (`/api/...`) and of the edge's local API.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DeviceId, DeviceState, EventEnvelope, EventKind, GapRecord, SensorId};

/// One stored event as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventItem {
    pub id: Uuid,
    pub device: DeviceId,
    pub seq: u64,
    pub sensor: SensorId,
    pub kind: EventKind,
    /// When it happened, by the device's clock.
    #[serde(with = "crate::time::rfc3339_ms")]
    #[schemars(with = "String")]
    pub occurred_at: DateTime<Utc>,
    /// When it happened, corrected by the offset the device measured against the cloud (equal to
    /// `occurred_at` when none was measured). Listings are ordered by it.
    #[serde(with = "crate::time::rfc3339_ms")]
    #[schemars(with = "String")]
    pub corrected_at: DateTime<Utc>,
    /// When the cloud stored it.
    #[serde(with = "crate::time::rfc3339_ms")]
    #[schemars(with = "String")]
    pub received_at: DateTime<Utc>,
    #[serde(default)]
    pub clock_synced: bool,
    /// When a user acknowledged the alert (absent: not yet), and who.
    #[serde(default, with = "crate::time::rfc3339_ms_opt")]
    #[schemars(with = "Option<String>")]
    pub acknowledged_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub acknowledged_by: Option<String>,
    /// The clip covering this event, once announced (`GET /api/events/{id}/media` gives its view).
    #[serde(default)]
    pub clip_id: Option<Uuid>,
    /// The snapshot taken at this event's trigger, once uploaded.
    #[serde(default)]
    pub snapshot_id: Option<Uuid>,
}

impl EventItem {
    pub fn from_envelope(e: &EventEnvelope, received_at: DateTime<Utc>) -> EventItem {
        EventItem {
            id: e.id,
            device: e.device.clone(),
            seq: e.seq,
            sensor: e.sensor.clone(),
            kind: e.kind.clone(),
            occurred_at: e.occurred_at,
            corrected_at: e.corrected_at(),
            received_at,
            clock_synced: e.clock_synced,
            acknowledged_at: None,
            acknowledged_by: None,
            clip_id: None,
            snapshot_id: None,
        }
    }
}

/// `GET /api/events` answer: newest first, `next_cursor` is absent on the last page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventPage {
    pub items: Vec<EventItem>,
    pub next_cursor: Option<String>,
}

/// One item of a bulk upload that was refused, by its index in the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Rejected {
    pub index: usize,
    pub error: String,
}

/// `POST /api/events` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IngestReport {
    /// Events newly stored.
    pub inserted: u64,
    /// Events the cloud already had (same id).
    pub duplicates: u64,
    pub rejected: Vec<Rejected>,
    /// For a device's own token: its highest contiguous committed `seq` after this request.
    pub acked_seq: Option<u64>,
}

/// `POST /api/auth/login` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// `POST /api/auth/login` and `POST /api/auth/refresh` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Trade it at `POST /api/auth/refresh` for a new access token (and a new refresh token: each
    /// works once). Absent where no session exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds until the session (and its refresh token) ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<u64>,
}

/// One user as `GET /api/users` lists them (admins only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserView {
    pub username: String,
    /// `admin` or `viewer`.
    pub role: String,
    #[serde(with = "crate::time::rfc3339_ms")]
    #[schemars(with = "String")]
    pub created_at: DateTime<Utc>,
    /// Locked after repeated failed logins until then.
    #[serde(default, with = "crate::time::rfc3339_ms_opt")]
    #[schemars(with = "Option<String>")]
    pub locked_until: Option<DateTime<Utc>>,
    /// A disabled user cannot log in and their sessions are refused.
    #[serde(default)]
    pub disabled: bool,
}

/// `PATCH /api/users/{name}` body (admins only): each field given is changed, each change audited.
/// A new password or disabling the user also ends every session of theirs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserChange {
    /// `admin` or `viewer`; applies to the user's next request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// At least 8 characters; stored only as an argon2id hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// `POST /api/users` body (admins only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NewUser {
    pub username: String,
    /// `admin` or `viewer`.
    pub role: String,
    /// At least 8 characters; stored only as an argon2id hash.
    pub password: String,
}

/// `POST /api/auth/refresh` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// One line of the audit trail (`GET /api/audit`, admins only), newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditEntry {
    /// Increasing; pass the last one as `before` for the next page.
    pub id: i64,
    #[serde(with = "crate::time::rfc3339_ms")]
    #[schemars(with = "String")]
    pub at: DateTime<Utc>,
    /// The user (or `cli`) who acted.
    pub actor: String,
    /// `login`, `login_failed`, `login_locked`, `logout`, `user_added`, `device_added`,
    /// `event_acknowledged`, ...
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    /// The client's address, for requests over HTTP.
    pub source: Option<String>,
}

/// One device as `GET /api/devices` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeviceView {
    pub id: DeviceId,
    /// From the device's status messages and its last will, not from its last event.
    pub state: DeviceState,
    /// The last time the cloud heard from the device (status or event).
    #[serde(with = "crate::time::rfc3339_ms_opt")]
    #[schemars(with = "Option<String>")]
    pub last_seen: Option<DateTime<Utc>>,
    pub queue_depth: u64,
    pub uptime_s: u64,
    pub clock_synced: bool,
    /// Highest contiguous committed `seq` (seqs the device reported dropped count as passed).
    pub acked_seq: u64,
    /// Seqs above `acked_seq` and below the highest seq seen that the cloud has neither stored nor
    /// been told were dropped: events still on their way, or lost. 0 when nothing is missing.
    #[serde(default)]
    pub missing_events: u64,
    /// Events the device reported dropped from its outbox (its size or age bound), in all.
    #[serde(default)]
    pub lost_events: u64,
    /// Whether the device reaches the cloud's HTTP API, from its last status (absent: unknown or
    /// no API configured).
    #[serde(default)]
    pub api_reachable: Option<bool>,
    /// The cloud's time minus the device's, as the device last measured it.
    #[serde(default)]
    pub clock_offset_ms: Option<i64>,
    /// What was refused in this device's name: the console warns when any count is above 0.
    #[serde(default)]
    pub security: SecurityCounts,
}

/// Attack telemetry of one device, counted since it was first seen (the same counts are in the
/// cloud's `/metrics`, since the process started).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecurityCounts {
    /// Acks on `system/{device}/ack` the device refused because they confirmed seqs it never
    /// issued (forged or stale), as its statuses report them, summed over its restarts.
    #[serde(default)]
    pub refused_acks: u64,
    /// Messages on the device's topics the ingest refused (malformed, out of bounds, or refused by
    /// the store), acked and never stored.
    #[serde(default)]
    pub invalid_messages: u64,
    /// Live-push logins naming the device that were refused (a wrong or revoked credential, or the
    /// path of another device).
    #[serde(default)]
    pub refused_live_logins: u64,
    /// When one of the counts last grew.
    #[serde(default, with = "crate::time::rfc3339_ms_opt")]
    #[schemars(with = "Option<String>")]
    pub last_at: Option<DateTime<Utc>>,
}

/// A WebSocket frame on `/api/stream`: `{"type": ..., "data": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum StreamFrame {
    /// A newly stored event.
    Event(EventItem),
    /// A device's status changed.
    DeviceStatus(DeviceView),
    /// An alert: a device dropped events from its outbox (new or extended record).
    Gap(GapRecord),
    /// A user acknowledged an event (the event as stored now).
    Acknowledged(EventItem),
    /// A clip or snapshot arrived in the media store.
    MediaReady(crate::media::MediaReady),
}

/// `GET /api/time`: the cloud's clock, for a device measuring its offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClockReading {
    #[serde(with = "crate::time::rfc3339_ms")]
    #[schemars(with = "String")]
    pub now: DateTime<Utc>,
}

/// The body of every API error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApiError {
    /// What was wrong, in words a person can act on.
    pub error: String,
}

/// `POST /sim/{button|motion}` on the edge: the activation is durably queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SimulatedEvent {
    pub id: Uuid,
    pub seq: u64,
}

/// The API filter for event kinds (`kind=button_pressed|motion`).
pub fn parse_kind_filter(s: &str) -> Result<EventKind, String> {
    let kind = EventKind::parse(s);
    if kind.is_known() {
        Ok(kind)
    } else {
        Err(format!(
            "unknown kind {s:?}: expected button_pressed or motion"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_frames_are_tagged_with_type_and_data() {
        let frame = StreamFrame::DeviceStatus(DeviceView {
            id: DeviceId::new("pi-1").unwrap(),
            state: DeviceState::Online,
            last_seen: None,
            queue_depth: 3,
            uptime_s: 9,
            clock_synced: true,
            acked_seq: 2,
            missing_events: 0,
            lost_events: 0,
            api_reachable: Some(true),
            clock_offset_ms: None,
            security: SecurityCounts::default(),
        });
        let v = serde_json::to_value(&frame).unwrap();
        assert_eq!(v["type"], "device_status");
        assert_eq!(v["data"]["queue_depth"], 3);
        assert_eq!(serde_json::from_value::<StreamFrame>(v).unwrap(), frame);
    }

    #[test]
    fn the_kind_filter_accepts_only_known_kinds() {
        assert_eq!(parse_kind_filter("motion"), Ok(EventKind::Motion));
        assert!(parse_kind_filter("smoke").unwrap_err().contains("smoke"));
    }
}
