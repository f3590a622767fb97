//! A camera command writing H.264 (Annex B) to its standard output: `rpicam-vid` for the Pi camera
//! modules on current Raspberry Pi OS (libcamera). Its H.264 (the Pi's hardware encoder on a Pi 4,
//! software on a Pi 5) is taken as it is, never re-encoded.
//!
//! The command is run as `COMMAND -t 0 -n --codec h264 --inline --intra N --width W --height H
//! --framerate F --flush -o -`: no time limit, no preview, SPS/PPS repeated before each keyframe
//! (so a clip or a live viewer can start at any keyframe), a keyframe every N frames. It is killed
//! when the source is dropped.

use std::io::Read;
use std::process::{Child, ChildStdout, Command, Stdio};

use super::passthrough::{H264Source, H264Unit, UnitStream};
use super::{FrameFormat, RecorderError};

/// The H.264 of a camera command.
pub struct PipeH264Source {
    child: Child,
    stdout: ChildStdout,
    command: String,
    format: FrameFormat,
    units: UnitStream,
    buf: Vec<u8>,
}

/// The arguments given to the camera command.
pub fn rpicam_args(format: FrameFormat, gop_s: u32) -> Vec<String> {
    let intra = (format.fps * gop_s.max(1)).to_string();
    [
        "-t",
        "0",
        "-n",
        "--codec",
        "h264",
        "--inline",
        "--intra",
        &intra,
        "--width",
        &format.width.to_string(),
        "--height",
        &format.height.to_string(),
        "--framerate",
        &format.fps.to_string(),
        "--flush",
        "-o",
        "-",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

impl PipeH264Source {
    /// Starts `command` (a program name or path) for `format`, a keyframe every `gop_s` seconds.
    pub fn spawn(command: &str, format: FrameFormat, gop_s: u32) -> Result<Self, RecorderError> {
        let mut child = Command::new(command)
            .args(rpicam_args(format, gop_s))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                RecorderError::Config(format!(
                    "cannot run the camera command {command:?} (video.rpicam_command): {e}; on \
                     Raspberry Pi OS install it with `apt install rpicam-apps`"
                ))
            })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        Ok(PipeH264Source {
            child,
            stdout,
            command: command.to_owned(),
            format,
            units: UnitStream::new(),
            buf: vec![0; 64 * 1024],
        })
    }
}

impl H264Source for PipeH264Source {
    fn format(&self) -> FrameFormat {
        self.format
    }

    fn next_unit(&mut self) -> Result<H264Unit, RecorderError> {
        loop {
            if let Some(unit) = self.units.pop() {
                return Ok(unit);
            }
            let n = self.stdout.read(&mut self.buf).map_err(|e| {
                RecorderError::Config(format!("reading the camera command's output: {e}"))
            })?;
            if n == 0 {
                let status = self.child.wait().ok();
                return Err(RecorderError::Config(format!(
                    "the camera command {:?} ended ({}); is the camera connected?",
                    self.command,
                    status.map_or("no status".into(), |s| s.to_string())
                )));
            }
            self.units.push(&self.buf[..n]);
        }
    }

    fn parameter_sets(&self) -> Option<Vec<u8>> {
        self.units.parameter_sets()
    }
}

impl Drop for PipeH264Source {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
