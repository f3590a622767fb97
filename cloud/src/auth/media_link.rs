//! Signed media links: a clip, a snapshot or a live stream fetched by a browser element (`<video>`,
//! `<img>`, a native HLS player) that cannot send `Authorization`. An API answer made for an
//! authenticated caller carries the media's path with `exp` (Unix seconds) and `sig` (HMAC-SHA256
//! of the scope and `exp`, with a key derived from the JWT secret) in its query string; the media
//! route accepts either the header or a valid, unexpired signature for its own scope.
//!
//! A scope is a path: one clip (`/api/clips/{id}`), one snapshot, or one camera's stream
//! (`/api/cameras/{id}/stream`, which its playlist's segment links share). A link gives access to
//! that scope only, until it expires; it names no user, so the audit trail records who asked for it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How long a link works by default.
pub const LINK_TTL_S: u64 = 15 * 60;

/// Why a signed link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the media link has expired: fetch a new one from the API")]
    Expired,
    #[error("the media link's signature is not valid for this resource")]
    BadSignature,
}

/// Signs and checks media links. Cheap to clone.
#[derive(Clone)]
pub struct MediaLinks {
    key: Vec<u8>,
}

impl std::fmt::Debug for MediaLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaLinks").finish_non_exhaustive()
    }
}

impl MediaLinks {
    /// Derives the link key from the JWT secret, so links and tokens never share a key.
    pub fn from_secret(secret: &[u8]) -> MediaLinks {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"vigie media links v1");
        MediaLinks {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    /// `scope?exp=...&sig=...`, valid until `now_s + ttl_s`.
    pub fn sign(&self, scope: &str, now_s: u64, ttl_s: u64) -> String {
        let exp = now_s + ttl_s;
        format!("{scope}?exp={exp}&sig={}", self.signature(scope, exp))
    }

    /// The query string (`exp=...&sig=...`) of a link to `scope`, for appending to sub-resources.
    pub fn query(&self, scope: &str, now_s: u64, ttl_s: u64) -> String {
        let exp = now_s + ttl_s;
        format!("exp={exp}&sig={}", self.signature(scope, exp))
    }

    /// Checks a link's `exp` and `sig` for `scope` at `now_s`.
    pub fn verify(&self, scope: &str, exp: u64, sig: &str, now_s: u64) -> Result<(), LinkError> {
        let given = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| LinkError::BadSignature)?;
        self.mac(scope, exp)
            .verify_slice(&given)
            .map_err(|_| LinkError::BadSignature)?;
        if now_s > exp {
            return Err(LinkError::Expired);
        }
        Ok(())
    }

    fn signature(&self, scope: &str, exp: u64) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(scope, exp).finalize().into_bytes())
    }

    fn mac(&self, scope: &str, exp: u64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(scope.as_bytes());
        mac.update(b"\n");
        mac.update(exp.to_string().as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(link: &str) -> (String, u64, String) {
        let (scope, query) = link.split_once('?').unwrap();
        let mut exp = 0;
        let mut sig = String::new();
        for pair in query.split('&') {
            match pair.split_once('=').unwrap() {
                ("exp", v) => exp = v.parse().unwrap(),
                ("sig", v) => sig = v.to_owned(),
                _ => {}
            }
        }
        (scope.to_owned(), exp, sig)
    }

    #[test]
    fn a_link_works_for_its_scope_until_it_expires() {
        let links = MediaLinks::from_secret(b"0123456789abcdef0123456789abcdef");
        let (scope, exp, sig) = parts(&links.sign("/api/clips/abc", 1_000, 60));
        assert_eq!(scope, "/api/clips/abc");
        assert_eq!(exp, 1_060);
        assert_eq!(links.verify(&scope, exp, &sig, 1_060), Ok(()));
        assert_eq!(
            links.verify(&scope, exp, &sig, 1_061),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn another_scope_a_longer_expiry_or_another_secret_is_refused() {
        let links = MediaLinks::from_secret(b"0123456789abcdef0123456789abcdef");
        let (scope, exp, sig) = parts(&links.sign("/api/clips/abc", 1_000, 60));
        assert_eq!(
            links.verify("/api/clips/abd", exp, &sig, 1_000),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            links.verify(&scope, exp + 3_600, &sig, 1_000),
            Err(LinkError::BadSignature)
        );
        let other = MediaLinks::from_secret(b"another secret of thirty-two bytes!");
        assert_eq!(
            other.verify(&scope, exp, &sig, 1_000),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            links.verify(&scope, exp, "not base64!", 1_000),
            Err(LinkError::BadSignature)
        );
    }
}
