//! The media outbox on disk: clips and snapshots waiting for (or done with) their upload.
//!
//! Layout under the media directory: `clips/{id}.mp4`, `snapshots/{id}.jpg`, and one queue entry
//! `queue/{id}.json` per file ([`QueueEntry`]: the upload manifest, the file, whether the cloud has
//! it). A file is fsynced under its final name before its entry is written; an entry is written as
//! `.partial`, fsynced, renamed, and the directory fsynced. So after a crash or a power cut an entry
//! always names a complete file; a file without an entry (the crash fell between the two) is
//! removed at the next start, as are `.partial` leftovers.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use protocol::media::MediaManifest;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Why the media outbox could not do something; says what and where.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("{what} ({}): {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("queue entry {} is unreadable: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// One clip or snapshot in the media outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub manifest: MediaManifest,
    /// The file, relative to the media directory.
    pub file: PathBuf,
    /// When it entered the queue (its age for retention).
    pub queued_at: DateTime<Utc>,
    /// The cloud confirmed the whole file (size and SHA-256).
    #[serde(default)]
    pub uploaded: bool,
}

impl QueueEntry {
    pub fn id(&self) -> Uuid {
        self.manifest.id()
    }
    pub fn size(&self) -> u64 {
        self.manifest.size_bytes()
    }
    pub fn is_clip(&self) -> bool {
        matches!(self.manifest, MediaManifest::Clip(_))
    }
}

/// What [`Spool::recover`] cleaned up at start.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub entries: usize,
    pub orphans_removed: usize,
    pub partials_removed: usize,
}

/// The media directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// Opens (creating) the media directory and its three folders.
    pub fn open(dir: &Path) -> Result<Spool, SpoolError> {
        for sub in ["clips", "snapshots", "queue", "work"] {
            let path = dir.join(sub);
            crate::files::private_dir(&path).map_err(io("creating the media directory", &path))?;
        }
        Ok(Spool {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the recorder writes files before they join the queue (same file system, so adopting
    /// them is a rename).
    pub fn work_dir(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// Where a clip's file goes, relative to the media directory.
    pub fn clip_file(id: Uuid) -> PathBuf {
        Path::new("clips").join(format!("{}.mp4", id.as_hyphenated()))
    }

    /// Where a snapshot's file goes, relative to the media directory.
    pub fn snapshot_file(id: Uuid) -> PathBuf {
        Path::new("snapshots").join(format!("{}.jpg", id.as_hyphenated()))
    }

    pub fn path(&self, relative: &Path) -> PathBuf {
        self.dir.join(relative)
    }

    /// Moves a complete, fsynced file made elsewhere in the same file system to `relative`, and
    /// fsyncs the directory. Returns its size and SHA-256 (lowercase hex).
    pub fn adopt(&self, from: &Path, relative: &Path) -> Result<(u64, String), SpoolError> {
        let to = self.path(relative);
        let (size, sha256) = hash_file(from)?;
        fs::rename(from, &to).map_err(io("moving a file into the media outbox", &to))?;
        sync_dir(&to)?;
        Ok((size, sha256))
    }

    /// Writes `entry` durably: after this returns it survives a crash or a power cut.
    pub fn add(&self, entry: &QueueEntry) -> Result<(), SpoolError> {
        let path = self.entry_path(entry.id());
        let partial = path.with_extension("json.partial");
        let text = serde_json::to_vec_pretty(entry).expect("an entry serialises");
        let mut file =
            fs::File::create(&partial).map_err(io("writing a media queue entry", &partial))?;
        file.write_all(&text)
            .and_then(|_| file.sync_all())
            .map_err(io("writing a media queue entry", &partial))?;
        fs::rename(&partial, &path).map_err(io("renaming a media queue entry", &path))?;
        sync_dir(&path)
    }

    /// Marks an entry uploaded (rewritten durably).
    pub fn mark_uploaded(&self, id: Uuid) -> Result<(), SpoolError> {
        let Some(mut entry) = self.get(id)? else {
            return Ok(());
        };
        if !entry.uploaded {
            entry.uploaded = true;
            self.add(&entry)?;
        }
        Ok(())
    }

    /// Deletes an entry and its file (the entry first, so no entry ever names a missing file).
    pub fn remove(&self, entry: &QueueEntry) -> Result<(), SpoolError> {
        let path = self.entry_path(entry.id());
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("removing a media queue entry", &path)(e)),
        }
        sync_dir(&path)?;
        let file = self.path(&entry.file);
        match fs::remove_file(&file) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("removing a media file", &file)(e)),
        }
    }

    pub fn get(&self, id: Uuid) -> Result<Option<QueueEntry>, SpoolError> {
        read_entry(&self.entry_path(id))
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Result<Vec<QueueEntry>, SpoolError> {
        let queue = self.dir.join("queue");
        let mut all = Vec::new();
        for item in fs::read_dir(&queue).map_err(io("listing the media queue", &queue))? {
            let path = item.map_err(io("listing the media queue", &queue))?.path();
            if path.extension().is_some_and(|e| e == "json") {
                if let Some(entry) = read_entry(&path)? {
                    all.push(entry);
                }
            }
        }
        all.sort_by_key(|e| (e.queued_at, e.id()));
        Ok(all)
    }

    /// Removes `.partial` leftovers and files no entry names (a crash between a file and its
    /// entry); a corrupt entry is moved aside (`.corrupt`) and its file kept for a person to look.
    pub fn recover(&self) -> Result<Recovered, SpoolError> {
        let mut report = Recovered::default();
        let queue = self.dir.join("queue");
        let mut named = std::collections::HashSet::new();
        for item in fs::read_dir(&queue).map_err(io("listing the media queue", &queue))? {
            let path = item.map_err(io("listing the media queue", &queue))?.path();
            let name = path.to_string_lossy();
            if name.ends_with(".partial") {
                fs::remove_file(&path).map_err(io("removing a partial entry", &path))?;
                report.partials_removed += 1;
                continue;
            }
            if !name.ends_with(".json") {
                continue;
            }
            match read_entry(&path) {
                Ok(Some(entry)) => {
                    named.insert(entry.file.clone());
                    report.entries += 1;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "media queue entry unreadable; moved aside");
                    let aside = path.with_extension("corrupt");
                    fs::rename(&path, &aside).map_err(io("moving a corrupt entry aside", &path))?;
                }
            }
        }
        let work = self.work_dir();
        for item in fs::read_dir(&work).map_err(io("listing the recorder's work folder", &work))? {
            let path = item
                .map_err(io("listing the recorder's work folder", &work))?
                .path();
            fs::remove_file(&path).map_err(io("removing a leftover work file", &path))?;
            report.partials_removed += 1;
        }
        for sub in ["clips", "snapshots"] {
            let folder = self.dir.join(sub);
            for item in fs::read_dir(&folder).map_err(io("listing media files", &folder))? {
                let path = item.map_err(io("listing media files", &folder))?.path();
                let relative = Path::new(sub).join(path.file_name().unwrap_or_default());
                if named.contains(&relative) {
                    continue;
                }
                fs::remove_file(&path).map_err(io("removing an orphan media file", &path))?;
                if path.to_string_lossy().ends_with(".partial") {
                    report.partials_removed += 1;
                } else {
                    report.orphans_removed += 1;
                }
            }
        }
        Ok(report)
    }

    fn entry_path(&self, id: Uuid) -> PathBuf {
        self.dir
            .join("queue")
            .join(format!("{}.json", id.as_hyphenated()))
    }
}

fn read_entry(path: &Path) -> Result<Option<QueueEntry>, SpoolError> {
    let text = match fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("reading a media queue entry", path)(e)),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| SpoolError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Size and SHA-256 (lowercase hex) of a file, read in 64 KiB blocks.
pub fn hash_file(path: &Path) -> Result<(u64, String), SpoolError> {
    let mut file = fs::File::open(path).map_err(io("reading a media file", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(io("reading a media file", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

fn sync_dir(path: &Path) -> Result<(), SpoolError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsyncing the directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::media::{SnapshotTaken, MEDIA_SCHEMA_VERSION};
    use protocol::DeviceId;

    fn snapshot_entry(spool: &Spool, bytes: &[u8]) -> QueueEntry {
        let id = Uuid::now_v7();
        let made = spool.dir().join("made.jpg");
        fs::write(&made, bytes).unwrap();
        let file = Spool::snapshot_file(id);
        let (size, sha256) = spool.adopt(&made, &file).unwrap();
        QueueEntry {
            manifest: MediaManifest::Snapshot(SnapshotTaken {
                schema_version: MEDIA_SCHEMA_VERSION,
                snapshot_id: id,
                device: DeviceId::new("pi-1").unwrap(),
                event_id: None,
                taken_at: DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap(),
                size_bytes: size,
                sha256,
                width: 64,
                height: 48,
            }),
            file,
            queued_at: Utc::now(),
            uploaded: false,
        }
    }

    #[test]
    fn entries_survive_a_reopen_and_name_their_file_with_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let entry = snapshot_entry(&spool, b"jpeg bytes");
        spool.add(&entry).unwrap();
        let reopened = Spool::open(dir.path()).unwrap();
        assert_eq!(reopened.entries().unwrap(), vec![entry.clone()]);
        assert_eq!(entry.size(), 10);
        assert_eq!(
            entry.manifest.sha256(),
            hex::encode(Sha256::digest(b"jpeg bytes"))
        );
        reopened.mark_uploaded(entry.id()).unwrap();
        assert!(reopened.get(entry.id()).unwrap().unwrap().uploaded);
        reopened.remove(&entry).unwrap();
        assert!(reopened.entries().unwrap().is_empty());
        assert!(!reopened.path(&entry.file).exists());
    }

    #[test]
    fn recovery_removes_orphans_and_partials_but_keeps_named_files() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let kept = snapshot_entry(&spool, b"kept");
        spool.add(&kept).unwrap();
        let orphan = snapshot_entry(&spool, b"orphan: the crash came before its entry");
        fs::write(dir.path().join("clips/x.mp4.partial"), b"half").unwrap();
        fs::write(dir.path().join("queue/y.json.partial"), b"{").unwrap();
        let report = spool.recover().unwrap();
        assert_eq!(
            report,
            Recovered {
                entries: 1,
                orphans_removed: 1,
                partials_removed: 2
            }
        );
        assert!(spool.path(&kept.file).exists());
        assert!(!spool.path(&orphan.file).exists());
    }

    #[test]
    fn a_corrupt_entry_is_moved_aside_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        fs::write(dir.path().join("queue/bad.json"), b"not json").unwrap();
        spool.recover().unwrap();
        assert!(dir.path().join("queue/bad.corrupt").exists());
        assert!(spool.entries().unwrap().is_empty());
    }
}
