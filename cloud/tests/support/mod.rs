//! End-to-end harness: real `vigie-cloud` and `vigie-edge` processes, the machine's PostgreSQL and
//! Mosquitto (each test with its own database, topic prefix and device ids), or throwaway brokers the
//! test starts itself. Loopback only.

#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn unique(tag: &str) -> String {
    format!("{tag}{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// Waits for `cond`, polling; panics with `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// The workspace's binaries, next to this test's `vigie-cloud`.
pub fn bin(name: &str) -> PathBuf {
    let cloud = PathBuf::from(env!("CARGO_BIN_EXE_vigie-cloud"));
    let path = cloud.with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (`cargo build --workspace --bins`, which `make test` does)",
        path.display()
    );
    path
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A child process killed (SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Proc {
        let out = std::fs::File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        cmd.stdout(out).stderr(err).stdin(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            child,
            name: name.to_owned(),
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits until `url` answers 200, failing at once if the process exits.
    pub fn wait_until_ok(&mut self, url: &str, timeout: Duration) {
        let agent = agent();
        let what = format!("{} at {url}", self.name);
        wait_for(&what, timeout, || {
            self.assert_running();
            agent
                .get(url)
                .call()
                .map(|r| r.status() == 200)
                .unwrap_or(false)
        });
    }

    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early: {status}", self.name);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A PostgreSQL database of its own on the machine's server, dropped at the end.
pub struct PgDatabase {
    pub name: String,
}

pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn psql(url: &str, sql: &str) -> String {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let mut conn = PgConnection::establish(url).unwrap_or_else(|e| {
        panic!("PostgreSQL is needed at 127.0.0.1:5432 (trust auth, user postgres): {e}")
    });
    diesel::sql_query(sql)
        .execute(&mut conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    String::new()
}

impl PgDatabase {
    pub fn create() -> PgDatabase {
        let name = unique("vigie_e2e_");
        psql(PG_ADMIN, &format!("CREATE DATABASE {name}"));
        PgDatabase { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// `SELECT count(*)` of events, and of distinct ids.
    pub fn event_counts(&self) -> (i64, i64) {
        pg_event_counts(&self.url())
    }
}

/// `SELECT count(*)` of events, and of distinct ids, in the PostgreSQL database at `url`.
pub fn pg_event_counts(url: &str) -> (i64, i64) {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Counts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        distinct_ids: i64,
    }
    let mut conn = PgConnection::establish(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let c: Counts = diesel::sql_query(
        "SELECT count(*) AS total, count(DISTINCT id) AS distinct_ids FROM events",
    )
    .get_result(&mut conn)
    .unwrap();
    (c.total, c.distinct_ids)
}

/// A PostgreSQL server of the test's own, so it can be crashed without touching the machine's: a
/// cluster made by `initdb` under `DIR/postgres` (trust auth, user `postgres`), on a free loopback
/// port and a Unix socket in that directory. `crash` stops it with `pg_ctl -m immediate` (no
/// shutdown checkpoint, like a power cut of the server process), `start` brings it back on the same
/// port. The server runs as the `postgres` user when the test runs as root (initdb refuses root).
/// Stopped (immediate) when dropped. Its log is `DIR/postgres/server.log`.
pub struct LocalPostgres {
    pub port: u16,
    root: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    running: bool,
}

impl LocalPostgres {
    /// `initdb`, then `start`.
    pub fn start(dir: &Path) -> LocalPostgres {
        use std::os::unix::fs::PermissionsExt;
        let bin = Self::bin_dir();
        let root = dir.join("postgres");
        std::fs::create_dir_all(&root).unwrap();
        if Self::as_root() {
            // The postgres user must reach its directory through the test's (0700) temporary one.
            let mut perms = std::fs::metadata(dir).unwrap().permissions();
            perms.set_mode(perms.mode() | 0o011);
            std::fs::set_permissions(dir, perms).unwrap();
            let out = Command::new("chown")
                .arg("-R")
                .arg("postgres:postgres")
                .arg(&root)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "chown {}: {}",
                root.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut pg = LocalPostgres {
            port: free_port(),
            data: root.join("data"),
            root,
            bin,
            running: false,
        };
        pg.run(
            "initdb",
            &[
                "-D".as_ref(),
                pg.data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        pg.restart();
        pg
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl start -w` on the same port (after `initdb` or `crash`).
    pub fn restart(&mut self) {
        let options = format!(
            "-p {} -k '{}' -c listen_addresses=127.0.0.1",
            self.port,
            self.root.display()
        );
        let log = self.root.join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "start".as_ref(),
            ],
        );
        self.running = true;
    }

    /// `pg_ctl stop -m immediate`: the server quits at once, without a shutdown checkpoint, and
    /// every connection breaks.
    pub fn crash(&mut self) {
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        );
        self.running = false;
    }

    /// `SELECT count(*)` of events, and of distinct ids.
    pub fn event_counts(&self) -> (i64, i64) {
        pg_event_counts(&self.url())
    }

    /// The newest `/usr/lib/postgresql/VERSION/bin` that has `initdb`.
    fn bin_dir() -> PathBuf {
        let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries are needed under /usr/lib/postgresql")
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .collect();
        found.sort();
        found.pop().expect("no /usr/lib/postgresql/*/bin/initdb").1
    }

    fn as_root() -> bool {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }

    /// Runs a PostgreSQL program (as the postgres user when root) and panics with its output if it
    /// fails.
    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) {
        let mut cmd = self.command(program);
        // pg_ctl start leaves the server attached to these pipes unless they are files: use files.
        let out_path = self.root.join(format!("{program}.out"));
        let out = std::fs::File::create(&out_path).unwrap();
        let status = cmd
            .args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            status.success(),
            "{program} {args:?} failed ({status}):\n{}",
            std::fs::read_to_string(&out_path).unwrap_or_default()
        );
    }

    /// `BIN/program`, through `runuser -u postgres --` when root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if Self::as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        if self.running {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        psql(
            PG_ADMIN,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// A throwaway Mosquitto on a free loopback port (persistence off), from the committed config.
pub struct Mosquitto {
    pub port: u16,
    conf: PathBuf,
    log: PathBuf,
    pub proc: Option<Proc>,
}

impl Mosquitto {
    pub fn start(dir: &Path) -> Mosquitto {
        let port = free_port();
        let template = std::fs::read_to_string(
            workspace().join("cloud/tests/fixtures/mosquitto-plain.conf.in"),
        )
        .unwrap();
        let conf = dir.join(format!("mosquitto-{port}.conf"));
        std::fs::write(&conf, template.replace("{PORT}", &port.to_string())).unwrap();
        let mut m = Mosquitto {
            port,
            conf,
            log: dir.join(format!("mosquitto-{port}.log")),
            proc: None,
        };
        m.restart();
        m
    }

    pub fn restart(&mut self) {
        let mut cmd = Command::new("mosquitto");
        cmd.arg("-c").arg(&self.conf);
        let log = self
            .log
            .with_extension(format!("{}.log", Instant::now().elapsed().as_nanos()));
        self.proc = Some(Proc::spawn("mosquitto", cmd, &log));
        let port = self.port;
        wait_for("mosquitto to listen", Duration::from_secs(10), || {
            port_open(port)
        });
    }

    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
    }
}

/// A blocking HTTP agent that returns non-2xx answers instead of failing.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

pub fn get_json(agent: &ureq::Agent, url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = agent.get(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub fn post_json(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let mut req = agent.post(url).header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req
        .send(body.to_string())
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A counter from `GET /metrics`.
pub fn metric(cloud: &Cloud, name: &str) -> u64 {
    let mut resp = agent()
        .get(&format!("{}/metrics", cloud.base))
        .call()
        .unwrap();
    let text = resp.body_mut().read_to_string().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
        .parse()
        .unwrap()
}

/// A running `vigie-cloud serve` with its settings.
pub struct Cloud {
    pub proc: Proc,
    pub base: String,
    pub env: Vec<(String, String)>,
    pub dir: PathBuf,
}

impl Cloud {
    /// `env` holds the `VIGIE_*` settings; `VIGIE_LISTEN` and `VIGIE_DATA_DIR` are added here.
    pub fn start(dir: &Path, mut env: Vec<(String, String)>) -> Cloud {
        let port = free_port();
        env.push(("VIGIE_LISTEN".into(), format!("127.0.0.1:{port}")));
        env.push((
            "VIGIE_DATA_DIR".into(),
            dir.join("cloud").display().to_string(),
        ));
        env.push((
            "VIGIE_JWT_SECRET".into(),
            "e2e-secret-of-some-length-0123456789".into(),
        ));
        let mut cloud = Cloud {
            proc: Proc::spawn("vigie-cloud", Command::new("true"), &dir.join("unused.log")),
            base: format!("http://127.0.0.1:{port}"),
            env,
            dir: dir.to_owned(),
        };
        cloud.restart();
        cloud
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("vigie-cloud"));
        cmd.args(args)
            .env("VIGIE_LOG_FORMAT", "json")
            .env("RUST_LOG", "info");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn restart(&mut self) {
        self.proc.kill9();
        let log = self.dir.join(format!("cloud-{}.log", unique("")));
        self.proc = Proc::spawn("vigie-cloud", self.command(&["serve"]), &log);
        self.proc
            .wait_until_ok(&format!("{}/readyz", self.base), Duration::from_secs(60));
    }

    /// `vigie-cloud user add NAME --role ROLE --password-stdin`.
    pub fn add_user(&self, name: &str, role: &str, password: &str) {
        let mut cmd = self.command(&["user", "add", name, "--role", role, "--password-stdin"]);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "user add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `vigie-cloud device add ID`: the token it prints.
    pub fn add_device(&self, id: &str) -> String {
        let out = self.command(&["device", "add", id]).output().unwrap();
        assert!(
            out.status.success(),
            "device add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    pub fn login(&self, user: &str, password: &str) -> String {
        let (status, body) = post_json(
            &agent(),
            &format!("{}/api/auth/login", self.base),
            None,
            &serde_json::json!({"username": user, "password": password}),
        );
        assert_eq!(status, 200, "login: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }
}

/// A running `vigie-edge` with simulated sensors.
pub struct Edge {
    pub proc: Proc,
    pub device: String,
    pub base: String,
    env: Vec<(String, String)>,
    dir: PathBuf,
}

impl Edge {
    pub fn start(dir: &Path, device: &str, mqtt_url: &str, prefix: &str) -> Edge {
        let port = free_port();
        let env = vec![
            ("VIGIE_EDGE_DEVICE_ID".into(), device.to_owned()),
            ("VIGIE_EDGE_MQTT_URL".into(), mqtt_url.to_owned()),
            (
                "VIGIE_EDGE_DATA_DIR".into(),
                dir.join(device).display().to_string(),
            ),
            ("VIGIE_EDGE_HTTP_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("VIGIE_TOPIC_PREFIX".into(), prefix.to_owned()),
        ];
        let mut edge = Edge {
            proc: Proc::spawn("vigie-edge", Command::new("true"), &dir.join("unused.log")),
            device: device.to_owned(),
            base: format!("http://127.0.0.1:{port}"),
            env,
            dir: dir.to_owned(),
        };
        edge.restart();
        edge
    }

    pub fn restart(&mut self) {
        self.proc.kill9();
        let mut cmd = Command::new(bin("vigie-edge"));
        cmd.arg("run")
            .arg("--config")
            .arg(workspace().join("edge/examples/simulated.toml"))
            .env("VIGIE_LOG_FORMAT", "json")
            .env("RUST_LOG", "info");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let log = self
            .dir
            .join(format!("edge-{}-{}.log", self.device, unique("")));
        self.proc = Proc::spawn("vigie-edge", cmd, &log);
        self.proc
            .wait_until_ok(&format!("{}/healthz", self.base), Duration::from_secs(30));
    }

    /// `POST /sim/{kind}`: the accepted event's (id, seq).
    pub fn fire(&self, agent: &ureq::Agent, kind: &str) -> (String, u64) {
        let (status, body) = post_json(
            agent,
            &format!("{}/sim/{kind}", self.base),
            None,
            &Value::Null,
        );
        assert_eq!(status, 201, "sim {kind} on {}: {body}", self.device);
        (
            body["id"].as_str().unwrap().to_owned(),
            body["seq"].as_u64().unwrap(),
        )
    }
}

/// A WebSocket client on `/api/stream`, reading on its own thread; frames land in a shared vector.
pub struct StreamClient {
    pub frames: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl StreamClient {
    pub fn connect(base: &str, token: &str) -> StreamClient {
        let url = format!("{}/api/stream", base.replacen("http://", "ws://", 1));
        let mut request = tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse().unwrap());
        let (mut socket, response) = tungstenite::connect(request).expect("websocket connect");
        assert_eq!(response.status().as_u16(), 101);
        let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = frames.clone();
        std::thread::spawn(move || loop {
            match socket.read() {
                Ok(tungstenite::Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).expect("frames are JSON");
                    sink.lock().unwrap().push(v);
                }
                Ok(tungstenite::Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        });
        StreamClient { frames }
    }

    pub fn event_ids(&self) -> Vec<String> {
        self.frames
            .lock()
            .unwrap()
            .iter()
            .filter(|f| f["type"] == "event")
            .map(|f| f["data"]["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Every event the API lists, page by page, checking the documented order on the way.
pub fn list_all_events(base: &str, token: &str, page: u32) -> Vec<Value> {
    let agent = agent();
    let mut all: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/events?limit={page}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", encode(c)));
        }
        let (status, body) = get_json(&agent, &url, Some(token));
        assert_eq!(status, 200, "{url}: {body}");
        all.extend(body["items"].as_array().unwrap().iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    for pair in all.windows(2) {
        let key = |v: &Value| {
            (
                v["occurred_at"].as_str().unwrap().to_owned(),
                v["id"].as_str().unwrap().to_owned(),
            )
        };
        assert!(key(&pair[0]) > key(&pair[1]), "not newest first: {pair:?}");
    }
    all
}

/// Percent-encodes a query value.
pub fn encode(v: &str) -> String {
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
