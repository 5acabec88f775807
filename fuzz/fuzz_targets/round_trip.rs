//! Structured messages (arbitrary names, values of every type, payloads): `encode` succeeds
//! exactly when the format's limits allow, and then decodes (one-shot and streaming, split
//! anywhere) to the identical message.
#![no_main]

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sigv4_ws::proto::codec::{
    encode_headers_into, EncodeError, FrameDecoder, Header, HeaderValue, Message, MAX_HEADERS_LEN,
    MAX_HEADER_NAME_LEN, MAX_HEADER_VALUE_LEN, PRELUDE_LEN,
};
use sigv4_ws_fuzz::chain::ArbValue;

#[derive(Arbitrary, Debug)]
struct Input {
    headers: Vec<(String, ArbValue)>,
    payload: Vec<u8>,
    /// Where the frame is split when it reaches the stream decoder.
    split: u16,
    /// Bytes already in the destination buffer of `encode_into`.
    prefix: Vec<u8>,
}

fn within_limits(headers: &[Header]) -> bool {
    let shapes_ok = headers.iter().all(|h| {
        let value_len = match h.value() {
            HeaderValue::ByteArray(b) => b.len(),
            HeaderValue::String(s) => s.len(),
            _ => 0,
        };
        (1..=MAX_HEADER_NAME_LEN).contains(&h.name().len()) && value_len <= MAX_HEADER_VALUE_LEN
    });
    let block: usize = headers.iter().map(Header::encoded_len).sum();
    shapes_ok && block <= MAX_HEADERS_LEN
}

fuzz_target!(|input: Input| {
    let headers: Vec<Header> = input
        .headers
        .iter()
        .map(|(n, v)| Header::new(n.clone(), v.to_value()))
        .collect();
    let msg = Message::from_parts(headers, Bytes::from(input.payload));
    let expect_ok = within_limits(msg.headers());

    let mut dst = BytesMut::from(&input.prefix[..]);
    let encoded = msg.encode_into(&mut dst);
    assert_eq!(encoded.is_ok(), expect_ok, "{encoded:?}");
    match encoded {
        Err(e) => {
            assert_eq!(&dst[..], &input.prefix[..], "a refused encode wrote bytes");
            let _ = e.to_string();
            if let EncodeError::HeaderNameEmpty { index } = e {
                assert!(msg.headers()[index].name().is_empty());
            }
        }
        Ok(()) => {
            assert_eq!(&dst[..input.prefix.len()], &input.prefix[..]);
            let frame = &dst[input.prefix.len()..];
            assert_eq!(frame.len(), msg.encoded_len());
            assert_eq!(Message::decode(frame).as_ref(), Ok(&msg));

            let mut block = BytesMut::new();
            encode_headers_into(msg.headers(), &mut block).expect("the headers encoded above");
            assert_eq!(&block[..], &frame[PRELUDE_LEN..PRELUDE_LEN + block.len()]);

            // Streaming, split anywhere, with the next frame's start behind it.
            let at = usize::from(input.split) % (frame.len() + 1);
            let mut decoder = FrameDecoder::new();
            let mut buf = BytesMut::from(&frame[..at]);
            if at < frame.len() {
                assert_eq!(decoder.decode(&mut buf), Ok(None));
                buf.extend_from_slice(&frame[at..]);
            }
            let next = &frame[..frame.len().min(7)];
            buf.extend_from_slice(next);
            let got = decoder.decode(&mut buf).expect("a whole valid frame");
            assert_eq!(&buf[..], next);
            assert_eq!(got.as_ref(), Some(&msg));

            sigv4_ws_fuzz::codec::check_decode(frame);
        }
    }
});
