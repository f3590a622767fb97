//! The committed unit, `edge/debian/vigie-edge.service`, as systemd reads it: `systemd-analyze
//! verify` prints nothing (it exits 0 even on a bad value, so any output fails), and `systemd-analyze
//! security --offline=yes` scores its exposure at most 3.0 (`--threshold=30`: ten times the printed
//! score). Both run against a throwaway root holding the machine's own units, the unit and the binary
//! at the paths the package installs, so nothing of this machine's systemd is touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn unit_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("debian/vigie-edge.service")
}

fn provision_unit() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("debian/vigie-edge-provision.service"),
    )
    .unwrap()
}

/// A root with /usr/lib/systemd/system (the machine's units), `unit` at
/// /etc/systemd/system/vigie-edge.service beside the first-boot unit, and the binary at
/// /usr/bin/vigie-edge.
fn root_with(unit: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let units = root.path().join("usr/lib/systemd");
    std::fs::create_dir_all(&units).unwrap();
    let copied = Command::new("cp")
        .args(["-r", "/usr/lib/systemd/system"])
        .arg(&units)
        .status()
        .unwrap();
    assert!(
        copied.success(),
        "the machine's systemd units (package systemd)"
    );
    for dir in ["etc/systemd/system", "usr/bin", "etc/vigie"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    std::fs::write(
        root.path().join("etc/systemd/system/vigie-edge.service"),
        unit,
    )
    .unwrap();
    std::fs::write(
        root.path()
            .join("etc/systemd/system/vigie-edge-provision.service"),
        provision_unit(),
    )
    .unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_vigie-edge"),
        root.path().join("usr/bin/vigie-edge"),
    )
    .unwrap();
    root
}

fn analyze(root: &Path, args: &[&str]) -> Output {
    analyze_unit(root, args, "vigie-edge.service")
}

fn analyze_unit(root: &Path, args: &[&str], unit: &str) -> Output {
    Command::new("systemd-analyze")
        .args(args)
        .arg(format!("--root={}", root.display()))
        .arg(format!("/etc/systemd/system/{unit}"))
        .output()
        .expect("systemd-analyze runs (Debian package systemd; make deps installs it)")
}

fn printed(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn systemd_analyze_verify_says_nothing_of_the_unit_and_would_of_a_bad_one() {
    let unit = std::fs::read_to_string(unit_file()).unwrap();
    let root = root_with(&unit);
    let out = analyze(root.path(), &["verify", "--man=no"]);
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(
        printed(&out),
        "",
        "systemd-analyze verify on the committed unit"
    );
    let out = analyze_unit(
        root.path(),
        &["verify", "--man=no"],
        "vigie-edge-provision.service",
    );
    assert_eq!(
        printed(&out),
        "",
        "systemd-analyze verify on the first-boot unit"
    );

    // The same check on a misspelt key and a bad value: it speaks (and still exits 0).
    let bad = unit.replace(
        "UMask=0077\n",
        "UMask=0077\nProtectSystm=strict\nMemoryMax=lots\n",
    );
    let root = root_with(&bad);
    let out = analyze(root.path(), &["verify", "--man=no"]);
    let said = printed(&out);
    assert!(said.contains("Unknown key 'ProtectSystm'"), "{said}");
    assert!(said.contains("Invalid memory limit 'lots'"), "{said}");
}

#[test]
fn the_unit_s_exposure_is_at_most_3_0() {
    let unit = std::fs::read_to_string(unit_file()).unwrap();
    for line in [
        "Type=notify",
        "ExecStart=/usr/bin/vigie-edge run --config /etc/vigie/edge.toml",
        "EnvironmentFile=-/etc/vigie/site.env",
        "CapabilityBoundingSet=\n",
        "DevicePolicy=closed",
        "SystemCallFilter=@system-service",
        "ProtectSystem=strict",
        "StateDirectory=vigie",
    ] {
        assert!(unit.contains(line), "the unit has {line:?}");
    }
    let watchdog = unit
        .lines()
        .find_map(|l| l.strip_prefix("WatchdogSec="))
        .expect("WatchdogSec=");
    let seconds: u64 = watchdog.trim_end_matches('s').parse().unwrap();
    assert!(
        seconds >= 2 * ::actors::BEAT_WITHIN.as_secs(),
        "WatchdogSec={watchdog} leaves the outbox's beat allowance ({:?}) room",
        ::actors::BEAT_WITHIN
    );

    let root = root_with(&unit);
    let out = analyze(
        root.path(),
        &["security", "--offline=yes", "--threshold=30"],
    );
    let said = printed(&out);
    let score: f64 = said
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for vigie-edge.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{said}"));
    eprintln!("systemd-analyze security: exposure {score}");
    assert!(out.status.success(), "above the threshold of 3.0:\n{said}");
    assert!(score <= 3.0, "{score}");
}
