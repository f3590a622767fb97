//! Files the cloud writes itself: private directories (0700: the data directory holds the SQLite
//! database, the generated JWT secret, staged uploads and media) and atomic writes that never
//! follow a symbolic link, so nobody who can write into a directory the cloud writes to can make it
//! overwrite another file.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Creates `dir` and any missing parent with mode 0700 (an existing directory keeps its mode).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Writes `contents` to `dir/name` with `mode`, atomically: a new temporary file (a random name,
/// created exclusively: `O_CREAT | O_EXCL` fails on any existing name, a symbolic link included,
/// so it is never followed) is written, fsynced and renamed over the name,
/// then the directory is fsynced. A reader sees the old file or the new one, never half of one; a
/// symbolic link at the name is replaced, never followed. `dir` is created (0750) when missing.
pub fn write_atomic(
    dir: &Path,
    name: &str,
    contents: &[u8],
    mode: u32,
) -> std::io::Result<PathBuf> {
    DirBuilder::new().recursive(true).mode(0o750).create(dir)?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_directory_and_its_new_parents_are_0700() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        private_dir(&dir).unwrap();
        for d in [root.path().join("a"), dir] {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
        }
    }

    #[test]
    fn an_atomic_write_replaces_a_symlink_at_its_name_and_never_writes_through_it() {
        let root = tempfile::tempdir().unwrap();
        let victim = root.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        let dir = root.path().join("out");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("passwd")).unwrap();

        let path = write_atomic(&dir, "passwd", b"pi-1:hash\n", 0o640).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(
            meta.file_type().is_file(),
            "the link was replaced by the file"
        );
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "pi-1:hash\n");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
    }
}
