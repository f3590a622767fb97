//! Directories the edge makes for itself are private (0700): the outbox (encrypted, but its size
//! and timing tell when the sensors fired), the media outbox (clips and snapshots in clear) and
//! the outbox key's directory.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// Creates `dir` and any missing parent with mode 0700 (an existing directory keeps its mode).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_private_directory_and_its_new_parents_are_0700() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data/outbox");
        private_dir(&dir).unwrap();
        for d in [root.path().join("data"), dir] {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
        }
    }
}
