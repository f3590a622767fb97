//! Vigie's system tests: what is shipped (the container images, the Helm chart's rendered pods, the
//! edge's .deb) built and run for real on this machine, in `tests/`. They drive the workspace's
//! binaries from `target/PROFILE` and the chart through `charts/tests`; this library holds their
//! shared helpers.

use std::process::{Command, Output};

/// Runs `cmd`, which must succeed; its output. A failure shows what it printed.
pub fn checked(mut cmd: impl std::borrow::BorrowMut<Command>, what: &str) -> Output {
    let out = cmd
        .borrow_mut()
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Checks `deb` with lintian at every level, down to pedantic: it must find nothing but what the
/// package's overrides override.
pub fn assert_lintian_clean(deb: &std::path::Path) {
    let out = Command::new("lintian")
        .args([
            "--display-level",
            ">=pedantic",
            "--fail-on",
            "error,warning,info,pedantic",
        ])
        .arg(deb)
        .output()
        .expect("lintian runs (make deps installs it)");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let tags: Vec<&str> = said
        .lines()
        .filter(|l| l.len() > 2 && &l[1..3] == ": " && !l.starts_with("N:"))
        .collect();
    assert!(
        out.status.success() && tags.is_empty(),
        "lintian on {}: {said}{}",
        deb.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
