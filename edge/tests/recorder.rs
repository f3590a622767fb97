//! The recorder end to end, with the synthetic source run faster than real time (320x240 at 10 fps,
//! libx264 `veryfast`): one trigger after 8 s of video gives a 15 s MP4 with faststart and a JPEG
//! snapshot, both checked with the FFmpeg command-line tools (`ffprobe`, and `ffmpeg` to decode).
//!
//! Where the trigger frame lies in the clip is read from the pixels, not from the recorder's own
//! bookkeeping: every frame carries its counter burned in as a binary strip
//! (`recorder::burn::read_counter`), and the test decodes the whole clip to grey and reads it back.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use chrono::Utc;
use vigie_edge::recorder::burn::read_counter;
use vigie_edge::recorder::{
    ClipReport, EncoderConfig, FrameFormat, Pacing, Recorder, RecorderConfig, RecorderError,
    SyntheticSource, TriggerReport,
};

const FORMAT: FrameFormat = FrameFormat {
    width: 320,
    height: 240,
    fps: 10,
};

fn ffprobe_json(path: &Path, entries: &str) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json", "-show_entries", entries])
        .arg(path)
        .output()
        .expect("ffprobe is installed (apt package ffmpeg; make deps)");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Decodes every frame of `path` to 8-bit grey and reads each one's burned-in counter.
fn counters(path: &Path) -> Vec<u64> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .expect("ffmpeg is installed");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (w, h) = (FORMAT.width as usize, FORMAT.height as usize);
    assert_eq!(out.stdout.len() % (w * h), 0);
    out.stdout
        .chunks_exact(w * h)
        .map(|y| read_counter(y, w, h))
        .collect()
}

/// The top-level MP4 boxes, in file order.
fn top_level_boxes(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let mut boxes = Vec::new();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size32 = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned();
        let size = match size32 {
            0 => (bytes.len() - at) as u64,
            1 => u64::from_be_bytes(bytes[at + 8..at + 16].try_into().unwrap()),
            n => n,
        };
        boxes.push(kind);
        at += size as usize;
    }
    boxes
}

/// Runs the synthetic source, triggering right after the frames in `triggers` are captured, until a
/// clip is done; prints the encode speed.
fn record(dir: &Path, triggers: &[u64]) -> (ClipReport, Vec<TriggerReport>) {
    let source = SyntheticSource::new(FORMAT, Pacing::Unpaced, Utc::now()).unwrap();
    let mut recorder = Recorder::new(source, &RecorderConfig::new(dir.join("clips"))).unwrap();
    let started = Instant::now();
    let mut reports = Vec::new();
    for frame in 0..1_000u64 {
        if let Some(clip) = recorder.step().unwrap() {
            let elapsed = started.elapsed().as_secs_f64();
            eprintln!(
                "recorder: {frame} frames of {}x{} in {elapsed:.2} s = {:.1}x real time; clip {} bytes",
                FORMAT.width,
                FORMAT.height,
                frame as f64 / f64::from(FORMAT.fps) / elapsed,
                clip.file.size
            );
            assert!(clip.file.path.exists());
            assert!(!clip.file.path.with_extension("mp4.partial").exists());
            return (clip, reports);
        }
        if triggers.contains(&frame) {
            let report = recorder.trigger().unwrap();
            assert_eq!(report.frame, frame);
            reports.push(report);
        }
    }
    panic!("no clip after 1,000 frames");
}

/// Checks the clip with ffprobe (H.264, 320x240, `seconds` ± 0.5 s, moov before mdat) and returns
/// the burned-in counter of each of its frames.
fn check_clip(clip: &ClipReport, seconds: f64) -> Vec<u64> {
    let probe = ffprobe_json(
        &clip.file.path,
        "stream=codec_name,width,height:format=duration",
    );
    let stream = &probe["streams"][0];
    assert_eq!(stream["codec_name"], "h264");
    assert_eq!(
        (stream["width"].as_u64(), stream["height"].as_u64()),
        (Some(320), Some(240))
    );
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    eprintln!("clip: ffprobe duration {duration} s");
    assert!((duration - seconds).abs() <= 0.5, "duration {duration}");

    let boxes = top_level_boxes(&clip.file.path);
    let moov = boxes.iter().position(|b| b == "moov").expect("a moov box");
    let mdat = boxes.iter().position(|b| b == "mdat").expect("an mdat box");
    assert!(moov < mdat, "faststart: boxes in order {boxes:?}");

    let counters = counters(&clip.file.path);
    assert!(
        counters.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive frames, got {counters:?}"
    );
    assert_eq!(counters[0], clip.first_frame);
    assert!((counters.len() as f64 / f64::from(FORMAT.fps) - seconds).abs() <= 0.5);
    counters
}

/// Seconds of clip before `frame`, from the decoded counters.
fn seconds_before(counters: &[u64], frame: u64) -> f64 {
    let position = counters
        .iter()
        .position(|&c| c == frame)
        .unwrap_or_else(|| panic!("frame {frame} is not in the clip"));
    position as f64 / f64::from(FORMAT.fps)
}

#[test]
fn one_trigger_gives_a_fifteen_second_faststart_clip_with_five_seconds_before_it_and_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, triggers) = record(dir.path(), &[80]);
    let trigger = &triggers[0];
    assert!(trigger.new_clip);
    assert_eq!(clip.trigger_frames, vec![80]);

    let counters = check_clip(&clip, 15.0);
    let before = seconds_before(&counters, trigger.frame);
    eprintln!(
        "clip: {} frames, trigger frame {} at {before:.1} s",
        counters.len(),
        trigger.frame
    );
    assert!(before >= 5.0, "only {before} s before the trigger");

    // The snapshot decodes as a JPEG of the right size, and shows the trigger frame.
    let probe = ffprobe_json(&trigger.snapshot, "stream=codec_name,width,height");
    let stream = &probe["streams"][0];
    assert_eq!(stream["codec_name"], "mjpeg");
    assert_eq!(
        (stream["width"].as_u64(), stream["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(counters_of_snapshot(&trigger.snapshot), trigger.frame);
}

#[test]
fn a_second_trigger_during_the_clip_extends_it_past_the_second_trigger() {
    let dir = tempfile::tempdir().unwrap();
    // Pre-roll from frame 30; the second trigger at 15 s moves the end from 18 s to 25 s.
    let (clip, triggers) = record(dir.path(), &[80, 150]);
    assert!(triggers[0].new_clip);
    assert!(!triggers[1].new_clip);
    assert_eq!(clip.trigger_frames, vec![80, 150]);
    let counters = check_clip(&clip, 22.0);
    assert!(seconds_before(&counters, 80) >= 5.0);
    assert!(seconds_before(&counters, 150) <= 12.0);
}

fn counters_of_snapshot(path: &Path) -> u64 {
    let all = counters(path);
    assert_eq!(all.len(), 1);
    all[0]
}

#[test]
fn an_encoder_missing_from_ffmpeg_is_a_configuration_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let source = SyntheticSource::new(FORMAT, Pacing::Unpaced, Utc::now()).unwrap();
    let mut config = RecorderConfig::new(dir.path().to_path_buf());
    config.encoder = EncoderConfig {
        name: "h264_nonexistent".into(),
        ..EncoderConfig::default()
    };
    match Recorder::new(source, &config) {
        Err(RecorderError::Config(message)) => {
            assert!(message.contains("h264_nonexistent"), "{message}")
        }
        Err(other) => panic!("expected a configuration error, got {other}"),
        Ok(_) => panic!("expected a configuration error"),
    }
}

#[test]
fn stopping_mid_clip_flushes_the_encoder_and_closes_a_shorter_playable_clip() {
    let dir = tempfile::tempdir().unwrap();
    let source = SyntheticSource::new(FORMAT, Pacing::Unpaced, Utc::now()).unwrap();
    let mut recorder =
        Recorder::new(source, &RecorderConfig::new(dir.path().join("clips"))).unwrap();
    for frame in 0..=120u64 {
        assert!(recorder.step().unwrap().is_none());
        if frame == 80 {
            recorder.trigger().unwrap();
        }
    }
    let clip = recorder.finish().unwrap().expect("the open clip is closed");
    // Pre-roll from frame 30, and every frame captured up to 120.
    assert_eq!((clip.first_frame, clip.end_frame), (30, 121));
    let counters = check_clip(&clip, clip.duration_s());
    assert_eq!(counters.last(), Some(&120));
}
