//! Live-view delay (issue 4; `make bench`): a real `vigie-cloud` on the embedded defaults, the
//! recorder's synthetic camera (640x480 at 30 fps, paced in real time) pushed over RTSP by the
//! edge's `LivePublisher`, and `ffmpeg` reading `GET /api/cameras/{id}/stream`.
//!
//! Delay = the wall clock when the reader has a decoded frame minus the time burned into that frame
//! (frame counter / fps after the source's start instant, read back from the counter strip). Two
//! readers: `-re` plays at real time from where FFmpeg's HLS demuxer joins a live playlist (three
//! segments from its end, as hls.js does by default): what a viewer sees; without `-re`, it reads as
//! fast as segments appear: when a frame becomes available at all. Also: the time from the
//! publisher's start to the first playable playlist. Target: a viewer's delay under 4 s.

#[path = "../tests/live_rig/mod.rs"]
mod live_rig;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use live_rig::*;
use vigie_edge::recorder::FrameFormat;

const FORMAT: FrameFormat = FrameFormat {
    width: 640,
    height: 480,
    fps: 30,
};
/// Frames read by the fast reader (10 s).
const FRAMES: usize = 300;
/// Viewers joining one after the other (each at another moment of a segment), and frames each.
const JOINS: usize = 8;
const JOIN_FRAMES: usize = 45;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(what: &str, camera: &Camera, frames: &[ReadFrame], segment_s: f64) {
    let mut delays: Vec<f64> = frames.iter().map(|f| delay_s(camera, f)).collect();
    delays.sort_by(f64::total_cmp);
    let (median, p95) = (percentile(&delays, 0.5), percentile(&delays, 0.95));
    println!(
        "live: {what}: delay median {median:.2} s, p95 {p95:.2} s, max {:.2} s ({:.1} / {:.1} segments of {segment_s:.1} s) over {} frames",
        delays[delays.len() - 1],
        median / segment_s,
        p95 / segment_s,
        delays.len()
    );
}

fn main() {
    let segment_ms: u64 = std::env::var("VIGIE_BENCH_LIVE_SEGMENT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let segment_s = segment_ms as f64 / 1000.0;
    let rig = Rig::start(&[("VIGIE_LIVE_SEGMENT_MS", &segment_ms.to_string())]);
    let camera = Camera::start(
        rig.rtsp_url(rig.rtsp_port),
        &rig.device,
        &rig.live_token,
        FORMAT,
    );
    let first = rig.wait_playlist(Duration::from_secs(30));
    println!(
        "live: first playable playlist {:.2} s after the publisher started ({}x{} at {} fps, segments of {segment_s:.1} s)",
        first.as_secs_f64(),
        FORMAT.width,
        FORMAT.height,
        FORMAT.fps
    );
    // Let the playlist fill (steady state: the reader joins three segments from the end).
    support::wait_for("a full playlist", Duration::from_secs(30), || {
        rig.get(&rig.stream_url(), Some(&rig.admin))
            .1
            .matches(".ts")
            .count()
            >= 4
    });
    let url = rig.stream_url();
    let (_, playlist) = rig.get(&url, Some(&rig.admin));
    let head: Vec<&str> = playlist
        .lines()
        .filter(|l| l.starts_with("#EXT-X-"))
        .collect();
    println!("live: playlist tags {head:?}");
    // Where in a segment a viewer joins sets its delay (3 to 4 segments): join at varied moments.
    let mut viewer = Vec::new();
    for join in 0..JOINS {
        viewer.extend(read_hls(&url, Some(&rig.admin), FORMAT, JOIN_FRAMES, true));
        std::thread::sleep(Duration::from_millis(137 * join as u64 % 1000));
    }
    report(
        &format!("viewer (ffmpeg -re, real-time playback, {JOINS} joins)"),
        &camera,
        &viewer,
        segment_s,
    );
    let fast = read_hls(&url, Some(&rig.admin), FORMAT, FRAMES, false);
    // The first three segments are read at once on joining; what follows is the availability.
    let skip = (3.0 * segment_s * f64::from(FORMAT.fps)) as usize;
    report(
        "availability (ffmpeg reading as fast as segments appear, after the join)",
        &camera,
        &fast[skip.min(fast.len() - 1)..],
        segment_s,
    );
    let mut encoder = camera.encoder_delays.lock().unwrap().clone();
    encoder.sort_by(f64::total_cmp);
    println!(
        "live: of which on the Pi: capture to encoded packet median {:.2} s, p95 {:.2} s (libx264 lookahead and frame threads)",
        percentile(&encoder, 0.5),
        percentile(&encoder, 0.95)
    );
    let status = camera.status();
    println!(
        "live: publisher sent {} packets, dropped {} (queue full, link down or waiting for a keyframe)",
        status.sent, status.dropped
    );
    camera.stop();
}
