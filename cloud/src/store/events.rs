//! Storing events: the batch insert, deduplication by event id, and the per-device acked_seq.
//!
//! Performance contract: one transaction per batch; the devices of the batch are upserted first (in
//! id order, which also locks their rows in a fixed order so concurrent batches of one device commit
//! one after the other and never deadlock), then the events go in as multi-row
//! `INSERT .. ON CONFLICT (id) DO NOTHING RETURNING id` of up to [`INSERT_CHUNK`] rows, then each
//! device's acked_seq advances (SQLite, the single-node default, inserts row by row in that same
//! transaction). The walk runs only for a device whose batch holds `acked_seq + 1`,
//! since nothing else can extend its contiguous run.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use protocol::api::EventItem;
use protocol::{DeviceId, EventEnvelope};

use super::conn::Db;
use super::schema::{devices, events};
use super::{devices as device_rows, ms, to_u64, InsertOutcome, StoreError};

/// The most rows in one INSERT statement (9 parameters each: far below both backends' limits).
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
}

impl<'a> NewEvent<'a> {
    fn from_envelope(e: &'a EventEnvelope, received_ms: i64) -> Result<NewEvent<'a>, StoreError> {
        let seq = i64::try_from(e.seq).map_err(|_| {
            StoreError::Invalid(format!(
                "event {}: seq {} is above the largest storable ({})",
                e.id,
                e.seq,
                i64::MAX
            ))
        })?;
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
    let mut seqs_by_device: HashMap<&DeviceId, HashSet<i64>> = HashMap::new();
    for e in batch {
        if first_seen.insert(e.id) {
            let row = NewEvent::from_envelope(e, received_ms)?;
            seqs_by_device.entry(&e.device).or_default().insert(row.seq);
            rows.push(row);
            unique.push(e);
        }
    }
    let devices: BTreeSet<&DeviceId> = seqs_by_device.keys().copied().collect();

    let (stored_ids, acked) = conn.transaction(|conn| {
        for device in &devices {
            device_rows::touch(conn, device.as_str(), received_ms)?;
        }
        let stored_ids = insert_rows(conn, &rows)?;
        let mut acked = BTreeMap::new();
        for device in &devices {
            let seqs = &seqs_by_device[device];
            acked.insert((*device).clone(), advance_acked(conn, device, seqs)?);
        }
        Ok::<_, StoreError>((stored_ids, acked))
    })?;

    let inserted: Vec<EventItem> = unique
        .iter()
        .zip(&rows)
        .filter(|(_, row)| stored_ids.contains(&row.id))
        .map(|(e, row)| {
            let mut item = EventItem::from_envelope(e, protocol::time::from_epoch_ms(received_ms));
            item.occurred_at = protocol::time::from_epoch_ms(row.occurred_at);
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

/// Inserts the rows that are not stored yet; returns the ids it stored.
///
/// PostgreSQL takes them as multi-row statements of [`INSERT_CHUNK`] rows. diesel runs a SQLite
/// "batch" with `RETURNING` as one statement per row anyway, so SQLite gets exactly that, inside the
/// same transaction, on a cached prepared statement.
fn insert_rows(conn: &mut Db, rows: &[NewEvent<'_>]) -> Result<HashSet<String>, StoreError> {
    let mut stored = HashSet::with_capacity(rows.len());
    match conn {
        Db::Pg(pg) => {
            for chunk in rows.chunks(INSERT_CHUNK) {
                let ids: Vec<String> = diesel::insert_into(events::table)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .returning(events::id)
                    .get_results(pg)?;
                stored.extend(ids);
            }
        }
        Db::Sqlite(sqlite) => {
            for row in rows {
                let id: Option<String> = diesel::insert_into(events::table)
                    .values(row)
                    .on_conflict_do_nothing()
                    .returning(events::id)
                    .get_result(sqlite)
                    .optional()?;
                stored.extend(id);
            }
        }
    }
    Ok(stored)
}

/// Advances the device's acked_seq over the sequence numbers now stored without a gap, persists
/// it, and returns it.
fn advance_acked(
    conn: &mut Db,
    device: &DeviceId,
    batch_seqs: &HashSet<i64>,
) -> Result<u64, StoreError> {
    let current: i64 = devices::table
        .find(device.as_str())
        .select(devices::acked_seq)
        .first(conn)?;
    if !batch_seqs.contains(&current.saturating_add(1)) {
        return to_u64("acked_seq", current);
    }
    let mut acked = current;
    loop {
        let page: Vec<i64> = events::table
            .filter(events::device.eq(device.as_str()))
            .filter(events::seq.gt(acked))
            .order(events::seq.asc())
            .select(events::seq)
            .limit(WALK_PAGE)
            .load(conn)?;
        let full = page.len() == WALK_PAGE as usize;
        let mut gap = false;
        for seq in page {
            if seq == acked + 1 {
                acked = seq;
            } else if seq > acked {
                gap = true;
                break;
            }
        }
        if gap || !full {
            break;
        }
    }
    if acked != current {
        diesel::update(devices::table.find(device.as_str()))
            .set(devices::acked_seq.eq(acked))
            .execute(conn)?;
    }
    to_u64("acked_seq", acked)
}
