//! Devices: the row every device gets when first seen or provisioned, its status (from heartbeats
//! and its last will), its acked_seq, and the hash of its token.
//!
//! A device's state comes only from its status messages: a device seen only through its events, or
//! provisioned and never heard from, is `offline`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use protocol::api::{DeviceView, SecurityCounts};
use protocol::{DeviceId, DeviceState, DeviceStatus};

use super::conn::Db;
use super::error::corrupt;
use super::schema::{devices, events};
use super::{clamp_i64, ms, on_concrete, to_u64, StoreError};

/// The state of a device no status has been received from.
pub(super) const INITIAL_STATE: &str = "offline";

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
    max_seq: i64,
    api_reachable: Option<bool>,
    clock_offset_ms: Option<i64>,
    refused_acks: i64,
    invalid_messages: i64,
    refused_live_logins: i64,
    last_attack_at: Option<i64>,
}

impl DeviceRow {
    /// The view, with what is missing and lost counted from the device's stored seqs above its
    /// acked_seq and its gap records (`gaps`: ascending `(first_seq, last_seq)`). Overlapping
    /// records count each seq once, and every sum is checked: a row no arithmetic can hold is
    /// reported as corrupt, never a panic or a wrapped count.
    fn into_view(self, conn: &mut Db, gaps: &[(i64, i64)]) -> Result<DeviceView, StoreError> {
        let acked = self.acked_seq;
        let mut missing = 0;
        if self.max_seq > acked {
            let stored_above: i64 = events::table
                .filter(events::device.eq(&self.id))
                .filter(events::seq.gt(acked))
                .count()
                .get_result(conn)?;
            let above = acked
                .checked_add(1)
                .ok_or_else(|| corrupt("acked_seq", format!("{acked} has no successor")))?;
            let dropped_above = covered_from(gaps, above)?;
            missing = self
                .max_seq
                .checked_sub(acked)
                .and_then(|n| n.checked_sub(stored_above))
                .and_then(|n| n.checked_sub(dropped_above))
                .ok_or_else(|| {
                    corrupt(
                        "device seqs",
                        format!(
                            "max_seq {} and acked_seq {acked} do not subtract",
                            self.max_seq
                        ),
                    )
                })?
                .max(0);
        }
        let lost = covered_from(gaps, 1)?;
        Ok(DeviceView {
            missing_events: to_u64("missing events", missing)?,
            lost_events: to_u64("lost events", lost)?,
            api_reachable: self.api_reachable,
            clock_offset_ms: self.clock_offset_ms,
            id: DeviceId::new(self.id).map_err(|e| corrupt("device id", e))?,
            state: parse_state(&self.state),
            last_seen: self.last_seen.map(protocol::time::from_epoch_ms),
            queue_depth: to_u64("queue_depth", self.queue_depth)?,
            uptime_s: to_u64("uptime_s", self.uptime_s)?,
            clock_synced: self.clock_synced,
            acked_seq: to_u64("acked_seq", self.acked_seq)?,
            security: SecurityCounts {
                refused_acks: to_u64("refused_acks", self.refused_acks)?,
                invalid_messages: to_u64("invalid_messages", self.invalid_messages)?,
                refused_live_logins: to_u64("refused_live_logins", self.refused_live_logins)?,
                last_at: self.last_attack_at.map(protocol::time::from_epoch_ms),
            },
        })
    }
}

/// How many seqs at or above `from` at least one of `gaps` covers (ascending by `first_seq`):
/// the union of the ranges, so overlapping records count a seq once. Checked: a range that does
/// not fit an `i64` count (only a corrupt row can hold one) is an error.
pub(super) fn covered_from(gaps: &[(i64, i64)], from: i64) -> Result<i64, StoreError> {
    let overflow = || corrupt("gap records", "their seqs overflow a count");
    let mut total: i64 = 0;
    // The lowest seq not counted yet; `None` once i64::MAX is counted.
    let mut next = Some(from);
    for &(first, last) in gaps {
        let Some(floor) = next else { break };
        let start = first.max(floor);
        if last < start {
            continue;
        }
        let span = last
            .checked_sub(start)
            .and_then(|n| n.checked_add(1))
            .ok_or_else(overflow)?;
        total = total.checked_add(span).ok_or_else(overflow)?;
        next = last.checked_add(1);
    }
    Ok(total)
}

fn parse_state(s: &str) -> DeviceState {
    match s {
        "online" => DeviceState::Online,
        "offline" => DeviceState::Offline,
        other => DeviceState::Unknown(other.to_owned()),
    }
}

/// A device a batch of events (or a status) comes from, as [`touch`] upserts it.
#[derive(Insertable)]
#[diesel(table_name = devices)]
pub(super) struct SeenDevice<'a> {
    pub id: &'a str,
    /// The highest seq the batch offers (0 for a status).
    pub max_seq: i64,
    pub last_seen: i64,
    pub state: &'a str,
    pub created_at: i64,
}

impl<'a> SeenDevice<'a> {
    pub fn new(id: &'a str, max_seq: i64, seen_ms: i64) -> SeenDevice<'a> {
        SeenDevice {
            id,
            max_seq,
            last_seen: seen_ms,
            state: INITIAL_STATE,
            created_at: seen_ms,
        }
    }
}

/// Where a device's sequence numbers stand, as [`touch`] finds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SeqProgress {
    pub acked_seq: i64,
    /// The highest seq ever offered, this batch included.
    pub max_seq: i64,
}

/// Creates the rows of devices that have none, sets their last_seen, raises their max_seq, and
/// returns where each device's sequence numbers stand: one statement for the whole batch. On
/// PostgreSQL this also locks the rows until the transaction ends, which serialises concurrent
/// writers of one device; give the devices in id order so two batches never lock in opposite order.
pub(super) fn touch(
    conn: &mut Db,
    seen: &[SeenDevice<'_>],
) -> Result<BTreeMap<String, SeqProgress>, StoreError> {
    use diesel::dsl::case_when;
    use diesel::upsert::excluded;
    if seen.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<(String, i64, i64)> =
        on_concrete!(conn, |c| diesel::insert_into(devices::table)
            .values(seen)
            .on_conflict(devices::id)
            .do_update()
            .set((
                devices::last_seen.eq(excluded(devices::last_seen)),
                devices::max_seq.eq(case_when(
                    excluded(devices::max_seq).gt(devices::max_seq),
                    excluded(devices::max_seq),
                )
                .otherwise(devices::max_seq)),
            ))
            .returning((devices::id, devices::acked_seq, devices::max_seq))
            .get_results(c))?;
    Ok(rows
        .into_iter()
        .map(|(id, acked_seq, max_seq)| (id, SeqProgress { acked_seq, max_seq }))
        .collect())
}

/// Sets the acked_seq of devices whose rows [`touch`] made sure exist (SQLite: one row at a time;
/// PostgreSQL does this inside `vigie_insert_events`).
pub(super) fn set_acked(conn: &mut Db, acked: &[(&str, i64)]) -> Result<(), StoreError> {
    for &(id, acked_seq) in acked {
        diesel::update(devices::table.find(id))
            .set(devices::acked_seq.eq(acked_seq))
            .execute(conn)?;
    }
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
        touch(conn, &[SeenDevice::new(id, 0, seen_ms)])?;
        let (before, reported_before): (String, i64) = devices::table
            .find(id)
            .select((devices::state, devices::refused_acks_reported))
            .first(conn)?;
        // A last will (no `at`) is written at connect and carries no counts: it changes none.
        if status.at.is_some() {
            let reported = clamp_i64(status.refused_acks);
            let grown = refused_acks_grown(reported_before, reported);
            diesel::update(devices::table.find(id))
                .set(devices::refused_acks_reported.eq(reported))
                .execute(conn)?;
            if grown > 0 {
                super::attacks::add(
                    conn,
                    id,
                    super::attacks::AttackTally {
                        refused_acks: grown,
                        ..Default::default()
                    },
                    seen_ms,
                )?;
            }
        }
        diesel::update(devices::table.find(id))
            .set((
                devices::state.eq(new_state),
                devices::queue_depth.eq(clamp_i64(status.queue_depth)),
                devices::uptime_s.eq(clamp_i64(status.uptime_s)),
                devices::clock_synced.eq(status.clock_synced),
                devices::api_reachable.eq(status.api_reachable),
                devices::clock_offset_ms.eq(status.clock_offset_ms),
            ))
            .execute(conn)?;
        let gaps = super::gaps::ranges(conn)?.remove(id).unwrap_or_default();
        let view = devices::table
            .find(id)
            .select(DeviceRow::as_select())
            .first(conn)?
            .into_view(conn, &gaps)?;
        Ok((view, before != new_state))
    })
}

/// How many acks a device refused since its previous status, from the count its statuses report
/// since it started: a count lower than the previous one means the device restarted.
fn refused_acks_grown(before: i64, reported: i64) -> i64 {
    if reported >= before {
        reported - before
    } else {
        reported
    }
}

pub(super) fn list(conn: &mut Db) -> Result<Vec<DeviceView>, StoreError> {
    let mut gaps = super::gaps::ranges(conn)?;
    let rows: Vec<DeviceRow> = devices::table
        .select(DeviceRow::as_select())
        .order(devices::id.asc())
        .load(conn)?;
    rows.into_iter()
        .map(|row| {
            let ranges = gaps.remove(&row.id).unwrap_or_default();
            row.into_view(conn, &ranges)
        })
        .collect()
}

pub(super) fn exists(conn: &mut Db, id: &DeviceId) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(devices::table.find(id.as_str()))).get_result(conn)?)
}

pub(super) fn acked_seq(conn: &mut Db, id: &DeviceId) -> Result<u64, StoreError> {
    let acked: Option<i64> = devices::table
        .find(id.as_str())
        .select(devices::acked_seq)
        .first(conn)
        .optional()?;
    to_u64("acked_seq", acked.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::covered_from;
    use protocol::MAX_SEQ;

    const MAX: i64 = MAX_SEQ as i64;

    #[test]
    fn refused_acks_are_summed_over_the_devices_restarts() {
        use super::refused_acks_grown;
        assert_eq!(refused_acks_grown(0, 0), 0);
        assert_eq!(refused_acks_grown(2, 5), 3);
        assert_eq!(refused_acks_grown(5, 5), 0);
        // Restarted: its count began again at 0.
        assert_eq!(refused_acks_grown(5, 1), 1);
        assert_eq!(refused_acks_grown(5, 0), 0);
    }

    #[test]
    fn overlapping_gap_records_count_each_seq_once() {
        assert_eq!(covered_from(&[], 1).unwrap(), 0);
        assert_eq!(covered_from(&[(4, 10)], 1).unwrap(), 7);
        assert_eq!(covered_from(&[(4, 10), (6, 8), (9, 12)], 1).unwrap(), 9);
        assert_eq!(covered_from(&[(4, 10), (20, 21)], 9).unwrap(), 4);
        assert_eq!(covered_from(&[(4, 10)], 11).unwrap(), 0);
    }

    #[test]
    fn records_near_the_bound_never_overflow_the_count() {
        let near: Vec<(i64, i64)> = (1..=5).map(|first| (first, MAX)).collect();
        assert_eq!(covered_from(&near, 1).unwrap(), MAX);
        assert_eq!(covered_from(&near, MAX).unwrap(), 1);
        // Rows no validation would let in are an error, not a panic.
        assert_eq!(covered_from(&[(1, i64::MAX)], 1).unwrap(), i64::MAX);
        assert!(covered_from(&[(0, i64::MAX)], 0).is_err());
        assert!(covered_from(&[(0, 5), (6, i64::MAX)], 0).is_err());
        assert_eq!(covered_from(&[(i64::MIN, -1)], 1).unwrap(), 0);
    }
}
