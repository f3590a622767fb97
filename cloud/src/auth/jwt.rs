//! User tokens: HS256 JWTs with `sub`, `role`, `sid` (the login session, checked on every request
//! so that a logout ends it at once), `iat`, `exp`, `aud = vigie-api`, `iss = vigie-cloud`.
//!
//! Verification accepts HS256 only (so `alg: none` and key-confusion tokens are refused), requires
//! every claim, and allows 30 s of clock skew on `exp`.

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use protocol::api::TokenResponse;
use serde::{Deserialize, Serialize};

use super::{is_device_token, secret, AuthError, Principal, Role, SecretError};

/// The `aud` claim of every user token.
pub const AUDIENCE: &str = "vigie-api";
/// The `iss` claim of every user token.
pub const ISSUER: &str = "vigie-cloud";
/// Clock skew tolerated on `exp`, in seconds.
const LEEWAY_S: u64 = 30;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    sid: String,
    iat: u64,
    exp: u64,
    aud: String,
    iss: String,
}

/// Issues and verifies user tokens. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    links: super::MediaLinks,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Uses `secret` (from `VIGIE_JWT_SECRET`) if given, else `data_dir/jwt.secret`, else makes a
    /// new secret and saves it there with mode 0600. Tokens live for `ttl`.
    pub fn load_or_create(
        secret: Option<&str>,
        data_dir: &Path,
        ttl: Duration,
    ) -> Result<Auth, SecretError> {
        let key = secret::load_or_create(secret, data_dir)?;
        Ok(Auth::from_secret(&key, ttl))
    }

    /// An `Auth` signing with these exact bytes.
    pub fn from_secret(secret: &[u8], ttl: Duration) -> Auth {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "aud", "iss"]);
        validation.leeway = LEEWAY_S;
        Auth {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
            links: super::MediaLinks::from_secret(secret),
        }
    }

    /// Signs and checks media links, with a key derived from the same secret.
    pub fn media_links(&self) -> &super::MediaLinks {
        &self.links
    }

    /// How long the tokens this issues live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A signed token for this user's session `sid`, valid for the configured ttl.
    pub fn issue(&self, username: &str, role: Role, sid: &str) -> TokenResponse {
        let now = jsonwebtoken::get_current_timestamp();
        let expires_in = self.ttl.as_secs();
        let claims = Claims {
            sub: username.to_owned(),
            role,
            sid: sid.to_owned(),
            iat: now,
            exp: now.saturating_add(expires_in),
            aud: AUDIENCE.to_owned(),
            iss: ISSUER.to_owned(),
        };
        let access_token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
                .expect("HS256 signs any claims that serialise, and these always do");
        TokenResponse {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_in,
            refresh_token: None,
            refresh_expires_in: None,
        }
    }

    /// Checks a user token: HS256 signed with this secret, not expired, for this audience and issuer.
    pub fn verify_user_token(&self, token: &str) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if is_device_token(token) {
            return Err(AuthError::Invalid(
                "a device token is not accepted here; log in for a user token".to_owned(),
            ));
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| classify(e.into_kind()))?;
        Ok(Principal::User {
            username: data.claims.sub,
            role: data.claims.role,
            session: data.claims.sid,
            token_exp: data.claims.exp,
        })
    }
}

fn classify(kind: ErrorKind) -> AuthError {
    let invalid = |why: &str| AuthError::Invalid(why.to_owned());
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::InvalidSignature => {
            invalid("the signature does not match: it was not issued by this server")
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            invalid("only HS256 tokens are accepted")
        }
        ErrorKind::InvalidAudience => invalid("the token is not meant for vigie-api"),
        ErrorKind::InvalidIssuer => invalid("the token was not issued by vigie-cloud"),
        ErrorKind::ImmatureSignature => invalid("the token is not valid yet"),
        ErrorKind::MissingRequiredClaim(claim) => {
            AuthError::Malformed(format!("the claim `{claim}` is missing"))
        }
        ErrorKind::InvalidClaimFormat(claim) => {
            AuthError::Malformed(format!("the claim `{claim}` has the wrong type"))
        }
        ErrorKind::Json(e) => AuthError::Malformed(format!("its JSON does not decode: {e}")),
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => {
            AuthError::Malformed("expected three base64url parts separated by dots".to_owned())
        }
        other => AuthError::Invalid(format!("{other:?}")),
    }
}
