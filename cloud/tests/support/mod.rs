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

/// Whether this is a soak run (`make soak` sets `VIGIE_SOAK=1`): the fault tests then run at their
/// full counts instead of the reduced ones `make test` runs.
pub fn soak() -> bool {
    std::env::var("VIGIE_SOAK").is_ok_and(|v| v == "1")
}

/// `reduced` in `make test`, `full` in `make soak`.
pub fn scale<T>(reduced: T, full: T) -> T {
    if soak() {
        full
    } else {
        reduced
    }
}

/// A small seeded random generator (SplitMix64) for fault timings. The seed comes from
/// `VIGIE_TEST_SEED` when set (to replay a failure), else from the clock, and is printed.
pub struct Rng(u64);

impl Rng {
    pub fn seeded(test: &str) -> Rng {
        let seed = std::env::var("VIGIE_TEST_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{test}: seed {seed} (replay with VIGIE_TEST_SEED={seed})");
        Rng(seed)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
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

/// The workspace's binaries, in the profile directory this test binary runs from
/// (`target/debug/deps/TEST` → `target/debug/NAME`), whichever crate the test belongs to.
pub fn bin(name: &str) -> PathBuf {
    let test = std::env::current_exe().expect("the test binary's path");
    let profile = test
        .parent()
        .and_then(Path::parent)
        .expect("a test binary lives in target/PROFILE/deps");
    let path = profile.join(name);
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

    /// Waits for the process to exit by itself; panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut status = None;
        let what = format!("{} to exit", self.name);
        wait_for(&what, timeout, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status.unwrap()
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

/// One stored event of a device, as the `events` table holds it.
#[derive(Debug, diesel::QueryableByName)]
pub struct StoredEvent {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub id: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub seq: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub occurred_at: i64,
}

/// Every event of `device` in the PostgreSQL database at `url`, by `seq` (then id).
pub fn pg_device_events(url: &str, device: &str) -> Vec<StoredEvent> {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let mut conn = PgConnection::establish(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    diesel::sql_query("SELECT id, seq, occurred_at FROM events WHERE device = $1 ORDER BY seq, id")
        .bind::<diesel::sql_types::Text, _>(device)
        .load(&mut conn)
        .unwrap()
}

/// A PostgreSQL server of the test's own, so it can be crashed without touching the machine's: a
/// cluster made by `initdb` under `DIR/postgres` (trust auth, user `postgres`), on a free loopback
/// port and a Unix socket in that directory. `crash` stops it with `pg_ctl -m immediate` (no
/// shutdown checkpoint, like a power cut of the server process), `stop` with `pg_ctl -m fast` (an
/// orderly shutdown that ends every session), `restart` brings it back on the same port. The server runs as the `postgres` user when the test runs as root (initdb refuses root).
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

    /// `pg_ctl stop -m fast`: an orderly shutdown; every session is ended and new connections are
    /// refused until `restart`.
    pub fn stop(&mut self) {
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
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

/// `openssl` with `args` in `dir`, which must succeed.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// In `dir/pki`: a CA (`ca.pem`, `ca.key`), a server certificate it signs (`server.pem`,
/// `server.key`) for the subject alternative names `san` (`IP:127.0.0.1,DNS:broker`), and an
/// unrelated CA (`other-ca.pem`).
pub fn make_pki(dir: &Path, san: &str) -> PathBuf {
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for (name, cn) in [("ca", "vigie-test-ca"), ("other-ca", "someone-else")] {
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        let (key, pem, subj) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN={cn}"),
        );
        args.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
        openssl(&pki, &args);
    }
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&pki, &args);
    std::fs::write(pki.join("san.ext"), format!("subjectAltName={san}\n")).unwrap();
    openssl(
        &pki,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    pki
}

/// The uid and gid of the `mosquitto` user, which Mosquitto started as root switches to.
pub fn mosquitto_user() -> (u32, u32) {
    let id = |flag: &str| {
        let out = Command::new("id")
            .args([flag, "mosquitto"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the mosquitto user exists (Debian package mosquitto)"
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    (id("-u"), id("-g"))
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

/// Connects as `client_id` (with `credentials`) and waits for the broker's answer: `Ok` on a
/// ConnAck, `Err` with what happened otherwise (rumqttd drops a refused client without a ConnAck).
pub fn try_connect(
    port: u16,
    client_id: &str,
    credentials: Option<(&str, &str)>,
) -> Result<rumqttc::Client, String> {
    let mut options = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    if let Some((user, password)) = credentials {
        options.set_credentials(user, password);
    }
    connect_with(options)
}

/// Connects with `options` and waits for the broker's answer, as [`try_connect`] does.
pub fn connect_with(options: rumqttc::MqttOptions) -> Result<rumqttc::Client, String> {
    use rumqttc::{Client, ConnectionError, Event, Packet};
    let (client, mut connection) = Client::new(options, 16);
    let answer = connection
        .recv_timeout(Duration::from_secs(10))
        .map_err(|e| format!("no answer: {e:?}"))?;
    match answer {
        Ok(Event::Incoming(Packet::ConnAck(_))) => {
            // Keep the event loop running for publishes.
            std::thread::spawn(move || for _ in connection.iter() {});
            Ok(client)
        }
        Ok(other) => Err(format!("unexpected {other:?}")),
        Err(ConnectionError::ConnectionRefused(code)) => Err(format!("refused: {code:?}")),
        Err(e) => Err(format!("{e}")),
    }
}

pub fn assert_refused(what: &str, result: Result<rumqttc::Client, String>) {
    match result {
        Ok(_) => panic!("{what}: the embedded broker accepted the connection"),
        Err(e) => eprintln!("{what}: refused ({e})"),
    }
}

/// Keeps the test process's own `VIGIE_*` (`VIGIE_SOAK`, a developer's shell) from a child: the
/// cloud refuses a `VIGIE_*` name it does not know, and a child gets only what its test sets.
pub fn without_inherited_settings(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("VIGIE_") {
            cmd.env_remove(name);
        }
    }
}

/// A counter from `GET /metrics`.
pub fn metric(cloud: &Cloud, name: &str) -> u64 {
    let mut resp = agent()
        .get(&format!("{}/metrics", cloud.ops))
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
/// The settings of a cloud on an external database and broker: a fresh ingest client id (its
/// persistent session is its own) and the test's topic prefix.
pub fn external_services(db_url: &str, mqtt_url: &str, prefix: &str) -> Vec<(String, String)> {
    vec![
        ("VIGIE_DATABASE_URL".into(), db_url.to_owned()),
        ("VIGIE_MQTT_URL".into(), mqtt_url.to_owned()),
        ("VIGIE_MQTT_CLIENT_ID".into(), unique("cloud-")),
        ("VIGIE_TOPIC_PREFIX".into(), prefix.to_owned()),
    ]
}

pub struct Cloud {
    pub proc: Proc,
    pub base: String,
    /// The metrics listener: `/metrics` and the detailed `/readyz`.
    pub ops: String,
    pub env: Vec<(String, String)>,
    pub dir: PathBuf,
}

impl Cloud {
    /// `env` holds the `VIGIE_*` settings; `VIGIE_LISTEN` and `VIGIE_DATA_DIR` are added here.
    pub fn start(dir: &Path, mut env: Vec<(String, String)>) -> Cloud {
        let port = free_port();
        env.push(("VIGIE_LISTEN".into(), format!("127.0.0.1:{port}")));
        let ops_port = free_port();
        env.push((
            "VIGIE_METRICS_LISTEN".into(),
            format!("127.0.0.1:{ops_port}"),
        ));
        if !env.iter().any(|(k, _)| k == "VIGIE_RTSP_LISTEN") {
            // Each cloud its own RTSP port: tests run in parallel.
            env.push((
                "VIGIE_RTSP_LISTEN".into(),
                format!("127.0.0.1:{}", free_port()),
            ));
        }
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
            ops: format!("http://127.0.0.1:{ops_port}"),
            env,
            dir: dir.to_owned(),
        };
        cloud.restart();
        cloud
    }

    /// A cloud on the embedded defaults, its broker on a free port.
    pub fn start_embedded(dir: &Path) -> Cloud {
        let broker = format!("127.0.0.1:{}", free_port());
        Cloud::start(dir, vec![("VIGIE_MQTT_LISTEN".into(), broker)])
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("vigie-cloud"));
        without_inherited_settings(&mut cmd);
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

    /// The log of the newest process (each `restart` writes a new `cloud-*.log` in `dir`).
    pub fn log(&self) -> String {
        let mut logs: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("cloud-"))
            .collect();
        logs.sort_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
        logs.last()
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Sets (`Some`) or removes (`None`) a setting for the next `restart`.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        set_env(&mut self.env, key, value);
    }

    /// The device as `GET /api/devices` shows it, if listed.
    pub fn device(&self, token: &str, id: &str) -> Option<Value> {
        let url = format!("{}/api/devices", self.base);
        let (status, devices) = get_json(&agent(), &url, Some(token));
        if status != 200 {
            return None;
        }
        devices.as_array()?.iter().find(|d| d["id"] == id).cloned()
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

    /// `vigie-cloud device add ID --out DIR/bundles`: the token it prints. The bundle (the Pi's
    /// MQTT password and API token) is at [`Cloud::bundle`].
    pub fn add_device(&self, id: &str) -> String {
        self.bundle_command("add", id)
    }

    /// `vigie-cloud device rotate ID --out DIR/bundles`: the new API token it prints; the new
    /// bundle replaces the old one at [`Cloud::bundle`].
    pub fn rotate_device(&self, id: &str) -> String {
        self.bundle_command("rotate", id)
    }

    /// `vigie-cloud device ACTION ID --out DIR/bundles`, which must succeed: what it prints.
    fn bundle_command(&self, action: &str, id: &str) -> String {
        let bundles = self.dir.join("bundles").display().to_string();
        let out = self
            .command(&["device", action, id, "--out", &bundles])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "device {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// The provisioning bundle `add_device` wrote for `id` (`api.token`, `mqtt.password`,
    /// `live.token`).
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.dir.join("bundles").join(id)
    }

    /// The edge settings that give it `id`'s MQTT identity from its bundle (the embedded broker
    /// authenticates every client).
    pub fn edge_credentials(&self, id: &str) -> Vec<(String, String)> {
        let password = self.bundle(id).join("mqtt.password");
        assert!(
            password.exists(),
            "{id} is not provisioned: call add_device first"
        );
        let live = self.bundle(id).join("live.token");
        vec![
            (
                "VIGIE_EDGE_MQTT_PASSWORD_FILE".into(),
                password.display().to_string(),
            ),
            // Read by the edge only when it pushes a live stream.
            (
                "VIGIE_EDGE_LIVE_TOKEN_FILE".into(),
                live.display().to_string(),
            ),
        ]
    }

    /// `id`'s live-push token, from the bundle `add_device` wrote.
    pub fn live_token(&self, id: &str) -> String {
        std::fs::read_to_string(self.bundle(id).join("live.token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// `id`'s MQTT password (username = client id = `id`), for a test's own MQTT client.
    pub fn mqtt_password(&self, id: &str) -> String {
        std::fs::read_to_string(self.bundle(id).join("mqtt.password"))
            .unwrap()
            .trim()
            .to_owned()
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

/// `vigie-cloud` on the PostgreSQL database at `db_url` and the Mosquitto on `broker_port`, under
/// `prefix`, with the user `admin`: (cloud, admin token).
pub fn cloud_with_admin(
    dir: &Path,
    db_url: &str,
    broker_port: u16,
    prefix: &str,
) -> (Cloud, String) {
    let cloud = Cloud::start(
        dir,
        vec![
            ("VIGIE_DATABASE_URL".into(), db_url.to_owned()),
            (
                "VIGIE_MQTT_URL".into(),
                format!("mqtt://127.0.0.1:{broker_port}"),
            ),
            ("VIGIE_MQTT_CLIENT_ID".into(), unique("cloud-")),
            ("VIGIE_TOPIC_PREFIX".into(), prefix.to_owned()),
        ],
    );
    cloud.add_user("admin", "admin", "correct horse battery");
    let token = cloud.login("admin", "correct horse battery");
    (cloud, token)
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
        Edge::start_with(dir, device, mqtt_url, prefix, Vec::new())
    }

    /// A device provisioned on `cloud` (its bundle's MQTT password), for the embedded broker.
    pub fn start_provisioned(
        dir: &Path,
        cloud: &Cloud,
        device: &str,
        mqtt_url: &str,
        prefix: &str,
    ) -> Edge {
        cloud.add_device(device);
        Edge::start_with(
            dir,
            device,
            mqtt_url,
            prefix,
            cloud.edge_credentials(device),
        )
    }

    /// `start` with `extra` settings on top.
    pub fn start_with(
        dir: &Path,
        device: &str,
        mqtt_url: &str,
        prefix: &str,
        extra: Vec<(String, String)>,
    ) -> Edge {
        let port = free_port();
        let mut env = vec![
            ("VIGIE_EDGE_DEVICE_ID".into(), device.to_owned()),
            ("VIGIE_EDGE_MQTT_URL".into(), mqtt_url.to_owned()),
            (
                "VIGIE_EDGE_DATA_DIR".into(),
                dir.join(device).display().to_string(),
            ),
            ("VIGIE_EDGE_HTTP_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("VIGIE_TOPIC_PREFIX".into(), prefix.to_owned()),
        ];
        env.extend(extra);
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

    /// Sets (`Some`) or removes (`None`) a setting for the next `restart`.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        set_env(&mut self.env, key, value);
    }

    /// The number of events in the edge's outbox not yet confirmed by the cloud (its `/readyz`).
    pub fn queue_depth(&self) -> u64 {
        let (_, body) = get_json(&agent(), &format!("{}/readyz", self.base), None);
        body["queue_depth"]
            .as_u64()
            .unwrap_or_else(|| panic!("no queue_depth in the edge's /readyz: {body}"))
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

fn set_env(env: &mut Vec<(String, String)>, key: &str, value: Option<&str>) {
    env.retain(|(k, _)| k != key);
    if let Some(v) = value {
        env.push((key.to_owned(), v.to_owned()));
    }
}

/// What one `POST /sim/{kind}` got from an edge.
#[derive(Debug)]
pub enum Fire {
    /// 201: the event is durable in the outbox, with this (id, seq).
    Accepted(String, u64),
    /// 503: the outbox refused the event.
    Refused,
    /// No answer: the edge died (or was not there). The event may or may not be stored.
    NoAnswer,
}

/// `POST {edge}/sim/{kind}` without panicking when the edge is gone (the edge's base URL, so a
/// firing thread needs no borrow of the `Edge` a test kills and restarts).
pub fn fire_at(agent: &ureq::Agent, edge: &str, kind: &str) -> Fire {
    let url = format!("{edge}/sim/{kind}");
    let mut resp = match agent
        .post(&url)
        .header("Content-Type", "application/json")
        .send("null")
    {
        Ok(r) => r,
        Err(_) => return Fire::NoAnswer,
    };
    let status = resp.status().as_u16();
    let text = match resp.body_mut().read_to_string() {
        Ok(t) => t,
        Err(_) => return Fire::NoAnswer,
    };
    match status {
        201 => {
            let body: Value = serde_json::from_str(&text).unwrap();
            Fire::Accepted(
                body["id"].as_str().unwrap().to_owned(),
                body["seq"].as_u64().unwrap(),
            )
        }
        503 => Fire::Refused,
        _ => panic!("POST {url}: {status} {text}"),
    }
}

/// What a test fired at one edge, over all its runs.
#[derive(Debug, Default)]
pub struct Fired {
    /// (id, seq) of every event answered 201.
    pub accepted: Vec<(String, u64)>,
    /// Requests the edge never answered (it was killed under them).
    pub unanswered: usize,
    /// Requests answered 503.
    pub refused: usize,
}

impl Fired {
    pub fn record(&mut self, fire: Fire) {
        match fire {
            Fire::Accepted(id, seq) => self.accepted.push((id, seq)),
            Fire::Refused => self.refused += 1,
            Fire::NoAnswer => self.unanswered += 1,
        }
    }

    pub fn extend(&mut self, other: Fired) {
        self.accepted.extend(other.accepted);
        self.unanswered += other.unanswered;
        self.refused += other.refused;
    }
}

/// Waits until the edge holds nothing unconfirmed, then until the cloud shows its device with
/// `acked_seq` = every event stored for it and `queue_depth` 0 (from the edge's next heartbeat).
/// Returns that number of stored events.
pub fn wait_until_drained(
    cloud: &Cloud,
    token: &str,
    edge: &Edge,
    db_url: &str,
    timeout: Duration,
) -> u64 {
    wait_for("the edge's outbox to drain", timeout, || {
        edge.queue_depth() == 0
    });
    let stored = pg_device_events(db_url, &edge.device).len() as u64;
    wait_for(
        "the device's acked_seq to cover every stored event, with queue_depth 0",
        Duration::from_secs(60),
        || {
            cloud.device(token, &edge.device).is_some_and(|d| {
                d["acked_seq"].as_u64() == Some(stored) && d["queue_depth"].as_u64() == Some(0)
            })
        },
    );
    let device = cloud.device(token, &edge.device).unwrap();
    for field in ["missing_events", "lost_events"] {
        assert_eq!(
            device[field].as_u64().unwrap_or(0),
            0,
            "{field} of a drained device: {device}"
        );
    }
    stored
}

/// The exactly-once contract for one device, read from PostgreSQL once its edge has drained: the
/// stored seqs are exactly 1..=N (no gap, no repeat), every id is stored once, every event the edge
/// accepted is stored under the seq it was given, no two accepted events share a seq, and the only
/// stored events nobody saw accepted are at most one per unanswered request (an event can become
/// durable just before the edge dies, with its 201 never sent). Returns the stored events.
pub fn assert_exactly_once(db_url: &str, device: &str, fired: &Fired) -> Vec<StoredEvent> {
    use std::collections::{HashMap, HashSet};
    let stored = pg_device_events(db_url, device);
    let n = stored.len();
    let seqs: Vec<i64> = stored.iter().map(|e| e.seq).collect();
    if seqs != (1..=n as i64).collect::<Vec<_>>() {
        let mut repeats: Vec<i64> = seqs
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        repeats.dedup();
        let unique: HashSet<i64> = seqs.iter().copied().collect();
        let max = seqs.last().copied().unwrap_or(0);
        let gaps: Vec<i64> = (1..=max).filter(|s| !unique.contains(s)).take(20).collect();
        panic!("{device}: the stored seqs are not 1..={n}: repeated {repeats:?}, missing {gaps:?} (max {max})");
    }
    let by_id: HashMap<&str, i64> = stored.iter().map(|e| (e.id.as_str(), e.seq)).collect();
    assert_eq!(by_id.len(), n, "{device}: an event id is stored twice");

    let accepted_ids: HashSet<&str> = fired.accepted.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        accepted_ids.len(),
        fired.accepted.len(),
        "{device}: the edge accepted an id twice"
    );
    let mut accepted_seqs: Vec<u64> = fired.accepted.iter().map(|(_, seq)| *seq).collect();
    accepted_seqs.sort_unstable();
    let reused: Vec<&[u64]> = accepted_seqs.windows(2).filter(|w| w[0] == w[1]).collect();
    assert!(
        reused.is_empty(),
        "{device}: the edge answered 201 twice for one seq: {reused:?}"
    );
    let lost: Vec<&(String, u64)> = fired
        .accepted
        .iter()
        .filter(|(id, seq)| by_id.get(id.as_str()) != Some(&(*seq as i64)))
        .collect();
    assert!(
        lost.is_empty(),
        "{device}: {} accepted events are not stored under their seq, e.g. {:?} (stored: {:?})",
        lost.len(),
        &lost[..lost.len().min(10)],
        lost.iter()
            .take(10)
            .map(|(id, _)| by_id.get(id.as_str()))
            .collect::<Vec<_>>()
    );
    let unseen = n - fired.accepted.len();
    assert!(
        unseen <= fired.unanswered,
        "{device}: {unseen} stored events were never accepted, but only {} requests went unanswered",
        fired.unanswered
    );
    stored
}

/// A WebSocket on `/api/stream` opened with `token` as a bearer header (101 checked).
pub fn open_stream(
    base: &str,
    token: &str,
) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>> {
    let url = format!("{}/api/stream", base.replacen("http://", "ws://", 1));
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    let (socket, response) = tungstenite::connect(request).expect("websocket connect");
    assert_eq!(response.status().as_u16(), 101);
    socket
}

/// A WebSocket client on `/api/stream`, reading on its own thread; frames land in a shared vector.
pub struct StreamClient {
    pub frames: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl StreamClient {
    pub fn connect(base: &str, token: &str) -> StreamClient {
        let mut socket = open_stream(base, token);
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
