//! Device identities at the broker, against a real Mosquitto the test starts from the production
//! config (`charts/vigie/files/mosquitto.conf`, only its listeners moved to free loopback ports and
//! its `/mosquitto/` paths to a temporary directory) with the password files and the ACL
//! `vigie-cloud broker-config` writes: a provisioned Pi's events reach the database over TLS; a
//! device cannot publish as another (nothing stored), cannot log in on the cloud's listener, and
//! cannot take the ingest's session by naming its client id; an oversized message is dropped by
//! the broker and the ingest goes on; plain TCP, a client that does not trust the broker's CA, a
//! wrong password and a revoked device are all refused.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rumqttc::{Client, MqttOptions, QoS, TlsConfiguration, Transport};
use serde_json::json;
use support::*;

/// Runs `vigie-cloud ARGS` with the cloud's settings; its standard output.
fn cloud_cli(env: &[(String, String)], args: &[&str]) -> String {
    let mut cmd = Command::new(bin("vigie-cloud"));
    cmd.args(args).env("VIGIE_LOG_FORMAT", "json");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "vigie-cloud {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The production Mosquitto, on two free loopback ports: the Pis' listener and the cloud's.
struct TlsBroker {
    proc: Proc,
    /// The Pis' listener (8883 in production).
    port: u16,
    /// The cloud's listener (8884 in production).
    cloud_port: u16,
    log: PathBuf,
}

/// `dir/broker`, `dir/tls` and `dir/data` and what is in them, owned by the mosquitto user.
fn give_to_mosquitto(dir: &Path) {
    let (uid, gid) = mosquitto_user();
    for sub in ["broker", "tls", "data"] {
        let sub = dir.join(sub);
        std::os::unix::fs::chown(&sub, Some(uid), Some(gid)).unwrap();
        for entry in std::fs::read_dir(&sub).unwrap() {
            std::os::unix::fs::chown(entry.unwrap().path(), Some(uid), Some(gid)).unwrap();
        }
    }
}

impl TlsBroker {
    /// Starts Mosquitto from the production config. `dir` holds `broker/` (what `broker-config`
    /// wrote) and `pki/`; the config's `/mosquitto/auth`, `/mosquitto/tls` and `/mosquitto/data`
    /// become `dir/broker`, `dir/tls` and `dir/data`, owned by the user Mosquitto runs as.
    fn start(dir: &Path) -> TlsBroker {
        let (port, cloud_port) = (free_port(), free_port());
        let production =
            std::fs::read_to_string(workspace().join("charts/vigie/files/mosquitto.conf")).unwrap();
        let root = dir.display().to_string();
        let text = production
            .replace("listener 8883\n", &format!("listener {port} 127.0.0.1\n"))
            .replace(
                "listener 8884\n",
                &format!("listener {cloud_port} 127.0.0.1\n"),
            )
            .replace("/mosquitto/auth/", &format!("{root}/broker/"))
            .replace("/mosquitto/", &format!("{root}/"));
        assert!(!text.contains("/mosquitto/") && text.contains(&format!("listener {cloud_port}")));
        let tls = dir.join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        for name in ["server.pem", "server.key"] {
            std::fs::copy(dir.join("pki").join(name), tls.join(name)).unwrap();
        }
        give_to_mosquitto(dir);
        // The temporary directory is 0700: let the mosquitto user through (not list) it.
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, text).unwrap();
        let mut cmd = Command::new("mosquitto");
        cmd.arg("-c").arg(&conf);
        let log = dir.join("mosquitto-tls.log");
        let proc = Proc::spawn("mosquitto", cmd, &log);
        wait_for("the TLS broker to listen", Duration::from_secs(10), || {
            port_open(port) && port_open(cloud_port)
        });
        TlsBroker {
            proc,
            port,
            cloud_port,
            log,
        }
    }

    /// Mosquitto re-reads its password files and ACL on SIGHUP (asynchronously: callers wait for
    /// the effect they need). Files written again since are given to its user first, as a
    /// deployment's volume would.
    fn reload(&self, dir: &Path) {
        give_to_mosquitto(dir);
        let pid = self.proc.child.id() as i32;
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Why a connection was refused (the error of [`try_connect`]).
fn refused(result: Result<Client, String>) -> String {
    match result {
        Ok(_) => panic!("the broker accepted the connection"),
        Err(e) => e,
    }
}

/// Connects an MQTT client and waits for the broker's answer: `Ok` once connected.
fn try_connect(
    port: u16,
    tls_ca: Option<&[u8]>,
    credentials: Option<(&str, &str)>,
) -> Result<Client, String> {
    connect_as(&unique("probe-"), port, tls_ca, credentials)
}

/// [`try_connect`] with a chosen client id.
fn connect_as(
    client_id: &str,
    port: u16,
    tls_ca: Option<&[u8]>,
    credentials: Option<(&str, &str)>,
) -> Result<Client, String> {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    options.set_max_packet_size(1 << 20, 1 << 20);
    if let Some(ca) = tls_ca {
        // Two rustls providers are compiled in (aws-lc-rs, and ring from the S3 client): name one.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        options.set_transport(Transport::Tls(TlsConfiguration::Simple {
            ca: ca.to_vec(),
            alpn: None,
            client_auth: None,
        }));
    }
    if let Some((user, password)) = credentials {
        options.set_credentials(user, password);
    }
    connect_with(options)
}

struct Site {
    dir: tempfile::TempDir,
    db: PgDatabase,
    env: Vec<(String, String)>,
    prefix: String,
    broker: TlsBroker,
    ca: Vec<u8>,
    /// Device id → its MQTT password and API token.
    devices: Vec<(String, String, String)>,
}

/// A database with devices `a` and `b` provisioned (with their bundles), the broker files, and the
/// TLS broker.
fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path(), "IP:127.0.0.1");
    let db = PgDatabase::create();
    let prefix = unique("sec-");
    let cloud_password = dir.path().join("cloud-mqtt.password");
    std::fs::write(&cloud_password, format!("{}\n", unique("cloud-password-"))).unwrap();
    let env: Vec<(String, String)> = vec![
        ("VIGIE_DATABASE_URL".into(), db.url()),
        ("VIGIE_TOPIC_PREFIX".into(), prefix.clone()),
        (
            "VIGIE_DATA_DIR".into(),
            dir.path().join("cloud").display().to_string(),
        ),
    ];
    let mut devices = Vec::new();
    for id in ["dev-a", "dev-b"] {
        let bundles = dir.path().join("bundles");
        let ca = pki.join("ca.pem").display().to_string();
        let token = cloud_cli(
            &env,
            &[
                "device",
                "add",
                id,
                "--out",
                &bundles.display().to_string(),
                "--ca",
                &ca,
            ],
        );
        let bundle = bundles.join(id);
        let password = std::fs::read_to_string(bundle.join("mqtt.password")).unwrap();
        assert_eq!(
            std::fs::read_to_string(bundle.join("api.token")).unwrap(),
            token
        );
        assert!(bundle.join("ca.pem").is_file());
        devices.push((
            id.to_owned(),
            password.trim().to_owned(),
            token.trim().to_owned(),
        ));
    }
    let broker_dir = dir.path().join("broker").display().to_string();
    let password_file = cloud_password.display().to_string();
    cloud_cli(
        &env,
        &[
            "broker-config",
            "--out",
            &broker_dir,
            "--cloud-password-file",
            &password_file,
        ],
    );
    let devices_passwd = std::fs::read_to_string(dir.path().join("broker/devices.passwd")).unwrap();
    let cloud_passwd = std::fs::read_to_string(dir.path().join("broker/cloud.passwd")).unwrap();
    assert!(
        devices_passwd.contains("dev-a:$7$") && !devices_passwd.contains("vigie-cloud:"),
        "{devices_passwd}"
    );
    assert!(
        cloud_passwd.starts_with("vigie-cloud:$7$") && !cloud_passwd.contains("dev-a"),
        "{cloud_passwd}"
    );
    let broker = TlsBroker::start(dir.path());
    let ca = std::fs::read(pki.join("ca.pem")).unwrap();
    let mut env = env;
    env.extend([
        (
            "VIGIE_MQTT_URL".into(),
            format!("mqtts://127.0.0.1:{}", broker.cloud_port),
        ),
        (
            "VIGIE_MQTT_CA_FILE".into(),
            pki.join("ca.pem").display().to_string(),
        ),
        ("VIGIE_MQTT_USERNAME".into(), "vigie-cloud".into()),
        ("VIGIE_MQTT_PASSWORD_FILE".into(), password_file),
        ("VIGIE_MQTT_CLIENT_ID".into(), unique("cloud-")),
    ]);
    Site {
        dir,
        db,
        env,
        prefix,
        broker,
        ca,
        devices,
    }
}

fn envelope(device: &str, seq: u64) -> Vec<u8> {
    json!({
        "schema_version": 1,
        "id": uuid::Uuid::now_v7(),
        "device": device,
        "seq": seq,
        "sensor": "mat-1",
        "kind": "button_pressed",
        "occurred_at": protocol::time::format(chrono::Utc::now()),
        "clock_synced": true
    })
    .to_string()
    .into_bytes()
}

#[test]
fn a_pi_over_tls_with_its_identity_is_stored_and_a_device_cannot_publish_as_another() {
    let site = site();
    let cloud = Cloud::start(site.dir.path(), site.env.clone());
    cloud.add_user("admin", "admin", "correct horse battery");
    let token = cloud.login("admin", "correct horse battery");

    // A real Pi, provisioned by `device add --out`: TLS with its CA, its own MQTT password.
    let (id, _, _) = &site.devices[0];
    let bundle = site.dir.path().join("bundles").join(id);
    let config = site.dir.path().join("edge-a.toml");
    let example =
        std::fs::read_to_string(workspace().join("edge/examples/simulated.toml")).unwrap();
    let with_identity = example.replace(
        "heartbeat_ms = 5000",
        &format!(
            "heartbeat_ms = 5000\npassword_file = \"{}\"\nca_file = \"{}\"",
            bundle.join("mqtt.password").display(),
            bundle.join("ca.pem").display()
        ),
    );
    assert_ne!(with_identity, example);
    std::fs::write(&config, with_identity).unwrap();
    let port = free_port();
    let mut cmd = Command::new(bin("vigie-edge"));
    cmd.arg("run")
        .arg("--config")
        .arg(&config)
        .env("VIGIE_LOG_FORMAT", "json")
        .env("VIGIE_EDGE_DEVICE_ID", id)
        .env(
            "VIGIE_EDGE_MQTT_URL",
            format!("mqtts://127.0.0.1:{}", site.broker.port),
        )
        .env(
            "VIGIE_EDGE_DATA_DIR",
            site.dir.path().join(id).display().to_string(),
        )
        .env("VIGIE_EDGE_HTTP_LISTEN", format!("127.0.0.1:{port}"))
        .env("VIGIE_TOPIC_PREFIX", &site.prefix);
    let mut edge = Proc::spawn("vigie-edge", cmd, &site.dir.path().join("edge-a.log"));
    edge.wait_until_ok(
        &format!("http://127.0.0.1:{port}/healthz"),
        Duration::from_secs(30),
    );
    let agent = agent();
    let (status, body) = post_json(
        &agent,
        &format!("http://127.0.0.1:{port}/sim/button"),
        None,
        &serde_json::Value::Null,
    );
    assert_eq!(status, 201, "{body}");
    wait_for(
        "dev-a's event stored over TLS",
        Duration::from_secs(30),
        || pg_device_events(&site.db.url(), "dev-a").len() == 1,
    );
    wait_for("dev-a acked and online", Duration::from_secs(30), || {
        cloud
            .device(&token, "dev-a")
            .is_some_and(|d| d["acked_seq"] == 1 && d["state"] == "online")
    });

    // dev-b's credentials, publishing as dev-a (topic and payload): the broker's ACL drops it.
    let (b, b_password, _) = &site.devices[1];
    let client = try_connect(site.broker.port, Some(&site.ca), Some((b, b_password))).unwrap();
    let topic_of = |device: &str| format!("{}/sensors/{device}/button/pressed", site.prefix);
    client
        .publish(
            topic_of("dev-a"),
            QoS::AtLeastOnce,
            false,
            envelope("dev-a", 99),
        )
        .unwrap();
    // On its own topic with another device in the payload: the cloud drops and counts it.
    client
        .publish(
            topic_of("dev-b"),
            QoS::AtLeastOnce,
            false,
            envelope("dev-a", 98),
        )
        .unwrap();
    // Then a genuine dev-b event: once it is stored, the two before it were handled.
    client
        .publish(
            topic_of("dev-b"),
            QoS::AtLeastOnce,
            false,
            envelope("dev-b", 1),
        )
        .unwrap();
    wait_for("dev-b's own event stored", Duration::from_secs(30), || {
        pg_device_events(&site.db.url(), "dev-b").len() == 1
    });
    let a_events = pg_device_events(&site.db.url(), "dev-a");
    assert_eq!(
        a_events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1],
        "nothing published with dev-b's credentials is stored as dev-a"
    );
    assert!(metric(&cloud, "vigie_ingest_invalid_total") >= 1);
    edge.kill9();

    // No secret in any log: the processes' own (the cloud, the edge, the broker).
    let cloud_password =
        std::fs::read_to_string(site.dir.path().join("cloud-mqtt.password")).unwrap();
    let mut secrets: Vec<String> = vec![
        cloud_password.trim().to_owned(),
        "correct horse battery".into(),
    ];
    for (_, password, api_token) in &site.devices {
        secrets.extend([password.clone(), api_token.clone()]);
    }
    let mut logs = 0;
    for entry in std::fs::read_dir(site.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            logs += 1;
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "a secret in {}",
                    path.display()
                );
            }
        }
    }
    assert!(
        logs >= 3,
        "the cloud, edge and broker logs were read ({logs})"
    );
}

#[test]
fn plain_tcp_a_foreign_ca_a_wrong_password_and_a_revoked_device_are_refused() {
    let site = site();
    let port = site.broker.port;
    let (a, a_password, a_token) = &site.devices[0];
    assert!(try_connect(port, Some(&site.ca), Some((a, a_password))).is_ok());

    let plain = try_connect(port, None, Some((a, a_password)));
    assert!(plain.is_err(), "plain TCP on the TLS port");
    let other_ca = std::fs::read(site.dir.path().join("pki/other-ca.pem")).unwrap();
    let foreign = try_connect(port, Some(&other_ca), Some((a, a_password)));
    assert!(
        foreign.is_err(),
        "a client that does not trust the broker's CA"
    );
    let wrong = refused(try_connect(
        port,
        Some(&site.ca),
        Some((a, "not-the-password")),
    ));
    assert!(wrong.contains("refused"), "{wrong}");
    let anonymous = refused(try_connect(port, Some(&site.ca), None));
    assert!(anonymous.contains("refused"), "{anonymous}");

    // Revoked: the broker refuses it once the files are written again and reloaded; the API refuses
    // its token at once.
    cloud_cli(&site.env, &["device", "revoke", a]);
    let broker_dir = site.dir.path().join("broker").display().to_string();
    let password_file = site
        .dir
        .path()
        .join("cloud-mqtt.password")
        .display()
        .to_string();
    cloud_cli(
        &site.env,
        &[
            "broker-config",
            "--out",
            &broker_dir,
            "--cloud-password-file",
            &password_file,
        ],
    );
    site.broker.reload(site.dir.path());
    let mut revoked = String::new();
    wait_for(
        "the reloaded broker to refuse the revoked device",
        Duration::from_secs(10),
        || match try_connect(port, Some(&site.ca), Some((a, a_password))) {
            Ok(_) => false,
            Err(e) => {
                revoked = e;
                true
            }
        },
    );
    assert!(revoked.contains("refused"), "{revoked}");
    let (b, b_password, _) = &site.devices[1];
    assert!(
        try_connect(port, Some(&site.ca), Some((b, b_password))).is_ok(),
        "others still connect"
    );

    let cloud = Cloud::start(site.dir.path(), site.env.clone());
    let (status, _) = post_json(
        &agent(),
        &format!("{}/api/events", cloud.base),
        Some(a_token),
        &json!([]),
    );
    assert_eq!(status, 401, "the revoked device's API token");
}

#[test]
fn a_device_naming_the_ingests_client_id_does_not_take_its_session_and_an_oversized_message_is_dropped(
) {
    let site = site();
    let cloud = Cloud::start(site.dir.path(), site.env.clone());
    let ingest_id = site
        .env
        .iter()
        .find(|(k, _)| k == "VIGIE_MQTT_CLIENT_ID")
        .map(|(_, v)| v.clone())
        .unwrap();
    wait_for("the ingest connected", Duration::from_secs(30), || {
        site.broker.log().contains(&ingest_id)
    });
    let (a, a_password, _) = &site.devices[0];

    // A device's password does not open the cloud's listener.
    let on_cloud_listener = refused(connect_as(
        &unique("probe-"),
        site.broker.cloud_port,
        Some(&site.ca),
        Some((a, a_password)),
    ));
    assert!(on_cloud_listener.contains("refused"), "{on_cloud_listener}");

    // dev-a names the ingest's client id on the Pis' listener: the broker replaces it by dev-a.
    let client = connect_as(
        &ingest_id,
        site.broker.port,
        Some(&site.ca),
        Some((a, a_password)),
    )
    .expect("dev-a connects");
    let topic = format!("{}/sensors/{a}/button/pressed", site.prefix);
    // Above the broker's message_size_limit (64 KiB): acknowledged and dropped by the broker.
    let oversized = vec![b'x'; 200 * 1024];
    client
        .publish(&topic, QoS::AtLeastOnce, false, oversized)
        .unwrap();
    client
        .publish(&topic, QoS::AtLeastOnce, false, envelope(a, 1))
        .unwrap();
    wait_for(
        "dev-a's event stored after the oversized message",
        Duration::from_secs(30),
        || pg_device_events(&site.db.url(), a).len() == 1,
    );
    let log = site.broker.log();
    assert!(
        !log.contains(&format!("Client {ingest_id} already connected")),
        "the ingest's session was taken over:\n{log}"
    );
    assert_eq!(
        log.matches(&format!("as {ingest_id} ")).count(),
        1,
        "the ingest connected once and was never disconnected:\n{log}"
    );
    // The ingest is still the one subscribed: a second event flows too.
    client
        .publish(&topic, QoS::AtLeastOnce, false, envelope(a, 2))
        .unwrap();
    wait_for(
        "dev-a's second event stored",
        Duration::from_secs(30),
        || pg_device_events(&site.db.url(), a).len() == 2,
    );
    drop(cloud);
}

#[test]
fn broker_config_watch_lets_a_new_device_in_and_a_revoked_one_out_within_its_period() {
    let site = site();
    let port = site.broker.port;
    let dir = site.dir.path();
    // The sidecar runs as the broker's user, as in the chart: its files stay readable by the
    // broker after each rewrite, and its SIGHUP reaches it.
    let (uid, gid) = mosquitto_user();
    let pid_file = dir.join("mosquitto.pid");
    std::fs::write(&pid_file, site.broker.proc.child.id().to_string()).unwrap();
    let data = dir.join("watcher");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
    // As the mosquitto user, set in the child itself (not through runuser, whose child a kill of
    // runuser would leave running after the test).
    let mut cmd = Command::new(bin("vigie-cloud"));
    without_inherited_settings(&mut cmd);
    std::os::unix::process::CommandExt::uid(&mut cmd, uid);
    std::os::unix::process::CommandExt::gid(&mut cmd, gid);
    cmd.args(["broker-config", "--out"])
        .arg(dir.join("broker"))
        .arg("--cloud-password-file")
        .arg(dir.join("cloud-mqtt.password"))
        .args(["--watch", "--every-s", "1", "--reload-pid-file"])
        .arg(&pid_file)
        .env("VIGIE_LOG_FORMAT", "json");
    for (k, v) in &site.env {
        cmd.env(
            k,
            if k == "VIGIE_DATA_DIR" {
                data.to_str().unwrap()
            } else {
                v
            },
        );
    }
    let mut watcher = Proc::spawn("broker-config --watch", cmd, &dir.join("watcher.log"));
    let watcher_log = || std::fs::read_to_string(dir.join("watcher.log")).unwrap_or_default();
    wait_for(
        "the watcher to start watching",
        Duration::from_secs(20),
        || watcher_log().contains("watching the device list"),
    );

    // A device added after the broker started is let in within the period, with no manual step.
    let bundles = dir.join("bundles").display().to_string();
    cloud_cli(&site.env, &["device", "add", "dev-c", "--out", &bundles]);
    let password = std::fs::read_to_string(dir.join("bundles/dev-c/mqtt.password")).unwrap();
    let added = std::time::Instant::now();
    wait_for(
        "the watcher to let dev-c in",
        Duration::from_secs(30),
        || try_connect(port, Some(&site.ca), Some(("dev-c", password.trim()))).is_ok(),
    );
    let let_in = added.elapsed();

    // A revoked one is refused within the period too.
    let (a, a_password, _) = &site.devices[0];
    cloud_cli(&site.env, &["device", "revoke", a]);
    let revoked = std::time::Instant::now();
    wait_for(
        "the watcher to shut dev-a out",
        Duration::from_secs(30),
        || try_connect(port, Some(&site.ca), Some((a, a_password))).is_err(),
    );
    let shut_out = revoked.elapsed();
    watcher.assert_running();
    let (b, b_password, _) = &site.devices[1];
    assert!(try_connect(port, Some(&site.ca), Some((b, b_password))).is_ok());
    watcher.kill9();
    let log = watcher_log();
    assert_eq!(
        log.matches("device list changed").count(),
        2,
        "one rewrite for the addition, one for the revocation: {log}"
    );
    assert!(log.contains("broker told to reload"), "{log}");
    eprintln!("broker-config --watch (every 1 s): a new device let in after {let_in:?}, a revoked one shut out after {shut_out:?}");
}
