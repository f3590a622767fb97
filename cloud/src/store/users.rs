//! Users of the console and the API: a username, a role and an argon2id password hash (the hash is
//! made and checked in `crate::auth`; the store only keeps it).

use chrono::Utc;
use diesel::prelude::*;

use super::error::corrupt;
use super::schema::users;
use super::{conn::Db, ms, Role, StoreError};

/// The longest username accepted.
const MAX_USERNAME: usize = 64;

/// A stored user.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub username: String,
    pub role: Role,
    /// An argon2id PHC string.
    pub password_hash: String,
    /// Logins are refused until then (too many failed attempts).
    pub locked_until: Option<chrono::DateTime<Utc>>,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

pub(super) fn add(
    conn: &mut Db,
    username: &str,
    role: Role,
    password_hash: &str,
) -> Result<(), StoreError> {
    if username.is_empty() || username.len() > MAX_USERNAME || username.trim() != username {
        return Err(StoreError::Invalid(format!(
            "a username must be 1 to {MAX_USERNAME} bytes without surrounding spaces"
        )));
    }
    diesel::insert_into(users::table)
        .values((
            users::username.eq(username),
            users::password_hash.eq(password_hash),
            users::role.eq(role.as_str()),
            users::created_at.eq(ms(Utc::now())),
        ))
        .execute(conn)
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("user {username:?} already exists"))
            }
            other => other,
        })?;
    Ok(())
}

pub(super) fn find(conn: &mut Db, username: &str) -> Result<Option<UserRecord>, StoreError> {
    let row: Option<(String, String, String, Option<i64>)> = users::table
        .find(username)
        .select((
            users::username,
            users::role,
            users::password_hash,
            users::locked_until,
        ))
        .first(conn)
        .optional()?;
    row.map(|(username, role, password_hash, locked_until)| {
        Ok(UserRecord {
            role: role.parse().map_err(|e| corrupt("user role", e))?,
            username,
            password_hash,
            locked_until: locked_until.map(protocol::time::from_epoch_ms),
        })
    })
    .transpose()
}

/// Counts a failed login of an existing user; at `max_failures` in a row the user is locked until
/// `now + lock_for` and the count starts again. Returns the lock's end when this failure locked it.
pub(super) fn login_failed(
    conn: &mut Db,
    username: &str,
    now: chrono::DateTime<Utc>,
    max_failures: u32,
    lock_for: std::time::Duration,
) -> Result<Option<chrono::DateTime<Utc>>, StoreError> {
    conn.transaction(|conn| {
        let failures: Option<i64> = diesel::update(users::table.find(username))
            .set(users::failed_logins.eq(users::failed_logins + 1))
            .returning(users::failed_logins)
            .get_result(conn)
            .optional()?;
        match failures {
            Some(n) if n >= i64::from(max_failures) => {
                let until = now
                    + chrono::Duration::from_std(lock_for).unwrap_or(chrono::Duration::hours(1));
                diesel::update(users::table.find(username))
                    .set((
                        users::failed_logins.eq(0),
                        users::locked_until.eq(ms(until)),
                    ))
                    .execute(conn)?;
                Ok(Some(until))
            }
            _ => Ok(None),
        }
    })
}

/// A successful login clears the failure count and any lock.
pub(super) fn login_succeeded(conn: &mut Db, username: &str) -> Result<(), StoreError> {
    diesel::update(users::table.find(username))
        .set((
            users::failed_logins.eq(0),
            users::locked_until.eq(None::<i64>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Every user as the API lists them (no hash), by name.
pub(super) fn list(conn: &mut Db) -> Result<Vec<protocol::api::UserView>, StoreError> {
    let rows: Vec<(String, String, i64, Option<i64>)> = users::table
        .select((
            users::username,
            users::role,
            users::created_at,
            users::locked_until,
        ))
        .order(users::username.asc())
        .load(conn)?;
    rows.into_iter()
        .map(|(username, role, created_at, locked_until)| {
            let role: Role = role.parse().map_err(|e| corrupt("user role", e))?;
            Ok(protocol::api::UserView {
                username,
                role: role.as_str().to_owned(),
                created_at: protocol::time::from_epoch_ms(created_at),
                locked_until: locked_until.map(protocol::time::from_epoch_ms),
            })
        })
        .collect()
}
