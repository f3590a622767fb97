//! Device MQTT passwords: random, shown once at provisioning, and kept only as Mosquitto's own hash
//! (`$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>`, what `mosquitto_passwd` writes
//! for Mosquitto 2), so the broker's password file is generated from the database.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use sha2::Sha512;

/// Mosquitto 2's default PBKDF2 iteration count.
const ITERATIONS: u32 = 101;
const SALT_LEN: usize = 12;
const HASH_LEN: usize = 64;

/// A new MQTT password: 256 random bits, base64url.
pub fn new_mqtt_password() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The password as a Mosquitto password file line holds it after `username:`.
pub fn mosquitto_hash(password: &str) -> String {
    let mut salt = [0u8; SALT_LEN];
    rand::rng().fill_bytes(&mut salt);
    hash_with_salt(password, &salt, ITERATIONS)
}

fn hash_with_salt(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut out = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, iterations, &mut out);
    format!(
        "$7${iterations}${}${}",
        STANDARD.encode(salt),
        STANDARD.encode(out)
    )
}

/// Whether `password` matches a `$7$` hash (tests, and a check before writing a password file).
pub fn mosquitto_verify(password: &str, hash: &str) -> bool {
    let parts: Vec<&str> = hash.split('$').collect();
    let ["", "7", iterations, salt, _] = parts.as_slice() else {
        return false;
    };
    let (Ok(iterations), Ok(salt)) = (iterations.parse::<u32>(), STANDARD.decode(salt)) else {
        return false;
    };
    hash_with_salt(password, &salt, iterations) == hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_made_by_mosquitto_passwd_verifies_and_ours_has_its_shape() {
        // `mosquitto_passwd -b` (Mosquitto 2.0.11) for password "secret".
        let theirs = "$7$101$VGrI3Hk7W/m+c7ov$7mNaVO+y5bffZ815lyNNhMHj3ImtaUvbgXBE9s2yFQqqjoUeGfc1COCoic9Jjrs9senqw/kg2AU2ppgV422s2g==";
        assert!(mosquitto_verify("secret", theirs));
        assert!(!mosquitto_verify("Secret", theirs));
        let ours = mosquitto_hash("secret");
        assert!(ours.starts_with("$7$101$"), "{ours}");
        assert!(mosquitto_verify("secret", &ours));
        assert_ne!(ours, mosquitto_hash("secret"), "a fresh salt each time");
        assert_eq!(new_mqtt_password().len(), 43);
    }
}
