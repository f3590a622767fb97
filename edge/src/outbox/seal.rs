//! Record sealing for the outbox at rest: XChaCha20-Poly1305 with a fresh random 24-byte nonce per
//! record, bound to the record's sled key (associated data), so a record moved to another key (or
//! another `seq`) fails authentication. Pure: no IO besides the system random generator.
//!
//! Sealed layout: `version (1 byte, 1) | nonce (24 bytes) | ciphertext | tag (16 bytes)`.
//! Performance contract: one allocation per record; a few microseconds for an event envelope.

use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

/// The length of an outbox key: 256 bits.
pub const KEY_LEN: usize = 32;
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Domain separation: associated data is this prefix followed by the record's sled key.
const AAD_PREFIX: &[u8] = b"vigie-outbox-v1\0";

/// Why a record could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the system random generator failed: {0}")]
    Random(String),
    #[error("encryption failed")]
    Encrypt,
    /// Wrong key, or the bytes (or their place in the tree) were changed.
    #[error("authentication failed (wrong key, or the record was altered or moved)")]
    Authentication,
    #[error("unknown record format (version byte {0})")]
    Version(u8),
    #[error("the record is too short ({0} bytes) to be sealed")]
    Truncated(usize),
}

/// The cipher for one outbox key; the key schedule is wiped from memory on drop.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key redacted>)")
    }
}

impl Sealer {
    pub fn new(key: &[u8; KEY_LEN]) -> Sealer {
        Sealer {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// Encrypts `plaintext` for the record stored under `record_key`.
    pub fn seal(&self, record_key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let nonce_bytes =
            <[u8; NONCE_LEN]>::try_generate().map_err(|e| SealError::Random(e.to_string()))?;
        let nonce = XNonce::from(nonce_bytes);
        let aad = aad(record_key);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Encrypt)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Decrypts and authenticates a record read from under `record_key`.
    pub fn open(&self, record_key: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN {
            return Err(SealError::Truncated(sealed.len()));
        }
        if sealed[0] != VERSION {
            return Err(SealError::Version(sealed[0]));
        }
        let nonce_bytes: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN]
            .try_into()
            .map_err(|_| SealError::Truncated(sealed.len()))?;
        let aad = aad(record_key);
        self.cipher
            .decrypt(
                &XNonce::from(nonce_bytes),
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Authentication)
    }
}

fn aad(record_key: &[u8]) -> Vec<u8> {
    [AAD_PREFIX, record_key].concat()
}

#[cfg(test)]
mod tests;
