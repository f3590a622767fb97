//! Device tokens: opaque random strings (`vgd_` + 32 random bytes in base64url), never JWTs; and
//! each device's live-push token (`vgl_` + 32 random bytes), which only the RTSP server and the
//! MediaMTX auth hook accept, never the API: the live push carries it in RTSP Basic auth, in clear
//! on the wire, so it must not be a credential the API takes.
//!
//! The cloud stores only a token's SHA-256 (hex): a leaked database does not leak usable tokens, and
//! a lookup by hash is an indexed equality, so no timing of a string comparison reveals anything.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every device token starts with this, so it is told from a user JWT at a glance.
pub const PREFIX: &str = "vgd_";
/// Every live-push token starts with this.
pub const LIVE_PREFIX: &str = "vgl_";
const RANDOM_BYTES: usize = 32;

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; RANDOM_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A new device token: `vgd_` and 43 base64url characters (256 random bits).
pub fn new_device_token() -> String {
    random_token(PREFIX)
}

/// A new live-push token: `vgl_` and 43 base64url characters (256 random bits).
pub fn new_live_token() -> String {
    random_token(LIVE_PREFIX)
}

/// The SHA-256 of a token (API or live-push), as 64 lowercase hex digits: what the store keeps.
pub fn device_token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a bearer token is a device token (as opposed to a user JWT).
pub fn is_device_token(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// Whether a credential is a live-push token.
pub fn is_live_token(token: &str) -> bool {
    token.starts_with(LIVE_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_of_a_known_token_is_its_sha256_in_hex() {
        assert_eq!(
            device_token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn an_api_token_and_a_live_push_token_are_told_apart() {
        let (api, live) = (new_device_token(), new_live_token());
        assert!(is_device_token(&api) && !is_live_token(&api));
        assert!(is_live_token(&live) && !is_device_token(&live));
        assert_eq!(live.len(), LIVE_PREFIX.len() + 43);
        assert_ne!(new_live_token(), live);
    }
}
