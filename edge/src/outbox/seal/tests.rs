//! Sealing: round trip, fresh nonces, and every kind of alteration refused.

use super::*;

fn sealer(byte: u8) -> Sealer {
    Sealer::new(&[byte; KEY_LEN])
}

#[test]
fn a_sealed_record_opens_back_to_its_plaintext() {
    let s = sealer(1);
    let sealed = s.seal(b"e/1", b"hello").unwrap();
    assert_eq!(sealed.len(), 1 + 24 + 5 + 16);
    assert!(!sealed.windows(5).any(|w| w == b"hello"), "no plaintext");
    assert_eq!(s.open(b"e/1", &sealed).unwrap().as_slice(), b"hello");
}

#[test]
fn two_seals_of_the_same_record_use_different_nonces() {
    let s = sealer(1);
    assert_ne!(
        s.seal(b"k", b"same").unwrap(),
        s.seal(b"k", b"same").unwrap()
    );
}

#[test]
fn a_record_opened_under_another_key_in_the_tree_fails_authentication() {
    let s = sealer(1);
    let sealed = s.seal(b"e/1", b"hello").unwrap();
    assert_eq!(s.open(b"e/2", &sealed), Err(SealError::Authentication));
}

#[test]
fn a_record_opened_with_another_key_fails_authentication() {
    let sealed = sealer(1).seal(b"e/1", b"hello").unwrap();
    assert_eq!(
        sealer(2).open(b"e/1", &sealed),
        Err(SealError::Authentication)
    );
}

#[test]
fn any_flipped_bit_is_detected() {
    let s = sealer(1);
    let sealed = s.seal(b"e/1", b"hello").unwrap();
    for i in 1..sealed.len() {
        let mut tampered = sealed.clone();
        tampered[i] ^= 0x01;
        assert_eq!(
            s.open(b"e/1", &tampered),
            Err(SealError::Authentication),
            "byte {i}"
        );
    }
    let mut tampered = sealed.clone();
    tampered[0] = 9;
    assert_eq!(s.open(b"e/1", &tampered), Err(SealError::Version(9)));
    assert_eq!(s.open(b"e/1", &sealed[..20]), Err(SealError::Truncated(20)));
}
