//! The outbox key file: 32 random bytes (raw, not encoded), readable only by the service user
//! (mode 0600 or 0400). [`generate`] writes a new one (`vigie-edge keygen --out FILE`); [`load`]
//! refuses a missing file, a file of the wrong length, and a file that group or others may read
//! or write. The key is made at provisioning; only the demo option `outbox.create_key` lets the
//! edge make one itself. See `docs/threat-model.md`.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::Generate;
use zeroize::Zeroizing;

use super::seal::{Sealer, KEY_LEN};

/// Why the key file was refused. Every message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the outbox key file {path} does not exist: provision one with \
         `vigie-edge keygen --out {path}` (as the service user), or point outbox.key_file \
         (VIGIE_EDGE_KEY_FILE) at the key this outbox was created with"
    )]
    Missing { path: PathBuf },
    #[error("cannot read the outbox key file {path} (it must be readable by the service user)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the outbox key file {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error(
        "the outbox key file {path} has mode {mode:04o}: group or others may access it; \
         run `chmod 600 {path}` (and check who could have copied it)"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error(
        "the outbox key file {path} holds {len} bytes; a key is exactly {KEY_LEN} raw bytes. \
         Make one with `vigie-edge keygen` (if this outbox already holds events, restore the \
         key it was created with instead: another key cannot read them)"
    )]
    WrongLength { path: PathBuf, len: usize },
    #[error(
        "refusing to overwrite {path}: it already exists (replacing the key of an outbox makes \
         its unsent events unreadable); remove it yourself if you really mean to"
    )]
    Exists { path: PathBuf },
    #[error("cannot write the outbox key file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the system random generator failed: {0}")]
    Random(String),
}

/// A loaded outbox key; wiped from memory on drop, never printed.
pub struct OutboxKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for OutboxKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutboxKey(<redacted>)")
    }
}

impl OutboxKey {
    /// A key from raw bytes (tests, and callers that hold the key elsewhere).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> OutboxKey {
        OutboxKey(Zeroizing::new(bytes))
    }

    /// A fresh random key, in memory only.
    pub fn random() -> Result<OutboxKey, KeyError> {
        <[u8; KEY_LEN]>::try_generate()
            .map(OutboxKey::from_bytes)
            .map_err(|e| KeyError::Random(e.to_string()))
    }

    pub fn sealer(&self) -> Sealer {
        Sealer::new(&self.0)
    }
}

/// Reads and checks the key file at `path`.
pub fn load(path: &Path) -> Result<OutboxKey, KeyError> {
    let read = |source| KeyError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeyError::Missing {
                path: path.to_owned(),
            })
        }
        Err(e) => return Err(read(e)),
    };
    let meta = file.metadata().map_err(read)?;
    if !meta.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_owned(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_LEN + 1));
    // One byte more than a key, to tell "too long" from "exact".
    (&mut file)
        .take(KEY_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    let key: [u8; KEY_LEN] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::WrongLength {
            path: path.to_owned(),
            len: (meta.len() as usize).max(bytes.len()),
        })?;
    Ok(OutboxKey::from_bytes(key))
}

/// Writes a new random key to `path` with mode 0600; refuses if `path` exists.
pub fn generate(path: &Path) -> Result<(), KeyError> {
    let key = OutboxKey::random()?;
    let write = |source| KeyError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(KeyError::Exists {
                path: path.to_owned(),
            })
        }
        Err(e) => return Err(write(e)),
    };
    // The umask can only remove bits; set the mode anyway in case the file system ignored it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(write)?;
    file.write_all(key.0.as_slice()).map_err(write)?;
    file.sync_all().map_err(write)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Make the new directory entry durable too (best effort: not every file system allows it).
        if let Ok(dir) = std::fs::File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
