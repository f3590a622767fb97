//! Fault injection for the tests, each armed by an environment variable read once:
//! - `VIGIE_FAULT_CRASH_AFTER_COMMITS=N` makes the process abort right after its N-th ingest
//!   commit succeeds and before any of that commit's MQTT acks are sent, the worst moment for a
//!   crash (the exactly-once tests).
//! - `VIGIE_FAULT_REFUSE_EVENT_ID=<uuid>` makes the ingest's store refuse every commit whose events
//!   hold that event id, as `Invalid`, or as `Internal` with `VIGIE_FAULT_REFUSE_AS=internal`:
//!   a refusal protocol validation would never let through, to prove the ingest's bisection
//!   (`cloud/tests/ingest_poison.rs`).
//! - `VIGIE_FAULT_STALL_INGEST=1` blocks the ingest actor's thread for good right after its first
//!   commit, as a deadlock would: its heartbeat stops and `/healthz` must fail.
//!
//! Unset (always, outside tests) each costs one branch per commit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use protocol::EventEnvelope;
use uuid::Uuid;

use crate::store::StoreError;

/// The environment variable that arms the crash.
pub const CRASH_AFTER_COMMITS: &str = "VIGIE_FAULT_CRASH_AFTER_COMMITS";
/// The environment variable naming the event id the store refuses.
pub const REFUSE_EVENT_ID: &str = "VIGIE_FAULT_REFUSE_EVENT_ID";
/// `invalid` (the default) or `internal`: the error the refusal takes.
pub const REFUSE_AS: &str = "VIGIE_FAULT_REFUSE_AS";
/// The environment variable that wedges the ingest after its first commit.
pub const STALL_INGEST: &str = "VIGIE_FAULT_STALL_INGEST";

/// An armed refusal: the event id, and whether it is refused as `Internal` (else `Invalid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub event_id: Uuid,
    pub internal: bool,
}

impl Refusal {
    /// The refusal the two settings arm; `None` when the id is unset or not a UUID.
    pub fn parse(event_id: Option<&str>, refuse_as: Option<&str>) -> Option<Refusal> {
        let event_id = Uuid::parse_str(event_id?.trim()).ok()?;
        let internal = refuse_as.is_some_and(|a| a.trim().eq_ignore_ascii_case("internal"));
        Some(Refusal { event_id, internal })
    }

    /// The store's answer to a commit holding `events`, if this refusal applies to it.
    pub fn check(&self, events: &[EventEnvelope]) -> Result<(), StoreError> {
        if !events.iter().any(|e| e.id == self.event_id) {
            return Ok(());
        }
        let why = format!(
            "{REFUSE_EVENT_ID}: the store refuses event {} (fault injection)",
            self.event_id
        );
        Err(if self.internal {
            StoreError::Internal(why)
        } else {
            StoreError::Invalid(why)
        })
    }
}

static REFUSAL: OnceLock<Option<Refusal>> = OnceLock::new();

/// Called before each ingest commit of `events`: the refusal, when armed and one of them is its
/// event.
pub fn before_commit(events: &[EventEnvelope]) -> Result<(), StoreError> {
    let armed = REFUSAL.get_or_init(|| {
        Refusal::parse(
            std::env::var(REFUSE_EVENT_ID).ok().as_deref(),
            std::env::var(REFUSE_AS).ok().as_deref(),
        )
    });
    match armed {
        Some(refusal) => refusal.check(events),
        None => Ok(()),
    }
}

static ARMED: OnceLock<Option<u64>> = OnceLock::new();
static COMMITS: AtomicU64 = AtomicU64::new(0);

/// Called once per successful commit, before its acks: aborts the process when the armed count is
/// reached.
pub fn after_commit() {
    static STALL: OnceLock<bool> = OnceLock::new();
    if *STALL.get_or_init(|| std::env::var(STALL_INGEST).is_ok_and(|v| v.trim() == "1")) {
        eprintln!("{STALL_INGEST}: the ingest's thread stops here, as in a deadlock");
        loop {
            std::thread::park();
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_armed_only_by_a_uuid_and_refuses_only_its_event() {
        let id = Uuid::now_v7();
        assert_eq!(Refusal::parse(None, Some("internal")), None);
        assert_eq!(Refusal::parse(Some("not-a-uuid"), None), None);
        let invalid = Refusal::parse(Some(&id.to_string()), None).unwrap();
        assert!(!invalid.internal);
        let internal = Refusal::parse(Some(&id.to_string()), Some("Internal")).unwrap();
        assert!(internal.internal);

        let event = |id: Uuid| {
            let json = serde_json::json!({
                "schema_version": 1, "id": id, "device": "pi-1", "seq": 1,
                "sensor": "mat-1", "kind": "motion", "occurred_at": "2026-12-03T10:00:00.000Z"
            });
            EventEnvelope::from_json(json.to_string().as_bytes()).unwrap()
        };
        let others = [event(Uuid::now_v7()), event(Uuid::now_v7())];
        assert!(invalid.check(&others).is_ok());
        let with_it = [others[0].clone(), event(id)];
        assert!(matches!(
            invalid.check(&with_it),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            internal.check(&with_it),
            Err(StoreError::Internal(_))
        ));
    }
}
