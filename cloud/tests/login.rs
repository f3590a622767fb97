//! Sessions and users in-process (actix_web::test) on a real SQLite store: a replayed refresh token
//! ends its session, an admin's changes to a user apply to the next request, failed logins lock a
//! (user, address) pair rather than the user, and `X-Forwarded-For` is believed only from a
//! trusted proxy.

use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actix_web::{test, web, App};
use serde_json::{json, Value};
use vigie_cloud::api::{self, AppState};
use vigie_cloud::auth::{
    hash_password, Auth, LoginPolicy, LoginThrottle, PasswordCost, Role, TrustedProxies,
};
use vigie_cloud::hub::Hub;
use vigie_cloud::ingest::IngestMetrics;
use vigie_cloud::store::Store;

const MAX_BODY: usize = 64 * 1024;

fn state(dir: &std::path::Path, throttle: LoginThrottle) -> AppState {
    let store = Store::open(None, dir).unwrap();
    for (name, role) in [("ada", Role::Admin), ("vic", Role::Viewer)] {
        let hash = hash_password(&format!("{name} password"), PasswordCost::Test);
        store.add_user(name, role, &hash).unwrap();
    }
    let metrics = Arc::new(IngestMetrics::default());
    AppState {
        store,
        auth: Auth::from_secret(
            b"login-test-secret-login-test-secret",
            Duration::from_secs(600),
        ),
        hub: Hub::new(16, metrics.clone()).start(),
        ingest: None,
        metrics,
        health: actors::HealthRegistry::new(),
        max_body_bytes: MAX_BODY,
        password_cost: PasswordCost::Test,
        login_policy: LoginPolicy {
            max_failures: 3,
            throttle_failures: 6,
            ..LoginPolicy::default()
        },
        login_throttle: throttle,
        allowed_origins: api::origin::AllowedOrigins::new(vec![]),
    }
}

macro_rules! app {
    ($state:expr) => {
        test::init_service(
            App::new()
                .app_data(web::Data::new($state.clone()))
                .configure(|c| api::routes(c, MAX_BODY)),
        )
        .await
    };
}

async fn call(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
    req: test::TestRequest,
) -> (u16, Value) {
    let resp = test::call_service(app, req.to_request()).await;
    let status = resp.status().as_u16();
    let body = test::read_body(resp).await;
    let body = serde_json::from_slice(&body)
        .unwrap_or(Value::String(String::from_utf8_lossy(&body).into()));
    (status, body)
}

fn login(user: &str, password: &str, from: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/api/auth/login")
        .peer_addr(from.parse().unwrap())
        .set_json(json!({"username": user, "password": password}))
}

fn refresh(token: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/api/auth/refresh")
        .set_json(json!({ "refresh_token": token }))
}

fn get(uri: &str, token: &str) -> test::TestRequest {
    test::TestRequest::get()
        .uri(uri)
        .insert_header(("Authorization", format!("Bearer {token}")))
}

fn patch_user(name: &str, token: &str, body: Value) -> test::TestRequest {
    test::TestRequest::patch()
        .uri(&format!("/api/users/{name}"))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .set_json(body)
}

fn post(uri: &str, token: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri(uri)
        .insert_header(("Authorization", format!("Bearer {token}")))
}

fn token(body: &Value, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {body}"))
        .to_owned()
}

/// `(actor, action, source)` of every audit entry, newest first.
async fn trail(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
    admin: &str,
) -> Vec<(String, String, String)> {
    let (status, entries) = call(app, get("/api/audit?limit=200", admin)).await;
    assert_eq!(status, 200, "{entries}");
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (text("actor"), text("action"), text("source"))
        })
        .collect()
}

#[actix_rt::test]
async fn a_used_refresh_token_presented_again_revokes_the_session_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), LoginThrottle::default());
    let app = app!(state);
    let (status, first) = call(&app, login("vic", "vic password", "127.0.0.1:1")).await;
    assert_eq!(status, 200, "{first}");
    let stolen = token(&first, "refresh_token");
    // The owner refreshes twice: the newest tokens are the third pair.
    let (_, second) = call(&app, refresh(&stolen)).await;
    let (status, third) = call(&app, refresh(&token(&second, "refresh_token"))).await;
    assert_eq!(status, 200, "{third}");
    let (newest_access, newest_refresh) = (
        token(&third, "access_token"),
        token(&third, "refresh_token"),
    );
    assert_eq!(call(&app, get("/api/events", &newest_access)).await.0, 200);

    // The thief replays the first refresh token.
    let (status, body) = call(&app, refresh(&stolen)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        call(&app, get("/api/events", &newest_access)).await.0,
        401,
        "the session's access token stops"
    );
    let (status, body) = call(&app, refresh(&newest_refresh)).await;
    assert_eq!(status, 401, "the newest refresh token stops too: {body}");

    // An unknown refresh token is only refused: nothing to revoke, nothing audited as reuse.
    assert_eq!(call(&app, refresh("vgr_never-issued")).await.0, 401);
    let (_, admin) = call(&app, login("ada", "ada password", "127.0.0.1:1")).await;
    let entries = trail(&app, &token(&admin, "access_token")).await;
    let reuses: Vec<_> = entries
        .iter()
        .filter(|(_, action, _)| action == "refresh_reuse")
        .collect();
    assert_eq!(reuses.len(), 1, "{entries:?}");
    assert_eq!(reuses[0].0, "vic");
}

#[actix_rt::test]
async fn an_admin_changes_a_users_role_password_and_state_and_each_applies_to_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), LoginThrottle::default());
    let app = app!(state);
    let (_, a) = call(&app, login("ada", "ada password", "127.0.0.1:1")).await;
    let admin = token(&a, "access_token");
    let (_, v) = call(&app, login("vic", "vic password", "127.0.0.1:1")).await;
    let vic = token(&v, "access_token");
    assert_eq!(call(&app, get("/api/users", &vic)).await.0, 403, "a viewer");

    // A viewer may change nobody, themselves included.
    let (status, _) = call(&app, patch_user("vic", &vic, json!({"role": "admin"}))).await;
    assert_eq!(status, 403);

    // Role: vic's token, issued as a viewer's, is an admin's on the next request.
    let (status, body) = call(&app, patch_user("vic", &admin, json!({"role": "admin"}))).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(call(&app, get("/api/users", &vic)).await.0, 200);
    call(&app, patch_user("vic", &admin, json!({"role": "viewer"}))).await;
    assert_eq!(call(&app, get("/api/users", &vic)).await.0, 403);

    // Disabled: the session stops, a login with the right password is refused, and listed.
    let (status, _) = call(&app, patch_user("vic", &admin, json!({"disabled": true}))).await;
    assert_eq!(status, 204);
    assert_eq!(call(&app, get("/api/events", &vic)).await.0, 401);
    let (status, body) = call(&app, login("vic", "vic password", "127.0.0.1:1")).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("disabled"),
        "{body}"
    );
    let (_, users) = call(&app, get("/api/users", &admin)).await;
    let listed = |users: &Value| {
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == "vic")
            .unwrap()["disabled"]
            .clone()
    };
    assert_eq!(listed(&users), json!(true));
    call(&app, patch_user("vic", &admin, json!({"disabled": false}))).await;
    let (status, v) = call(&app, login("vic", "vic password", "127.0.0.1:1")).await;
    assert_eq!(status, 200, "enabled again: {v}");
    let vic = token(&v, "access_token");

    // A new password ends the sessions; the old password no longer works, the new one does.
    let (status, _) = call(
        &app,
        patch_user("vic", &admin, json!({"password": "a brand new one"})),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(call(&app, get("/api/events", &vic)).await.0, 401);
    assert_eq!(
        call(&app, login("vic", "vic password", "127.0.0.1:1"))
            .await
            .0,
        401
    );
    let (status, v) = call(&app, login("vic", "a brand new one", "127.0.0.1:1")).await;
    assert_eq!(status, 200);
    let vic = token(&v, "access_token");

    // Ending the sessions.
    let (status, body) = call(&app, post("/api/users/vic/end-sessions", &admin)).await;
    assert_eq!((status, body["ended"].as_u64()), (200, Some(1)), "{body}");
    assert_eq!(call(&app, get("/api/events", &vic)).await.0, 401);

    // Bad input is named; an unknown user is 404.
    let (status, body) = call(&app, patch_user("vic", &admin, json!({"role": "root"}))).await;
    assert!(
        status == 400 && body["error"].as_str().unwrap().contains("role"),
        "{body}"
    );
    let (status, body) = call(
        &app,
        patch_user("vic", &admin, json!({"password": "short"})),
    )
    .await;
    assert!(
        status == 400 && body["error"].as_str().unwrap().contains("password"),
        "{body}"
    );
    let (status, _) = call(&app, patch_user("vic", &admin, json!({}))).await;
    assert_eq!(status, 400, "nothing to change");
    let (status, _) = call(&app, patch_user("nobody", &admin, json!({"role": "admin"}))).await;
    assert_eq!(status, 404);
    assert_eq!(
        call(&app, post("/api/users/nobody/end-sessions", &admin))
            .await
            .0,
        404
    );

    let actions: Vec<String> = trail(&app, &admin)
        .await
        .into_iter()
        .map(|(_, a, _)| a)
        .collect();
    for wanted in [
        "user_role_changed",
        "user_disabled",
        "login_disabled",
        "user_enabled",
        "user_password_changed",
        "sessions_ended",
    ] {
        assert!(
            actions.iter().any(|a| a == wanted),
            "{wanted} in {actions:?}"
        );
    }
}

#[actix_rt::test]
async fn an_attacker_locks_a_user_out_of_new_addresses_only_and_an_unlock_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), LoginThrottle::default());
    let app = app!(state);
    // Ada logs in from her usual address.
    assert_eq!(
        call(&app, login("ada", "ada password", "127.0.0.1:1"))
            .await
            .0,
        200
    );
    // An attacker fails 3 times (the policy's max) from another one.
    for _ in 0..3 {
        assert_eq!(
            call(&app, login("ada", "guess", "127.0.0.2:1")).await.0,
            401
        );
    }
    let (status, body) = call(&app, login("ada", "ada password", "127.0.0.2:1")).await;
    assert_eq!(
        status, 429,
        "the attacker's address is locked even with the password: {body}"
    );
    let (status, body) = call(&app, login("ada", "ada password", "127.0.0.3:1")).await;
    assert_eq!(
        status, 429,
        "so is any address that never logged in as ada: {body}"
    );
    let (status, a) = call(&app, login("ada", "ada password", "127.0.0.1:1")).await;
    assert_eq!(status, 200, "ada still logs in where she did before: {a}");
    // Her own typos there lock her there only after the same count, and a success clears them.
    for _ in 0..2 {
        call(&app, login("ada", "typo", "127.0.0.1:1")).await;
    }
    assert_eq!(
        call(&app, login("ada", "ada password", "127.0.0.1:1"))
            .await
            .0,
        200
    );
    for _ in 0..2 {
        call(&app, login("ada", "typo", "127.0.0.1:1")).await;
    }
    assert_eq!(
        call(&app, login("ada", "ada password", "127.0.0.1:1"))
            .await
            .0,
        200
    );

    let admin = token(&a, "access_token");
    assert_eq!(
        call(&app, post("/api/users/ada/unlock", &admin)).await.0,
        204
    );
    assert_eq!(
        call(&app, login("ada", "ada password", "127.0.0.3:1"))
            .await
            .0,
        200
    );
    let actions: Vec<String> = trail(&app, &admin)
        .await
        .into_iter()
        .map(|(_, a, _)| a)
        .collect();
    for wanted in ["user_locked", "login_locked", "user_unlocked"] {
        assert!(
            actions.iter().any(|a| a == wanted),
            "{wanted} in {actions:?}"
        );
    }
}

#[actix_rt::test]
async fn a_success_does_not_reset_the_address_throttle() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), LoginThrottle::default());
    let app = app!(state);
    // 6 attempts per address: 5 failures against unknown names, a success, then one more failure
    // is the 6th counted, and the next attempt is throttled whoever it names.
    for n in 0..5 {
        let (status, _) = call(&app, login(&format!("nobody-{n}"), "x", "127.0.0.4:1")).await;
        assert_eq!(status, 401);
    }
    assert_eq!(
        call(&app, login("ada", "ada password", "127.0.0.4:1"))
            .await
            .0,
        200
    );
    assert_eq!(call(&app, login("nobody", "x", "127.0.0.4:1")).await.0, 401);
    let (status, body) = call(&app, login("ada", "ada password", "127.0.0.4:1")).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("address"),
        "{body}"
    );
}

#[actix_rt::test]
async fn x_forwarded_for_names_the_client_only_when_a_trusted_proxy_sends_it() {
    let dir = tempfile::tempdir().unwrap();
    let proxies = TrustedProxies::new(vec!["127.0.0.10/32".parse().unwrap()]);
    let state = state(dir.path(), LoginThrottle::new(proxies));
    let app = app!(state);
    let via = |peer: &str, forwarded: &str, user: &str, password: &str| {
        login(user, password, peer).insert_header(("X-Forwarded-For", forwarded.to_owned()))
    };
    // One client behind the proxy uses up its attempts...
    for _ in 0..6 {
        call(&app, via("127.0.0.10:1", "198.51.100.7", "nobody", "x")).await;
    }
    let (status, _) = call(
        &app,
        via("127.0.0.10:1", "198.51.100.7", "ada", "ada password"),
    )
    .await;
    assert_eq!(status, 429, "the forwarded client is throttled");
    // ...and another client behind the same proxy is not affected.
    let (status, body) = call(
        &app,
        via(
            "127.0.0.10:1",
            "203.0.113.5, 198.51.100.7",
            "ada",
            "ada password",
        ),
    )
    .await;
    assert_eq!(
        status, 429,
        "the rightmost untrusted hop is the client: {body}"
    );
    let (status, a) = call(
        &app,
        via("127.0.0.10:1", "203.0.113.5", "ada", "ada password"),
    )
    .await;
    assert_eq!(status, 200, "another client behind the proxy: {a}");

    // A peer that is not a trusted proxy cannot pick its address with the header.
    for _ in 0..6 {
        call(&app, via("127.0.0.11:1", "192.0.2.1", "nobody", "x")).await;
    }
    let (status, _) = call(
        &app,
        via("127.0.0.11:1", "192.0.2.2", "ada", "ada password"),
    )
    .await;
    assert_eq!(status, 429, "the header of an untrusted peer is ignored");

    let sources: Vec<String> = trail(&app, &token(&a, "access_token"))
        .await
        .into_iter()
        .map(|(_, _, s)| s)
        .collect();
    assert!(sources.iter().any(|s| s == "198.51.100.7"), "{sources:?}");
    assert!(sources.iter().any(|s| s == "127.0.0.11"), "{sources:?}");
    assert!(!sources.iter().any(|s| s == "192.0.2.1"), "{sources:?}");
}
