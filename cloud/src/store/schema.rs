//! The diesel table definitions, shared by both dialects.
//!
//! Both migrations (`migrations/postgres`, `migrations/sqlite`) create these columns with the same
//! types: ids are text, times are milliseconds since the Unix epoch, so one query compiles for both.

diesel::table! {
    devices (id) {
        id -> Text,
        token_hash -> Nullable<Text>,
        state -> Text,
        last_seen -> Nullable<BigInt>,
        queue_depth -> BigInt,
        uptime_s -> BigInt,
        clock_synced -> Bool,
        acked_seq -> BigInt,
        max_seq -> BigInt,
        created_at -> BigInt,
        api_reachable -> Nullable<Bool>,
        clock_offset_ms -> Nullable<BigInt>,
        mqtt_password_hash -> Nullable<Text>,
        revoked_at -> Nullable<BigInt>,
        live_token_hash -> Nullable<Text>,
        refused_acks -> BigInt,
        refused_acks_reported -> BigInt,
        invalid_messages -> BigInt,
        refused_live_logins -> BigInt,
        last_attack_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    events (id) {
        id -> Text,
        device -> Text,
        seq -> BigInt,
        sensor -> Text,
        kind -> Text,
        occurred_at -> BigInt,
        clock_synced -> Bool,
        received_at -> BigInt,
        schema_version -> BigInt,
        corrected_at -> BigInt,
        acknowledged_at -> Nullable<BigInt>,
        acknowledged_by -> Nullable<Text>,
    }
}

diesel::table! {
    device_gaps (device, first_seq) {
        device -> Text,
        first_seq -> BigInt,
        last_seq -> BigInt,
        reason -> Text,
        oldest_at -> BigInt,
        newest_at -> BigInt,
        dropped_at -> BigInt,
        received_at -> BigInt,
    }
}

diesel::table! {
    users (username) {
        username -> Text,
        password_hash -> Text,
        role -> Text,
        created_at -> BigInt,
        failed_logins -> BigInt,
        locked_until -> Nullable<BigInt>,
        disabled_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    used_refresh_tokens (hash) {
        hash -> Text,
        session_id -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    login_addresses (username, address) {
        username -> Text,
        address -> Text,
        failed_logins -> BigInt,
        locked_until -> Nullable<BigInt>,
        succeeded_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        username -> Text,
        refresh_hash -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> BigInt,
        actor -> Text,
        action -> Text,
        target -> Nullable<Text>,
        detail -> Nullable<Text>,
        source -> Nullable<Text>,
    }
}

diesel::table! {
    clips (id) {
        id -> Text,
        device -> Text,
        started_at -> BigInt,
        size_bytes -> BigInt,
        sha256 -> Text,
        manifest -> Text,
        announced_at -> BigInt,
        available -> Bool,
        stored_at -> Nullable<BigInt>,
        deleted_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    clip_events (clip_id, event_id) {
        clip_id -> Text,
        event_id -> Text,
    }
}

diesel::table! {
    snapshots (id) {
        id -> Text,
        device -> Text,
        event_id -> Nullable<Text>,
        taken_at -> BigInt,
        width -> BigInt,
        height -> BigInt,
        size_bytes -> BigInt,
        stored_at -> BigInt,
    }
}

diesel::table! {
    uploads (id) {
        id -> Text,
        device -> Text,
        kind -> Text,
        manifest -> Text,
        size_bytes -> BigInt,
        sha256 -> Text,
        received -> BigInt,
        complete -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::joinable!(events -> devices (device));
diesel::joinable!(clip_events -> clips (clip_id));
diesel::allow_tables_to_appear_in_same_query!(
    devices,
    events,
    users,
    device_gaps,
    sessions,
    audit_log,
    clips,
    clip_events,
    snapshots,
    uploads,
    used_refresh_tokens,
    login_addresses
);
