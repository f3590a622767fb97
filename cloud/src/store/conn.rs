//! Connections: one r2d2 pool over [`Db`], a diesel `MultiConnection` of PostgreSQL and SQLite,
//! and the embedded migrations (one folder per dialect) run when the store opens.
//!
//! The pool's manager connects to exactly the backend the store was opened for (diesel's own
//! `MultiConnection::establish` would try each backend in turn and hide why PostgreSQL failed).
//! SQLite connections are set up for a server: WAL, `synchronous = FULL` (a commit the cloud
//! acknowledges survives a power cut), a busy timeout and foreign keys.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::{Backend, StoreError};

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// How long a caller waits for a pooled connection before the store reports `Unavailable`.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long SQLite waits for another writer before giving up with "database is locked".
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;
/// Any constant: serialises migrations when several replicas start at once on one PostgreSQL.
const PG_MIGRATION_LOCK: i64 = 0x0076_6967_6965;

/// A connection to whichever database the store was opened on.
#[derive(diesel::MultiConnection)]
pub(crate) enum Db {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

pub(crate) type Pool = r2d2::Pool<Manager>;

/// An r2d2 manager that connects to one known backend.
#[derive(Debug)]
pub(crate) struct Manager {
    backend: Backend,
    url: String,
}

impl ManageConnection for Manager {
    type Connection = Db;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<Db, r2d2::Error> {
        match self.backend {
            Backend::Postgres => PgConnection::establish(&self.url)
                .map(Db::Pg)
                .map_err(r2d2::Error::ConnectionError),
            Backend::Sqlite => {
                let mut conn =
                    SqliteConnection::establish(&self.url).map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = FULL;
                     PRAGMA foreign_keys = ON;"
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(Db::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut Db) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut Db) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// Connects once (so a database that is down is reported at once, with its own words), builds the
/// pool and runs the pending migrations.
pub(crate) fn open_pool(backend: Backend, url: String) -> Result<Pool, StoreError> {
    let manager = Manager { backend, url };
    let mut first = manager.connect().map_err(|e| {
        StoreError::Unavailable(format!("cannot connect to {}: {e}", backend.name()))
    })?;
    migrate(&mut first)?;
    let max_size = match backend {
        Backend::Postgres => 16,
        // One writer at a time anyway; a few readers alongside it under WAL.
        Backend::Sqlite => 4,
    };
    Ok(r2d2::Pool::builder()
        .max_size(max_size)
        // No idle connection kept warm in the background: r2d2 would open it on its worker thread
        // while a short command (`user add`, `device add`) exits, and libpq crashed (SIGSEGV) in
        // that race. Connections are made on demand and then reused.
        .min_idle(Some(0))
        // No `SELECT 1` before every checkout: it costs a round trip on every commit, and a broken
        // connection fails its statement, is discarded by the pool and retried by the caller.
        .test_on_check_out(false)
        .connection_timeout(CHECKOUT_TIMEOUT)
        .build_unchecked(manager))
}

/// Applies the migrations this build embeds that the database does not have yet.
fn migrate(conn: &mut Db) -> Result<(), StoreError> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| {
        StoreError::Internal(format!("cannot apply the database migrations: {e}"))
    };
    match conn {
        Db::Pg(pg) => {
            pg.batch_execute(&format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))?;
            let result = pg.run_pending_migrations(PG_MIGRATIONS).map(drop);
            pg.batch_execute(&format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))?;
            result.map_err(failed)
        }
        Db::Sqlite(sqlite) => sqlite
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(drop)
            .map_err(failed),
    }
}
