//! Listing events: newest first, filtered, keyset-paginated with an opaque cursor.
//!
//! The listing key is `corrected_at` (the device's time corrected by the offset it measured against
//! the cloud; `occurred_at` when none was measured): filters, order and cursors all use it, so a Pi
//! that booted with a wrong clock lists its events where they really happened.
//!
//! Performance contract: `corrected_at` is indexed (also per device), and a page continues from the
//! cursor with `corrected_at <= t AND (corrected_at < t OR id < last_id)`, a range the index answers
//! directly, with the few ties on `corrected_at` ordered by id afterwards (PostgreSQL: an incremental
//! sort). Every page costs about the same, however deep.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use protocol::api::{EventItem, EventPage};
use protocol::{DeviceId, EventKind, SensorId};
use uuid::Uuid;

use super::conn::Db;
use super::cursor::Cursor;
use super::error::corrupt;
use super::schema::events;
use super::{ms, to_u64, StoreError};

/// The largest page [`super::Store::list_events`] returns.
pub const MAX_PAGE: u32 = 1000;

/// Which events to list; every field is optional and they combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub device: Option<DeviceId>,
    pub kind: Option<EventKind>,
    /// Inclusive: events that occurred at or after this time (corrected time).
    pub since: Option<DateTime<Utc>>,
    /// Exclusive: events that occurred before this time (corrected time).
    pub until: Option<DateTime<Utc>>,
    /// `Some(false)`: only events no one acknowledged; `Some(true)`: only acknowledged ones.
    pub acknowledged: Option<bool>,
    /// Inclusive: events the cloud stored at or after this time (a console catching up on what it
    /// missed while disconnected, whatever their own time).
    pub received_since: Option<DateTime<Utc>>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = events)]
struct EventRow {
    id: String,
    device: String,
    seq: i64,
    sensor: String,
    kind: String,
    occurred_at: i64,
    clock_synced: bool,
    received_at: i64,
    corrected_at: i64,
    acknowledged_at: Option<i64>,
    acknowledged_by: Option<String>,
}

impl EventRow {
    fn into_item(self) -> Result<EventItem, StoreError> {
        Ok(EventItem {
            id: Uuid::try_parse(&self.id).map_err(|e| corrupt("event id", e))?,
            device: DeviceId::new(self.device).map_err(|e| corrupt("event device", e))?,
            seq: to_u64("event seq", self.seq)?,
            sensor: SensorId::new(self.sensor).map_err(|e| corrupt("event sensor", e))?,
            kind: EventKind::parse(&self.kind),
            occurred_at: protocol::time::from_epoch_ms(self.occurred_at),
            corrected_at: protocol::time::from_epoch_ms(self.corrected_at),
            received_at: protocol::time::from_epoch_ms(self.received_at),
            clock_synced: self.clock_synced,
            acknowledged_at: self.acknowledged_at.map(protocol::time::from_epoch_ms),
            acknowledged_by: self.acknowledged_by,
            clip_id: None,
            snapshot_id: None,
        })
    }
}

/// One event by its id.
pub(super) fn get(conn: &mut Db, id: Uuid) -> Result<Option<EventItem>, StoreError> {
    let row: Option<EventRow> = events::table
        .find(id.as_hyphenated().to_string())
        .select(EventRow::as_select())
        .first(conn)
        .optional()?;
    let mut items: Vec<EventItem> = row
        .map(EventRow::into_item)
        .into_iter()
        .collect::<Result<_, _>>()?;
    fill_media(conn, &mut items)?;
    Ok(items.pop())
}

/// Fills each event's `clip_id` and `snapshot_id` (one query for each, whatever the page size).
fn fill_media(conn: &mut Db, items: &mut [EventItem]) -> Result<(), StoreError> {
    let stored: Vec<(Uuid, &str)> = items.iter().map(|i| (i.id, i.device.as_str())).collect();
    let media = super::media::media_ids_of_events(conn, &stored)?;
    for item in items {
        if let Some(ids) = media.get(&item.id) {
            item.clip_id = ids.clip;
            item.snapshot_id = ids.snapshot;
        }
    }
    Ok(())
}

/// Marks an event acknowledged by `user` at `at`, unless it already is (the first one is kept).
/// Returns the event as stored afterwards, and whether this call acknowledged it; `None` when no
/// event has this id.
pub(super) fn acknowledge(
    conn: &mut Db,
    id: Uuid,
    user: &str,
    at: DateTime<Utc>,
) -> Result<Option<(EventItem, bool)>, StoreError> {
    let key = id.as_hyphenated().to_string();
    let changed = diesel::update(events::table.find(&key))
        .filter(events::acknowledged_at.is_null())
        .set((
            events::acknowledged_at.eq(ms(at)),
            events::acknowledged_by.eq(user),
        ))
        .execute(conn)?;
    let row: Option<EventRow> = events::table
        .find(&key)
        .select(EventRow::as_select())
        .first(conn)
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let mut items = [row.into_item()?];
    fill_media(conn, &mut items)?;
    let [item] = items;
    Ok(Some((item, changed == 1)))
}

pub(super) fn page(
    conn: &mut Db,
    filter: &EventFilter,
    limit: u32,
    cursor: Option<&str>,
) -> Result<EventPage, StoreError> {
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(StoreError::Invalid(format!(
            "limit must be between 1 and {MAX_PAGE}, not {limit}"
        )));
    }
    let after = cursor.map(Cursor::decode).transpose()?;

    let mut query = events::table.select(EventRow::as_select()).into_boxed();
    if let Some(device) = &filter.device {
        query = query.filter(events::device.eq(device.as_str().to_owned()));
    }
    if let Some(kind) = &filter.kind {
        query = query.filter(events::kind.eq(kind.as_str().to_owned()));
    }
    if let Some(since) = filter.since {
        query = query.filter(events::corrected_at.ge(ms(since)));
    }
    if let Some(until) = filter.until {
        query = query.filter(events::corrected_at.lt(ms(until)));
    }
    match filter.acknowledged {
        Some(true) => query = query.filter(events::acknowledged_at.is_not_null()),
        Some(false) => query = query.filter(events::acknowledged_at.is_null()),
        None => {}
    }
    if let Some(since) = filter.received_since {
        query = query.filter(events::received_at.ge(ms(since)));
    }
    if let Some(after) = &after {
        let last_id = after.id.as_hyphenated().to_string();
        query = query
            .filter(events::corrected_at.le(after.corrected_at_ms))
            .filter(
                events::corrected_at
                    .lt(after.corrected_at_ms)
                    .or(events::id.lt(last_id)),
            );
    }
    // One more row than asked says whether there is a next page.
    let mut rows: Vec<EventRow> = query
        .order((events::corrected_at.desc(), events::id.desc()))
        .limit(i64::from(limit) + 1)
        .load(conn)?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let mut items = rows
        .into_iter()
        .map(EventRow::into_item)
        .collect::<Result<Vec<_>, _>>()?;
    fill_media(conn, &mut items)?;
    let next_cursor = match items.last() {
        Some(last) if more => Some(
            Cursor {
                corrected_at_ms: ms(last.corrected_at),
                id: last.id,
            }
            .encode(),
        ),
        _ => None,
    };
    Ok(EventPage { items, next_cursor })
}
