#![cfg(feature = "verify")]
//! The server-side verifier against our own signers, the public vectors, and every kind of
//! tampering, with AWS's exact texts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use bytes::Bytes;
use sigv4_ws::proto::codec::{HeaderValue, Message, CHUNK_SIGNATURE, DATE};
use sigv4_ws::proto::sigv4::{
    decode_hex, derive_signing_key, encode_date_header, event_string_to_sign, format_amz_date,
    hex_lower, hmac_sha256,
};
use sigv4_ws::verify::{ChainVerifier, RejectionKind, Service, VerifiedUpgrade, Verifier};
use sigv4_ws::{Clock, EventSigner, ManualTime, PresignedUrl, Presigner};
use url::Url;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLETOKEN/with+slash=";
/// 2024-08-20T23:01:43Z
const T0: u64 = 1_724_194_903;

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

const TRANSCRIBE_URL: &str = "https://transcribestreaming.us-west-2.amazonaws.com:8443/stream-transcription-websocket?language-code=en-US&media-encoding=pcm&sample-rate=16000";
const LIVENESS_URL: &str = "wss://streaming-rekognition.us-east-1.amazonaws.com/start-face-liveness-session-websocket?session-id=9ab8a3a4-0c7e-4f2e-9d1c-2b0a1f0c7e11&video-width=640&video-height=480&challenge-versions=FaceMovementAndLightChallenge_1.0.0";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn creds(token: Option<&str>) -> Credentials {
    Credentials::new(AKID, SECRET, token.map(str::to_owned), None, "test")
}

fn manual_clock(secs: u64) -> (ManualTime, Clock) {
    let time = ManualTime::new(at(secs));
    (time.clone(), Clock::new(time))
}

fn verifier_at(secs: u64, token: Option<&str>) -> Verifier {
    Verifier::new(manual_clock(secs).1).with_credentials(creds(token))
}

fn target(url: &Url) -> &str {
    &url[url::Position::BeforePath..]
}

fn presign(
    url: &str,
    region: &str,
    service: &str,
    token: Option<&str>,
    when: SystemTime,
) -> PresignedUrl {
    Presigner::new(creds(token), region, service)
        .presign_at(&Url::parse(url).unwrap(), when)
        .unwrap()
}

fn transcribe_upgrade(verifier: &Verifier, when: SystemTime) -> (PresignedUrl, VerifiedUpgrade) {
    let signed = presign(TRANSCRIBE_URL, "us-west-2", "transcribe", None, when);
    let upgrade = verifier
        .verify_upgrade(target(signed.url()), &signed.host_header())
        .unwrap();
    (signed, upgrade)
}

fn inner_audio(bytes: &[u8]) -> Vec<u8> {
    Message::new(Bytes::copy_from_slice(bytes))
        .with_header(":message-type", HeaderValue::from("event"))
        .with_header(":event-type", HeaderValue::from("AudioEvent"))
        .with_header(
            ":content-type",
            HeaderValue::from("application/octet-stream"),
        )
        .encode()
        .unwrap()
        .to_vec()
}

fn decode(frame: &[u8]) -> Message {
    Message::decode(frame).unwrap()
}

/// Signs `n` audio frames one second apart starting at `start`, then the end frame.
fn signed_stream(
    signed: &PresignedUrl,
    region: &str,
    service: &str,
    start: u64,
    n: usize,
) -> Vec<Message> {
    let (time, clock) = manual_clock(start);
    let mut signer = EventSigner::new(creds(None), region, service, signed.signature(), clock);
    let mut frames = Vec::new();
    for i in 0..n {
        frames.push(decode(&signer.sign(&inner_audio(&[i as u8; 8])).unwrap()));
        time.advance(Duration::from_millis(1000 + 37 * i as u64));
    }
    frames.push(decode(&signer.finish().unwrap()));
    frames
}

// ---------------------------------------------------------------------------------------------
// Accepting what our signers and the public vectors produce.

#[test]
fn presigned_urls_of_both_services_verify_with_and_without_token_on_any_port() {
    let cases = [
        (TRANSCRIBE_URL.to_owned(), "us-west-2", "transcribe"),
        (LIVENESS_URL.to_owned(), "us-east-1", "rekognition"),
        (
            LIVENESS_URL.replace(".com/", ".com:9443/"),
            "eu-west-1",
            "rekognition",
        ),
        (
            TRANSCRIBE_URL.replace(":8443", ""),
            "ap-southeast-2",
            "transcribe",
        ),
    ];
    for (url, region, service) in cases {
        for token in [None, Some(TOKEN)] {
            for user_agent in [
                None,
                Some("aws-sdk-js/3.605.0 ua/2.1 os/linux lang/js md/browser#Chrome_126"),
            ] {
                let mut url = Url::parse(&url).unwrap();
                if let Some(ua) = user_agent {
                    url.query_pairs_mut().append_pair("user-agent", ua);
                }
                let when = at(T0) + Duration::from_millis(250);
                let signed = Presigner::new(creds(token), region, service)
                    .presign_at(&url, when)
                    .unwrap();
                let verifier = verifier_at(T0 + 20, token);
                let host = signed.host_header();
                let upgrade = verifier
                    .verify_upgrade(target(signed.url()), &host)
                    .unwrap_or_else(|r| panic!("{url} token={token:?}: {r}\n{}", r.diagnosis()));
                assert_eq!(upgrade.access_key_id(), AKID);
                assert_eq!(upgrade.region(), region);
                assert_eq!(upgrade.service(), service);
                assert_eq!(upgrade.seed_signature(), signed.signature());
                assert_eq!(upgrade.signed_at(), at(T0));
                assert_eq!(upgrade.expires(), Duration::from_secs(60));
                assert_eq!(upgrade.path(), url.path());
                assert_eq!(upgrade.host(), host);
                assert_eq!(upgrade.has_session_token(), token.is_some());
                assert_eq!(upgrade.param("user-agent"), user_agent);
                assert!(upgrade
                    .params()
                    .iter()
                    .all(|(k, _)| !k.starts_with("X-Amz-")));
                let shown = format!("{upgrade:?}");
                assert!(!shown.contains(signed.signature()), "{shown}");
                assert!(!shown.contains(TOKEN) && !shown.contains(SECRET), "{shown}");
            }
        }
    }
}

#[test]
fn the_protocol_md_2_4_vector_verifies_in_any_parameter_order() {
    let seed = "3bda071a1cf6a5d4c3a3a6a572bc5d6b685c567428447c32ecbd5a08f6619b94";
    let params = [
        "language-code=en-US",
        "X-Amz-Expires=60",
        "media-encoding=pcm",
        "X-Amz-Credential=ANOTREAL%2F20240820%2Fus-west-2%2Ftranscribe%2Faws4_request",
        "sample-rate=16000",
        "X-Amz-Date=20240820T230143Z",
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "X-Amz-Security-Token=notarealsessiontoken",
        "X-Amz-SignedHeaders=host",
    ];
    let creds = Credentials::new(
        "ANOTREAL",
        "notrealrnrELgWzOk3IfjzDKtFBhDby",
        Some("notarealsessiontoken".into()),
        None,
        "vector",
    );
    let verifier = Verifier::new(manual_clock(T0 + 1).1).with_credentials(creds);
    let host = "transcribestreaming.us-west-2.amazonaws.com:8443";
    for rotation in [0, 3, 7] {
        let mut order = params.to_vec();
        order.rotate_left(rotation);
        let query = format!("{}&X-Amz-Signature={seed}", order.join("&"));
        let upgrade = verifier
            .verify_upgrade(&format!("/stream-transcription-websocket?{query}"), host)
            .unwrap_or_else(|r| panic!("{r}\n{}", r.diagnosis()));
        assert_eq!(upgrade.seed_signature(), seed);
        assert_eq!(upgrade.service_kind(), Some(Service::Transcribe));
        assert_eq!(upgrade.param("sample-rate"), Some("16000"));
    }
    // One character of the vector's signature changed: refused.
    let bad = format!(
        "{}&X-Amz-Signature=3bda071a1cf6a5d4c3a3a6a572bc5d6b685c567428447c32ecbd5a08f6619b95",
        params.join("&")
    );
    let refused = verifier
        .verify_upgrade(&format!("/stream-transcription-websocket?{bad}"), host)
        .unwrap_err();
    assert_eq!(refused.kind(), RejectionKind::SignatureMismatch);
}

const INNER: &str = "0000006c000000585c509ce30d3a6d6573736167652d747970650700056576656e740b3a6576656e742d7479706507000a417564696f4576656e740d3a636f6e74656e742d747970650700186170706c69636174696f6e2f6f637465742d73747265616d0001020371e2c8d0";

fn vector_chain(now_millis: u64) -> ChainVerifier {
    let creds = Credentials::new(
        "ANOTREAL",
        "notrealrnrELgWzOk3IfjzDKtFBhDby",
        Some("notarealsessiontoken".into()),
        None,
        "vector",
    );
    let time = ManualTime::new(UNIX_EPOCH + Duration::from_millis(now_millis));
    let verifier = Verifier::new(Clock::new(time)).with_credentials(creds);
    let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ANOTREAL%2F20240820%2Fus-west-2%2Ftranscribe%2Faws4_request&X-Amz-Date=20240820T230143Z&X-Amz-Expires=60&X-Amz-Security-Token=notarealsessiontoken&X-Amz-SignedHeaders=host&language-code=en-US&media-encoding=pcm&sample-rate=16000&X-Amz-Signature=3bda071a1cf6a5d4c3a3a6a572bc5d6b685c567428447c32ecbd5a08f6619b94";
    let upgrade = verifier
        .verify_upgrade(
            &format!("/stream-transcription-websocket?{query}"),
            "transcribestreaming.us-west-2.amazonaws.com:8443",
        )
        .unwrap();
    verifier.chain_verifier(&upgrade).unwrap()
}

fn vector_frames() -> (Message, Message) {
    let mut first = decode_hex("000000bf0000004318605086053a646174650800000191720659f7103a6368756e6b2d7369676e617475726506002042a0aafa1dc0e13966b12b2013ce404a8d292ba15444794525e7542a914e861b").unwrap();
    first.extend(decode_hex(INNER).unwrap());
    first.extend(decode_hex("c224870f").unwrap());
    let end = decode_hex("0000005300000043f5447a58053a64617465080000019172065ba8103a6368756e6b2d7369676e6174757265060020a64c7320d6bd4d4fff788e81fbe9da41828c4fb6b31cc536af489c6e4c5fe395b47e65a8").unwrap();
    (decode(&first), decode(&end))
}

#[test]
fn the_protocol_md_3_9b_frames_verify_and_nothing_follows_the_end_frame() {
    let mut chain = vector_chain(1_724_194_905_100);
    let (first, end) = vector_frames();
    let event = chain.verify_frame(&first).unwrap();
    assert_eq!(
        event.payload().as_ref(),
        decode_hex(INNER).unwrap().as_slice()
    );
    assert_eq!(event.date_millis(), 1_724_194_904_567);
    assert!(!event.is_end());
    assert_eq!(event.index(), 0);
    assert_eq!(
        event.inner_message().unwrap().payload().as_ref(),
        &[0, 1, 2, 3]
    );
    let last = chain.verify_frame(&end).unwrap();
    assert!(last.is_end());
    assert!(last.payload().is_empty());
    assert!(chain.is_ended());
    assert_eq!(chain.frames_verified(), 2);

    let refused = chain.verify_frame(&first).unwrap_err();
    assert_eq!(refused.kind(), RejectionKind::ChainEnded);
    assert_eq!(refused.exception_type(), "BadRequestException");
}

#[test]
fn every_frame_our_event_signer_produces_verifies_across_utc_midnight() {
    // Signed at 23:59:55; frames cross into the next UTC day, changing the scope date.
    let start = 1_724_198_395;
    let verifier = verifier_at(start, None);
    for (url, region, service) in [
        (TRANSCRIBE_URL, "us-west-2", "transcribe"),
        (LIVENESS_URL, "us-east-1", "rekognition"),
    ] {
        let signed = presign(url, region, service, None, at(start));
        let upgrade = verifier
            .verify_upgrade(target(signed.url()), &signed.host_header())
            .unwrap();
        let frames = signed_stream(&signed, region, service, start, 12);
        // The verifier's clock keeps up with the frames.
        let (time, clock) = manual_clock(start);
        let mut chain = ChainVerifier::new(&upgrade, creds(None), clock);
        for (i, frame) in frames.iter().enumerate() {
            let event = chain
                .verify_frame(frame)
                .unwrap_or_else(|r| panic!("frame {i}: {r}\n{}", r.diagnosis()));
            assert_eq!(event.index(), i as u64);
            assert_eq!(event.is_end(), i == frames.len() - 1);
            assert_eq!(
                event.date_millis(),
                frame.header(DATE).unwrap().as_timestamp_millis().unwrap()
            );
            time.advance(Duration::from_secs(1));
        }
        assert!(chain.is_ended());
    }
}

/// Signs a frame the long way, chaining on `prior` and advancing it: the string-to-sign built
/// as text for the scope of `scope_time` (normally the frame's own `:date`, `millis`), the
/// key derived afresh for that day. Returns the frame and its string-to-sign.
fn reference_frame(
    prior: &mut String,
    scope_time: SystemTime,
    millis: i64,
    payload: &[u8],
) -> (Message, String) {
    let sts = event_string_to_sign(
        scope_time,
        "us-west-2",
        "transcribe",
        prior,
        &encode_date_header(millis),
        payload,
    )
    .unwrap();
    let day = format_amz_date(scope_time).unwrap();
    let key = derive_signing_key(SECRET, &day[..8], "us-west-2", "transcribe");
    let signature = hmac_sha256(&key, sts.as_bytes());
    *prior = hex_lower(&signature);
    let frame = Message::new(Bytes::copy_from_slice(payload))
        .with_header(DATE, HeaderValue::Timestamp(millis))
        .with_header(
            CHUNK_SIGNATURE,
            HeaderValue::ByteArray(Bytes::copy_from_slice(&signature)),
        );
    (frame, sts)
}

fn at_millis(millis: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis as u64)
}

#[test]
fn frames_going_back_and_forth_across_utc_midnight_switch_day_keys_both_ways() {
    // 2024-08-21T00:00:00Z. A client's `:date`s may step back a little (its clock was
    // corrected), so the verifier's cached day key must follow the frame, not only move on.
    let midnight: i64 = 1_724_198_400_000;
    let verifier = verifier_at(1_724_198_399, None);
    let (signed, upgrade) = transcribe_upgrade(&verifier, at(1_724_198_399));
    let (_, clock) = manual_clock(1_724_198_399);
    let mut chain = ChainVerifier::new(&upgrade, creds(None), clock);
    let mut prior = signed.signature().to_owned();
    for (i, offset) in [-900i64, -100, 0, 100, -50, 999, 1_500, -1, 2_000]
        .into_iter()
        .enumerate()
    {
        let millis = midnight + offset;
        let payload = inner_audio(&[i as u8; 8]);
        let (frame, _) = reference_frame(&mut prior, at_millis(millis), millis, &payload);
        chain
            .verify_frame(&frame)
            .unwrap_or_else(|r| panic!("frame {i} at {offset} ms: {r}\n{}", r.diagnosis()));
    }

    // After midnight, a frame signed with the day before's key and scope is refused: the
    // diagnosis shows the string-to-sign of the frame's own day, prior signature masked.
    let millis = midnight + 2_100;
    let payload = inner_audio(b"stale");
    let (stale, _) = reference_frame(
        &mut prior.clone(),
        at_millis(midnight - 1_000),
        millis,
        &payload,
    );
    let refused = chain.verify_frame(&stale).unwrap_err();
    assert_eq!(refused.kind(), RejectionKind::SignatureMismatch);
    let (good, expected) = reference_frame(&mut prior, at_millis(millis), millis, &payload);
    // The expected diagnosis: the string-to-sign with its fourth line (the prior signature)
    // hidden.
    let mut masked: Vec<&str> = expected.split('\n').collect();
    masked[3] = "*** (prior signature)";
    assert_eq!(
        refused.diagnosis().expected_string_to_sign(),
        Some(masked.join("\n").as_str())
    );
    assert!(masked[2].starts_with("20240821/"), "{masked:?}");
    // The refused frame did not advance the chain.
    assert_eq!(chain.verify_frame(&good).unwrap().index(), 9);
}

// ---------------------------------------------------------------------------------------------
// Frame tampering.

fn fresh_chain() -> (ChainVerifier, Vec<Message>) {
    let verifier = verifier_at(T0, None);
    let (signed, upgrade) = transcribe_upgrade(&verifier, at(T0));
    let frames = signed_stream(&signed, "us-west-2", "transcribe", T0, 4);
    (verifier.chain_verifier(&upgrade).unwrap(), frames)
}

fn rebuilt(
    frame: &Message,
    edit: impl FnOnce(&mut Vec<(String, HeaderValue)>, &mut Vec<u8>),
) -> Message {
    let mut headers: Vec<(String, HeaderValue)> = frame
        .headers()
        .iter()
        .map(|h| (h.name().to_owned(), h.value().clone()))
        .collect();
    let mut payload = frame.payload().to_vec();
    edit(&mut headers, &mut payload);
    let mut out = Message::new(payload);
    for (name, value) in headers {
        out = out.with_header(name, value);
    }
    // Through the wire format, so the CRCs are valid for the tampered content.
    decode(&out.encode().unwrap())
}

fn assert_mismatch(result: Result<sigv4_ws::verify::VerifiedEvent, sigv4_ws::verify::Rejection>) {
    let refused = result.unwrap_err();
    assert_eq!(refused.kind(), RejectionKind::SignatureMismatch);
    assert_eq!(refused.message(), MISMATCH);
    assert_eq!(refused.exception_type(), "InvalidSignatureException");
    assert_eq!(refused.http_status(), 403);
}

#[test]
fn one_flipped_payload_bit_is_a_mismatch() {
    let (mut chain, frames) = fresh_chain();
    let tampered = rebuilt(&frames[0], |_, payload| {
        let last = payload.len() - 5;
        payload[last] ^= 0x01;
    });
    assert_mismatch(chain.verify_frame(&tampered));
    // A refused frame does not advance the chain: the genuine one still verifies.
    chain.verify_frame(&frames[0]).unwrap();
}

#[test]
fn one_flipped_date_bit_is_a_mismatch() {
    let (mut chain, frames) = fresh_chain();
    let tampered = rebuilt(&frames[0], |headers, _| {
        for (name, value) in headers.iter_mut() {
            if name == DATE {
                if let HeaderValue::Timestamp(ms) = value {
                    *ms ^= 1;
                }
            }
        }
    });
    assert_mismatch(chain.verify_frame(&tampered));
}

#[test]
fn one_flipped_signature_bit_is_a_mismatch() {
    let (mut chain, frames) = fresh_chain();
    let tampered = rebuilt(&frames[1], |_, _| {});
    chain.verify_frame(&frames[0]).unwrap();
    let tampered = rebuilt(&tampered, |headers, _| {
        for (name, value) in headers.iter_mut() {
            if name == CHUNK_SIGNATURE {
                let mut sig = value.as_bytes().unwrap().to_vec();
                sig[31] ^= 0x80;
                *value = HeaderValue::ByteArray(sig.into());
            }
        }
    });
    assert_mismatch(chain.verify_frame(&tampered));
}

#[test]
fn reordered_frames_break_the_chain() {
    let (mut chain, frames) = fresh_chain();
    chain.verify_frame(&frames[0]).unwrap();
    assert_mismatch(chain.verify_frame(&frames[2]));
    // Nor does the frame after that fit: the chain is broken for good.
    assert_mismatch(chain.verify_frame(&frames[3]));
}

#[test]
fn a_dropped_frame_breaks_the_chain() {
    let (mut chain, frames) = fresh_chain();
    chain.verify_frame(&frames[0]).unwrap();
    chain.verify_frame(&frames[1]).unwrap();
    // frames[2] never arrives.
    assert_mismatch(chain.verify_frame(&frames[3]));
}

#[test]
fn the_first_frame_must_chain_on_this_connections_url() {
    let verifier = verifier_at(T0, None);
    let (_, upgrade) = transcribe_upgrade(&verifier, at(T0));
    // Frames signed on another URL's signature.
    let other = presign(TRANSCRIBE_URL, "us-west-2", "transcribe", None, at(T0 + 1));
    let frames = signed_stream(&other, "us-west-2", "transcribe", T0, 1);
    let mut chain = verifier.chain_verifier(&upgrade).unwrap();
    assert_mismatch(chain.verify_frame(&frames[0]));
}

#[test]
fn frames_signed_with_a_wrong_secret_are_refused() {
    let verifier = verifier_at(T0, None);
    let (signed, upgrade) = transcribe_upgrade(&verifier, at(T0));
    let wrong = Credentials::new(AKID, "not-the-secret", None, None, "test");
    let mut signer = EventSigner::new(
        wrong,
        "us-west-2",
        "transcribe",
        signed.signature(),
        manual_clock(T0).1,
    );
    let frame = decode(&signer.sign(&inner_audio(b"abc")).unwrap());
    let mut chain = verifier.chain_verifier(&upgrade).unwrap();
    let refused = chain.verify_frame(&frame).unwrap_err();
    assert_eq!(refused.kind(), RejectionKind::SignatureMismatch);
    let shown = format!("{refused} {refused:?} {}", refused.diagnosis());
    assert!(
        !shown.contains(SECRET) && !shown.contains("not-the-secret"),
        "{shown}"
    );
    assert!(
        !shown.contains(signed.signature()),
        "the seed (prior) signature is masked: {shown}"
    );
    let sts = refused.diagnosis().expected_string_to_sign().unwrap();
    assert!(sts.starts_with("AWS4-HMAC-SHA256-PAYLOAD\n20240820T230143Z\n20240820/us-west-2/transcribe/aws4_request\n***"), "{sts}");
}

#[test]
fn frame_dates_outside_the_window_get_aws_texts_both_ways() {
    let verifier = verifier_at(T0, None);
    let (signed, upgrade) = transcribe_upgrade(&verifier, at(T0));
    for (offset, kind, text, skew) in [
        (
            3600i64,
            RejectionKind::SignatureNotYetCurrent,
            "Signature not yet current: 20240821T000143Z is still later than 20240820T230643Z (20240820T230143Z + 5 min.)",
            3_600_000i64,
        ),
        (
            -3600,
            RejectionKind::SignatureExpired,
            "Signature expired: 20240820T220143Z is now earlier than 20240820T225643Z (20240820T230143Z - 5 min.)",
            -3_600_000,
        ),
    ] {
        let when = at((T0 as i64 + offset) as u64) + Duration::from_millis(400);
        let mut signer = EventSigner::new(creds(None), "us-west-2", "transcribe", signed.signature(), Clock::new(ManualTime::new(when)));
        let frame = decode(&signer.sign(&inner_audio(b"x")).unwrap());
        let mut chain = verifier.chain_verifier(&upgrade).unwrap();
        let refused = chain.verify_frame(&frame).unwrap_err();
        assert_eq!(refused.kind(), kind);
        assert_eq!(refused.message(), text);
        assert_eq!(refused.diagnosis().skew_millis(), Some(skew + 400));
        // Transcribe reports time problems as BadRequestException, Liveness as InvalidSignatureException.
        assert_eq!(refused.exception_type(), "BadRequestException");
        assert_eq!(refused.clone().with_service(Service::Liveness).exception_type(), "InvalidSignatureException");
        let explained = refused.diagnosis().to_string();
        let side = if offset > 0 { "1 h 00 m ahead" } else { "1 h 00 m behind" };
        assert!(explained.contains(side), "{explained}");
    }
}

#[test]
fn unsigned_or_malformed_envelopes_are_refused_by_name() {
    let (mut chain, frames) = fresh_chain();
    let bare = decode(&inner_audio(b"pcm"));
    let refused = chain.verify_frame(&bare).unwrap_err();
    assert_eq!(refused.kind(), RejectionKind::MissingSignature);
    assert!(
        refused
            .message()
            .starts_with("Missing Authentication Token"),
        "{}",
        refused.message()
    );
    assert!(refused.message().contains(":chunk-signature"));
    assert_eq!(
        refused
            .clone()
            .with_service(Service::Liveness)
            .exception_type(),
        "InvalidSignatureException"
    );

    let extra = rebuilt(&frames[0], |headers, _| {
        headers.push((":event-type".into(), HeaderValue::from("AudioEvent")))
    });
    let refused = chain.verify_frame(&extra).unwrap_err();
    assert_eq!(refused.kind(), RejectionKind::MalformedEnvelope);
    assert!(
        refused
            .message()
            .contains("unexpected header ':event-type'"),
        "{}",
        refused.message()
    );

    let short_sig = rebuilt(&frames[0], |headers, _| {
        headers.retain(|(n, _)| n != CHUNK_SIGNATURE);
        headers.push((
            CHUNK_SIGNATURE.into(),
            HeaderValue::ByteArray(Bytes::from_static(&[1; 31])),
        ));
    });
    let refused = chain.verify_frame(&short_sig).unwrap_err();
    assert_eq!(refused.kind(), RejectionKind::MalformedEnvelope);
    assert!(
        refused.message().contains("31 bytes, not 32"),
        "{}",
        refused.message()
    );

    let string_date = rebuilt(&frames[0], |headers, _| {
        headers.retain(|(n, _)| n != DATE);
        headers.push((DATE.into(), HeaderValue::from("20240820T230143Z")));
    });
    assert_eq!(
        chain.verify_frame(&string_date).unwrap_err().kind(),
        RejectionKind::MalformedEnvelope
    );
    // None of it advanced the chain.
    chain.verify_frame(&frames[0]).unwrap();
}

// ---------------------------------------------------------------------------------------------
// URL tampering.

fn refuse(verifier: &Verifier, path_and_query: &str, host: &str) -> sigv4_ws::verify::Rejection {
    verifier.verify_upgrade(path_and_query, host).unwrap_err()
}

#[test]
fn tampered_urls_are_mismatches_with_the_aws_text() {
    let verifier = verifier_at(T0, None);
    let signed = presign(TRANSCRIBE_URL, "us-west-2", "transcribe", None, at(T0));
    let host = signed.host_header();
    let good = target(signed.url()).to_owned();
    let sig = signed.signature();
    let mut flipped = sig.as_bytes().to_vec();
    flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    let cases = [
        good.replace(sig, &flipped),
        good.replace("sample-rate=16000", "sample-rate=8000"),
        format!("{good}&show-speaker-label=true"),
        good.replace(
            "/stream-transcription-websocket",
            "/stream-transcription-websocket/",
        ),
        good.replace(sig, "not-hex"),
    ];
    for case in &cases {
        let refused = refuse(&verifier, case, &host);
        assert_eq!(refused.kind(), RejectionKind::SignatureMismatch, "{case}");
        assert_eq!(refused.message(), MISMATCH);
        assert_eq!(refused.exception_type(), "InvalidSignatureException");
        let d = refused.diagnosis();
        assert!(d
            .expected_canonical_request()
            .unwrap()
            .starts_with("GET\n/stream-transcription-websocket"));
        assert!(d.expected_string_to_sign().unwrap().starts_with(
            "AWS4-HMAC-SHA256\n20240820T230143Z\n20240820/us-west-2/transcribe/aws4_request\n"
        ));
        assert_eq!(d.received_host(), Some(host.as_str()));
        let shown = format!("{refused:?} {d}");
        assert!(
            !shown.contains(sig) && !shown.contains(&flipped) && !shown.contains(SECRET),
            "{shown}"
        );
    }
}

#[test]
fn a_host_signed_without_its_port_is_named_in_the_diagnosis() {
    let verifier = verifier_at(T0, None);
    // Signed for the bare host, received with :8443 (the amplify-backend#3015 failure).
    let signed = presign(
        &TRANSCRIBE_URL.replace(":8443", ""),
        "us-west-2",
        "transcribe",
        None,
        at(T0),
    );
    let refused = refuse(
        &verifier,
        target(signed.url()),
        "transcribestreaming.us-west-2.amazonaws.com:8443",
    );
    assert_eq!(refused.kind(), RejectionKind::SignatureMismatch);
    let text = refused.diagnosis().to_string();
    assert!(
        text.contains("the Host you signed (`transcribestreaming.us-west-2.amazonaws.com`) differs from the Host received (`transcribestreaming.us-west-2.amazonaws.com:8443`)"),
        "{text}"
    );
    // And an emulator-style Host that was never signed: the generic advice.
    let refused = refuse(&verifier, target(signed.url()), "127.0.0.1:40000");
    assert!(refused
        .diagnosis()
        .to_string()
        .contains("received (`127.0.0.1:40000`)"));
}

#[test]
fn a_wrong_secret_is_a_mismatch_and_an_unknown_key_is_unrecognized() {
    let verifier = verifier_at(T0, None);
    let url = Url::parse(LIVENESS_URL).unwrap();
    let wrong = Presigner::new(
        Credentials::new(AKID, "wrong", None, None, "t"),
        "us-east-1",
        "rekognition",
    )
    .presign_at(&url, at(T0))
    .unwrap();
    let refused = refuse(&verifier, target(wrong.url()), &wrong.host_header());
    assert_eq!(refused.kind(), RejectionKind::SignatureMismatch);
    assert_eq!(refused.message(), MISMATCH);

    let stranger = Presigner::new(
        Credentials::new("AKIDSTRANGER", SECRET, None, None, "t"),
        "us-east-1",
        "rekognition",
    )
    .presign_at(&url, at(T0))
    .unwrap();
    let refused = refuse(&verifier, target(stranger.url()), &stranger.host_header());
    assert_eq!(refused.kind(), RejectionKind::UnrecognizedClient);
    assert_eq!(
        refused.message(),
        "The security token included in the request is invalid."
    );
    assert_eq!(refused.exception_type(), "UnrecognizedClientException");
    assert_eq!(refused.http_status(), 403);
    assert_eq!(
        refused.to_string(),
        "UnrecognizedClientException: The security token included in the request is invalid."
    );
}

#[test]
fn a_session_token_must_be_the_registered_one() {
    let verifier = verifier_at(T0, Some(TOKEN));
    for token in [None, Some("another-token")] {
        let signed = presign(LIVENESS_URL, "us-east-1", "rekognition", token, at(T0));
        let refused = refuse(&verifier, target(signed.url()), &signed.host_header());
        assert_eq!(
            refused.kind(),
            RejectionKind::UnrecognizedClient,
            "{token:?}"
        );
    }
    let signed = presign(
        LIVENESS_URL,
        "us-east-1",
        "rekognition",
        Some(TOKEN),
        at(T0),
    );
    verifier
        .verify_upgrade(target(signed.url()), &signed.host_header())
        .unwrap();
    // The mismatch diagnosis masks the token.
    let tampered = target(signed.url()).replace("video-width=640", "video-width=641");
    let refused = refuse(&verifier, &tampered, &signed.host_header());
    let cr = refused.diagnosis().expected_canonical_request().unwrap();
    assert!(cr.contains("X-Amz-Security-Token=***"), "{cr}");
    assert!(
        !format!("{refused:?} {}", refused.diagnosis()).contains("IQoJ"),
        "token leaked"
    );
}

#[test]
fn url_dates_outside_the_window_get_aws_texts_both_ways() {
    let verifier = verifier_at(T0, None);
    for (signed_at, kind, text, side) in [
        (
            T0 + 3600,
            RejectionKind::SignatureNotYetCurrent,
            "Signature not yet current: 20240821T000143Z is still later than 20240820T230643Z (20240820T230143Z + 5 min.)",
            "1 h 00 m ahead",
        ),
        (
            T0 - 3600,
            RejectionKind::SignatureExpired,
            "Signature expired: 20240820T220143Z is now earlier than 20240820T225643Z (20240820T230143Z - 5 min.)",
            "1 h 00 m behind",
        ),
    ] {
        for (url, region, service, exception) in [
            (TRANSCRIBE_URL, "us-west-2", "transcribe", "BadRequestException"),
            (LIVENESS_URL, "us-east-1", "rekognition", "InvalidSignatureException"),
        ] {
            let signed = presign(url, region, service, None, at(signed_at));
            let refused = refuse(&verifier, target(signed.url()), &signed.host_header());
            assert_eq!(refused.kind(), kind);
            assert_eq!(refused.message(), text);
            assert_eq!(refused.exception_type(), exception);
            assert_eq!(refused.diagnosis().skew_millis(), Some((signed_at as i64 - T0 as i64) * 1000));
            let explained = refused.diagnosis().to_string();
            assert!(explained.contains(side), "{explained}");
            assert!(explained.contains("clock offset"), "{explained}");
        }
    }
    // The edges of the window are inside it.
    for edge in [T0 - 300, T0 + 300] {
        let signed = Presigner::new(creds(None), "us-east-1", "rekognition")
            .expires_in(Duration::from_secs(300))
            .presign_at(&Url::parse(LIVENESS_URL).unwrap(), at(edge))
            .unwrap();
        verifier
            .verify_upgrade(target(signed.url()), &signed.host_header())
            .unwrap();
    }
}

#[test]
fn an_expired_url_is_refused_with_the_documented_text() {
    let verifier = verifier_at(T0, None);
    let signed = Presigner::new(creds(None), "us-east-1", "rekognition")
        .presign_at(&Url::parse(LIVENESS_URL).unwrap(), at(T0 - 120))
        .unwrap();
    let refused = refuse(&verifier, target(signed.url()), &signed.host_header());
    assert_eq!(refused.kind(), RejectionKind::UrlExpired);
    assert_eq!(
        refused.message(),
        "Signature expired: 20240820T225943Z is now earlier than 20240820T230043Z (20240820T230143Z - 60 sec.)"
    );
    assert_eq!(refused.exception_type(), "InvalidSignatureException");
    assert_eq!(refused.diagnosis().skew_millis(), Some(-120_000));
    // One second before expiry it is fine.
    let fresh = Presigner::new(creds(None), "us-east-1", "rekognition")
        .presign_at(&Url::parse(LIVENESS_URL).unwrap(), at(T0 - 60))
        .unwrap();
    verifier
        .verify_upgrade(target(fresh.url()), &fresh.host_header())
        .unwrap();
}

#[test]
fn malformed_signing_parameters_are_refused_in_order() {
    let verifier = verifier_at(T0, None);
    let signed = presign(TRANSCRIBE_URL, "us-west-2", "transcribe", None, at(T0));
    let host = signed.host_header();
    let good = target(signed.url()).to_owned();
    let without = |name: &str| -> String {
        let (path, query) = good.split_once('?').unwrap();
        let kept: Vec<&str> = query
            .split('&')
            .filter(|p| !p.starts_with(&format!("{name}=")))
            .collect();
        format!("{path}?{}", kept.join("&"))
    };
    let refused = refuse(&verifier, &without("X-Amz-Date"), &host);
    assert_eq!(refused.kind(), RejectionKind::MissingParameter);
    assert_eq!(refused.message(), "AWS query-string parameters must include 'X-Amz-Date'. Re-examine the query-string parameters.");
    assert_eq!(refused.exception_type(), "IncompleteSignatureException");
    assert_eq!(refused.http_status(), 400);
    let refused = refuse(
        &verifier,
        "/stream-transcription-websocket?language-code=en-US",
        &host,
    );
    assert_eq!(
        refused.message(),
        "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'. Re-examine the query-string parameters."
    );

    let cases: Vec<(String, RejectionKind, &str)> = vec![
        (format!("{good}&X-Amz-Date=20240820T230143Z"), RejectionKind::DuplicateParameter, "'X-Amz-Date' appears more than once"),
        (good.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"), RejectionKind::UnsupportedAlgorithm, "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'"),
        (good.replace("X-Amz-Date=20240820T230143Z", "X-Amz-Date=2024-08-20T23:01:43Z"), RejectionKind::MalformedDate, "X-Amz-Date must be in the ISO8601 Long Format"),
        (good.replace("%2Faws4_request", ""), RejectionKind::MalformedCredential, "Credential must have exactly 5 slash-delimited elements"),
        (good.replace("aws4_request", "aws5_request"), RejectionKind::MalformedCredential, "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'."),
        (good.replace("%2Ftranscribe%2F", "%2Frekognition%2F"), RejectionKind::MalformedCredential, "Credential should be scoped to correct service: 'transcribe'."),
        (good.replace("%2F20240820%2F", "%2F20240821%2F"), RejectionKind::MalformedCredential, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20240821' != '20240820', from 'X-Amz-Date'."),
        (good.replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=host%3Bx-amz-date"), RejectionKind::UnsupportedSignedHeaders, "X-Amz-SignedHeaders must be 'host'"),
        (good.replace("X-Amz-Expires=60", "X-Amz-Expires=301"), RejectionKind::InvalidExpires, "X-Amz-Expires must be an integer from 1 to 300, got '301'."),
        (good.replace("X-Amz-Expires=60", "X-Amz-Expires=0"), RejectionKind::InvalidExpires, "got '0'"),
        (good.replace("X-Amz-Expires=60", "X-Amz-Expires=%2B60"), RejectionKind::InvalidExpires, "got '+60'"),
    ];
    for (case, kind, text) in cases {
        let refused = refuse(&verifier, &case, &host);
        assert_eq!(refused.kind(), kind, "{case}: {refused}");
        assert!(
            refused.message().contains(text),
            "{case}: {}",
            refused.message()
        );
        assert_eq!(refused.diagnosis().check(), kind.check());
    }
}

#[test]
fn rejections_never_show_secrets_or_signatures() {
    let verifier = verifier_at(T0 + 7200, Some(TOKEN));
    let signed = presign(
        LIVENESS_URL,
        "us-east-1",
        "rekognition",
        Some(TOKEN),
        at(T0),
    );
    let refused = refuse(&verifier, target(signed.url()), &signed.host_header());
    assert_eq!(refused.kind(), RejectionKind::SignatureExpired);
    let shown = format!(
        "{refused} {refused:?} {} {:?} {verifier:?}",
        refused.diagnosis(),
        refused.diagnosis()
    );
    for secret in [SECRET, TOKEN, signed.signature()] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert_eq!(
        refused.exception_payload(),
        r#"{"Message":"Signature expired: 20240820T230143Z is now earlier than 20240821T005643Z (20240821T010143Z - 5 min.)"}"#
    );
    assert_eq!(
        refused.http_error_body(),
        r#"{"__type":"InvalidSignatureException","message":"Signature expired: 20240820T230143Z is now earlier than 20240821T005643Z (20240821T010143Z - 5 min.)"}"#
    );
}
