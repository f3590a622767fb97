//! Video through the real `vigie-cloud` on the machine's PostgreSQL and Mosquitto: a clip announced
//! twice on `video/{device}/captured` is stored once (other metadata for it is counted invalid and
//! changes nothing), its upload over HTTP ends byte-identical, the console's WebSocket gets
//! `media_ready`, and the events it covers list its `clip_id`.

mod support;

use std::time::Duration;

use protocol::media::{ClipCaptured, MediaManifest, MEDIA_SCHEMA_VERSION};
use protocol::DeviceId;
use rumqttc::{Client, MqttOptions, QoS};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::*;
use uuid::Uuid;

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("Authorization", format!("Bearer {token}"));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let mut resp = agent
        .run(req.body(body).unwrap())
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn a_clip_announced_twice_over_mqtt_and_uploaded_reaches_the_console_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = PgDatabase::create();
    let prefix = unique("media-");
    let mut cloud = Cloud::start(
        dir.path(),
        external_services(&db.url(), "mqtt://127.0.0.1:1883", &prefix),
    );
    cloud.add_user("admin", "admin", "correct horse battery");
    let token = cloud.login("admin", "correct horse battery");
    let device = unique("pi");
    let device_token = cloud.add_device(&device);
    let stream = StreamClient::connect(&cloud.base, &token);
    let agent = agent();

    let event_id = Uuid::now_v7();
    let video: Vec<u8> = (0..300_000_u32).map(|i| (i * 7 % 251) as u8).collect();
    let t = chrono::Utc::now();
    let clip = ClipCaptured {
        schema_version: MEDIA_SCHEMA_VERSION,
        clip_id: Uuid::now_v7(),
        device: DeviceId::new(device.clone()).unwrap(),
        event_ids: vec![event_id],
        started_at: t,
        ended_at: t + chrono::Duration::seconds(15),
        duration_ms: 15_000,
        trigger_offsets_ms: vec![5_000],
        size_bytes: video.len() as u64,
        sha256: sha256(&video),
        codec: "h264".into(),
        width: 640,
        height: 480,
        fps: 25,
    };
    let id = clip.clip_id;

    let mut options = MqttOptions::new(unique("media-pub-"), "127.0.0.1", 1883);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut connection) = Client::new(options, 64);
    std::thread::spawn(move || {
        for notification in connection.iter() {
            if notification.is_err() {
                break;
            }
        }
    });
    let captured = format!("{prefix}/video/{device}/captured");
    let mut other = clip.clone();
    other.size_bytes += 1;
    for payload in [&clip, &clip, &other] {
        client
            .publish(
                captured.clone(),
                QoS::AtLeastOnce,
                false,
                serde_json::to_vec(payload).unwrap(),
            )
            .unwrap();
    }
    let event = json!({
        "schema_version": 1, "id": event_id, "device": device, "seq": 1,
        "sensor": "mat-1", "kind": "button_pressed",
        "occurred_at": protocol::time::to_millis(t + chrono::Duration::seconds(5)),
        "clock_synced": true
    });
    client
        .publish(
            format!("{prefix}/sensors/{device}/button/pressed"),
            QoS::AtLeastOnce,
            false,
            event.to_string(),
        )
        .unwrap();

    // The event was published last: once it is stored, every clip message before it was committed.
    let event_url = format!("{}/api/events/{event_id}", cloud.base);
    wait_for("the event after the clips", Duration::from_secs(30), || {
        get_json(&agent, &event_url, Some(&token)).0 == 200
    });
    assert_eq!(metric(&cloud, "vigie_ingest_clips_announced_total"), 1);
    assert_eq!(metric(&cloud, "vigie_ingest_invalid_total"), 1);
    let (status, info) = get_json(
        &agent,
        &format!("{}/api/clips/{id}/info", cloud.base),
        Some(&token),
    );
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["available"], false);
    assert_eq!(
        info["size_bytes"],
        video.len(),
        "the first metadata is kept"
    );
    let (_, item) = get_json(&agent, &event_url, Some(&token));
    assert_eq!(item["clip_id"], id.to_string());

    // The Pi uploads it.
    let media_url = format!("{}/api/media/{id}", cloud.base);
    let manifest = serde_json::to_vec(&MediaManifest::Clip(clip.clone())).unwrap();
    let json_type = [("Content-Type", "application/json".to_owned())];
    let (status, body) = send(
        &agent,
        "PUT",
        &media_url,
        &device_token,
        &json_type,
        manifest,
    );
    assert_eq!(status, 201, "{body}");
    for (n, chunk) in video.chunks(100_000).enumerate() {
        let headers = [
            ("Content-Type", "application/offset+octet-stream".to_owned()),
            ("Upload-Offset", (n * 100_000).to_string()),
        ];
        let (status, body) = send(
            &agent,
            "PATCH",
            &media_url,
            &device_token,
            &headers,
            chunk.to_vec(),
        );
        assert_eq!(status, 200, "{body}");
    }
    let (_, status) = send(&agent, "GET", &media_url, &device_token, &[], vec![]);
    assert_eq!(status["complete"], true, "{status}");

    wait_for(
        "media_ready on the WebSocket",
        Duration::from_secs(10),
        || {
            stream
                .frames
                .lock()
                .unwrap()
                .iter()
                .any(|f| f["type"] == "media_ready" && f["data"]["id"] == id.to_string())
        },
    );
    let (status, media) = get_json(
        &agent,
        &format!("{}/api/events/{event_id}/media", cloud.base),
        Some(&token),
    );
    assert_eq!(status, 200, "{media}");
    let url = media["clip"]["url"].as_str().expect("a signed url");
    let mut resp = agent
        .get(&format!("{}{url}", cloud.base))
        .call()
        .expect("the signed link");
    assert_eq!(resp.status().as_u16(), 200);
    let fetched = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .unwrap();
    assert_eq!(sha256(&fetched), clip.sha256, "byte-identical");
    assert!(dir
        .path()
        .join(format!("cloud/media/clips/{device}/{id}.mp4"))
        .is_file());
    cloud.proc.assert_running();
}
