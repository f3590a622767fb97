//! Password hashing: argon2id, stored as a PHC string (`$argon2id$v=19$m=...`), which carries its own
//! salt and parameters, so raising the cost later does not break existing hashes.

use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHasher, Version};

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

/// Whether `password` matches the PHC string (compared in constant time). A PHC string that does
/// not parse matches nothing. The working memory is this thread's, reused from one check to the next
/// (see [`super::hashing`]).
pub fn verify_password(password: &str, phc: &str) -> bool {
    super::hashing::with_memory(|memory| verify_in(password, phc, memory).unwrap_or(false))
}

/// `None` when the PHC string is not an argon2 hash this can check.
fn verify_in(password: &str, phc: &str, memory: &mut Vec<Block>) -> Option<bool> {
    let hash = PasswordHash::new(phc).ok()?;
    let (salt, expected) = (hash.salt.as_ref()?, hash.hash.as_ref()?);
    // The parameters come from the PHC string, not from any default.
    let params = Params::try_from(&hash).ok()?;
    let algorithm = Algorithm::try_from(hash.algorithm.as_str()).ok()?;
    let version = match hash.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt.as_ref(),
            &mut out,
            &mut memory[..blocks],
        )
        .ok()?;
    // Output's equality is constant-time.
    Some(Output::new(&out).ok()? == *expected)
}
