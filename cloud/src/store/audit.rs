//! The audit trail: who did what, when, from where. Appended to, never changed; read newest first by
//! admins (`GET /api/audit`). Entries never hold a secret (no password, no token).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use protocol::api::AuditEntry;

use super::conn::Db;
use super::schema::audit_log;
use super::{ms, StoreError};

/// The longest text kept in any field (a username typed at login can be anything).
const MAX_FIELD: usize = 200;

/// An entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    /// The user (or `cli`, or a device id) who acted.
    pub actor: String,
    /// What happened: `login`, `login_failed`, `login_locked`, `logout`, `user_added`,
    /// `device_added`, `event_acknowledged`, ...
    pub action: &'static str,
    pub target: Option<String>,
    pub detail: Option<String>,
    /// The client's address, when it came over HTTP.
    pub source: Option<String>,
}

fn clip(s: &str) -> String {
    let mut end = s.len().min(MAX_FIELD);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

pub(super) fn record(conn: &mut Db, r: &AuditRecord) -> Result<(), StoreError> {
    let values = (
        audit_log::at.eq(ms(r.at)),
        audit_log::actor.eq(clip(&r.actor)),
        audit_log::action.eq(r.action),
        audit_log::target.eq(r.target.as_deref().map(clip)),
        audit_log::detail.eq(r.detail.as_deref().map(clip)),
        audit_log::source.eq(r.source.as_deref().map(clip)),
    );
    diesel::insert_into(audit_log::table)
        .values(values)
        .execute(conn)?;
    Ok(())
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_log)]
struct AuditRow {
    id: i64,
    at: i64,
    actor: String,
    action: String,
    target: Option<String>,
    detail: Option<String>,
    source: Option<String>,
}

/// Up to `limit` entries older than `before` (an entry id), newest first.
pub(super) fn list(
    conn: &mut Db,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut query = audit_log::table.select(AuditRow::as_select()).into_boxed();
    if let Some(before) = before {
        query = query.filter(audit_log::id.lt(before));
    }
    let rows: Vec<AuditRow> = query
        .order(audit_log::id.desc())
        .limit(i64::from(limit))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            at: protocol::time::from_epoch_ms(r.at),
            actor: r.actor,
            action: r.action,
            target: r.target,
            detail: r.detail,
            source: r.source,
        })
        .collect())
}
