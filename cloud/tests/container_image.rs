//! The `vigie-cloud` image, built with podman from the binaries this run built (images/build.sh),
//! and run exactly as the chart's rendered Deployment says (charts/tests/deployment_to_podman.py:
//! env and envFrom, volume mounts, the securityContext: read-only root, UID/GID 10001, every
//! capability dropped, no new privileges), against the machine's PostgreSQL and Mosquitto. Its probes answer, headless Chromium shows the console's login form it
//! serves, a real `vigie-edge` on this machine gets an event to it, a device's bundle comes out of
//! it as a tar archive, its own HEALTHCHECK passes, and `podman stop` (SIGTERM) drains it to exit 0.

mod support;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::*;

const TAG: &str = "test";

/// `podman` with the runtime flags this machine needs (shared/dependencies.md).
fn podman(args: &[&str]) -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(["--runtime", "runc", "--cgroup-manager=cgroupfs"])
        .args(args);
    cmd
}

fn checked(mut cmd: Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
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

#[test]
fn the_cloud_image_runs_read_only_as_10001_with_every_capability_dropped_and_serves_the_fleet() {
    assert!(
        Command::new("podman").arg("--version").output().is_ok(),
        "podman is missing (make deps installs it)"
    );
    let bins = bin("vigie-cloud").parent().unwrap().to_owned();
    let build = Command::new(workspace().join("images/build.sh"))
        .arg(&bins)
        .arg(TAG)
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "images/build.sh: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&build.stdout).trim());

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    // The volume belongs to the image's user, as a pod's fsGroup makes it.
    std::os::unix::fs::chown(&data, Some(10001), Some(10001)).unwrap();
    let db = PgDatabase::create();
    let prefix = unique("image-");
    let (api, ops, rtsp) = (free_port(), free_port(), free_port());
    let image = format!("vigie-cloud:{TAG}");
    // The container exactly as the chart's rendered Deployment runs it: only the listeners (free
    // loopback ports, on the host's network) and the image are substituted.
    let files = dir.path().join("projected");
    let request = serde_json::json!({
        "values": {
            "postgresql": {"external": {"url": db.url()}},
            "mqtt": {"external": {"url": "mqtt://127.0.0.1:1883", "existingSecret": "vigie-mqtt"}},
            "cloud": {"topicPrefix": prefix, "mqttClientId": unique("cloud-"),
                      "shutdownGraceSeconds": 10},
        },
        "existing_secrets": {"vigie-mqtt": {"password": "a-password-of-more-than-16-chars\n"}},
        "listen": {
            "VIGIE_LISTEN": format!("127.0.0.1:{api}"),
            "VIGIE_METRICS_LISTEN": format!("127.0.0.1:{ops}"),
            "VIGIE_RTSP_LISTEN": format!("127.0.0.1:{rtsp}"),
        },
        "image": image,
        "data_dir": data.display().to_string(),
        "files_dir": files.display().to_string(),
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
    let (flags, container_args) = (strings(&rendered["flags"]), strings(&rendered["args"]));
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
    for url in [
        format!("{base}/healthz"),
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

    // A real edge on this machine, through the machine's Mosquitto, to the container.
    let mut edge = Edge::start_with(
        dir.path(),
        &device,
        "mqtt://127.0.0.1:1883",
        &prefix,
        vec![
            ("VIGIE_EDGE_API_URL".into(), base.clone()),
            ("VIGIE_EDGE_TOKEN".into(), token.trim().to_owned()),
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
