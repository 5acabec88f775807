//! Decoder invariants, frame builders and a reference header parser.

use bytes::{Bytes, BytesMut};
use sigv4_ws::proto::codec::{
    DecodeError, EncodeError, FrameDecoder, Header, HeaderValue, Limits, Message, MAX_HEADERS_LEN,
    MAX_HEADER_VALUE_LEN, MIN_MESSAGE_LEN, PRELUDE_LEN,
};

use crate::Rng;

/// A frame with correct lengths and CRCs around an arbitrary header block and payload.
pub fn frame_with_crcs(headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = MIN_MESSAGE_LEN + headers.len() + payload.len();
    let mut v = Vec::with_capacity(total);
    v.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    v.extend_from_slice(
        &u32::try_from(headers.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    let prelude_crc = crc32fast::hash(&v);
    v.extend_from_slice(&prelude_crc.to_be_bytes());
    v.extend_from_slice(headers);
    v.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&v);
    v.extend_from_slice(&message_crc.to_be_bytes());
    v
}

/// Rewrites the total-length field to the buffer's length (when it is a possible frame) and
/// recomputes both CRCs, leaving the header-length field as it is.
pub fn fix_lengths_and_crcs(frame: &mut [u8]) {
    if frame.len() < MIN_MESSAGE_LEN {
        return;
    }
    if let Ok(total) = u32::try_from(frame.len()) {
        frame[..4].copy_from_slice(&total.to_be_bytes());
    }
    fix_crcs(frame);
}

/// Recomputes the prelude CRC (bytes 8..12) and the message CRC (the last 4 bytes).
pub fn fix_crcs(frame: &mut [u8]) {
    if frame.len() >= PRELUDE_LEN {
        let crc = crc32fast::hash(&frame[..8]);
        frame[8..12].copy_from_slice(&crc.to_be_bytes());
    }
    if frame.len() >= MIN_MESSAGE_LEN {
        let end = frame.len() - 4;
        let crc = crc32fast::hash(&frame[..end]);
        frame[end..].copy_from_slice(&crc.to_be_bytes());
    }
}

/// An independent, index-based parser of a header block (the format as documented by AWS):
/// `None` for any block the format does not allow.
pub fn reference_headers(block: &[u8]) -> Option<Vec<Header>> {
    let mut out = Vec::new();
    let mut i = 0usize;
    let take = |i: &mut usize, n: usize| -> Option<&[u8]> {
        let end = i.checked_add(n)?;
        let slice = block.get(*i..end)?;
        *i = end;
        Some(slice)
    };
    while i < block.len() {
        let name_len = usize::from(take(&mut i, 1)?[0]);
        if name_len == 0 {
            return None;
        }
        let name = std::str::from_utf8(take(&mut i, name_len)?)
            .ok()?
            .to_owned();
        let type_byte = take(&mut i, 1)?[0];
        let value = match type_byte {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(take(&mut i, 1)?[0] as i8),
            3 => HeaderValue::Int16(i16::from_be_bytes(take(&mut i, 2)?.try_into().ok()?)),
            4 => HeaderValue::Int32(i32::from_be_bytes(take(&mut i, 4)?.try_into().ok()?)),
            5 => HeaderValue::Int64(i64::from_be_bytes(take(&mut i, 8)?.try_into().ok()?)),
            6 | 7 => {
                let len = u16::from_be_bytes(take(&mut i, 2)?.try_into().ok()?);
                let bytes = take(&mut i, usize::from(len))?;
                if type_byte == 6 {
                    HeaderValue::ByteArray(Bytes::copy_from_slice(bytes))
                } else {
                    HeaderValue::String(std::str::from_utf8(bytes).ok()?.to_owned())
                }
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(take(&mut i, 8)?.try_into().ok()?)),
            9 => HeaderValue::Uuid(take(&mut i, 16)?.try_into().ok()?),
            _ => return None,
        };
        out.push(Header::new(name, value));
    }
    Some(out)
}

/// The longest byte-array or string value among `m`'s headers.
fn longest_value(m: &Message) -> usize {
    m.headers()
        .iter()
        .map(|h| match h.value() {
            HeaderValue::ByteArray(b) => b.len(),
            HeaderValue::String(s) => s.len(),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// A decoded message re-encodes to exactly the bytes it was decoded from.
///
/// One documented exception: the decoder accepts byte-array and string values of up to 65535
/// bytes (what the 16-bit length prefix can say), the encoder refuses those over 32767 (the
/// AWS implementations' limit). Such a message must then be refused with `HeaderValueTooLong`.
pub fn assert_reencodes(m: &Message, wire: &[u8]) {
    assert_eq!(
        m.encoded_len(),
        wire.len(),
        "encoded_len of a decoded message"
    );
    match m.encode() {
        Ok(bytes) => assert_eq!(&bytes[..], wire, "decoded message re-encodes differently"),
        Err(EncodeError::HeaderValueTooLong { len, .. }) => {
            assert!(len > MAX_HEADER_VALUE_LEN && len <= usize::from(u16::MAX));
            assert_eq!(len, longest_value(m));
        }
        Err(e) => panic!("decoded message does not re-encode: {e}"),
    }
}

/// What a [`FrameDecoder`] made of a byte stream.
#[derive(Debug, PartialEq, Eq)]
pub struct StreamOutcome {
    /// The messages taken off the stream, in order.
    pub messages: Vec<Message>,
    /// The error that stopped the stream, if any.
    pub error: Option<DecodeError>,
    /// How many bytes the messages took.
    pub consumed: usize,
}

/// Feeds `data` to a fresh decoder in chunks of the given sizes (the rest in one go once the
/// sizes run out), decoding after every chunk until it needs more bytes or fails.
pub fn decode_stream(
    data: &[u8],
    decoder: &mut FrameDecoder,
    mut chunk: impl FnMut() -> usize,
) -> StreamOutcome {
    let mut buf = BytesMut::new();
    let mut fed = 0usize;
    let mut consumed = 0usize;
    let mut messages = Vec::new();
    loop {
        let n = chunk().min(data.len() - fed);
        buf.extend_from_slice(&data[fed..fed + n]);
        fed += n;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(m)) => {
                    let len = m.encoded_len();
                    assert!(len >= MIN_MESSAGE_LEN && consumed + len <= fed);
                    let wire = &data[consumed..consumed + len];
                    assert_reencodes(&m, wire);
                    consumed += len;
                    assert_eq!(
                        &buf[..],
                        &data[consumed..fed],
                        "decoder took more than one frame"
                    );
                    messages.push(m);
                }
                Ok(None) => {
                    assert_eq!(
                        &buf[..],
                        &data[consumed..fed],
                        "Ok(None) must not touch the buffer"
                    );
                    break;
                }
                Err(e) => {
                    assert_eq!(
                        &buf[..],
                        &data[consumed..fed],
                        "an error must not touch the buffer"
                    );
                    assert_eq!(decoder.decode(&mut buf), Err(e.clone()), "errors repeat");
                    let _ = e.to_string();
                    return StreamOutcome {
                        messages,
                        error: Some(e),
                        consumed,
                    };
                }
            }
        }
        if fed == data.len() {
            return StreamOutcome {
                messages,
                error: None,
                consumed,
            };
        }
    }
}

/// Chunk sizes drawn from the input: mostly small (the prelude arriving byte by byte), some
/// medium, some zero.
fn chunker(data: &[u8]) -> impl FnMut() -> usize {
    let mut rng = Rng::from_bytes(data);
    move || match rng.below(8) {
        0 => 0,
        1..=3 => 1 + rng.below(4),
        4..=6 => 1 + rng.below(40),
        _ => 1 + rng.below(1024),
    }
}

/// Every decoder invariant on one input:
///
/// * `Message::decode` never panics, and a decoded message re-encodes to the same bytes;
/// * a `FrameDecoder` fed the input whole and fed it in arbitrary chunks yields the same
///   messages and the same final error, leaves the buffer untouched on `Ok(None)` and on
///   errors, and repeats its error;
/// * `Message::decode` agrees with the stream decoder;
/// * tighter [`Limits`] only ever add `PayloadTooLarge` / `HeadersTooLarge`.
pub fn check_decode(data: &[u8]) {
    let one = Message::decode(data);
    if let Ok(m) = &one {
        assert_reencodes(m, data);
    }
    if let Err(e) = &one {
        let _ = e.to_string();
    }

    let whole = decode_stream(data, &mut FrameDecoder::new(), || usize::MAX);
    let chunked = decode_stream(data, &mut FrameDecoder::new(), chunker(data));
    assert_eq!(whole, chunked, "chunking changed what the decoder produced");

    match &one {
        Ok(m) => {
            assert_eq!(whole.messages, std::slice::from_ref(m));
            assert_eq!(whole.error, None);
            assert_eq!(whole.consumed, data.len());
        }
        Err(DecodeError::PreludeTruncated { len }) => {
            assert_eq!(*len, data.len());
            assert!(data.len() < PRELUDE_LEN);
            assert_eq!((whole.messages.len(), &whole.error), (0, &None));
        }
        Err(DecodeError::FrameLenMismatch { declared, actual }) => {
            assert_eq!(*actual, data.len());
            let declared = *declared as usize;
            assert_ne!(declared, data.len());
            if declared > data.len() {
                // The stream decoder is still waiting for the rest of the frame.
                assert_eq!((whole.messages.len(), &whole.error), (0, &None));
            } else {
                // The stream decoder sees the first frame and then more bytes.
                match Message::decode(&data[..declared]) {
                    Ok(first) => assert_eq!(whole.messages.first(), Some(&first)),
                    Err(e) => {
                        assert!(whole.messages.is_empty());
                        assert_eq!(whole.error, Some(e));
                    }
                }
            }
        }
        Err(e) => {
            assert!(
                whole.messages.is_empty(),
                "decode failed but the stream decoded a frame"
            );
            assert_eq!(
                whole.error.as_ref(),
                Some(e),
                "decode and FrameDecoder disagree"
            );
        }
    }

    // Tighter limits, drawn from the input.
    let mut rng = Rng::from_bytes(data);
    let limits = Limits::new()
        .max_payload_len(rng.below(data.len() + 2))
        .max_headers_len(rng.below(data.len() + 2));
    let limited = Message::decode_with_limits(data, limits);
    match (&limited, &one) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Ok(_), Err(e)) => panic!("tighter limits accepted what the default refused: {e}"),
        (Err(DecodeError::PayloadTooLarge { len, max }), Ok(m)) => {
            assert_eq!((*len, *max), (m.payload().len(), limits.max_payload_len));
            assert!(len > max);
        }
        (Err(DecodeError::HeadersTooLarge { len, max }), Ok(m)) => {
            assert_eq!(
                (*len, *max),
                (m.headers_encoded_len(), limits.max_headers_len)
            );
            assert!(len > max);
        }
        (Err(e), Ok(_)) => panic!("tighter limits gave an unrelated error: {e}"),
        (Err(_), Err(_)) => {}
    }
    let limited_stream = decode_stream(data, &mut FrameDecoder::with_limits(limits), chunker(data));
    assert!(limited_stream.messages.len() <= whole.messages.len());
    assert_eq!(
        limited_stream.messages[..],
        whole.messages[..limited_stream.messages.len()],
        "tighter limits changed a message"
    );
}

/// Whether `e` can only come from a frame whose lengths or CRCs are wrong.
pub fn is_framing_error(e: &DecodeError) -> bool {
    matches!(
        e,
        DecodeError::PreludeChecksum { .. }
            | DecodeError::MessageChecksum { .. }
            | DecodeError::TooShort { .. }
            | DecodeError::HeadersLenInvalid { .. }
            | DecodeError::FrameLenMismatch { .. }
            | DecodeError::PreludeTruncated { .. }
    )
}

/// The decoder on a frame with correct CRCs around `headers` and `payload`: it must get to the
/// header block, agree with [`reference_headers`], and hand back the payload unchanged.
pub fn check_crc_corrected(headers: &[u8], payload: &[u8]) {
    let frame = frame_with_crcs(headers, payload);
    check_decode(&frame);
    if headers.len() > MAX_HEADERS_LEN {
        assert!(matches!(
            Message::decode(&frame),
            Err(DecodeError::HeadersTooLarge { .. })
        ));
        return;
    }
    let reference = reference_headers(headers);
    match (Message::decode(&frame), reference) {
        (Ok(m), Some(expected)) => {
            assert_eq!(
                m.headers(),
                &expected[..],
                "decoder and reference parser disagree"
            );
            assert_eq!(m.payload().as_ref(), payload);
        }
        (Ok(m), None) => panic!("decoder accepted a header block the reference refuses: {m:?}"),
        (Err(e), Some(expected)) => {
            panic!("decoder refused ({e}) a header block the reference accepts: {expected:?}")
        }
        (Err(e), None) => assert!(!is_framing_error(&e), "correct CRCs, yet {e}"),
    }
}
