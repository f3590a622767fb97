//! Attack telemetry per device: counts of what was refused in a device's name, kept on its row so
//! the console can warn about it (`DeviceView::security`). Only devices that have a row are
//! counted: a made-up device id in a topic or a login creates nothing.

use diesel::prelude::*;

use super::conn::Db;
use super::schema::devices;
use super::StoreError;

/// What to add to one device's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttackTally {
    pub refused_acks: i64,
    pub invalid_messages: i64,
    pub refused_live_logins: i64,
}

impl AttackTally {
    pub fn is_empty(&self) -> bool {
        *self == AttackTally::default()
    }

    /// `self + other`, saturating (counts never wrap).
    pub fn plus(self, other: AttackTally) -> AttackTally {
        AttackTally {
            refused_acks: self.refused_acks.saturating_add(other.refused_acks),
            invalid_messages: self.invalid_messages.saturating_add(other.invalid_messages),
            refused_live_logins: self
                .refused_live_logins
                .saturating_add(other.refused_live_logins),
        }
    }
}

/// Adds `tally` to `device`'s counts and stamps `last_attack_at` (epoch ms); nothing when the
/// device has no row.
pub(super) fn add(
    conn: &mut Db,
    device: &str,
    tally: AttackTally,
    at_ms: i64,
) -> Result<(), StoreError> {
    if tally.is_empty() {
        return Ok(());
    }
    diesel::update(devices::table.find(device))
        .set((
            devices::refused_acks.eq(devices::refused_acks + tally.refused_acks),
            devices::invalid_messages.eq(devices::invalid_messages + tally.invalid_messages),
            devices::refused_live_logins
                .eq(devices::refused_live_logins + tally.refused_live_logins),
            devices::last_attack_at.eq(at_ms),
        ))
        .execute(conn)?;
    Ok(())
}

/// Adds every tally in one transaction.
pub(super) fn add_all(
    conn: &mut Db,
    tallies: &[(String, AttackTally)],
    at_ms: i64,
) -> Result<(), StoreError> {
    conn.transaction(|conn| {
        for (device, tally) in tallies {
            add(conn, device, *tally, at_ms)?;
        }
        Ok(())
    })
}
