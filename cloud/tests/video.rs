//! Video end to end through real processes (embedded defaults: SQLite, the in-process broker):
//! a `vigie-edge` with the synthetic camera (320x240 at 10 fps, real time) records a clip while the
//! cloud is down; when the cloud comes back the clip and the snapshot reach it through the media
//! upload, byte-identical, and link to their event. The clip served by `GET /api/clips/{id}` is
//! checked with ffprobe (H.264, 15 s ± 0.5 s) and decoded: the frame at the trigger (read from the
//! snapshot's burned-in counter) lies inside it with at least 5 s before it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};
use support::*;
use vigie_edge::recorder::burn::read_counter;

const WIDTH: usize = 320;
const HEIGHT: usize = 240;
const FPS: u64 = 10;

/// The example config with a synthetic camera and short upload retries.
fn camera_config(dir: &Path) -> PathBuf {
    let example =
        std::fs::read_to_string(workspace().join("edge/examples/simulated.toml")).unwrap();
    let text =
        format!(
        "{}\n[video]\nsource = \"synthetic\"\nwidth = {WIDTH}\nheight = {HEIGHT}\nfps = {FPS}\n",
        example.replace("[api]\n", "[api]\nretry_base_ms = 200\nretry_max_ms = 1000\n")
    );
    let path = dir.join("camera.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `vigie-edge` as `device` with the synthetic camera, the cloud's embedded broker on
/// `broker_port` and its API, plus `env`; the process and its HTTP base URL, once it answers.
fn start_camera_edge(
    dir: &Path,
    device: &str,
    broker_port: u16,
    cloud: &Cloud,
    token: &str,
    env: &[(&str, String)],
) -> (Proc, String) {
    let port = free_port();
    let mut cmd = Command::new(bin("vigie-edge"));
    cmd.arg("run")
        .arg("--config")
        .arg(camera_config(dir))
        .env("VIGIE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("VIGIE_EDGE_DEVICE_ID", device)
        .env(
            "VIGIE_EDGE_MQTT_URL",
            format!("mqtt://127.0.0.1:{broker_port}"),
        )
        .env("VIGIE_EDGE_API_URL", &cloud.base)
        .env("VIGIE_EDGE_TOKEN", token)
        .envs(cloud.edge_credentials(device))
        .env("VIGIE_EDGE_DATA_DIR", dir.join(device))
        .env("VIGIE_EDGE_HTTP_LISTEN", format!("127.0.0.1:{port}"));
    for (key, value) in env {
        cmd.env(key, value);
    }
    let mut edge = Proc::spawn("vigie-edge", cmd, &dir.join(format!("edge-{device}.log")));
    let base = format!("http://127.0.0.1:{port}");
    edge.wait_until_ok(&format!("{base}/healthz"), Duration::from_secs(30));
    (edge, base)
}

/// Decodes `bytes` (any format FFmpeg reads) to 8-bit grey frames and reads each one's counter.
fn counters(dir: &Path, name: &str, bytes: &[u8]) -> Vec<u64> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .expect("ffmpeg is installed (make deps)");
    assert!(
        out.status.success(),
        "ffmpeg {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len() % (WIDTH * HEIGHT), 0);
    out.stdout
        .chunks_exact(WIDTH * HEIGHT)
        .map(|y| read_counter(y, WIDTH, HEIGHT))
        .collect()
}

fn ffprobe(dir: &Path, bytes: &[u8]) -> serde_json::Value {
    let path = dir.join("probe.mp4");
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-of",
            "json",
            "-show_entries",
            "stream=codec_name,width,height:format=duration",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe is installed");
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn get_bytes(agent: &ureq::Agent, url: &str, token: Option<&str>) -> (u16, Vec<u8>) {
    let mut request = agent.get(url);
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let mut response = request.call().unwrap();
    let status = response.status().as_u16();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .unwrap();
    (status, bytes)
}

/// The media queue entries of the edge's media directory.
fn queue(media: &Path) -> Vec<serde_json::Value> {
    let Ok(dir) = std::fs::read_dir(media.join("queue")) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let path = e.ok()?.path();
        (path.extension()? == "json")
            .then(|| serde_json::from_slice(&std::fs::read(path).ok()?).ok())?
    })
    .collect()
}

#[test]
fn a_clip_recorded_offline_reaches_the_cloud_byte_identical_with_its_snapshot_and_event() {
    let dir = tempfile::tempdir().unwrap();
    let broker_port = free_port();
    let mut cloud = Cloud::start(
        dir.path(),
        vec![(
            "VIGIE_MQTT_LISTEN".into(),
            format!("127.0.0.1:{broker_port}"),
        )],
    );
    cloud.add_user("admin", "admin", "correct horse battery");
    let device_token = cloud.add_device("pi-cam");
    // The cloud (API and its embedded broker) goes down before the Pi starts: fully offline.
    cloud.proc.kill9();

    let (mut edge, edge_base) = start_camera_edge(
        dir.path(),
        "pi-cam",
        broker_port,
        &cloud,
        &device_token,
        &[],
    );

    // Let the pre-roll fill (5 s), then trigger.
    std::thread::sleep(Duration::from_secs(6));
    let agent = agent();
    let (status, fired) = post_json(
        &agent,
        &format!("{edge_base}/sim/button"),
        None,
        &serde_json::json!({}),
    );
    assert_eq!(status, 201, "{fired}");
    let event_id = fired["id"].as_str().unwrap().to_owned();

    // Offline, the clip (15 s: 5 s before the trigger, 10 s after) lands in the media outbox.
    let media = dir.path().join("pi-cam-media");
    wait_for(
        "the clip in the media outbox",
        Duration::from_secs(40),
        || {
            queue(&media)
                .iter()
                .any(|e| e["manifest"]["kind"] == "clip")
        },
    );
    let entries = queue(&media);
    let clip_entry = entries
        .iter()
        .find(|e| e["manifest"]["kind"] == "clip")
        .unwrap();
    let snapshot_entry = entries
        .iter()
        .find(|e| e["manifest"]["kind"] == "snapshot")
        .expect("a snapshot at the trigger");
    assert_eq!(clip_entry["manifest"]["event_ids"][0], event_id.as_str());
    assert_eq!(snapshot_entry["manifest"]["event_id"], event_id.as_str());
    assert_eq!(
        clip_entry["uploaded"], false,
        "nothing can upload while the cloud is down"
    );
    let local_clip = std::fs::read(media.join(clip_entry["file"].as_str().unwrap())).unwrap();
    let local_sha = hex(&Sha256::digest(&local_clip));
    assert_eq!(clip_entry["manifest"]["sha256"], local_sha.as_str());
    let clip_id = clip_entry["manifest"]["clip_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let readyz = format!("{edge_base}/readyz");
    wait_for(
        "the edge to count 2 pending media",
        Duration::from_secs(30),
        || get_json(&agent, &readyz, None).1["media"]["pending"] == 2,
    );

    // The link returns.
    cloud.restart();
    let token = cloud.login("admin", "correct horse battery");
    let media_url = format!("{}/api/events/{event_id}/media", cloud.base);
    let mut event_media = serde_json::Value::Null;
    wait_for(
        "the clip and snapshot in the cloud",
        Duration::from_secs(60),
        || {
            let (status, body) = get_json(&agent, &media_url, Some(&token));
            event_media = body;
            status == 200
                && event_media["clip"]["available"] == true
                && event_media["snapshot"].is_object()
        },
    );
    assert_eq!(event_media["clip"]["id"], clip_id.as_str());
    wait_for(
        "the edge to mark both uploaded",
        Duration::from_secs(30),
        || queue(&media).iter().all(|e| e["uploaded"] == true),
    );
    let mut ready = serde_json::Value::Null;
    wait_for(
        "the edge to count both uploaded",
        Duration::from_secs(10),
        || {
            ready = get_json(&agent, &readyz, None).1;
            ready["media"]["uploaded"] == 2
        },
    );
    assert_eq!(ready["media"]["pending"], 0, "{ready}");
    assert_eq!(ready["media"]["lost"], 0, "{ready}");

    // Byte-identical, through the signed link a <video> element would use (no header).
    let clip_url = format!(
        "{}{}",
        cloud.base,
        event_media["clip"]["url"]
            .as_str()
            .expect("a signed clip url")
    );
    let (status, served) = get_bytes(&agent, &clip_url, None);
    assert_eq!(status, 200);
    assert_eq!(served.len(), local_clip.len());
    assert_eq!(
        hex(&Sha256::digest(&served)),
        local_sha,
        "the clip arrived byte-identical"
    );

    // H.264, 15 s ± 0.5 s, and the trigger frame with at least 5 s before it.
    let probe = ffprobe(dir.path(), &served);
    assert_eq!(probe["streams"][0]["codec_name"], "h264");
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((duration - 15.0).abs() <= 0.5, "clip of {duration} s");
    let snapshot_url = format!(
        "{}{}",
        cloud.base,
        event_media["snapshot"]["url"].as_str().unwrap()
    );
    let (status, jpeg) = get_bytes(&agent, &snapshot_url, None);
    assert_eq!(status, 200);
    let trigger_frame = counters(dir.path(), "snapshot.jpg", &jpeg)[0];
    let frames = counters(dir.path(), "clip.mp4", &served);
    let at = frames
        .iter()
        .position(|&c| c == trigger_frame)
        .expect("the trigger frame is in the clip");
    assert!(
        at as u64 >= 5 * FPS,
        "only {at} frames before the trigger (frame {trigger_frame})"
    );
    assert!(
        frames.windows(2).all(|w| w[1] == w[0] + 1),
        "the clip's frames are consecutive"
    );

    // The event (sent over MQTT once the Pi reconnects, maybe after its media) links to both.
    let event_url = format!("{}/api/events/{event_id}", cloud.base);
    let mut item = serde_json::Value::Null;
    wait_for("the event in the cloud", Duration::from_secs(60), || {
        let (status, body) = get_json(&agent, &event_url, Some(&token));
        item = body;
        status == 200
    });
    assert_eq!(item["clip_id"], clip_id.as_str());
    assert_eq!(item["snapshot_id"], event_media["snapshot"]["id"]);
    edge.kill9();
}

#[test]
fn the_live_view_of_a_real_edge_is_read_from_the_api_by_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let broker_port = free_port();
    let rtsp_port = free_port();
    let cloud = Cloud::start(
        dir.path(),
        vec![
            (
                "VIGIE_MQTT_LISTEN".into(),
                format!("127.0.0.1:{broker_port}"),
            ),
            ("VIGIE_RTSP_LISTEN".into(), format!("127.0.0.1:{rtsp_port}")),
        ],
    );
    cloud.add_user("viewer", "viewer", "correct horse battery");
    let device_token = cloud.add_device("pi-live");
    let live_url = format!("rtsp://127.0.0.1:{rtsp_port}/live/{{device}}");
    let (mut edge, _) = start_camera_edge(
        dir.path(),
        "pi-live",
        broker_port,
        &cloud,
        &device_token,
        &[("VIGIE_EDGE_LIVE_URL", live_url)],
    );

    let token = cloud.login("viewer", "correct horse battery");
    let agent = agent();
    let mut camera = serde_json::Value::Null;
    wait_for("the camera listed live", Duration::from_secs(30), || {
        let (status, cameras) =
            get_json(&agent, &format!("{}/api/cameras", cloud.base), Some(&token));
        camera = cameras
            .as_array()
            .and_then(|all| all.iter().find(|c| c["id"] == "pi-live").cloned())
            .unwrap_or_default();
        status == 200 && camera["live"] == true
    });
    // The signed stream URL, as a native HLS player or ffmpeg would use it (no header).
    let url = format!("{}{}", cloud.base, camera["stream_url"].as_str().unwrap());
    // Listed live as soon as the Pi publishes; the playlist exists once the first segment is cut.
    wait_for("the first playlist", Duration::from_secs(20), || {
        agent
            .get(&url)
            .call()
            .is_ok_and(|r| r.status().as_u16() == 200)
    });
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", &url, "-frames:v", "30"])
        .args(["-fps_mode", "passthrough"])
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .expect("ffmpeg is installed");
    assert!(
        out.status.success(),
        "ffmpeg read the stream: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames: Vec<u64> = out
        .stdout
        .chunks_exact(WIDTH * HEIGHT)
        .map(|y| read_counter(y, WIDTH, HEIGHT))
        .collect();
    assert_eq!(frames.len(), 30, "30 frames decoded");
    // A reader joining mid-GOP first gets the decoder's concealment; from the next keyframe on,
    // the camera's pictures, each the next counter.
    let start = frames
        .windows(3)
        .position(|w| w[0] > 0 && w[1] == w[0] + 1 && w[2] == w[1] + 1)
        .unwrap_or(frames.len());
    let pictures = &frames[start..];
    assert!(
        pictures.len() >= 10 && pictures.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive burned-in counters from the first keyframe: {frames:?}"
    );
    edge.kill9();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
