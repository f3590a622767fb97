//! Local retention of clips and snapshots (pure): what to delete so the media directory stays under
//! its size bound and nothing is older than its age bound. Media already in the cloud goes first;
//! media not yet uploaded is deleted only when the bounds leave no other choice, and is reported so
//! the loss is logged and counted, never silent.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::spool::QueueEntry;

/// The bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub max_bytes: u64,
    pub max_age: Duration,
}

/// Why an entry is to be deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Older than the age bound.
    Age,
    /// The size bound needed the room.
    Size,
}

/// One deletion decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deletion {
    pub id: Uuid,
    pub reason: Reason,
    /// Whether the cloud had it (false: the media is lost).
    pub uploaded: bool,
}

/// What to delete from `entries` (oldest first) at `now`.
pub fn plan(entries: &[QueueEntry], policy: RetentionPolicy, now: DateTime<Utc>) -> Vec<Deletion> {
    let max_age = chrono::Duration::from_std(policy.max_age).unwrap_or(chrono::Duration::MAX);
    let mut out = Vec::new();
    let mut kept: Vec<&QueueEntry> = Vec::new();
    for entry in entries {
        if now - entry.queued_at > max_age {
            out.push(Deletion {
                id: entry.id(),
                reason: Reason::Age,
                uploaded: entry.uploaded,
            });
        } else {
            kept.push(entry);
        }
    }
    let mut total: u64 = kept.iter().map(|e| e.size()).sum();
    kept.sort_by_key(|e| (!e.uploaded, e.queued_at));
    for entry in kept {
        if total <= policy.max_bytes {
            break;
        }
        total -= entry.size();
        out.push(Deletion {
            id: entry.id(),
            reason: Reason::Size,
            uploaded: entry.uploaded,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::media::{MediaManifest, SnapshotTaken, MEDIA_SCHEMA_VERSION};
    use protocol::DeviceId;
    use std::path::PathBuf;

    fn entry(size: u64, age_s: i64, uploaded: bool, now: DateTime<Utc>) -> QueueEntry {
        QueueEntry {
            manifest: MediaManifest::Snapshot(SnapshotTaken {
                schema_version: MEDIA_SCHEMA_VERSION,
                snapshot_id: Uuid::now_v7(),
                device: DeviceId::new("pi-1").unwrap(),
                event_id: None,
                taken_at: now,
                size_bytes: size,
                sha256: "0".repeat(64),
                width: 64,
                height: 48,
            }),
            file: PathBuf::from("x"),
            queued_at: now - chrono::Duration::seconds(age_s),
            uploaded,
        }
    }

    const POLICY: RetentionPolicy = RetentionPolicy {
        max_bytes: 100,
        max_age: Duration::from_secs(3600),
    };

    #[test]
    fn within_bounds_nothing_is_deleted() {
        let now = Utc::now();
        let entries = [entry(50, 10, true, now), entry(50, 5, false, now)];
        assert!(plan(&entries, POLICY, now).is_empty());
    }

    #[test]
    fn the_size_bound_takes_uploaded_media_first_even_when_newer() {
        let now = Utc::now();
        let old_unsent = entry(60, 30, false, now);
        let newer_uploaded = entry(60, 20, true, now);
        let newest = entry(30, 10, false, now);
        let entries = [old_unsent.clone(), newer_uploaded.clone(), newest];
        let plan = plan(&entries, POLICY, now);
        assert_eq!(
            plan,
            vec![Deletion {
                id: newer_uploaded.id(),
                reason: Reason::Size,
                uploaded: true
            }]
        );
    }

    #[test]
    fn unsent_media_goes_only_when_nothing_uploaded_is_left_and_is_reported() {
        let now = Utc::now();
        let a = entry(80, 30, false, now);
        let b = entry(80, 20, false, now);
        let plan = plan(&[a.clone(), b], POLICY, now);
        assert_eq!(
            plan,
            vec![Deletion {
                id: a.id(),
                reason: Reason::Size,
                uploaded: false
            }]
        );
    }

    #[test]
    fn the_age_bound_deletes_old_media_whatever_its_state() {
        let now = Utc::now();
        let old = entry(1, 7200, false, now);
        let plan = plan(&[old.clone(), entry(1, 10, false, now)], POLICY, now);
        assert_eq!(
            plan,
            vec![Deletion {
                id: old.id(),
                reason: Reason::Age,
                uploaded: false
            }]
        );
    }
}
