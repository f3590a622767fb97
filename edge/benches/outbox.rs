//! Outbox append benchmark (prints figures; asserts nothing about speed). Run with `make bench`.
//!
//! All in one run, on the disk holding `target/` (a fresh directory under `target/tmp`, or under
//! `VIGIE_BENCH_DIR`; its filesystem is printed and a tmpfs is refused):
//! 1. the outbox as the edge runs it: the release `vigie-edge` (a simulated Pi, its default
//!    configuration, a key from `vigie-edge keygen`, the link down: an MQTT URL nobody listens on,
//!    JSON logs at `info` into a file) and `POST /sim/button`, answered 201 only once the event is
//!    durable: the sensor actor, the outbox actor, the writer thread's group commit, every record
//!    sealed with XChaCha20-Poly1305. 1, 8 and 64 clients (keep-alive connections), each sending
//!    its next request as soon as the previous one is answered. events/s;
//! 2. baselines, one write at a time, with records the size of a stored (sealed) event: a raw sled
//!    `insert` + `flush` (one append without group commit), a plain file `write` + `fdatasync`
//!    (a durable append) and `pwrite` + `fdatasync` in a preallocated file (the device's flush
//!    alone); the outbox rates are printed as ratios to the first two;
//! 3. the power-cut window as configured. A 201 goes out once the writer's `Store::flush` returns:
//!    sled's `Db::flush`, which on Linux (sled 0.34) is `pwrite` and
//!    `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)` on the range it wrote — the bytes reach
//!    the device, but neither the file's metadata (its size, which changes whenever the log grows)
//!    nor the device's write cache is flushed (sled issues #1452, #1351) — then the store's own
//!    `fdatasync` of sled's log, which closes that gap. (Before the store did so, sled's flusher
//!    thread's `fsync` every 500 ms was the only one, and up to ~0.5 s of answered events could be
//!    lost in a power cut.) The bench measures it: it runs the
//!    64-client case again with the edge under `strace` (`fsync`, `fdatasync` and
//!    `sync_file_range` only, `--seccomp-bpf` so nothing else is slowed), records when each 201
//!    arrived, and prints the most answered events not yet covered by an `fsync` of sled's log at
//!    any moment, and how long an answered event waited for one. Without `strace` it prints the
//!    estimate (rate × 500 ms). Requests not answered yet (at most one per client) are the
//!    caller's to retry.
//!
//! `VIGIE_BENCH_SECS` (3) sets each measurement's duration.

mod support;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use vigie_edge::outbox::{key, Store};

use support::{agent, bench_dir, env_or, epoch_secs, fire, free_port, print_disk, EdgeFiles};

const CLIENTS: [usize; 3] = [1, 8, 64];
/// sled's default `flush_every_ms` (the edge opens sled with its defaults).
const SLED_FSYNC_EVERY: Duration = Duration::from_millis(500);

/// One append run.
#[derive(Default)]
struct Run {
    appended: u64,
    refused: u64,
    elapsed: Duration,
    /// When each 201 arrived, in seconds since the Unix epoch (only when asked for).
    /// `(sent, answered)` of each accepted request, epoch seconds.
    answered_at: Vec<(f64, f64)>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.appended as f64 / self.elapsed.as_secs_f64()
    }
}

/// A simulated Pi with the link down (and no API), its files in `dir`.
fn start_edge(dir: &Path, wrapper: &[&OsStr]) -> (EdgeFiles, support::Edge) {
    let files = EdgeFiles::new(dir, "bench-pi", "");
    let edge = files.start(
        &dir.join("edge.log"),
        &format!("mqtt://127.0.0.1:{}", free_port()),
        None,
        "info",
        wrapper,
    );
    (files, edge)
}

/// `clients` concurrent clients firing `POST /sim/button` at `base` for `duration`.
fn fire_for(base: &str, clients: usize, duration: Duration, record: bool) -> Run {
    let start = Instant::now();
    let deadline = start + duration;
    let runs: Vec<Run> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(move || {
                    let agent = agent();
                    let mut run = Run::default();
                    while Instant::now() < deadline {
                        let sent = epoch_secs();
                        if fire(&agent, base) {
                            run.appended += 1;
                            if record {
                                run.answered_at.push((sent, epoch_secs()));
                            }
                        } else {
                            run.refused += 1;
                        }
                    }
                    run
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut total = Run {
        elapsed: start.elapsed(),
        ..Run::default()
    };
    for run in runs {
        total.appended += run.appended;
        total.refused += run.refused;
        total.answered_at.extend(run.answered_at);
    }
    total
}

/// The size of the first stored event (sealed), read back through the outbox's store.
fn record_len(files: &EdgeFiles) -> usize {
    let key = key::load(&files.key).unwrap();
    let (store, _) = Store::open(&files.data, &key).unwrap();
    store.raw_event(1).unwrap().map_or(0, |r| r.len())
}

/// The outbox's store alone, as the writer's group commit uses it: `group` events sealed and
/// written in one sled batch (`Store::append`), then one `Store::flush`, one group at a time:
/// events/s. No actor, no thread hop, no HTTP: the storage ceiling of the append path.
fn store_rate(dir: &Path, group: u64, duration: Duration) -> f64 {
    let key = vigie_edge::outbox::OutboxKey::random().unwrap();
    let (store, loaded) = Store::open(dir, &key).unwrap();
    let mut next = loaded.next_seq;
    let start = Instant::now();
    while start.elapsed() < duration {
        let events: Vec<protocol::EventEnvelope> = (next..next + group)
            .map(|seq| {
                let json = serde_json::json!({
                    "schema_version": 1, "id": uuid::Uuid::now_v7(), "device": "bench-pi",
                    "seq": seq, "sensor": "mat-1", "kind": "button_pressed",
                    "occurred_at": protocol::time::format(chrono::Utc::now()),
                    "clock_synced": true
                });
                protocol::EventEnvelope::from_json(json.to_string().as_bytes()).unwrap()
            })
            .collect();
        next += group;
        store.append(&events, next).unwrap();
        store.flush().unwrap();
    }
    (next - loaded.next_seq) as f64 / start.elapsed().as_secs_f64()
}

/// The three baselines, measured one after the other.
struct Baselines {
    sled: f64,
    append: f64,
    overwrite: f64,
}

impl Baselines {
    fn measure(dir: &Path, len: usize, duration: Duration) -> Baselines {
        std::fs::create_dir_all(dir).unwrap();
        let b = Baselines {
            sled: sled_baseline(&dir.join("sled"), len, duration),
            append: fdatasync_baseline(&dir.join("append.bin"), len, duration),
            overwrite: overwrite_baseline(&dir.join("overwrite.bin"), len, duration),
        };
        std::fs::remove_dir_all(dir).unwrap();
        b
    }
}

/// A preallocated file, one `pwrite` + `fdatasync` at a time over records of `len` bytes (no size
/// change, so no metadata to commit: the device's cache flush alone): writes/s.
fn overwrite_baseline(path: &Path, len: usize, duration: Duration) -> f64 {
    use std::os::unix::fs::FileExt as _;
    let slots: u64 = 100_000;
    let file = std::fs::File::create(path).unwrap();
    file.write_all_at(&vec![0_u8; len * slots as usize], 0)
        .unwrap();
    file.sync_all().unwrap();
    let record = vec![0x5a_u8; len];
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < duration {
        file.write_all_at(&record, (n % slots) * len as u64)
            .unwrap();
        file.sync_data().unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Raw sled, one `insert` + `flush` at a time, records of `len` bytes: writes/s.
fn sled_baseline(dir: &Path, len: usize, duration: Duration) -> f64 {
    let db = sled::Config::new().path(dir).open().unwrap();
    let record = vec![0x5a_u8; len];
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < duration {
        n += 1;
        db.insert(n.to_be_bytes(), record.as_slice()).unwrap();
        db.flush().unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// A plain file, one `write` + `fdatasync` at a time, appending records of `len` bytes: writes/s.
fn fdatasync_baseline(path: &Path, len: usize, duration: Duration) -> f64 {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let record = vec![0x5a_u8; len];
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < duration {
        file.write_all(&record).unwrap();
        file.sync_data().unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// One completed sync syscall from the strace output.
struct SyncCall {
    name: String,
    path: String,
    entry: f64,
    exit: f64,
}

/// Parses `strace -f -ttt -T -y` lines (`PID TIME name(FD<path>, ...) = 0 <DURATION>`, or an
/// `<unfinished ...>` line and its `<... name resumed>` line).
fn parse_strace(text: &str) -> Vec<SyncCall> {
    let mut open: HashMap<&str, (String, String, f64)> = HashMap::new();
    let mut calls = Vec::new();
    for line in text.lines() {
        // `PID TIME rest` (the pid padded with spaces), or `TIME rest` while strace traces a
        // single task.
        let Some((first, after)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let (pid, line) = if first.contains('.') {
            ("", line.trim_start())
        } else {
            (first, after.trim_start())
        };
        let Some((time, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(time) = time.parse::<f64>() else {
            continue;
        };
        if rest.starts_with("<... ") {
            if let Some((name, path, entry)) = open.remove(pid) {
                calls.push(SyncCall {
                    name,
                    path,
                    entry,
                    exit: time,
                });
            }
            continue;
        }
        let Some((name, args)) = rest.split_once('(') else {
            continue;
        };
        let path = args
            .split_once('<')
            .and_then(|(_, p)| p.split_once('>'))
            .map(|(p, _)| p.to_owned())
            .unwrap_or_default();
        if rest.ends_with("<unfinished ...>") {
            open.insert(pid, (name.to_owned(), path, time));
            continue;
        }
        let took = rest
            .rsplit_once('<')
            .and_then(|(_, d)| d.strip_suffix('>')?.parse::<f64>().ok())
            .unwrap_or(0.0);
        calls.push(SyncCall {
            name: name.to_owned(),
            path,
            entry: time,
            exit: time + took,
        });
    }
    calls
}

/// What a power cut could take, from the answer times and the `fsync`s of sled's log.
struct Window {
    /// The most events answered and not yet covered by an fsync, at any moment.
    worst_events: usize,
    /// How long answered events waited for an fsync that covers them (started after the answer).
    wait_max: Duration,
    wait_median: Duration,
    /// Events never covered before the trace ended.
    uncovered: usize,
    gap_max: Duration,
    gap_median: Duration,
}

fn window(mut answered: Vec<(f64, f64)>, mut fsyncs: Vec<&SyncCall>) -> Window {
    answered.sort_by(|x, y| x.1.total_cmp(&y.1));
    fsyncs.sort_by(|a, b| a.exit.total_cmp(&b.exit));
    // An event is durable when answered if an fsync/fdatasync of the log ran entirely between its
    // request and its 201 (its group commit's write happens in that interval, and the store syncs
    // after it). Otherwise it is at risk from its 201 until the first sync that starts after it.
    let mut at_risk: Vec<(f64, Option<f64>)> = Vec::new();
    let mut waits: Vec<f64> = Vec::new();
    for &(sent, a) in &answered {
        if fsyncs.iter().any(|f| f.entry >= sent && f.exit <= a) {
            waits.push(0.0);
            continue;
        }
        let cover = fsyncs
            .iter()
            .filter(|f| f.entry >= a)
            .map(|f| f.exit)
            .min_by(f64::total_cmp);
        if let Some(exit) = cover {
            waits.push(exit - a);
        }
        at_risk.push((a, cover));
    }
    // The most events at risk at one moment: a sweep over their intervals.
    let mut marks: Vec<(f64, i64)> = Vec::new();
    for (a, cover) in &at_risk {
        marks.push((*a, 1));
        marks.push((cover.unwrap_or(f64::INFINITY), -1));
    }
    marks.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let (mut now, mut worst) = (0i64, 0i64);
    for (_, d) in marks {
        now += d;
        worst = worst.max(now);
    }
    waits.sort_by(f64::total_cmp);
    let mut gaps: Vec<f64> = fsyncs.windows(2).map(|w| w[1].entry - w[0].entry).collect();
    gaps.sort_by(f64::total_cmp);
    let at = |v: &[f64], q: f64| {
        Duration::from_secs_f64(
            v.get(((v.len() as f64 - 1.0) * q) as usize)
                .copied()
                .unwrap_or(0.0),
        )
    };
    Window {
        worst_events: worst as usize,
        wait_max: at(&waits, 1.0),
        wait_median: at(&waits, 0.5),
        uncovered: answered.len() - waits.len(),
        gap_max: at(&gaps, 1.0),
        gap_median: at(&gaps, 0.5),
    }
}

/// The 64-client run again with the edge under strace; `None` when strace is missing or fails.
fn traced_run(
    dir: &Path,
    clients: usize,
    duration: Duration,
) -> Option<(Run, Vec<SyncCall>, String)> {
    let trace = dir.join("strace.txt");
    // strace must be there and allowed to trace (ptrace, seccomp-bpf filtering).
    let works = std::process::Command::new("strace")
        .args([
            "-f",
            "--seccomp-bpf",
            "-qq",
            "-e",
            "trace=fsync",
            "-o",
            "/dev/null",
            "true",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        return None;
    }
    let wrapper: Vec<&OsStr> = vec![
        "strace".as_ref(),
        "-f".as_ref(),
        "--seccomp-bpf".as_ref(),
        "-qq".as_ref(),
        "-ttt".as_ref(),
        "-T".as_ref(),
        "-y".as_ref(),
        "-e".as_ref(),
        "trace=fsync,fdatasync,sync_file_range".as_ref(),
        "-o".as_ref(),
        trace.as_os_str(),
    ];
    let (files, edge) = start_edge(dir, &wrapper);
    let run = fire_for(&edge.base, clients, duration, true);
    edge.terminate();
    let log = files.data.canonicalize().ok()?.join("db");
    let calls = parse_strace(&std::fs::read_to_string(&trace).ok()?);
    Some((run, calls, log.display().to_string()))
}

fn power_cut(dir: &Path, untraced: &Run, clients: usize, duration: Duration) {
    println!(
        "power cut a 201 goes out after its group commit's sled flush (pwrite + sync_file_range \
         of the log) and the store's fdatasync of the log; sled's flusher thread also fsyncs it \
         every {} ms",
        SLED_FSYNC_EVERY.as_millis()
    );
    let Some((run, calls, log)) = traced_run(dir, clients, duration) else {
        println!(
            "power cut strace unavailable (or not allowed to trace): estimated window {:.0} events ({} ms × {:.0} events/s)",
            untraced.rate() * SLED_FSYNC_EVERY.as_secs_f64(),
            SLED_FSYNC_EVERY.as_millis(),
            untraced.rate()
        );
        return;
    };
    let on_log: Vec<&SyncCall> = calls.iter().filter(|c| c.path == log).collect();
    if on_log.is_empty() {
        println!(
            "power cut no sync call on {log} in the trace ({} sync calls parsed, first on {:?}); \
             set VIGIE_BENCH_KEEP=1 to keep it",
            calls.len(),
            calls.first().map(|c| c.path.as_str())
        );
    }
    let fsyncs: Vec<&SyncCall> = on_log
        .iter()
        .copied()
        .filter(|c| c.name == "fsync" || c.name == "fdatasync")
        .collect();
    let writes: Vec<&SyncCall> = on_log
        .iter()
        .copied()
        .filter(|c| c.name == "sync_file_range")
        .collect();
    let ranges = writes.len();
    let log_len = std::fs::metadata(&log).map_or(0, |m| m.len());
    let w = window(run.answered_at.clone(), fsyncs.clone());
    println!(
        "power cut measured with the edge under strace: {clients} clients for {:.1} s, {:.0} \
         events/s ({:.2} of the untraced rate); {ranges} sync_file_range and {} fsync of sled's \
         log ({} events per sync_file_range on average); the log grew to {:.1} MiB",
        run.elapsed.as_secs_f64(),
        run.rate(),
        run.rate() / untraced.rate(),
        fsyncs.len(),
        run.appended / ranges.max(1) as u64,
        log_len as f64 / (1024.0 * 1024.0),
    );
    println!(
        "power cut fsync/fdatasync of the log every {:.0} ms (median; max gap {:.0} ms); an \
         answered event waited {:.0} ms (median; max {:.0} ms) for the sync covering it (0: synced \
         before its 201)",
        w.gap_median.as_secs_f64() * 1000.0,
        w.gap_max.as_secs_f64() * 1000.0,
        w.wait_median.as_secs_f64() * 1000.0,
        w.wait_max.as_secs_f64() * 1000.0,
    );
    println!(
        "power cut window: at worst {} answered (201) events not yet synced ({} never before \
         the edge stopped)",
        w.worst_events, w.uncovered,
    );
    println!(
        "power cut also at risk: requests not answered yet (no 201, the caller retries), at most \
         {clients} (one per client; the writer queue holds 1024)"
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("outbox: bench");
        return;
    }
    let duration = Duration::from_secs(env_or("VIGIE_BENCH_SECS", 3));
    let dir = bench_dir();
    print_disk(dir.path());
    support::print_load("at the start");
    println!("binary    {}", support::bin("vigie-edge").display());

    // Baselines twice, after the first run (which gives the record size) and after the last,
    // so that a machine whose disk is busy with something else shows as two different figures.
    let mut len = 0;
    let mut baselines: Vec<Baselines> = Vec::new();
    let mut runs: Vec<(usize, Run)> = Vec::new();
    for &n in &CLIENTS {
        let (files, edge) = start_edge(&dir.path().join(format!("clients-{n}")), &[]);
        let run = fire_for(&edge.base, n, duration, false);
        edge.terminate();
        if len == 0 {
            len = record_len(&files);
            baselines.push(Baselines::measure(
                &dir.path().join("baselines-1"),
                len,
                duration,
            ));
        }
        std::fs::remove_dir_all(&files.data).unwrap();
        runs.push((n, run));
    }
    baselines.push(Baselines::measure(
        &dir.path().join("baselines-2"),
        len,
        duration,
    ));
    let store_rates: Vec<(u64, f64)> = [1, 16, 256]
        .iter()
        .map(|&group| {
            let at = dir.path().join(format!("store-{group}"));
            (group, store_rate(&at, group, duration))
        })
        .collect();
    let mean = |f: fn(&Baselines) -> f64| baselines.iter().map(f).sum::<f64>() / 2.0;
    let sled_rate = mean(|b| b.sled);
    let file_rate = mean(|b| b.append);
    let both =
        |f: fn(&Baselines) -> f64| format!("{:>6.0} / {:>6.0}", f(&baselines[0]), f(&baselines[1]));

    println!("record    one stored event: {len} bytes (sealed event envelope)");
    println!("baseline  (writes/s, one at a time, measured twice: after the 1-client run / after the 64-client run)");
    println!(
        "baseline  raw sled insert + flush:                  {}",
        both(|b| b.sled)
    );
    println!(
        "baseline  file write + fdatasync (appending):       {}",
        both(|b| b.append)
    );
    println!(
        "baseline  file pwrite + fdatasync (preallocated):   {} (no size change: the device flush alone)",
        both(|b| b.overwrite)
    );
    println!("outbox    (ratios to the mean of the two baselines)");
    for (n, run) in &runs {
        println!(
            "outbox    {n:>2} client{} POST /sim/button → 201: {:>8.0} events/s = {:>5.2} × sled \
             insert+flush, {:>6.2} × write+fdatasync{}",
            if *n == 1 { " " } else { "s" },
            run.rate(),
            run.rate() / sled_rate,
            run.rate() / file_rate,
            if run.refused > 0 {
                format!(" ({} refused)", run.refused)
            } else {
                String::new()
            }
        );
    }
    for (group, rate) in &store_rates {
        println!(
            "store     {group:>3} events per flush (Store::append + flush, sealed, no HTTP or \
             actors): {rate:>8.0} events/s = {:>5.2} × sled insert+flush",
            rate / sled_rate
        );
    }
    let (n, widest) = runs.last().unwrap();
    power_cut(&dir.path().join("power-cut"), widest, *n, duration);
    support::print_load("at the end");
    support::keep_if_asked(dir);
}
