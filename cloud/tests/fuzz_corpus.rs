//! The fuzz targets' corpus on stable: every committed seed in `fuzz/corpus/<target>/` and every
//! crash libFuzzer left in `fuzz/artifacts/<target>/` goes through the same entry points the
//! libFuzzer targets call (`vigie_cloud::fuzzing`), which panic on a broken bound; a few seeds
//! whose outcome is known pin that the seeds are real messages. Where no libFuzzer runs, a fixed
//! number of seeded mutations of each seed (bit flips, cuts, insertions, splices) goes through too.

use std::path::PathBuf;

use vigie_cloud::fuzzing;

const TARGETS: [&str; 3] = ["rtsp_request", "rtp_depacketizer", "mqtt_envelope"];

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every file of `fuzz/{corpus,artifacts}/<target>/`, with its bytes.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for kind in ["corpus", "artifacts"] {
        let Ok(dir) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
            continue;
        };
        for entry in dir.flatten() {
            let path = entry.path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                found.push((path, bytes));
            }
        }
    }
    found.sort();
    found
}

fn run(target: &str, data: &[u8]) -> String {
    match target {
        "rtsp_request" => fuzzing::rtsp_request(data).to_string(),
        "rtp_depacketizer" => fuzzing::rtp_depacketizer(data).to_string(),
        "mqtt_envelope" => fuzzing::mqtt_envelope(data).to_owned(),
        other => panic!("no fuzz target {other}"),
    }
}

#[test]
fn every_corpus_and_artifact_file_goes_through_its_fuzz_entry_without_a_panic() {
    for target in TARGETS {
        let files = inputs(target);
        assert!(files.len() >= 5, "{target}: only {} seeds", files.len());
        for (path, data) in files {
            let outcome = std::panic::catch_unwind(|| run(target, &data));
            assert!(outcome.is_ok(), "{target} panicked on {}", path.display());
        }
    }
}

#[test]
fn the_seeds_are_real_messages_with_known_outcomes() {
    let seed = |target: &str, name: &str| {
        let path = fuzz_dir().join("corpus").join(target).join(name);
        run(target, &std::fs::read(&path).unwrap())
    };
    // OPTIONS, ANNOUNCE twice, SETUP, RECORD, three RTP frames, TEARDOWN.
    assert_eq!(seed("rtsp_request", "ffmpeg_publish_session"), "9");
    assert_eq!(seed("rtsp_request", "endless_line"), "0");
    assert_eq!(seed("rtsp_request", "huge_header"), "0");
    assert_eq!(seed("rtp_depacketizer", "stap_a_then_idr"), "2");
    assert_eq!(seed("rtp_depacketizer", "fu_a_keyframe"), "1");
    assert_eq!(seed("mqtt_envelope", "button_event"), "event");
    assert_eq!(seed("mqtt_envelope", "motion_event_unknown_field"), "event");
    assert_eq!(seed("mqtt_envelope", "status_sleeping"), "status");
    assert_eq!(
        seed("mqtt_envelope", "event_on_wrong_device_topic"),
        "invalid"
    );
    assert_eq!(seed("mqtt_envelope", "truncated_event"), "invalid");
}

/// xorshift64*: the mutations are the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

/// One mutation of `seed`, maybe spliced with `other`.
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(5) {
            0 if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] ^= 1 << rng.below(8);
            }
            1 => data.truncate(at),
            2 => {
                let byte = [b'\r', b'\n', b'$', b':', b' ', 0, 0xff][rng.below(7)];
                data.splice(at..at, std::iter::repeat_n(byte, 1 + rng.below(3)));
            }
            3 => {
                let from = rng.below(other.len() + 1);
                let len = rng.below(other.len() - from + 1);
                data.splice(at..at, other[from..from + len].iter().copied());
            }
            _ => {
                let digits = ["0", "65536", "99999999999999999999", "-1", "4294967296"];
                data.splice(at..at, digits[rng.below(digits.len())].bytes());
            }
        }
    }
    data
}

#[test]
fn two_hundred_seeded_mutations_of_every_seed_go_through_without_a_panic() {
    let mut rng = Rng(0x5eed_f00d_cafe_d00d);
    let mut runs = 0;
    for target in TARGETS {
        let seeds = inputs(target);
        for (path, seed) in &seeds {
            for _ in 0..200 {
                let other = &seeds[rng.below(seeds.len())].1;
                let data = mutate(&mut rng, seed, other);
                let outcome = std::panic::catch_unwind(|| run(target, &data));
                assert!(
                    outcome.is_ok(),
                    "{target} panicked on a mutation of {}: {:?}",
                    path.display(),
                    String::from_utf8_lossy(&data)
                );
                runs += 1;
            }
        }
    }
    eprintln!("{runs} mutated inputs, no panic");
}
