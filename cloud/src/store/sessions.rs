//! Login sessions: one per login, named by the `sid` of its access tokens. A session ends when it
//! expires or is revoked (logout); its access tokens stop working at once, since every request checks
//! it. The refresh token rotates at each use and only its SHA-256 is kept, so an earlier refresh token
//! no longer works once a newer one was handed out.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::conn::Db;
use super::schema::sessions;
use super::{ms, StoreError};

/// A new session to store.
pub struct NewSession<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub refresh_hash: &'a str,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub(super) fn create(conn: &mut Db, s: &NewSession<'_>) -> Result<(), StoreError> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(s.id),
            sessions::username.eq(s.username),
            sessions::refresh_hash.eq(s.refresh_hash),
            sessions::created_at.eq(ms(s.created_at)),
            sessions::expires_at.eq(ms(s.expires_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Whether the session exists, is not revoked and has not expired at `now`.
pub(super) fn is_active(conn: &mut Db, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let found: Option<(i64, Option<i64>)> = sessions::table
        .find(id)
        .select((sessions::expires_at, sessions::revoked_at))
        .first(conn)
        .optional()?;
    Ok(matches!(found, Some((expires, None)) if expires > ms(now)))
}

/// Swaps the refresh token of the active session holding `old_hash` for `new_hash`. Returns the
/// session's id and user, or `None` when no active session holds that refresh token.
pub(super) fn rotate(
    conn: &mut Db,
    old_hash: &str,
    new_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<(String, String)>, StoreError> {
    conn.transaction(|conn| {
        let found: Option<(String, String)> = sessions::table
            .filter(sessions::refresh_hash.eq(old_hash))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(ms(now)))
            .select((sessions::id, sessions::username))
            .first(conn)
            .optional()?;
        let Some((id, username)) = found else {
            return Ok(None);
        };
        let changed = diesel::update(sessions::table.find(&id))
            .filter(sessions::refresh_hash.eq(old_hash))
            .set(sessions::refresh_hash.eq(new_hash))
            .execute(conn)?;
        // Two refreshes with the same token at once: only the first wins.
        Ok((changed == 1).then_some((id, username)))
    })
}

/// Ends a session (logout). Returns whether it was active.
pub(super) fn revoke(conn: &mut Db, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let changed = diesel::update(sessions::table.find(id))
        .filter(sessions::revoked_at.is_null())
        .set(sessions::revoked_at.eq(ms(now)))
        .execute(conn)?;
    Ok(changed == 1)
}
