//! Login sessions: one per login, named by the `sid` of its access tokens. A session ends when it
//! expires, is revoked (logout, an admin ending it, a password change), or its user is disabled; its
//! access tokens stop working at once, since every request reads the session and its user's row in
//! one query ([`caller`]).
//!
//! The refresh token rotates at each use and only its SHA-256 is kept. Every used one is remembered
//! (`used_refresh_tokens`) until the session expires: presenting one again is a replay, which
//! revokes the session ([`Rotation::Reused`]), so a stolen refresh token ends its session for the
//! thief and the owner alike.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::conn::Db;
use super::error::corrupt;
use super::schema::{sessions, used_refresh_tokens, users};
use super::{ms, Role, StoreError};

/// A new session to store.
pub struct NewSession<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub refresh_hash: &'a str,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// It was the session's current refresh token: the next one is stored.
    Rotated { session: String, username: String },
    /// It was already used: the session is revoked now (`revoked` is false when it already was).
    Reused {
        session: String,
        username: String,
        revoked: bool,
    },
    /// No session ever handed it out, or its session expired.
    Unknown,
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

/// The user and role of the session `id` when it can be used at `now`: not revoked, not expired,
/// its user not disabled. One query: the role is the user's row now, not the token's claim.
pub(super) fn caller(
    conn: &mut Db,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<(String, Role)>, StoreError> {
    let found: Option<(String, String)> = sessions::table
        .inner_join(users::table.on(users::username.eq(sessions::username)))
        .filter(sessions::id.eq(id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(ms(now)))
        .filter(users::disabled_at.is_null())
        .select((users::username, users::role))
        .first(conn)
        .optional()?;
    found
        .map(|(username, role)| Ok((username, role.parse().map_err(|e| corrupt("user role", e))?)))
        .transpose()
}

/// Of `ids`, those that can no longer be used at `now` (revoked, expired, user disabled, unknown).
pub(super) fn ended(
    conn: &mut Db,
    ids: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let mut ended = Vec::new();
    for chunk in ids.chunks(500) {
        let active: Vec<String> = sessions::table
            .inner_join(users::table.on(users::username.eq(sessions::username)))
            .filter(sessions::id.eq_any(chunk))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(ms(now)))
            .filter(users::disabled_at.is_null())
            .select(sessions::id)
            .load(conn)?;
        ended.extend(chunk.iter().filter(|id| !active.contains(id)).cloned());
    }
    Ok(ended)
}

/// Presents the refresh token `old_hash`: swaps it for `new_hash` when it is the current one of an
/// active session, and revokes its session when it was already used.
pub(super) fn rotate(
    conn: &mut Db,
    old_hash: &str,
    new_hash: &str,
    now: DateTime<Utc>,
) -> Result<Rotation, StoreError> {
    conn.transaction(|conn| {
        // Used tokens of expired sessions are of no use any more.
        diesel::delete(
            used_refresh_tokens::table.filter(used_refresh_tokens::expires_at.le(ms(now))),
        )
        .execute(conn)?;
        let current: Option<(String, String, i64)> = sessions::table
            .filter(sessions::refresh_hash.eq(old_hash))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(ms(now)))
            .select((sessions::id, sessions::username, sessions::expires_at))
            .first(conn)
            .optional()?;
        if let Some((id, username, expires_at)) = current {
            let changed = diesel::update(sessions::table.find(&id))
                .filter(sessions::refresh_hash.eq(old_hash))
                .set(sessions::refresh_hash.eq(new_hash))
                .execute(conn)?;
            if changed == 1 {
                diesel::insert_into(used_refresh_tokens::table)
                    .values((
                        used_refresh_tokens::hash.eq(old_hash),
                        used_refresh_tokens::session_id.eq(&id),
                        used_refresh_tokens::expires_at.eq(expires_at),
                    ))
                    .execute(conn)?;
                return Ok(Rotation::Rotated {
                    session: id,
                    username,
                });
            }
            // Two refreshes with the same token at once: the other one won, so this one is a reuse.
            let revoked = revoke(conn, &id, now)?;
            return Ok(Rotation::Reused {
                session: id,
                username,
                revoked,
            });
        }
        let used: Option<(String, String)> = used_refresh_tokens::table
            .inner_join(sessions::table.on(sessions::id.eq(used_refresh_tokens::session_id)))
            .filter(used_refresh_tokens::hash.eq(old_hash))
            .select((sessions::id, sessions::username))
            .first(conn)
            .optional()?;
        match used {
            Some((id, username)) => {
                let revoked = revoke(conn, &id, now)?;
                Ok(Rotation::Reused {
                    session: id,
                    username,
                    revoked,
                })
            }
            None => Ok(Rotation::Unknown),
        }
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

/// Ends every session of `username`; how many were still open.
pub(super) fn revoke_user(
    conn: &mut Db,
    username: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(diesel::update(sessions::table)
        .filter(sessions::username.eq(username))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(ms(now)))
        .set(sessions::revoked_at.eq(ms(now)))
        .execute(conn)?)
}

impl super::Store {
    /// The `(username, role)` of a usable session: one query over the session and its user's row,
    /// so a role change, a disabled user or a revoked session applies to the next request.
    pub fn session_caller(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, Role)>, StoreError> {
        caller(&mut *self.conn()?, id, now)
    }

    /// Of the sessions `ids`, those that can no longer be used (for closing their WebSockets).
    pub fn ended_sessions(
        &self,
        ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        ended(&mut *self.conn()?, ids, now)
    }

    /// Presents a refresh token: rotated, reused (the session is revoked), or unknown.
    pub fn present_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        rotate(&mut *self.conn()?, old_hash, new_hash, now)
    }
}

/// Whether the session exists, is not revoked, has not expired at `now`, and its user is enabled.
pub(super) fn is_active(conn: &mut Db, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    Ok(caller(conn, id, now)?.is_some())
}
