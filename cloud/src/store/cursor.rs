//! The opaque cursor of the event listing: the position of the last item of a page in the listing
//! order (`corrected_at` descending, then `id` descending).
//!
//! On the wire it is base64url of `v2.<corrected_at ms>.<id>` (v1 cursors, keyed
//! by `occurred_at`, are refused as of an unknown version); clients must pass it back unchanged.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;

use super::StoreError;

const VERSION: &str = "v2";
/// A cursor is short; anything much longer is not one of ours and is not decoded.
const MAX_LEN: usize = 128;

/// Where the previous page ended: the next page holds the items strictly after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub corrected_at_ms: i64,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{VERSION}.{}.{}",
            self.corrected_at_ms,
            self.id.as_hyphenated()
        ))
    }

    pub fn decode(raw: &str) -> Result<Cursor, StoreError> {
        let invalid = |why: &str| {
            StoreError::Invalid(format!(
                "the cursor is not valid ({why}): pass the next_cursor of the previous page \
                 unchanged, or omit it to start from the newest event"
            ))
        };
        if raw.len() > MAX_LEN {
            return Err(invalid("it is too long"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| invalid("it is not base64url"))?;
        let text = String::from_utf8(bytes).map_err(|_| invalid("it is not text"))?;
        let mut parts = text.splitn(3, '.');
        let (Some(version), Some(ms), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid("it does not have three parts"));
        };
        if version != VERSION {
            return Err(invalid("it is of an unknown version"));
        }
        let corrected_at_ms = ms
            .parse()
            .map_err(|_| invalid("its time is not a number"))?;
        let id = Uuid::try_parse(id).map_err(|_| invalid("its id is not a UUID"))?;
        Ok(Cursor {
            corrected_at_ms,
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_through_its_opaque_form() {
        let c = Cursor {
            corrected_at_ms: 1_795_000_000_123,
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn garbage_is_an_invalid_cursor_that_says_what_to_do() {
        for raw in ["", "not a cursor!", "djEuMTIz", &"A".repeat(500)] {
            let err = Cursor::decode(raw).unwrap_err();
            assert!(
                matches!(&err, StoreError::Invalid(m) if m.contains("next_cursor")),
                "{raw}: {err}"
            );
        }
    }
}
