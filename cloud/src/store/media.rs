//! Clips and snapshots: what the cloud knows of each (announced metadata, the events a clip covers,
//! whether its file is in the media store), and the media of an event.
//!
//! A clip is announced once (by `video/{device}/captured` or by its upload manifest, whichever comes
//! first): the same metadata again is a no-op, other metadata for a known id is refused and changes
//! nothing. A snapshot row is written only once its JPEG is in the media store.
//!
//! A clip or snapshot links only events of its own device: a link to another device's event does
//! not count. That is checked when read, not when announced, since a clip may arrive before its
//! events: a stored event's media are only its own device's, and a clip's `event_ids` (a
//! snapshot's `event_id`) leave out the events stored under another device. An id no event has
//! yet keeps its links (media shown before their event arrives), to be judged when it arrives.
//!
//! Performance contract: every lookup is by primary key or an index (`clip_events_event`,
//! `snapshots_event`, `snapshots_device`); snapshot pages are keyset-paginated like events.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use protocol::media::{ClipCaptured, SnapshotTaken};
use protocol::DeviceId;
use uuid::Uuid;

use super::conn::Db;
use super::cursor::Cursor;
use super::error::corrupt;
use super::schema::{clip_events, clips, events, snapshots};
use super::{clamp_i64, ms, on_concrete, to_u64, StoreError};

/// What announcing a clip did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announced {
    /// The clip was new and is now stored.
    New,
    /// The same metadata was already stored: nothing changed.
    Known,
    /// Other metadata is stored under this id: nothing changed.
    Conflict,
}

/// A clip as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipRecord {
    pub clip: ClipCaptured,
    /// The file is in the media store.
    pub available: bool,
    /// An admin deleted the file.
    pub deleted: bool,
}

/// A stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub id: Uuid,
    pub device: DeviceId,
    pub event_id: Option<Uuid>,
    pub taken_at: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
    pub size_bytes: u64,
}

/// A camera: a device with clips or snapshots in the cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraRecord {
    pub device: DeviceId,
    /// Clips whose file is stored (not deleted).
    pub clips: u64,
}

fn key(id: Uuid) -> String {
    id.as_hyphenated().to_string()
}

fn parse_id(what: &str, raw: &str) -> Result<Uuid, StoreError> {
    Uuid::try_parse(raw).map_err(|e| corrupt(what, e))
}

/// Stores a clip's metadata unless it is known; see [`Announced`].
pub(super) fn announce(
    conn: &mut Db,
    clip: &ClipCaptured,
    at: DateTime<Utc>,
) -> Result<Announced, StoreError> {
    let manifest = serde_json::to_string(clip)
        .map_err(|e| StoreError::Internal(format!("cannot encode clip metadata: {e}")))?;
    // Compared as stored (times to the millisecond), so a resend always matches.
    let clip: ClipCaptured = serde_json::from_str(&manifest)
        .map_err(|e| StoreError::Internal(format!("cannot decode clip metadata: {e}")))?;
    let clip = &clip;
    let id = key(clip.clip_id);
    conn.transaction(|conn| {
        if let Some(stored) = get_clip_in(conn, clip.clip_id)? {
            return Ok(if &stored.clip == clip {
                Announced::Known
            } else {
                Announced::Conflict
            });
        }
        let inserted = on_concrete!(conn, |c| diesel::insert_into(clips::table)
            .values((
                clips::id.eq(&id),
                clips::device.eq(clip.device.as_str()),
                clips::started_at.eq(ms(clip.started_at)),
                clips::size_bytes.eq(clamp_i64(clip.size_bytes)),
                clips::sha256.eq(&clip.sha256),
                clips::manifest.eq(&manifest),
                clips::announced_at.eq(ms(at)),
                clips::available.eq(false),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        if inserted == 0 {
            // Announced concurrently by the other path: compare with what won.
            return Ok(match get_clip_in(conn, clip.clip_id)? {
                Some(stored) if &stored.clip == clip => Announced::Known,
                _ => Announced::Conflict,
            });
        }
        for event in &clip.event_ids {
            on_concrete!(conn, |c| diesel::insert_into(clip_events::table)
                .values((
                    clip_events::clip_id.eq(&id),
                    clip_events::event_id.eq(key(*event)),
                ))
                .on_conflict_do_nothing()
                .execute(c))?;
        }
        Ok(Announced::New)
    })
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = clips)]
struct ClipRow {
    manifest: String,
    available: bool,
    deleted_at: Option<i64>,
}

impl ClipRow {
    fn into_record(self) -> Result<ClipRecord, StoreError> {
        Ok(ClipRecord {
            clip: serde_json::from_str(&self.manifest).map_err(|e| corrupt("clip metadata", e))?,
            available: self.available,
            deleted: self.deleted_at.is_some(),
        })
    }
}

fn get_clip_in(conn: &mut Db, id: Uuid) -> Result<Option<ClipRecord>, StoreError> {
    let row: Option<ClipRow> = clips::table
        .find(key(id))
        .select(ClipRow::as_select())
        .first(conn)
        .optional()?;
    row.map(ClipRow::into_record).transpose()
}

/// The clip, its `event_ids` without the events of other devices.
pub(super) fn get_clip(conn: &mut Db, id: Uuid) -> Result<Option<ClipRecord>, StoreError> {
    get_clip_in(conn, id)?
        .map(|record| own_links(conn, record))
        .transpose()
}

/// Of `ids`, the events stored under another device than `device`.
fn foreign_events(conn: &mut Db, device: &str, ids: &[Uuid]) -> Result<HashSet<Uuid>, StoreError> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let keys: Vec<String> = ids.iter().map(|e| key(*e)).collect();
    let stored: Vec<String> = events::table
        .filter(events::device.ne(device))
        .filter(events::id.eq_any(&keys))
        .select(events::id)
        .load(conn)?;
    stored.iter().map(|id| parse_id("event id", id)).collect()
}

/// The record without the `event_ids` of other devices' events.
fn own_links(conn: &mut Db, mut record: ClipRecord) -> Result<ClipRecord, StoreError> {
    let foreign = foreign_events(conn, record.clip.device.as_str(), &record.clip.event_ids)?;
    record.clip.event_ids.retain(|e| !foreign.contains(e));
    Ok(record)
}

/// The device an event is stored under, if it is stored.
fn device_of_event(conn: &mut Db, event: Uuid) -> Result<Option<String>, StoreError> {
    Ok(events::table
        .find(key(event))
        .select(events::device)
        .first(conn)
        .optional()?)
}

/// Marks a clip's file stored; whether this call did (false: already, or deleted, or unknown).
pub(super) fn clip_stored(conn: &mut Db, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
    let changed = diesel::update(clips::table.find(key(id)))
        .filter(clips::available.eq(false))
        .filter(clips::deleted_at.is_null())
        .set((clips::available.eq(true), clips::stored_at.eq(ms(at))))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Marks a clip deleted (its file is gone): `None` when unknown, else whether this call did.
pub(super) fn clip_deleted(
    conn: &mut Db,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<bool>, StoreError> {
    conn.transaction(|conn| {
        let changed = diesel::update(clips::table.find(key(id)))
            .filter(clips::deleted_at.is_null())
            .set((clips::available.eq(false), clips::deleted_at.eq(ms(at))))
            .execute(conn)?;
        if changed == 1 {
            return Ok(Some(true));
        }
        let known: Option<String> = clips::table
            .find(key(id))
            .select(clips::id)
            .first(conn)
            .optional()?;
        Ok(known.map(|_| false))
    })
}

/// The newest clip covering an event that is not deleted: of the event's own device once the event
/// is stored.
pub(super) fn clip_of_event(conn: &mut Db, event: Uuid) -> Result<Option<ClipRecord>, StoreError> {
    let mut query = clips::table
        .inner_join(clip_events::table)
        .filter(clip_events::event_id.eq(key(event)))
        .filter(clips::deleted_at.is_null())
        .into_boxed();
    if let Some(device) = device_of_event(conn, event)? {
        query = query.filter(clips::device.eq(device));
    }
    let row: Option<ClipRow> = query
        .order((clips::started_at.desc(), clips::id.desc()))
        .select(ClipRow::as_select())
        .first(conn)
        .optional()?;
    row.map(|row| own_links(conn, row.into_record()?))
        .transpose()
}

/// The media ids of one event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct EventMediaIds {
    pub clip: Option<Uuid>,
    pub snapshot: Option<Uuid>,
}

/// For each of these stored events (id, device) that has one: its clip (not deleted) and its
/// snapshot, of the event's own device.
pub(super) fn media_ids_of_events(
    conn: &mut Db,
    stored: &[(Uuid, &str)],
) -> Result<HashMap<Uuid, EventMediaIds>, StoreError> {
    let mut out: HashMap<Uuid, EventMediaIds> = HashMap::new();
    if stored.is_empty() {
        return Ok(out);
    }
    let device_of: HashMap<String, &str> = stored.iter().map(|(e, d)| (key(*e), *d)).collect();
    let keys: Vec<&String> = device_of.keys().collect();
    let own = |event: &str, media_device: &str| device_of.get(event) == Some(&media_device);
    let clip_rows: Vec<(String, String, String)> = clip_events::table
        .inner_join(clips::table)
        .filter(clip_events::event_id.eq_any(&keys))
        .filter(clips::deleted_at.is_null())
        .order((clips::started_at.asc(), clips::id.asc()))
        .select((clip_events::event_id, clip_events::clip_id, clips::device))
        .load(conn)?;
    for (event, clip, device) in clip_rows {
        if !own(&event, &device) {
            continue;
        }
        // Ascending order: the newest clip of an event is written last.
        out.entry(parse_id("event id", &event)?).or_default().clip =
            Some(parse_id("clip id", &clip)?);
    }
    let snapshot_rows: Vec<(Option<String>, String, String)> = snapshots::table
        .filter(snapshots::event_id.eq_any(&keys))
        .order((snapshots::taken_at.asc(), snapshots::id.asc()))
        .select((snapshots::event_id, snapshots::id, snapshots::device))
        .load(conn)?;
    for (event, snapshot, device) in snapshot_rows {
        if let Some(event) = event.filter(|e| own(e, &device)) {
            out.entry(parse_id("event id", &event)?)
                .or_default()
                .snapshot = Some(parse_id("snapshot id", &snapshot)?);
        }
    }
    Ok(out)
}

/// Stores a snapshot whose JPEG is in the media store; whether this call did.
pub(super) fn snapshot_stored(
    conn: &mut Db,
    s: &SnapshotTaken,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = on_concrete!(conn, |c| diesel::insert_into(snapshots::table)
        .values((
            snapshots::id.eq(key(s.snapshot_id)),
            snapshots::device.eq(s.device.as_str()),
            snapshots::event_id.eq(s.event_id.map(key)),
            snapshots::taken_at.eq(ms(s.taken_at)),
            snapshots::width.eq(i64::from(s.width)),
            snapshots::height.eq(i64::from(s.height)),
            snapshots::size_bytes.eq(clamp_i64(s.size_bytes)),
            snapshots::stored_at.eq(ms(at)),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = snapshots)]
struct SnapshotRow {
    id: String,
    device: String,
    event_id: Option<String>,
    taken_at: i64,
    width: i64,
    height: i64,
    size_bytes: i64,
}

impl SnapshotRow {
    fn into_record(self) -> Result<SnapshotRecord, StoreError> {
        let dimension = |what: &str, v: i64| {
            u32::try_from(v).map_err(|_| corrupt(what, format!("{v} is out of range")))
        };
        Ok(SnapshotRecord {
            id: parse_id("snapshot id", &self.id)?,
            device: DeviceId::new(self.device).map_err(|e| corrupt("snapshot device", e))?,
            event_id: self
                .event_id
                .as_deref()
                .map(|e| parse_id("snapshot event id", e))
                .transpose()?,
            taken_at: protocol::time::from_epoch_ms(self.taken_at),
            width: dimension("snapshot width", self.width)?,
            height: dimension("snapshot height", self.height)?,
            size_bytes: to_u64("snapshot size", self.size_bytes)?,
        })
    }
}

/// The snapshots (all of `device`) without an `event_id` that is another device's event.
fn own_snapshot_links(
    conn: &mut Db,
    device: &str,
    mut records: Vec<SnapshotRecord>,
) -> Result<Vec<SnapshotRecord>, StoreError> {
    let linked: Vec<Uuid> = records.iter().filter_map(|r| r.event_id).collect();
    let foreign = foreign_events(conn, device, &linked)?;
    for r in &mut records {
        r.event_id = r.event_id.filter(|e| !foreign.contains(e));
    }
    Ok(records)
}

pub(super) fn get_snapshot(conn: &mut Db, id: Uuid) -> Result<Option<SnapshotRecord>, StoreError> {
    let row: Option<SnapshotRow> = snapshots::table
        .find(key(id))
        .select(SnapshotRow::as_select())
        .first(conn)
        .optional()?;
    let Some(record) = row.map(SnapshotRow::into_record).transpose()? else {
        return Ok(None);
    };
    let device = record.device.as_str().to_owned();
    Ok(own_snapshot_links(conn, &device, vec![record])?.pop())
}

/// The newest snapshot taken at an event: of the event's own device once the event is stored.
pub(super) fn snapshot_of_event(
    conn: &mut Db,
    event: Uuid,
) -> Result<Option<SnapshotRecord>, StoreError> {
    let mut query = snapshots::table
        .filter(snapshots::event_id.eq(key(event)))
        .into_boxed();
    if let Some(device) = device_of_event(conn, event)? {
        query = query.filter(snapshots::device.eq(device));
    }
    let row: Option<SnapshotRow> = query
        .order((snapshots::taken_at.desc(), snapshots::id.desc()))
        .select(SnapshotRow::as_select())
        .first(conn)
        .optional()?;
    row.map(SnapshotRow::into_record).transpose()
}

/// One page of a camera's snapshots, newest first; the cursor is the last item's position.
pub(super) fn snapshot_page(
    conn: &mut Db,
    device: &DeviceId,
    limit: u32,
    cursor: Option<&str>,
) -> Result<(Vec<SnapshotRecord>, Option<String>), StoreError> {
    if !(1..=super::MAX_PAGE).contains(&limit) {
        return Err(StoreError::Invalid(format!(
            "limit must be between 1 and {}, not {limit}",
            super::MAX_PAGE
        )));
    }
    let after = cursor.map(Cursor::decode).transpose()?;
    let mut query = snapshots::table
        .filter(snapshots::device.eq(device.as_str().to_owned()))
        .select(SnapshotRow::as_select())
        .into_boxed();
    if let Some(after) = &after {
        query = query
            .filter(snapshots::taken_at.le(after.corrected_at_ms))
            .filter(
                snapshots::taken_at
                    .lt(after.corrected_at_ms)
                    .or(snapshots::id.lt(key(after.id))),
            );
    }
    let mut rows: Vec<SnapshotRow> = query
        .order((snapshots::taken_at.desc(), snapshots::id.desc()))
        .limit(i64::from(limit) + 1)
        .load(conn)?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let items = rows
        .into_iter()
        .map(SnapshotRow::into_record)
        .collect::<Result<Vec<_>, _>>()?;
    let items = own_snapshot_links(conn, device.as_str(), items)?;
    let next = match items.last() {
        Some(last) if more => Some(
            Cursor {
                corrected_at_ms: ms(last.taken_at),
                id: last.id,
            }
            .encode(),
        ),
        _ => None,
    };
    Ok((items, next))
}

/// Every device with a clip (not deleted) or a snapshot, sorted, with its stored clip count.
pub(super) fn cameras(conn: &mut Db) -> Result<Vec<CameraRecord>, StoreError> {
    let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
    let stored: Vec<(String, i64)> = clips::table
        .filter(clips::deleted_at.is_null())
        .filter(clips::available.eq(true))
        .group_by(clips::device)
        .select((clips::device, diesel::dsl::count_star()))
        .load(conn)?;
    for (device, n) in stored {
        counts.insert(device, to_u64("clip count", n)?);
    }
    let announced: Vec<String> = clips::table
        .filter(clips::deleted_at.is_null())
        .select(clips::device)
        .distinct()
        .load(conn)?;
    for device in announced {
        counts.entry(device).or_default();
    }
    let snapshot_devices: Vec<String> = snapshots::table
        .select(snapshots::device)
        .distinct()
        .load(conn)?;
    for device in snapshot_devices {
        counts.entry(device).or_default();
    }
    counts
        .into_iter()
        .map(|(device, clips)| {
            Ok(CameraRecord {
                device: DeviceId::new(device).map_err(|e| corrupt("camera device", e))?,
                clips,
            })
        })
        .collect()
}
