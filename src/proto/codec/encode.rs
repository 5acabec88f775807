//! Encoding: [`Message::encode`], [`Message::encode_into`] and [`encode_headers_into`].
//!
//! Every limit is checked before the first byte is written, so on error the destination is
//! left exactly as it was. A successful call reserves the exact frame length once and then
//! only copies bytes; the CRC-32 is computed with one running hasher (the prelude CRC is a
//! snapshot of it after 8 bytes, the message CRC its final value).

use bytes::{BufMut, Bytes, BytesMut};

use super::message::{Header, HeaderValue, Message};
use super::{
    EncodeError, MAX_HEADERS_LEN, MAX_HEADER_NAME_LEN, MAX_HEADER_VALUE_LEN, MAX_PAYLOAD_LEN,
};

/// Offset of the prelude CRC field inside a frame (it covers bytes 0..8).
const PRELUDE_CRC_OFFSET: usize = 8;

/// Checks every header against the format limits and returns the header block length.
fn validate_headers(headers: &[Header]) -> Result<usize, EncodeError> {
    let mut total: usize = 0;
    for (index, header) in headers.iter().enumerate() {
        let name = header.name();
        if name.is_empty() {
            return Err(EncodeError::HeaderNameEmpty { index });
        }
        if name.len() > MAX_HEADER_NAME_LEN {
            return Err(EncodeError::HeaderNameTooLong {
                name: name.to_owned(),
                len: name.len(),
                max: MAX_HEADER_NAME_LEN,
            });
        }
        let value_len = match header.value() {
            HeaderValue::ByteArray(b) => Some(b.len()),
            HeaderValue::String(s) => Some(s.len()),
            _ => None,
        };
        if let Some(len) = value_len {
            if len > MAX_HEADER_VALUE_LEN {
                return Err(EncodeError::HeaderValueTooLong {
                    name: name.to_owned(),
                    len,
                    max: MAX_HEADER_VALUE_LEN,
                });
            }
        }
        total = total.saturating_add(header.encoded_len());
    }
    if total > MAX_HEADERS_LEN {
        return Err(EncodeError::HeadersTooLarge {
            len: total,
            max: MAX_HEADERS_LEN,
        });
    }
    Ok(total)
}

/// Writes already validated headers. Lengths were checked, so the narrowing casts below
/// cannot truncate.
fn write_headers(headers: &[Header], dst: &mut BytesMut) {
    for header in headers {
        let name = header.name().as_bytes();
        dst.put_u8(u8::try_from(name.len()).unwrap_or(u8::MAX));
        dst.put_slice(name);
        let value = header.value();
        dst.put_u8(value.type_byte());
        match value {
            HeaderValue::Bool(_) => {}
            HeaderValue::Byte(v) => dst.put_i8(*v),
            HeaderValue::Int16(v) => dst.put_i16(*v),
            HeaderValue::Int32(v) => dst.put_i32(*v),
            HeaderValue::Int64(v) | HeaderValue::Timestamp(v) => dst.put_i64(*v),
            HeaderValue::ByteArray(b) => {
                dst.put_u16(u16::try_from(b.len()).unwrap_or(u16::MAX));
                dst.put_slice(b);
            }
            HeaderValue::String(s) => {
                dst.put_u16(u16::try_from(s.len()).unwrap_or(u16::MAX));
                dst.put_slice(s.as_bytes());
            }
            HeaderValue::Uuid(u) => dst.put_slice(u),
        }
    }
}

/// Appends the encoded header block of `headers` (no prelude, no CRC) to `dst`.
///
/// These are the bytes whose SHA-256 goes into an event signature's string-to-sign (usually a
/// lone `:date` header). The same limits as for a whole message apply; on error `dst` is
/// unchanged.
pub fn encode_headers_into(headers: &[Header], dst: &mut BytesMut) -> Result<(), EncodeError> {
    let len = validate_headers(headers)?;
    dst.reserve(len);
    write_headers(headers, dst);
    Ok(())
}

impl Message {
    /// Encodes the message as one frame in a new buffer.
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        let mut dst = BytesMut::new();
        self.encode_into(&mut dst)?;
        Ok(dst.freeze())
    }

    /// Appends exactly one encoded frame to `dst`.
    ///
    /// Fails if a header name is empty or longer than 255 bytes, a byte-array or string value
    /// is longer than 32767 bytes, the header block is larger than 128 KiB, or the payload is
    /// larger than 16 MiB. On error `dst` is unchanged. On success the only allocation is one
    /// `reserve` of the exact frame length in `dst`.
    pub fn encode_into(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let headers_len = validate_headers(self.headers())?;
        let payload_len = self.payload().len();
        if payload_len > MAX_PAYLOAD_LEN {
            return Err(EncodeError::PayloadTooLarge {
                len: payload_len,
                max: MAX_PAYLOAD_LEN,
            });
        }
        let total = super::MIN_MESSAGE_LEN
            .saturating_add(headers_len)
            .saturating_add(payload_len);
        let (Ok(total_u32), Ok(headers_u32)) = (u32::try_from(total), u32::try_from(headers_len))
        else {
            return Err(EncodeError::FrameTooLarge { len: total });
        };

        dst.reserve(total);
        let start = dst.len();
        dst.put_u32(total_u32);
        dst.put_u32(headers_u32);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&dst[start..]);
        let prelude_crc = hasher.clone().finalize();
        dst.put_u32(prelude_crc);
        write_headers(self.headers(), dst);
        dst.put_slice(self.payload());
        // Continue the running CRC from the prelude CRC field to the end of the payload.
        hasher.update(&dst[start + PRELUDE_CRC_OFFSET..]);
        dst.put_u32(hasher.finalize());
        debug_assert_eq!(dst.len() - start, total);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_message_is_16_bytes() {
        let bytes = Message::default().encode().unwrap();
        assert_eq!(
            hex(&bytes),
            "000000100000000005c248eb7d98c8ff",
            "matches aws-c-event-stream's no-op frame"
        );
    }

    #[test]
    fn crcs_match_fresh_hashes() {
        let m = Message::new(&b"payload"[..])
            .with_header("header_name", HeaderValue::from("header value"));
        let bytes = m.encode().unwrap();
        let n = bytes.len();
        assert_eq!(n, m.encoded_len());
        let pc = u32::from_be_bytes(bytes[8..12].try_into().unwrap());
        let mc = u32::from_be_bytes(bytes[n - 4..].try_into().unwrap());
        assert_eq!(pc, crc32fast::hash(&bytes[..8]));
        assert_eq!(mc, crc32fast::hash(&bytes[..n - 4]));
    }

    #[test]
    fn appends_after_existing_bytes() {
        let mut dst = BytesMut::from(&b"xyz"[..]);
        let m = Message::new(&b"p"[..]).with_header("a", HeaderValue::Bool(true));
        m.encode_into(&mut dst).unwrap();
        assert_eq!(&dst[..3], b"xyz");
        assert_eq!(&dst[3..], &m.encode().unwrap()[..]);
    }

    #[test]
    fn refusals_leave_dst_unchanged() {
        let long_value = "v".repeat(MAX_HEADER_VALUE_LEN + 1);
        let cases: Vec<(Message, EncodeError)> = vec![
            (
                Message::new(Bytes::new())
                    .with_header("ok", HeaderValue::Bool(true))
                    .with_header("", HeaderValue::Bool(true)),
                EncodeError::HeaderNameEmpty { index: 1 },
            ),
            (
                Message::new(Bytes::new()).with_header("n".repeat(256), HeaderValue::Bool(true)),
                EncodeError::HeaderNameTooLong {
                    name: "n".repeat(256),
                    len: 256,
                    max: 255,
                },
            ),
            (
                Message::new(Bytes::new()).with_header("s", HeaderValue::String(long_value)),
                EncodeError::HeaderValueTooLong {
                    name: "s".into(),
                    len: 32768,
                    max: 32767,
                },
            ),
            (
                Message::new(Bytes::new()).with_header(
                    "b",
                    HeaderValue::ByteArray(Bytes::from(vec![0u8; MAX_HEADER_VALUE_LEN + 1])),
                ),
                EncodeError::HeaderValueTooLong {
                    name: "b".into(),
                    len: 32768,
                    max: 32767,
                },
            ),
            (
                Message::new(vec![0u8; MAX_PAYLOAD_LEN + 1]),
                EncodeError::PayloadTooLarge {
                    len: MAX_PAYLOAD_LEN + 1,
                    max: MAX_PAYLOAD_LEN,
                },
            ),
        ];
        for (m, want) in cases {
            let mut dst = BytesMut::from(&b"keep"[..]);
            assert_eq!(m.encode_into(&mut dst), Err(want));
            assert_eq!(&dst[..], b"keep");
        }
    }

    #[test]
    fn header_block_limit() {
        // Each header is 1 + 1 + 1 + 2 + 32767 = 32772 bytes; four are 131088 > 131072.
        let v = HeaderValue::ByteArray(Bytes::from(vec![7u8; MAX_HEADER_VALUE_LEN]));
        let mut m = Message::default();
        for name in ["a", "b", "c"] {
            m = m.with_header(name, v.clone());
        }
        assert!(m.encode().is_ok(), "3 * 32772 = 98316 bytes fit");
        m = m.with_header("d", v);
        let mut dst = BytesMut::new();
        assert_eq!(
            encode_headers_into(m.headers(), &mut dst),
            Err(EncodeError::HeadersTooLarge {
                len: 4 * 32772,
                max: MAX_HEADERS_LEN
            })
        );
        assert!(dst.is_empty());
    }

    #[test]
    fn date_header_alone() {
        let mut dst = BytesMut::new();
        encode_headers_into(
            &[Header::new(
                ":date",
                HeaderValue::Timestamp(123_456_789_000),
            )],
            &mut dst,
        )
        .unwrap();
        assert_eq!(hex(&dst), "053a64617465080000001cbe991a08");
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
