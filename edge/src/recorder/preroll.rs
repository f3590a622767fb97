//! The pre-roll: the last few seconds of encoded video kept in RAM as whole GOPs, so that a clip can
//! start before its trigger. Pure (no IO, no ffmpeg): packets in, packets out.
//!
//! Bound: at most the GOPs needed to cover `keep` ticks before the newest frame, and never more than
//! `max_bytes` unless a single GOP alone is larger (it is then kept alone). When full, the oldest
//! whole GOP is dropped (the pre-roll gets shorter; counted in [`PreRoll::dropped_gops`]).

use std::collections::VecDeque;

use super::EncodedPacket;

/// One GOP: a keyframe and the packets that depend on it.
#[derive(Debug)]
struct Gop {
    start: i64,
    packets: Vec<EncodedPacket>,
    bytes: usize,
}

/// Whole GOPs covering at least `keep` ticks (once that much has been seen), bounded by `max_bytes`.
#[derive(Debug)]
pub struct PreRoll {
    gops: VecDeque<Gop>,
    keep: i64,
    max_bytes: usize,
    bytes: usize,
    newest_end: i64,
    dropped_gops: u64,
}

impl PreRoll {
    /// `keep` is in the packets' ticks (e.g. 5 s at 10 fps with a 1/10 time base = 50).
    pub fn new(keep: i64, max_bytes: usize) -> Self {
        Self {
            gops: VecDeque::new(),
            keep,
            max_bytes,
            bytes: 0,
            newest_end: 0,
            dropped_gops: 0,
        }
    }

    /// Adds a packet (in decode order). A packet before the first keyframe cannot be decoded: dropped.
    pub fn push(&mut self, packet: EncodedPacket) {
        let size = packet.data.len();
        self.newest_end = self.newest_end.max(packet.pts + packet.duration.max(1));
        if packet.keyframe {
            self.gops.push_back(Gop {
                start: packet.pts,
                packets: vec![packet],
                bytes: size,
            });
        } else if let Some(gop) = self.gops.back_mut() {
            gop.packets.push(packet);
            gop.bytes += size;
        } else {
            return;
        }
        self.bytes += size;
        self.evict();
    }

    fn evict(&mut self) {
        // Drop the oldest GOP while the others still cover `keep`.
        while self.gops.len() > 1 && self.newest_end - self.gops[1].start >= self.keep {
            self.pop_front();
        }
        // Memory bound: drop the oldest GOP while over budget, keeping at least the newest one.
        while self.gops.len() > 1 && self.bytes > self.max_bytes {
            self.pop_front();
            self.dropped_gops += 1;
        }
    }

    fn pop_front(&mut self) {
        if let Some(gop) = self.gops.pop_front() {
            self.bytes -= gop.bytes;
        }
    }

    /// The pts of the oldest frame held (a keyframe), if any.
    pub fn start(&self) -> Option<i64> {
        self.gops.front().map(|gop| gop.start)
    }

    /// Ticks covered from the oldest keyframe to the end of the newest frame.
    pub fn span(&self) -> i64 {
        self.start().map_or(0, |start| self.newest_end - start)
    }

    /// Bytes of packet data held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whole GOPs held.
    pub fn gop_count(&self) -> usize {
        self.gops.len()
    }

    /// GOPs dropped because of `max_bytes` (not the normal ageing out).
    pub fn dropped_gops(&self) -> u64 {
        self.dropped_gops
    }

    /// Every packet held, oldest first, in decode order.
    pub fn packets(&self) -> impl Iterator<Item = &EncodedPacket> {
        self.gops.iter().flat_map(|gop| gop.packets.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pts: i64, gop: i64, size: usize) -> EncodedPacket {
        EncodedPacket::new(vec![0; size], pts, pts % gop == 0)
    }

    fn feed(preroll: &mut PreRoll, frames: std::ops::Range<i64>, gop: i64, size: usize) {
        for pts in frames {
            preroll.push(packet(pts, gop, size));
        }
    }

    #[test]
    fn packets_before_the_first_keyframe_are_dropped() {
        let mut preroll = PreRoll::new(50, usize::MAX);
        feed(&mut preroll, 3..10, 10, 1);
        assert_eq!(preroll.start(), None);
        preroll.push(packet(10, 10, 1));
        assert_eq!(preroll.start(), Some(10));
        assert_eq!(preroll.packets().count(), 1);
    }

    #[test]
    fn it_keeps_whole_gops_covering_at_least_the_pre_roll() {
        // 10 fps, GOP of 1 s, pre-roll of 5 s.
        let mut preroll = PreRoll::new(50, usize::MAX);
        for end in 1..400 {
            preroll.push(packet(end - 1, 10, 1));
            let span = preroll.span();
            if end >= 50 {
                assert!((50..60).contains(&span), "span {span} after {end} frames");
            } else {
                assert_eq!(span, end);
            }
            assert_eq!(preroll.start().unwrap() % 10, 0, "starts on a keyframe");
            assert!(preroll.packets().next().unwrap().keyframe);
        }
    }

    #[test]
    fn a_trigger_on_a_keyframe_sees_five_seconds_and_one_frame() {
        let mut preroll = PreRoll::new(50, usize::MAX);
        feed(&mut preroll, 0..81, 10, 1);
        assert_eq!(preroll.start(), Some(30));
        assert_eq!(preroll.span(), 51);
        assert_eq!(preroll.gop_count(), 6);
    }

    #[test]
    fn over_its_memory_bound_it_drops_the_oldest_whole_gop() {
        // 10 packets of 100 bytes per GOP: a 2,500-byte budget holds two whole GOPs and the current
        // half one, not the five seconds asked for.
        let mut preroll = PreRoll::new(50, 2_500);
        feed(&mut preroll, 0..95, 10, 100);
        assert!(preroll.bytes() <= 2_500);
        assert_eq!(preroll.start(), Some(70));
        assert_eq!(preroll.packets().count(), 25);
        assert!(preroll.dropped_gops() > 0);
    }

    #[test]
    fn a_single_gop_larger_than_the_budget_is_kept_alone() {
        let mut preroll = PreRoll::new(50, 10);
        feed(&mut preroll, 0..25, 10, 100);
        assert_eq!(preroll.gop_count(), 1);
        assert_eq!(preroll.start(), Some(20));
        assert_eq!(preroll.bytes(), 500);
    }
}
