//! RTP H.264 depacketizing (RFC 6184), pure: RTP packets in, whole access units out (Annex B, with
//! the SPS/PPS put in front of every keyframe that lacks them). Single NAL units, STAP-A and FU-A;
//! a sequence gap or a broken fragment drops everything up to the next keyframe, so a muxer is never
//! given a frame that refers to a lost one. Memory is bounded: a frame (or fragment) that grows past
//! [`MAX_UNIT_BYTES`] without ending is dropped the same way (a publisher that never sets the marker
//! bit cannot make the cloud hold its stream).

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;
const START_CODE: [u8; 4] = [0, 0, 0, 1];
/// Most bytes of NAL units held for one access unit being gathered (a 4K keyframe is ~1-2 MiB).
pub const MAX_UNIT_BYTES: usize = 8 << 20;

/// One frame: its NAL units in Annex B, its RTP timestamp (90 kHz, unwrapped to 64 bits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    pub timestamp: i64,
    pub data: Vec<u8>,
    pub keyframe: bool,
}

/// Why a packet was not usable as RTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("not an RTP version 2 packet")]
    NotRtp,
    #[error("RTP packet truncated")]
    Truncated,
}

/// The depacketizer's state for one stream.
#[derive(Debug, Default)]
pub struct Depacketizer {
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    expected_seq: Option<u16>,
    /// Timestamp unwrapping: the last 32-bit timestamp and the 64-bit value it stands for.
    last_ts: Option<(u32, i64)>,
    /// The access unit being gathered: its timestamp and NAL units.
    current: Option<(i64, Vec<Vec<u8>>)>,
    /// Bytes of the NAL units in `current`.
    current_bytes: usize,
    /// An FU-A NAL unit being reassembled.
    fragment: Option<Vec<u8>>,
    /// Waiting for a keyframe after a loss (and at the start).
    waiting_for_key: bool,
    /// Packets lost (sequence gaps) so far.
    pub lost: u64,
}

impl Depacketizer {
    /// A depacketizer with the SPS and PPS from the SDP's `sprop-parameter-sets`, if any.
    pub fn new(sps: Option<Vec<u8>>, pps: Option<Vec<u8>>) -> Self {
        Self {
            sps,
            pps,
            waiting_for_key: true,
            ..Self::default()
        }
    }

    /// The SPS and PPS known now (from the SDP or in band).
    pub fn parameter_sets(&self) -> (Option<&[u8]>, Option<&[u8]>) {
        (self.sps.as_deref(), self.pps.as_deref())
    }

    /// Takes one RTP packet; returns the access units it completed.
    pub fn push(&mut self, packet: &[u8]) -> Result<Vec<AccessUnit>, RtpError> {
        let rtp = parse_rtp(packet)?;
        let mut done = Vec::new();
        if let Some(expected) = self.expected_seq {
            if rtp.seq != expected {
                self.lost += u64::from(rtp.seq.wrapping_sub(expected));
                self.drop_unit();
            }
        }
        self.expected_seq = Some(rtp.seq.wrapping_add(1));
        let timestamp = self.unwrap_timestamp(rtp.timestamp);
        if self
            .current
            .as_ref()
            .is_some_and(|(ts, _)| *ts != timestamp)
        {
            done.extend(self.finish_unit());
        }
        if !self.depacketize(timestamp, rtp.payload) || self.held_bytes() > MAX_UNIT_BYTES {
            self.drop_unit();
        }
        if rtp.marker {
            done.extend(self.finish_unit());
        }
        Ok(done)
    }

    /// Bytes held for the frame being gathered (its NAL units and an open fragment).
    pub fn held_bytes(&self) -> usize {
        self.current_bytes + self.fragment.as_ref().map_or(0, Vec::len)
    }

    /// Drops the frame being gathered and waits for the next keyframe.
    fn drop_unit(&mut self) {
        self.current = None;
        self.current_bytes = 0;
        self.fragment = None;
        self.waiting_for_key = true;
    }

    fn unwrap_timestamp(&mut self, ts: u32) -> i64 {
        let value = match self.last_ts {
            None => i64::from(ts),
            Some((last, value)) => value + i64::from(ts.wrapping_sub(last) as i32),
        };
        self.last_ts = Some((ts, value));
        value
    }

    /// Adds the payload's NAL units to the current unit; false when the payload is broken.
    fn depacketize(&mut self, timestamp: i64, payload: &[u8]) -> bool {
        let Some(&header) = payload.first() else {
            return false;
        };
        match header & 0x1f {
            1..=23 => {
                self.fragment = None;
                self.add_nal(timestamp, payload.to_vec());
                true
            }
            STAP_A => {
                let mut rest = &payload[1..];
                while rest.len() >= 2 {
                    let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    if size == 0 || rest.len() < 2 + size {
                        return false;
                    }
                    self.add_nal(timestamp, rest[2..2 + size].to_vec());
                    rest = &rest[2 + size..];
                }
                rest.is_empty()
            }
            FU_A => {
                let Some(&fu) = payload.get(1) else {
                    return false;
                };
                let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
                let body = &payload[2..];
                if start {
                    let mut nal = vec![(header & 0xe0) | (fu & 0x1f)];
                    nal.extend_from_slice(body);
                    self.fragment = Some(nal);
                } else if let Some(nal) = &mut self.fragment {
                    nal.extend_from_slice(body);
                } else {
                    return false;
                }
                if end {
                    let nal = self.fragment.take().unwrap_or_default();
                    self.add_nal(timestamp, nal);
                }
                true
            }
            _ => false,
        }
    }

    fn add_nal(&mut self, timestamp: i64, nal: Vec<u8>) {
        match nal.first().map(|h| h & 0x1f) {
            Some(NAL_SPS) => self.sps = Some(nal.clone()),
            Some(NAL_PPS) => self.pps = Some(nal.clone()),
            _ => {}
        }
        self.current_bytes += nal.len();
        self.current
            .get_or_insert_with(|| (timestamp, Vec::new()))
            .1
            .push(nal);
    }

    /// Closes the current unit: dropped while waiting for a keyframe, SPS/PPS put in front of a
    /// keyframe that lacks them.
    fn finish_unit(&mut self) -> Option<AccessUnit> {
        if self.fragment.is_some() {
            // A fragment still open at the end of its frame: its end was lost.
            self.drop_unit();
            return None;
        }
        self.current_bytes = 0;
        let (timestamp, nals) = self.current.take()?;
        let types: Vec<u8> = nals
            .iter()
            .filter_map(|n| n.first())
            .map(|h| h & 0x1f)
            .collect();
        let keyframe = types.contains(&NAL_IDR);
        if keyframe {
            self.waiting_for_key = false;
        }
        if self.waiting_for_key || !types.iter().any(|t| (1..=5).contains(t)) {
            return None;
        }
        let mut data = Vec::new();
        if keyframe && !types.contains(&NAL_SPS) {
            for set in [&self.sps, &self.pps].into_iter().flatten() {
                data.extend_from_slice(&START_CODE);
                data.extend_from_slice(set);
            }
        }
        for nal in &nals {
            data.extend_from_slice(&START_CODE);
            data.extend_from_slice(nal);
        }
        Some(AccessUnit {
            timestamp,
            data,
            keyframe,
        })
    }
}

struct Rtp<'a> {
    marker: bool,
    seq: u16,
    timestamp: u32,
    payload: &'a [u8],
}

fn parse_rtp(packet: &[u8]) -> Result<Rtp<'_>, RtpError> {
    if packet.len() < 12 {
        return Err(RtpError::Truncated);
    }
    if packet[0] >> 6 != 2 {
        return Err(RtpError::NotRtp);
    }
    let padding = packet[0] & 0x20 != 0;
    let extension = packet[0] & 0x10 != 0;
    let csrc = usize::from(packet[0] & 0x0f);
    let mut start = 12 + 4 * csrc;
    if extension {
        let ext = packet
            .get(start + 2..start + 4)
            .ok_or(RtpError::Truncated)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    let mut end = packet.len();
    if padding {
        end = end
            .checked_sub(usize::from(packet[end - 1]))
            .ok_or(RtpError::Truncated)?;
    }
    if start > end {
        return Err(RtpError::Truncated);
    }
    Ok(Rtp {
        marker: packet[1] & 0x80 != 0,
        seq: u16::from_be_bytes([packet[2], packet[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        payload: &packet[start..end],
    })
}

/// Decodes `sprop-parameter-sets` (comma-separated base64 NAL units) into (SPS, PPS).
pub fn parse_sprop(value: &str) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    use base64::Engine;
    let (mut sps, mut pps) = (None, None);
    for part in value.split(',') {
        let Ok(nal) = base64::engine::general_purpose::STANDARD.decode(part.trim()) else {
            continue;
        };
        match nal.first().map(|h| h & 0x1f) {
            Some(NAL_SPS) => sps = Some(nal),
            Some(NAL_PPS) => pps = Some(nal),
            _ => {}
        }
    }
    (sps, pps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 96 | if marker { 0x80 } else { 0 }];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1]);
        p.extend_from_slice(payload);
        p
    }

    const SPS: &[u8] = &[0x67, 0x42, 0x00, 0x1f];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
    const IDR: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x10, 0x20];

    fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| [&START_CODE[..], n].concat())
            .collect()
    }

    fn fu_a(nal: &[u8], pieces: usize) -> Vec<Vec<u8>> {
        let body = &nal[1..];
        let chunk = body.len().div_ceil(pieces);
        let chunks: Vec<&[u8]> = body.chunks(chunk).collect();
        let last = chunks.len() - 1;
        chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut fu = (nal[0] & 0x1f) | if i == 0 { 0x80 } else { 0 };
                if i == last {
                    fu |= 0x40;
                }
                [&[(nal[0] & 0xe0) | FU_A, fu][..], c].concat()
            })
            .collect()
    }

    #[test]
    fn a_stap_a_with_sps_pps_and_a_single_idr_make_one_keyframe() {
        let mut d = Depacketizer::new(None, None);
        let mut stap = vec![STAP_A];
        for nal in [SPS, PPS] {
            stap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            stap.extend_from_slice(nal);
        }
        assert!(d.push(&rtp(1, 9000, false, &stap)).unwrap().is_empty());
        let units = d.push(&rtp(2, 9000, true, IDR)).unwrap();
        assert_eq!(
            units,
            vec![AccessUnit {
                timestamp: 9000,
                data: annex_b(&[SPS, PPS, IDR]),
                keyframe: true
            }]
        );
    }

    #[test]
    fn fu_a_fragments_are_reassembled_and_the_sdp_parameter_sets_put_before_the_keyframe() {
        let mut d = Depacketizer::new(Some(SPS.to_vec()), Some(PPS.to_vec()));
        let mut units = Vec::new();
        let pieces = fu_a(IDR, 3);
        for (i, piece) in pieces.iter().enumerate() {
            let last = i == pieces.len() - 1;
            units.extend(d.push(&rtp(10 + i as u16, 0, last, piece)).unwrap());
        }
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].data, annex_b(&[SPS, PPS, IDR]));
        let p = [0x41, 0x9a, 0x01];
        let next = d.push(&rtp(13, 3000, true, &p)).unwrap();
        assert_eq!(next[0].data, annex_b(&[&p]));
        assert!(!next[0].keyframe);
    }

    #[test]
    fn a_sequence_gap_drops_frames_until_the_next_keyframe() {
        let mut d = Depacketizer::new(Some(SPS.to_vec()), Some(PPS.to_vec()));
        assert_eq!(d.push(&rtp(1, 0, true, IDR)).unwrap().len(), 1);
        let p = [0x41, 0x9a, 0x01];
        assert_eq!(d.push(&rtp(2, 3000, true, &p)).unwrap().len(), 1);
        // seq 3 lost.
        assert!(d.push(&rtp(4, 9000, true, &p)).unwrap().is_empty());
        assert!(d.push(&rtp(5, 12000, true, &p)).unwrap().is_empty());
        assert_eq!(d.lost, 1);
        let key = d.push(&rtp(6, 15000, true, IDR)).unwrap();
        assert!(key[0].keyframe);
        assert_eq!(d.push(&rtp(7, 18000, true, &p)).unwrap().len(), 1);
    }

    #[test]
    fn a_lost_middle_fragment_drops_the_frame() {
        let mut d = Depacketizer::new(Some(SPS.to_vec()), Some(PPS.to_vec()));
        let pieces = fu_a(IDR, 3);
        assert!(d.push(&rtp(1, 0, false, &pieces[0])).unwrap().is_empty());
        assert!(d.push(&rtp(3, 0, true, &pieces[2])).unwrap().is_empty());
        assert!(d.push(&rtp(4, 3000, true, &[0x41, 1])).unwrap().is_empty());
    }

    #[test]
    fn frames_before_the_first_keyframe_are_dropped_and_timestamps_unwrap() {
        let mut d = Depacketizer::new(Some(SPS.to_vec()), Some(PPS.to_vec()));
        assert!(d
            .push(&rtp(1, u32::MAX - 10, true, &[0x41, 1]))
            .unwrap()
            .is_empty());
        let key = d.push(&rtp(2, 20, true, IDR)).unwrap();
        assert_eq!(key[0].timestamp, i64::from(u32::MAX) + 21);
    }

    #[test]
    fn a_frame_that_never_ends_is_dropped_at_the_cap_and_the_next_keyframe_comes_through() {
        let mut d = Depacketizer::new(Some(SPS.to_vec()), Some(PPS.to_vec()));
        let slice = [&[0x65][..], &[0xab; 1400][..]].concat();
        let mut seq = 0u16;
        // One timestamp, no marker: NAL units pile up until the cap drops them.
        while seq < 8000 {
            seq += 1;
            assert!(d.push(&rtp(seq, 9000, false, &slice)).unwrap().is_empty());
            assert!(d.held_bytes() <= MAX_UNIT_BYTES, "{}", d.held_bytes());
        }
        // A fragment that never ends, likewise.
        let start = [&[(0x65 & 0xe0) | FU_A, 0x80 | 5][..], &[0xcd; 1400][..]].concat();
        let middle = [&[(0x65 & 0xe0) | FU_A, 5][..], &[0xcd; 1400][..]].concat();
        seq += 1;
        d.push(&rtp(seq, 12000, false, &start)).unwrap();
        for _ in 0..8000 {
            seq += 1;
            d.push(&rtp(seq, 12000, false, &middle)).unwrap();
            assert!(d.held_bytes() <= MAX_UNIT_BYTES, "{}", d.held_bytes());
        }
        seq += 1;
        let units = d.push(&rtp(seq, 15000, true, IDR)).unwrap();
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].data, annex_b(&[SPS, PPS, IDR]));
    }

    #[test]
    fn sprop_parameter_sets_decode_to_sps_and_pps() {
        let (sps, pps) = parse_sprop("Z0IAHw==,aM48gA==");
        assert_eq!(sps.as_deref(), Some(SPS));
        assert_eq!(pps.as_deref(), Some(PPS));
    }
}
