//! The bulk drain against a real `vigie-cloud` (embedded broker, SQLite, loopback only): a backlog
//! queued while the broker was unreachable goes out oldest first through `POST /api/events` once
//! the edge restarts with the cloud's broker and API, every event arrives exactly once, the outbox
//! empties, and a live event fired during the drain arrives over MQTT within 2 s.
//!
//! Needs the workspace binaries (`cargo build --workspace --bins`) for `target/*/vigie-cloud`.

use std::collections::HashSet;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BACKLOG: usize = 3000;
const WAIT: Duration = Duration::from_secs(120);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// `(status, body)` of a request with an optional bearer token and JSON body.
fn call(method: &str, url: &str, token: Option<&str>, body: Option<&Value>) -> (u16, String) {
    let agent = agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let result = match (method, body) {
        ("GET", _) => {
            let mut req = agent.get(url);
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            req.call()
        }
        (_, body) => {
            let mut req = agent.post(url).header("Content-Type", "application/json");
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            let text = body.map(|b| b.to_string()).unwrap_or_default();
            req.send(text.as_bytes())
        }
    };
    match result {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_string()
                .unwrap_or_default(),
        ),
        Err(e) => (0, e.to_string()),
    }
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after `timeout`.
fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cloud_bin() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_vigie-edge")).with_file_name("vigie-cloud");
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (`cargo build --workspace --bins`)",
        path.display()
    );
    path
}

struct Cloud {
    _proc: Proc,
    base: String,
    /// The metrics listener.
    ops: String,
    mqtt_port: u16,
    env: Vec<(&'static str, String)>,
}

impl Cloud {
    fn start(dir: &Path) -> Cloud {
        let port = free_port();
        let mqtt_port = free_port();
        let ops_port = free_port();
        let env = vec![
            ("VIGIE_LISTEN", format!("127.0.0.1:{port}")),
            ("VIGIE_METRICS_LISTEN", format!("127.0.0.1:{ops_port}")),
            ("VIGIE_MQTT_LISTEN", format!("127.0.0.1:{mqtt_port}")),
            ("VIGIE_DATA_DIR", dir.join("cloud").display().to_string()),
            (
                "VIGIE_JWT_SECRET",
                "bulk-drain-secret-0123456789abcdef".into(),
            ),
            ("VIGIE_LOG_FORMAT", "json".into()),
        ];
        let child = Command::new(cloud_bin())
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("cloud.log")).unwrap())
            .spawn()
            .expect("start vigie-cloud");
        let cloud = Cloud {
            _proc: Proc(child),
            base: format!("http://127.0.0.1:{port}"),
            ops: format!("http://127.0.0.1:{ops_port}"),
            mqtt_port,
            env,
        };
        let url = format!("{}/readyz", cloud.base);
        wait_for("vigie-cloud /readyz", WAIT, || {
            call("GET", &url, None, None).0 == 200
        });
        cloud
    }

    fn cli(&self, args: &[&str], stdin: &str) -> String {
        let mut child = Command::new(cloud_bin())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "vigie-cloud {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// `vigie_ingest_inserted_total`: rows ingested over MQTT (not over the bulk API).
    fn mqtt_inserted(&self) -> u64 {
        let (_, text) = call("GET", &format!("{}/metrics", self.ops), None, None);
        text.lines()
            .filter(|l| l.starts_with("vigie_ingest_inserted_total"))
            .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// Every event id the API lists.
    fn event_ids(&self, token: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}/api/events?limit=1000", self.base);
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={}", encode(c)));
            }
            let (status, body) = call("GET", &url, Some(token), None);
            assert_eq!(status, 200, "{url}: {body}");
            let page = json(&body);
            for item in page["items"].as_array().unwrap() {
                ids.push(item["id"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return ids,
            }
        }
    }

    /// Whether the newest events listed include `id`.
    fn has_recent(&self, token: &str, id: &str) -> bool {
        let url = format!("{}/api/events?limit=20", self.base);
        let (_, body) = call("GET", &url, Some(token), None);
        json(&body)["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["id"] == id))
    }
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

struct Edge {
    proc: Proc,
    base: String,
}

impl Edge {
    fn start(dir: &Path, run: u32, mqtt_port: u16, api: Option<(&str, &str)>) -> Edge {
        let port = free_port();
        let config = dir.join("edge.toml");
        std::fs::write(
            &config,
            "[device]\nid = \"pi-bulk\"\n[api]\nbulk_threshold = 500\nbulk_batch = 100\n\
             [outbox]\ncreate_key = true\n[sensors]\nbackend = \"simulated\"\n\
             [[sensors.input]]\nid = \"mat-1\"\nkind = \"button_pressed\"\n",
        )
        .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigie-edge"));
        cmd.args(["run", "--config"])
            .arg(&config)
            .env(
                "VIGIE_EDGE_MQTT_URL",
                format!("mqtt://127.0.0.1:{mqtt_port}"),
            )
            .env("VIGIE_EDGE_DATA_DIR", dir.join("edge-data"))
            // The bundle `provisioned_cloud` made: the embedded broker authenticates every client.
            .env(
                "VIGIE_EDGE_MQTT_PASSWORD_FILE",
                dir.join("bundles/pi-bulk/mqtt.password"),
            )
            .env("VIGIE_EDGE_HTTP_LISTEN", format!("127.0.0.1:{port}"))
            .env("VIGIE_LOG_FORMAT", "json")
            .env("RUST_LOG", "info,vigie_edge=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("edge-run{run}.log"))).unwrap());
        if let Some((url, token)) = api {
            cmd.env("VIGIE_EDGE_API_URL", url)
                .env("VIGIE_EDGE_TOKEN", token);
        }
        let edge = Edge {
            proc: Proc(cmd.spawn().expect("start vigie-edge")),
            base: format!("http://127.0.0.1:{port}"),
        };
        let url = format!("{}/healthz", edge.base);
        wait_for("vigie-edge /healthz", WAIT, || {
            call("GET", &url, None, None).0 == 200
        });
        edge
    }

    /// `POST /sim/button`: the durable event's id.
    fn press(&self) -> String {
        let (status, body) = call("POST", &format!("{}/sim/button", self.base), None, None);
        assert_eq!(status, 201, "{body}");
        json(&body)["id"].as_str().unwrap().to_owned()
    }

    fn readyz(&self) -> Value {
        json(&call("GET", &format!("{}/readyz", self.base), None, None).1)
    }

    fn terminate(self) {
        let pid = self.proc.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let mut proc = self.proc;
        wait_for("vigie-edge to exit", WAIT, || {
            proc.0.try_wait().unwrap().is_some()
        });
    }
}

/// A cloud with the device `pi-bulk` and an admin: `(cloud, device token, admin token)`.
fn provisioned_cloud(dir: &Path) -> (Cloud, String, String) {
    let cloud = Cloud::start(dir);
    let bundles = dir.join("bundles").display().to_string();
    let device_token = cloud.cli(&["device", "add", "pi-bulk", "--out", &bundles], "");
    cloud.cli(
        &[
            "user",
            "add",
            "admin",
            "--role",
            "admin",
            "--password-stdin",
        ],
        "correct horse battery\n",
    );
    let (status, body) = call(
        "POST",
        &format!("{}/api/auth/login", cloud.base),
        None,
        Some(&serde_json::json!({"username": "admin", "password": "correct horse battery"})),
    );
    assert_eq!(status, 200, "login: {body}");
    let admin = json(&body)["access_token"].as_str().unwrap().to_owned();
    (cloud, device_token, admin)
}

/// Run 1: the broker is unreachable and no API is configured: `n` events queue up. Their ids.
fn queue_backlog(dir: &Path, n: usize) -> Vec<String> {
    let edge = Edge::start(dir, 1, free_port(), None);
    let accepted: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| (0..n / 4).map(|_| edge.press()).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(edge.readyz()["queue_depth"], n);
    edge.terminate();
    accepted
}

/// Every accepted event is listed by the cloud, once.
fn assert_arrived_once(cloud: &Cloud, admin: &str, accepted: &[String]) {
    let ids = cloud.event_ids(admin);
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "no event is listed twice");
    let expected: HashSet<&String> = accepted.iter().collect();
    assert_eq!(unique, expected, "every accepted event arrived");
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn a_large_backlog_drains_over_http_exactly_once_while_a_live_event_arrives_over_mqtt_within_2_s() {
    let dir = tempfile::tempdir().unwrap();
    let (cloud, device_token, admin) = provisioned_cloud(dir.path());
    let mut accepted = queue_backlog(dir.path(), BACKLOG);

    // Run 2: the cloud's broker and API. The old events drain over HTTP; a live event goes over
    // MQTT at once.
    let mqtt_before = cloud.mqtt_inserted();
    let edge = Edge::start(
        dir.path(),
        2,
        cloud.mqtt_port,
        Some((&cloud.base, &device_token)),
    );
    let depth_at_fire = edge.readyz()["queue_depth"].as_u64().unwrap();
    let fired = Instant::now();
    let live = edge.press();
    wait_for(
        "the live event in the cloud",
        Duration::from_secs(2),
        || cloud.has_recent(&admin, &live),
    );
    let live_latency = fired.elapsed();
    accepted.push(live);

    wait_for("an empty outbox", WAIT, || {
        edge.readyz()["queue_depth"] == 0
    });
    let ready = edge.readyz();
    assert_eq!(ready["components"]["api"]["state"], "ready", "{ready}");

    assert_arrived_once(&cloud, &admin, &accepted);
    let over_mqtt = cloud.mqtt_inserted() - mqtt_before;
    eprintln!(
        "{} events, {over_mqtt} over MQTT; live event fired at queue_depth {depth_at_fire}, \
         arrived after {live_latency:?}",
        accepted.len()
    );
    assert!(
        over_mqtt < (BACKLOG as u64) / 4,
        "most events went over HTTP: {over_mqtt} of {} over MQTT",
        BACKLOG + 1
    );
    assert!(
        depth_at_fire > 500,
        "the live event was fired during the drain (queue_depth {depth_at_fire}); \
         latency {live_latency:?}"
    );
    edge.terminate();
    let log = std::fs::read_to_string(dir.path().join("edge-run2.log")).unwrap();
    assert!(
        !log.contains("\"level\":\"ERROR\""),
        "no error logged:\n{log}"
    );
}

#[test]
fn a_refused_token_is_logged_once_and_the_backlog_goes_over_mqtt() {
    let dir = tempfile::tempdir().unwrap();
    let (cloud, _, admin) = provisioned_cloud(dir.path());
    let accepted = queue_backlog(dir.path(), 600);

    let mqtt_before = cloud.mqtt_inserted();
    let edge = Edge::start(
        dir.path(),
        2,
        cloud.mqtt_port,
        Some((&cloud.base, "not-the-device-token")),
    );
    wait_for("an empty outbox", WAIT, || {
        edge.readyz()["queue_depth"] == 0
    });
    let ready = edge.readyz();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["components"]["api"]["state"], "degraded", "{ready}");
    assert_arrived_once(&cloud, &admin, &accepted);
    assert_eq!(
        cloud.mqtt_inserted() - mqtt_before,
        600,
        "everything over MQTT"
    );
    edge.terminate();
    let log = std::fs::read_to_string(dir.path().join("edge-run2.log")).unwrap();
    assert_eq!(count(&log, "refused the device token (401)"), 1, "{log}");
}

#[test]
fn an_unreachable_api_is_shown_degraded_once_and_mqtt_takes_the_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let (cloud, device_token, admin) = provisioned_cloud(dir.path());
    let accepted = queue_backlog(dir.path(), 600);

    let dead_api = format!("http://127.0.0.1:{}", free_port());
    let edge = Edge::start(
        dir.path(),
        2,
        cloud.mqtt_port,
        Some((&dead_api, &device_token)),
    );
    wait_for("an empty outbox", WAIT, || {
        edge.readyz()["queue_depth"] == 0
    });
    let ready = edge.readyz();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["components"]["api"]["state"], "degraded", "{ready}");
    assert_arrived_once(&cloud, &admin, &accepted);
    edge.terminate();
    let log = std::fs::read_to_string(dir.path().join("edge-run2.log")).unwrap();
    assert_eq!(count(&log, "the cloud API is unreachable"), 1, "{log}");
}
