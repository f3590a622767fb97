//! The key file: keygen, and every refusal at load.

use std::os::unix::fs::PermissionsExt;

use super::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn keygen_writes_32_random_bytes_readable_only_by_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.key"), dir.path().join("b.key"));
    generate(&a).unwrap();
    generate(&b).unwrap();
    assert_eq!(mode(&a), 0o600);
    let (ka, kb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(ka.len(), KEY_LEN);
    assert_ne!(ka, kb, "every key is fresh");
    load(&a).unwrap();
}

#[test]
fn keygen_refuses_to_overwrite_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.key");
    generate(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = generate(&path).unwrap_err();
    assert!(matches!(err, KeyError::Exists { .. }), "{err}");
    assert!(err.to_string().contains("outbox.key"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the key is untouched"
    );
}

#[test]
fn a_missing_key_file_is_refused_with_the_keygen_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.key");
    let err = load(&path).unwrap_err().to_string();
    assert!(
        err.contains("none.key") && err.contains("vigie-edge keygen"),
        "{err}"
    );
}

#[test]
fn a_key_file_readable_by_group_or_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("open.key");
    generate(&path).unwrap();
    for open in [0o640, 0o604, 0o660, 0o644] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(open)).unwrap();
        let err = load(&path).unwrap_err();
        assert!(matches!(err, KeyError::TooOpen { .. }), "{open:o}: {err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    load(&path).expect("0400 is fine");
}

#[test]
fn a_key_file_of_the_wrong_length_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for len in [0, 31, 33, 64] {
        let path = dir.path().join(format!("k{len}"));
        std::fs::write(&path, vec![1u8; len]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = load(&path).unwrap_err();
        assert!(
            matches!(err, KeyError::WrongLength { len: l, .. } if l == len),
            "{len}: {err}"
        );
    }
}

#[test]
fn a_directory_is_not_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d");
    std::fs::create_dir(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(matches!(load(&path), Err(KeyError::NotAFile { .. })));
}
