//! Sessions, refresh tokens, user changes and login locks in the store, on SQLite and on the
//! machine's PostgreSQL: the session check reads the user's role and state in one query, a reused
//! refresh token revokes its session, and failed logins lock a (user, address) pair.

#[macro_use]
mod store_support;

use std::time::Duration;

use chrono::Utc;
use store_support::*;
use vigie_cloud::store::{NewSession, Role, Rotation, Store, StoreError};

const LOCK: Duration = Duration::from_secs(900);

fn session(store: &Store, id: &str, user: &str, refresh_hash: &str) {
    let now = Utc::now();
    store
        .create_session(&NewSession {
            id,
            username: user,
            refresh_hash,
            created_at: now,
            expires_at: now + chrono::Duration::hours(1),
        })
        .unwrap();
}

fn users(store: &Store) {
    store
        .add_user("ada", Role::Admin, "$argon2id$fake")
        .unwrap();
    store
        .add_user("vic", Role::Viewer, "$argon2id$fake")
        .unwrap();
}

store_tests! {
    fn the_session_check_reads_the_users_role_and_refuses_a_disabled_user(db) {
        let store = db.open();
        users(&store);
        session(&store, "s-vic", "vic", "r-1");
        session(&store, "s-ada", "ada", "r-2");
        let now = Utc::now();
        assert_eq!(store.session_caller("s-vic", now).unwrap(), Some(("vic".into(), Role::Viewer)));
        store.set_user_role("vic", Role::Admin).unwrap();
        assert_eq!(store.session_caller("s-vic", now).unwrap(), Some(("vic".into(), Role::Admin)));

        let ids = ["s-vic".to_owned(), "s-ada".to_owned(), "s-unknown".to_owned()];
        assert_eq!(store.ended_sessions(&ids, now).unwrap(), ["s-unknown"]);
        assert_eq!(store.set_user_disabled("vic", true, now).unwrap(), 1, "its session ended");
        assert_eq!(store.session_caller("s-vic", now).unwrap(), None);
        assert_eq!(store.ended_sessions(&ids, now).unwrap(), ["s-vic", "s-unknown"]);
        assert!(store.find_user("vic").unwrap().unwrap().disabled);
        store.set_user_disabled("vic", false, now).unwrap();
        assert_eq!(store.session_caller("s-vic", now).unwrap(), None, "enabling does not revive a session");

        assert!(matches!(store.set_user_role("nobody", Role::Admin), Err(StoreError::NotFound(_))));
        assert!(matches!(store.end_user_sessions("nobody", now), Err(StoreError::NotFound(_))));
        assert_eq!(store.end_user_sessions("ada", now).unwrap(), 1);
        assert_eq!(store.set_user_password("ada", "$argon2id$new", now).unwrap(), 0, "none left");
    }

    fn a_refresh_token_rotates_once_and_a_reuse_revokes_the_session(db) {
        let store = db.open();
        users(&store);
        session(&store, "s-1", "vic", "r-1");
        let now = Utc::now();
        assert_eq!(
            store.present_refresh("r-1", "r-2", now).unwrap(),
            Rotation::Rotated { session: "s-1".into(), username: "vic".into() }
        );
        assert!(matches!(store.present_refresh("r-2", "r-3", now).unwrap(), Rotation::Rotated { .. }));
        assert_eq!(
            store.present_refresh("r-1", "r-x", now).unwrap(),
            Rotation::Reused { session: "s-1".into(), username: "vic".into(), revoked: true }
        );
        assert!(!store.session_active("s-1", now).unwrap());
        assert_eq!(store.present_refresh("r-3", "r-4", now).unwrap(), Rotation::Unknown, "the newest is dead too");
        assert!(matches!(
            store.present_refresh("r-2", "r-5", now).unwrap(),
            Rotation::Reused { revoked: false, .. }
        ));
        assert_eq!(store.present_refresh("never", "r-6", now).unwrap(), Rotation::Unknown);
    }

    fn failures_lock_the_address_and_only_new_addresses_for_the_whole_user(db) {
        let store = db.open();
        users(&store);
        let now = Utc::now();
        store.login_succeeded("vic", "10.0.0.1", now).unwrap();
        for n in 1..=3 {
            let failure = store.login_failed("vic", "10.0.0.2", now, 3, LOCK).unwrap();
            assert_eq!(failure.address_locked.is_some(), n == 3, "failure {n}");
            assert_eq!(failure.user_locked.is_some(), n == 3, "failure {n}");
        }
        assert!(store.login_lock("vic", "10.0.0.2", now).unwrap().is_some());
        assert!(store.login_lock("vic", "10.0.0.9", now).unwrap().is_some(), "a new address");
        assert!(store.login_lock("vic", "10.0.0.1", now).unwrap().is_none(), "the usual one");
        assert!(store.login_lock("ada", "10.0.0.2", now).unwrap().is_none(), "another user");
        // Failures where the user logged in before lock that pair only.
        for _ in 0..3 {
            let failure = store.login_failed("vic", "10.0.0.1", now, 3, LOCK).unwrap();
            assert!(failure.user_locked.is_none());
        }
        assert!(store.login_lock("vic", "10.0.0.1", now).unwrap().is_some());
        let later = now + chrono::Duration::from_std(LOCK).unwrap() + chrono::Duration::seconds(1);
        assert!(store.login_lock("vic", "10.0.0.2", later).unwrap().is_none(), "locks end");
        store.unlock_user("vic").unwrap();
        assert!(store.login_lock("vic", "10.0.0.1", now).unwrap().is_none());
        assert!(store.login_lock("vic", "10.0.0.9", now).unwrap().is_none());
        // An unknown user leaves nothing behind.
        assert_eq!(store.login_failed("ghost", "10.0.0.2", now, 1, LOCK).unwrap(), Default::default());
        assert!(matches!(store.unlock_user("ghost"), Err(StoreError::NotFound(_))));
    }
}
