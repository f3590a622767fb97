//! Support for the store tests: a fresh database for every test, on SQLite (a temporary directory)
//! and on the machine's real PostgreSQL (a database created for the test and dropped after it).
//!
//! PostgreSQL is found at `VIGIE_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`,
//! trust auth). If it cannot be reached the test fails and says so: it is never skipped.

#![allow(dead_code)] // each test file uses a different part of this module

use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection, RunQueryDsl};
use protocol::{DeviceId, EventEnvelope, EventKind, SensorId};
use tempfile::TempDir;
use uuid::Uuid;
use vigie_cloud::store::Store;

const SERVER_ENV: &str = "VIGIE_TEST_POSTGRES";
const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// Expands each test body twice: once in `mod sqlite`, once in `mod postgres`.
macro_rules! store_tests {
    ($(fn $name:ident($db:ident) $body:block)*) => {
        mod sqlite {
            use super::*;
            $(#[test] fn $name() { let $db = &TestDb::sqlite(); $body })*
        }
        mod postgres {
            use super::*;
            $(#[test] fn $name() { let $db = &TestDb::postgres(); $body })*
        }
    };
}

/// One test's database. Dropping it removes the database.
pub struct TestDb {
    dir: TempDir,
    pg: Option<PgDatabase>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        TestDb {
            dir: tempfile::tempdir().expect("a temporary directory"),
            pg: None,
        }
    }

    /// Creates `vigie_test_<uuid>` on the machine's PostgreSQL; panics (failing the test) with the
    /// reason if the server cannot be reached.
    pub fn postgres() -> TestDb {
        let server = std::env::var(SERVER_ENV).unwrap_or_else(|_| DEFAULT_SERVER.to_owned());
        let server = server.trim_end_matches('/').to_owned();
        let name = format!("vigie_test_{}", Uuid::now_v7().simple());
        let mut admin = admin_connection(&server);
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        TestDb {
            dir: tempfile::tempdir().expect("a temporary directory"),
            pg: Some(PgDatabase {
                url: format!("{server}/{name}"),
                server,
                name,
            }),
        }
    }

    /// The database URL to give `Store::open` (`None` for SQLite).
    pub fn url(&self) -> Option<&str> {
        self.pg.as_ref().map(|pg| pg.url.as_str())
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn open(&self) -> Store {
        Store::open(self.url(), self.data_dir()).expect("the store opens")
    }
}

fn admin_connection(server: &str) -> PgConnection {
    PgConnection::establish(&format!("{server}/postgres")).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {server} ({e}). The store tests run against the \
             machine's real PostgreSQL: start it (scripts/services.sh) or point {SERVER_ENV} at one."
        )
    })
}

struct PgDatabase {
    server: String,
    name: String,
    url: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let dropped =
            PgConnection::establish(&format!("{}/postgres", self.server)).and_then(|mut c| {
                diesel::sql_query(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .execute(&mut c)
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
            });
        if let Err(e) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

pub fn device(id: &str) -> DeviceId {
    DeviceId::new(id).expect("a valid device id")
}

/// A time `ms` milliseconds after an arbitrary fixed epoch.
pub fn at(ms: i64) -> DateTime<Utc> {
    protocol::time::from_epoch_ms(1_795_000_000_000 + ms)
}

/// An event of `device` with this seq, kind and occurrence time, and a fresh id.
pub fn event(device_id: &str, seq: u64, kind: EventKind, occurred_ms: i64) -> EventEnvelope {
    event_with_id(Uuid::now_v7(), device_id, seq, kind, occurred_ms)
}

pub fn event_with_id(
    id: Uuid,
    device_id: &str,
    seq: u64,
    kind: EventKind,
    occurred_ms: i64,
) -> EventEnvelope {
    let sensor = match kind {
        EventKind::Motion => "photo-1",
        _ => "mat-1",
    };
    EventEnvelope {
        schema_version: protocol::SCHEMA_VERSION,
        id,
        device: device(device_id),
        seq,
        sensor: SensorId::new(sensor).expect("a valid sensor id"),
        kind,
        occurred_at: at(occurred_ms),
        clock_synced: true,
        boot_id: None,
        boot_ms: None,
        clock_offset_ms: None,
    }
}

/// Button events of one device with these seqs, a millisecond apart.
pub fn presses(device_id: &str, seqs: impl IntoIterator<Item = u64>) -> Vec<EventEnvelope> {
    seqs.into_iter()
        .map(|seq| event(device_id, seq, EventKind::ButtonPressed, seq as i64))
        .collect()
}
