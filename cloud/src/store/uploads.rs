//! Resumable uploads (`/api/media/{id}`): the manifest, how many bytes are safely received (fsynced
//! in the staging file) and whether the file is complete.
//!
//! `received` only moves by a conditional update from the value the writer read, so two writers on
//! one upload cannot both advance it; completion (upload complete, clip available or snapshot
//! stored) is one transaction and can be repeated after a crash at any step.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use protocol::media::MediaManifest;
use protocol::DeviceId;
use uuid::Uuid;

use super::conn::Db;
use super::error::corrupt;
use super::media::{self, Announced};
use super::schema::uploads;
use super::{clamp_i64, ms, on_concrete, to_u64, StoreError};

/// An upload as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub id: Uuid,
    pub device: DeviceId,
    pub manifest: MediaManifest,
    /// Bytes fsynced in the staging file: where the next chunk starts.
    pub received: u64,
    pub complete: bool,
}

/// What `PUT /api/media/{id}` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadBegun {
    /// A new upload (and, for a clip, the clip announced unless it already was, identically).
    Created(UploadRecord),
    /// The same manifest was already there.
    Known(UploadRecord),
    /// The id is known with another manifest (an upload, or an announced clip): nothing changed.
    Conflict(Option<UploadRecord>),
}

fn key(id: Uuid) -> String {
    id.as_hyphenated().to_string()
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = uploads)]
struct UploadRow {
    id: String,
    device: String,
    manifest: String,
    received: i64,
    complete: bool,
}

impl UploadRow {
    fn into_record(self) -> Result<UploadRecord, StoreError> {
        Ok(UploadRecord {
            id: Uuid::try_parse(&self.id).map_err(|e| corrupt("upload id", e))?,
            device: DeviceId::new(self.device).map_err(|e| corrupt("upload device", e))?,
            manifest: serde_json::from_str(&self.manifest)
                .map_err(|e| corrupt("upload manifest", e))?,
            received: to_u64("upload received", self.received)?,
            complete: self.complete,
        })
    }
}

pub(super) fn get(conn: &mut Db, id: Uuid) -> Result<Option<UploadRecord>, StoreError> {
    let row: Option<UploadRow> = uploads::table
        .find(key(id))
        .select(UploadRow::as_select())
        .first(conn)
        .optional()?;
    row.map(UploadRow::into_record).transpose()
}

pub(super) fn begin(
    conn: &mut Db,
    manifest: &MediaManifest,
    at: DateTime<Utc>,
) -> Result<UploadBegun, StoreError> {
    let text = serde_json::to_string(manifest)
        .map_err(|e| StoreError::Internal(format!("cannot encode the upload manifest: {e}")))?;
    // Compared as stored (times to the millisecond), so a resend always matches.
    let manifest: MediaManifest = serde_json::from_str(&text)
        .map_err(|e| StoreError::Internal(format!("cannot decode the upload manifest: {e}")))?;
    let manifest = &manifest;
    conn.transaction(|conn| {
        if let Some(known) = get(conn, manifest.id())? {
            return Ok(if &known.manifest == manifest {
                UploadBegun::Known(known)
            } else {
                UploadBegun::Conflict(Some(known))
            });
        }
        if let MediaManifest::Clip(clip) = manifest {
            if media::announce(conn, clip, at)? == Announced::Conflict {
                return Ok(UploadBegun::Conflict(None));
            }
        }
        let inserted = on_concrete!(conn, |c| diesel::insert_into(uploads::table)
            .values((
                uploads::id.eq(key(manifest.id())),
                uploads::device.eq(manifest.device().as_str()),
                uploads::kind.eq(manifest.kind()),
                uploads::manifest.eq(&text),
                uploads::size_bytes.eq(clamp_i64(manifest.size_bytes())),
                uploads::sha256.eq(manifest.sha256()),
                uploads::received.eq(0_i64),
                uploads::complete.eq(false),
                uploads::created_at.eq(ms(at)),
                uploads::updated_at.eq(ms(at)),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        let stored = get(conn, manifest.id())?
            .ok_or_else(|| StoreError::Internal("an upload vanished as it was made".into()))?;
        Ok(if inserted == 1 {
            UploadBegun::Created(stored)
        } else if &stored.manifest == manifest {
            UploadBegun::Known(stored)
        } else {
            UploadBegun::Conflict(Some(stored))
        })
    })
}

/// Moves `received` from `from` to `to`; false when it was not `from` any more (another writer).
pub(super) fn advance(
    conn: &mut Db,
    id: Uuid,
    from: u64,
    to: u64,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = diesel::update(uploads::table.find(key(id)))
        .filter(uploads::received.eq(clamp_i64(from)))
        .filter(uploads::complete.eq(false))
        .set((
            uploads::received.eq(clamp_i64(to)),
            uploads::updated_at.eq(ms(at)),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Starts an incomplete upload again from 0 (its file did not match the manifest).
pub(super) fn reset(conn: &mut Db, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
    diesel::update(uploads::table.find(key(id)))
        .filter(uploads::complete.eq(false))
        .set((uploads::received.eq(0_i64), uploads::updated_at.eq(ms(at))))
        .execute(conn)?;
    Ok(())
}

/// Marks the upload complete and its media stored (clip available, snapshot row), in one
/// transaction; whether this call completed it.
pub(super) fn complete(conn: &mut Db, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
    conn.transaction(|conn| {
        let Some(upload) = get(conn, id)? else {
            return Err(StoreError::Invalid(format!("no upload {id}")));
        };
        if upload.complete {
            return Ok(false);
        }
        diesel::update(uploads::table.find(key(id)))
            .set((
                uploads::received.eq(clamp_i64(upload.manifest.size_bytes())),
                uploads::complete.eq(true),
                uploads::updated_at.eq(ms(at)),
            ))
            .execute(conn)?;
        match &upload.manifest {
            MediaManifest::Clip(clip) => {
                media::clip_stored(conn, clip.clip_id, at)?;
            }
            MediaManifest::Snapshot(snapshot) => {
                media::snapshot_stored(conn, snapshot, at)?;
            }
        }
        Ok(true)
    })
}
