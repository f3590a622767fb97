//! The JWT signing secret: given (`VIGIE_JWT_SECRET`), or kept in `data_dir/jwt.secret`, or made on
//! first start (32 random bytes, base64url, written with mode 0600) and reused afterwards.
//!
//! The file holds the same text one would put in `VIGIE_JWT_SECRET`, so moving from the file to the
//! variable keeps every issued token valid. Several replicas must share one secret: give them the
//! variable.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

/// The file, inside the data directory, that keeps a generated secret.
pub const SECRET_FILE: &str = "jwt.secret";
/// The shortest secret accepted, in bytes (HS256 wants at least 256 bits).
pub const MIN_SECRET_LEN: usize = 32;

/// Why no signing secret could be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "the JWT secret from {source_name} is {len} bytes; it must be at least {MIN_SECRET_LEN} \
         (e.g. `openssl rand -base64 48`)"
    )]
    TooShort { source_name: String, len: usize },
    #[error("cannot read the JWT secret file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the JWT secret file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The secret's bytes: from `given`, else from the file, else newly made and saved to the file.
pub(crate) fn load_or_create(given: Option<&str>, data_dir: &Path) -> Result<Vec<u8>, SecretError> {
    if let Some(given) = given {
        return checked(given.trim(), "VIGIE_JWT_SECRET");
    }
    let path = data_dir.join(SECRET_FILE);
    match read(&path)? {
        Some(existing) => Ok(existing),
        None => create(&path),
    }
}

fn checked(secret: &str, source_name: &str) -> Result<Vec<u8>, SecretError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(SecretError::TooShort {
            source_name: source_name.to_owned(),
            len: secret.len(),
        });
    }
    Ok(secret.as_bytes().to_vec())
}

fn read(path: &Path) -> Result<Option<Vec<u8>>, SecretError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            warn_if_readable_by_others(path);
            checked(text.trim(), &path.display().to_string()).map(Some)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SecretError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn create(path: &Path) -> Result<Vec<u8>, SecretError> {
    let write_error = |source| SecretError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        crate::files::private_dir(dir).map_err(write_error)?;
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);

    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(file) => file,
        // Another process made it first: use theirs.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return read(path)?.ok_or_else(|| write_error(e));
        }
        Err(e) => return Err(write_error(e)),
    };
    file.write_all(format!("{secret}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(write_error)?;
    tracing::info!(path = %path.display(), "generated a new JWT signing secret");
    Ok(secret.into_bytes())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "the JWT secret file is readable by other users; chmod 600 it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}
