//! Property tests for the event-stream codec: round trips, chunking, corruption and limits.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use sigv4_ws::proto::codec::{
    DecodeError, FrameDecoder, Header, HeaderValue, Limits, Message, MAX_HEADERS_LEN,
    MAX_HEADER_VALUE_LEN, MAX_PAYLOAD_LEN, MIN_MESSAGE_LEN, PRELUDE_LEN,
};

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// A header name of 1..=255 bytes: short ASCII, exactly 255 bytes, or arbitrary Unicode cut to
/// at most 255 bytes on a character boundary.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z:-]{1,24}",
        1 => "[A-Za-z0-9]{255}",
        3 => vec(any::<char>(), 1..=100).prop_map(|chars| {
            let mut s = String::new();
            for c in chars {
                if s.len() + c.len_utf8() > 255 {
                    break;
                }
                s.push(c);
            }
            s
        }),
    ]
}

fn unicode_string(max_chars: usize) -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..=max_chars).prop_map(|cs| cs.into_iter().collect())
}

/// Any of the nine value types with short variable-length values.
fn small_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        any::<bool>().prop_map(HeaderValue::Bool),
        any::<i8>().prop_map(HeaderValue::Byte),
        any::<i16>().prop_map(HeaderValue::Int16),
        any::<i32>().prop_map(HeaderValue::Int32),
        any::<i64>().prop_map(HeaderValue::Int64),
        vec(any::<u8>(), 0..64).prop_map(|v| HeaderValue::ByteArray(Bytes::from(v))),
        unicode_string(40).prop_map(HeaderValue::String),
        any::<i64>().prop_map(HeaderValue::Timestamp),
        any::<[u8; 16]>().prop_map(HeaderValue::Uuid),
    ]
}

/// Any of the nine value types, sometimes with byte-array or string values at the
/// 32767-byte limit.
fn value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        10 => small_value(),
        1 => any::<u8>().prop_map(|b| HeaderValue::ByteArray(Bytes::from(vec![b; MAX_HEADER_VALUE_LEN]))),
        1 => any::<char>().prop_map(|c| {
            let n = MAX_HEADER_VALUE_LEN / c.len_utf8();
            HeaderValue::String(std::iter::repeat_n(c, n).collect())
        }),
    ]
}

fn payload(max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => vec(any::<u8>(), 0..=max_len.min(512)),
        1 => (any::<u8>(), 0..=max_len).prop_map(|(b, n)| vec![b; n]),
    ]
}

fn build(headers: Vec<(String, HeaderValue)>, payload: Vec<u8>) -> Message {
    let mut m = Message::new(payload);
    for (n, v) in headers {
        m.push_header(Header::new(n, v));
    }
    m
}

/// A message within every encoding limit, possibly with values at the length limit and a
/// payload of up to `max_payload` bytes.
fn message(max_payload: usize) -> impl Strategy<Value = Message> {
    (vec((name(), value()), 0..8), payload(max_payload))
        .prop_map(|(h, p)| build(h, p))
        .prop_filter("header block within 128 KiB", |m| {
            m.encoded_len() - m.payload().len() - MIN_MESSAGE_LEN <= MAX_HEADERS_LEN
        })
}

/// A small message (short values, at most 6 headers), for quadratic tests.
fn small_message(max_payload: usize) -> impl Strategy<Value = Message> {
    (
        vec((name(), small_value()), 0..6),
        vec(any::<u8>(), 0..=max_payload),
    )
        .prop_map(|(h, p)| build(h, p))
}

/// Wraps an arbitrary header block and payload in a frame with correct lengths and CRCs.
fn frame_around(headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = (MIN_MESSAGE_LEN + headers.len() + payload.len()) as u32;
    let mut v = Vec::with_capacity(total as usize);
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&v);
    v.extend_from_slice(&prelude_crc.to_be_bytes());
    v.extend_from_slice(headers);
    v.extend_from_slice(payload);
    let crc = crc32fast::hash(&v);
    v.extend_from_slice(&crc.to_be_bytes());
    v
}

/// A header-shaped chunk: name length (usually right), name bytes (often not UTF-8), a type
/// byte around 0..=9, and a random number of value bytes. Concatenations of these exercise
/// every branch of the header parser behind valid CRCs.
fn header_ish() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![3 => Just(None), 1 => any::<u8>().prop_map(Some)],
        prop_oneof![3 => "[a-z]{0,6}".prop_map(String::into_bytes), 1 => vec(any::<u8>(), 0..6)],
        0u8..=11,
        prop_oneof![
            2 => vec(any::<u8>(), 0..20),
            1 => (0u16..24, vec(any::<u8>(), 0..24)).prop_map(|(len, bytes)| {
                let mut v = len.to_be_bytes().to_vec();
                v.extend(bytes);
                v
            }),
        ],
    )
        .prop_map(|(len_override, name, type_byte, value)| {
            let mut v = vec![len_override.unwrap_or(name.len() as u8)];
            v.extend(name);
            v.push(type_byte);
            v.extend(value);
            v
        })
}

fn header_block_ish() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => vec(header_ish(), 0..5).prop_map(|parts| parts.concat()),
        1 => vec(any::<u8>(), 0..64),
    ]
}

/// Arbitrary bytes biased toward things that get past the prelude check.
fn stream_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..200),
        (header_block_ish(), vec(any::<u8>(), 0..32)).prop_map(|(h, p)| frame_around(&h, &p)),
        (
            vec((header_block_ish(), vec(any::<u8>(), 0..16)), 1..4),
            vec(any::<u8>(), 0..20)
        )
            .prop_map(|(frames, tail)| {
                let mut v: Vec<u8> = frames
                    .iter()
                    .flat_map(|(h, p)| frame_around(h, p))
                    .collect();
                v.extend(tail);
                v
            }),
    ]
}

fn small_limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        Just(Limits::default()),
        (0usize..64, 0usize..64)
            .prop_map(|(p, h)| Limits::new().max_payload_len(p).max_headers_len(h)),
    ]
}

/// Feeds `bytes` to `decoder` in the given chunk sizes (cycled), collecting messages until
/// the input ends or an error occurs.
fn feed(
    decoder: &mut FrameDecoder,
    bytes: &[u8],
    chunks: &[usize],
) -> (Vec<Message>, Option<DecodeError>, BytesMut) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut sizes = chunks.iter().cycle();
    while pos < bytes.len() {
        let n = sizes.next().copied().unwrap_or(1).max(1);
        let end = (pos + n).min(bytes.len());
        buf.extend_from_slice(&bytes[pos..end]);
        pos = end;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e), buf),
            }
        }
    }
    (out, None, buf)
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// encode -> decode gives the same message, by both decoders, with `encoded_len` exact.
    #[test]
    fn round_trip(m in message(300_000)) {
        let bytes = m.encode().expect("within limits");
        prop_assert_eq!(bytes.len(), m.encoded_len());
        prop_assert_eq!(&Message::decode(&bytes).expect("decodes"), &m);
        let mut buf = BytesMut::from(&bytes[..]);
        prop_assert_eq!(FrameDecoder::new().decode(&mut buf).expect("decodes"), Some(m.clone()));
        prop_assert!(buf.is_empty());
        // encode_into appends after existing content.
        let mut dst = BytesMut::from(&b"prefix"[..]);
        m.encode_into(&mut dst).expect("within limits");
        prop_assert_eq!(&dst[..6], b"prefix");
        prop_assert_eq!(&dst[6..], &bytes[..]);
    }

    /// Message::decode never panics, and whatever it accepts re-encodes to the same bytes
    /// (the format is canonical).
    #[test]
    fn decode_never_panics(bytes in stream_bytes(), limits in small_limits()) {
        if let Ok(m) = Message::decode_with_limits(&bytes, limits) {
            prop_assert_eq!(&m.encode().expect("re-encodes")[..], &bytes[..]);
        }
        let _ = Message::decode(&bytes);
    }

    /// FrameDecoder never panics whatever the chunking, agrees with Message::decode frame by
    /// frame, and leaves the buffer untouched on error.
    #[test]
    fn frame_decoder_never_panics(
        bytes in stream_bytes(),
        chunks in vec(1usize..40, 1..8),
        limits in small_limits(),
    ) {
        let mut d = FrameDecoder::with_limits(limits);
        let (msgs, err, mut buf) = feed(&mut d, &bytes, &chunks);
        // Frames before the error/end are exactly what a whole-buffer pass yields.
        let mut whole = FrameDecoder::with_limits(limits);
        let (msgs_whole, err_whole, _) = feed(&mut whole, &bytes, &[bytes.len().max(1)]);
        prop_assert_eq!(&msgs, &msgs_whole);
        prop_assert_eq!(&err, &err_whole);
        if let Some(e) = err {
            let before = buf.clone();
            prop_assert_eq!(d.decode(&mut buf), Err(e), "same error again");
            prop_assert_eq!(buf, before, "bad bytes are not consumed");
        }
        for m in &msgs {
            let re = m.encode().expect("re-encodes");
            prop_assert_eq!(&Message::decode_with_limits(&re, limits).expect("decodes"), m);
        }
    }

    /// A valid frame split at every possible point decodes to the same message, with the first
    /// part reported as incomplete and left in the buffer.
    #[test]
    fn split_at_every_point(m in small_message(200), next in small_message(50)) {
        let bytes = m.encode().expect("within limits");
        let mut d = FrameDecoder::new();
        for at in 0..=bytes.len() {
            let mut buf = BytesMut::from(&bytes[..at]);
            if at < bytes.len() {
                prop_assert_eq!(d.decode(&mut buf), Ok(None), "split at {}", at);
                prop_assert_eq!(buf.len(), at);
                buf.extend_from_slice(&bytes[at..]);
            }
            prop_assert_eq!(d.decode(&mut buf), Ok(Some(m.clone())), "split at {}", at);
            prop_assert!(buf.is_empty());
        }
        // Two frames back to back, split anywhere.
        let mut two = bytes.to_vec();
        two.extend_from_slice(&next.encode().expect("within limits"));
        for at in 0..=two.len() {
            let (msgs, err, rest) = feed(&mut d, &two, &[at.max(1), two.len()]);
            prop_assert_eq!(err, None);
            prop_assert!(rest.is_empty());
            prop_assert_eq!(msgs, vec![m.clone(), next.clone()], "split at {}", at);
        }
    }

    /// Flipping any single bit is always detected (CRC-32 catches every single-bit error):
    /// in the prelude as a prelude checksum mismatch, elsewhere as a message checksum
    /// mismatch. Neither decoder panics or yields a message.
    #[test]
    fn single_bit_flip_rejected(m in message(2000), bit in any::<prop::sample::Index>()) {
        let mut bytes = m.encode().expect("within limits").to_vec();
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        let want = if bit / 8 < PRELUDE_LEN { "prelude" } else { "message" };
        match Message::decode(&bytes) {
            Ok(other) => {
                // Only acceptable if the flip produced another valid frame.
                prop_assert_eq!(&other.encode().expect("re-encodes")[..], &bytes[..]);
            }
            Err(e) => {
                prop_assert!(e.is_checksum(), "bit {} gave {:?}", bit, e);
                let got = if matches!(e, DecodeError::PreludeChecksum { .. }) { "prelude" } else { "message" };
                prop_assert_eq!(got, want, "bit {}", bit);
            }
        }
        let mut buf = BytesMut::from(&bytes[..]);
        match FrameDecoder::new().decode(&mut buf) {
            Ok(Some(other)) => prop_assert_eq!(&other.encode().expect("re-encodes")[..], &bytes[..]),
            Ok(None) => prop_assert!(false, "bit {}: a flip outside the prelude CRC's cover cannot make the frame look longer", bit),
            Err(e) => prop_assert!(e.is_checksum(), "bit {} gave {:?}", bit, e),
        }
    }

    /// Declared lengths are judged from the 12-byte prelude alone, exactly as the model says.
    #[test]
    fn prelude_alone_decides_lengths(
        total in prop_oneof![0u32..64, any::<u32>()],
        headers in prop_oneof![0u32..64, any::<u32>()],
        limits in small_limits(),
    ) {
        let mut prelude = Vec::new();
        prelude.extend_from_slice(&total.to_be_bytes());
        prelude.extend_from_slice(&headers.to_be_bytes());
        let crc = crc32fast::hash(&prelude);
        prelude.extend_from_slice(&crc.to_be_bytes());

        let want = if total < 16 {
            Err(DecodeError::TooShort { total_len: total })
        } else if headers > total - 16 {
            Err(DecodeError::HeadersLenInvalid { headers_len: headers, total_len: total })
        } else if headers as usize > limits.max_headers_len {
            Err(DecodeError::HeadersTooLarge { len: headers as usize, max: limits.max_headers_len })
        } else if (total - 16 - headers) as usize > limits.max_payload_len {
            Err(DecodeError::PayloadTooLarge {
                len: (total - 16 - headers) as usize,
                max: limits.max_payload_len,
            })
        } else {
            Ok(None)
        };
        let mut buf = BytesMut::from(&prelude[..]);
        prop_assert_eq!(FrameDecoder::with_limits(limits).decode(&mut buf), want);
        prop_assert_eq!(buf.len(), 12);
    }

    /// With default limits, any declared frame larger than 16 MiB + 128 KiB + 16 is refused
    /// from the prelude, before any of its body is buffered.
    #[test]
    fn oversized_refused_from_prelude(
        total in ((MAX_PAYLOAD_LEN + MAX_HEADERS_LEN + MIN_MESSAGE_LEN + 1) as u32)..=u32::MAX,
        headers_frac in 0.0f64..=1.0,
    ) {
        let headers = ((total - 16) as f64 * headers_frac) as u32;
        let mut prelude = Vec::new();
        prelude.extend_from_slice(&total.to_be_bytes());
        prelude.extend_from_slice(&headers.to_be_bytes());
        let crc = crc32fast::hash(&prelude);
        prelude.extend_from_slice(&crc.to_be_bytes());
        let mut buf = BytesMut::from(&prelude[..]);
        let r = FrameDecoder::new().decode(&mut buf);
        prop_assert!(
            matches!(r, Err(DecodeError::PayloadTooLarge { .. } | DecodeError::HeadersTooLarge { .. } | DecodeError::HeadersLenInvalid { .. })),
            "total {} headers {}: {:?}", total, headers, r
        );
    }
}

#[test]
fn largest_legal_frame_round_trips() {
    let big = HeaderValue::ByteArray(Bytes::from(vec![0xabu8; MAX_HEADER_VALUE_LEN]));
    let mut m = Message::new(vec![0x5au8; MAX_PAYLOAD_LEN]);
    // Three max-size byte-array headers (98316 bytes) plus strings up to the block limit.
    for n in ["a", "b", "c"] {
        m.push_header(Header::new(n, big.clone()));
    }
    let room = MAX_HEADERS_LEN - 3 * (5 + MAX_HEADER_VALUE_LEN);
    // One string header filling the rest exactly: 1 + 1 + 1 + 2 + len.
    m.push_header(Header::new("d", HeaderValue::String("z".repeat(room - 5))));
    let bytes = m.encode().expect("exactly at the limits");
    assert_eq!(
        bytes.len(),
        MIN_MESSAGE_LEN + MAX_HEADERS_LEN + MAX_PAYLOAD_LEN
    );
    assert_eq!(Message::decode(&bytes).expect("decodes"), m);
    // One more payload byte is refused by the encoder and by the default decoder.
    let too_big = Message::from_parts(m.headers().to_vec(), vec![0u8; MAX_PAYLOAD_LEN + 1]);
    assert!(too_big.encode().is_err());
}
