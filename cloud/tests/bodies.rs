//! Compressed bodies against a real `vigie-cloud`: gzip bombs (1 MiB that inflates to 1 GiB), eight
//! at once, at the login and at `POST /api/events` each answer 413, and the process's peak memory
//! (`VmHWM`) grows by less than 32 MiB (it grew by 549 MiB when a whole network chunk was inflated
//! before the size check).

mod support;

use std::process::{Command, Stdio};

use support::*;

/// 1 GiB of zeros, gzip -9: about 1 MiB.
fn bomb() -> Vec<u8> {
    let out = Command::new("sh")
        .args(["-c", "head -c 1073741824 /dev/zero | gzip -9"])
        .stdout(Stdio::piped())
        .output()
        .expect("gzip");
    assert!(out.status.success());
    out.stdout
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sends `body` gzip-encoded to `url` eight times at once: the statuses.
fn eight_at_once(url: &str, token: Option<&str>, body: &std::sync::Arc<Vec<u8>>) -> Vec<u16> {
    let sends: Vec<_> = (0..8)
        .map(|_| {
            let (url, token, body) = (url.to_owned(), token.map(str::to_owned), body.clone());
            std::thread::spawn(move || {
                let mut req = agent()
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header("Content-Encoding", "gzip");
                if let Some(t) = &token {
                    req = req.header("Authorization", &format!("Bearer {t}"));
                }
                req.send(&body[..])
                    .unwrap_or_else(|e| panic!("POST {url}: {e}"))
                    .status()
                    .as_u16()
            })
        })
        .collect();
    sends.into_iter().map(|s| s.join().unwrap()).collect()
}

#[test]
fn eight_parallel_gzip_bombs_at_the_login_and_the_bulk_route_get_413_without_growing_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = PgDatabase::create();
    let cloud = Cloud::start(
        dir.path(),
        external_services(&db.url(), "mqtt://127.0.0.1:1883", &unique("bodies-")),
    );
    let device = cloud.add_device("pi-1");
    let bomb = std::sync::Arc::new(bomb());
    println!("bomb: {} KiB inflating to 1 GiB", bomb.len() / 1024);
    let pid = cloud.proc.child.id();
    for (route, token) in [
        ("/api/auth/login", None),
        ("/api/events", Some(device.as_str())),
    ] {
        let before = peak_rss_kib(pid);
        let statuses = eight_at_once(&format!("{}{route}", cloud.base), token, &bomb);
        let grown = (peak_rss_kib(pid) - before) / 1024;
        println!("{route}: {statuses:?}, peak RSS +{grown} MiB");
        assert!(statuses.iter().all(|s| *s == 413), "{route}: {statuses:?}");
        assert!(grown < 32, "{route}: peak RSS grew by {grown} MiB");
    }
    // The cloud still answers an ordinary login.
    let (status, _) = post_json(
        &agent(),
        &format!("{}/api/auth/login", cloud.base),
        None,
        &serde_json::json!({"username": "nobody", "password": "x"}),
    );
    assert_eq!(status, 401);
}
