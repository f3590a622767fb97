//! Backlog drain benchmark (prints figures; asserts nothing about speed). Run with `make bench`.
//!
//! One device comes back after a long outage with `VIGIE_BENCH_DRAIN_EVENTS` (100,000) events in
//! its outbox. All on this machine, loopback only, with the release binaries next to this bench
//! (`target/release/vigie-edge` and `vigie-cloud`, built by `make bench`):
//! 1. a fresh database on the machine's PostgreSQL (127.0.0.1:5432, user `postgres`, trust; dropped
//!    at the end), a Mosquitto of the bench's own from the committed config
//!    (`cloud/tests/fixtures/mosquitto-plain.conf.in`) on a free port, `vigie-cloud serve` on both,
//!    and `vigie-cloud device add` for the device's token;
//! 2. baseline: PostgreSQL alone, the same number of rows of the `events` shape inserted by one
//!    `psql` connection in 1,000-row `INSERT ... VALUES` statements (autocommit) into a copy of
//!    the table (`LIKE events INCLUDING ALL`);
//! 3. the backlog is written into the outbox through the library (the writer thread, the same key
//!    file and configuration the edge then uses), as if the events had been fired while the link
//!    was down; `vigie-edge` then runs once with an MQTT URL nobody listens on and no API, to show
//!    its memory with the backlog before any drain;
//! 4. the link is restored: `vigie-edge` starts pointed at the cloud's broker and API with the
//!    device token, its default configuration otherwise (bulk drain over `POST /api/events` in
//!    batches of `api.bulk_batch`). Time 0 is the start of that process. Every 50 ms the bench
//!    polls `SELECT count(*) FROM events` (one open `psql` connection), the edge's `/readyz`
//!    `queue_depth`, and `/proc/PID/status` of both processes (VmRSS, VmHWM), and prints when every
//!    event was committed, when the outbox was empty, events/s and its ratio to the baseline, and
//!    the memory of both processes before, at their peak during the drain, and after.
//!
//! `VIGIE_BENCH_BULK_BATCH` sets `api.bulk_batch` (default: the edge's default).

mod support;

use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use support::{
    agent, bench_dir, bin, env_or, epoch_secs, fire, free_port, get, mib, print_disk, rss_kib,
    wait_for, Edge, EdgeFiles, Proc,
};

const DEVICE: &str = "bench-pi";
const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
const WAIT: Duration = Duration::from_secs(300);
/// Concurrent `POST /sim/button` clients filling the backlog.
const PREFILL_CLIENTS: u64 = 8;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// One open `psql` session (quiet, unaligned, tuples only; stops at the first error).
struct Psql {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Psql {
    fn connect(url: &str) -> Psql {
        let mut child = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("psql (the PostgreSQL client) is needed");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut psql = Psql {
            _child: child,
            stdin,
            stdout,
        };
        psql.run("SET client_min_messages = warning");
        psql
    }

    /// Runs `sql` (statements, each ending with `;` or not) and returns the first line it prints.
    fn query(&mut self, sql: &str) -> String {
        writeln!(self.stdin, "{};", sql.trim_end_matches(';')).unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        let read = self.stdout.read_line(&mut line).unwrap();
        assert!(read > 0, "psql stopped at: {}", &sql[..sql.len().min(200)]);
        line.trim().to_owned()
    }

    /// Runs `sql` (which prints nothing) and waits until PostgreSQL has done it.
    fn run(&mut self, sql: &str) {
        let done = self.query(&format!("{};\nSELECT 'done'", sql.trim_end_matches(';')));
        assert_eq!(done, "done", "{sql}");
    }

    fn count(&mut self, table: &str) -> u64 {
        self.query(&format!("SELECT count(*) FROM {table}"))
            .parse()
            .unwrap()
    }
}

/// A database of the bench's own on the machine's PostgreSQL, dropped at the end.
struct Database {
    name: String,
}

impl Database {
    fn create() -> Database {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let name = format!("vigie_bench_{}", &id[id.len() - 10..]);
        Psql::connect(PG_ADMIN).run(&format!("CREATE DATABASE {name}"));
        Database { name }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        Psql::connect(PG_ADMIN).run(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// Mosquitto on a free port from the committed test config (persistence off).
fn start_mosquitto(dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let template =
        std::fs::read_to_string(workspace().join("cloud/tests/fixtures/mosquitto-plain.conf.in"))
            .unwrap();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(&conf, template.replace("{PORT}", &port.to_string())).unwrap();
    let mut cmd = Command::new("mosquitto");
    cmd.arg("-c").arg(&conf);
    let proc = Proc::spawn(cmd, &dir.join("mosquitto.log"));
    wait_for("mosquitto to listen", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (proc, port)
}

struct Cloud {
    proc: Proc,
    base: String,
    env: Vec<(&'static str, String)>,
}

impl Cloud {
    fn start(dir: &Path, database: &str, mqtt_port: u16) -> Cloud {
        let port = free_port();
        let env = vec![
            ("VIGIE_DATABASE_URL", database.to_owned()),
            ("VIGIE_MQTT_URL", format!("mqtt://127.0.0.1:{mqtt_port}")),
            ("VIGIE_MQTT_CLIENT_ID", "vigie-cloud-bench".into()),
            ("VIGIE_LISTEN", format!("127.0.0.1:{port}")),
            ("VIGIE_METRICS_LISTEN", format!("127.0.0.1:{}", free_port())),
            ("VIGIE_DATA_DIR", dir.join("cloud").display().to_string()),
            (
                "VIGIE_JWT_SECRET",
                "drain-bench-secret-0123456789abcdef".into(),
            ),
            ("VIGIE_LOG_FORMAT", "json".into()),
            ("RUST_LOG", "info".into()),
        ];
        let mut cmd = Command::new(bin("vigie-cloud"));
        cmd.arg("serve").envs(env.iter().map(|(k, v)| (*k, v)));
        let cloud = Cloud {
            proc: Proc::spawn(cmd, &dir.join("cloud.log")),
            base: format!("http://127.0.0.1:{port}"),
            env,
        };
        let agent = agent();
        let url = format!("{}/readyz", cloud.base);
        wait_for("vigie-cloud /readyz", || get(&agent, &url).0 == 200);
        cloud
    }

    /// `vigie-cloud device add ID`: the device's API token.
    fn add_device(&self, id: &str) -> String {
        let out = Command::new(bin("vigie-cloud"))
            .args(["device", "add", id])
            .envs(self.env.iter().map(|(k, v)| (*k, v)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "device add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// A counter from `/metrics`, when the cloud has it.
    fn metric(&self, name: &str) -> Option<u64> {
        let (_, text) = get(&agent(), &format!("{}/metrics", self.base));
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    }
}

/// The highest VmRSS sampled and the last VmHWM of a process, in KiB.
#[derive(Default, Clone, Copy)]
struct Memory {
    rss_max: u64,
    hwm: u64,
}

impl Memory {
    fn sample(&mut self, pid: u32) {
        if let Some((rss, hwm)) = rss_kib(pid) {
            self.rss_max = self.rss_max.max(rss);
            self.hwm = hwm;
        }
    }

    /// Samples `pid` every 50 ms for `span`.
    fn over(pid: u32, span: Duration) -> Memory {
        let mut m = Memory::default();
        let end = Instant::now() + span;
        while Instant::now() < end {
            m.sample(pid);
            std::thread::sleep(SAMPLE_EVERY);
        }
        m
    }
}

/// A column of `events`: name, type, nullable.
type Column = (String, String, bool);

/// The columns of the cloud's `events` table, in order (whatever its migrations made them).
fn event_columns(psql: &mut Psql) -> Vec<Column> {
    psql.query(
        "SELECT string_agg(column_name || ':' || data_type || ':' || is_nullable, ',' \
         ORDER BY ordinal_position) FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name = 'events'",
    )
    .split(',')
    .map(|c| {
        let mut parts = c.split(':');
        let name = parts.next().unwrap_or_default().to_owned();
        let ty = parts.next().unwrap_or_default().to_owned();
        (name, ty, parts.next() == Some("YES"))
    })
    .collect()
}

/// One row as the cloud stores an event: an event's values in the columns it knows; any other
/// column NULL when it may be, else a value of its type.
fn event_row(columns: &[Column], i: u64, now: i64) -> String {
    let occurred = now - 1000 + (i % 1000) as i64;
    let values: Vec<String> = columns
        .iter()
        .map(|(name, ty, nullable)| match name.as_str() {
            "id" => format!("'{}'", uuid::Uuid::now_v7()),
            "device" => format!("'{DEVICE}-base'"),
            "seq" => (i + 1).to_string(),
            "sensor" => "'mat-1'".into(),
            "kind" => "'button_pressed'".into(),
            "occurred_at" | "corrected_at" => occurred.to_string(),
            "clock_synced" => "true".into(),
            "received_at" => now.to_string(),
            "schema_version" => "1".into(),
            _ if *nullable => "NULL".into(),
            _ => match ty.as_str() {
                "bigint" | "integer" | "smallint" => occurred.to_string(),
                "boolean" => "false".into(),
                _ => "''".into(),
            },
        })
        .collect();
    format!("({})", values.join(","))
}

/// PostgreSQL alone: `n` rows of the `events` shape in 1,000-row INSERTs; rows/s.
fn baseline(psql: &mut Psql, n: u64) -> f64 {
    let columns = event_columns(psql);
    let names: Vec<&str> = columns.iter().map(|(name, _, _)| name.as_str()).collect();
    psql.run("CREATE TABLE bench_baseline (LIKE events INCLUDING ALL)");
    let now = chrono::Utc::now().timestamp_millis();
    let statements: Vec<String> = (0..n)
        .collect::<Vec<_>>()
        .chunks(1000)
        .map(|chunk| {
            let rows: Vec<String> = chunk.iter().map(|i| event_row(&columns, *i, now)).collect();
            format!(
                "INSERT INTO bench_baseline ({}) VALUES {};",
                names.join(", "),
                rows.join(",")
            )
        })
        .collect();
    let start = Instant::now();
    for statement in &statements {
        writeln!(psql.stdin, "{statement}").unwrap();
    }
    psql.run("SELECT 1 WHERE false");
    let rate = n as f64 / start.elapsed().as_secs_f64();
    assert_eq!(psql.count("bench_baseline"), n);
    psql.run("DROP TABLE bench_baseline");
    rate
}

/// Fires `n` events at the edge at `base` from [`PREFILL_CLIENTS`] clients; how long it took.
fn prefill(base: &str, n: u64) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for client in 0..PREFILL_CLIENTS {
            let share = n / PREFILL_CLIENTS + u64::from(client < n % PREFILL_CLIENTS);
            s.spawn(move || {
                let agent = agent();
                for _ in 0..share {
                    assert!(fire(&agent, base), "the offline edge refused an event");
                }
            });
        }
    });
    start.elapsed()
}

/// Where a drain's time went, from the edge's log: per batch, the edge's own part (from an answer
/// to the next request: confirming, reading and decrypting the next events) and the request's
/// round trip (gzip, HTTP, the cloud's decoding and commit, the answer).
struct Batches {
    first_sent: f64,
    edge: Vec<f64>,
    round_trip: Vec<f64>,
}

impl Batches {
    /// `started`: the wall-clock time (seconds since the epoch) the edge was started.
    fn from_log(log: &Path, started: f64) -> Batches {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let mut b = Batches {
            first_sent: 0.0,
            edge: Vec::new(),
            round_trip: Vec::new(),
        };
        let (mut sent, mut answered): (Option<f64>, Option<f64>) = (None, None);
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let Some(at) = v["timestamp"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            else {
                continue;
            };
            let at = at.timestamp_micros() as f64 / 1e6;
            match v["message"].as_str() {
                Some("sending a bulk batch") => {
                    match answered {
                        Some(a) => b.edge.push(at - a),
                        None => b.first_sent = at - started,
                    }
                    sent = Some(at);
                }
                Some("bulk batch answered") => {
                    if let Some(s) = sent.take() {
                        b.round_trip.push(at - s);
                    }
                    answered = Some(at);
                }
                _ => {}
            }
        }
        b
    }

    fn print(&self) {
        let ms = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            let median = v.get(v.len() / 2).copied().unwrap_or(0.0) * 1000.0;
            (median, v.iter().sum::<f64>())
        };
        let (edge_median, edge_total) = ms(&self.edge);
        let (trip_median, trip_total) = ms(&self.round_trip);
        println!(
            "profile   first batch sent {:.2} s after the start; {} batches: request round trip \
             median {trip_median:.1} ms (total {trip_total:.2} s: gzip, HTTP, cloud decode + \
             commit), edge between batches median {edge_median:.1} ms (total {edge_total:.2} s: \
             confirm, read + decrypt the next batch)",
            self.first_sent,
            self.round_trip.len()
        );
    }
}

/// What the drain took.
struct Drain {
    committed: Duration,
    emptied: Duration,
    edge: Memory,
    cloud: Memory,
}

/// From the edge's start until every event is committed and its outbox is empty, sampling every
/// 50 ms.
fn measure_drain(edge: &Edge, start: Instant, cloud_pid: u32, psql: &mut Psql, n: u64) -> Drain {
    let agent = agent();
    let (mut committed, mut emptied) = (None, None);
    let mut drain = Drain {
        committed: Duration::ZERO,
        emptied: Duration::ZERO,
        edge: Memory::default(),
        cloud: Memory::default(),
    };
    while committed.is_none() || emptied.is_none() {
        let tick = Instant::now();
        assert!(tick - start < WAIT, "the drain did not finish in {WAIT:?}");
        drain.edge.sample(edge.pid());
        drain.cloud.sample(cloud_pid);
        let depth = edge.queue_depth(&agent);
        if depth == Some(0) && emptied.is_none() {
            emptied = Some(start.elapsed());
        }
        if committed.is_none() && psql.count("events") >= n {
            committed = Some(start.elapsed());
        }
        std::thread::sleep(SAMPLE_EVERY.saturating_sub(tick.elapsed()));
    }
    drain.committed = committed.unwrap();
    drain.emptied = emptied.unwrap();
    drain
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("drain: bench");
        return;
    }
    let n = env_or("VIGIE_BENCH_DRAIN_EVENTS", 100_000);
    let dir = bench_dir();
    print_disk(dir.path());
    support::print_load("at the start");
    println!("binaries  {} and vigie-cloud", bin("vigie-edge").display());

    let database = Database::create();
    let (_mosquitto, mqtt_port) = start_mosquitto(dir.path());
    let cloud = Cloud::start(dir.path(), &database.url(), mqtt_port);
    let token = cloud.add_device(DEVICE);
    let mut psql = Psql::connect(&database.url());

    let pg_rate = baseline(&mut psql, n);
    println!(
        "baseline  PostgreSQL alone, {n} rows in 1,000-row INSERTs (one psql connection): {:.2} s = {pg_rate:.0} rows/s",
        n as f64 / pg_rate
    );

    // Link down: nobody listens on the broker's port and no API is configured. The backlog is
    // fired through the simulated sensor, as activations during an outage would be.
    let extra = std::env::var("VIGIE_BENCH_BULK_BATCH")
        .map(|batch| format!("[api]\nbulk_batch = {batch}\n"))
        .unwrap_or_default();
    let files = EdgeFiles::new(&dir.path().join("edge"), DEVICE, &extra);
    let offline = files.start(
        &dir.path().join("edge-offline.log"),
        &format!("mqtt://127.0.0.1:{}", free_port()),
        None,
        "info",
        &[],
    );
    let took = prefill(&offline.base, n);
    println!(
        "prefill   {n} events fired with the link down ({PREFILL_CLIENTS} clients, POST /sim/button → 201): {:.2} s = {:.0} events/s",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    let agent = agent();
    wait_for("the backlog in /readyz", || {
        offline.queue_depth(&agent) == Some(n)
    });
    offline.terminate();
    // Before the drain: a fresh edge that loaded the backlog, the link still down.
    let offline = files.start(
        &dir.path().join("edge-before.log"),
        &format!("mqtt://127.0.0.1:{}", free_port()),
        None,
        "info",
        &[],
    );
    wait_for("the backlog loaded", || {
        offline.queue_depth(&agent) == Some(n)
    });
    let edge_before = Memory::over(offline.pid(), Duration::from_secs(1));
    offline.terminate();
    let cloud_before = Memory::over(cloud.proc.pid(), Duration::from_secs(1));
    let mqtt_before = cloud.metric("vigie_ingest_inserted_total");

    // Link restored: the edge starts again with the cloud's broker and API.
    let started = epoch_secs();
    let start = Instant::now();
    let edge = files.start(
        &dir.path().join("edge-drain.log"),
        &format!("mqtt://127.0.0.1:{mqtt_port}"),
        Some((&cloud.base, &token)),
        // The outbox's debug lines time each bulk batch (two lines per batch).
        "info,vigie_edge::outbox=debug",
        &[],
    );
    let healthz = start.elapsed();
    let drain = measure_drain(&edge, start, cloud.proc.pid(), &mut psql, n);
    let edge_after = Memory::over(edge.pid(), Duration::from_secs(1));
    let cloud_after = Memory::over(cloud.proc.pid(), Duration::from_secs(1));

    let rate = n as f64 / drain.committed.as_secs_f64();
    println!(
        "drain     vigie-edge started with the link back at t = 0; /healthz answered at {:.2} s",
        healthz.as_secs_f64()
    );
    println!(
        "drain     all {n} committed in PostgreSQL at {:.2} s = {rate:.0} events/s = {:.2} of PostgreSQL alone",
        drain.committed.as_secs_f64(),
        rate / pg_rate
    );
    println!(
        "drain     outbox empty (queue_depth 0) at {:.2} s",
        drain.emptied.as_secs_f64()
    );
    Batches::from_log(&dir.path().join("edge-drain.log"), started).print();
    println!(
        "profile   PostgreSQL alone: {:.1} ms per 1,000 rows",
        1000.0 / pg_rate * 1000.0
    );
    println!(
        "memory    before: the edge started again on the backlog with the link down; the cloud idle"
    );
    for (name, before, during, after) in [
        ("edge ", edge_before, drain.edge, edge_after),
        ("cloud", cloud_before, drain.cloud, cloud_after),
    ] {
        println!(
            "memory    {name} RSS before {}, peak during the drain {} (VmHWM {}), after {}",
            mib(before.rss_max),
            mib(during.rss_max),
            mib(during.hwm),
            mib(after.rss_max)
        );
    }
    let distinct: u64 = psql
        .query("SELECT count(DISTINCT id) FROM events")
        .parse()
        .unwrap();
    let over_mqtt = match (mqtt_before, cloud.metric("vigie_ingest_inserted_total")) {
        (Some(before), Some(after)) => format!("{} over MQTT", after - before),
        _ => "MQTT share unknown".into(),
    };
    println!(
        "check     {distinct} distinct events stored ({over_mqtt}, the rest over POST /api/events)"
    );
    edge.terminate();
    support::print_load("at the end");
    support::keep_if_asked(dir);
}
