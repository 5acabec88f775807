#![cfg(feature = "verify")]
//! `ChainVerifier::verify_frame` allocates nothing for a frame that verifies, once its day key
//! is derived: a counting global allocator proves it (a global allocator needs a test binary
//! of its own). A refusal may allocate (it builds its diagnosis), and the counter sees that.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use bytes::{Bytes, BytesMut};
use sigv4_ws::proto::codec::{FrameDecoder, HeaderValue, Message, CHUNK_SIGNATURE, DATE};
use sigv4_ws::proto::sigv4::{
    derive_signing_key, encode_date_header, event_string_to_sign, format_amz_date, hex_lower,
    hmac_sha256,
};
use sigv4_ws::verify::{RejectionKind, Verifier};
use sigv4_ws::{Clock, ManualTime, Presigner};
use url::Url;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{allocations, Counting};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const URL: &str = "https://transcribestreaming.us-west-2.amazonaws.com:8443/stream-transcription-websocket?language-code=en-US&media-encoding=pcm&sample-rate=16000";
/// 2024-08-20T23:01:43Z
const T0: u64 = 1_724_194_903;

fn at_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

/// Signs a frame the long way (the string-to-sign built as text, the key derived afresh),
/// chaining on `prior` and advancing it.
fn reference_frame(prior: &mut String, millis: u64, payload: &[u8]) -> Message {
    let time = at_millis(millis);
    let date_header = encode_date_header(millis as i64);
    let sts = event_string_to_sign(
        time,
        "us-west-2",
        "transcribe",
        prior,
        &date_header,
        payload,
    )
    .unwrap();
    let day = format_amz_date(time).unwrap();
    let key = derive_signing_key(SECRET, &day[..8], "us-west-2", "transcribe");
    let signature = hmac_sha256(&key, sts.as_bytes());
    *prior = hex_lower(&signature);
    let frame = Message::new(Bytes::copy_from_slice(payload))
        .with_header(DATE, HeaderValue::Timestamp(millis as i64))
        .with_header(
            CHUNK_SIGNATURE,
            HeaderValue::ByteArray(Bytes::copy_from_slice(&signature)),
        )
        .encode()
        .unwrap();
    // Decoded the way the emulator does, off a receive buffer: the payload then shares the
    // buffer's reference-counted storage. (A `Bytes` made from a `Vec` allocates that
    // reference count on its first clone, which the verifier's result makes.)
    let mut buffer = BytesMut::from(&frame[..]);
    FrameDecoder::new().decode(&mut buffer).unwrap().unwrap()
}

#[test]
fn a_frame_that_verifies_allocates_nothing() {
    let clock = Clock::new(ManualTime::new(UNIX_EPOCH + Duration::from_secs(T0)));
    let credentials = Credentials::new(AKID, SECRET, None, None, "test");
    let verifier = Verifier::new(clock).with_credentials(credentials.clone());
    let presigned = Presigner::new(credentials, "us-west-2", "transcribe")
        .presign_at(
            &Url::parse(URL).unwrap(),
            UNIX_EPOCH + Duration::from_secs(T0),
        )
        .unwrap();
    let url = presigned.url();
    let upgrade = verifier
        .verify_upgrade(&url[url::Position::BeforePath..], &presigned.host_header())
        .unwrap();
    let mut chain = verifier.chain_verifier(&upgrade).unwrap();

    // 100 ms apart from 23:01:43.050: frames cross seconds (the per-second HMAC prefix is
    // rebuilt) within one UTC day; payloads of a tiny event, 100 ms of 16 kHz PCM audio and
    // a large event; then the empty end frame.
    let sizes = [5usize, 3_288, 32_088];
    let mut prior = presigned.signature().to_owned();
    let start = T0 * 1000 + 50;
    let mut frames = Vec::new();
    for i in 0..60u64 {
        let payload: Vec<u8> = (0..sizes[i as usize % 3]).map(|b| b as u8).collect();
        frames.push(reference_frame(&mut prior, start + 100 * i, &payload));
    }
    let mut wrong_prior = prior.clone();
    let end = reference_frame(&mut prior, start + 6_000, &[]);
    // Signed on a prior that is not the last signature: a mismatch.
    wrong_prior.replace_range(
        ..1,
        if wrong_prior.starts_with('0') {
            "1"
        } else {
            "0"
        },
    );
    let mismatched = reference_frame(&mut wrong_prior, start + 6_000, &[]);

    // Warm-up: the first frame derives the day's signing key (that allocates, once a day).
    let before = allocations();
    chain.verify_frame(&frames[0]).unwrap();
    assert!(
        allocations() > before,
        "the counter sees the key derivation"
    );

    let before = allocations();
    for (i, frame) in frames.iter().enumerate().skip(1) {
        let verified = chain
            .verify_frame(frame)
            .unwrap_or_else(|r| panic!("frame {i}: {r}"));
        assert_eq!(verified.index(), i as u64);
    }
    assert_eq!(
        allocations() - before,
        0,
        "allocations in {} verified frames",
        frames.len() - 1
    );

    // A refusal builds its string-to-sign and texts, and the counter sees that.
    let before = allocations();
    let refused = chain.verify_frame(&mismatched).unwrap_err();
    assert_eq!(refused.kind(), RejectionKind::SignatureMismatch);
    assert!(allocations() > before);

    // The refusal did not advance the chain; the end frame verifies without allocating.
    let before = allocations();
    assert!(chain.verify_frame(&end).unwrap().is_end());
    assert_eq!(allocations() - before, 0, "allocations in the end frame");
}
