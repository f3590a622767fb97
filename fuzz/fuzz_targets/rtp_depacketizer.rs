//! libFuzzer target: the RTP H.264 depacketizer (single NAL, STAP-A, FU-A, losses), fed
//! length-prefixed packets.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vigie_cloud::fuzzing::rtp_depacketizer(data);
});
