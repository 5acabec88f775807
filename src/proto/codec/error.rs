//! Errors of the event-stream codec: [`EncodeError`] when a [`Message`](super::Message) cannot be
//! framed, [`DecodeError`] when received bytes are not a valid frame.

use thiserror::Error;

/// Why a message (or a header block) could not be encoded.
///
/// Encoding errors are caller mistakes: the message breaks one of the format's limits
/// (see [`MAX_HEADER_NAME_LEN`](super::MAX_HEADER_NAME_LEN),
/// [`MAX_HEADER_VALUE_LEN`](super::MAX_HEADER_VALUE_LEN),
/// [`MAX_HEADERS_LEN`](super::MAX_HEADERS_LEN), [`MAX_PAYLOAD_LEN`](super::MAX_PAYLOAD_LEN)).
/// Nothing is written when one is returned; the same message will fail the same way again.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A header has an empty name; the format needs at least one byte.
    #[error("header #{index} has an empty name; header names must be 1 to 255 bytes")]
    HeaderNameEmpty {
        /// Position of the offending header in the header list (0-based).
        index: usize,
    },

    /// A header name is longer than the 255 bytes its one-byte length prefix can describe.
    #[error("header name `{name}` is {len} bytes; the limit is {max} bytes")]
    HeaderNameTooLong {
        /// The offending name.
        name: String,
        /// Its length in bytes.
        len: usize,
        /// The limit, [`MAX_HEADER_NAME_LEN`](super::MAX_HEADER_NAME_LEN).
        max: usize,
    },

    /// A byte-array or string header value is longer than the 32767 bytes AWS implementations
    /// accept.
    #[error("value of header `{name}` is {len} bytes; the limit is {max} bytes")]
    HeaderValueTooLong {
        /// Name of the header whose value is too long.
        name: String,
        /// Length of the value in bytes.
        len: usize,
        /// The limit, [`MAX_HEADER_VALUE_LEN`](super::MAX_HEADER_VALUE_LEN).
        max: usize,
    },

    /// The encoded header block is larger than 128 KiB.
    #[error("header block would be {len} bytes; the limit is {max} bytes")]
    HeadersTooLarge {
        /// Encoded length of the whole header block in bytes.
        len: usize,
        /// The limit, [`MAX_HEADERS_LEN`](super::MAX_HEADERS_LEN).
        max: usize,
    },

    /// The payload is larger than 16 MiB.
    #[error("payload is {len} bytes; the limit is {max} bytes")]
    PayloadTooLarge {
        /// Payload length in bytes.
        len: usize,
        /// The limit, [`MAX_PAYLOAD_LEN`](super::MAX_PAYLOAD_LEN).
        max: usize,
    },

    /// The whole frame would not fit the 32-bit total-length field.
    #[error("frame would be {len} bytes, which does not fit the 32-bit total-length field")]
    FrameTooLarge {
        /// Length the frame would have had, in bytes (saturated at `usize::MAX`).
        len: usize,
    },
}

/// Why received bytes are not a valid event-stream frame.
///
/// Every decoding error is **terminal for the stream**: once a frame is bad, the byte stream
/// cannot be re-synchronised (there is no frame marker to search for), so the caller should
/// drop the connection. A [`FrameDecoder`](super::FrameDecoder) does not consume the bad bytes,
/// so calling it again returns the same error again.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The CRC-32 stored in bytes 8..12 does not match the CRC-32 of bytes 0..8.
    #[error(
        "prelude checksum mismatch: expected 0x{expected:08x}, computed 0x{actual:08x}; \
         the frame is corrupt"
    )]
    PreludeChecksum {
        /// The checksum carried in the frame.
        expected: u32,
        /// The checksum computed over the received prelude bytes.
        actual: u32,
    },

    /// The CRC-32 in the last four bytes does not match the CRC-32 of everything before it.
    #[error(
        "message checksum mismatch: expected 0x{expected:08x}, computed 0x{actual:08x}; \
         the frame is corrupt"
    )]
    MessageChecksum {
        /// The checksum carried in the frame.
        expected: u32,
        /// The checksum computed over the received bytes.
        actual: u32,
    },

    /// The declared total length is below the 16-byte minimum frame.
    #[error("declared total length {total_len} is below the 16-byte minimum frame")]
    TooShort {
        /// The total length declared in the prelude.
        total_len: u32,
    },

    /// The declared headers length does not leave room for the prelude and trailer.
    #[error(
        "declared headers length {headers_len} does not fit a frame of total length \
         {total_len}; it can be at most the total length minus 16"
    )]
    HeadersLenInvalid {
        /// The headers length declared in the prelude.
        headers_len: u32,
        /// The total length declared in the prelude.
        total_len: u32,
    },

    /// The declared payload is larger than [`Limits::max_payload_len`](super::Limits).
    #[error("declared payload of {len} bytes exceeds the limit of {max} bytes")]
    PayloadTooLarge {
        /// Payload length implied by the prelude.
        len: usize,
        /// The configured limit.
        max: usize,
    },

    /// The declared header block is larger than [`Limits::max_headers_len`](super::Limits).
    #[error("declared header block of {len} bytes exceeds the limit of {max} bytes")]
    HeadersTooLarge {
        /// Headers length declared in the prelude.
        len: usize,
        /// The configured limit.
        max: usize,
    },

    /// A header's name length is zero.
    #[error("a header has a name length of 0; header names must be 1 to 255 bytes")]
    HeaderNameEmpty,

    /// A header's name runs past the end of the header block.
    #[error(
        "a header name of {len} bytes runs past the end of the header block ({remaining} bytes left)"
    )]
    HeaderNameTruncated {
        /// The name length the header declares.
        len: usize,
        /// Bytes left in the header block after the length byte.
        remaining: usize,
    },

    /// A header's name is not valid UTF-8.
    #[error("a header name is not valid UTF-8")]
    HeaderNameNotUtf8,

    /// A header has a value type byte outside 0..=9.
    #[error("header `{name}` has unknown value type {type_byte}; known types are 0 to 9")]
    HeaderTypeUnknown {
        /// The type byte found.
        type_byte: u8,
        /// Name of the header.
        name: String,
    },

    /// A header's type byte or value runs past the end of the header block.
    #[error("the value of header `{name}` runs past the end of the header block")]
    HeaderValueTruncated {
        /// Name of the header.
        name: String,
    },

    /// A string header value is not valid UTF-8.
    #[error("the string value of header `{name}` is not valid UTF-8")]
    HeaderStringNotUtf8 {
        /// Name of the header.
        name: String,
    },

    /// The header block ends with bytes too few to hold another header (a header needs at
    /// least 3 bytes: name length, one name byte, type byte).
    #[error(
        "the header block ends with {remaining} stray byte(s), too few to hold a header \
         (a header needs at least 3 bytes)"
    )]
    HeadersTrailing {
        /// Number of leftover bytes at the end of the header block.
        remaining: usize,
    },

    /// The input given to [`Message::decode`](super::Message::decode) is not exactly one frame.
    #[error("frame declares a total length of {declared} bytes but {actual} bytes were given")]
    FrameLenMismatch {
        /// The total length declared in the prelude.
        declared: u32,
        /// The number of bytes given.
        actual: usize,
    },

    /// The input given to [`Message::decode`](super::Message::decode) is shorter than the
    /// 12-byte prelude, so not even its length can be read.
    #[error("input is {len} bytes, too short to hold the 12-byte prelude")]
    PreludeTruncated {
        /// The number of bytes given.
        len: usize,
    },
}

impl DecodeError {
    /// True for the two checksum mismatches ([`PreludeChecksum`](Self::PreludeChecksum) and
    /// [`MessageChecksum`](Self::MessageChecksum)), i.e. the bytes were damaged in transit
    /// rather than well-formed but unacceptable.
    pub fn is_checksum(&self) -> bool {
        matches!(
            self,
            DecodeError::PreludeChecksum { .. } | DecodeError::MessageChecksum { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_display_shows_hex() {
        let e = DecodeError::PreludeChecksum {
            expected: 0xdeadbeef,
            actual: 0x8bb495fb,
        };
        assert_eq!(
            e.to_string(),
            "prelude checksum mismatch: expected 0xdeadbeef, computed 0x8bb495fb; the frame is corrupt"
        );
        assert!(e.is_checksum());
        let e = DecodeError::MessageChecksum {
            expected: 1,
            actual: 2,
        };
        assert!(e
            .to_string()
            .starts_with("message checksum mismatch: expected 0x00000001, computed 0x00000002"));
        assert!(e.is_checksum());
        assert!(!DecodeError::TooShort { total_len: 3 }.is_checksum());
    }

    #[test]
    fn encode_error_names_header() {
        let e = EncodeError::HeaderValueTooLong {
            name: ":chunk-signature".into(),
            len: 40000,
            max: 32767,
        };
        assert_eq!(
            e.to_string(),
            "value of header `:chunk-signature` is 40000 bytes; the limit is 32767 bytes"
        );
    }
}
