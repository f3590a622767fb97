//! Fuzz entry points (doc-hidden): the functions the `fuzz/` crate's libFuzzer targets call, and
//! that `tests/fuzz_corpus.rs` runs on stable over the committed corpus and every crash found, so
//! both exercise the same code. Each takes arbitrary bytes, must not panic, and checks that what
//! it got back is bounded by what went in (it panics if not, which is a finding).

use protocol::TopicPrefix;

use crate::ingest::{classify, Inbound};
use crate::live::rtp::Depacketizer;

/// The RTSP server's bounded request reader over `data` (its first byte picks how the rest is cut
/// into reads); the number of messages read.
pub fn rtsp_request(data: &[u8]) -> usize {
    crate::live::rtsp::fuzz_requests(data)
}

/// RTP packets, each a 2-byte big-endian length then that many bytes (the last one cut short if
/// `data` ends), through one depacketizer, which never holds more than its cap; the access units
/// it gave.
pub fn rtp_depacketizer(data: &[u8]) -> usize {
    let mut depacketizer = Depacketizer::new(None, None);
    let mut rest = data;
    let mut units = 0;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let end = (2 + len).min(rest.len());
        let packet = &rest[2..end];
        rest = &rest[end..];
        let pushed = depacketizer.push(packet);
        assert!(
            depacketizer.held_bytes() <= crate::live::rtp::MAX_UNIT_BYTES,
            "the depacketizer holds {} bytes",
            depacketizer.held_bytes()
        );
        if let Ok(out) = pushed {
            for unit in out {
                // A unit's bytes are its NAL units (from the input), 4-byte start codes (at most
                // one per 3 bytes of STAP-A), and the SPS/PPS (from the input too).
                assert!(
                    unit.data.len() <= 3 * data.len() + 16,
                    "an access unit of {} bytes from {} bytes of input",
                    unit.data.len(),
                    data.len()
                );
                units += 1;
            }
        }
    }
    units
}

/// One MQTT message through the ingest's `classify` (what the ingest actor does with every
/// publish): the topic is `data` up to its first newline (under the prefix `fz`), the payload the
/// rest; the kind of message it was taken for.
pub fn mqtt_envelope(data: &[u8]) -> &'static str {
    let prefix = TopicPrefix::new("fz").unwrap_or_default();
    let (topic, payload) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let topic = String::from_utf8_lossy(topic);
    match classify(&prefix, &topic, payload) {
        Inbound::Event(_) => "event",
        Inbound::Status(_) => "status",
        Inbound::Gap(_) => "gap",
        Inbound::Clip(_) => "clip",
        Inbound::Ignored(_) => "ignored",
        Inbound::Invalid(reason) => {
            assert!(
                reason.len() <= 3 * data.len() + 4096,
                "a refusal reason of {} bytes from {} bytes of input",
                reason.len(),
                data.len()
            );
            "invalid"
        }
    }
}
