//! The live-push credential: each device's bundle holds a `live.token` apart from its API token,
//! because the live push carries its credential in RTSP Basic auth, in clear. Against a real
//! `vigie-cloud` on the embedded defaults: the RTSP server and the MediaMTX auth hook take the live
//! token and refuse the API token; the API refuses the live token; `vigie-cloud device rotate`
//! replaces the API token, the MQTT password and the live token at once, the old ones refused from
//! then on by the API, the RTSP server, the hook and the embedded broker; the refused logins show
//! in the device's attack telemetry (`GET /api/devices`) and in `/metrics`; and the hook lets the
//! cloud's own reader (its pull URL's credentials) read, and no one else. The requests are the
//! body MediaMTX documents for `authMethod: http` (MediaMTX itself cannot run here).

mod live_rig;
mod support;

use std::time::Duration;

use live_rig::*;
use serde_json::{json, Value};
use support::*;

/// What MediaMTX posts to its auth hook for a publisher.
fn publish(path_device: &str, user: &str, password: &str) -> Value {
    json!({
        "user": user,
        "password": password,
        "token": "",
        "ip": "10.1.2.3",
        "action": "publish",
        "path": format!("live/{path_device}"),
        "protocol": "rtsp",
        "id": "5c3b0a1e-0000-4000-8000-000000000001",
        "query": ""
    })
}

/// The hook's answer to `body`.
fn hook(rig: &Rig, body: &Value) -> u16 {
    let url = format!("{}/api/live/auth", rig.cloud.base);
    post_json(&agent(), &url, None, body).0
}

/// The status of `GET /api/time` with `bearer` (any caller with a valid credential may read it).
fn api_status(rig: &Rig, bearer: &str) -> u16 {
    get_json(
        &agent(),
        &format!("{}/api/time", rig.cloud.base),
        Some(bearer),
    )
    .0
}

/// The status code in an RTSP status line (`RTSP/1.0 200 OK` → 200).
fn rtsp_code(rig: &Rig, auth: &str) -> u16 {
    let line = rtsp_status(rig.rtsp_port, &rig.announce(auth));
    line.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an RTSP status line: {line:?}"))
}

fn mqtt_port(rig: &Rig) -> u16 {
    let (_, listen) = rig
        .cloud
        .env
        .iter()
        .find(|(k, _)| k == "VIGIE_MQTT_LISTEN")
        .expect("the rig sets the embedded broker's address");
    listen.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn the_live_token_opens_only_its_devices_live_path_and_a_rotation_replaces_every_credential() {
    let rig = Rig::start(&[]);
    let (device, api, live) = (&rig.device, rig.token.clone(), rig.live_token.clone());
    assert!(live.starts_with("vgl_") && api.starts_with("vgd_"));

    // The API takes the API token, never the live token.
    assert_eq!(api_status(&rig, &api), 200);
    assert_eq!(api_status(&rig, &live), 401);

    // The RTSP server takes the live token, never the API token.
    assert_eq!(rtsp_code(&rig, &basic(device, &live)), 200);
    assert_eq!(rtsp_code(&rig, &basic(device, &api)), 401);

    // The MediaMTX hook: the same rule, publishing only.
    assert_eq!(hook(&rig, &publish(device, device, &live)), 200);
    assert_eq!(hook(&rig, &publish(device, device, &api)), 401);
    assert_eq!(hook(&rig, &publish(device, device, "")), 401);
    assert_eq!(
        hook(&rig, &publish(device, "", "")),
        401,
        "no credentials yet"
    );
    let other = unique("cam-");
    assert_eq!(hook(&rig, &publish(&other, device, &live)), 403);
    let mut read = publish(device, device, &live);
    read["action"] = json!("read");
    assert_eq!(hook(&rig, &read), 403, "viewers watch through the cloud");
    read["action"] = json!("playback");
    assert_eq!(hook(&rig, &read), 403);
    let mut elsewhere = publish(device, device, &live);
    elsewhere["path"] = json!(format!("other/{device}"));
    assert_eq!(hook(&rig, &elsewhere), 404);
    let url = format!("{}/api/live/auth", rig.cloud.base);
    let (status, body) = post_json(&agent(), &url, None, &json!({"user": device}));
    assert_eq!(status, 400, "no action: {body}");

    // The refusals naming the device are its attack telemetry: its API token over RTSP and at
    // the hook, and an empty password at the hook (a request with no credentials at all is not a
    // login; another device's path names that device, which the store does not know), in
    // /metrics at once and in the device's view within the flush period.
    let series = format!("vigie_rtsp_device_logins_refused_total{{device=\"{device}\"}} ");
    let refused = || {
        let text = agent()
            .get(&format!("{}/metrics", rig.cloud.ops))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&series).map(|n| n.parse::<u64>().unwrap()))
            .unwrap_or(0)
    };
    assert_eq!(refused(), 3);
    wait_for(
        "the refused live logins in the device's view",
        Duration::from_secs(10),
        || {
            rig.cloud.device(&rig.admin, device).is_some_and(|d| {
                d["security"]["refused_live_logins"] == 3 && d["security"]["last_at"].is_string()
            })
        },
    );

    // Rotation: new credentials for everything, the old ones refused everywhere at once.
    let broker = mqtt_port(&rig);
    let old_mqtt = rig.cloud.mqtt_password(device);
    try_connect(broker, device, Some((device, &old_mqtt))).expect("the old MQTT password works");
    let new_api = rig.cloud.rotate_device(device);
    let new_live = rig.cloud.live_token(device);
    let new_mqtt = rig.cloud.mqtt_password(device);
    assert!(new_api != api && new_live != live && new_mqtt != old_mqtt);
    assert_eq!(api_status(&rig, &api), 401);
    assert_eq!(api_status(&rig, &new_api), 200);
    assert_eq!(rtsp_code(&rig, &basic(device, &live)), 401);
    assert_eq!(rtsp_code(&rig, &basic(device, &new_live)), 200);
    assert_eq!(hook(&rig, &publish(device, device, &live)), 401);
    assert_eq!(hook(&rig, &publish(device, device, &new_live)), 200);
    assert_refused(
        "the MQTT password from before the rotation",
        try_connect(broker, device, Some((device, &old_mqtt))),
    );
    try_connect(broker, device, Some((device, &new_mqtt))).expect("the new MQTT password works");
    let (_, audit) = get_json(
        &agent(),
        &format!("{}/api/audit", rig.cloud.base),
        Some(&rig.admin),
    );
    assert!(
        audit.to_string().contains("device_rotated"),
        "the rotation is audited: {audit}"
    );

    // A device that is not provisioned cannot be rotated into existence.
    let out = std::process::Command::new(bin("vigie-cloud"))
        .args(["device", "rotate", &unique("ghost-")])
        .envs(rig.cloud.env.iter().cloned())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not provisioned"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_mediamtx_hook_lets_the_cloud_read_with_its_pull_urls_credentials_and_no_one_else() {
    // Pull mode: the cloud reads every device from the cluster's RTSP server (here nothing listens
    // on that loopback port, so its pullers back off) with the credentials in the URL.
    let rig = Rig::start(&[(
        "VIGIE_RTSP_SOURCE_URL",
        "rtsp://vigie-reader:reader%20secret@127.0.0.1:9/live/{device}",
    )]);
    let device = &rig.device;
    let read = |user: &str, password: &str| {
        let mut body = publish(device, user, password);
        body["action"] = json!("read");
        hook(&rig, &body)
    };
    assert_eq!(read("vigie-reader", "reader secret"), 200);
    assert_eq!(
        read("vigie-reader", "reader%20secret"),
        403,
        "decoded, as FFmpeg sends it"
    );
    assert_eq!(read("vigie-reader", "wrong"), 403);
    assert_eq!(read(device, &rig.live_token), 403, "a device reads nothing");
    assert_eq!(read("", ""), 401);
    // Publishing is still the device's alone.
    assert_eq!(hook(&rig, &publish(device, device, &rig.live_token)), 200);
    assert_eq!(
        hook(&rig, &publish(device, "vigie-reader", "reader secret")),
        403
    );
    for action in ["playback", "api", "metrics", "pprof"] {
        let mut body = publish(device, "vigie-reader", "reader secret");
        body["action"] = json!(action);
        assert_eq!(hook(&rig, &body), 403, "{action}");
    }
}
