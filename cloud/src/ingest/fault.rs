//! Fault injection for the exactly-once tests: `VIGIE_FAULT_CRASH_AFTER_COMMITS=N` makes the process
//! abort right after its N-th ingest commit succeeds and before any of that commit's MQTT acks are
//! sent, the worst moment for a crash. Unset (always, outside tests) it costs one branch per commit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The environment variable that arms the crash.
pub const CRASH_AFTER_COMMITS: &str = "VIGIE_FAULT_CRASH_AFTER_COMMITS";

static ARMED: OnceLock<Option<u64>> = OnceLock::new();
static COMMITS: AtomicU64 = AtomicU64::new(0);

/// Called once per successful commit, before its acks: aborts the process when the armed count is
/// reached.
pub fn after_commit() {
    let armed = ARMED.get_or_init(|| {
        std::env::var(CRASH_AFTER_COMMITS)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|n| *n > 0)
    });
    if let Some(limit) = armed {
        if COMMITS.fetch_add(1, Ordering::SeqCst) + 1 >= *limit {
            eprintln!("{CRASH_AFTER_COMMITS}: aborting after commit {limit}, before its acks");
            std::process::abort();
        }
    }
}
