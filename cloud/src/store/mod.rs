//! The store: everything Vigie's cloud persists (events, devices, users), on PostgreSQL in
//! production or on an embedded SQLite file by default. This is the only module that speaks SQL.
//!
//! Every method blocks: call it from a blocking thread (`web::block`, a `SyncArbiter`), never on an
//! async runtime thread.
//!
//! Performance contract: [`Store::insert_events`] takes a whole batch atomically: on PostgreSQL one
//! statement (a function call with one array per column: one round trip, commit included), on
//! SQLite one transaction. PostgreSQL commits over 30,000 events per second in batches of 500 to
//! 1000, and a lone event in one round trip (see `events`). Listing is keyset-paginated on an index, so
//! a page costs the same wherever it is in the history.
//!
//! Both backends store text ids compared byte by byte and times as milliseconds since the Unix
//! epoch, so the same queries give the same order on both.

mod attacks;
mod audit;
mod conn;
mod credentials;
mod cursor;
mod devices;
mod error;
mod events;
mod gaps;
mod list;
mod media;
mod schema;
mod sessions;
mod uploads;
mod users;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use diesel::r2d2::{PooledConnection, R2D2Connection};
use protocol::api::{DeviceView, EventItem, EventPage};
use protocol::{DeviceId, DeviceStatus, EventEnvelope, GapRecord};

pub use crate::auth::Role;
pub use attacks::AttackTally;
pub use audit::AuditRecord;
pub use credentials::CredentialHashes;
pub use error::StoreError;
pub use events::INSERT_CHUNK;
pub use gaps::GapOutcome;
pub use list::{EventFilter, MAX_PAGE};
pub use media::{Announced, CameraRecord, ClipRecord, SnapshotRecord};
pub use sessions::{NewSession, Rotation};
pub use uploads::{UploadBegun, UploadRecord};
pub use users::{LoginFailure, UserRecord};

use conn::{Manager, Pool};

/// The file name of the embedded database inside the data directory.
pub const SQLITE_FILE: &str = "vigie.sqlite3";

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "PostgreSQL",
            Backend::Sqlite => "SQLite",
        }
    }
}

/// What [`Store::insert_events`] did with a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertOutcome {
    /// The events stored by this call, in input order (without the ones already stored, and
    /// without repeats within the batch).
    pub inserted: Vec<EventItem>,
    /// Events that were already stored, or repeated within the batch.
    pub duplicates: u64,
    /// For every device in the batch: its highest contiguous committed `seq` after the commit.
    pub acked: BTreeMap<DeviceId, u64>,
}

/// A handle on the database: cheap to clone, shareable across threads.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: it is not shown.
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store and applies pending migrations.
    ///
    /// `None` opens (or creates) the SQLite file `data_dir/vigie.sqlite3`; `Some(url)` connects to
    /// PostgreSQL (`postgres://` or `postgresql://`). A database that cannot be reached is
    /// [`StoreError::Unavailable`].
    pub fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Store, StoreError> {
        let (backend, url) = match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                (Backend::Postgres, url.to_owned())
            }
            Some(_) => {
                return Err(StoreError::Invalid(
                    "the database URL must start with postgres:// or postgresql://; \
                     leave it unset to use the embedded SQLite file"
                        .to_owned(),
                ))
            }
            None => {
                crate::files::private_dir(data_dir).map_err(|e| {
                    StoreError::Unavailable(format!(
                        "cannot create the data directory {}: {e}",
                        data_dir.display()
                    ))
                })?;
                let path = data_dir.join(SQLITE_FILE);
                let url = path.to_str().ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "the data directory {} is not valid UTF-8",
                        data_dir.display()
                    ))
                })?;
                (Backend::Sqlite, url.to_owned())
            }
        };
        let pool = conn::open_pool(backend, url)?;
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that a connection can be had and answers (for readiness probes).
    pub fn ping(&self) -> Result<(), StoreError> {
        Ok(self.conn()?.ping()?)
    }

    /// Stores a batch of events in one transaction; an event id already stored is a duplicate.
    /// Also records every device of the batch as seen at `received_at` and advances its acked_seq.
    pub fn insert_events(
        &self,
        events: &[EventEnvelope],
        received_at: DateTime<Utc>,
    ) -> Result<InsertOutcome, StoreError> {
        events::insert(&mut *self.conn()?, events, received_at)
    }

    /// One event by its id; `None` when no event has it.
    pub fn get_event(&self, id: uuid::Uuid) -> Result<Option<EventItem>, StoreError> {
        list::get(&mut *self.conn()?, id)
    }

    /// Acknowledges an event for `user` (the first acknowledgement is kept). `None`: no such event;
    /// otherwise the event and whether this call acknowledged it.
    pub fn acknowledge_event(
        &self,
        id: uuid::Uuid,
        user: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<(EventItem, bool)>, StoreError> {
        list::acknowledge(&mut *self.conn()?, id, user, at)
    }

    /// Stores a new login session.
    pub fn create_session(&self, session: &NewSession<'_>) -> Result<(), StoreError> {
        sessions::create(&mut *self.conn()?, session)
    }

    /// Whether the session can still be used (not revoked, not expired).
    pub fn session_active(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        sessions::is_active(&mut *self.conn()?, id, now)
    }

    /// Ends a session; whether it was active.
    pub fn revoke_session(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        sessions::revoke(&mut *self.conn()?, id, now)
    }

    /// Appends to the audit trail.
    pub fn audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        audit::record(&mut *self.conn()?, record)
    }

    /// Audit entries older than `before` (an entry id), newest first.
    pub fn list_audit(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<protocol::api::AuditEntry>, StoreError> {
        audit::list(&mut *self.conn()?, before, limit)
    }

    /// Records a device's gap record (events it dropped from its outbox) and advances its acked_seq
    /// over them.
    pub fn record_gap(
        &self,
        gap: &GapRecord,
        received_at: DateTime<Utc>,
    ) -> Result<GapOutcome, StoreError> {
        gaps::record(&mut *self.conn()?, gap, received_at)
    }

    /// One page of events, newest first (`corrected_at` then `id`, both descending).
    /// `limit` is 1 to [`MAX_PAGE`]; `cursor` is the `next_cursor` of the previous page.
    pub fn list_events(
        &self,
        filter: &EventFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<EventPage, StoreError> {
        list::page(&mut *self.conn()?, filter, limit, cursor)
    }

    /// Records a heartbeat or a last will. Returns the device afterwards, and whether its state
    /// (online, offline, ...) changed.
    pub fn record_status(
        &self,
        status: &DeviceStatus,
        received_at: DateTime<Utc>,
    ) -> Result<(DeviceView, bool), StoreError> {
        devices::record_status(&mut *self.conn()?, status, received_at)
    }

    /// Every device, provisioned or seen, sorted by id.
    pub fn list_devices(&self) -> Result<Vec<DeviceView>, StoreError> {
        devices::list(&mut *self.conn()?)
    }

    /// The device's highest contiguous committed `seq`; 0 for a device never seen.
    pub fn acked_seq(&self, device: &DeviceId) -> Result<u64, StoreError> {
        devices::acked_seq(&mut *self.conn()?, device)
    }

    /// Adds a user; [`StoreError::Conflict`] if the username is taken.
    /// Every user (no password hashes), by name.
    pub fn list_users(&self) -> Result<Vec<protocol::api::UserView>, StoreError> {
        users::list(&mut *self.conn()?)
    }

    pub fn add_user(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        users::add(&mut *self.conn()?, username, role, password_hash)
    }

    pub fn find_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        users::find(&mut *self.conn()?, username)
    }

    /// Provisions a device with the SHA-256 hash of its token. A device already seen (by its events
    /// or status) gets the token; one that already has a token is a [`StoreError::Conflict`].
    pub fn add_device(&self, id: &DeviceId, token_hash: &str) -> Result<(), StoreError> {
        let hashes = CredentialHashes {
            token: token_hash,
            mqtt_password: None,
            live_token: None,
        };
        credentials::provision(&mut *self.conn()?, id, hashes)
    }

    /// Provisions a device with its credentials (as hashes), as [`Store::add_device`] does.
    pub fn provision_device(
        &self,
        id: &DeviceId,
        hashes: CredentialHashes<'_>,
    ) -> Result<(), StoreError> {
        credentials::provision(&mut *self.conn()?, id, hashes)
    }

    /// Replaces every credential of a provisioned, unrevoked device (the old ones stop working at
    /// once); whether there was such a device.
    pub fn rotate_device(
        &self,
        id: &DeviceId,
        hashes: CredentialHashes<'_>,
    ) -> Result<bool, StoreError> {
        credentials::rotate(&mut *self.conn()?, id, hashes)
    }

    /// Revokes a device (API token, MQTT password, live-push token); whether it was active.
    pub fn revoke_device(&self, id: &DeviceId) -> Result<bool, StoreError> {
        credentials::revoke(&mut *self.conn()?, id)
    }

    /// The MQTT credentials (id, Mosquitto hash) of every device that may connect.
    pub fn mqtt_credentials(&self) -> Result<Vec<(String, String)>, StoreError> {
        credentials::mqtt_credentials(&mut *self.conn()?)
    }

    /// The device an API token hash belongs to, if any.
    pub fn device_for_token_hash(&self, token_hash: &str) -> Result<Option<DeviceId>, StoreError> {
        credentials::for_token_hash(&mut *self.conn()?, token_hash)
    }

    /// Whether `id` has a row (provisioned, or seen through its messages).
    pub fn device_exists(&self, id: &DeviceId) -> Result<bool, StoreError> {
        devices::exists(&mut *self.conn()?, id)
    }

    /// The device a live-push token hash belongs to, if any (the RTSP server's and the MediaMTX
    /// hook's check; the API never asks).
    pub fn device_for_live_token_hash(
        &self,
        live_token_hash: &str,
    ) -> Result<Option<DeviceId>, StoreError> {
        credentials::for_live_token_hash(&mut *self.conn()?, live_token_hash)
    }

    /// Adds to devices' attack telemetry (devices without a row are skipped), stamped `at`.
    pub fn record_attacks(
        &self,
        tallies: &[(String, AttackTally)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        attacks::add_all(&mut *self.conn()?, tallies, ms(at))
    }

    /// Stores a clip's announced metadata (from `video/{device}/captured` or an upload manifest)
    /// unless its id is known; see [`Announced`].
    pub fn announce_clip(
        &self,
        clip: &protocol::media::ClipCaptured,
        at: DateTime<Utc>,
    ) -> Result<Announced, StoreError> {
        media::announce(&mut *self.conn()?, clip, at)
    }

    /// One clip by its id (also a deleted one).
    pub fn get_clip(&self, id: uuid::Uuid) -> Result<Option<ClipRecord>, StoreError> {
        media::get_clip(&mut *self.conn()?, id)
    }

    /// Marks a clip's file deleted: `None` when no clip has this id, else whether this call did.
    pub fn delete_clip(
        &self,
        id: uuid::Uuid,
        at: DateTime<Utc>,
    ) -> Result<Option<bool>, StoreError> {
        media::clip_deleted(&mut *self.conn()?, id, at)
    }

    /// The clip (not deleted) and the snapshot of one event, when they exist.
    pub fn media_of_event(
        &self,
        event: uuid::Uuid,
    ) -> Result<(Option<ClipRecord>, Option<SnapshotRecord>), StoreError> {
        let mut conn = self.conn()?;
        Ok((
            media::clip_of_event(&mut conn, event)?,
            media::snapshot_of_event(&mut conn, event)?,
        ))
    }

    /// One stored snapshot by its id.
    pub fn get_snapshot(&self, id: uuid::Uuid) -> Result<Option<SnapshotRecord>, StoreError> {
        media::get_snapshot(&mut *self.conn()?, id)
    }

    /// One page of a camera's snapshots, newest first, and the cursor of the next page.
    pub fn list_snapshots(
        &self,
        device: &DeviceId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<SnapshotRecord>, Option<String>), StoreError> {
        media::snapshot_page(&mut *self.conn()?, device, limit, cursor)
    }

    /// Every device with clips or snapshots, sorted by id.
    pub fn list_cameras(&self) -> Result<Vec<CameraRecord>, StoreError> {
        media::cameras(&mut *self.conn()?)
    }

    /// Records an upload's manifest (`PUT /api/media/{id}`); see [`UploadBegun`].
    pub fn begin_upload(
        &self,
        manifest: &protocol::media::MediaManifest,
        at: DateTime<Utc>,
    ) -> Result<UploadBegun, StoreError> {
        uploads::begin(&mut *self.conn()?, manifest, at)
    }

    pub fn get_upload(&self, id: uuid::Uuid) -> Result<Option<UploadRecord>, StoreError> {
        uploads::get(&mut *self.conn()?, id)
    }

    /// Moves an upload's `received` from `from` to `to`; false when it was not at `from`.
    pub fn advance_upload(
        &self,
        id: uuid::Uuid,
        from: u64,
        to: u64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        uploads::advance(&mut *self.conn()?, id, from, to, at)
    }

    /// Starts an incomplete upload again from byte 0.
    pub fn reset_upload(&self, id: uuid::Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        uploads::reset(&mut *self.conn()?, id, at)
    }

    /// Marks an upload complete and its media stored; whether this call did.
    pub fn complete_upload(&self, id: uuid::Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        uploads::complete(&mut *self.conn()?, id, at)
    }

    fn conn(&self) -> Result<PooledConnection<Manager>, StoreError> {
        Ok(self.pool.get()?)
    }
}

/// Runs the same diesel expression on the concrete connection inside a [`Db`], for the statements
/// diesel's `MultiConnection` cannot express (multi-row inserts, upserts).
macro_rules! on_concrete {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::conn::Db::Pg($c) => $body,
            $crate::store::conn::Db::Sqlite($c) => $body,
        }
    };
}
pub(crate) use on_concrete;

/// Milliseconds since the Unix epoch, as stored.
fn ms(t: DateTime<Utc>) -> i64 {
    protocol::time::epoch_ms(t)
}

/// A `u64` counter as stored (BIGINT); values beyond `i64::MAX` are clamped, never wrapped.
fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A sequence number as stored: 1 to 2^62 ([`protocol::MAX_SEQ`], which protocol validation
/// already holds every message to), so that `seq + 1` and sums of spans fit a BIGINT. The error
/// says what was wrong, for the caller to wrap with what it was storing.
fn seq_i64(seq: u64) -> Result<i64, String> {
    if seq == 0 || seq > protocol::MAX_SEQ {
        return Err(format!(
            "seq {seq} is out of range: must be 1 to {} (2^62)",
            protocol::MAX_SEQ
        ));
    }
    i64::try_from(seq).map_err(|_| format!("seq {seq} does not fit a BIGINT"))
}

/// A stored non-negative BIGINT back to `u64`.
fn to_u64(what: &str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| error::corrupt(what, format!("{v} is negative")))
}
