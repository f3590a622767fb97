//! Devices and users in the store, on SQLite and on the machine's PostgreSQL: status, listing,
//! provisioning with a token hash, rotation, attack telemetry, and user accounts.

#[macro_use]
mod store_support;

use protocol::{DeviceState, DeviceStatus};
use store_support::*;
use vigie_cloud::auth::{device_token_hash, new_device_token};
use vigie_cloud::store::{AttackTally, CredentialHashes, Role, StoreError};

fn status(device_id: &str, state: DeviceState, queue_depth: u64) -> DeviceStatus {
    DeviceStatus {
        schema_version: protocol::SCHEMA_VERSION,
        device: device(device_id),
        state,
        queue_depth,
        uptime_s: 42,
        at: None,
        clock_synced: true,
        api_reachable: Some(true),
        clock_offset_ms: Some(-1500),
        dropped_events: 0,
        refused_acks: 0,
    }
}

store_tests! {
    fn record_status_reports_each_change_between_online_and_offline(db) {
        let store = db.open();
        let (view, changed) = store
            .record_status(&status("pi-1", DeviceState::Online, 5), at(10))
            .unwrap();
        assert!(changed, "a new device coming online is a change");
        assert_eq!(view.state, DeviceState::Online);
        assert_eq!((view.queue_depth, view.uptime_s, view.clock_synced), (5, 42, true));
        assert_eq!(view.last_seen, Some(at(10)));

        let (view, changed) = store
            .record_status(&status("pi-1", DeviceState::Online, 3), at(20))
            .unwrap();
        assert!(!changed, "a heartbeat of an online device is not a change");
        assert_eq!(view.queue_depth, 3);

        let will = DeviceStatus::last_will(device("pi-1"));
        let (view, changed) = store.record_status(&will, at(30)).unwrap();
        assert!(changed, "the last will takes the device offline");
        assert_eq!(view.state, DeviceState::Offline);
        assert_eq!(view.last_seen, Some(at(30)));
    }

    fn a_state_this_build_does_not_know_is_kept(db) {
        let store = db.open();
        let sleeping = DeviceState::Unknown("sleeping".into());
        let (view, changed) = store.record_status(&status("pi-1", sleeping.clone(), 0), at(1)).unwrap();
        assert!(changed);
        assert_eq!(view.state, sleeping);
    }

    fn a_status_keeps_the_acked_seq_of_the_device(db) {
        let store = db.open();
        store.insert_events(&presses("pi-1", 1..=3), at(10)).unwrap();
        let (view, _) = store.record_status(&status("pi-1", DeviceState::Online, 0), at(20)).unwrap();
        assert_eq!(view.acked_seq, 3);
    }

    fn list_devices_is_sorted_by_id_with_provisioned_and_seen_devices(db) {
        let store = db.open();
        store.add_device(&device("pi-3"), &device_token_hash(&new_device_token())).unwrap();
        store.insert_events(&presses("pi-1", [1]), at(10)).unwrap();
        store.record_status(&status("pi-2", DeviceState::Online, 0), at(10)).unwrap();
        let ids: Vec<_> = store.list_devices().unwrap().into_iter().map(|d| d.id).collect();
        assert_eq!(ids, vec![device("pi-1"), device("pi-2"), device("pi-3")]);
        let provisioned = &store.list_devices().unwrap()[2];
        assert_eq!((provisioned.last_seen, &provisioned.state), (None, &DeviceState::Offline));
    }

    fn a_device_is_provisioned_once_and_found_by_its_token_hash(db) {
        let store = db.open();
        let hash = device_token_hash(&new_device_token());
        store.add_device(&device("pi-1"), &hash).unwrap();
        assert_eq!(store.device_for_token_hash(&hash).unwrap(), Some(device("pi-1")));
        assert_eq!(
            store.device_for_token_hash(&device_token_hash("vgd_unknown")).unwrap(),
            None
        );

        let again = store.add_device(&device("pi-1"), &device_token_hash(&new_device_token()));
        assert!(
            matches!(&again, Err(StoreError::Conflict(m)) if m.contains("pi-1")),
            "{again:?}"
        );
        let reused = store.add_device(&device("pi-2"), &hash);
        assert!(
            matches!(&reused, Err(StoreError::Conflict(m)) if m.contains("token")),
            "{reused:?}"
        );
        assert_eq!(store.device_for_token_hash(&hash).unwrap(), Some(device("pi-1")));
    }

    fn a_device_seen_before_it_was_provisioned_gets_its_token(db) {
        let store = db.open();
        store.insert_events(&presses("pi-1", 1..=2), at(10)).unwrap();
        let hash = device_token_hash(&new_device_token());
        store.add_device(&device("pi-1"), &hash).unwrap();
        assert_eq!(store.device_for_token_hash(&hash).unwrap(), Some(device("pi-1")));
        assert_eq!(store.acked_seq(&device("pi-1")).unwrap(), 2);
        let conflict = store.add_device(&device("pi-1"), &device_token_hash("vgd_other"));
        assert!(matches!(conflict, Err(StoreError::Conflict(_))), "{conflict:?}");
    }

    fn users_are_added_found_and_refused_twice(db) {
        let store = db.open();
        store.add_user("ada", Role::Admin, "$argon2id$fake-hash-1").unwrap();
        store.add_user("bob", Role::Viewer, "$argon2id$fake-hash-2").unwrap();
        let ada = store.find_user("ada").unwrap().expect("ada exists");
        assert_eq!(
            (ada.username.as_str(), ada.role, ada.password_hash.as_str()),
            ("ada", Role::Admin, "$argon2id$fake-hash-1")
        );
        assert_eq!(store.find_user("bob").unwrap().map(|u| u.role), Some(Role::Viewer));
        assert!(store.find_user("carol").unwrap().is_none());

        let again = store.add_user("ada", Role::Viewer, "$argon2id$other");
        assert!(
            matches!(&again, Err(StoreError::Conflict(m)) if m.contains("ada") && m.contains("exists")),
            "{again:?}"
        );
        assert_eq!(store.find_user("ada").unwrap().unwrap().role, Role::Admin);
    }

    fn an_empty_username_is_invalid(db) {
        let store = db.open();
        let err = store.add_user("", Role::Viewer, "x").unwrap_err();
        assert!(matches!(&err, StoreError::Invalid(m) if m.contains("username")), "{err}");
    }

    fn a_rotation_replaces_all_three_credentials_and_a_revoked_device_cannot_be_rotated(db) {
        let store = db.open();
        let hashes = |token: &'static str, live: &'static str| CredentialHashes {
            token,
            mqtt_password: Some("$7$old"),
            live_token: Some(live),
        };
        store.provision_device(&device("pi-1"), hashes("api-1", "live-1")).unwrap();
        assert_eq!(store.device_for_live_token_hash("live-1").unwrap(), Some(device("pi-1")));
        assert_eq!(store.device_for_token_hash("live-1").unwrap(), None, "apart from the API's");
        let new = CredentialHashes { token: "api-2", mqtt_password: Some("$7$new"), live_token: Some("live-2") };
        assert!(store.rotate_device(&device("pi-1"), new).unwrap());
        assert_eq!(store.device_for_token_hash("api-1").unwrap(), None);
        assert_eq!(store.device_for_live_token_hash("live-1").unwrap(), None);
        assert_eq!(store.device_for_token_hash("api-2").unwrap(), Some(device("pi-1")));
        assert_eq!(store.device_for_live_token_hash("live-2").unwrap(), Some(device("pi-1")));
        assert_eq!(store.mqtt_credentials().unwrap(), vec![("pi-1".to_owned(), "$7$new".to_owned())]);
        // Another device's live token cannot be taken over.
        store.provision_device(&device("pi-2"), hashes("api-3", "live-3")).unwrap();
        let taken = store.rotate_device(&device("pi-1"), hashes("api-4", "live-3"));
        assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
        assert_eq!(store.device_for_token_hash("api-2").unwrap(), Some(device("pi-1")), "unchanged");
        // Revoked: every credential cleared, nothing to rotate.
        assert!(store.revoke_device(&device("pi-1")).unwrap());
        assert_eq!(store.device_for_live_token_hash("live-2").unwrap(), None);
        assert!(!store.rotate_device(&device("pi-1"), hashes("api-5", "live-5")).unwrap());
        assert!(!store.rotate_device(&device("pi-9"), hashes("api-6", "live-6")).unwrap());
    }

    fn attack_telemetry_adds_up_per_device_and_skips_devices_without_a_row(db) {
        let store = db.open();
        store.insert_events(&presses("pi-1", [1]), at(10)).unwrap();
        let tally = |invalid, logins| AttackTally { refused_acks: 0, invalid_messages: invalid, refused_live_logins: logins };
        store.record_attacks(&[("pi-1".into(), tally(2, 1)), ("ghost".into(), tally(5, 5))], at(20)).unwrap();
        store.record_attacks(&[("pi-1".into(), tally(1, 0))], at(30)).unwrap();
        let views = store.list_devices().unwrap();
        assert_eq!(views.len(), 1, "no row made for an unknown id");
        let s = &views[0].security;
        assert_eq!((s.invalid_messages, s.refused_live_logins, s.refused_acks), (3, 1, 0));
        assert_eq!(s.last_at, Some(at(30)));

        // Refused acks come with the statuses, as the device counts them since it started.
        let mut st = status("pi-1", DeviceState::Online, 0);
        st.at = Some(at(40));
        st.refused_acks = 2;
        store.record_status(&st, at(40)).unwrap();
        store.record_status(&st, at(41)).unwrap();
        st.refused_acks = 1; // restarted, then refused one more
        let (view, _) = store.record_status(&st, at(50)).unwrap();
        assert_eq!(view.security.refused_acks, 3);
        // A last will (no `at`) carries no count and changes nothing.
        let (view, _) = store.record_status(&DeviceStatus::last_will(device("pi-1")), at(60)).unwrap();
        assert_eq!(view.security.refused_acks, 3);
        st.refused_acks = 1;
        let (view, _) = store.record_status(&st, at(70)).unwrap();
        assert_eq!((view.security.refused_acks, view.security.last_at), (3, Some(at(50))));
    }
}
