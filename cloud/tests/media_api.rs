//! The media API in-process (actix_web::test) on SQLite and on the machine's PostgreSQL, with a
//! local media store: a clip uploaded in chunks (a refused wrong offset, a cloud restart and a
//! crashed write on the way) comes back byte-identical, whole and by HTTP Range; a wrong SHA-256
//! stores nothing; devices touch only their own uploads and never the user routes; signed links
//! work for their own path until they expire; a completed upload is pushed to the hub.

#[macro_use]
mod store_support;

use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actix_web::{test as atest, web, App};
use protocol::media::{ClipCaptured, MediaManifest, SnapshotTaken, MEDIA_SCHEMA_VERSION};
use serde_json::Value;
use sha2::{Digest, Sha256};
use store_support::*;
use uuid::Uuid;
use vigie_cloud::api::{self, AppState, MediaState, CHUNK_CONTENT_TYPE};
use vigie_cloud::auth::{
    device_token_hash, hash_password, Auth, LoginPolicy, LoginThrottle, PasswordCost, Role,
};
use vigie_cloud::hub::{Hub, Join};
use vigie_cloud::ingest::IngestMetrics;
use vigie_cloud::live::LiveCameras;
use vigie_cloud::media::{MediaStore, Staging};
use vigie_cloud::store::{NewSession, Store};

const MAX_BODY: usize = 64 * 1024;
const CHUNK: usize = protocol::media::MAX_CHUNK_BYTES;
const PI1: &str = "vgd_media-test-token-pi-1";
const PI2: &str = "vgd_media-test-token-pi-2";

struct Fixture {
    state: AppState,
    media: web::Data<MediaState>,
    admin: String,
    viewer: String,
}

fn session_token(store: &Store, auth: &Auth, user: &str, role: Role) -> String {
    let id = Uuid::now_v7().to_string();
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

/// A cloud over `db`: users `ada` (admin) and `vic` (viewer), devices `pi-1` and `pi-2`.
fn fixture(db: &TestDb, first: bool) -> Fixture {
    let store = db.open();
    if first {
        for (name, role) in [("ada", Role::Admin), ("vic", Role::Viewer)] {
            let hash = hash_password("a password", PasswordCost::Test);
            store.add_user(name, role, &hash).unwrap();
        }
        for (id, token) in [("pi-1", PI1), ("pi-2", PI2)] {
            store
                .add_device(&device(id), &device_token_hash(token))
                .unwrap();
        }
    }
    let auth = Auth::from_secret(
        b"media-test-secret-media-test-sec",
        Duration::from_secs(600),
    );
    let admin = session_token(&store, &auth, "ada", Role::Admin);
    let viewer = session_token(&store, &auth, "vic", Role::Viewer);
    let metrics = Arc::new(IngestMetrics::default());
    let dir = db.data_dir();
    let media = web::Data::new(MediaState::new(
        MediaStore::open(None, dir).unwrap(),
        Staging::open(&dir.join("uploads")).unwrap(),
        LiveCameras::new(),
    ));
    let state = AppState {
        store,
        auth,
        hub: Hub::new(64, metrics.clone()).start(),
        ingest: None,
        metrics,
        health: actors::HealthRegistry::new(),
        max_body_bytes: MAX_BODY,
        password_cost: PasswordCost::Test,
        login_policy: LoginPolicy::default(),
        login_throttle: LoginThrottle::default(),
        allowed_origins: api::origin::AllowedOrigins::new(vec![]),
    };
    Fixture {
        state,
        media,
        admin,
        viewer,
    }
}

macro_rules! app {
    ($f:expr) => {
        atest::init_service(
            App::new()
                .app_data(web::Data::new($f.state.clone()))
                .app_data($f.media.clone())
                .configure(|c| api::routes(c, MAX_BODY)),
        )
        .await
    };
}

/// Bytes that look like nothing in particular, `len` of them.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn clip_manifest(device_id: &str, data: &[u8], events: Vec<Uuid>) -> ClipCaptured {
    let t = at(0);
    ClipCaptured {
        schema_version: MEDIA_SCHEMA_VERSION,
        clip_id: Uuid::now_v7(),
        device: device(device_id),
        event_ids: events,
        started_at: t,
        ended_at: t + chrono::Duration::seconds(15),
        duration_ms: 15_000,
        trigger_offsets_ms: vec![5_000],
        size_bytes: data.len() as u64,
        sha256: sha256(data),
        codec: "h264".into(),
        width: 640,
        height: 480,
        fps: 25,
    }
}

async fn body_json(resp: actix_web::dev::ServiceResponse) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body = atest::read_body(resp).await;
    (
        status,
        serde_json::from_slice(&body)
            .unwrap_or(Value::String(String::from_utf8_lossy(&body).into_owned())),
    )
}

macro_rules! call {
    ($app:expr, $req:expr) => {
        body_json(atest::call_service(&$app, $req.to_request()).await).await
    };
}

fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

fn put_manifest(id: Uuid, token: &str, manifest: &MediaManifest) -> atest::TestRequest {
    atest::TestRequest::put()
        .uri(&format!("/api/media/{id}"))
        .insert_header(bearer(token))
        .set_json(manifest)
}

fn patch(id: Uuid, token: &str, offset: u64, chunk: &[u8]) -> atest::TestRequest {
    atest::TestRequest::patch()
        .uri(&format!("/api/media/{id}"))
        .insert_header(bearer(token))
        .insert_header(("Upload-Offset", offset.to_string()))
        .insert_header(("Content-Type", CHUNK_CONTENT_TYPE))
        .set_payload(chunk.to_vec())
}

fn get(uri: &str, token: Option<&str>) -> atest::TestRequest {
    let req = atest::TestRequest::get().uri(uri);
    match token {
        Some(t) => req.insert_header(bearer(t)),
        None => req,
    }
}

/// Fetches a file: (status, `Content-Type`, `Content-Range`, `Accept-Ranges`, body).
async fn fetch(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
    req: atest::TestRequest,
) -> (u16, [Option<String>; 3], Vec<u8>) {
    let resp = atest::call_service(app, req.to_request()).await;
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let headers = [
        header("Content-Type"),
        header("Content-Range"),
        header("Accept-Ranges"),
    ];
    let status = resp.status().as_u16();
    (status, headers, atest::read_body(resp).await.to_vec())
}

async fn a_clip_uploaded_in_chunks_across_a_restart_comes_back_byte_identical(db: &TestDb) {
    let data = bytes(2 * CHUNK + 12_345, 7);
    let clip = clip_manifest("pi-1", &data, vec![]);
    let id = clip.clip_id;
    let manifest = MediaManifest::Clip(clip.clone());
    let size = data.len() as u64;

    let f = fixture(db, true);
    let mut frames = f.state.hub.send(Join).await.unwrap().frames;
    let app = app!(f);
    // Only the device itself may upload.
    let (status, _) = call!(app, put_manifest(id, &f.viewer, &manifest));
    assert_eq!(status, 403);
    let (status, body) = call!(app, put_manifest(id, PI2, &manifest));
    assert_eq!(status, 403, "{body}");
    let (status, body) = call!(app, put_manifest(Uuid::now_v7(), PI1, &manifest));
    assert_eq!(status, 400, "{body}");
    let (status, body) = call!(app, put_manifest(id, PI1, &manifest));
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["received"], 0);
    assert_eq!(body["size"], size);
    let (status, _) = call!(app, put_manifest(id, PI1, &manifest));
    assert_eq!(status, 200, "the same manifest again is fine");
    let mut other = clip.clone();
    other.fps = 30;
    let (status, _) = call!(app, put_manifest(id, PI1, &MediaManifest::Clip(other)));
    assert_eq!(status, 409);

    let (status, body) = call!(app, patch(id, PI1, 0, &data[..CHUNK]));
    assert_eq!(
        (status, &body["received"]),
        (200, &Value::from(CHUNK)),
        "{body}"
    );
    // A chunk at the wrong offset is refused with where to resume.
    let (status, body) = call!(app, patch(id, PI1, 0, &data[..CHUNK]));
    assert_eq!(
        (status, &body["received"]),
        (409, &Value::from(CHUNK)),
        "{body}"
    );
    let (status, _) = call!(app, patch(id, PI2, CHUNK as u64, &data[CHUNK..2 * CHUNK]));
    assert_eq!(status, 403, "another device cannot write to it");
    let (status, _) = call!(app, get(&format!("/api/media/{id}"), Some(PI2)));
    assert_eq!(status, 403);
    let (status, _) = call!(app, patch(id, PI1, CHUNK as u64, &bytes(CHUNK + 1, 1)[..]));
    assert_eq!(status, 413, "a chunk above MAX_CHUNK_BYTES is refused");

    // The cloud restarts; a write had reached the staging file but not the database.
    drop(app);
    drop(f);
    let staging = db.data_dir().join("uploads").join(format!("{id}.part"));
    let mut junk = std::fs::read(&staging).unwrap();
    junk.extend_from_slice(b"bytes of a write whose offset was never recorded");
    std::fs::write(&staging, junk).unwrap();
    let f = fixture(db, false);
    let mut frames_after = f.state.hub.send(Join).await.unwrap().frames;
    let app = app!(f);
    let (status, body) = call!(app, get(&format!("/api/media/{id}"), Some(PI1)));
    assert_eq!(status, 200);
    let mut offset = body["received"].as_u64().unwrap();
    assert_eq!(offset, CHUNK as u64);
    assert_eq!(body["complete"], false);
    while offset < size {
        let end = (offset as usize + CHUNK).min(data.len());
        let (status, body) = call!(app, patch(id, PI1, offset, &data[offset as usize..end]));
        assert_eq!(status, 200, "{body}");
        offset = body["received"].as_u64().unwrap();
    }
    let (_, body) = call!(app, get(&format!("/api/media/{id}"), Some(PI1)));
    assert_eq!(body["complete"], true);
    assert!(!staging.exists(), "the staging file is removed once stored");
    // Repeating the last chunk after completion changes nothing.
    let (status, body) = call!(app, patch(id, PI1, size, &[]));
    assert_eq!((status, &body["complete"]), (200, &Value::Bool(true)));

    let frame = frames_after.recv().await.unwrap();
    let frame: Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(frame["type"], "media_ready", "{frame}");
    assert_eq!(frame["data"]["id"], id.to_string());
    assert_eq!(frame["data"]["kind"], "clip");
    assert_eq!(frame["data"]["camera"], "pi-1");
    assert!(frames.try_recv().is_err(), "the first cloud pushed nothing");

    // The whole clip, by a viewer's token.
    let uri = format!("/api/clips/{id}");
    let (status, headers, body) = fetch(&app, get(&uri, Some(&f.viewer))).await;
    assert_eq!(status, 200);
    assert_eq!(sha256(&body), clip.sha256, "byte-identical");
    assert_eq!(headers[0].as_deref(), Some("video/mp4"));
    assert_eq!(headers[2].as_deref(), Some("bytes"));
    assert_eq!(body.len() as u64, size);

    // Ranges.
    let last = size - 1;
    for (range, start, end) in [
        ("bytes=0-99".to_owned(), 0, 99),
        (format!("bytes={}-", size - 10), size - 10, last),
        ("bytes=-100".to_owned(), size - 100, last),
        (
            format!("bytes={CHUNK}-{}", CHUNK + 4),
            CHUNK as u64,
            CHUNK as u64 + 4,
        ),
        (format!("bytes=5-{}", size + 1000), 5, last),
    ] {
        let req = get(&uri, Some(&f.viewer)).insert_header(("Range", range.clone()));
        let (status, headers, body) = fetch(&app, req).await;
        assert_eq!(status, 206, "{range}");
        assert_eq!(
            headers[1],
            Some(format!("bytes {start}-{end}/{size}")),
            "{range}"
        );
        assert_eq!(body, &data[start as usize..=end as usize], "{range}");
    }
    for range in [format!("bytes={size}-"), "bytes=-0".to_owned()] {
        let req = get(&uri, Some(&f.viewer)).insert_header(("Range", range.clone()));
        let (status, headers, _) = fetch(&app, req).await;
        assert_eq!(status, 416, "{range}");
        assert_eq!(headers[1], Some(format!("bytes */{size}")), "{range}");
    }

    // Signed links: the info's url works without a header, for this clip only, until it expires.
    let (status, info) = call!(app, get(&format!("{uri}/info"), Some(&f.viewer)));
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["available"], true);
    let url = info["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("{uri}?exp=")), "{url}");
    let (status, _, body) = fetch(&app, get(&url, None)).await;
    assert_eq!(status, 200);
    assert_eq!(sha256(&body), clip.sha256);
    let tampered = format!("{}A", &url[..url.len() - 1]);
    let tampered = if tampered == url {
        format!("{}B", &url[..url.len() - 1])
    } else {
        tampered
    };
    let (status, _, _) = fetch(&app, get(&tampered, None)).await;
    assert_eq!(status, 401, "a tampered link is refused");
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
    let expired = f.state.auth.media_links().sign(&uri, now - 3600, 60);
    let (status, _, body) = fetch(&app, get(&expired, None)).await;
    assert_eq!(status, 401, "an expired link is refused");
    assert!(String::from_utf8_lossy(&body).contains("expired"));
    let elsewhere = url.replacen(&id.to_string(), &Uuid::now_v7().to_string(), 1);
    let (status, _, _) = fetch(&app, get(&elsewhere, None)).await;
    assert_eq!(status, 401, "a link is for its own clip only");
    let (status, _, _) = fetch(&app, get(&uri, None)).await;
    assert_eq!(status, 401, "no header and no link");

    // Devices never use the user routes.
    let (status, _) = call!(app, get(&format!("{uri}/info"), Some(PI1)));
    assert_eq!(status, 403);
    let (status, _, _) = fetch(&app, get(&uri, Some(PI1))).await;
    assert_eq!(status, 403);
    let (status, _) = call!(app, get("/api/cameras", Some(PI1)));
    assert_eq!(status, 403);

    // Unknown ids are 404 with a clear message.
    let (status, body) = call!(
        app,
        get(
            &format!("/api/clips/{}/info", Uuid::now_v7()),
            Some(&f.viewer)
        )
    );
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("no clip"),
        "{body}"
    );

    // Admins delete; viewers cannot.
    let delete = |token: &str| {
        atest::TestRequest::delete()
            .uri(&uri)
            .insert_header(bearer(token))
    };
    let (status, _) = call!(app, delete(&f.viewer));
    assert_eq!(status, 403);
    let (status, _) = call!(app, delete(&f.admin));
    assert_eq!(status, 204);
    let (status, body) = call!(app, get(&uri, Some(&f.viewer)));
    assert_eq!(status, 404, "{body}");
    let object = db.data_dir().join(format!("media/clips/pi-1/{id}.mp4"));
    assert!(!object.exists(), "the file is gone from the media store");
    let audit = f.state.store.list_audit(None, 100).unwrap();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert!(actions.contains(&("clip_viewed", "vic")), "{actions:?}");
    assert!(actions.contains(&("clip_deleted", "ada")), "{actions:?}");
}

async fn a_file_that_does_not_match_its_sha256_is_refused_and_nothing_is_stored(db: &TestDb) {
    let f = fixture(db, true);
    let app = app!(f);
    let data = bytes(CHUNK + 10, 3);
    let mut clip = clip_manifest("pi-1", &data, vec![]);
    clip.sha256 = sha256(b"something else");
    let id = clip.clip_id;
    let (status, _) = call!(app, put_manifest(id, PI1, &MediaManifest::Clip(clip)));
    assert_eq!(status, 201);
    let (status, _) = call!(app, patch(id, PI1, 0, &data[..CHUNK]));
    assert_eq!(status, 200);
    let (status, body) = call!(app, patch(id, PI1, CHUNK as u64, &data[CHUNK..]));
    assert_eq!(status, 422, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("SHA-256") && message.contains("from 0"),
        "{message}"
    );
    let (_, body) = call!(app, get(&format!("/api/media/{id}"), Some(PI1)));
    assert_eq!(
        (&body["received"], &body["complete"]),
        (&Value::from(0), &Value::Bool(false))
    );
    let (status, body) = call!(app, get(&format!("/api/clips/{id}"), Some(&f.viewer)));
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not uploaded"),
        "{body}"
    );
    assert!(!db
        .data_dir()
        .join(format!("media/clips/pi-1/{id}.mp4"))
        .exists());
}

async fn a_snapshot_is_listed_with_its_camera_and_served_as_a_jpeg(db: &TestDb) {
    let f = fixture(db, true);
    let app = app!(f);
    let jpeg = bytes(5_000, 11);
    let event = Uuid::now_v7();
    let snapshot = SnapshotTaken {
        schema_version: MEDIA_SCHEMA_VERSION,
        snapshot_id: Uuid::now_v7(),
        device: device("pi-2"),
        event_id: Some(event),
        taken_at: at(0),
        size_bytes: jpeg.len() as u64,
        sha256: sha256(&jpeg),
        width: 640,
        height: 480,
    };
    let id = snapshot.snapshot_id;
    let (status, _) = call!(
        app,
        put_manifest(id, PI2, &MediaManifest::Snapshot(snapshot))
    );
    assert_eq!(status, 201);
    let (status, body) = call!(app, patch(id, PI2, 0, &jpeg));
    assert_eq!(
        (status, &body["complete"]),
        (200, &Value::Bool(true)),
        "{body}"
    );

    let (status, cameras) = call!(app, get("/api/cameras", Some(&f.viewer)));
    assert_eq!(status, 200, "{cameras}");
    let camera = &cameras[0];
    assert_eq!(camera["id"], "pi-2");
    assert_eq!(camera["live"], false);
    assert_eq!(camera["clips"], 0);
    assert!(camera["stream_url"]
        .as_str()
        .unwrap()
        .starts_with("/api/cameras/pi-2/stream?exp="));
    assert_eq!(camera["last_snapshot"]["id"], id.to_string());

    // A camera streaming now is listed even without media.
    f.media
        .live
        .mark_live(device("pi-3"), db.data_dir().join("hls"));
    let (_, cameras) = call!(app, get("/api/cameras", Some(&f.viewer)));
    assert_eq!(cameras[1]["id"], "pi-3");
    assert_eq!(cameras[1]["live"], true);
    assert!(cameras[1]["last_snapshot"].is_null());

    let (status, page) = call!(app, get("/api/cameras/pi-2/snapshots", Some(&f.viewer)));
    assert_eq!(status, 200);
    assert_eq!(page["items"][0]["event_id"], event.to_string());
    let url = page["items"][0]["url"].as_str().unwrap();
    let (status, headers, body) = fetch(&app, get(url, None)).await;
    assert_eq!(status, 200);
    assert_eq!(headers[0].as_deref(), Some("image/jpeg"));
    assert_eq!(body, jpeg);
    let (status, _, _) = fetch(
        &app,
        get(
            &format!("/api/cameras/pi-1/snapshots/{id}"),
            Some(&f.viewer),
        ),
    )
    .await;
    assert_eq!(
        status, 404,
        "a snapshot is served under its own camera only"
    );

    // The event's media, before the event itself has arrived.
    let (status, media) = call!(
        app,
        get(&format!("/api/events/{event}/media"), Some(&f.viewer))
    );
    assert_eq!(status, 200, "{media}");
    assert_eq!(media["snapshot"]["id"], id.to_string());
    assert!(media["clip"].is_null());
    let (status, _) = call!(
        app,
        get(
            &format!("/api/events/{}/media", Uuid::now_v7()),
            Some(&f.viewer)
        )
    );
    assert_eq!(status, 404);
}

async fn a_clip_deleted_before_its_upload_ends_is_not_brought_back(db: &TestDb) {
    let f = fixture(db, true);
    let mut frames = f.state.hub.send(Join).await.unwrap().frames;
    let app = app!(f);
    let data = bytes(1000, 5);
    let clip = clip_manifest("pi-1", &data, vec![]);
    let id = clip.clip_id;
    let (status, _) = call!(app, put_manifest(id, PI1, &MediaManifest::Clip(clip)));
    assert_eq!(status, 201);
    let delete = atest::TestRequest::delete()
        .uri(&format!("/api/clips/{id}"))
        .insert_header(bearer(&f.admin));
    let (status, _) = call!(app, delete);
    assert_eq!(status, 204);
    let (status, body) = call!(app, patch(id, PI1, 0, &data));
    assert_eq!(
        (status, &body["complete"]),
        (200, &Value::Bool(true)),
        "{body}"
    );
    let (status, body) = call!(app, get(&format!("/api/clips/{id}"), Some(&f.viewer)));
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("deleted"),
        "{body}"
    );
    assert!(!db
        .data_dir()
        .join(format!("media/clips/pi-1/{id}.mp4"))
        .exists());
    assert!(
        frames.try_recv().is_err(),
        "no media_ready for a deleted clip"
    );
}

async fn an_upload_interrupted_after_its_last_chunk_is_finished_by_an_empty_chunk(db: &TestDb) {
    let f = fixture(db, true);
    let app = app!(f);
    let data = bytes(CHUNK + 500, 9);
    let clip = clip_manifest("pi-1", &data, vec![]);
    let id = clip.clip_id;
    let size = data.len() as u64;
    let (status, _) = call!(
        app,
        put_manifest(id, PI1, &MediaManifest::Clip(clip.clone()))
    );
    assert_eq!(status, 201);
    let (status, _) = call!(app, patch(id, PI1, 0, &data[..CHUNK]));
    assert_eq!(status, 200);
    // The last chunk was fsynced and counted, then the cloud died before completing it.
    let staging = db.data_dir().join("uploads").join(format!("{id}.part"));
    std::fs::write(&staging, &data).unwrap();
    assert!(f
        .state
        .store
        .advance_upload(id, CHUNK as u64, size, chrono::Utc::now())
        .unwrap());
    let (_, body) = call!(app, get(&format!("/api/media/{id}"), Some(PI1)));
    assert_eq!(
        (&body["received"], &body["complete"]),
        (&Value::from(size), &Value::Bool(false))
    );
    let (status, body) = call!(app, patch(id, PI1, size, &[]));
    assert_eq!(
        (status, &body["complete"]),
        (200, &Value::Bool(true)),
        "{body}"
    );
    let (status, _, fetched) = fetch(&app, get(&format!("/api/clips/{id}"), Some(&f.viewer))).await;
    assert_eq!(status, 200);
    assert_eq!(sha256(&fetched), clip.sha256);
}

fn run<F: std::future::Future<Output = ()>>(future: F) {
    actix_rt::System::new().block_on(future)
}

store_tests! {
    fn an_upload_interrupted_after_its_last_chunk_is_finished_by_an_empty_chunk_(db) {
        run(an_upload_interrupted_after_its_last_chunk_is_finished_by_an_empty_chunk(db))
    }
    fn a_clip_deleted_before_its_upload_ends_is_not_brought_back_(db) {
        run(a_clip_deleted_before_its_upload_ends_is_not_brought_back(db))
    }
    fn a_clip_uploaded_in_chunks_across_a_restart_comes_back_byte_identical_(db) {
        run(a_clip_uploaded_in_chunks_across_a_restart_comes_back_byte_identical(db))
    }
    fn a_file_that_does_not_match_its_sha256_is_refused_and_nothing_is_stored_(db) {
        run(a_file_that_does_not_match_its_sha256_is_refused_and_nothing_is_stored(db))
    }
    fn a_snapshot_is_listed_with_its_camera_and_served_as_a_jpeg_(db) {
        run(a_snapshot_is_listed_with_its_camera_and_served_as_a_jpeg(db))
    }
}
