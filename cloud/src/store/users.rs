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
    let row: Option<(String, String, String)> = users::table
        .find(username)
        .select((users::username, users::role, users::password_hash))
        .first(conn)
        .optional()?;
    row.map(|(username, role, password_hash)| {
        Ok(UserRecord {
            role: role.parse().map_err(|e| corrupt("user role", e))?,
            username,
            password_hash,
        })
    })
    .transpose()
}
