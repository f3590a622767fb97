//! Password hashing: argon2id, stored as a PHC string (`$argon2id$v=19$m=...`), which carries its own
//! salt and parameters, so raising the cost later does not break existing hashes.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

/// How expensive a new hash is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCost {
    /// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane (~50 ms in a release build).
    Standard,
    /// The cheapest parameters argon2 accepts: for tests only.
    Test,
}

impl PasswordCost {
    fn params(self) -> Params {
        let (m_kib, t, p) = match self {
            PasswordCost::Standard => (19 * 1024, 2, 1),
            PasswordCost::Test => (Params::MIN_M_COST, Params::MIN_T_COST, 1),
        };
        Params::new(m_kib, t, p, None).expect("these argon2 parameters are within its limits")
    }
}

/// Hashes a password with a fresh random salt into an argon2id PHC string.
pub fn hash_password(password: &str, cost: PasswordCost) -> String {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, cost.params())
        .hash_password(password.as_bytes())
        .expect("argon2id hashes any password with valid parameters and a random salt")
        .to_string()
}

/// Whether `password` matches the PHC string (compared in constant time by argon2). A PHC string
/// that does not parse matches nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    // The parameters come from the PHC string, not from this instance.
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}
