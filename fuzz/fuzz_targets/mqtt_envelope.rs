//! libFuzzer target: the ingest's classification of one MQTT message (topic parse, envelope,
//! status, gap record and clip JSON decode and validation).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vigie_cloud::fuzzing::mqtt_envelope(data);
});
