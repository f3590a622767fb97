//! The HTTP API in-process (actix_web::test) on a real SQLite store: auth on every route, clear errors
//! for bad input, and bulk posting that is idempotent and never lets one bad item reject the rest.

use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actix_web::{test, web, App};
use serde_json::{json, Value};
use vigie_cloud::api::{self, AppState};
use vigie_cloud::auth::{
    device_token_hash, hash_password, Auth, LoginPolicy, LoginThrottle, PasswordCost, Role,
};
use vigie_cloud::hub::Hub;
use vigie_cloud::ingest::IngestMetrics;
use vigie_cloud::store::{NewSession, Store};

const MAX_BODY: usize = 64 * 1024;

struct Fixture {
    state: AppState,
    admin: String,
    viewer: String,
    device_token: String,
    _dir: tempfile::TempDir,
}

/// An access token of a stored session (as a login makes).
fn session_token(store: &Store, auth: &Auth, user: &str, role: Role) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    let now = chrono::Utc::now();
    store
        .create_session(&NewSession {
            id: &id,
            username: user,
            refresh_hash: &device_token_hash(&id),
            created_at: now,
            expires_at: now + chrono::Duration::hours(1),
        })
        .unwrap();
    auth.issue(user, role, &id).access_token
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(None, dir.path()).unwrap();
    store
        .add_user(
            "ada",
            Role::Admin,
            &hash_password("ada password", PasswordCost::Test),
        )
        .unwrap();
    store
        .add_user(
            "vic",
            Role::Viewer,
            &hash_password("vic password", PasswordCost::Test),
        )
        .unwrap();
    let device_token = "vgd_test-token-for-pi-1".to_owned();
    store
        .add_device(&"pi-1".parse().unwrap(), &device_token_hash(&device_token))
        .unwrap();
    let auth = Auth::from_secret(
        b"api-test-secret-api-test-secret!",
        Duration::from_secs(600),
    );
    let admin = session_token(&store, &auth, "ada", Role::Admin);
    let viewer = session_token(&store, &auth, "vic", Role::Viewer);
    let metrics = Arc::new(IngestMetrics::default());
    let state = AppState {
        store,
        auth,
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
        login_throttle: LoginThrottle::default(),
        allowed_origins: api::origin::AllowedOrigins::new(vec![
            "https://console.example.org".into()
        ]),
    };
    Fixture {
        state,
        admin,
        viewer,
        device_token,
        _dir: dir,
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

fn envelope(device: &str, seq: u64, kind: &str) -> Value {
    json!({
        "schema_version": 1,
        "id": uuid::Uuid::now_v7(),
        "device": device,
        "seq": seq,
        "sensor": "mat-1",
        "kind": kind,
        "occurred_at": "2026-11-27T13:00:00.000Z",
        "clock_synced": true
    })
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
    (
        status,
        serde_json::from_slice(&body)
            .unwrap_or(Value::String(String::from_utf8_lossy(&body).into())),
    )
}

fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

#[actix_rt::test]
async fn login_answers_a_bearer_token_and_refuses_a_wrong_password_alike_for_unknown_users() {
    let f = fixture();
    let app = app!(f.state);
    let (status, body) = call(
        &app,
        test::TestRequest::post()
            .uri("/api/auth/login")
            .set_json(json!({"username": "ada", "password": "ada password"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    let token = body["access_token"].as_str().unwrap();
    let (status, _) = call(
        &app,
        test::TestRequest::get()
            .uri("/api/events")
            .insert_header(bearer(token)),
    )
    .await;
    assert_eq!(status, 200);

    for (user, password) in [("ada", "wrong"), ("nobody", "ada password")] {
        let (status, body) = call(
            &app,
            test::TestRequest::post()
                .uri("/api/auth/login")
                .set_json(json!({"username": user, "password": password})),
        )
        .await;
        assert_eq!(status, 401);
        assert_eq!(body["error"], "invalid username or password");
    }
    let (status, body) = call(
        &app,
        test::TestRequest::post()
            .uri("/api/auth/login")
            .insert_header(("Content-Type", "application/json"))
            .set_payload("{\"username\": 3"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("invalid JSON"),
        "{body}"
    );
}

#[actix_rt::test]
async fn every_api_route_needs_a_valid_token() {
    let f = fixture();
    let app = app!(f.state);
    for uri in ["/api/events", "/api/devices", "/api/stream", "/api/time"] {
        let (status, body) = call(&app, test::TestRequest::get().uri(uri)).await;
        assert_eq!(status, 401, "{uri}");
        assert!(
            body["error"].as_str().unwrap().contains("bearer"),
            "{uri}: {body}"
        );
        let (status, _) = call(
            &app,
            test::TestRequest::get()
                .uri(uri)
                .insert_header(bearer("not.a.jwt")),
        )
        .await;
        assert_eq!(status, 401, "{uri}");
        let (status, _) = call(
            &app,
            test::TestRequest::get()
                .uri(uri)
                .insert_header(("Authorization", "Basic YWRhOmFkYQ==")),
        )
        .await;
        assert_eq!(status, 401, "{uri}");
    }
    let (status, _) = call(
        &app,
        test::TestRequest::post()
            .uri("/api/events")
            .insert_header(bearer("vgd_unknown"))
            .set_json(json!([])),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = call(
        &app,
        test::TestRequest::get()
            .uri("/api/events")
            .insert_header(bearer(&f.device_token)),
    )
    .await;
    assert_eq!(status, 403, "a device token only posts events");
    let (status, _) = call(&app, test::TestRequest::get().uri("/healthz")).await;
    assert_eq!(status, 200, "health needs no token");
}

#[actix_rt::test]
async fn bad_filters_get_a_400_that_names_the_parameter() {
    let f = fixture();
    let app = app!(f.state);
    for (query, param) in [
        ("kind=smoke", "kind"),
        ("device=Not%20A%20Slug", "device"),
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        (
            "since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z",
            "since",
        ),
        ("device=pi-1%27%20OR%201%3D1--", "device"),
    ] {
        let (status, body) = call(
            &app,
            test::TestRequest::get()
                .uri(&format!("/api/events?{query}"))
                .insert_header(bearer(&f.viewer)),
        )
        .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(param),
            "{query}: {body}"
        );
    }
    let (status, body) = call(
        &app,
        test::TestRequest::get()
            .uri("/api/events?cursor=garbage")
            .insert_header(bearer(&f.viewer)),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(
        &app,
        test::TestRequest::get()
            .uri("/api/events?colour=red")
            .insert_header(bearer(&f.viewer)),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("colour"), "{body}");
}

#[actix_rt::test]
async fn a_bulk_post_stores_the_good_items_reports_the_bad_ones_and_is_idempotent() {
    let f = fixture();
    let app = app!(f.state);
    let good = envelope("pi-1", 1, "button_pressed");
    let batch = json!([
        good,
        envelope("pi-1", 2, "smoke"),
        envelope("pi-2", 1, "motion"),
        {"schema_version": 1, "id": "nope"},
        envelope("pi-1", 0, "motion"),
    ]);
    let post = |body: Value, token: &str| {
        test::TestRequest::post()
            .uri("/api/events")
            .insert_header(bearer(token))
            .set_json(body)
    };
    let (status, report) = call(&app, post(batch.clone(), &f.device_token)).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["inserted"], 1);
    assert_eq!(report["duplicates"], 0);
    assert_eq!(report["acked_seq"], 1);
    let rejected: Vec<u64> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(rejected, [1, 2, 3, 4]);
    let errors = report["rejected"].to_string();
    assert!(
        errors.contains("kind") && errors.contains("pi-2") && errors.contains("seq"),
        "{errors}"
    );

    let (_, again) = call(&app, post(batch, &f.device_token)).await;
    assert_eq!(
        (again["inserted"].clone(), again["duplicates"].clone()),
        (json!(0), json!(1))
    );

    let (status, page) = call(
        &app,
        test::TestRequest::get()
            .uri("/api/events")
            .insert_header(bearer(&f.viewer)),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "nothing bad was stored"
    );
    assert_eq!(page["items"][0]["id"], good["id"]);

    let (status, _) = call(&app, post(json!([]), &f.viewer)).await;
    assert_eq!(status, 403, "a viewer cannot post events");
    let (status, report) = call(&app, post(json!([envelope("pi-3", 1, "motion")]), &f.admin)).await;
    assert_eq!((status, report["inserted"].clone()), (200, json!(1)));
}

#[actix_rt::test]
async fn a_malformed_or_oversized_bulk_body_is_refused_whole_with_a_reason() {
    let f = fixture();
    let app = app!(f.state);
    let (status, body) = call(
        &app,
        test::TestRequest::post()
            .uri("/api/events")
            .insert_header(bearer(&f.device_token))
            .set_payload("{\"not\": \"an array\"}"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("JSON array"),
        "{body}"
    );

    let huge = format!("[{}]", "1,".repeat(MAX_BODY));
    let (status, body) = call(
        &app,
        test::TestRequest::post()
            .uri("/api/events")
            .insert_header(bearer(&f.device_token))
            .set_payload(huge),
    )
    .await;
    assert_eq!(status, 413);
    assert!(
        body["error"].as_str().unwrap().contains("larger than"),
        "{body}"
    );
}

#[actix_rt::test]
async fn a_gzip_compressed_bulk_post_is_accepted() {
    use std::io::Write;
    let f = fixture();
    let app = app!(f.state);
    let batch = json!([
        envelope("pi-1", 1, "motion"),
        envelope("pi-1", 2, "button_pressed")
    ]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(batch.to_string().as_bytes()).unwrap();
    let (status, report) = call(
        &app,
        test::TestRequest::post()
            .uri("/api/events")
            .insert_header(bearer(&f.device_token))
            .insert_header(("Content-Encoding", "gzip"))
            .insert_header(("Content-Type", "application/json"))
            .set_payload(gz.finish().unwrap()),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["inserted"], 2);
    assert_eq!(report["acked_seq"], 2);
}

#[actix_rt::test]
async fn the_cloud_clock_answers_a_device_or_a_user_with_its_time() {
    let f = fixture();
    let app = app!(f.state);
    for token in [&f.device_token, &f.viewer] {
        let before = chrono::Utc::now();
        let (status, body) = call(
            &app,
            test::TestRequest::get()
                .uri("/api/time")
                .insert_header(bearer(token)),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let now = protocol::time::parse(body["now"].as_str().unwrap()).unwrap();
        assert!(
            now >= protocol::time::to_millis(before) && now <= chrono::Utc::now(),
            "{body}"
        );
    }
}

#[actix_rt::test]
async fn an_acknowledgement_is_stored_once_with_its_user_and_filters_the_listing() {
    let f = fixture();
    let app = app!(f.state);
    let first = envelope("pi-1", 1, "button_pressed");
    let second = envelope("pi-1", 2, "motion");
    let (status, _) = call(
        &app,
        test::TestRequest::post()
            .uri("/api/events")
            .insert_header(bearer(&f.device_token))
            .set_json(json!([first, second])),
    )
    .await;
    assert_eq!(status, 200);
    let ack = |id: &str, token: &str| {
        test::TestRequest::post()
            .uri(&format!("/api/events/{id}/ack"))
            .insert_header(bearer(token))
    };
    let id = first["id"].as_str().unwrap();
    let (status, item) = call(&app, ack(id, &f.viewer)).await;
    assert_eq!(status, 200, "a viewer may acknowledge: {item}");
    assert_eq!(item["acknowledged_by"], "vic");
    let at = item["acknowledged_at"].clone();
    assert!(at.is_string(), "{item}");
    let (_, again) = call(&app, ack(id, &f.admin)).await;
    assert_eq!(
        (
            again["acknowledged_by"].clone(),
            again["acknowledged_at"].clone()
        ),
        (json!("vic"), at),
        "the first acknowledgement is kept"
    );

    let list = |query: &str| {
        test::TestRequest::get()
            .uri(&format!("/api/events?{query}"))
            .insert_header(bearer(&f.viewer))
    };
    let (_, open) = call(&app, list("acknowledged=false")).await;
    let open: Vec<&Value> = open["items"].as_array().unwrap().iter().collect();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["id"], second["id"]);
    let (_, done) = call(&app, list("acknowledged=true")).await;
    assert_eq!(done["items"][0]["id"], first["id"]);
    let (status, body) = call(&app, list("acknowledged=maybe")).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("acknowledged"),
        "{body}"
    );
    let (_, recent) = call(&app, list("received_since=2000-01-01T00:00:00Z")).await;
    assert_eq!(recent["items"].as_array().unwrap().len(), 2);
    let (_, future) = call(&app, list("received_since=2100-01-01T00:00:00Z")).await;
    assert!(future["items"].as_array().unwrap().is_empty());

    let (status, _) = call(&app, ack(&uuid::Uuid::now_v7().to_string(), &f.admin)).await;
    assert_eq!(status, 404);
    let get = |id: &str| {
        test::TestRequest::get()
            .uri(&format!("/api/events/{id}"))
            .insert_header(bearer(&f.viewer))
    };
    let (status, one) = call(&app, get(id)).await;
    assert_eq!(
        (status, one["acknowledged_by"].clone()),
        (200, json!("vic"))
    );
    assert_eq!(
        call(&app, get(&uuid::Uuid::now_v7().to_string())).await.0,
        404
    );
    assert_eq!(call(&app, get("nope")).await.0, 400);
    let (status, body) = call(&app, ack("not-a-uuid", &f.admin)).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = call(&app, ack(id, &f.device_token)).await;
    assert_eq!(status, 403, "a device cannot acknowledge");
}

#[actix_rt::test]
async fn the_console_is_served_at_the_root_with_its_routes_falling_back_to_index_html() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("assets")).unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><title>Vigie</title>",
    )
    .unwrap();
    std::fs::write(dir.path().join("assets/app.js"), "console.log('vigie')").unwrap();
    let f = fixture();
    let console_dir = dir.path().to_owned();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(f.state.clone()))
            .configure(|c| api::routes(c, MAX_BODY))
            .configure(|c| api::console::configure(c, &console_dir)),
    )
    .await;
    let get = |uri: &str| test::TestRequest::get().uri(uri).to_request();
    for (uri, wanted, mime) in [
        ("/", "<title>Vigie</title>", "text/html"),
        ("/history/pi-1", "<title>Vigie</title>", "text/html"),
        ("/assets/app.js", "console.log", "javascript"),
    ] {
        let resp = test::call_service(&app, get(uri)).await;
        assert_eq!(resp.status().as_u16(), 200, "{uri}");
        let ctype = resp
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(ctype.contains(mime), "{uri}: {ctype}");
        let body = test::read_body(resp).await;
        assert!(String::from_utf8_lossy(&body).contains(wanted), "{uri}");
    }
    // The API keeps its own answers: an unknown API route is a JSON 404, not the console.
    let resp = test::call_service(&app, get("/api/nope")).await;
    assert_eq!(resp.status().as_u16(), 404);
    let body: Value = serde_json::from_slice(&test::read_body(resp).await).unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("API route"),
        "{body}"
    );

    let empty = tempfile::tempdir().unwrap();
    let empty_dir = empty.path().to_owned();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(f.state.clone()))
            .configure(|c| api::routes(c, MAX_BODY))
            .configure(|c| api::console::configure(c, &empty_dir)),
    )
    .await;
    let resp = test::call_service(&app, get("/")).await;
    assert_eq!(resp.status().as_u16(), 404);
    let body = test::read_body(resp).await;
    assert!(String::from_utf8_lossy(&body).contains("make web"));
}

fn login_request(user: &str, password: &str, from: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/api/auth/login")
        .peer_addr(from.parse().unwrap())
        .set_json(json!({"username": user, "password": password}))
}

#[actix_rt::test]
async fn a_session_refreshes_once_per_refresh_token_and_a_logout_ends_its_access_tokens() {
    let f = fixture();
    let app = app!(f.state);
    let (status, login) = call(&app, login_request("ada", "ada password", "127.0.0.2:5000")).await;
    assert_eq!(status, 200, "{login}");
    let access = login["access_token"].as_str().unwrap().to_owned();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    assert!(login["refresh_expires_in"].as_u64().unwrap() > 86_400);

    let refresh_with = |token: &str| {
        test::TestRequest::post()
            .uri("/api/auth/refresh")
            .set_json(json!({ "refresh_token": token }))
    };
    let (status, next) = call(&app, refresh_with(&refresh)).await;
    assert_eq!(status, 200, "{next}");
    let access2 = next["access_token"].as_str().unwrap().to_owned();
    let refresh2 = next["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh, "the refresh token rotates");
    // (A used refresh token presented again ends the session: tests/login.rs.)

    let get_events = |token: &str| {
        test::TestRequest::get()
            .uri("/api/events")
            .insert_header(bearer(token))
    };
    assert_eq!(call(&app, get_events(&access2)).await.0, 200);
    let (status, _) = call(
        &app,
        test::TestRequest::post()
            .uri("/api/auth/logout")
            .insert_header(bearer(&access)),
    )
    .await;
    assert_eq!(status, 204);
    for token in [&access, &access2] {
        let (status, body) = call(&app, get_events(token)).await;
        assert_eq!(status, 401, "a logged-out session's tokens stop at once");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("session has ended"),
            "{body}"
        );
    }
    assert_eq!(call(&app, refresh_with(&refresh2)).await.0, 401);

    // Another login is another session, unaffected.
    let (_, again) = call(&app, login_request("ada", "ada password", "127.0.0.2:5000")).await;
    let fresh = again["access_token"].as_str().unwrap();
    assert_eq!(call(&app, get_events(fresh)).await.0, 200);
}

#[actix_rt::test]
async fn repeated_failures_lock_the_user_and_throttle_the_address_and_the_audit_trail_shows_them() {
    let f = fixture();
    let app = app!(f.state);
    // The fixture's policy: 3 failures lock a user; 6 from one address throttle it.
    for _ in 0..3 {
        let (status, _) = call(&app, login_request("vic", "wrong", "127.0.0.3:5000")).await;
        assert_eq!(status, 401);
    }
    let resp = test::call_service(
        &app,
        login_request("vic", "vic password", "127.0.0.4:5000").to_request(),
    )
    .await;
    assert_eq!(
        resp.status().as_u16(),
        429,
        "locked, even with the right password"
    );
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");

    // Another user from another address is not affected; a throttled address is, whoever it tries.
    assert_eq!(
        call(&app, login_request("ada", "ada password", "127.0.0.5:5000"))
            .await
            .0,
        200
    );
    for _ in 0..3 {
        call(&app, login_request("nobody", "x", "127.0.0.3:5000")).await;
    }
    let (status, body) = call(&app, login_request("ada", "ada password", "127.0.0.3:5000")).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("address"),
        "{body}"
    );

    let audit = |token: &str| {
        test::TestRequest::get()
            .uri("/api/audit?limit=100")
            .insert_header(bearer(token))
    };
    let (status, _) = call(&app, audit(&f.viewer)).await;
    assert_eq!(status, 403, "a viewer cannot read the audit trail");
    let (status, entries) = call(&app, audit(&f.admin)).await;
    assert_eq!(status, 200, "{entries}");
    let actions: Vec<(String, String)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for wanted in [
        ("vic", "login_failed"),
        ("vic", "user_locked"),
        ("vic", "login_locked"),
        ("ada", "login"),
        ("nobody", "login_failed"),
    ] {
        assert!(
            actions
                .iter()
                .any(|(a, b)| (a.as_str(), b.as_str()) == wanted),
            "{wanted:?} in {actions:?}"
        );
    }
    let text = entries.to_string();
    assert!(
        !text.contains("vic password") && !text.contains("wrong"),
        "no secret in the trail"
    );
    assert!(text.contains("127.0.0.3"), "the source address is kept");
}

#[actix_rt::test]
async fn only_the_console_origin_and_listed_origins_may_call_the_api_and_every_answer_is_hardened()
{
    let f = fixture();
    let origins = f.state.allowed_origins.clone();
    let app = test::init_service(
        App::new()
            .wrap(actix_web::middleware::from_fn(
                api::origin::refuse_foreign_origin,
            ))
            .wrap(api::origin::cors(origins))
            .wrap(api::origin::security_headers())
            .app_data(web::Data::new(f.state.clone()))
            .configure(|c| api::routes(c, MAX_BODY)),
    )
    .await;
    let events = |origin: &str| {
        test::TestRequest::get()
            .uri("/api/events")
            .insert_header(("Host", "vigie.local:8080"))
            .insert_header(("Origin", origin))
            .insert_header(bearer(&f.viewer))
            .to_request()
    };
    let resp = test::call_service(&app, events("http://vigie.local:8080")).await;
    assert_eq!(resp.status().as_u16(), 200, "the console's own origin");
    let csp = resp.headers().get("content-security-policy").unwrap();
    assert!(csp.to_str().unwrap().contains("frame-ancestors 'none'"));
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(resp.headers().get(name).unwrap(), value, "{name}");
    }
    let resp = test::call_service(&app, events("https://console.example.org")).await;
    assert_eq!(resp.status().as_u16(), 200, "a listed origin");
    assert_eq!(
        resp.headers().get("access-control-allow-origin").unwrap(),
        "https://console.example.org"
    );
    let resp = test::call_service(&app, events("http://evil.example")).await;
    assert_eq!(
        resp.status().as_u16(),
        403,
        "refused before any handler runs"
    );
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let preflight = test::TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/api/events")
        .insert_header(("Host", "vigie.local:8080"))
        .insert_header(("Origin", "http://evil.example"))
        .insert_header(("Access-Control-Request-Method", "POST"))
        .to_request();
    let resp = test::call_service(&app, preflight).await;
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    // No Origin at all (a device, a script): the token decides.
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/api/time")
            .insert_header(bearer(&f.device_token))
            .to_request(),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);

    // The WebSocket checks the Origin itself (browsers apply no CORS to WebSockets).
    let app = app!(f.state);
    let ws = |origin: &str| {
        test::TestRequest::get()
            .uri("/api/stream")
            .insert_header(("Host", "vigie.local:8080"))
            .insert_header(("Origin", origin))
            .insert_header(("Connection", "Upgrade"))
            .insert_header(("Upgrade", "websocket"))
            .insert_header(("Sec-WebSocket-Version", "13"))
            .insert_header(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="))
            .insert_header(bearer(&f.viewer))
    };
    let (status, body) = call(&app, ws("http://evil.example")).await;
    assert_eq!(status, 403, "{body}");
    let resp = test::call_service(&app, ws("http://vigie.local:8080").to_request()).await;
    assert_eq!(resp.status().as_u16(), 101);
}

#[actix_rt::test]
async fn forged_expired_or_foreign_tokens_get_401_over_http() {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let f = fixture();
    let app = app!(f.state);
    let now = jsonwebtoken::get_current_timestamp();
    let claims = |aud: &str, exp: u64| {
        json!({"sub": "ada", "role": "admin", "sid": "s-1", "iat": now, "exp": exp,
               "aud": aud, "iss": "vigie-cloud"})
    };
    let secret = b"api-test-secret-api-test-secret!";
    let sign = |c: &Value, key: &[u8]| {
        encode(
            &Header::new(Algorithm::HS256),
            c,
            &EncodingKey::from_secret(key),
        )
        .unwrap()
    };
    // alg = none: a header and claims with an empty signature.
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims("vigie-api", now + 600))
    );
    for (what, token, reason) in [
        ("alg none", none, ""),
        (
            "wrong signature",
            sign(
                &claims("vigie-api", now + 600),
                b"another-secret-another-secret!!!",
            ),
            "signature",
        ),
        (
            "expired",
            sign(&claims("vigie-api", now - 3600), secret),
            "expired",
        ),
        (
            "wrong audience",
            sign(&claims("someone-else", now + 600), secret),
            "vigie-api",
        ),
    ] {
        let (status, body) = call(
            &app,
            test::TestRequest::get()
                .uri("/api/events")
                .insert_header(bearer(&token)),
        )
        .await;
        assert_eq!(status, 401, "{what}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(reason), "{what}: {error}");
        assert!(
            !error.contains("session"),
            "{what}: refused for the token itself: {error}"
        );
    }
}

#[actix_rt::test]
async fn only_admins_manage_users_and_devices_and_each_change_is_audited() {
    let f = fixture();
    let app = app!(f.state);
    let new_user = json!({"username": "zoe", "role": "viewer", "password": "zoe password"});
    let post_user = |token: &str, body: &Value| {
        test::TestRequest::post()
            .uri("/api/users")
            .insert_header(bearer(token))
            .set_json(body)
    };
    let revoke = |token: &str| {
        test::TestRequest::post()
            .uri("/api/devices/pi-1/revoke")
            .insert_header(bearer(token))
    };
    let list = |token: &str| {
        test::TestRequest::get()
            .uri("/api/users")
            .insert_header(bearer(token))
    };
    // A viewer may do none of it.
    assert_eq!(call(&app, post_user(&f.viewer, &new_user)).await.0, 403);
    assert_eq!(call(&app, revoke(&f.viewer)).await.0, 403);
    assert_eq!(call(&app, list(&f.viewer)).await.0, 403);
    assert_eq!(
        call(&app, post_user(&f.device_token, &new_user)).await.0,
        403
    );

    // An admin adds a user who can then log in; bad input is named.
    assert_eq!(call(&app, post_user(&f.admin, &new_user)).await.0, 201);
    let (status, _) = call(&app, login_request("zoe", "zoe password", "127.0.0.8:1")).await;
    assert_eq!(status, 200);
    let (status, body) = call(&app, post_user(&f.admin, &new_user)).await;
    assert_eq!(status, 400, "a second zoe: {body}");
    for (bad, field) in [
        (
            json!({"username": "x", "role": "root", "password": "long enough"}),
            "role",
        ),
        (
            json!({"username": "x", "role": "viewer", "password": "short"}),
            "password",
        ),
    ] {
        let (status, body) = call(&app, post_user(&f.admin, &bad)).await;
        assert_eq!(status, 400);
        assert!(body["error"].as_str().unwrap().contains(field), "{body}");
    }
    let (status, users) = call(&app, list(&f.admin)).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ada", "vic", "zoe"]);
    assert!(
        !users.to_string().contains("argon2"),
        "no password hash is listed"
    );

    // Revoking a device ends its token at once.
    assert_eq!(call(&app, revoke(&f.admin)).await.0, 204);
    assert_eq!(call(&app, revoke(&f.admin)).await.0, 404, "already revoked");
    let (status, _) = call(
        &app,
        test::TestRequest::get()
            .uri("/api/time")
            .insert_header(bearer(&f.device_token)),
    )
    .await;
    assert_eq!(status, 401);

    let (_, trail) = call(
        &app,
        test::TestRequest::get()
            .uri("/api/audit")
            .insert_header(bearer(&f.admin)),
    )
    .await;
    let trail = trail.to_string();
    assert!(
        trail.contains("user_added") && trail.contains("device_revoked"),
        "{trail}"
    );
    assert!(!trail.contains("zoe password"));
}
