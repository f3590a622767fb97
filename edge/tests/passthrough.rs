//! A camera that gives H.264 itself is not re-encoded: the `rpicam` source runs a stand-in for
//! `rpicam-vid` (`tests/fixtures/fake-rpicam-vid`: FFmpeg's test pattern through libx264
//! `ultrafast`, in real time, with the arguments the edge gives rpicam-vid), and the clip it makes
//! is checked with ffprobe (H.264, the camera's size, 3 s) and still carries the camera encoder's
//! own settings (`cabac=0`, which the edge's encoder never uses). The snapshot at the trigger is
//! decoded from the camera's stream into a JPEG of the camera's size.

use std::path::Path;
use std::process::Command;

use vigie_edge::recorder::camera_pipe::PipeH264Source;
use vigie_edge::recorder::{FrameFormat, Recorder, RecorderConfig};

fn ffprobe(path: &Path, entries: &str) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json", "-show_entries", entries])
        .arg(path)
        .output()
        .expect("ffprobe is installed (make deps)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_camera_giving_h264_is_recorded_without_re_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-rpicam-vid");
    let format = FrameFormat {
        width: 160,
        height: 120,
        fps: 10,
    };
    let source = PipeH264Source::spawn(fake.to_str().unwrap(), format, 1).unwrap();
    let mut config = RecorderConfig::new(dir.path().join("clips"));
    config.preroll_s = 1;
    config.clip_s = 3;
    config.max_clip_s = 6;
    let mut recorder = Recorder::passthrough(source, &config).unwrap();
    let mut trigger = None;
    let mut clip = None;
    for frame in 0..200 {
        if let Some(done) = recorder.step().unwrap() {
            clip = Some(done);
            break;
        }
        if frame == 15 {
            trigger = Some(recorder.trigger().unwrap());
        }
    }
    let clip = clip.expect("a clip within 20 s");
    let trigger = trigger.unwrap();

    let probe = ffprobe(
        &clip.file.path,
        "stream=codec_name,width,height:format=duration",
    );
    let stream = &probe["streams"][0];
    assert_eq!(stream["codec_name"], "h264");
    assert_eq!(
        (stream["width"].as_u64(), stream["height"].as_u64()),
        (Some(160), Some(120))
    );
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((duration - 3.0).abs() <= 0.25, "clip of {duration} s");
    assert!(clip.trigger_frames.contains(&trigger.frame));

    let bytes = std::fs::read(&clip.file.path).unwrap();
    let sei = bytes.windows(7).any(|w| w == b"cabac=0");
    assert!(
        sei,
        "the clip carries the camera encoder's own SEI (not re-encoded)"
    );

    let snapshot = ffprobe(&trigger.snapshot, "stream=codec_name,width,height");
    assert_eq!(snapshot["streams"][0]["codec_name"], "mjpeg");
    assert_eq!(snapshot["streams"][0]["width"], 160);
}
