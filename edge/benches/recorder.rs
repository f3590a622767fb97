//! Recorder benchmark (prints figures; asserts nothing about speed). Run with `make bench`.
//!
//! All in one run, release build, the synthetic source:
//! 1. encode speed at 640x480 and 1280x720 (30 fps): the whole recorder (frame drawn, encoded with
//!    libx264 `veryfast`, pre-roll kept) as frames per second and as a multiple of real time, and
//!    as a ratio to the baseline measured in the same run: libx264 alone on frames drawn
//!    beforehand (the recorder should cost a small multiple of the encoder, not add to it);
//! 2. CPU and RSS of the recorder running as on a Pi (real time, 640x480 at 15 fps, one trigger
//!    after 6 s, so a 15 s clip is written and closed): CPU seconds per second of video (of one
//!    core) and resident memory (current and peak, from /proc), measured first in the process;
//! 3. trigger → clip file ready: the clip ends `clip_s - preroll_s` (10 s) after the trigger by
//!    design; what the recorder adds is closing the file (remux trailer with faststart, fsync,
//!    rename, directory fsync), measured over several clips.
//!
//! `VIGIE_BENCH_SECS` (20) sets the real-time run's duration.

use std::time::{Duration, Instant};

use chrono::Utc;
use vigie_edge::recorder::{
    CameraSource, EncoderConfig, FrameFormat, H264Encoder, Pacing, Recorder, RecorderConfig,
    SyntheticSource,
};

fn main() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a temporary directory");
    println!("recorder benchmark (release; synthetic source; libx264 veryfast)");
    // First, while the process is fresh, so its memory is the recorder's.
    real_time(dir.path());
    for (width, height) in [(640, 480), (1280, 720)] {
        let format = FrameFormat {
            width,
            height,
            fps: 30,
        };
        encode_speed(dir.path(), format);
    }
    close_latency(dir.path());
}

fn encode_speed(dir: &std::path::Path, format: FrameFormat) {
    let frames = 300u64;
    // Baseline: the encoder alone, frames drawn beforehand.
    let mut source = SyntheticSource::new(format, Pacing::Unpaced, Utc::now()).unwrap();
    let drawn: Vec<_> = (0..frames).map(|_| source.next_frame().unwrap()).collect();
    let mut encoder = H264Encoder::open(&EncoderConfig::default(), format).unwrap();
    let started = Instant::now();
    for frame in &drawn {
        encoder.encode(frame).unwrap();
    }
    encoder.flush().unwrap();
    let baseline = started.elapsed().as_secs_f64();
    drop(drawn);

    let source = SyntheticSource::new(format, Pacing::Unpaced, Utc::now()).unwrap();
    let mut recorder = Recorder::new(source, &RecorderConfig::new(dir.join("speed"))).unwrap();
    let started = Instant::now();
    for _ in 0..frames {
        recorder.step().unwrap();
    }
    let whole = started.elapsed().as_secs_f64();
    let fps = frames as f64 / whole;
    println!(
        "  encode {}x{}: recorder {:.0} fps = {:.1}x real time at {} fps; libx264 alone {:.0} fps; recorder / libx264 alone = {:.2}",
        format.width,
        format.height,
        fps,
        fps / f64::from(format.fps),
        format.fps,
        frames as f64 / baseline,
        whole / baseline
    );
}

/// CPU seconds (user + system) this process has used, from /proc (USER_HZ = 100 on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let utime: f64 = fields[11].parse().unwrap();
    let stime: f64 = fields[12].parse().unwrap();
    (utime + stime) / 100.0
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn real_time(dir: &std::path::Path) {
    let secs: u64 = std::env::var("VIGIE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let format = FrameFormat {
        width: 640,
        height: 480,
        fps: 15,
    };
    let rss_before = rss_kib("VmRSS:");
    let source = SyntheticSource::new(format, Pacing::RealTime, Utc::now()).unwrap();
    let mut recorder = Recorder::new(source, &RecorderConfig::new(dir.join("live"))).unwrap();
    let cpu_start = cpu_seconds();
    let started = Instant::now();
    let mut clips = 0;
    let mut triggered = false;
    while started.elapsed() < Duration::from_secs(secs) {
        if recorder.step().unwrap().is_some() {
            clips += 1;
        }
        if !triggered && started.elapsed() >= Duration::from_secs(6) {
            recorder.trigger().unwrap();
            triggered = true;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    println!(
        "  real time 640x480 at 15 fps for {wall:.0} s (a trigger at 6 s, {clips} clip closed): CPU {:.3} s per s of video = {:.1}% of one core; RSS {} MiB (before the recorder {} MiB, peak {} MiB)",
        cpu / wall,
        100.0 * cpu / wall,
        rss_kib("VmRSS:") / 1024,
        rss_before / 1024,
        rss_kib("VmHWM:") / 1024
    );
}

fn close_latency(dir: &std::path::Path) {
    let format = FrameFormat {
        width: 640,
        height: 480,
        fps: 15,
    };
    let source = SyntheticSource::new(format, Pacing::Unpaced, Utc::now()).unwrap();
    let mut recorder = Recorder::new(source, &RecorderConfig::new(dir.join("close"))).unwrap();
    let mut closes = Vec::new();
    let mut steps = Vec::new();
    let mut frame = 0u64;
    while closes.len() < 5 {
        let started = Instant::now();
        let clip = recorder.step().unwrap();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        match clip {
            Some(clip) => closes.push((ms, clip.file.size)),
            None => steps.push(ms),
        }
        frame += 1;
        if frame % (20 * u64::from(format.fps)) == 6 * u64::from(format.fps) {
            recorder.trigger().unwrap();
        }
    }
    let mut ms: Vec<f64> = closes.iter().map(|c| c.0).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    steps.sort_by(|a, b| a.total_cmp(b));
    let step = steps[steps.len() / 2];
    println!(
        "  trigger -> clip file ready: 10 s of video after the trigger (by design) + closing the file: median {:.1} ms, max {:.1} ms over {} clips of ~{} KiB = {:.1}x an ordinary frame step ({:.2} ms; the frame budget at 15 fps is {:.1} ms)",
        ms[ms.len() / 2],
        ms[ms.len() - 1],
        ms.len(),
        closes[0].1 / 1024,
        ms[ms.len() / 2] / step,
        step,
        1000.0 / f64::from(format.fps)
    );
}
