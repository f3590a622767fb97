//! Camera sources behind one trait, and the synthetic one: a moving pattern with the frame counter
//! and its time burned in (digits for people, a binary strip for tests), for the demo and the tests.

use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{burn, RecorderError};

/// Width, height and frame rate of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameFormat {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

/// One raw frame, planar YUV 4:2:0 (I420), tightly packed.
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// The source's frame number, from 0; also the frame's pts in a 1/fps time base.
    pub index: u64,
    /// When the frame was captured, by the device's clock.
    pub captured_at: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

/// A camera: frames of one format, one after the other. Blocking; the recorder runs it on its own thread.
pub trait CameraSource: Send {
    fn format(&self) -> FrameFormat;
    fn next_frame(&mut self) -> Result<RawFrame, RecorderError>;
}

impl CameraSource for Box<dyn CameraSource> {
    fn format(&self) -> FrameFormat {
        (**self).format()
    }
    fn next_frame(&mut self) -> Result<RawFrame, RecorderError> {
        (**self).next_frame()
    }
}

/// How the synthetic source paces its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// One frame every 1/fps on the wall clock, like a camera.
    RealTime,
    /// As fast as asked (tests): the burned-in time still advances by 1/fps per frame.
    Unpaced,
}

/// A moving diagonal pattern and a sweeping bar, with the frame counter, the time and a binary counter
/// strip burned in.
pub struct SyntheticSource {
    format: FrameFormat,
    pacing: Pacing,
    epoch: DateTime<Utc>,
    started: Instant,
    next: u64,
}

impl SyntheticSource {
    /// `epoch` is the burned-in time of frame 0.
    pub fn new(
        format: FrameFormat,
        pacing: Pacing,
        epoch: DateTime<Utc>,
    ) -> Result<Self, RecorderError> {
        if format.width < 64
            || format.height < 48
            || format.width % 2 == 1
            || format.height % 2 == 1
            || format.fps == 0
        {
            return Err(RecorderError::Config(format!(
                "synthetic source: {}x{}@{} is not usable; give an even size of at least 64x48 and fps > 0",
                format.width, format.height, format.fps
            )));
        }
        Ok(Self {
            format,
            pacing,
            epoch,
            started: Instant::now(),
            next: 0,
        })
    }

    fn draw(&self, index: u64) -> RawFrame {
        let (w, h) = (self.format.width as usize, self.format.height as usize);
        let shift = (index * 4) as usize;
        let mut y = vec![0u8; w * h];
        for (row, line) in y.chunks_exact_mut(w).enumerate() {
            for (col, px) in line.iter_mut().enumerate() {
                *px = 40 + ((col + row + shift) % 128) as u8;
            }
        }
        // A bright vertical bar sweeping across in two seconds.
        let bar = (index as usize * w / (2 * self.format.fps as usize).max(1)) % w;
        for line in y.chunks_exact_mut(w) {
            for px in line.iter_mut().skip(bar).take(w / 20) {
                *px = 220;
            }
        }
        let scale = (w / 100).max(2);
        let at = self.epoch
            + chrono::Duration::microseconds(
                (index * 1_000_000 / u64::from(self.format.fps)) as i64,
            );
        burn::text(&mut y, w, scale, scale, scale, &format!("{index:08}"));
        burn::text(
            &mut y,
            w,
            scale,
            9 * scale,
            scale,
            &at.format("%H:%M:%S.%3f").to_string(),
        );
        burn::counter_strip(&mut y, w, h, index);
        let chroma = (w / 2) * (h / 2);
        let hue = (index % 256) as u8;
        RawFrame {
            index,
            captured_at: at,
            width: self.format.width,
            height: self.format.height,
            y,
            u: vec![hue / 4 + 96; chroma],
            v: vec![160 - hue / 4; chroma],
        }
    }
}

impl CameraSource for SyntheticSource {
    fn format(&self) -> FrameFormat {
        self.format
    }

    fn next_frame(&mut self) -> Result<RawFrame, RecorderError> {
        let index = self.next;
        if self.pacing == Pacing::RealTime {
            let due = self.started
                + Duration::from_micros(index * 1_000_000 / u64::from(self.format.fps));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
        }
        self.next += 1;
        Ok(self.draw(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_frames_carry_their_counter_and_move() {
        let format = FrameFormat {
            width: 320,
            height: 240,
            fps: 10,
        };
        let mut source = SyntheticSource::new(format, Pacing::Unpaced, Utc::now()).unwrap();
        let first = source.next_frame().unwrap();
        let second = source.next_frame().unwrap();
        assert_eq!((first.index, second.index), (0, 1));
        assert_eq!(first.y.len(), 320 * 240);
        assert_eq!(first.u.len(), 160 * 120);
        assert_eq!(burn::read_counter(&second.y, 320, 240), 1);
        assert_ne!(first.y, second.y);
    }

    #[test]
    fn an_odd_or_tiny_size_is_refused() {
        let format = FrameFormat {
            width: 321,
            height: 240,
            fps: 10,
        };
        assert!(SyntheticSource::new(format, Pacing::Unpaced, Utc::now()).is_err());
    }
}
