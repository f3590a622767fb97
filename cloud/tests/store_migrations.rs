//! Migrations, on SQLite and on the machine's PostgreSQL: a database made by an earlier migration
//! upgrades when the store opens, keeping its events and the acked_seq bookkeeping right.

#[macro_use]
mod store_support;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use store_support::*;
use vigie_cloud::store::{EventFilter, SQLITE_FILE};

const PG: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Events of pi-1 with seqs 1, 2, 4 and 5 (3 is missing), acked up to 2, as the first schema had them.
const OLD_DATA: &str = "
    INSERT INTO devices (id, state, acked_seq, created_at) VALUES ('pi-1', 'offline', 2, 0);
    INSERT INTO events VALUES
        ('01900000-0000-7000-8000-000000000001', 'pi-1', 1, 'mat-1', 'button_pressed', 1000, true, 9000, 1),
        ('01900000-0000-7000-8000-000000000002', 'pi-1', 2, 'mat-1', 'button_pressed', 2000, true, 9000, 1),
        ('01900000-0000-7000-8000-000000000004', 'pi-1', 4, 'mat-1', 'button_pressed', 4000, true, 9000, 1),
        ('01900000-0000-7000-8000-000000000005', 'pi-1', 5, 'photo-1', 'motion', 5000, true, 9000, 1);
";

/// Applies only the first migration, then writes [`OLD_DATA`].
fn make_first_schema_database(db: &TestDb) {
    match db.url() {
        Some(url) => {
            let mut conn = PgConnection::establish(url).unwrap();
            conn.run_next_migration(PG).unwrap();
            conn.batch_execute(OLD_DATA).unwrap();
        }
        None => {
            let path = db.data_dir().join(SQLITE_FILE);
            let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
            conn.run_next_migration(SQLITE).unwrap();
            conn.batch_execute(OLD_DATA).unwrap();
        }
    }
}

store_tests! {
    fn a_database_of_the_first_schema_upgrades_with_its_events_and_acks(db) {
        make_first_schema_database(db);
        let store = db.open();
        let listed = store.list_events(&EventFilter::default(), 10, None).unwrap().items;
        let seqs: Vec<u64> = listed.iter().map(|i| i.seq).collect();
        assert_eq!(seqs, vec![5, 4, 2, 1]);
        assert_eq!(store.acked_seq(&device("pi-1")).unwrap(), 2);

        // The missing seq arrives: acked_seq runs on over the events stored before the upgrade.
        let outcome = store.insert_events(&presses("pi-1", [3]), at(10)).unwrap();
        assert_eq!(outcome.acked[&device("pi-1")], 5);
    }
}

/// Diesel keys a migration by the version before the first `_` of its folder's name: two folders
/// with one version are one migration to it, and the second never runs (found when two branches
/// each added a `2026-12-03-130000_...` migration and the PostgreSQL seq walk fix did not apply).
#[test]
fn every_migration_of_a_dialect_has_its_own_version() {
    for dialect in ["postgres", "sqlite"] {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dialect);
        let mut versions: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .map(|name| name.split('_').next().unwrap_or_default().to_owned())
            .collect();
        let all = versions.len();
        versions.sort();
        versions.dedup();
        assert_eq!(
            versions.len(),
            all,
            "two {dialect} migrations share a version: {versions:?}"
        );
        assert!(all >= 2, "{dialect} migrations read from {}", dir.display());
    }
}
