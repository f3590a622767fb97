//! Authentication: who is calling the API.
//!
//! People log in with a username and password (argon2id hashes, [`password`]) and get a short-lived
//! HS256 JWT ([`Auth`]); devices present an opaque token (`vgd_...`, [`device_token`]) whose SHA-256
//! the store keeps. The two never mix: a device token is not a JWT and a JWT is never a device token.
//!
//! Errors say what was wrong with a credential but never repeat the credential itself.

pub mod device_token;
pub mod hashing;
mod jwt;
pub mod media_link;
pub mod mqtt_password;
pub mod password;
pub mod proxies;
mod secret;
pub mod session;

use std::fmt;
use std::str::FromStr;

use protocol::DeviceId;
use serde::{Deserialize, Serialize};

pub use device_token::{
    device_token_hash, is_device_token, is_live_token, new_device_token, new_live_token,
};
pub use hashing::{HashPool, HashingError};
pub use jwt::{Auth, AUDIENCE, ISSUER};
pub use media_link::{LinkError, MediaLinks, LINK_TTL_S};
pub use mqtt_password::{mosquitto_hash, mosquitto_verify, new_mqtt_password};
pub use password::{hash_password, verify_password, PasswordCost};
pub use proxies::{client_key, BadCidr, Cidr, TrustedProxies};
pub use secret::{SecretError, MIN_SECRET_LEN, SECRET_FILE};
pub use session::{new_refresh_token, LoginPolicy, LoginThrottle};

/// What a user may do: an admin manages users and devices, a viewer only looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is neither `admin` nor `viewer`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected admin or viewer")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        match s {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

/// Who made a request, once their credential checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User {
        username: String,
        role: Role,
        /// The login session the token belongs to.
        session: String,
        /// The token's `exp` (Unix seconds): a WebSocket opened with it closes then.
        token_exp: u64,
    },
    Device {
        id: DeviceId,
    },
}

/// Why a credential was refused. Messages never contain the credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credential: send `Authorization: Bearer <token>`")]
    Missing,
    /// Not a token at all (not three base64url parts, bad JSON, a missing claim).
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("the token has expired: log in again")]
    Expired,
    /// Well formed but not acceptable (bad signature, wrong algorithm, audience or issuer).
    #[error("invalid token: {0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_from_their_names_and_refuse_others() {
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
        assert_eq!(Role::Viewer.as_str().parse::<Role>(), Ok(Role::Viewer));
        let err = "root".parse::<Role>().unwrap_err().to_string();
        assert!(
            err.contains("root") && err.contains("admin or viewer"),
            "{err}"
        );
    }
}
