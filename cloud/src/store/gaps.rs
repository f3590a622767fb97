//! Gap records: events a device dropped from its outbox (its size or age bound), as it reported
//! them on `system/{device}/gap`. The device's acked_seq passes over their seqs (the walk in
//! `events` and `vigie_insert_events` asks [`covering`] at every hole), so an outbox that dropped
//! events is not stuck forever waiting for them, and the drop is on record, never silent.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use protocol::GapRecord;

use super::conn::Db;
use super::devices::{self as device_rows, SeenDevice};
use super::schema::device_gaps;
use super::{ms, to_u64, StoreError};

/// What recording a gap record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GapOutcome {
    /// Seqs this record covers that no earlier record of the device did (0 for a repeat, and
    /// overlapping records count a seq once).
    pub newly_dropped: u64,
    /// The device's acked_seq afterwards.
    pub acked_seq: u64,
}

/// Stores (or extends) the record and advances the device's acked_seq over it, in one transaction
/// that holds the device's row lock like an event batch does.
pub(super) fn record(
    conn: &mut Db,
    gap: &GapRecord,
    received_at: DateTime<Utc>,
) -> Result<GapOutcome, StoreError> {
    let device = gap.device.as_str();
    let refuse = |why: String| StoreError::Invalid(format!("gap record of {device}: {why}"));
    let first = super::seq_i64(gap.first_seq).map_err(refuse)?;
    let last = super::seq_i64(gap.last_seq).map_err(refuse)?;
    if last < first {
        return Err(refuse(format!("the range {first}..={last} is empty")));
    }
    let received_ms = ms(received_at);
    conn.transaction(|conn| {
        let progress = device_rows::touch(conn, &[SeenDevice::new(device, last, received_ms)])?;
        let before = progress
            .get(device)
            .ok_or_else(|| StoreError::Internal(format!("the row of device {device} vanished")))?
            .acked_seq;
        let covered_before = device_rows::covered_from(&device_ranges(conn, device)?, 1)?;
        let known: Option<i64> = device_gaps::table
            .find((device, first))
            .select(device_gaps::last_seq)
            .first(conn)
            .optional()?;
        let values = (
            device_gaps::last_seq.eq(last),
            device_gaps::reason.eq(gap.reason.as_str()),
            device_gaps::newest_at.eq(ms(gap.newest_at)),
            device_gaps::dropped_at.eq(ms(gap.dropped_at)),
            device_gaps::received_at.eq(received_ms),
        );
        match known {
            None => {
                diesel::insert_into(device_gaps::table)
                    .values((
                        device_gaps::device.eq(device),
                        device_gaps::first_seq.eq(first),
                        device_gaps::oldest_at.eq(ms(gap.oldest_at)),
                        values,
                    ))
                    .execute(conn)?;
            }
            Some(known_last) if known_last < last => {
                diesel::update(device_gaps::table.find((device, first)))
                    .set(values)
                    .execute(conn)?;
            }
            Some(_) => {}
        }
        let covered_after = device_rows::covered_from(&device_ranges(conn, device)?, 1)?;
        // Records are only added or extended: the union never shrinks.
        let newly = covered_after.saturating_sub(covered_before).max(0);
        let after = super::events::walk(conn, device, before)?;
        if after != before {
            device_rows::set_acked(conn, &[(device, after)])?;
        }
        Ok(GapOutcome {
            newly_dropped: to_u64("dropped events", newly)?,
            acked_seq: to_u64("acked_seq", after)?,
        })
    })
}

/// The end of the device's gap record that covers `seq`, if one does.
pub(super) fn covering(conn: &mut Db, device: &str, seq: i64) -> Result<Option<i64>, StoreError> {
    Ok(device_gaps::table
        .filter(device_gaps::device.eq(device))
        .filter(device_gaps::first_seq.le(seq))
        .filter(device_gaps::last_seq.ge(seq))
        .select(diesel::dsl::max(device_gaps::last_seq))
        .first::<Option<i64>>(conn)?)
}

/// `(first_seq, last_seq)` of every gap record of `device`, ascending.
fn device_ranges(conn: &mut Db, device: &str) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(device_gaps::table
        .filter(device_gaps::device.eq(device))
        .select((device_gaps::first_seq, device_gaps::last_seq))
        .order(device_gaps::first_seq.asc())
        .load(conn)?)
}

/// Per device: `(first_seq, last_seq)` of every gap record, ascending.
pub(super) fn ranges(conn: &mut Db) -> Result<BTreeMap<String, Vec<(i64, i64)>>, StoreError> {
    let rows: Vec<(String, i64, i64)> = device_gaps::table
        .select((
            device_gaps::device,
            device_gaps::first_seq,
            device_gaps::last_seq,
        ))
        .order((device_gaps::device.asc(), device_gaps::first_seq.asc()))
        .load(conn)?;
    let mut out: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (device, first, last) in rows {
        out.entry(device).or_default().push((first, last));
    }
    Ok(out)
}
