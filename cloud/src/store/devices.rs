//! Devices: the row every device gets when first seen or provisioned, its status (from heartbeats
//! and its last will), its acked_seq, and the hash of its token.
//!
//! A device's state comes only from its status messages: a device seen only through its events, or
//! provisioned and never heard from, is `offline`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use protocol::api::DeviceView;
use protocol::{DeviceId, DeviceState, DeviceStatus};

use super::conn::Db;
use super::error::corrupt;
use super::schema::devices;
use super::{clamp_i64, ms, on_concrete, to_u64, StoreError};

/// The state of a device no status has been received from.
const INITIAL_STATE: &str = "offline";

#[derive(Queryable, Selectable)]
#[diesel(table_name = devices)]
struct DeviceRow {
    id: String,
    state: String,
    last_seen: Option<i64>,
    queue_depth: i64,
    uptime_s: i64,
    clock_synced: bool,
    acked_seq: i64,
}

impl DeviceRow {
    fn into_view(self) -> Result<DeviceView, StoreError> {
        Ok(DeviceView {
            id: DeviceId::new(self.id).map_err(|e| corrupt("device id", e))?,
            state: parse_state(&self.state),
            last_seen: self.last_seen.map(protocol::time::from_epoch_ms),
            queue_depth: to_u64("queue_depth", self.queue_depth)?,
            uptime_s: to_u64("uptime_s", self.uptime_s)?,
            clock_synced: self.clock_synced,
            acked_seq: to_u64("acked_seq", self.acked_seq)?,
        })
    }
}

fn parse_state(s: &str) -> DeviceState {
    match s {
        "online" => DeviceState::Online,
        "offline" => DeviceState::Offline,
        other => DeviceState::Unknown(other.to_owned()),
    }
}

/// Creates the device's row if it has none, and sets its last_seen. On PostgreSQL this also locks
/// the row until the transaction ends, which is what serialises concurrent writers of one device.
pub(super) fn touch(conn: &mut Db, id: &str, seen_ms: i64) -> Result<(), StoreError> {
    on_concrete!(conn, |c| diesel::insert_into(devices::table)
        .values((
            devices::id.eq(id),
            devices::state.eq(INITIAL_STATE),
            devices::last_seen.eq(seen_ms),
            devices::created_at.eq(seen_ms),
        ))
        .on_conflict(devices::id)
        .do_update()
        .set(devices::last_seen.eq(seen_ms))
        .execute(c))?;
    Ok(())
}

pub(super) fn record_status(
    conn: &mut Db,
    status: &DeviceStatus,
    received_at: DateTime<Utc>,
) -> Result<(DeviceView, bool), StoreError> {
    let id = status.device.as_str();
    let seen_ms = ms(received_at);
    let new_state = status.state.as_str();
    conn.transaction(|conn| {
        touch(conn, id, seen_ms)?;
        let before: String = devices::table.find(id).select(devices::state).first(conn)?;
        diesel::update(devices::table.find(id))
            .set((
                devices::state.eq(new_state),
                devices::queue_depth.eq(clamp_i64(status.queue_depth)),
                devices::uptime_s.eq(clamp_i64(status.uptime_s)),
                devices::clock_synced.eq(status.clock_synced),
            ))
            .execute(conn)?;
        let view = devices::table
            .find(id)
            .select(DeviceRow::as_select())
            .first(conn)?
            .into_view()?;
        Ok((view, before != new_state))
    })
}

pub(super) fn list(conn: &mut Db) -> Result<Vec<DeviceView>, StoreError> {
    devices::table
        .select(DeviceRow::as_select())
        .order(devices::id.asc())
        .load(conn)?
        .into_iter()
        .map(DeviceRow::into_view)
        .collect()
}

pub(super) fn acked_seq(conn: &mut Db, id: &DeviceId) -> Result<u64, StoreError> {
    let acked: Option<i64> = devices::table
        .find(id.as_str())
        .select(devices::acked_seq)
        .first(conn)
        .optional()?;
    to_u64("acked_seq", acked.unwrap_or(0))
}

pub(super) fn provision(conn: &mut Db, id: &DeviceId, token_hash: &str) -> Result<(), StoreError> {
    let conflict = |why: String| {
        move |e: diesel::result::Error| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(why),
            other => other,
        }
    };
    let token_taken = "this token is already assigned to another device; issue a new one";
    conn.transaction(|conn| {
        // A device already seen through its events or status gets the token. This writes first,
        // so that SQLite takes its write lock at once.
        let updated = diesel::update(devices::table.find(id.as_str()))
            .filter(devices::token_hash.is_null())
            .set(devices::token_hash.eq(token_hash))
            .execute(conn)
            .map_err(conflict(token_taken.to_owned()))?;
        if updated == 1 {
            return Ok(());
        }
        let exists: bool = diesel::select(diesel::dsl::exists(devices::table.find(id.as_str())))
            .get_result(conn)?;
        if exists {
            return Err(StoreError::Conflict(format!(
                "device {id} is already provisioned with a token"
            )));
        }
        let now = ms(Utc::now());
        diesel::insert_into(devices::table)
            .values((
                devices::id.eq(id.as_str()),
                devices::token_hash.eq(token_hash),
                devices::state.eq(INITIAL_STATE),
                devices::created_at.eq(now),
            ))
            .execute(conn)
            .map_err(conflict(format!(
                "device {id} was provisioned meanwhile, or {token_taken}"
            )))?;
        Ok(())
    })
}

pub(super) fn for_token_hash(
    conn: &mut Db,
    token_hash: &str,
) -> Result<Option<DeviceId>, StoreError> {
    let id: Option<String> = devices::table
        .filter(devices::token_hash.eq(token_hash))
        .select(devices::id)
        .first(conn)
        .optional()?;
    id.map(|id| DeviceId::new(id).map_err(|e| corrupt("device id", e)))
        .transpose()
}
