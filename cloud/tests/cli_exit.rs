//! Regression: `user add` and `device add` against PostgreSQL sometimes died with SIGSEGV at exit,
//! after doing their work (r2d2 opened an idle connection in the background while the process exited).

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::*;

#[test]
fn short_commands_against_postgresql_exit_cleanly_every_time() {
    let db = PgDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(bin("vigie-cloud"))
            .args(args)
            .env("VIGIE_DATABASE_URL", db.url())
            .env("VIGIE_DATA_DIR", dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {} ({})",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for i in 0..15 {
        run(
            &[
                "user",
                "add",
                &format!("user{i}"),
                "--role",
                "viewer",
                "--password-stdin",
            ],
            Some("correct horse battery\n"),
        );
        run(&["device", "add", &format!("pi-{i}")], None);
    }
}
