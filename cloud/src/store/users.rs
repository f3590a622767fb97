//! Users of the console and the API: a username, a role, an argon2id password hash (made and
//! checked in `crate::auth`; the store only keeps it), whether the user is disabled, and the locks
//! that repeated failed logins earn.
//!
//! Locks: failures of a user from one client address (`login_addresses`) lock that (user, address)
//! pair; failures from addresses that never logged in as that user also count towards a user-wide
//! lock, which only stops such addresses. So an attacker can lock a user out of new places, never
//! out of the places where the user logged in before. `vigie-cloud user unlock` clears both.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::error::corrupt;
use super::on_concrete;
use super::schema::{login_addresses, users};
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
    /// The user-wide lock: logins from addresses that never succeeded are refused until then.
    pub locked_until: Option<DateTime<Utc>>,
    /// A disabled user cannot log in and their sessions are refused.
    pub disabled: bool,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// The locks one failed login earned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginFailure {
    /// This (user, address) is locked until then.
    pub address_locked: Option<DateTime<Utc>>,
    /// The user is locked for addresses that never succeeded until then.
    pub user_locked: Option<DateTime<Utc>>,
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

type UserRow = (String, String, String, Option<i64>, Option<i64>);
type ListRow = (String, String, i64, Option<i64>, Option<i64>);

pub(super) fn find(conn: &mut Db, username: &str) -> Result<Option<UserRecord>, StoreError> {
    let row: Option<UserRow> = users::table
        .find(username)
        .select((
            users::username,
            users::role,
            users::password_hash,
            users::locked_until,
            users::disabled_at,
        ))
        .first(conn)
        .optional()?;
    row.map(
        |(username, role, password_hash, locked_until, disabled_at)| {
            Ok(UserRecord {
                role: role.parse().map_err(|e| corrupt("user role", e))?,
                username,
                password_hash,
                locked_until: locked_until.map(protocol::time::from_epoch_ms),
                disabled: disabled_at.is_some(),
            })
        },
    )
    .transpose()
}

/// The lock that stops `username` logging in from `address` at `now`, if any: the pair's own lock,
/// or the user-wide one when this address never logged in as this user.
pub(super) fn lock_in_force(
    conn: &mut Db,
    username: &str,
    address: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let pair: Option<(Option<i64>, Option<i64>)> = login_addresses::table
        .find((username, address))
        .select((login_addresses::locked_until, login_addresses::succeeded_at))
        .first(conn)
        .optional()?;
    let (pair_lock, succeeded) = pair.unwrap_or((None, None));
    if let Some(until) = pair_lock.filter(|t| *t > ms(now)) {
        return Ok(Some(protocol::time::from_epoch_ms(until)));
    }
    if succeeded.is_some() {
        return Ok(None);
    }
    let user_lock: Option<Option<i64>> = users::table
        .find(username)
        .select(users::locked_until)
        .first(conn)
        .optional()?;
    Ok(user_lock
        .flatten()
        .filter(|t| *t > ms(now))
        .map(protocol::time::from_epoch_ms))
}

/// Counts a failed login of an existing user from `address`. At `max_failures` the pair is locked
/// until `now + lock_for` and its count starts again; a failure from an address that never
/// succeeded also counts towards the user-wide lock, in the same way. An unknown user counts
/// nothing (no row is made for names an attacker invents).
pub(super) fn login_failed(
    conn: &mut Db,
    username: &str,
    address: &str,
    now: DateTime<Utc>,
    max_failures: u32,
    lock_for: std::time::Duration,
) -> Result<LoginFailure, StoreError> {
    let until =
        ms(now + chrono::Duration::from_std(lock_for).unwrap_or(chrono::Duration::hours(1)));
    let max = i64::from(max_failures);
    conn.transaction(|conn| {
        let exists: Option<String> = users::table
            .find(username)
            .select(users::username)
            .first(conn)
            .optional()?;
        if exists.is_none() {
            return Ok(LoginFailure::default());
        }
        on_concrete!(conn, |c| diesel::insert_into(login_addresses::table)
            .values((
                login_addresses::username.eq(username),
                login_addresses::address.eq(address),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        let (failures, succeeded): (i64, Option<i64>) =
            diesel::update(login_addresses::table.find((username, address)))
                .set(login_addresses::failed_logins.eq(login_addresses::failed_logins + 1))
                .returning((
                    login_addresses::failed_logins,
                    login_addresses::succeeded_at,
                ))
                .get_result(conn)?;
        let mut outcome = LoginFailure::default();
        if failures >= max {
            diesel::update(login_addresses::table.find((username, address)))
                .set((
                    login_addresses::failed_logins.eq(0),
                    login_addresses::locked_until.eq(until),
                ))
                .execute(conn)?;
            outcome.address_locked = Some(protocol::time::from_epoch_ms(until));
        }
        if succeeded.is_none() {
            let failures: i64 = diesel::update(users::table.find(username))
                .set(users::failed_logins.eq(users::failed_logins + 1))
                .returning(users::failed_logins)
                .get_result(conn)?;
            if failures >= max {
                diesel::update(users::table.find(username))
                    .set((users::failed_logins.eq(0), users::locked_until.eq(until)))
                    .execute(conn)?;
                outcome.user_locked = Some(protocol::time::from_epoch_ms(until));
            }
        }
        Ok(outcome)
    })
}

/// A successful login from `address`: the pair's count and lock are cleared and the address is
/// remembered as one this user logs in from. The user-wide count is left alone (a login from the
/// usual place must not give an attacker elsewhere a fresh set of guesses).
pub(super) fn login_succeeded(
    conn: &mut Db,
    username: &str,
    address: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    on_concrete!(conn, |c| diesel::insert_into(login_addresses::table)
        .values((
            login_addresses::username.eq(username),
            login_addresses::address.eq(address),
            login_addresses::succeeded_at.eq(ms(now)),
        ))
        .on_conflict((login_addresses::username, login_addresses::address))
        .do_update()
        .set((
            login_addresses::failed_logins.eq(0),
            login_addresses::locked_until.eq(None::<i64>),
            login_addresses::succeeded_at.eq(ms(now)),
        ))
        .execute(c))?;
    Ok(())
}

/// Every user as the API lists them (no hash), by name.
pub(super) fn list(conn: &mut Db) -> Result<Vec<protocol::api::UserView>, StoreError> {
    let rows: Vec<ListRow> = users::table
        .select((
            users::username,
            users::role,
            users::created_at,
            users::locked_until,
            users::disabled_at,
        ))
        .order(users::username.asc())
        .load(conn)?;
    rows.into_iter()
        .map(|(username, role, created_at, locked_until, disabled_at)| {
            let role: Role = role.parse().map_err(|e| corrupt("user role", e))?;
            Ok(protocol::api::UserView {
                username,
                role: role.as_str().to_owned(),
                created_at: protocol::time::from_epoch_ms(created_at),
                locked_until: locked_until.map(protocol::time::from_epoch_ms),
                disabled: disabled_at.is_some(),
            })
        })
        .collect()
}

fn changed(username: &str, rows: usize) -> Result<(), StoreError> {
    if rows == 0 {
        return Err(StoreError::NotFound(format!("no user {username:?}")));
    }
    Ok(())
}

impl super::Store {
    /// The lock that stops `username` from `address` now, if any (see the module doc).
    pub fn login_lock(
        &self,
        username: &str,
        address: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        lock_in_force(&mut *self.conn()?, username, address, now)
    }

    /// Counts a failed login of `username` from `address`; the locks it earned.
    pub fn login_failed(
        &self,
        username: &str,
        address: &str,
        now: DateTime<Utc>,
        max_failures: u32,
        lock_for: std::time::Duration,
    ) -> Result<LoginFailure, StoreError> {
        login_failed(
            &mut *self.conn()?,
            username,
            address,
            now,
            max_failures,
            lock_for,
        )
    }

    /// Remembers a successful login of `username` from `address` and clears that pair's lock.
    pub fn login_succeeded(
        &self,
        username: &str,
        address: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        login_succeeded(&mut *self.conn()?, username, address, now)
    }

    /// Clears every lock and failure count of a user (`vigie-cloud user unlock`).
    pub fn unlock_user(&self, username: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            let rows = diesel::update(users::table.find(username))
                .set((
                    users::failed_logins.eq(0),
                    users::locked_until.eq(None::<i64>),
                ))
                .execute(conn)?;
            changed(username, rows)?;
            diesel::update(login_addresses::table.filter(login_addresses::username.eq(username)))
                .set((
                    login_addresses::failed_logins.eq(0),
                    login_addresses::locked_until.eq(None::<i64>),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    /// Changes a user's role; it applies to their next request.
    pub fn set_user_role(&self, username: &str, role: Role) -> Result<(), StoreError> {
        let rows = diesel::update(users::table.find(username))
            .set(users::role.eq(role.as_str()))
            .execute(&mut *self.conn()?)?;
        changed(username, rows)
    }

    /// Replaces a user's password hash and ends every session of theirs (a new password is
    /// usually set because the old one leaked); how many sessions were ended.
    pub fn set_user_password(
        &self,
        username: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            let rows = diesel::update(users::table.find(username))
                .set(users::password_hash.eq(password_hash))
                .execute(conn)?;
            changed(username, rows)?;
            super::sessions::revoke_user(conn, username, now)
        })
    }

    /// Disables (`true`) or enables a user. Disabling ends every session of theirs; how many.
    pub fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            let rows = diesel::update(users::table.find(username))
                .set(users::disabled_at.eq(disabled.then(|| ms(now))))
                .execute(conn)?;
            changed(username, rows)?;
            if disabled {
                super::sessions::revoke_user(conn, username, now)
            } else {
                Ok(0)
            }
        })
    }

    /// Ends every session of an existing user; how many were open.
    pub fn end_user_sessions(
        &self,
        username: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            let exists: Option<String> = users::table
                .find(username)
                .select(users::username)
                .first(conn)
                .optional()?;
            changed(username, usize::from(exists.is_some()))?;
            super::sessions::revoke_user(conn, username, now)
        })
    }
}
