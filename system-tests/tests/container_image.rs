//! The `vigie-cloud` image, built with podman from the binaries this run built (images/build.sh),
//! and run exactly as the chart's rendered pods say (charts/tests/deployment_to_podman.py: env and
//! envFrom, volume mounts, the securityContext: read-only root, UID/GID 10001, every capability
//! dropped, no new privileges), against the machine's PostgreSQL and a Mosquitto started from the
//! chart's rendered config (TLS on both listeners, the password files and ACL written by the broker
//! pod's init container from the same image). Its probes answer, headless Chromium shows the
//! console's login form it serves, a device's bundle comes out of it as a tar archive, a real
//! `vigie-edge` with that bundle gets an event to it over TLS, its own HEALTHCHECK passes, and
//! `podman stop` (SIGTERM) drains it to exit 0.

// The cloud's end-to-end harness, until the structure issue makes it this crate's one test kit.
#[path = "../../cloud/tests/support/mod.rs"]
mod support;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;
use vigie_system_tests::checked;

const TAG: &str = "test";

/// `podman` with the runtime flags this machine needs (shared/dependencies.md).
fn podman(args: &[&str]) -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(["--runtime", "runc", "--cgroup-manager=cgroupfs"])
        .args(args);
    cmd
}

/// What this machine's runtime needs on every run (shared/dependencies.md), and the host's
/// network: the rest of the command line comes from the chart's rendered Deployment.
const HOST_FLAGS: [&str; 6] = [
    "--ulimit",
    "nofile=1024:4096",
    "--ulimit",
    "nproc=1024:2048",
    "--network",
    "host",
];

/// A running container, removed when dropped.
struct Container {
    name: String,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "2", &self.name]).output();
    }
}

/// Builds both images from this run's binaries, once per test binary (the tests here share them).
fn images_built() {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        assert!(
            Command::new("podman").arg("--version").output().is_ok(),
            "podman is missing (make deps installs it)"
        );
        let bins = bin("vigie-cloud").parent().unwrap().to_owned();
        let build = checked(
            Command::new(workspace().join("images/build.sh"))
                .arg(&bins)
                .arg(TAG)
                .current_dir(workspace()),
            "images/build.sh",
        );
        eprintln!("{}", String::from_utf8_lossy(&build.stdout).trim());
    });
}

/// A temporary directory the containers' users and the mosquitto user may pass through (not list):
/// tempfile makes it 0700.
fn passable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    dir
}

#[test]
fn the_cloud_image_runs_read_only_as_10001_with_every_capability_dropped_and_serves_the_fleet() {
    images_built();
    let dir = passable_tempdir();
    let db = PgDatabase::create();
    let prefix = unique("image-");
    let (api, ops, rtsp) = (free_port(), free_port(), free_port());
    let (pis_port, cloud_port) = (free_port(), free_port());
    let image = format!("vigie-cloud:{TAG}");
    // The broker's certificate names the Service the cloud connects to and the Pis' address.
    let pki = make_pki(dir.path(), "DNS:vigie-mosquitto,IP:127.0.0.1");
    let pem = |name: &str| std::fs::read_to_string(pki.join(name)).unwrap();
    // The pods exactly as the chart renders them, with the in-chart Mosquitto: only the
    // listeners (free loopback ports, on the host's network), the Services' names (loopback) and
    // the image are substituted.
    let volumes = dir.path().join("volumes");
    let request = serde_json::json!({
        "values": {
            "postgresql": {"external": {"url": db.url()}},
            "mosquitto": {"enabled": true, "tls": {"existingSecret": "vigie-mosquitto-tls"}},
            "cloud": {"topicPrefix": prefix, "mqttClientId": unique("cloud-"),
                      "shutdownGraceSeconds": 10},
        },
        "existing_secrets": {"vigie-mosquitto-tls": {
            "tls.crt": pem("server.pem"), "tls.key": pem("server.key"), "ca.crt": pem("ca.pem"),
        }},
        "containers": ["vigie/cloud", "vigie-mosquitto/broker-files"],
        "env": {"vigie/cloud": {
            "VIGIE_LISTEN": format!("127.0.0.1:{api}"),
            "VIGIE_METRICS_LISTEN": format!("127.0.0.1:{ops}"),
            "VIGIE_RTSP_LISTEN": format!("127.0.0.1:{rtsp}"),
            "VIGIE_MQTT_URL": format!("mqtts://vigie-mosquitto:{cloud_port}"),
        }},
        "images": {"vigie-cloud:0.1.0": image},
        "volumes_dir": volumes.display().to_string(),
        "hosts": {"vigie-mosquitto": "127.0.0.1"},
        "broker_listeners": {
            "8883": format!("127.0.0.1:{pis_port}"),
            "8884": format!("127.0.0.1:{cloud_port}"),
        },
    });
    let request_file = dir.path().join("request.json");
    std::fs::write(&request_file, request.to_string()).unwrap();
    let rendered = Command::new("python3")
        .arg(workspace().join("charts/tests/deployment_to_podman.py"))
        .arg(&request_file)
        .output()
        .unwrap();
    assert!(
        rendered.status.success(),
        "deployment_to_podman.py: {}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let rendered: serde_json::Value = serde_json::from_slice(&rendered.stdout).unwrap();
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_owned())
            .collect()
    };
    let cloud = &rendered["containers"]["vigie/cloud"];
    let (flags, container_args) = (strings(&cloud["flags"]), strings(&cloud["args"]));
    let joined = flags.join(" ");
    for expected in [
        "--read-only",
        "--user 10001:10001",
        "--cap-drop ALL",
        "--security-opt no-new-privileges",
        "--tmpfs /tmp:size=64m",
    ] {
        assert!(joined.contains(expected), "{expected} in {joined}");
    }
    let volume = |name: &str| PathBuf::from(rendered["volumes"][name].as_str().unwrap());
    let data = volume("vigie/data");
    // One-off commands of the image, with the same settings and flags.
    let one_off = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = podman(&["run", "--rm", "-i"]);
        cmd.args(HOST_FLAGS).args(&flags).arg(&image).args(args);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    };

    // A user and a device made by the image itself; the bundle comes out on standard output.
    let added = one_off(
        &[
            "user",
            "add",
            "admin",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("correct horse battery\n"),
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let device = unique("pi-");
    let bundle = one_off(&["device", "add", &device, "--bundle-tar", "-"], None);
    assert!(
        bundle.status.success(),
        "{}",
        String::from_utf8_lossy(&bundle.stderr)
    );
    let bundles = dir.path().join("bundles");
    std::fs::create_dir(&bundles).unwrap();
    tar::Archive::new(bundle.stdout.as_slice())
        .unpack(&bundles)
        .unwrap();
    let token = std::fs::read_to_string(bundles.join(&device).join("api.token")).unwrap();

    // The broker's pod: its init container (the image's broker-config, as rendered) writes the
    // password files and the ACL from the device list into the volume Mosquitto reads; then
    // Mosquitto starts from the rendered config, TLS on both listeners.
    let init = &rendered["containers"]["vigie-mosquitto/broker-files"];
    let mut files = podman(&["run", "--rm"]);
    files
        .args(HOST_FLAGS)
        .args(strings(&init["flags"]))
        .arg(init["image"].as_str().unwrap())
        .args(strings(&init["args"]));
    checked(files, "the broker's init container");
    let auth = volume("vigie-mosquitto/auth");
    let devices = std::fs::read_to_string(auth.join("devices.passwd")).unwrap();
    assert!(devices.starts_with(&format!("{device}:$7$")), "{devices}");
    // Debian's Mosquitto runs as its own user, not the image's 1883: its volumes become its.
    let (uid, gid) = mosquitto_user();
    for name in ["auth", "tls", "data"] {
        let path = volume(&format!("vigie-mosquitto/{name}"));
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        for entry in std::fs::read_dir(&path).unwrap() {
            std::os::unix::fs::chown(entry.unwrap().path(), Some(uid), Some(gid)).unwrap();
        }
    }
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(&conf, rendered["mosquitto_conf"].as_str().unwrap()).unwrap();
    let mut broker = Command::new("mosquitto");
    broker.arg("-c").arg(&conf);
    let broker_log = dir.path().join("mosquitto.log");
    let mut broker = Proc::spawn("mosquitto", broker, &broker_log);
    wait_for(
        "the rendered broker to listen",
        Duration::from_secs(10),
        || port_open(pis_port) && port_open(cloud_port),
    );

    let name = unique("vigie-cloud-");
    let mut run = podman(&["run", "--detach", "--name", &name]);
    run.args(HOST_FLAGS)
        .args(&flags)
        .arg(&image)
        .args(&container_args);
    checked(run, "podman run");
    let container = Container { name };
    let base = format!("http://127.0.0.1:{api}");
    let status_of = |url: &str| agent().get(url).call().map_or(0, |r| r.status().as_u16());
    wait_for("the container's /readyz", Duration::from_secs(60), || {
        status_of(&format!("{base}/readyz")) == 200
    });
    // Each probe the Deployment renders, on the listener of the port it names (the API's 8080 and
    // the metrics' port, moved to this test's free ports).
    let probes = cloud["probes"].as_array().unwrap();
    assert_eq!(
        probes.len(),
        3,
        "startup, liveness and readiness: {probes:?}"
    );
    for probe in probes {
        let port = match probe["port"].as_u64().unwrap() {
            8080 => api,
            9464 => ops,
            other => panic!("a probe on port {other}, which the container does not listen on"),
        };
        let url = format!("http://127.0.0.1:{port}{}", probe["path"].as_str().unwrap());
        assert_eq!(status_of(&url), 200, "{}: {url}", probe["probe"]);
    }
    for url in [
        format!("http://127.0.0.1:{ops}/readyz"),
        format!("http://127.0.0.1:{ops}/healthz"),
    ] {
        assert_eq!(status_of(&url), 200, "{url}");
    }
    // Its own HEALTHCHECK (vigie-cloud probe, no shell in the way).
    let health = podman(&["healthcheck", "run", &container.name])
        .output()
        .unwrap();
    assert!(
        health.status.success(),
        "healthcheck: {}",
        String::from_utf8_lossy(&health.stderr)
    );

    // The console, under its CSP: the asset index.html names answers, and Chromium renders the form.
    let mut resp = agent().get(&format!("{base}/")).call().unwrap();
    let csp = resp
        .headers()
        .get("content-security-policy")
        .map(|v| v.to_str().unwrap().to_owned())
        .expect("a CSP on the console");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let index = resp.body_mut().read_to_string().unwrap();
    let asset = index
        .split('"')
        .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
        .unwrap_or_else(|| panic!("no script asset in index.html: {index}"));
    assert_eq!(
        agent()
            .get(&format!("{base}{asset}"))
            .call()
            .unwrap()
            .status(),
        200
    );
    let dom = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--virtual-time-budget=10000",
            "--dump-dom",
            &format!("{base}/"),
        ])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("Sign in") && dom.contains("login-card"),
        "the login form rendered by Chromium: {dom}"
    );

    // A real edge on this machine, over TLS to the rendered broker with its bundle, to the
    // container: the cloud's /readyz above already said it reached the broker's cloud listener.
    let bundle_dir = bundles.join(&device);
    let mut edge = Edge::start_with(
        dir.path(),
        &device,
        &format!("mqtts://127.0.0.1:{pis_port}"),
        &prefix,
        vec![
            ("VIGIE_EDGE_API_URL".into(), base.clone()),
            ("VIGIE_EDGE_TOKEN".into(), token.trim().to_owned()),
            (
                "VIGIE_EDGE_MQTT_PASSWORD_FILE".into(),
                bundle_dir.join("mqtt.password").display().to_string(),
            ),
            (
                "VIGIE_EDGE_MQTT_CA_FILE".into(),
                pki.join("ca.pem").display().to_string(),
            ),
        ],
    );
    let (event_id, _) = edge.fire(&agent(), "button");
    let (status, login) = post_json(
        &agent(),
        &format!("{base}/api/auth/login"),
        None,
        &serde_json::json!({"username": "admin", "password": "correct horse battery"}),
    );
    assert_eq!(status, 200, "{login}");
    let admin = login["access_token"].as_str().unwrap().to_owned();
    wait_for(
        "the edge's event listed by the container",
        Duration::from_secs(30),
        || {
            let (_, page) = get_json(&agent(), &format!("{base}/api/events"), Some(&admin));
            page["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|e| e["id"] == event_id.as_str()))
        },
    );
    edge.proc.kill9();
    let broker_said = std::fs::read_to_string(&broker_log).unwrap_or_default();
    assert!(
        broker_said.contains(&format!("as {device}")) && broker_said.contains("u'vigie-cloud'"),
        "the edge and the cloud logged in to the rendered broker: {broker_said}"
    );

    // SIGTERM (podman stop): the drain, then exit 0.
    checked(
        podman(&["stop", "-t", "15", &container.name]),
        "podman stop",
    );
    let exit = checked(
        podman(&[
            "inspect",
            "--format",
            "{{.State.ExitCode}}",
            &container.name,
        ]),
        "podman inspect",
    );
    assert_eq!(String::from_utf8_lossy(&exit.stdout).trim(), "0");
    let logs = checked(podman(&["logs", &container.name]), "podman logs");
    let logs =
        String::from_utf8_lossy(&logs.stderr).into_owned() + &String::from_utf8_lossy(&logs.stdout);
    assert!(logs.contains("ingest drained"), "{logs}");
    // Nothing but the volume was written: the root filesystem is read-only, and the data is there.
    assert!(std::fs::read_dir(&data).unwrap().next().is_some());
    broker.kill9();

    // The edge image runs its binary the same way (its own test is the Pi's).
    let mut edge_version = podman(&["run", "--rm"]);
    edge_version.args(HOST_FLAGS).args([
        "--read-only",
        "--user",
        "10001:10001",
        "--cap-drop",
        "ALL",
        &format!("vigie-edge:{TAG}"),
        "--version",
    ]);
    let out = checked(edge_version, "the edge image");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("vigie-edge "));
}

/// A `podman` for podman-compose: the runtime flags this machine needs, then its arguments.
fn podman_wrapper(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("podman");
    std::fs::write(
        &path,
        "#!/bin/sh\nexec podman --runtime runc --cgroup-manager=cgroupfs \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

#[test]
fn the_edge_compose_file_runs_the_edge_image_with_its_bundle_and_simulated_sensors() {
    images_built();
    let dir = passable_tempdir();
    // The host's /etc/vigie as provisioning leaves it: the bundle (owned by the service user,
    // 0600), the outbox key, site.env.
    let device = unique("pi-");
    let pki = make_pki(dir.path(), "IP:127.0.0.1");
    let device_dir = dir.path().join("device");
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&device_dir).unwrap();
    for (name, text) in [
        (
            "mqtt.password",
            "a-device-password-of-some-length\n".to_owned(),
        ),
        ("api.token", format!("vgd_{}\n", "a".repeat(43))),
        (
            "ca.pem",
            std::fs::read_to_string(pki.join("ca.pem")).unwrap(),
        ),
    ] {
        std::fs::write(device_dir.join(name), text).unwrap();
        std::fs::set_permissions(
            device_dir.join(name),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
    }
    std::fs::create_dir_all(&keys).unwrap();
    let keygen = Command::new(bin("vigie-edge"))
        .args(["keygen", "--out"])
        .arg(keys.join("outbox.key"))
        .output()
        .unwrap();
    assert!(keygen.status.success());
    for path in [&device_dir, &keys] {
        std::os::unix::fs::chown(path, Some(10001), Some(10001)).unwrap();
        for entry in std::fs::read_dir(path).unwrap() {
            std::os::unix::fs::chown(entry.unwrap().path(), Some(10001), Some(10001)).unwrap();
        }
    }
    let http = free_port();
    let site_env = dir.path().join("site.env");
    // No broker answers (the uplink is degraded, the events stay in the outbox): this test is the
    // container's, the event path has its own.
    std::fs::write(
        &site_env,
        format!(
            "VIGIE_EDGE_DEVICE_ID={device}\nVIGIE_EDGE_MQTT_URL=mqtts://127.0.0.1:{}\n\
             VIGIE_EDGE_API_URL=https://127.0.0.1:{}\nVIGIE_EDGE_HTTP_LISTEN=127.0.0.1:{http}\n\
             VIGIE_TOPIC_PREFIX={}\nVIGIE_EDGE_KEY_FILE=/etc/vigie/keys/outbox.key\n",
            free_port(),
            free_port(),
            unique("compose-")
        ),
    )
    .unwrap();
    // The override's settings: the Pi's, with simulated sensors.
    let pi = std::fs::read_to_string(workspace().join("edge/debian/edge.toml")).unwrap();
    let simulated = dir.path().join("simulated.toml");
    assert!(pi.contains("backend = \"gpio\""));
    std::fs::write(
        &simulated,
        pi.replace("backend = \"gpio\"", "backend = \"simulated\""),
    )
    .unwrap();

    let project = unique("vigie-compose-");
    let compose = |args: &[&str]| {
        let mut cmd = Command::new("podman-compose");
        cmd.arg("--podman-path")
            .arg(podman_wrapper(dir.path()))
            .args(["-p", &project, "-f"])
            .arg(workspace().join("edge/compose.yaml"))
            .arg("-f")
            .arg(workspace().join("system-tests/fixtures/compose.simulated.yaml"))
            .args(args)
            .env("VIGIE_EDGE_IMAGE", format!("vigie-edge:{TAG}"))
            .env("VIGIE_SITE_ENV", &site_env)
            .env("VIGIE_DEVICE_DIR", &device_dir)
            .env("VIGIE_KEYS_DIR", &keys)
            .env("VIGIE_SIMULATED_CONFIG", &simulated)
            .env("VIGIE_GPIO_CHIP", "/dev/null")
            .env("VIGIE_CAMERA", "/dev/zero")
            .env("VIGIE_GPIO_GID", "10001")
            .env("VIGIE_VIDEO_GID", "10001");
        cmd
    };
    // The compose file and the override, as podman-compose reads them.
    let config = checked(compose(&["config"]), "podman-compose config");
    let config = String::from_utf8_lossy(&config.stdout).into_owned();
    for expected in [
        "read_only: true",
        "network_mode: host",
        "/etc/vigie/device",
        "cap_drop",
    ] {
        assert!(config.contains(expected), "{expected} in:\n{config}");
    }

    struct Down<F: Fn(&[&str]) -> Command>(F);
    impl<F: Fn(&[&str]) -> Command> Drop for Down<F> {
        fn drop(&mut self) {
            let _ = (self.0)(&["down", "-v", "-t", "5"]).output();
        }
    }
    let down = Down(compose);
    checked((down.0)(&["up", "-d"]), "podman-compose up");
    let base = format!("http://127.0.0.1:{http}");
    let status_of = |url: &str| agent().get(url).call().map_or(0, |r| r.status().as_u16());
    wait_for(
        "the edge container's /healthz",
        Duration::from_secs(60),
        || status_of(&format!("{base}/healthz")) == 200,
    );
    let (status, body) = post_json(
        &agent(),
        &format!("{base}/sim/button"),
        None,
        &serde_json::Value::Null,
    );
    assert_eq!(
        status, 201,
        "a durable event in the container's outbox: {body}"
    );
    wait_for(
        "the synthetic camera ready",
        Duration::from_secs(30),
        || {
            let (_, ready) = get_json(&agent(), &format!("{base}/readyz"), None);
            ready["components"]["camera"]["state"] == "ready"
        },
    );
    checked((down.0)(&["stop", "-t", "20"]), "podman-compose stop");
    let logs = checked(
        podman(&["logs", &format!("{project}_edge_1")]),
        "podman logs",
    );
    let logs =
        String::from_utf8_lossy(&logs.stdout).into_owned() + &String::from_utf8_lossy(&logs.stderr);
    assert!(
        logs.contains("outbox flushed; stopped"),
        "a clean stop: {logs}"
    );

    // Without the override, the image's own settings (the Pi's, baked in) with this site.env and
    // bundle get the edge to its GPIO, which this machine does not have.
    let mut pi = podman(&["run", "--rm", "--read-only", "--user", "10001:10001"]);
    pi.args(HOST_FLAGS)
        .arg("--env-file")
        .arg(&site_env)
        .arg("--volume")
        .arg(format!("{}:/etc/vigie/device:ro", device_dir.display()))
        .arg("--volume")
        .arg(format!("{}:/etc/vigie/keys:ro", keys.display()))
        .arg(format!("vigie-edge:{TAG}"));
    let out = pi.output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("sensor mat-1: GPIO is not available"),
        "the baked /etc/vigie/edge.toml, past its settings to the GPIO: {said}"
    );
}
