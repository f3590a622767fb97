//! Sessions against a real `vigie-cloud` on PostgreSQL, with 5 s access tokens
//! (`VIGIE_TOKEN_TTL_S=5`): a WebSocket is closed within 2 s of a logout, of an admin ending the
//! session, of the user being disabled (from the API or the CLI), and at its token's `exp` with the
//! code that says "reconnect with a renewed token"; failed logins from 127.0.0.2 do not lock a user
//! out of 127.0.0.1, where they logged in before, and `vigie-cloud user unlock` clears the lock.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::os::fd::FromRawFd;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const TTL_S: u64 = 5;

struct Site {
    cloud: Cloud,
    _db: PgDatabase,
    _dir: tempfile::TempDir,
}

fn site(extra: &[(&str, &str)]) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let db = PgDatabase::create();
    let mut env = external_services(&db.url(), "mqtt://127.0.0.1:1883", &unique("sessions-"));
    env.push(("VIGIE_TOKEN_TTL_S".into(), TTL_S.to_string()));
    for (k, v) in extra {
        env.push(((*k).into(), (*v).into()));
    }
    let cloud = Cloud::start(dir.path(), env);
    cloud.add_user("ada", "admin", "ada's password");
    cloud.add_user("vic", "viewer", "vic's password");
    Site {
        cloud,
        _db: db,
        _dir: dir,
    }
}

/// `vigie-cloud ARGS...` with the cloud's settings; panics unless it succeeds.
fn cli(cloud: &Cloud, args: &[&str]) {
    let mut cmd = Command::new(bin("vigie-cloud"));
    cmd.args(args);
    for (k, v) in &cloud.env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "vigie-cloud {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn login(cloud: &Cloud, user: &str, password: &str) -> Value {
    let (status, body) = post_json(
        &agent(),
        &format!("{}/api/auth/login", cloud.base),
        None,
        &json!({"username": user, "password": password}),
    );
    assert_eq!(status, 200, "login {user}: {body}");
    body
}

fn access(body: &Value) -> String {
    body["access_token"].as_str().unwrap().to_owned()
}

/// A socket on `/api/stream`; its close (code, reason, when) arrives on `closed`.
struct Socket {
    closed: mpsc::Receiver<(u16, String, Instant)>,
}

impl Socket {
    fn open(cloud: &Cloud, token: &str) -> Socket {
        let mut socket = open_stream(&cloud.base, token);
        let (tx, closed) = mpsc::channel();
        std::thread::spawn(move || loop {
            match socket.read() {
                Ok(tungstenite::Message::Close(frame)) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    let _ = tx.send((code, reason, Instant::now()));
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send((0, format!("no close frame: {e}"), Instant::now()));
                    break;
                }
            }
        });
        Socket { closed }
    }

    /// The close code and reason, and how long after `since` it came; panics after `within`.
    fn closed_within(&self, since: Instant, within: Duration) -> (u16, String, Duration) {
        let (code, reason, at) = self
            .closed
            .recv_timeout(within + Duration::from_secs(1))
            .unwrap_or_else(|_| panic!("the socket was still open {within:?} later"));
        let after = at.saturating_duration_since(since);
        assert!(
            after <= within,
            "closed {after:?} later, beyond {within:?}: {code} {reason}"
        );
        (code, reason, after)
    }

    fn still_open(&self) -> bool {
        matches!(self.closed.try_recv(), Err(mpsc::TryRecvError::Empty))
    }
}

#[test]
fn a_websocket_is_closed_within_two_seconds_of_its_session_ending_for_any_reason() {
    let s = site(&[]);
    let admin = access(&login(&s.cloud, "ada", "ada's password"));
    let two = Duration::from_secs(2);

    // Logout.
    let vic = access(&login(&s.cloud, "vic", "vic's password"));
    let socket = Socket::open(&s.cloud, &vic);
    let other = Socket::open(&s.cloud, &admin);
    let t = Instant::now();
    let (status, _) = post_json(
        &agent(),
        &format!("{}/api/auth/logout", s.cloud.base),
        Some(&vic),
        &json!({}),
    );
    assert_eq!(status, 204);
    let (code, reason, after) = socket.closed_within(t, two);
    assert_eq!(code, 4001, "{reason}");
    println!("logout: closed with {code} after {after:?}");
    assert!(other.still_open(), "another session's socket stays open");

    // An admin ends the user's sessions.
    let vic = access(&login(&s.cloud, "vic", "vic's password"));
    let socket = Socket::open(&s.cloud, &vic);
    let t = Instant::now();
    let (status, body) = post_json(
        &agent(),
        &format!("{}/api/users/vic/end-sessions", s.cloud.base),
        Some(&admin),
        &json!({}),
    );
    assert_eq!(status, 200, "{body}");
    let (code, _, after) = socket.closed_within(t, two);
    assert_eq!(code, 4001);
    println!("admin end-sessions: closed with {code} after {after:?}");

    // An admin disables the user over the API.
    let vic = access(&login(&s.cloud, "vic", "vic's password"));
    let socket = Socket::open(&s.cloud, &vic);
    let t = Instant::now();
    let mut resp = agent()
        .patch(&format!("{}/api/users/vic", s.cloud.base))
        .header("Authorization", &format!("Bearer {admin}"))
        .header("Content-Type", "application/json")
        .send(json!({"disabled": true}).to_string())
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        204,
        "{}",
        resp.body_mut().read_to_string().unwrap_or_default()
    );
    let (code, _, after) = socket.closed_within(t, two);
    assert_eq!(code, 4001);
    println!("API disable: closed with {code} after {after:?}");
    cli(&s.cloud, &["user", "enable", "vic"]);

    // The CLI disables the user: another process, seen by the cloud's sweep.
    let vic = access(&login(&s.cloud, "vic", "vic's password"));
    let socket = Socket::open(&s.cloud, &vic);
    cli(&s.cloud, &["user", "disable", "vic"]);
    let t = Instant::now();
    let (code, _, after) = socket.closed_within(t, two);
    assert_eq!(code, 4001);
    println!("CLI disable: closed with {code} after {after:?} (after the CLI exited)");
    let (status, _) = get_json(
        &agent(),
        &format!("{}/api/events", s.cloud.base),
        Some(&vic),
    );
    assert_eq!(status, 401, "the disabled user's token is refused too");
}

#[test]
fn a_websocket_closes_at_its_tokens_expiry_with_the_reconnect_code_and_reopens_with_the_renewed_token(
) {
    let s = site(&[]);
    let body = login(&s.cloud, "vic", "vic's password");
    let opened = Instant::now();
    let socket = Socket::open(&s.cloud, &access(&body));
    let (code, reason, after) = socket.closed_within(opened, Duration::from_secs(TTL_S + 1));
    assert_eq!(code, 4002, "{reason}");
    assert!(reason.contains("renewed"), "{reason}");
    assert!(
        after >= Duration::from_secs(TTL_S - 2),
        "closed early, after {after:?}"
    );
    println!("token exp ({TTL_S} s): closed with {code} after {after:?}");

    // The console renews its token and reconnects; the session goes on.
    let (status, renewed) = post_json(
        &agent(),
        &format!("{}/api/auth/refresh", s.cloud.base),
        None,
        &json!({"refresh_token": body["refresh_token"]}),
    );
    assert_eq!(status, 200, "{renewed}");
    let again = Socket::open(&s.cloud, &access(&renewed));
    assert!(again.still_open());
}

#[test]
fn the_cli_changes_a_users_role_password_and_sessions_and_a_running_cloud_applies_each_at_once() {
    let s = site(&[]);
    let users = format!("{}/api/users", s.cloud.base);
    let vic = access(&login(&s.cloud, "vic", "vic's password"));
    assert_eq!(get_json(&agent(), &users, Some(&vic)).0, 403, "a viewer");
    cli(&s.cloud, &["user", "role", "vic", "--role", "admin"]);
    assert_eq!(
        get_json(&agent(), &users, Some(&vic)).0,
        200,
        "the same token, now an admin's"
    );
    cli(&s.cloud, &["user", "role", "vic", "--role", "viewer"]);
    assert_eq!(get_json(&agent(), &users, Some(&vic)).0, 403);

    cli(&s.cloud, &["user", "end-sessions", "vic"]);
    assert_eq!(
        get_json(&agent(), &users, Some(&vic)).0,
        401,
        "session ended"
    );

    let vic = access(&login(&s.cloud, "vic", "vic's password"));
    let mut cmd = Command::new(bin("vigie-cloud"));
    cmd.args(["user", "password", "vic", "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in &s.cloud.env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a new password for vic\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        get_json(&agent(), &users, Some(&vic)).0,
        401,
        "a new password ends the sessions"
    );
    let (status, _) = post_json(
        &agent(),
        &format!("{}/api/auth/login", s.cloud.base),
        None,
        &json!({"username": "vic", "password": "vic's password"}),
    );
    assert_eq!(status, 401, "the old password is refused");
    login(&s.cloud, "vic", "a new password for vic");

    let admin = access(&login(&s.cloud, "ada", "ada's password"));
    let (_, trail) = get_json(
        &agent(),
        &format!("{}/api/audit?limit=100", s.cloud.base),
        Some(&admin),
    );
    let actions: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for wanted in [
        "user_role_changed",
        "sessions_ended",
        "user_password_changed",
    ] {
        assert!(actions.contains(&wanted), "{wanted} in {actions:?}");
    }
    assert!(
        trail
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "user_role_changed"
                && e["actor"].as_str().unwrap().starts_with("cli:")),
        "the CLI is the actor: {trail}"
    );
}

/// `POST path` with a JSON body to the cloud at 127.0.0.1:`port` from the local address `from`
/// (any 127.0.0.0/8 address: loopback), over a socket bound before connecting.
fn post_from(from: Ipv4Addr, port: u16, path: &str, body: &Value, extra: &str) -> (u16, Value) {
    fn sockaddr(ip: Ipv4Addr, port: u16) -> libc::sockaddr_in {
        libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(ip).to_be(),
            },
            sin_zero: [0; 8],
        }
    }
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket, bound and connected with valid sockaddr_in values; the fd is owned
    // by the TcpStream from then on.
    let mut stream = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let local = sockaddr(from, 0);
        let rc = libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len);
        assert_eq!(rc, 0, "bind {from}: {}", std::io::Error::last_os_error());
        let remote = sockaddr(Ipv4Addr::LOCALHOST, port);
        let rc = libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len);
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.to_string();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let text = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        status,
        serde_json::from_str(text).unwrap_or(Value::String(text.into())),
    )
}

fn port_of(cloud: &Cloud) -> u16 {
    cloud.base.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn failures_from_another_address_do_not_lock_the_user_where_they_logged_in_and_the_cli_unlocks() {
    let s = site(&[("VIGIE_TRUSTED_PROXIES", "127.0.0.3/32")]);
    let port = port_of(&s.cloud);
    let (home, attacker) = (Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2));
    let right = json!({"username": "vic", "password": "vic's password"});
    let wrong = json!({"username": "vic", "password": "guess"});
    assert_eq!(post_from(home, port, "/api/auth/login", &right, "").0, 200);
    // The default policy: 5 failures lock.
    for _ in 0..5 {
        assert_eq!(
            post_from(attacker, port, "/api/auth/login", &wrong, "").0,
            401
        );
    }
    let (status, body) = post_from(attacker, port, "/api/auth/login", &right, "");
    assert_eq!(status, 429, "the attacker's address is locked: {body}");
    let (status, body) = post_from(home, port, "/api/auth/login", &right, "");
    assert_eq!(status, 200, "vic still logs in from home: {body}");

    cli(&s.cloud, &["user", "unlock", "vic"]);
    let (status, body) = post_from(attacker, port, "/api/auth/login", &right, "");
    assert_eq!(status, 200, "unlocked: {body}");

    // X-Forwarded-For: believed from the trusted proxy (127.0.0.3), ignored from anyone else.
    let proxy = Ipv4Addr::new(127, 0, 0, 3);
    post_from(
        proxy,
        port,
        "/api/auth/login",
        &wrong,
        "X-Forwarded-For: 198.51.100.7\r\n",
    );
    post_from(
        attacker,
        port,
        "/api/auth/login",
        &wrong,
        "X-Forwarded-For: 198.51.100.8\r\n",
    );
    let admin = access(&login(&s.cloud, "ada", "ada's password"));
    let (status, trail) = get_json(
        &agent(),
        &format!("{}/api/audit?limit=100", s.cloud.base),
        Some(&admin),
    );
    assert_eq!(status, 200);
    let sources: Vec<(&str, &str)> = trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "login_failed")
        .map(|e| {
            (
                e["source"].as_str().unwrap_or(""),
                e["actor"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(sources.contains(&("198.51.100.7", "vic")), "{sources:?}");
    assert!(
        !sources.iter().any(|(s, _)| *s == "198.51.100.8"),
        "{sources:?}"
    );
    assert!(sources.contains(&("127.0.0.2", "vic")), "{sources:?}");
    let actions: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"user_unlocked"), "{actions:?}");
}

/// The process's peak resident memory (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_flood_of_failed_logins_grows_the_cloud_by_no_more_than_its_hashing_threads_memory() {
    // Regression: each argon2 check (19 MiB) stayed in the process (10 logins: +154 MiB).
    let s = site(&[]);
    let pid = s.cloud.proc.child.id();
    let before = peak_rss_kib(pid);
    let url = format!("{}/api/auth/login", s.cloud.base);
    let started = Instant::now();
    let guesses: Vec<_> = (0..20)
        .map(|n| {
            let url = url.clone();
            std::thread::spawn(move || {
                let body = json!({"username": format!("ghost-{n}"), "password": "guess"});
                post_json(&agent(), &url, None, &body).0
            })
        })
        .collect();
    for g in guesses {
        assert_eq!(g.join().unwrap(), 401);
    }
    let grown_mib = (peak_rss_kib(pid) - before) / 1024;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    println!(
        "20 parallel failed logins: peak RSS +{grown_mib} MiB in {:?}",
        started.elapsed()
    );
    assert!(
        grown_mib <= cores * 19 + 16,
        "peak RSS grew by {grown_mib} MiB for 20 logins ({cores} hashing threads)"
    );
}
