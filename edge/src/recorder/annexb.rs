//! H.264 Annex B byte streams (what `rpicam-vid` and V4L2 H.264 cameras give), pure: NAL units
//! found by their start codes, grouped into access units (one picture each), keyframes and the
//! SPS/PPS a muxer needs. No FFmpeg, no IO.

/// NAL unit types used here (ITU-T H.264 table 7-1).
const NAL_SLICE: u8 = 1;
const NAL_IDR: u8 = 5;
const NAL_SEI: u8 = 6;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;

/// One picture's NAL units, with their start codes (Annex B).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    pub data: Vec<u8>,
    /// It holds an IDR slice: decoding can start here.
    pub keyframe: bool,
}

/// Splits a byte stream into access units as bytes arrive.
#[derive(Debug, Default)]
pub struct AccessUnitSplitter {
    buf: Vec<u8>,
    /// NAL units of the access unit being gathered: (start offset in `buf`, type, first slice).
    current: Vec<u8>,
    has_slice: bool,
    keyframe: bool,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

impl AccessUnitSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the access units they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<AccessUnit> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        // A NAL unit is complete when the next start code is seen.
        let starts = start_codes(&self.buf);
        if starts.len() < 2 {
            return out;
        }
        let mut consumed = 0;
        for pair in starts.windows(2) {
            let (begin, end) = (pair[0], pair[1]);
            let nal = self.buf[begin..end].to_vec();
            self.take_nal(nal, &mut out);
            consumed = end;
        }
        self.buf.drain(..consumed);
        out
    }

    /// Ends the stream: the access units still held.
    pub fn finish(&mut self) -> Vec<AccessUnit> {
        let rest = std::mem::take(&mut self.buf);
        let mut out = Vec::new();
        if start_codes(&rest).first() == Some(&0) {
            self.take_nal(rest, &mut out);
        }
        out.extend(self.flush());
        out
    }

    /// The latest SPS and PPS seen (with start codes): the muxer's extradata.
    pub fn parameter_sets(&self) -> Option<Vec<u8>> {
        let (sps, pps) = (self.sps.as_ref()?, self.pps.as_ref()?);
        let mut out = sps.clone();
        out.extend_from_slice(pps);
        Some(out)
    }

    fn take_nal(&mut self, nal: Vec<u8>, out: &mut Vec<AccessUnit>) {
        let Some(header) = nal_header(&nal) else {
            return;
        };
        let kind = nal[header] & 0x1f;
        let begins_picture = match kind {
            NAL_AUD | NAL_SPS | NAL_PPS | NAL_SEI => self.has_slice,
            NAL_SLICE | NAL_IDR => {
                // first_mb_in_slice == 0 (ue(v) "1") starts a new picture.
                let first_mb_zero = nal.get(header + 1).is_some_and(|b| b & 0x80 != 0);
                self.has_slice && first_mb_zero
            }
            _ => false,
        };
        if begins_picture {
            out.extend(self.flush());
        }
        match kind {
            NAL_SPS => self.sps = Some(trim_trailing_zeros(&nal)),
            NAL_PPS => self.pps = Some(trim_trailing_zeros(&nal)),
            NAL_IDR => self.keyframe = true,
            _ => {}
        }
        if matches!(kind, NAL_SLICE | NAL_IDR) {
            self.has_slice = true;
        }
        self.current.extend_from_slice(&nal);
    }

    fn flush(&mut self) -> Option<AccessUnit> {
        if !self.has_slice {
            return None;
        }
        let unit = AccessUnit {
            data: std::mem::take(&mut self.current),
            keyframe: self.keyframe,
        };
        self.has_slice = false;
        self.keyframe = false;
        Some(unit)
    }
}

/// Offsets of every start code (`00 00 01` or `00 00 00 01`, at the first zero).
fn start_codes(buf: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 <= buf.len() {
        if buf[i] == 0 && buf[i + 1] == 0 && buf[i + 2] == 1 {
            let at = if i > 0 && buf[i - 1] == 0 { i - 1 } else { i };
            out.push(at);
            i += 3;
        } else {
            i += 1;
        }
    }
    out
}

/// The offset of the NAL header byte after the start code.
fn nal_header(nal: &[u8]) -> Option<usize> {
    let at = if nal.starts_with(&[0, 0, 0, 1]) {
        4
    } else if nal.starts_with(&[0, 0, 1]) {
        3
    } else {
        return None;
    };
    (at < nal.len()).then_some(at)
}

fn trim_trailing_zeros(nal: &[u8]) -> Vec<u8> {
    let end = nal.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    nal[..end].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nal(kind: u8, first_mb_zero: bool) -> Vec<u8> {
        let mut n = vec![0, 0, 0, 1, 0x60 | kind];
        n.push(if first_mb_zero { 0x88 } else { 0x08 });
        n.extend_from_slice(&[0x11, 0x22]);
        n
    }

    fn stream(nals: &[Vec<u8>]) -> Vec<u8> {
        nals.concat()
    }

    #[test]
    fn pictures_are_split_at_their_first_slice_and_parameter_sets() {
        let bytes = stream(&[
            nal(NAL_SPS, true),
            nal(NAL_PPS, true),
            nal(NAL_IDR, true),
            nal(NAL_IDR, false), // a second slice of the same picture
            nal(NAL_SLICE, true),
            nal(NAL_AUD, true),
            nal(NAL_SLICE, true),
        ]);
        let mut splitter = AccessUnitSplitter::new();
        // Fed in awkward pieces, including a start code cut in two.
        let mut units = Vec::new();
        for piece in bytes.chunks(5) {
            units.extend(splitter.push(piece));
        }
        units.extend(splitter.finish());
        assert_eq!(units.len(), 3, "{units:?}");
        assert!(units[0].keyframe);
        assert_eq!(
            units[0].data,
            stream(&[
                nal(NAL_SPS, true),
                nal(NAL_PPS, true),
                nal(NAL_IDR, true),
                nal(NAL_IDR, false)
            ])
        );
        assert!(!units[1].keyframe);
        assert_eq!(units[1].data, nal(NAL_SLICE, true));
        assert_eq!(
            units[2].data,
            stream(&[nal(NAL_AUD, true), nal(NAL_SLICE, true)])
        );
        let sets = splitter.parameter_sets().unwrap();
        assert_eq!(sets, stream(&[nal(NAL_SPS, true), nal(NAL_PPS, true)]));
    }

    #[test]
    fn three_byte_start_codes_and_leading_garbage_are_handled() {
        let mut bytes = vec![0xff, 0xfe];
        bytes.extend_from_slice(&[0, 0, 1, 0x65, 0x88, 1]);
        bytes.extend_from_slice(&[0, 0, 1, 0x41, 0x88, 2]);
        let mut splitter = AccessUnitSplitter::new();
        let mut units = splitter.push(&bytes);
        units.extend(splitter.finish());
        assert_eq!(units.len(), 2);
        assert!(units[0].keyframe && !units[1].keyframe);
        assert_eq!(units[1].data, vec![0, 0, 1, 0x41, 0x88, 2]);
    }
}
