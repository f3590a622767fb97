//! Authentication: user JWTs (issue, verify, and the tokens that must be refused), password
//! hashes, the signing secret on disk, and device tokens.

use std::collections::HashSet;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use vigie_cloud::auth::{
    device_token_hash, hash_password, is_device_token, new_device_token, verify_password, Auth,
    AuthError, PasswordCost, Principal, Role, SecretError, SECRET_FILE,
};

const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";
const HOUR: Duration = Duration::from_secs(3600);

fn auth() -> Auth {
    Auth::from_secret(SECRET.as_bytes(), HOUR)
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Valid claims for `ada`, to be altered by each test.
fn claims() -> serde_json::Value {
    json!({
        "sub": "ada", "role": "admin", "sid": "s-1", "iat": now(), "exp": now() + 600,
        "aud": "vigie-api", "iss": "vigie-cloud",
    })
}

fn sign(claims: &serde_json::Value, alg: Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[test]
fn an_issued_token_verifies_as_its_user_and_role() {
    let auth = auth();
    let token = auth.issue("ada", Role::Viewer, "s-1");
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_in, 3600);
    assert!(!is_device_token(&token.access_token));
    let principal = auth.verify_user_token(&token.access_token).unwrap();
    let Principal::User { token_exp, .. } = principal else {
        panic!("a user token verifies as a user: {principal:?}");
    };
    assert!(token_exp.abs_diff(now() + 3600) <= 2, "exp is now + ttl");
    assert_eq!(
        principal,
        Principal::User {
            username: "ada".into(),
            role: Role::Viewer,
            session: "s-1".into(),
            token_exp,
        }
    );
}

#[test]
fn a_token_crafted_with_the_right_secret_and_claims_is_accepted() {
    assert!(auth()
        .verify_user_token(&sign(&claims(), Algorithm::HS256, SECRET))
        .is_ok());
}

#[test]
fn an_expired_token_is_refused_as_expired() {
    let mut c = claims();
    c["iat"] = json!(now() - 7200);
    c["exp"] = json!(now() - 3600);
    let err = auth()
        .verify_user_token(&sign(&c, Algorithm::HS256, SECRET))
        .unwrap_err();
    assert_eq!(err, AuthError::Expired);
}

#[test]
fn a_token_signed_with_another_secret_is_invalid_and_not_echoed() {
    let token = sign(
        &claims(),
        Algorithm::HS256,
        "another-secret-just-as-long-as-the-first",
    );
    let err = auth().verify_user_token(&token).unwrap_err();
    assert!(
        matches!(&err, AuthError::Invalid(m) if m.contains("signature")),
        "{err}"
    );
    assert!(!err.to_string().contains(&token));
}

#[test]
fn an_unsigned_alg_none_token_is_refused() {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims().to_string());
    for token in [format!("{header}.{body}."), format!("{header}.{body}")] {
        let err = auth().verify_user_token(&token).unwrap_err();
        assert!(
            matches!(err, AuthError::Malformed(_) | AuthError::Invalid(_)),
            "{err}"
        );
    }
}

#[test]
fn a_token_signed_with_another_algorithm_is_refused() {
    let err = auth()
        .verify_user_token(&sign(&claims(), Algorithm::HS512, SECRET))
        .unwrap_err();
    assert!(
        matches!(&err, AuthError::Invalid(m) if m.contains("HS256")),
        "{err}"
    );
}

#[test]
fn a_token_for_another_audience_or_issuer_is_invalid() {
    let mut other_audience = claims();
    other_audience["aud"] = json!("someone-else");
    let err = auth()
        .verify_user_token(&sign(&other_audience, Algorithm::HS256, SECRET))
        .unwrap_err();
    assert!(
        matches!(&err, AuthError::Invalid(m) if m.contains("vigie-api")),
        "{err}"
    );

    let mut other_issuer = claims();
    other_issuer["iss"] = json!("someone-else");
    let err = auth()
        .verify_user_token(&sign(&other_issuer, Algorithm::HS256, SECRET))
        .unwrap_err();
    assert!(
        matches!(&err, AuthError::Invalid(m) if m.contains("vigie-cloud")),
        "{err}"
    );
}

#[test]
fn a_token_without_an_audience_or_with_an_unknown_role_is_malformed() {
    let mut no_audience = claims();
    no_audience.as_object_mut().unwrap().remove("aud");
    let err = auth()
        .verify_user_token(&sign(&no_audience, Algorithm::HS256, SECRET))
        .unwrap_err();
    assert!(
        matches!(&err, AuthError::Malformed(m) if m.contains("aud")),
        "{err}"
    );

    let mut root = claims();
    root["role"] = json!("root");
    let err = auth()
        .verify_user_token(&sign(&root, Algorithm::HS256, SECRET))
        .unwrap_err();
    assert!(matches!(err, AuthError::Malformed(_)), "{err}");
}

#[test]
fn garbage_empty_and_device_tokens_are_not_user_tokens() {
    let auth = auth();
    assert_eq!(auth.verify_user_token("").unwrap_err(), AuthError::Missing);
    assert!(matches!(
        auth.verify_user_token("not-a-jwt").unwrap_err(),
        AuthError::Malformed(_)
    ));
    let device_token = new_device_token();
    let err = auth.verify_user_token(&device_token).unwrap_err();
    assert!(
        matches!(&err, AuthError::Invalid(m) if m.contains("device")),
        "{err}"
    );
    assert!(!err.to_string().contains(&device_token));
}

#[test]
fn a_password_verifies_only_against_its_own_hash() {
    let phc = hash_password("correct horse", PasswordCost::Test);
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    assert!(verify_password("correct horse", &phc));
    assert!(!verify_password("correct horse!", &phc));
    assert!(!verify_password("correct horse", "not a phc string"));
    assert_ne!(
        phc,
        hash_password("correct horse", PasswordCost::Test),
        "every hash has its own salt"
    );
}

#[cfg(unix)]
#[test]
fn the_secret_file_is_created_with_mode_0600_and_reused_on_the_next_load() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let first = Auth::load_or_create(None, dir.path(), HOUR).unwrap();
    let path = dir.path().join(SECRET_FILE);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
    let contents = std::fs::read_to_string(&path).unwrap();

    let token = first.issue("ada", Role::Admin, "s-1").access_token;
    let second = Auth::load_or_create(None, dir.path(), HOUR).unwrap();
    assert!(second.verify_user_token(&token).is_ok());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), contents);

    // The file's text works as VIGIE_JWT_SECRET, and keeps tokens valid.
    let from_env = Auth::load_or_create(Some(contents.trim()), dir.path(), HOUR).unwrap();
    assert!(from_env.verify_user_token(&token).is_ok());
}

#[test]
fn a_given_secret_wins_over_the_file_and_must_be_long_enough() {
    let dir = tempfile::tempdir().unwrap();
    let given = Auth::load_or_create(Some(SECRET), dir.path(), HOUR).unwrap();
    assert!(!dir.path().join(SECRET_FILE).exists());
    let token = given.issue("ada", Role::Admin, "s-1").access_token;
    assert!(auth().verify_user_token(&token).is_ok());

    let err = Auth::load_or_create(Some("short"), dir.path(), HOUR).unwrap_err();
    assert!(matches!(err, SecretError::TooShort { len: 5, .. }), "{err}");
    assert!(!err.to_string().contains("short\""), "{err}");
}

#[test]
fn device_tokens_are_distinct_opaque_and_hash_consistently() {
    let tokens: HashSet<String> = (0..100).map(|_| new_device_token()).collect();
    assert_eq!(tokens.len(), 100);
    for token in &tokens {
        assert!(is_device_token(token));
        assert!(token.len() >= 40, "{token}");
        assert_eq!(token.matches('.').count(), 0, "not a JWT: {token}");
        let hash = device_token_hash(token);
        assert_eq!(hash, device_token_hash(token));
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    let hashes: HashSet<String> = tokens.iter().map(|t| device_token_hash(t)).collect();
    assert_eq!(hashes.len(), 100);
}
