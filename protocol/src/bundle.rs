//! A device's bundle: what `vigie-cloud device add|rotate --out DIR` hands a Pi (its API token, MQTT
//! password and live-push token, and the broker's CA) and what the Pi's first boot checks before it
//! installs anything. Its manifest, [`MANIFEST`] (`bundle.toml`), names the device, the format
//! version and each file's SHA-256, so a bundle copied onto a FAT partition by hand is known whole,
//! for this device, or refused with what is wrong.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::DeviceId;

/// The manifest's file name, beside the files it describes.
pub const MANIFEST: &str = "bundle.toml";
/// The manifest format this version writes and reads.
pub const FORMAT: u32 = 1;
/// The files every bundle holds; `ca.pem` (the broker's CA) is optional.
pub const REQUIRED: [&str; 3] = ["api.token", "mqtt.password", "live.token"];
/// Every file a bundle may hold.
pub const KNOWN: [&str; 4] = ["api.token", "mqtt.password", "live.token", "ca.pem"];

/// `bundle.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`] when written by this version.
    pub format: u32,
    pub device: DeviceId,
    /// Each file's name and the lowercase hex SHA-256 of its bytes.
    pub sha256: BTreeMap<String, String>,
}

/// Why a bundle is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("{MANIFEST} is not a bundle manifest: {0}")]
    Malformed(String),
    #[error("{MANIFEST} is format {found}; this version reads format {FORMAT}")]
    Format { found: u32 },
    #[error("the bundle has no {0}, which every bundle holds")]
    Missing(String),
    #[error("the bundle names {0}, which is not a bundle file (expected {KNOWN:?})")]
    Unknown(String),
    #[error("{0} does not match its SHA-256 in {MANIFEST}: damaged, or from another bundle")]
    Mismatch(String),
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Manifest {
    /// The manifest of `device`'s bundle holding `files` (name, contents).
    pub fn describe<'a>(
        device: DeviceId,
        files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Manifest {
        Manifest {
            format: FORMAT,
            device,
            sha256: files
                .into_iter()
                .map(|(name, bytes)| (name.to_owned(), sha256_hex(bytes)))
                .collect(),
        }
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("a manifest always serialises");
        format!(
            "# Written by `vigie-cloud device add|rotate`: the device's bundle, checked whole by the\n\
             # Pi's first boot. Do not edit: a changed file no longer matches its SHA-256.\n{body}"
        )
    }

    /// Reads a manifest and checks what it alone can say: its format, the required files named,
    /// no unknown file.
    pub fn from_toml(text: &str) -> Result<Manifest, BundleError> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| BundleError::Malformed(e.message().to_owned()))?;
        if manifest.format != FORMAT {
            return Err(BundleError::Format {
                found: manifest.format,
            });
        }
        if let Some(name) = manifest
            .sha256
            .keys()
            .find(|name| !KNOWN.contains(&name.as_str()))
        {
            return Err(BundleError::Unknown(name.clone()));
        }
        if let Some(name) = REQUIRED
            .iter()
            .find(|name| !manifest.sha256.contains_key(**name))
        {
            return Err(BundleError::Missing((*name).to_owned()));
        }
        Ok(manifest)
    }

    /// Checks one file of the bundle against its SHA-256.
    pub fn check(&self, name: &str, bytes: &[u8]) -> Result<(), BundleError> {
        match self.sha256.get(name) {
            None => Err(BundleError::Unknown(name.to_owned())),
            Some(expected) if *expected == sha256_hex(bytes) => Ok(()),
            Some(_) => Err(BundleError::Mismatch(name.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> Manifest {
        Manifest::describe(
            DeviceId::new("pi-1").unwrap(),
            [
                ("api.token", b"vgd_a\n".as_slice()),
                ("mqtt.password", b"secret\n".as_slice()),
                ("live.token", b"vgl_b\n".as_slice()),
            ],
        )
    }

    #[test]
    fn a_manifest_reads_back_as_written_and_checks_each_file() {
        let text = bundle().to_toml();
        assert!(text.contains("device = \"pi-1\""), "{text}");
        let read = Manifest::from_toml(&text).unwrap();
        assert_eq!(read, bundle());
        assert_eq!(read.check("api.token", b"vgd_a\n"), Ok(()));
        assert_eq!(
            read.check("api.token", b"vgd_x\n"),
            Err(BundleError::Mismatch("api.token".into()))
        );
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_bad_manifest_is_refused_saying_what_is_wrong() {
        let good = bundle().to_toml();
        let cases = [
            (good.replace("format = 1", "format = 2"), "is format 2"),
            (
                good.replace("device = \"pi-1\"", "device = \"Pi 1\""),
                "not a bundle manifest",
            ),
            (
                good.replace("[sha256]", "owner = \"x\"\n[sha256]"),
                "not a bundle manifest",
            ),
            (
                good.replace("\"live.token\"", "\"../live.token\""),
                "names ../live.token, which is not a bundle file",
            ),
            (
                good.replace("\"live.token\"", "\"ca.pem\""),
                "has no live.token",
            ),
            ("format = [".to_owned(), "not a bundle manifest"),
        ];
        for (text, expected) in cases {
            let error = Manifest::from_toml(&text).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{error:?} should say {expected:?}"
            );
        }
    }
}
