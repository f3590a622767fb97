//! Device credentials, each kept as a hash: the API token (`token_hash`), the MQTT password
//! (`mqtt_password_hash`, Mosquitto's format) and the live-push token (`live_token_hash`). A device
//! is provisioned once, rotated (all three replaced at once) as often as wanted, and revoked (all
//! three cleared); a revoked device can be provisioned again.

use chrono::Utc;
use diesel::prelude::*;
use protocol::DeviceId;

use super::conn::Db;
use super::devices::INITIAL_STATE;
use super::error::corrupt;
use super::schema::devices;
use super::{ms, StoreError};

/// The hashes of a device's credentials, as [`provision`] and [`rotate`] store them.
#[derive(Debug, Clone, Copy)]
pub struct CredentialHashes<'a> {
    /// SHA-256 of the API token.
    pub token: &'a str,
    /// The MQTT password as Mosquitto hashes it (absent: the device has no MQTT identity of its
    /// own, as with `Store::add_device`).
    pub mqtt_password: Option<&'a str>,
    /// SHA-256 of the live-push token (absent: the device cannot push a live stream).
    pub live_token: Option<&'a str>,
}

/// A unique hash already held by another device: the error says which, in words an operator acts on.
fn taken(why: String) -> impl FnOnce(diesel::result::Error) -> StoreError {
    move |e| match StoreError::from(e) {
        StoreError::Conflict(_) => StoreError::Conflict(why),
        other => other,
    }
}

const TOKEN_TAKEN: &str = "this token is already assigned to another device; issue a new one";

pub(super) fn provision(
    conn: &mut Db,
    id: &DeviceId,
    hashes: CredentialHashes<'_>,
) -> Result<(), StoreError> {
    conn.transaction(|conn| {
        // A device already seen through its events or status gets the credentials. This writes
        // first, so that SQLite takes its write lock at once.
        let updated = diesel::update(devices::table.find(id.as_str()))
            .filter(devices::token_hash.is_null())
            .set((
                devices::token_hash.eq(hashes.token),
                devices::mqtt_password_hash.eq(hashes.mqtt_password),
                devices::live_token_hash.eq(hashes.live_token),
                devices::revoked_at.eq(None::<i64>),
            ))
            .execute(conn)
            .map_err(taken(TOKEN_TAKEN.to_owned()))?;
        if updated == 1 {
            return Ok(());
        }
        let exists: bool = diesel::select(diesel::dsl::exists(devices::table.find(id.as_str())))
            .get_result(conn)?;
        if exists {
            return Err(StoreError::Conflict(format!(
                "device {id} is already provisioned with a token (`device rotate {id}` issues new \
                 credentials)"
            )));
        }
        let now = ms(Utc::now());
        diesel::insert_into(devices::table)
            .values((
                devices::id.eq(id.as_str()),
                devices::token_hash.eq(hashes.token),
                devices::mqtt_password_hash.eq(hashes.mqtt_password),
                devices::live_token_hash.eq(hashes.live_token),
                devices::state.eq(INITIAL_STATE),
                devices::created_at.eq(now),
            ))
            .execute(conn)
            .map_err(taken(format!(
                "device {id} was provisioned meanwhile, or {TOKEN_TAKEN}"
            )))?;
        Ok(())
    })
}

/// Replaces every credential of a provisioned, unrevoked device; the old ones stop working at
/// once (the broker's, once its password file is written again). Whether the device was there to
/// rotate.
pub(super) fn rotate(
    conn: &mut Db,
    id: &DeviceId,
    hashes: CredentialHashes<'_>,
) -> Result<bool, StoreError> {
    let changed = diesel::update(devices::table.find(id.as_str()))
        .filter(devices::revoked_at.is_null())
        .filter(devices::token_hash.is_not_null())
        .set((
            devices::token_hash.eq(hashes.token),
            devices::mqtt_password_hash.eq(hashes.mqtt_password),
            devices::live_token_hash.eq(hashes.live_token),
        ))
        .execute(conn)
        .map_err(taken(TOKEN_TAKEN.to_owned()))?;
    Ok(changed == 1)
}

/// The device whose API token hashes to `token_hash`.
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

/// The device whose live-push token hashes to `live_token_hash`.
pub(super) fn for_live_token_hash(
    conn: &mut Db,
    live_token_hash: &str,
) -> Result<Option<DeviceId>, StoreError> {
    let id: Option<String> = devices::table
        .filter(devices::live_token_hash.eq(live_token_hash))
        .select(devices::id)
        .first(conn)
        .optional()?;
    id.map(|id| DeviceId::new(id).map_err(|e| corrupt("device id", e)))
        .transpose()
}

/// Revokes a device: its API token, MQTT password (once the broker's password file is written
/// again) and live-push token stop working. Returns whether it was provisioned and not yet revoked.
pub(super) fn revoke(conn: &mut Db, id: &DeviceId) -> Result<bool, StoreError> {
    let changed = diesel::update(devices::table.find(id.as_str()))
        .filter(devices::revoked_at.is_null())
        .filter(devices::token_hash.is_not_null())
        .set((
            devices::token_hash.eq(None::<String>),
            devices::mqtt_password_hash.eq(None::<String>),
            devices::live_token_hash.eq(None::<String>),
            devices::revoked_at.eq(ms(Utc::now())),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

/// `(device id, Mosquitto password hash)` of every device that may connect, by id.
pub(super) fn mqtt_credentials(conn: &mut Db) -> Result<Vec<(String, String)>, StoreError> {
    let rows: Vec<(String, Option<String>)> = devices::table
        .filter(devices::revoked_at.is_null())
        .filter(devices::mqtt_password_hash.is_not_null())
        .select((devices::id, devices::mqtt_password_hash))
        .order(devices::id.asc())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, hash)| hash.map(|h| (id, h)))
        .collect())
}
