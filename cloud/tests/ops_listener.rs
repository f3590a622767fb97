//! The metrics listener against a real `vigie-cloud` on its embedded defaults: `/metrics` and the
//! detailed `/readyz` answer there and only there; the API's port gives `/readyz` as a status code
//! with no component names or failure reasons, and `/metrics` is not found on it. The data
//! directory it creates (database, JWT secret, staged uploads, media) is 0700.

mod support;

use serde_json::Value;
use support::*;

#[test]
fn metrics_and_readiness_details_are_served_on_the_metrics_listener_only() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start_embedded(dir.path());
    let agent = agent();

    let (status, ready) = get_json(&agent, &format!("{}/readyz", cloud.base), None);
    assert_eq!(status, 200);
    assert_eq!(
        ready,
        Value::String("ready\n".into()),
        "no details on the API's port"
    );
    let (status, body) = get_json(&agent, &format!("{}/metrics", cloud.base), None);
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("VIGIE_METRICS_LISTEN"),
        "{body}"
    );

    let (status, detailed) = get_json(&agent, &format!("{}/readyz", cloud.ops), None);
    assert_eq!(status, 200);
    assert_eq!(detailed["ready"], true, "{detailed}");
    assert_eq!(
        detailed["components"]["ingest"]["state"], "ready",
        "{detailed}"
    );
    assert_eq!(
        detailed["components"]["database"]["state"], "ready",
        "{detailed}"
    );
    assert_eq!(metric(&cloud, "vigie_ingest_inserted_total"), 0);

    use std::os::unix::fs::PermissionsExt;
    let data = dir.path().join("cloud");
    let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the data directory {}", data.display());
}
