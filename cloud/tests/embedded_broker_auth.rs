//! The embedded broker (rumqttd, the single-machine defaults) authenticates every client at
//! CONNECT, against a real `vigie-cloud`: no password, a wrong one, a device's right password under
//! another client id, or the ingest's client id with a device's password are refused; the device
//! as itself is accepted, a real edge's events flow end to end, and a revoked device is refused at
//! its next CONNECT. The cloud refuses to put the embedded broker beyond loopback unless told it is
//! insecure.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

#[test]
fn the_embedded_broker_lets_in_only_a_device_as_itself_with_its_own_password() {
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let mut cloud = Cloud::start(
        dir.path(),
        vec![("VIGIE_MQTT_LISTEN".into(), format!("127.0.0.1:{mqtt_port}"))],
    );
    cloud.add_user("admin", "admin", "correct horse battery");
    let admin = cloud.login("admin", "correct horse battery");
    let device = unique("pi-");
    cloud.add_device(&device);
    let password = cloud.mqtt_password(&device);

    let started = Instant::now();
    assert_refused("no credentials", try_connect(mqtt_port, &device, None));
    assert_refused(
        "a wrong password",
        try_connect(mqtt_port, &device, Some((&device, "not-the-password"))),
    );
    assert_refused(
        "an empty password",
        try_connect(mqtt_port, &device, Some((&device, ""))),
    );
    assert_refused(
        "the device's password under another client id",
        try_connect(mqtt_port, &unique("spy-"), Some((&device, &password))),
    );
    assert_refused(
        "the ingest's client id with a device's password",
        try_connect(mqtt_port, "vigie-cloud", Some(("vigie-cloud", &password))),
    );
    assert_refused(
        "an unprovisioned device",
        try_connect(mqtt_port, "pi-nobody", Some(("pi-nobody", &password))),
    );
    eprintln!("6 refused CONNECTs in {:?}", started.elapsed());
    let accepted = try_connect(mqtt_port, &device, Some((&device, &password)))
        .expect("the device with its own password is accepted");
    drop(accepted);

    // A real edge with its bundle: its events reach the cloud through the authenticated broker.
    let edge_device = unique("pi-");
    let edge = Edge::start_provisioned(
        dir.path(),
        &cloud,
        &edge_device,
        &format!("mqtt://127.0.0.1:{mqtt_port}"),
        "",
    );
    let agent = agent();
    let fired: Vec<String> = (0..3).map(|_| edge.fire(&agent, "button").0).collect();
    wait_for(
        "the edge's events stored and acked",
        Duration::from_secs(30),
        || {
            cloud
                .device(&admin, &edge_device)
                .is_some_and(|d| d["acked_seq"] == 3)
        },
    );
    wait_for(
        "the edge's outbox to drain",
        Duration::from_secs(30),
        || edge.queue_depth() == 0,
    );
    let (_, page) = get_json(
        &agent,
        &format!("{}/api/events?device={edge_device}", cloud.base),
        Some(&admin),
    );
    let listed: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    for id in &fired {
        assert!(listed.contains(&id.as_str()), "{id} not listed: {page}");
    }

    // Revoked: refused at the next CONNECT (the hash is read from the store at each one).
    let out = Command::new(bin("vigie-cloud"))
        .args(["device", "revoke", &device])
        .envs(cloud.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_refused(
        "a revoked device",
        try_connect(mqtt_port, &device, Some((&device, &password))),
    );
    cloud.proc.assert_running();
}

#[test]
fn the_embedded_broker_refuses_to_listen_beyond_loopback_unless_told_it_is_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin("vigie-cloud"))
        .arg("serve")
        .env_remove("VIGIE_MQTT_URL")
        .env("VIGIE_MQTT_LISTEN", format!("0.0.0.0:{}", free_port()))
        .env("VIGIE_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("VIGIE_DATA_DIR", dir.path().join("cloud"))
        .env_remove("VIGIE_EMBEDDED_BROKER_INSECURE")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the cloud started");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("VIGIE_EMBEDDED_BROKER_INSECURE=1") && stderr.contains("VIGIE_MQTT_LISTEN"),
        "the refusal names the settings: {stderr}"
    );
}
