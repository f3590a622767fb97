//! Staging files of uploads in progress: `data_dir/uploads/{id}.part`, appended chunk by chunk.
//!
//! A chunk is written at the offset the database says was received, after cutting whatever a
//! crashed earlier write left beyond it, and fsynced before the caller records the new offset: the
//! database's `received` never counts a byte that is not on disk. Every method blocks.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::MediaError;

/// The staging directory.
#[derive(Clone, Debug)]
pub struct Staging {
    dir: PathBuf,
}

/// What appending a chunk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Written and fsynced; the file now holds this many bytes.
    Written(u64),
    /// The file holds fewer bytes than the offset (it was lost): the upload must start again.
    Lost { on_disk: u64 },
}

impl Staging {
    /// Uses (and creates) `dir`.
    pub fn open(dir: &Path) -> Result<Staging, MediaError> {
        crate::files::private_dir(dir).map_err(|source| MediaError::Staging {
            path: dir.to_owned(),
            source,
        })?;
        Ok(Staging {
            dir: dir.to_owned(),
        })
    }

    pub fn path(&self, id: Uuid) -> PathBuf {
        self.dir.join(format!("{}.part", id.as_hyphenated()))
    }

    fn failed(&self, id: Uuid) -> impl Fn(std::io::Error) -> MediaError + '_ {
        move |source| MediaError::Staging {
            path: self.path(id),
            source,
        }
    }

    /// Writes `chunk` at `offset` (cutting anything beyond it first) and fsyncs.
    pub fn append(&self, id: Uuid, offset: u64, chunk: &[u8]) -> Result<Appended, MediaError> {
        let failed = self.failed(id);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(self.path(id))
            .map_err(&failed)?;
        let on_disk = file.metadata().map_err(&failed)?.len();
        if on_disk < offset {
            return Ok(Appended::Lost { on_disk });
        }
        if on_disk > offset {
            file.set_len(offset).map_err(&failed)?;
        }
        file.seek(SeekFrom::Start(offset)).map_err(&failed)?;
        file.write_all(chunk).map_err(&failed)?;
        file.sync_data().map_err(&failed)?;
        Ok(Appended::Written(offset + chunk.len() as u64))
    }

    /// The length and SHA-256 (lowercase hex) of the first `len` bytes of the staging file.
    pub fn digest(&self, id: Uuid, len: u64) -> Result<(u64, String), MediaError> {
        let failed = self.failed(id);
        let file = File::open(self.path(id)).map_err(&failed)?;
        let mut reader = file.take(len);
        let mut hasher = Sha256::new();
        let mut buffer = vec![0_u8; 256 * 1024];
        let mut total = 0_u64;
        loop {
            let n = reader.read(&mut buffer).map_err(&failed)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            hasher.update(&buffer[..n]);
        }
        Ok((total, hex::encode(hasher.finalize())))
    }

    /// The uploads with a staging file.
    pub fn ids(&self) -> Result<Vec<Uuid>, MediaError> {
        let failed = |source| MediaError::Staging {
            path: self.dir.clone(),
            source,
        };
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(failed)? {
            let name = entry.map_err(failed)?.file_name();
            let name = name.to_string_lossy();
            if let Some(id) = name
                .strip_suffix(".part")
                .and_then(|s| Uuid::try_parse(s).ok())
            {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Removes the staging file; one already gone is fine.
    pub fn remove(&self, id: Uuid) -> Result<(), MediaError> {
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.failed(id)(e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_rewritten_after_a_crash_replaces_what_was_beyond_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::open(dir.path()).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(
            staging.append(id, 0, b"hello").unwrap(),
            Appended::Written(5)
        );
        // A write whose offset was never recorded left "XXX" behind.
        assert_eq!(staging.append(id, 5, b"XXX").unwrap(), Appended::Written(8));
        assert_eq!(
            staging.append(id, 5, b" world").unwrap(),
            Appended::Written(11)
        );
        let (len, sha) = staging.digest(id, 11).unwrap();
        assert_eq!(len, 11);
        assert_eq!(sha, hex::encode(Sha256::digest(b"hello world")));
        assert_eq!(
            staging.append(id, 50, b"!").unwrap(),
            Appended::Lost { on_disk: 11 }
        );
        staging.remove(id).unwrap();
        staging.remove(id).unwrap();
    }
}
