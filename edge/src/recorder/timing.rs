//! Clip timing, pure: where a clip starts and ends, and how a new trigger extends it. Times are the
//! packets' ticks (frame timestamps), so tests need no clock.

/// Clip lengths in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipTiming {
    /// The whole clip, pre-roll included (default 15 s).
    pub length: i64,
    /// What the pre-roll aims to hold before a trigger (default 5 s).
    pub preroll: i64,
    /// The longest a clip may grow by new triggers (default 60 s).
    pub max_length: i64,
}

impl ClipTiming {
    /// Ticks recorded after a trigger: the length less the pre-roll.
    pub fn post_trigger(&self) -> i64 {
        (self.length - self.preroll).max(1)
    }
}

/// A clip being recorded: `[start, end)` in ticks, and the triggers it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipWindow {
    pub start: i64,
    pub end: i64,
    pub max_end: i64,
    pub triggers: Vec<i64>,
}

impl ClipWindow {
    /// A clip opened at `trigger` whose pre-roll starts at `start` (the oldest keyframe held; the
    /// trigger itself when the pre-roll is empty): `length` in all, and at least one frame after the
    /// trigger even when the pre-roll is longer than planned.
    pub fn open(timing: &ClipTiming, start: i64, trigger: i64) -> Self {
        let start = start.min(trigger);
        let max_end = start + timing.max_length.max(timing.length);
        let end = (start + timing.length).max(trigger + 1).min(max_end);
        Self {
            start,
            end,
            max_end,
            triggers: vec![trigger],
        }
    }

    /// A new trigger during the clip: the clip runs `post_trigger` past it, up to `max_end`.
    /// Returns whether the end moved.
    pub fn retrigger(&mut self, timing: &ClipTiming, at: i64) -> bool {
        self.triggers.push(at);
        let end = (at + timing.post_trigger()).max(self.end).min(self.max_end);
        let moved = end != self.end;
        self.end = end;
        moved
    }

    /// Whether a packet at `pts` belongs to the clip; the first one that does not ends it.
    pub fn takes(&self, pts: i64) -> bool {
        pts < self.end
    }

    pub fn duration(&self) -> i64 {
        self.end - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 10 fps: one tick is 100 ms.
    const TIMING: ClipTiming = ClipTiming {
        length: 150,
        preroll: 50,
        max_length: 600,
    };

    #[test]
    fn a_clip_is_pre_roll_plus_what_follows_fifteen_seconds_in_all() {
        let clip = ClipWindow::open(&TIMING, 30, 80);
        assert_eq!((clip.start, clip.end), (30, 180));
        assert_eq!(clip.duration(), 150);
        assert!(clip.takes(179));
        assert!(!clip.takes(180));
    }

    #[test]
    fn a_trigger_with_no_pre_roll_yet_still_gives_a_full_length_clip() {
        let clip = ClipWindow::open(&TIMING, 20, 20);
        assert_eq!((clip.start, clip.end), (20, 170));
    }

    #[test]
    fn a_new_trigger_during_a_clip_extends_it_by_the_post_trigger_time() {
        let mut clip = ClipWindow::open(&TIMING, 30, 80);
        assert!(clip.retrigger(&TIMING, 150));
        assert_eq!(clip.end, 250);
        assert_eq!(clip.triggers, vec![80, 150]);
    }

    #[test]
    fn a_retrigger_whose_post_trigger_time_ends_sooner_never_shortens_the_clip() {
        let mut clip = ClipWindow::open(&TIMING, 30, 80);
        assert!(!clip.retrigger(&TIMING, 60));
        assert_eq!(clip.end, 180);
    }

    #[test]
    fn extensions_stop_at_the_maximum_length() {
        let mut clip = ClipWindow::open(&TIMING, 30, 80);
        let mut at = 80;
        while clip.takes(at) {
            clip.retrigger(&TIMING, at);
            at += 50;
        }
        assert_eq!(clip.end, 630);
        assert_eq!(clip.duration(), 600);
    }
}
