//! Live view end to end (issue 4): a real `vigie-cloud` on the embedded defaults, a provisioned
//! device whose camera (the recorder's synthetic source, paced in real time) is pushed over RTSP by
//! the edge's `LivePublisher`, and `ffmpeg` reading `GET /api/cameras/{id}/stream` as HLS, with a
//! user's bearer header and with a signed link; the frames' burned-in counters are read back.

mod live_rig;
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use live_rig::*;
use support::wait_for;
use vigie_cloud::auth::MediaLinks;
use vigie_edge::recorder::FrameFormat;

const FORMAT: FrameFormat = FrameFormat {
    width: 320,
    height: 240,
    fps: 15,
};

/// From the first picture of the camera on (see `from_first_picture`), at least 10 frames, each
/// the next counter.
fn assert_consecutive(frames: &[ReadFrame]) {
    let counters: Vec<u64> = frames.iter().map(|f| f.counter).collect();
    let pictures = from_first_picture(&counters);
    assert!(
        pictures.len() >= 10 && pictures.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive burned-in counters from the first keyframe, got {counters:?}"
    );
}

/// One raw RTSP request on a fresh connection: the status line of the answer.
#[test]
fn a_camera_pushed_over_rtsp_is_watched_as_hls_with_a_token_or_a_signed_link_and_resumes_after_a_cut(
) {
    let rig = Rig::start(&[]);
    let url = rig.stream_url();

    // Not streaming yet: 404 with a reason; an unknown camera likewise.
    let (status, body) = rig.get(&url, Some(&rig.admin));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("not streaming"), "{body}");
    let (status, _) = rig.get(
        &format!("{}/api/cameras/no-such-cam/stream", rig.cloud.base),
        Some(&rig.admin),
    );
    assert_eq!(status, 404);

    // Through a relay the test can cut.
    let relay = Relay::start(rig.rtsp_port);
    let camera = Camera::start(
        rig.rtsp_url(relay.port),
        &rig.device,
        &rig.live_token,
        FORMAT,
    );
    let first_playlist = rig.wait_playlist(Duration::from_secs(30));
    eprintln!("live: first playable playlist {first_playlist:?} after publishing started");

    // Auth: none, a wrong token, a device token, a forged signature: refused.
    assert_eq!(rig.get(&url, None).0, 401);
    assert_eq!(rig.get(&url, Some("not-a-token")).0, 401);
    assert_eq!(rig.get(&url, Some(&rig.token)).0, 403);
    assert_eq!(
        rig.get(&format!("{url}?exp=9999999999&sig=AAAA"), None).0,
        401
    );

    // The playlist's segments point back at the API, and path tricks are refused.
    let (_, playlist) = rig.get(&url, Some(&rig.admin));
    assert!(
        playlist.contains(&format!("/api/cameras/{}/stream/seg-", rig.device)),
        "{playlist}"
    );
    for bad in ["..%2Findex.m3u8", "index.m3u8", "seg-1.ts.tmp"] {
        assert_eq!(rig.get(&format!("{url}/{bad}"), Some(&rig.admin)).0, 404);
    }

    // A user's bearer header: ffmpeg decodes frames with consecutive burned-in counters.
    let frames = read_hls(&url, Some(&rig.admin), FORMAT, 30, false);
    assert_consecutive(&frames);

    // A signed link, and the segment URIs of its playlist carry the signature.
    let links = MediaLinks::from_secret(JWT_SECRET.as_bytes());
    let scope = format!("/api/cameras/{}/stream", rig.device);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signed = format!("{}{}", rig.cloud.base, links.sign(&scope, now, 300));
    let (status, playlist) = rig.get(&signed, None);
    assert_eq!(status, 200);
    assert!(playlist.contains(".ts?exp="), "{playlist}");
    // A link signed for another camera, or expired, opens nothing here.
    let other = links.query("/api/cameras/another-cam/stream", now, 300);
    assert_eq!(rig.get(&format!("{url}?{other}"), None).0, 401);
    let expired = links.query(&scope, now - 600, 300);
    assert_eq!(rig.get(&format!("{url}?{expired}"), None).0, 401);
    let frames = read_hls(&signed, None, FORMAT, 30, false);
    assert_consecutive(&frames);
    let before_cut = frames.last().unwrap().counter;

    // Cut the link: the publisher reconnects and the stream resumes with later frames.
    relay.cut();
    wait_for(
        "the publisher to reconnect",
        Duration::from_secs(30),
        || camera.status().connections >= 2 && camera.status().connected,
    );
    wait_for("frames from after the cut", Duration::from_secs(30), || {
        // While the new publisher starts, the camera may be briefly gone (404).
        try_read_hls(&url, Some(&rig.admin), FORMAT, 5, false)
            .is_ok_and(|frames| frames[0].counter > before_cut + u64::from(FORMAT.fps))
    });

    // The publisher leaves (TEARDOWN): the camera is gone and its files too.
    camera.stop();
    wait_for("the camera to be gone", Duration::from_secs(15), || {
        rig.get(&url, Some(&rig.admin)).0 == 404
    });
    let live_dir = rig.dir.path().join("cloud/live").join(&rig.device);
    let left: Vec<_> = std::fs::read_dir(&live_dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "files left in {}: {left:?}",
        live_dir.display()
    );
}

#[test]
fn a_wrong_or_revoked_device_token_or_a_viewer_is_refused_by_the_rtsp_server() {
    let rig = Rig::start(&[]);
    let announce = |auth: &str| rig.announce(auth);
    assert!(rtsp_status(rig.rtsp_port, &announce("")).contains(" 401 "));
    let wrong = basic(&rig.device, "vgl_not-the-token");
    assert!(rtsp_status(rig.rtsp_port, &announce(&wrong)).contains(" 401 "));
    // The device's API token is not a live-push credential: it never travels in Basic auth.
    let api_token = basic(&rig.device, &rig.token);
    assert!(rtsp_status(rig.rtsp_port, &announce(&api_token)).contains(" 401 "));
    let other = basic("someone-else", &rig.live_token);
    assert!(rtsp_status(rig.rtsp_port, &announce(&other)).contains(" 403 "));
    let play = format!(
        "DESCRIBE {} RTSP/1.0\r\nCSeq: 1\r\n\r\n",
        rig.rtsp_url(rig.rtsp_port)
    );
    assert!(rtsp_status(rig.rtsp_port, &play).contains(" 405 "));

    // The edge's publisher with a wrong token never gets a stream up.
    let camera = Camera::start(
        rig.rtsp_url(rig.rtsp_port),
        &rig.device,
        "vgl_not-the-token",
        FORMAT,
    );
    wait_for(
        "the publisher to be refused twice",
        Duration::from_secs(30),
        || camera.status().failures >= 2,
    );
    assert_eq!(camera.status().connections, 0);
    assert_eq!(rig.get(&rig.stream_url(), Some(&rig.admin)).0, 404);
    camera.stop();

    // The right token works until the device is revoked; then it is refused like an unknown one.
    let right = basic(&rig.device, &rig.live_token);
    assert!(rtsp_status(rig.rtsp_port, &announce(&right)).contains(" 200 "));
    let (status, body) = support::post_json(
        &support::agent(),
        &format!("{}/api/devices/{}/revoke", rig.cloud.base, rig.device),
        Some(&rig.admin),
        &serde_json::json!({}),
    );
    assert_eq!(status, 204, "{body}");
    assert!(rtsp_status(rig.rtsp_port, &announce(&right)).contains(" 401 "));
}

#[test]
fn a_publisher_that_goes_silent_is_dropped_and_its_camera_is_gone() {
    let rig = Rig::start(&[]);
    let url = rig.rtsp_url(rig.rtsp_port);
    let auth = basic(&rig.device, &rig.live_token);
    let sdp = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
    let mut stream = TcpStream::connect(("127.0.0.1", rig.rtsp_port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut ask = |request: String| {
        stream.write_all(request.as_bytes()).unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let answer = ask(format!(
        "ANNOUNCE {url} RTSP/1.0\r\nCSeq: 1\r\n{auth}Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    ));
    assert!(answer.starts_with("RTSP/1.0 200"), "{answer}");
    let answer = ask(format!(
        "SETUP {url}/streamid=0 RTSP/1.0\r\nCSeq: 2\r\n{auth}Transport: RTP/AVP/UDP;unicast;client_port=5000-5001\r\n\r\n"
    ));
    assert!(
        answer.starts_with("RTSP/1.0 461"),
        "UDP is refused: {answer}"
    );
    let answer = ask(format!(
        "SETUP {url}/streamid=0 RTSP/1.0\r\nCSeq: 3\r\n{auth}Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n\r\n"
    ));
    assert!(answer.contains("interleaved=0-1"), "{answer}");
    let answer = ask(format!(
        "RECORD {url} RTSP/1.0\r\nCSeq: 4\r\n{auth}Range: npt=0.000-\r\n\r\n"
    ));
    assert!(answer.starts_with("RTSP/1.0 200"), "{answer}");
    // Live (no segment yet), then silent for longer than the server waits: gone.
    let (status, body) = rig.get(&rig.stream_url(), Some(&rig.admin));
    assert_eq!(status, 404);
    assert!(body.contains("starting"), "{body}");
    wait_for(
        "the silent publisher to be dropped",
        Duration::from_secs(20),
        || {
            rig.get(&rig.stream_url(), Some(&rig.admin))
                .1
                .contains("not streaming")
        },
    );
}

/// Pull mode, as in the chart: the Pis publish to the cluster's RTSP server (MediaMTX there; here
/// gst-rtsp-server, which serves PLAY), and the cloud pulls each device it knows from it with its
/// reader credentials, writing the same HLS. A wrong reader password gets nothing.
#[test]
fn pull_mode_reads_each_known_device_from_the_clusters_rtsp_server_as_its_reader() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let device = support::unique("cam-");
    let mut server = std::process::Command::new("/usr/bin/python3");
    server
        .arg(support::workspace().join("cloud/tests/fixtures/rtsp_server.py"))
        .args([
            &port.to_string(),
            "vigie-reader",
            "reader-secret-123",
            &device,
        ]);
    let server = support::Proc::spawn("rtsp server", server, &dir.path().join("rtsp-server.log"));
    wait_for("the RTSP server to listen", Duration::from_secs(15), || {
        support::port_open(port)
    });
    let source = format!("rtsp://vigie-reader:reader-secret-123@127.0.0.1:{port}/live/{{device}}");
    let mut cloud = support::Cloud::start(
        dir.path(),
        vec![
            (
                "VIGIE_MQTT_LISTEN".into(),
                format!("127.0.0.1:{}", support::free_port()),
            ),
            ("VIGIE_RTSP_SOURCE_URL".into(), source),
            ("VIGIE_LIVE_SEGMENT_MS".into(), "500".into()),
        ],
    );
    cloud.add_user("admin", "admin", "correct horse battery");
    cloud.add_device(&device);
    // The puller reads the device list at start (then every 30 s).
    cloud.restart();
    let admin = cloud.login("admin", "correct horse battery");
    let url = format!("{}/api/cameras/{device}/stream", cloud.base);
    let get = |url: &str| {
        let mut resp = support::agent()
            .get(url)
            .header("Authorization", &format!("Bearer {admin}"))
            .call()
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap_or_default())
    };
    wait_for(
        "the pulled camera's playlist",
        Duration::from_secs(30),
        || {
            let (status, body) = get(&url);
            status == 200 && body.matches(".ts").count() >= 2
        },
    );
    let (_, cameras) = get(&format!("{}/api/cameras", cloud.base));
    let cameras: serde_json::Value = serde_json::from_str(&cameras).unwrap();
    let camera = cameras
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == device.as_str())
        .expect("the camera is listed");
    assert_eq!(camera["live"], true, "{camera}");
    let (_, playlist) = get(&url);
    let segment = playlist
        .lines()
        .find(|l| l.contains(".ts"))
        .unwrap()
        .to_owned();
    let segment_url = if segment.starts_with("/api/") {
        format!("{}{segment}", cloud.base)
    } else {
        format!("{url}/{segment}")
    };
    let (status, _) = get(&segment_url);
    assert_eq!(status, 200, "{segment_url}");

    // With a wrong reader password the RTSP server refuses it, and the camera never goes live.
    let other = support::unique("cam-");
    cloud.set_env(
        "VIGIE_RTSP_SOURCE_URL",
        Some(&format!(
            "rtsp://vigie-reader:wrong@127.0.0.1:{port}/live/{{device}}"
        )),
    );
    cloud.add_device(&other);
    cloud.restart();
    wait_for(
        "the refused pull in the log",
        Duration::from_secs(20),
        || {
            let log = cloud.log();
            log.contains("no live stream from the RTSP server") && log.contains("401")
        },
    );
    let (status, _) = get(&format!("{}/api/cameras/{device}/stream", cloud.base));
    assert_eq!(status, 404, "refused by the RTSP server: no stream");
    drop(server);
}
