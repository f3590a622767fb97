//! What the edge benches share: where they write (the real disk, never a tmpfs) and on which
//! filesystem, settings from the environment, a process's memory from `/proc`, and a simulated
//! `vigie-edge` process (the release binary) with its config, key and HTTP calls.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `name` from the environment as a number, else `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fresh temporary directory on the disk holding the build (`target/tmp`), or under
/// `VIGIE_BENCH_DIR`; removed when dropped (unless `VIGIE_BENCH_KEEP` is set: [`keep_if_asked`]).
pub fn bench_dir() -> tempfile::TempDir {
    let parent = std::env::var_os("VIGIE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&parent).unwrap();
    tempfile::tempdir_in(&parent).unwrap()
}

/// With `VIGIE_BENCH_KEEP` set, keeps the bench's directory (logs, traces) and prints where.
pub fn keep_if_asked(dir: tempfile::TempDir) {
    if std::env::var_os("VIGIE_BENCH_KEEP").is_some() {
        println!("kept      {}", dir.keep().display());
    }
}

/// The mount holding a path: `(mount point, filesystem type, device, mount options)`.
pub struct Mount {
    pub point: String,
    pub fstype: String,
    pub source: String,
    pub options: String,
}

/// The mount holding `path`, from `/proc/self/mountinfo` (the longest mount point that contains it).
pub fn mount_of(path: &Path) -> Mount {
    let path = path.canonicalize().unwrap();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut best: Option<Mount> = None;
    for line in info.lines() {
        // id parent major:minor root mount-point options [optional...] - fstype source super-options
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 6 || right.len() < 2 {
            continue;
        }
        let point = left[4].replace("\\040", " ");
        if !path.starts_with(&point) {
            continue;
        }
        if best.as_ref().is_some_and(|b| b.point.len() > point.len()) {
            continue;
        }
        best = Some(Mount {
            point,
            fstype: right[0].to_owned(),
            source: right[1].to_owned(),
            options: format!("{}; {}", left[5], right.get(2).unwrap_or(&"")),
        });
    }
    best.expect("a mount holds every path")
}

/// Prints where the bench writes; refuses a filesystem in memory (its flushes cost nothing).
pub fn print_disk(dir: &Path) {
    let m = mount_of(dir);
    println!(
        "disk      {} on {} ({}, mounted at {}, {})",
        dir.display(),
        m.source,
        m.fstype,
        m.point,
        m.options
    );
    assert!(
        !matches!(m.fstype.as_str(), "tmpfs" | "ramfs"),
        "{} is on {}: flushes to memory measure nothing; set VIGIE_BENCH_DIR to a directory on a disk",
        dir.display(),
        m.fstype
    );
}

/// Prints the machine's load (CPUs, load average): on a machine doing other work the figures move.
pub fn print_load(when: &str) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "machine   {when}: {} CPUs, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.join(" ")
    );
}

/// `(VmRSS, VmHWM)` of a process in KiB, from `/proc/PID/status`; `None` once it is gone.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `cond` every 20 ms; panics with `what` after five minutes.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Seconds since the Unix epoch (the clock `strace -ttt` and the JSON logs use).
pub fn epoch_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A workspace binary next to this bench's `deps/` directory (`target/release` under
/// `cargo bench`), or in `VIGIE_BENCH_BIN_DIR`.
pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("VIGIE_BENCH_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap();
            exe.parent().unwrap().parent().unwrap().to_owned()
        });
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the release binaries first (`cargo build --release --workspace --bins`, which `make bench` does)",
        path.display()
    );
    path
}

/// A child process, killed when dropped.
pub struct Proc(pub Child);

impl Proc {
    /// Starts `cmd` with stdout and stderr into `log`.
    pub fn spawn(mut cmd: Command, log: &Path) -> Proc {
        let out = std::fs::File::create(log).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        Proc(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")),
        )
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A blocking HTTP client that returns non-2xx answers instead of failing.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// `(status, body)` of `GET url`; status 0 when nothing answers.
pub fn get(agent: &ureq::Agent, url: &str) -> (u16, String) {
    match agent.get(url).call() {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(_) => (0, String::new()),
    }
}

/// A simulated Pi's files: its config (every default but the device id and one simulated mat,
/// plus `extra` TOML), data directory, and a key made by `vigie-edge keygen`.
pub struct EdgeFiles {
    pub config: PathBuf,
    pub data: PathBuf,
    pub key: PathBuf,
}

impl EdgeFiles {
    pub fn new(dir: &Path, device: &str, extra: &str) -> EdgeFiles {
        std::fs::create_dir_all(dir).unwrap();
        let files = EdgeFiles {
            config: dir.join("edge.toml"),
            data: dir.join("edge-data"),
            key: dir.join("edge.key"),
        };
        std::fs::write(
            &files.config,
            format!(
                "[device]\nid = \"{device}\"\n[sensors]\nbackend = \"simulated\"\n\
                 [[sensors.input]]\nid = \"mat-1\"\nkind = \"button_pressed\"\n{extra}"
            ),
        )
        .unwrap();
        let out = Command::new(bin("vigie-edge"))
            .args(["keygen", "--out"])
            .arg(&files.key)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "vigie-edge keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        files
    }

    /// Starts `vigie-edge run` on these files (JSON logs into `log`, `RUST_LOG=rust_log`), under
    /// `wrapper` (a program and its arguments, e.g. strace) when given; `api`: the cloud's URL and
    /// the device token. Returns once `/healthz` answers.
    pub fn start(
        &self,
        log: &Path,
        mqtt_url: &str,
        api: Option<(&str, &str)>,
        rust_log: &str,
        wrapper: &[&std::ffi::OsStr],
    ) -> Edge {
        let port = free_port();
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(bin("vigie-edge"));
                cmd
            }
            None => Command::new(bin("vigie-edge")),
        };
        cmd.args(["run", "--config"])
            .arg(&self.config)
            .env("VIGIE_EDGE_MQTT_URL", mqtt_url)
            .env("VIGIE_EDGE_DATA_DIR", &self.data)
            .env("VIGIE_EDGE_KEY_FILE", &self.key)
            .env("VIGIE_EDGE_HTTP_LISTEN", format!("127.0.0.1:{port}"))
            .env("VIGIE_LOG_FORMAT", "json")
            .env("RUST_LOG", rust_log);
        if let Some((url, token)) = api {
            cmd.env("VIGIE_EDGE_API_URL", url)
                .env("VIGIE_EDGE_TOKEN", token);
        }
        let mut edge = Edge {
            proc: Proc::spawn(cmd, log),
            base: format!("http://127.0.0.1:{port}"),
            wrapped: !wrapper.is_empty(),
        };
        let agent = agent();
        let url = format!("{}/healthz", edge.base);
        wait_for("vigie-edge /healthz", || {
            if let Ok(Some(status)) = edge.proc.0.try_wait() {
                panic!("vigie-edge exited: {status}; see {}", log.display());
            }
            get(&agent, &url).0 == 200
        });
        edge
    }
}

/// A running `vigie-edge`, killed when dropped.
pub struct Edge {
    pub proc: Proc,
    pub base: String,
    wrapped: bool,
}

impl Edge {
    /// The edge's own pid (the wrapper's child when it runs under one).
    pub fn pid(&self) -> u32 {
        if !self.wrapped {
            return self.proc.pid();
        }
        let pid = self.proc.pid();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()
            .and_then(|c| c.split_whitespace().next()?.parse().ok())
            .unwrap_or(pid)
    }

    /// `queue_depth` from `/readyz`, once it answers.
    pub fn queue_depth(&self, agent: &ureq::Agent) -> Option<u64> {
        let (status, body) = get(agent, &format!("{}/readyz", self.base));
        if status == 0 {
            return None;
        }
        serde_json::from_str::<serde_json::Value>(&body).ok()?["queue_depth"].as_u64()
    }

    /// SIGTERM to the edge, then waits until it (and its wrapper) exited.
    pub fn terminate(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        wait_for("vigie-edge to exit", || {
            self.proc.0.try_wait().unwrap().is_some()
        });
    }
}

/// `POST {base}/sim/button`: true on 201 (the event is durable).
pub fn fire(agent: &ureq::Agent, base: &str) -> bool {
    matches!(
        agent.post(&format!("{base}/sim/button")).send_empty(),
        Ok(r) if r.status().as_u16() == 201
    )
}
