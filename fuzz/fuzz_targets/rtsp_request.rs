//! libFuzzer target: the embedded RTSP server's bounded request reader (`rtsp-types` parsing,
//! head and body limits, interleaved frames), the input cut into reads as its first byte says.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vigie_cloud::fuzzing::rtsp_request(data);
});
