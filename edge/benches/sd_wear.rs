//! SD-card wear: bytes written per event, on an ext4 filesystem made like the Pi's data partition
//! (p3: a loop-mounted image, `noatime`), for 1,000 events stored by the release `vigie-edge` (a
//! simulated Pi, the link down, so every event stays in the outbox), without video and with the
//! synthetic camera recording its clips, beside a plain SQLite writer (WAL, `synchronous=FULL`, one
//! INSERT and commit per event: Python's sqlite3) in the same run. Two figures each: what the
//! process asked the kernel to write (`/proc/PID/io` `write_bytes`, read just before it stops) and
//! what reached the loop device (`/sys/block/loopN/stat` sectors written, from before the start to
//! after a `sync` past its exit: journal and metadata included). Prints figures and ratios to the
//! SQLite baseline; asserts nothing about them. Needs root (mkfs, loop mount). Run with `make bench`.
//!
//! `VIGIE_BENCH_EVENTS` (1000) sets the number of events; they are fired one every 20 ms.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

/// A loop-mounted ext4 image, unmounted when dropped.
struct DataPartition {
    mount: PathBuf,
    device: String,
}

impl DataPartition {
    fn make(dir: &Path) -> DataPartition {
        let image = dir.join("p3.img");
        let mount = dir.join("p3");
        std::fs::create_dir_all(&mount).unwrap();
        let run = |cmd: &mut Command| {
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        run(Command::new("truncate").args(["-s", "1G"]).arg(&image));
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "vigie-data"])
            .arg(&image));
        run(Command::new("mount")
            .args(["-o", "loop,noatime"])
            .arg(&image)
            .arg(&mount));
        let device = run(Command::new("findmnt")
            .args(["-n", "-o", "SOURCE"])
            .arg(&mount));
        DataPartition { mount, device }
    }

    /// Sectors (512 bytes) written to the loop device so far.
    fn sectors_written(&self) -> u64 {
        let name = self.device.trim_start_matches("/dev/");
        let stat = std::fs::read_to_string(format!("/sys/block/{name}/stat")).unwrap();
        stat.split_whitespace().nth(6).unwrap().parse().unwrap()
    }
}

impl Drop for DataPartition {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

fn write_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn sync() {
    assert!(Command::new("sync").status().unwrap().success());
}

/// One measurement: bytes asked by the process, bytes that reached the device.
struct Wear {
    name: &'static str,
    asked: u64,
    device: u64,
}

fn edge_run(p3: &DataPartition, dir: &Path, name: &'static str, events: u64, video: bool) -> Wear {
    let files = EdgeFiles::new(&dir.join(name), "pi-wear", "");
    let data = p3.mount.join(name);
    let log = dir.join(format!("{name}.log"));
    sync();
    let before = p3.sectors_written();
    let mut cmd_env = vec![];
    if video {
        cmd_env.push(("VIGIE_EDGE_VIDEO_SOURCE", "synthetic"));
    }
    for (k, v) in &cmd_env {
        std::env::set_var(k, v);
    }
    let files = EdgeFiles {
        data: data.clone(),
        ..files
    };
    let edge = files.start(
        &log,
        &format!("mqtt://127.0.0.1:{}", free_port()),
        None,
        "info",
        &[],
    );
    for (k, _) in &cmd_env {
        std::env::remove_var(k);
    }
    let agent = agent();
    let url = format!("{}/sim/button", edge.base);
    for _ in 0..events {
        let answer = agent.post(&url).send_empty().unwrap();
        assert_eq!(answer.status().as_u16(), 201);
        std::thread::sleep(Duration::from_millis(20));
    }
    if video {
        // The last clip's window (15 s) closes, its file is written.
        std::thread::sleep(Duration::from_secs(20));
    }
    let asked = write_bytes(edge.pid());
    edge.terminate();
    sync();
    Wear {
        name,
        asked,
        device: (p3.sectors_written() - before) * 512,
    }
}

fn sqlite_run(p3: &DataPartition, events: u64) -> Wear {
    let db = p3.mount.join("baseline.sqlite3");
    let script = format!(
        "import os, sqlite3, time, uuid\n\
         c = sqlite3.connect({db:?}, isolation_level=None)\n\
         c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA synchronous=FULL')\n\
         c.execute('CREATE TABLE events (id TEXT PRIMARY KEY, device TEXT, seq INTEGER, sensor TEXT, kind TEXT, occurred_at INTEGER)')\n\
         for seq in range(1, {events} + 1):\n\
         \x20   c.execute('BEGIN'); c.execute('INSERT INTO events VALUES (?,?,?,?,?,?)', (str(uuid.uuid4()), 'pi-wear', seq, 'mat-1', 'button_pressed', int(time.time()*1000))); c.execute('COMMIT')\n\
         \x20   time.sleep(0.02)\n\
         print([l for l in open('/proc/self/io') if l.startswith('write_bytes')][0].split()[1])\n",
        db = db.display().to_string()
    );
    sync();
    let before = p3.sectors_written();
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let asked = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    sync();
    Wear {
        name: "sqlite (WAL, synchronous=FULL)",
        asked,
        device: (p3.sectors_written() - before) * 512,
    }
}

fn main() {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        eprintln!("sd_wear: needs root (mkfs.ext4 and a loop mount); skipped");
        std::process::exit(1);
    }
    let events = env_or("VIGIE_BENCH_EVENTS", 1000);
    let dir = bench_dir();
    let p3 = DataPartition::make(dir.path());
    println!(
        "sd_wear: {events} events, one every 20 ms, on ext4 (noatime) at {} ({})",
        p3.mount.display(),
        p3.device
    );
    let baseline = sqlite_run(&p3, events);
    let runs = [
        edge_run(&p3, dir.path(), "edge-outbox", events, false),
        edge_run(&p3, dir.path(), "edge-outbox-and-video", events, true),
    ];
    let per = |bytes: u64| bytes as f64 / events as f64;
    for wear in std::iter::once(&baseline).chain(runs.iter()) {
        println!(
            "sd_wear: {:<32} asked {:>9.0} B/event, reached the device {:>9.0} B/event \
             ({:.2}x and {:.2}x the SQLite baseline)",
            wear.name,
            per(wear.asked),
            per(wear.device),
            wear.asked as f64 / baseline.asked.max(1) as f64,
            wear.device as f64 / baseline.device.max(1) as f64,
        );
    }
    drop(p3);
    keep_if_asked(dir);
}
