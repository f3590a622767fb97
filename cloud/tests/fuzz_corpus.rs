//! The fuzz targets' corpus on stable: every committed seed in `fuzz/corpus/<target>/` and every
//! crash libFuzzer left in `fuzz/artifacts/<target>/` goes through the same entry points the
//! libFuzzer targets call (`vigie_cloud::fuzzing`), which panic on a broken bound; a few seeds
//! whose outcome is known pin that the seeds are real messages.

use std::path::PathBuf;

use vigie_cloud::fuzzing;

const TARGETS: [&str; 3] = ["rtsp_request", "rtp_depacketizer", "mqtt_envelope"];

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every file of `fuzz/{corpus,artifacts}/<target>/`, with its bytes.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for kind in ["corpus", "artifacts"] {
        let Ok(dir) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
            continue;
        };
        for entry in dir.flatten() {
            let path = entry.path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                found.push((path, bytes));
            }
        }
    }
    found.sort();
    found
}

fn run(target: &str, data: &[u8]) -> String {
    match target {
        "rtsp_request" => fuzzing::rtsp_request(data).to_string(),
        "rtp_depacketizer" => fuzzing::rtp_depacketizer(data).to_string(),
        "mqtt_envelope" => fuzzing::mqtt_envelope(data).to_owned(),
        other => panic!("no fuzz target {other}"),
    }
}

#[test]
fn every_corpus_and_artifact_file_goes_through_its_fuzz_entry_without_a_panic() {
    for target in TARGETS {
        let files = inputs(target);
        assert!(files.len() >= 5, "{target}: only {} seeds", files.len());
        for (path, data) in files {
            let outcome = std::panic::catch_unwind(|| run(target, &data));
            assert!(outcome.is_ok(), "{target} panicked on {}", path.display());
        }
    }
}

#[test]
fn the_seeds_are_real_messages_with_known_outcomes() {
    let seed = |target: &str, name: &str| {
        let path = fuzz_dir().join("corpus").join(target).join(name);
        run(target, &std::fs::read(&path).unwrap())
    };
    // OPTIONS, ANNOUNCE twice, SETUP, RECORD, three RTP frames, TEARDOWN.
    assert_eq!(seed("rtsp_request", "ffmpeg_publish_session"), "9");
    assert_eq!(seed("rtsp_request", "endless_line"), "0");
    assert_eq!(seed("rtsp_request", "huge_header"), "0");
    assert_eq!(seed("rtp_depacketizer", "stap_a_then_idr"), "2");
    assert_eq!(seed("rtp_depacketizer", "fu_a_keyframe"), "1");
    assert_eq!(seed("mqtt_envelope", "button_event"), "event");
    assert_eq!(seed("mqtt_envelope", "motion_event_unknown_field"), "event");
    assert_eq!(seed("mqtt_envelope", "status_sleeping"), "status");
    assert_eq!(
        seed("mqtt_envelope", "event_on_wrong_device_topic"),
        "invalid"
    );
    assert_eq!(seed("mqtt_envelope", "truncated_event"), "invalid");
}
