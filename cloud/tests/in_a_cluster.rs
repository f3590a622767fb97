//! What `vigie-cloud` needs to run in a cluster, against the binary: a misspelt `VIGIE_*` setting
//! stops it at start with its name; `vigie-cloud probe URL` is a health check with no shell or curl;
//! a device's bundle comes out of a read-only container as a tar archive on standard output; and
//! `/healthz` fails once an actor is wedged, so a liveness probe means something.

mod support;

use std::io::Read as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rumqttc::QoS;
use serde_json::json;
use support::*;

/// `vigie-cloud ARGS` with only `env` for settings (none of the test process's `VIGIE_*`).
fn run(args: &[&str], env: &[(String, String)]) -> Output {
    let mut cmd = Command::new(bin("vigie-cloud"));
    without_inherited_settings(&mut cmd);
    cmd.args(args)
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_misspelt_setting_stops_the_cloud_at_start_with_its_name_and_the_closest_setting() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        (
            "VIGIE_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        ("VIGIE_DATABSE_URL".to_owned(), "postgres://x".to_owned()),
    ];
    let started = Instant::now();
    let out = run(&["serve"], &env);
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(10));
    let said = stderr(&out);
    assert!(
        said.contains("VIGIE_DATABSE_URL is not a setting of vigie-cloud")
            && said.contains("did you mean VIGIE_DATABASE_URL?"),
        "{said}"
    );
    // The same for every command that reads the settings, and an edge setting is not the cloud's.
    let env = vec![("VIGIE_EDGE_DEVICE_ID".to_owned(), "pi-1".to_owned())];
    let out = run(&["user", "unlock", "nobody"], &env);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("VIGIE_EDGE_DEVICE_ID is not a setting"));
}

#[test]
fn probe_exits_0_only_on_a_2xx_answer_and_says_what_went_wrong_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start_embedded(dir.path());
    // A probe reads no settings: even a wrong one beside it does not matter.
    let odd = vec![("VIGIE_NOT_A_SETTING".to_owned(), "1".to_owned())];
    let probe = |url: &str| run(&["probe", url, "--timeout-s", "3"], &odd);
    for url in [
        format!("{}/healthz", cloud.base),
        format!("{}/readyz", cloud.base),
        format!("{}/readyz", cloud.ops),
    ] {
        let out = probe(&url);
        assert!(out.status.success(), "{url}: {}", stderr(&out));
    }
    let out = probe(&format!("{}/api/events", cloud.base));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    let out = probe(&format!("http://127.0.0.1:{}/healthz", free_port()));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("127.0.0.1:"), "{}", stderr(&out));
    let out = probe("https://127.0.0.1/healthz");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("plain HTTP"), "{}", stderr(&out));
}

#[test]
fn a_bundle_comes_out_as_a_tar_archive_on_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start_embedded(dir.path());
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let device = unique("pi-");
    let out = run(
        &[
            "device",
            "add",
            &device,
            "--bundle-tar",
            "-",
            "--ca",
            ca.to_str().unwrap(),
        ],
        &cloud.env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut archive = tar::Archive::new(out.stdout.as_slice());
    let mut files = std::collections::BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mode = entry.header().mode().unwrap();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        files.insert(path, (mode, text));
    }
    let names: Vec<_> = files.keys().cloned().collect();
    assert_eq!(
        names,
        [
            format!("{device}/"),
            format!("{device}/api.token"),
            format!("{device}/bundle.toml"),
            format!("{device}/ca.pem"),
            format!("{device}/live.token"),
            format!("{device}/mqtt.password"),
        ]
    );
    for secret in ["api.token", "live.token", "mqtt.password"] {
        assert_eq!(files[&format!("{device}/{secret}")].0, 0o600, "{secret}");
    }
    // The manifest names the device and holds every other file's SHA-256, as the Pi checks it.
    let manifest =
        protocol::bundle::Manifest::from_toml(&files[&format!("{device}/bundle.toml")].1).unwrap();
    assert_eq!(manifest.device.as_str(), device);
    assert_eq!(manifest.sha256.len(), 4, "{manifest:?}");
    for (name, (_, text)) in &files {
        if let Some(file) = name.strip_prefix(&format!("{device}/")) {
            if !file.is_empty() && file != "bundle.toml" {
                assert_eq!(manifest.check(file, text.as_bytes()), Ok(()), "{file}");
            }
        }
    }
    assert!(files[&format!("{device}/ca.pem")]
        .1
        .contains("BEGIN CERTIFICATE"));
    // Only the archive is on standard output, and the token in it works.
    let token = files[&format!("{device}/api.token")].1.trim().to_owned();
    assert!(token.starts_with("vgd_"));
    let (status, _) = get_json(&agent(), &format!("{}/api/time", cloud.base), Some(&token));
    assert_eq!(status, 200);
    assert!(files[&format!("{device}/live.token")].1.starts_with("vgl_"));

    // To a file: the token is printed as without an archive. With --out too: refused.
    let file = dir.path().join("bundle.tar");
    let other = unique("pi-");
    let out = run(
        &[
            "device",
            "add",
            &other,
            "--bundle-tar",
            file.to_str().unwrap(),
        ],
        &cloud.env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout)
        .trim()
        .starts_with("vgd_"));
    assert!(file.metadata().unwrap().len() > 0);
    let out = run(
        &[
            "device",
            "add",
            &unique("pi-"),
            "--bundle-tar",
            "-",
            "--out",
            "x",
        ],
        &cloud.env,
    );
    assert!(!out.status.success());
}

#[test]
fn healthz_fails_once_the_ingest_is_wedged_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let cloud = Cloud::start(
        dir.path(),
        vec![
            ("VIGIE_MQTT_LISTEN".into(), format!("127.0.0.1:{mqtt_port}")),
            ("VIGIE_FAULT_STALL_INGEST".into(), "1".into()),
        ],
    );
    let healthz = || get_json(&agent(), &format!("{}/healthz", cloud.base), None);
    assert_eq!(healthz().0, 200);
    let device = unique("pi-");
    cloud.add_device(&device);
    let password = cloud.mqtt_password(&device);
    let client = try_connect(mqtt_port, &device, Some((&device, &password))).unwrap();
    let event = json!({
        "schema_version": 1, "id": uuid::Uuid::now_v7(), "device": device, "seq": 1,
        "sensor": "mat-1", "kind": "button_pressed", "occurred_at": "2026-12-04T10:00:00.000Z"
    });
    client
        .publish(
            format!("sensors/{device}/button/pressed"),
            QoS::AtLeastOnce,
            false,
            event.to_string(),
        )
        .unwrap();
    // Committed, then wedged: the heartbeat stops, and after 10 s of silence liveness fails.
    let stalled_at = Instant::now();
    wait_for("/healthz to fail", Duration::from_secs(30), || {
        healthz().0 == 503
    });
    let waited = stalled_at.elapsed();
    let (_, body) = healthz();
    assert_eq!(body["status"], "stalled", "{body}");
    let late: Vec<_> = body["late"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["component"].as_str().unwrap().to_owned())
        .collect();
    assert!(late.contains(&"ingest".to_owned()), "{body}");
    eprintln!("/healthz failed {waited:?} after the ingest was wedged, naming {late:?}");
    // The metrics listener's /healthz is the same check.
    let (status, _) = get_json(&agent(), &format!("{}/healthz", cloud.ops), None);
    assert_eq!(status, 503);
}
