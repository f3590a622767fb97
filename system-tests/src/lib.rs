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
