//! HTTP `Range` requests on a file of known size (RFC 9110 §14): the pure step between the header
//! and the bytes to send. One range per request (`bytes=a-b`, `bytes=a-`, `bytes=-n`); a request
//! for several ranges is answered with the first, which players never notice.

/// Bytes `start..=end` of a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    /// Inclusive.
    pub end: u64,
    pub size: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` of a 206 answer.
    pub fn content_range(&self) -> String {
        format!("bytes {}-{}/{}", self.start, self.end, self.size)
    }

    /// The half-open range to read.
    pub fn to_read(&self) -> std::ops::Range<u64> {
        self.start..self.end + 1
    }
}

/// Why a `Range` header was not honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// Not a byte range this server understands: the whole file is sent (RFC 9110 says to ignore it).
    #[error("the Range header {0:?} is not a byte range")]
    Malformed(String),
    /// No byte of the file is in the range: 416 with `Content-Range: bytes */size`.
    #[error("the range {header:?} is outside the file of {size} bytes")]
    Unsatisfiable { header: String, size: u64 },
}

/// Parses a `Range` header against a file of `size` bytes (`size` > 0).
pub fn parse(header: &str, size: u64) -> Result<ByteRange, RangeError> {
    let malformed = || RangeError::Malformed(header.to_owned());
    let unsatisfiable = || RangeError::Unsatisfiable {
        header: header.to_owned(),
        size,
    };
    let spec = header.trim().strip_prefix("bytes=").ok_or_else(malformed)?;
    let first = spec.split(',').next().ok_or_else(malformed)?.trim();
    let (a, b) = first.split_once('-').ok_or_else(malformed)?;
    let number = |s: &str| -> Result<u64, RangeError> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(malformed());
        }
        s.parse().map_err(|_| malformed())
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // `bytes=-n`: the last n bytes.
        let n = number(b)?;
        if n == 0 || size == 0 {
            return Err(unsatisfiable());
        }
        return Ok(ByteRange {
            start: size.saturating_sub(n),
            end: size - 1,
            size,
        });
    }
    let start = number(a)?;
    let end = if b.is_empty() { None } else { Some(number(b)?) };
    if let Some(end) = end {
        if end < start {
            return Err(malformed());
        }
    }
    if start >= size {
        return Err(unsatisfiable());
    }
    Ok(ByteRange {
        start,
        end: end.map_or(size - 1, |e| e.min(size - 1)),
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: u64, end: u64) -> ByteRange {
        ByteRange {
            start,
            end,
            size: 1000,
        }
    }

    #[test]
    fn the_three_forms_of_a_byte_range_are_understood() {
        assert_eq!(parse("bytes=0-99", 1000), Ok(range(0, 99)));
        assert_eq!(parse("bytes=900-", 1000), Ok(range(900, 999)));
        assert_eq!(parse("bytes=-100", 1000), Ok(range(900, 999)));
        assert_eq!(parse("bytes=-5000", 1000), Ok(range(0, 999)));
        assert_eq!(parse("bytes=990-2000", 1000), Ok(range(990, 999)));
        assert_eq!(parse("bytes=0-0, 5-9", 1000), Ok(range(0, 0)));
        assert_eq!(range(10, 19).content_range(), "bytes 10-19/1000");
        assert_eq!(range(10, 19).to_read(), 10..20);
    }

    #[test]
    fn a_range_past_the_end_is_unsatisfiable_and_garbage_is_malformed() {
        for header in ["bytes=1000-", "bytes=5000-6000", "bytes=-0"] {
            assert!(
                matches!(parse(header, 1000), Err(RangeError::Unsatisfiable { .. })),
                "{header}"
            );
        }
        for header in ["items=0-1", "bytes=a-b", "bytes=5-1", "bytes=", "bytes=--1"] {
            assert!(
                matches!(parse(header, 1000), Err(RangeError::Malformed(_))),
                "{header}"
            );
        }
    }
}
