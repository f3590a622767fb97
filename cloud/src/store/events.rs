//! Storing events: the batch insert, deduplication by event id, and the per-device acked_seq.
//!
//! Performance contract: one transaction and a fixed handful of statements per batch, however many
//! devices it holds:
//! 1. one multi-row upsert of the batch's devices, in id order: it locks their rows in a fixed
//!    order, so concurrent batches of one device commit one after the other and never deadlock;
//! 2. the events, `ON CONFLICT (id) DO NOTHING`, returning the ids stored;
//! 3. one multi-row update of the acked_seqs that moved.
//!
//! acked_seq advances over the seqs the batch stored without reading them back; the stored seqs
//! are read only when an earlier batch left higher seqs waiting behind a gap.
//!
//! On PostgreSQL the three steps are one statement, a call of the function `vigie_insert_events`
//! (`migrations/postgres/..._insert_events_function`) with one array per column: one round trip in
//! autocommit, its commit included, where BEGIN, three statements and COMMIT took five (a lone event
//! then commits in about a third of the time). On SQLite (the single-node default, in-process, no
//! round trips) the same steps run one row at a time, within one transaction.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use protocol::api::EventItem;
use protocol::{DeviceId, EventEnvelope};

use super::conn::Db;
use super::devices::{self as device_rows, SeenDevice, SeqProgress};
use super::schema::events;
use super::{ms, on_concrete, to_u64, InsertOutcome, StoreError};

/// A batch size the store is tested with beyond one walk page. (PostgreSQL takes a whole batch in
/// one statement of array parameters; SQLite one row per statement.)
pub const INSERT_CHUNK: usize = 1000;
/// How many sequence numbers the acked_seq walk reads at a time.
const WALK_PAGE: i64 = 512;

#[derive(Insertable)]
#[diesel(table_name = events)]
struct NewEvent<'a> {
    id: String,
    device: &'a str,
    seq: i64,
    sensor: &'a str,
    kind: &'a str,
    occurred_at: i64,
    clock_synced: bool,
    received_at: i64,
    schema_version: i64,
    corrected_at: i64,
}

impl<'a> NewEvent<'a> {
    fn from_envelope(e: &'a EventEnvelope, received_ms: i64) -> Result<NewEvent<'a>, StoreError> {
        let seq = super::seq_i64(e.seq)
            .map_err(|why| StoreError::Invalid(format!("event {}: {why}", e.id)))?;
        Ok(NewEvent {
            id: e.id.as_hyphenated().to_string(),
            device: e.device.as_str(),
            seq,
            sensor: e.sensor.as_str(),
            kind: e.kind.as_str(),
            occurred_at: ms(e.occurred_at),
            clock_synced: e.clock_synced,
            received_at: received_ms,
            schema_version: i64::from(e.schema_version),
            corrected_at: ms(e.corrected_at()),
        })
    }
}

pub(super) fn insert(
    conn: &mut Db,
    batch: &[EventEnvelope],
    received_at: DateTime<Utc>,
) -> Result<InsertOutcome, StoreError> {
    let received_ms = ms(received_at);
    let mut first_seen = HashSet::with_capacity(batch.len());
    let mut unique = Vec::with_capacity(batch.len());
    let mut rows = Vec::with_capacity(batch.len());
    for e in batch {
        if first_seen.insert(e.id) {
            rows.push(NewEvent::from_envelope(e, received_ms)?);
            unique.push(e);
        }
    }
    // In id order: the order `touch` locks the device rows in.
    let mut seen: BTreeMap<&str, SeenDevice<'_>> = BTreeMap::new();
    let mut device_ids: HashMap<&str, &DeviceId> = HashMap::new();
    for (row, e) in rows.iter().zip(&unique) {
        let device = seen
            .entry(row.device)
            .or_insert_with(|| SeenDevice::new(row.device, 0, received_ms));
        device.max_seq = device.max_seq.max(row.seq);
        device_ids.insert(row.device, &e.device);
    }
    let seen: Vec<SeenDevice<'_>> = seen.into_values().collect();

    let (stored_ids, acked): (HashSet<String>, BTreeMap<&str, u64>) = match conn {
        Db::Pg(pg) => insert_pg(pg, &rows, received_ms, &device_ids)?,
        Db::Sqlite(_) => conn.transaction(|conn| {
            let progress = device_rows::touch(conn, &seen)?;
            let stored_ids = insert_rows(conn, &rows)?;
            let mut stored_seqs: HashMap<&str, HashSet<i64>> = HashMap::new();
            for row in rows.iter().filter(|row| stored_ids.contains(&row.id)) {
                stored_seqs.entry(row.device).or_default().insert(row.seq);
            }
            let mut acked = BTreeMap::new();
            let mut changed = Vec::new();
            for device in &seen {
                let before = progress.get(device.id).copied().ok_or_else(|| {
                    StoreError::Internal(format!("the row of device {} vanished", device.id))
                })?;
                let after = advance(conn, device.id, before, stored_seqs.get(device.id))?;
                if after != before.acked_seq {
                    changed.push((device.id, after));
                }
                acked.insert(device.id, to_u64("acked_seq", after)?);
            }
            device_rows::set_acked(conn, &changed)?;
            Ok::<_, StoreError>((stored_ids, acked))
        })?,
    };

    let acked = acked
        .into_iter()
        .map(|(id, seq)| ((*device_ids[id]).clone(), seq))
        .collect();
    let inserted: Vec<EventItem> = unique
        .iter()
        .zip(&rows)
        .filter(|(_, row)| stored_ids.contains(&row.id))
        .map(|(e, row)| {
            let mut item = EventItem::from_envelope(e, protocol::time::from_epoch_ms(received_ms));
            item.occurred_at = protocol::time::from_epoch_ms(row.occurred_at);
            item.corrected_at = protocol::time::from_epoch_ms(row.corrected_at);
            item
        })
        .collect();
    let duplicates = (batch.len() - inserted.len()) as u64;
    Ok(InsertOutcome {
        inserted,
        duplicates,
        acked,
    })
}

/// The device's new acked_seq: first over the seqs this batch stored (no query), then, only if a
/// higher seq was stored before (it arrived out of order), over the stored seqs.
///
/// Seqs the batch offered but that were already stored cannot move it: under the row lock
/// [`device_rows::touch`] takes, acked_seq is always as far as the stored seqs allow.
fn advance(
    conn: &mut Db,
    device: &str,
    before: SeqProgress,
    stored_now: Option<&HashSet<i64>>,
) -> Result<i64, StoreError> {
    let mut acked = before.acked_seq;
    if let Some(stored_now) = stored_now {
        while let Some(next) = acked.checked_add(1).filter(|n| stored_now.contains(n)) {
            acked = next;
        }
    }
    if acked > before.acked_seq && acked < before.max_seq {
        acked = walk(conn, device, acked)?;
    }
    Ok(acked)
}

#[derive(QueryableByName)]
struct PgOutcome {
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Text>)]
    stored: Vec<String>,
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Text>)]
    acked_devices: Vec<String>,
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::BigInt>)]
    acked_seqs: Vec<i64>,
}

/// The whole batch on PostgreSQL in one statement, so one round trip with its commit (autocommit):
/// the function `vigie_insert_events` (third migration) runs the four steps of this module's
/// contract in the same order, with the same locks. One array parameter per column: the statement
/// text never changes.
fn insert_pg<'r>(
    pg: &mut PgConnection,
    rows: &[NewEvent<'r>],
    received_ms: i64,
    device_ids: &HashMap<&'r str, &DeviceId>,
) -> Result<(HashSet<String>, BTreeMap<&'r str, u64>), StoreError> {
    use diesel::sql_types::{Array, BigInt, Bool, Text};
    if rows.is_empty() {
        return Ok((HashSet::new(), BTreeMap::new()));
    }
    let column = |f: fn(&NewEvent<'_>) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
    let out: PgOutcome = diesel::sql_query(
        "SELECT stored, acked_devices, acked_seqs FROM vigie_insert_events(\
           $1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], \
           $6::int8[], $7::bool[], $8::int8, $9::int8[], $10::int8[])",
    )
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.device).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(column(|r| r.seq))
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.sensor).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.kind).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(column(|r| r.occurred_at))
    .bind::<Array<Bool>, _>(rows.iter().map(|r| r.clock_synced).collect::<Vec<_>>())
    .bind::<BigInt, _>(received_ms)
    .bind::<Array<BigInt>, _>(column(|r| r.schema_version))
    .bind::<Array<BigInt>, _>(column(|r| r.corrected_at))
    .get_result(pg)?;
    if out.acked_devices.len() != out.acked_seqs.len() {
        return Err(StoreError::Internal(
            "vigie_insert_events returned mismatched device and seq arrays".to_owned(),
        ));
    }
    let mut acked = BTreeMap::new();
    for (id, seq) in out.acked_devices.iter().zip(out.acked_seqs) {
        let (&key, _) = device_ids.get_key_value(id.as_str()).ok_or_else(|| {
            StoreError::Internal(format!("vigie_insert_events returned unknown device {id}"))
        })?;
        acked.insert(key, to_u64("acked_seq", seq)?);
    }
    Ok((out.stored.into_iter().collect(), acked))
}

/// Follows the stored seqs of `device` up from `acked` while they have no gap, passing over the
/// seqs of the device's gap records (events it reported dropped). Checked: nothing follows
/// `i64::MAX`, so the walk stops there (stored seqs are at most 2^62 anyway).
pub(super) fn walk(conn: &mut Db, device: &str, mut acked: i64) -> Result<i64, StoreError> {
    loop {
        let page: Vec<i64> = events::table
            .filter(events::device.eq(device))
            .filter(events::seq.gt(acked))
            .order(events::seq.asc())
            .select(events::seq)
            .limit(WALK_PAGE)
            .load(conn)?;
        let full = page.len() == WALK_PAGE as usize;
        let mut hole = false;
        for seq in page {
            if acked.checked_add(1) == Some(seq) {
                acked = seq;
            } else if seq > acked {
                hole = true;
                break;
            }
        }
        if hole || !full {
            let Some(next) = acked.checked_add(1) else {
                return Ok(acked);
            };
            match super::gaps::covering(conn, device, next)? {
                Some(last) if last > acked => acked = last,
                _ => return Ok(acked),
            }
        }
    }
}

/// Inserts the rows that are not stored yet, on SQLite; returns the ids it stored.
///
/// diesel runs a SQLite "batch" with `RETURNING` as one statement per row anyway, so SQLite gets
/// exactly that, inside the transaction, on a cached prepared statement.
fn insert_rows(conn: &mut Db, rows: &[NewEvent<'_>]) -> Result<HashSet<String>, StoreError> {
    let mut stored = HashSet::with_capacity(rows.len());
    for row in rows {
        let id: Option<String> = on_concrete!(conn, |c| diesel::insert_into(events::table)
            .values(row)
            .on_conflict_do_nothing()
            .returning(events::id)
            .get_result(c)
            .optional())?;
        stored.extend(id);
    }
    Ok(stored)
}
