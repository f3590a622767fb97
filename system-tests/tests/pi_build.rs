//! The Pi's build: `make pi` (which `make test` runs before the tests) cross-builds vigie-edge for
//! aarch64 with Debian's arm64 FFmpeg and packages it. The arm64 .deb is lintian clean like the
//! amd64 one, its binary is an aarch64 executable linking the arm64 FFmpeg, and under qemu-user it
//! runs: a simulated edge answers its health port and stores an event durably, then stops cleanly
//! on SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigie_system_tests::checked;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn arm64_deb() -> PathBuf {
    let dir = workspace().join("target/debian");
    let version = env!("CARGO_PKG_VERSION");
    let deb = dir.join(format!("vigie-edge_{version}-1_arm64.deb"));
    assert!(
        deb.exists(),
        "{} is missing: `make pi` builds it (and `make test` runs make pi first)",
        deb.display()
    );
    deb
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, answer))
}

#[test]
fn the_arm64_edge_is_packaged_lintian_clean_and_runs_under_qemu() {
    let deb = arm64_deb();
    let info = checked(Command::new("dpkg-deb").arg("-I").arg(&deb), "dpkg-deb -I");
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    assert!(info.contains("Architecture: arm64"), "{info}");
    assert!(
        info.contains("libavcodec59"),
        "it links Debian's FFmpeg: {info}"
    );
    vigie_system_tests::assert_lintian_clean(&deb);

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    checked(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root),
        "dpkg-deb -x",
    );
    let edge = root.join("usr/bin/vigie-edge");
    let kind = checked(Command::new("file").arg("-b").arg(&edge), "file");
    let kind = String::from_utf8_lossy(&kind.stdout).into_owned();
    assert!(kind.contains("ARM aarch64"), "{kind}");
    let version = checked(
        Command::new("qemu-aarch64-static")
            .arg(&edge)
            .arg("--version"),
        "the arm64 binary under qemu-user (make pi installs qemu-user-static)",
    );
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("vigie-edge {}", env!("CARGO_PKG_VERSION"))
    );

    // A simulated edge, emulated: its outbox (sled, the seal), its actors and its HTTP port.
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("edge.log")).unwrap();
    let mut child = Command::new("qemu-aarch64-static")
        .arg(&edge)
        .args(["run", "--config"])
        .arg(workspace().join("edge/examples/simulated.toml"))
        .env("VIGIE_EDGE_DATA_DIR", dir.path().join("data"))
        .env("VIGIE_EDGE_HTTP_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "VIGIE_EDGE_MQTT_URL",
            format!("mqtt://127.0.0.1:{}", free_port()),
        )
        .env("VIGIE_EDGE_DEVICE_ID", "pi-qemu")
        .env("VIGIE_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let logs = || std::fs::read_to_string(dir.path().join("edge.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(120);
    while http(port, "GET", "/healthz").map(|(s, _)| s) != Some(200) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "it exited:\n{}",
            logs()
        );
        assert!(
            Instant::now() < deadline,
            "no /healthz under qemu:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, answer) = http(port, "POST", "/sim/button").unwrap();
    assert_eq!(status, 201, "{answer}\n{}", logs());
    assert!(answer.contains("\"seq\":1"), "{answer}");
    checked(
        Command::new("kill").args(["-TERM", &child.id().to_string()]),
        "kill -TERM",
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "no exit after SIGTERM:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "{exit}:\n{}", logs());
    assert!(logs().contains("outbox flushed; stopped"), "{}", logs());
}
