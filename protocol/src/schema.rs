//! JSON Schema of every wire type, generated from the types and committed under `protocol/schema/`.
//! `tests/schema.rs` fails when the committed files drift from the types; regenerate them with
//! `VIGIE_BLESS=1 cargo test -p vigie-protocol --test schema`.

use schemars::{schema_for, Schema};

use crate::api::DeviceView;
use crate::api::{
    ApiError, AuditEntry, ClockReading, EventItem, EventPage, IngestReport, LoginRequest, NewUser,
    RefreshRequest, SimulatedEvent, StreamFrame, TokenResponse, UserChange, UserView,
};
use crate::media::{
    CameraView, ClipCaptured, ClipView, EventMedia, MediaManifest, SnapshotPage, SnapshotTaken,
    UploadStatus,
};
use crate::{DeviceAck, DeviceStatus, EventEnvelope, GapRecord};

/// `(file stem, schema)` for every wire type.
pub fn all() -> Vec<(&'static str, Schema)> {
    vec![
        ("event_envelope", schema_for!(EventEnvelope)),
        ("device_status", schema_for!(DeviceStatus)),
        ("device_ack", schema_for!(DeviceAck)),
        ("event_item", schema_for!(EventItem)),
        ("event_page", schema_for!(EventPage)),
        ("ingest_report", schema_for!(IngestReport)),
        ("login_request", schema_for!(LoginRequest)),
        ("token_response", schema_for!(TokenResponse)),
        ("device_view", schema_for!(DeviceView)),
        ("stream_frame", schema_for!(StreamFrame)),
        ("api_error", schema_for!(ApiError)),
        ("simulated_event", schema_for!(SimulatedEvent)),
        ("gap_record", schema_for!(GapRecord)),
        ("clock_reading", schema_for!(ClockReading)),
        ("refresh_request", schema_for!(RefreshRequest)),
        ("audit_entry", schema_for!(AuditEntry)),
        ("user_view", schema_for!(UserView)),
        ("new_user", schema_for!(NewUser)),
        ("user_change", schema_for!(UserChange)),
        ("clip_captured", schema_for!(ClipCaptured)),
        ("snapshot_taken", schema_for!(SnapshotTaken)),
        ("media_manifest", schema_for!(MediaManifest)),
        ("upload_status", schema_for!(UploadStatus)),
        ("camera_view", schema_for!(CameraView)),
        ("snapshot_page", schema_for!(SnapshotPage)),
        ("clip_view", schema_for!(ClipView)),
        ("event_media", schema_for!(EventMedia)),
    ]
}

/// A schema as the committed file holds it (pretty JSON, trailing newline).
pub fn render(schema: &Schema) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a schema serialises");
    text.push('\n');
    text
}
