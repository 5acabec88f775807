//! Decoding: the incremental [`FrameDecoder`], the one-shot [`Message::decode`], and the
//! [`Limits`] both apply.
//!
//! Validation order, for every frame:
//!
//! 1. As soon as the 12-byte prelude is available: prelude CRC, total length at least 16,
//!    headers length at most `total - 16`, headers length and payload length within
//!    [`Limits`]. An oversized or nonsensical frame is therefore refused before its body is
//!    buffered.
//! 2. Once the whole frame is available: the message CRC.
//! 3. Only then the header block, each header fully bounds-checked; the headers must fill the
//!    block exactly.
//!
//! All arithmetic on wire values is checked and all slicing goes through `get` or
//! `split_at_checked`, so no input can cause a panic.

use bytes::{Bytes, BytesMut};

use super::message::{
    Header, HeaderValue, Message, TYPE_BYTE, TYPE_BYTE_ARRAY, TYPE_FALSE, TYPE_INT16, TYPE_INT32,
    TYPE_INT64, TYPE_STRING, TYPE_TIMESTAMP, TYPE_TRUE, TYPE_UUID,
};
use super::{
    DecodeError, MAX_HEADERS_LEN, MAX_PAYLOAD_LEN, MIN_MESSAGE_LEN, PRELUDE_LEN, TRAILER_LEN,
};

/// Size limits applied to incoming frames, checked against the prelude before the rest of a
/// frame is buffered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest payload accepted, in bytes. Default: 16 MiB ([`MAX_PAYLOAD_LEN`]), the limit of
    /// the Go and Python SDKs.
    pub max_payload_len: usize,
    /// Largest header block accepted, in bytes. Default: 128 KiB ([`MAX_HEADERS_LEN`]), the
    /// limit of the Go and Python SDKs.
    pub max_headers_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_len: MAX_PAYLOAD_LEN,
            max_headers_len: MAX_HEADERS_LEN,
        }
    }
}

impl Limits {
    /// The default limits: 16 MiB of payload, 128 KiB of headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the largest accepted payload, in bytes.
    pub fn max_payload_len(mut self, n: usize) -> Self {
        self.max_payload_len = n;
        self
    }

    /// Sets the largest accepted header block, in bytes.
    pub fn max_headers_len(mut self, n: usize) -> Self {
        self.max_headers_len = n;
        self
    }
}

/// A prelude that passed every check of step 1. All offsets are within `0..=total`.
#[derive(Clone, Copy, Debug)]
struct Prelude {
    /// Declared total length, as on the wire.
    total_wire: u32,
    /// Declared total length.
    total: usize,
    /// Declared headers length.
    headers: usize,
}

impl Prelude {
    /// Byte range of the header block inside the frame.
    fn headers_range(&self) -> Option<std::ops::Range<usize>> {
        Some(PRELUDE_LEN..PRELUDE_LEN.checked_add(self.headers)?)
    }

    /// Byte range of the payload inside the frame.
    fn payload_range(&self) -> Option<std::ops::Range<usize>> {
        Some(PRELUDE_LEN.checked_add(self.headers)?..self.total.checked_sub(TRAILER_LEN)?)
    }
}

/// Reads a big-endian `u32` at `at`, if the bytes are there.
fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    let chunk: [u8; 4] = bytes.get(at..end)?.try_into().ok()?;
    Some(u32::from_be_bytes(chunk))
}

/// Widens a wire length; saturates on (hypothetical) targets where `usize` is narrower.
fn widen(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Step 1: validates the prelude at the start of `bytes`. `Ok(None)` if fewer than 12 bytes.
fn read_prelude(bytes: &[u8], limits: &Limits) -> Result<Option<Prelude>, DecodeError> {
    let (Some(total_wire), Some(headers_wire), Some(crc), Some(covered)) = (
        be_u32(bytes, 0),
        be_u32(bytes, 4),
        be_u32(bytes, 8),
        bytes.get(..8),
    ) else {
        return Ok(None);
    };
    let computed = crc32fast::hash(covered);
    if computed != crc {
        return Err(DecodeError::PreludeChecksum {
            expected: crc,
            actual: computed,
        });
    }
    let overhead = u32::try_from(MIN_MESSAGE_LEN).unwrap_or(u32::MAX);
    let Some(room) = total_wire.checked_sub(overhead) else {
        return Err(DecodeError::TooShort {
            total_len: total_wire,
        });
    };
    let Some(payload_wire) = room.checked_sub(headers_wire) else {
        return Err(DecodeError::HeadersLenInvalid {
            headers_len: headers_wire,
            total_len: total_wire,
        });
    };
    let headers = widen(headers_wire);
    if headers > limits.max_headers_len {
        return Err(DecodeError::HeadersTooLarge {
            len: headers,
            max: limits.max_headers_len,
        });
    }
    let payload = widen(payload_wire);
    if payload > limits.max_payload_len {
        return Err(DecodeError::PayloadTooLarge {
            len: payload,
            max: limits.max_payload_len,
        });
    }
    Ok(Some(Prelude {
        total_wire,
        total: widen(total_wire),
        headers,
    }))
}

/// Steps 2 and 3 on a buffer holding exactly one frame whose prelude passed step 1.
/// Returns the headers and the payload's byte range, which is known to be within `frame`.
fn read_body(
    frame: &[u8],
    prelude: &Prelude,
) -> Result<(Vec<Header>, std::ops::Range<usize>), DecodeError> {
    let crc_at = prelude.total.checked_sub(TRAILER_LEN);
    let (Some(covered), Some(expected)) = (
        crc_at.and_then(|end| frame.get(..end)),
        crc_at.and_then(|at| be_u32(frame, at)),
    ) else {
        // Unreachable after step 1 (total >= 16 and the frame is whole); report it as the
        // length mismatch it would be rather than panicking.
        return Err(DecodeError::FrameLenMismatch {
            declared: prelude.total_wire,
            actual: frame.len(),
        });
    };
    let actual = crc32fast::hash(covered);
    if actual != expected {
        return Err(DecodeError::MessageChecksum { expected, actual });
    }
    let (Some(block), Some(payload_range)) = (
        prelude.headers_range().and_then(|r| frame.get(r)),
        prelude
            .payload_range()
            .filter(|r| frame.get(r.clone()).is_some()),
    ) else {
        return Err(DecodeError::HeadersLenInvalid {
            headers_len: u32::try_from(prelude.headers).unwrap_or(u32::MAX),
            total_len: prelude.total_wire,
        });
    };
    Ok((parse_headers(block)?, payload_range))
}

/// Smallest possible header: name length byte, one name byte, type byte.
const MIN_HEADER_LEN: usize = 3;

/// Splits a fixed-size array off the front of `bytes`.
fn take_array<const N: usize>(bytes: &[u8]) -> Option<([u8; N], &[u8])> {
    let (head, rest) = bytes.split_at_checked(N)?;
    Some((head.try_into().ok()?, rest))
}

/// Splits a `u16`-length-prefixed value off the front of `bytes`.
fn take_prefixed(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = take_array::<2>(bytes)?;
    rest.split_at_checked(usize::from(u16::from_be_bytes(len)))
}

/// Parses a header block; the headers must fill it exactly.
fn parse_headers(mut block: &[u8]) -> Result<Vec<Header>, DecodeError> {
    let mut headers = Vec::new();
    while !block.is_empty() {
        if block.len() < MIN_HEADER_LEN {
            return Err(DecodeError::HeadersTrailing {
                remaining: block.len(),
            });
        }
        let Some((&name_len, rest)) = block.split_first() else {
            break;
        };
        let name_len = usize::from(name_len);
        if name_len == 0 {
            return Err(DecodeError::HeaderNameEmpty);
        }
        let Some((name, rest)) = rest.split_at_checked(name_len) else {
            return Err(DecodeError::HeaderNameTruncated {
                len: name_len,
                remaining: rest.len(),
            });
        };
        let name = std::str::from_utf8(name).map_err(|_| DecodeError::HeaderNameNotUtf8)?;
        let (value, rest) = match parse_value(rest, name) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => {
                return Err(DecodeError::HeaderValueTruncated {
                    name: name.to_owned(),
                })
            }
            Err(e) => return Err(e),
        };
        headers.push(Header::decoded(name, value));
        block = rest;
    }
    Ok(headers)
}

/// Parses the type byte and value at the front of `bytes`. `Ok(None)` means the value is cut
/// off by the end of the header block.
fn parse_value<'a>(
    bytes: &'a [u8],
    name: &str,
) -> Result<Option<(HeaderValue, &'a [u8])>, DecodeError> {
    let Some((&type_byte, rest)) = bytes.split_first() else {
        return Ok(None);
    };
    let parsed = match type_byte {
        TYPE_TRUE => Some((HeaderValue::Bool(true), rest)),
        TYPE_FALSE => Some((HeaderValue::Bool(false), rest)),
        TYPE_BYTE => {
            take_array::<1>(rest).map(|(b, r)| (HeaderValue::Byte(i8::from_be_bytes(b)), r))
        }
        TYPE_INT16 => {
            take_array::<2>(rest).map(|(b, r)| (HeaderValue::Int16(i16::from_be_bytes(b)), r))
        }
        TYPE_INT32 => {
            take_array::<4>(rest).map(|(b, r)| (HeaderValue::Int32(i32::from_be_bytes(b)), r))
        }
        TYPE_INT64 => {
            take_array::<8>(rest).map(|(b, r)| (HeaderValue::Int64(i64::from_be_bytes(b)), r))
        }
        TYPE_BYTE_ARRAY => {
            take_prefixed(rest).map(|(v, r)| (HeaderValue::ByteArray(Bytes::copy_from_slice(v)), r))
        }
        TYPE_STRING => match take_prefixed(rest) {
            None => None,
            Some((v, r)) => {
                let s = std::str::from_utf8(v).map_err(|_| DecodeError::HeaderStringNotUtf8 {
                    name: name.to_owned(),
                })?;
                Some((HeaderValue::String(s.to_owned()), r))
            }
        },
        TYPE_TIMESTAMP => {
            take_array::<8>(rest).map(|(b, r)| (HeaderValue::Timestamp(i64::from_be_bytes(b)), r))
        }
        TYPE_UUID => take_array::<16>(rest).map(|(b, r)| (HeaderValue::Uuid(b), r)),
        unknown => {
            return Err(DecodeError::HeaderTypeUnknown {
                type_byte: unknown,
                name: name.to_owned(),
            })
        }
    };
    Ok(parsed)
}

impl Message {
    /// Decodes exactly one whole frame with the default [`Limits`].
    ///
    /// `frame` must hold one frame and nothing else: missing or extra bytes are
    /// [`DecodeError::FrameLenMismatch`] (or [`DecodeError::PreludeTruncated`] under 12 bytes).
    /// The payload is copied out of `frame`.
    pub fn decode(frame: &[u8]) -> Result<Message, DecodeError> {
        Message::decode_with_limits(frame, Limits::default())
    }

    /// Like [`Message::decode`], with explicit [`Limits`].
    pub fn decode_with_limits(frame: &[u8], limits: Limits) -> Result<Message, DecodeError> {
        let (headers, payload_range) = read_whole(frame, &limits)?;
        let payload = frame
            .get(payload_range)
            .map(Bytes::copy_from_slice)
            .unwrap_or_default();
        Ok(Message::from_parts(headers, payload))
    }

    /// Like [`Message::decode`], but the payload shares `frame`'s storage: unwrapping a signed
    /// envelope's inner message per frame then copies (and allocates) no media.
    #[cfg(feature = "verify")]
    pub(crate) fn decode_shared(frame: &Bytes) -> Result<Message, DecodeError> {
        let (headers, payload_range) = read_whole(frame, &Limits::default())?;
        // `read_body` checked that the range lies inside `frame`, so `slice` cannot panic.
        Ok(Message::from_parts(headers, frame.slice(payload_range)))
    }
}

/// Steps 1 to 3 on a buffer that must hold exactly one frame: its headers and the payload's
/// byte range, which is known to be within `frame`.
fn read_whole(
    frame: &[u8],
    limits: &Limits,
) -> Result<(Vec<Header>, std::ops::Range<usize>), DecodeError> {
    let Some(prelude) = read_prelude(frame, limits)? else {
        return Err(DecodeError::PreludeTruncated { len: frame.len() });
    };
    if frame.len() != prelude.total {
        return Err(DecodeError::FrameLenMismatch {
            declared: prelude.total_wire,
            actual: frame.len(),
        });
    }
    read_body(frame, &prelude)
}

/// Incremental decoder: splits a byte stream into messages.
///
/// Feed it the receive buffer after every read. Each call to [`FrameDecoder::decode`] takes at
/// most one message off the front of the buffer; call it in a loop until it returns
/// `Ok(None)` (need more bytes). The prelude is validated as soon as 12 bytes are buffered,
/// so a frame larger than the [`Limits`] is refused before its body arrives.
///
/// The decoder holds only its limits (constant-size state); everything else is re-read from
/// the buffer, which must be the same stream of bytes on every call.
///
/// Errors are terminal for the stream: the byte stream cannot be re-synchronised after a bad
/// frame, so drop the connection. The bad bytes are left in the buffer, so a later call
/// returns the same error again.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    limits: Limits,
}

impl FrameDecoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder with the given [`Limits`].
    pub fn with_limits(limits: Limits) -> Self {
        FrameDecoder { limits }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Takes one complete message off the front of `buf` if there is one.
    ///
    /// `Ok(None)` means more bytes are needed; `buf` is then untouched. `Ok(Some(_))` removes
    /// exactly that frame from the front of `buf`; the payload shares `buf`'s storage (no
    /// copy). On error `buf` is untouched (see the type docs: drop the connection).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, DecodeError> {
        let Some(prelude) = read_prelude(buf, &self.limits)? else {
            return Ok(None);
        };
        let Some(frame) = buf.get(..prelude.total) else {
            return Ok(None);
        };
        let (headers, payload_range) = read_body(frame, &prelude)?;
        // `buf` holds at least `total` bytes (checked just above), and `read_body` checked
        // that `payload_range` lies inside those bytes, so neither call can panic.
        let frame = buf.split_to(prelude.total).freeze();
        let payload = frame.slice(payload_range);
        Ok(Some(Message::from_parts(headers, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Builds a frame with correct CRCs around an arbitrary header block and payload.
    fn frame(headers: &[u8], payload: &[u8]) -> Vec<u8> {
        let total = (16 + headers.len() + payload.len()) as u32;
        let mut v = Vec::new();
        v.extend_from_slice(&total.to_be_bytes());
        v.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let pc = crc32fast::hash(&v);
        v.extend_from_slice(&pc.to_be_bytes());
        v.extend_from_slice(headers);
        v.extend_from_slice(payload);
        let mc = crc32fast::hash(&v);
        v.extend_from_slice(&mc.to_be_bytes());
        v
    }

    #[test]
    fn decodes_minimal_frame() {
        let m = Message::decode(&unhex("000000100000000005c248eb7d98c8ff")).unwrap();
        assert_eq!(m, Message::default());
    }

    #[test]
    fn header_errors() {
        let cases: Vec<(&[u8], DecodeError)> = vec![
            (b"\x00\x00\x00", DecodeError::HeaderNameEmpty),
            (b"\x01a", DecodeError::HeadersTrailing { remaining: 2 }),
            (
                b"\x05ab\x00",
                DecodeError::HeaderNameTruncated {
                    len: 5,
                    remaining: 3,
                },
            ),
            (b"\x02\xff\xfe\x00", DecodeError::HeaderNameNotUtf8),
            (
                b"\x01a\x0a",
                DecodeError::HeaderTypeUnknown {
                    type_byte: 10,
                    name: "a".into(),
                },
            ),
            (
                b"\x02ab",
                DecodeError::HeaderValueTruncated { name: "ab".into() },
            ),
            (
                b"\x01a\x04\x00\x00\x00",
                DecodeError::HeaderValueTruncated { name: "a".into() },
            ),
            (
                b"\x01a\x07\x00\x02h",
                DecodeError::HeaderValueTruncated { name: "a".into() },
            ),
            (
                b"\x01a\x07\x00",
                DecodeError::HeaderValueTruncated { name: "a".into() },
            ),
            (
                b"\x01a\x07\x00\x01\xff",
                DecodeError::HeaderStringNotUtf8 { name: "a".into() },
            ),
            (
                b"\x01a\x09\x00",
                DecodeError::HeaderValueTruncated { name: "a".into() },
            ),
            (
                b"\x01a\x00\x00",
                DecodeError::HeadersTrailing { remaining: 1 },
            ),
        ];
        for (block, want) in cases {
            let f = frame(block, b"payload");
            assert_eq!(Message::decode(&f), Err(want.clone()), "block {block:02x?}");
            let mut buf = BytesMut::from(&f[..]);
            assert_eq!(FrameDecoder::new().decode(&mut buf), Err(want));
            assert_eq!(&buf[..], &f[..], "buffer untouched on error");
        }
    }

    #[test]
    fn prelude_errors_and_order() {
        let limits = Limits::new().max_payload_len(10).max_headers_len(5);
        let prelude = |total: u32, headers: u32| {
            let mut v = Vec::new();
            v.extend_from_slice(&total.to_be_bytes());
            v.extend_from_slice(&headers.to_be_bytes());
            let c = crc32fast::hash(&v);
            v.extend_from_slice(&c.to_be_bytes());
            v
        };
        let cases = [
            (prelude(15, 0), DecodeError::TooShort { total_len: 15 }),
            (
                prelude(20, 5),
                DecodeError::HeadersLenInvalid {
                    headers_len: 5,
                    total_len: 20,
                },
            ),
            (
                prelude(40, 6),
                DecodeError::HeadersTooLarge { len: 6, max: 5 },
            ),
            (
                prelude(27, 0),
                DecodeError::PayloadTooLarge { len: 11, max: 10 },
            ),
            (
                prelude(u32::MAX, u32::MAX),
                DecodeError::HeadersLenInvalid {
                    headers_len: u32::MAX,
                    total_len: u32::MAX,
                },
            ),
        ];
        for (bytes, want) in cases {
            let mut buf = BytesMut::from(&bytes[..]);
            let mut d = FrameDecoder::with_limits(limits);
            assert_eq!(d.limits(), limits);
            assert_eq!(d.decode(&mut buf), Err(want.clone()));
            assert_eq!(d.decode(&mut buf), Err(want), "same error again");
        }
        // Within limits: waits for the body.
        let mut buf = BytesMut::from(&prelude(26, 0)[..]);
        assert_eq!(FrameDecoder::with_limits(limits).decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), 12);
    }

    #[test]
    fn decode_length_mismatch() {
        let f = frame(b"", b"abc");
        assert_eq!(
            Message::decode(&f[..f.len() - 1]),
            Err(DecodeError::FrameLenMismatch {
                declared: 19,
                actual: 18
            })
        );
        let mut longer = f.clone();
        longer.push(0);
        assert_eq!(
            Message::decode(&longer),
            Err(DecodeError::FrameLenMismatch {
                declared: 19,
                actual: 20
            })
        );
        assert_eq!(
            Message::decode(&f[..11]),
            Err(DecodeError::PreludeTruncated { len: 11 })
        );
        assert_eq!(
            Message::decode(&[]),
            Err(DecodeError::PreludeTruncated { len: 0 })
        );
    }

    #[test]
    fn frame_decoder_leaves_following_bytes() {
        let a = frame(b"\x01a\x00", b"one");
        let b = frame(b"", b"two");
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&a);
        buf.extend_from_slice(&b[..5]);
        let mut d = FrameDecoder::new();
        let m = d.decode(&mut buf).unwrap().unwrap();
        assert_eq!(m.payload().as_ref(), b"one");
        assert_eq!(m.header("a"), Some(&HeaderValue::Bool(true)));
        assert_eq!(&buf[..], &b[..5]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&b[5..]);
        assert_eq!(
            d.decode(&mut buf).unwrap().unwrap().payload().as_ref(),
            b"two"
        );
        assert!(buf.is_empty());
        assert_eq!(d.decode(&mut buf), Ok(None));
    }
}
