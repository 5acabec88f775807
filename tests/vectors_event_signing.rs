//! Every public event (chunk) signing vector as a test (fixtures/signing/, protocol.md 3.9).
//!
//! Each of the 14 cases of `event_signing_vectors.json` is checked with the primitives
//! (`derive_signing_key`, `event_string_to_sign`, `hmac_sha256`) against its expected
//! string-to-sign and signature. Where the hashed "headers" are the encoded `:date` of the
//! signing time (the only form `EventSigner` produces), the case is also signed by
//! `EventSigner::sign_at` and the envelope taken apart by hand; the aws-c-auth group is also
//! run as one chain through one signer.

#[path = "../benches/support/sdk_audio_event.rs"]
mod sdk_audio_event;
mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::BytesMut;
use serde_json::Value;
use sigv4_ws::proto::sigv4::{
    derive_signing_key, encode_date_header, event_string_to_sign, format_amz_date, hex_lower,
    hmac_sha256, request_string_to_sign, sha256_hex,
};
use sigv4_ws::{Clock, EventSigner, ManualTime};
use support::{
    at_millis, creds, decode_envelope, iso_time, read_json, str_at, u64_at, unhex,
    ENVELOPE_SIGNATURE_RANGE,
};

const VECTORS: &str = "signing/event_signing_vectors.json";

fn case(id: &str) -> Value {
    read_json(VECTORS)["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id}"))
        .clone()
}

/// The signature a case expects: from its source, or (smithy-rs-sts-1 only) derived.
fn expected_signature(case: &Value) -> String {
    case["expected"]["signature_hex"]
        .as_str()
        .or_else(|| case["derived_by_research"]["signature_hex"].as_str())
        .expect("an expected signature")
        .to_owned()
}

/// The `:date` value (ms) if `headers_hashed` is exactly one encoded `:date` header.
fn date_header_millis(headers: &[u8]) -> Option<i64> {
    let value: [u8; 8] = headers.strip_prefix(b"\x05:date\x08")?.try_into().ok()?;
    Some(i64::from_be_bytes(value))
}

/// The clock reading the source signed at: `signing_clock_reading` when given (ISO 8601 or
/// `<secs>.<nanos> s since epoch`), else the whole-second signing time.
fn clock_reading(case: &Value) -> SystemTime {
    let Some(reading) = case["signing_clock_reading"].as_str() else {
        return UNIX_EPOCH + Duration::from_secs(u64_at(&case["inputs"], "signing_time_epoch_s"));
    };
    if let Some(seconds) = reading.strip_suffix(" s since epoch") {
        let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, "0"));
        let nanos: u64 = format!("{fraction:0<9}").parse().expect("nanoseconds");
        UNIX_EPOCH
            + Duration::from_secs(whole.parse().expect("seconds"))
            + Duration::from_nanos(nanos)
    } else {
        iso_time(reading)
    }
}

/// How a case relates to `EventSigner`.
#[derive(Debug, PartialEq, Eq)]
enum SignerApplies {
    /// `headers_hashed` is the encoded `:date` of the signing time.
    Yes,
    /// Arbitrary header bytes, or a `:date` other than the signing time: only the primitives apply.
    No,
}

fn run_case(id: &str, applies: SignerApplies) {
    let case = case(id);
    let inputs = &case["inputs"];
    let secs = u64_at(inputs, "signing_time_epoch_s");
    let time = UNIX_EPOCH + Duration::from_secs(secs);
    assert_eq!(
        iso_time(str_at(inputs, "signing_time")),
        time,
        "signing_time fields agree"
    );
    let region = str_at(inputs, "region");
    let service = str_at(inputs, "service");
    let prior = str_at(inputs, "prior_signature_in_string_to_sign");
    let headers = unhex(str_at(inputs, "headers_hashed_hex"));
    let payload = unhex(str_at(inputs, "payload_hex"));
    let expected = expected_signature(&case);

    // 1. The primitives.
    let string_to_sign =
        event_string_to_sign(time, region, service, prior, &headers, &payload).expect("after 1970");
    for source in ["expected", "derived_by_research"] {
        if let Some(sts) = case[source]["string_to_sign"].as_str() {
            assert_eq!(string_to_sign, sts, "{id}: {source} string-to-sign");
        }
    }
    let amz_date = format_amz_date(time).expect("after 1970");
    let key = derive_signing_key(
        str_at(inputs, "secret_access_key"),
        &amz_date[..8],
        region,
        service,
    );
    let signature = hex_lower(&hmac_sha256(&key, string_to_sign.as_bytes()));
    assert_eq!(signature, expected, "{id}: signature");

    // 2. EventSigner, where the case has the form it produces.
    let date_millis = date_header_millis(&headers);
    let signing_time_millis = i64::try_from(secs * 1000).expect("fits");
    let matches_signer =
        date_millis.is_some_and(|ms| ms.div_euclid(1000) == signing_time_millis / 1000 && ms >= 0);
    assert_eq!(
        matches_signer,
        applies == SignerApplies::Yes,
        "{id}: is headers_hashed the encoded :date of the signing time? ({date_millis:?})"
    );
    let Some(date_millis) = date_millis.filter(|_| matches_signer) else {
        return;
    };
    assert_eq!(
        headers,
        encode_date_header(date_millis),
        "{id}: :date encoding"
    );
    let credentials = creds(
        str_at(inputs, "access_key_id"),
        str_at(inputs, "secret_access_key"),
        None,
    );
    let date_time = at_millis(u64::try_from(date_millis).expect("after 1970"));
    // Sign at the :date instant, and at the raw clock reading the source used (which may
    // carry microseconds or nanoseconds: :date keeps only whole milliseconds).
    for at in [date_time, clock_reading(&case)] {
        let mut signer =
            EventSigner::new(credentials.clone(), region, service, prior, Clock::system());
        let mut frame = BytesMut::new();
        signer.sign_at(&payload, at, &mut frame).expect("sign");
        let envelope = decode_envelope(&frame);
        assert_eq!(
            envelope.date_header.as_slice(),
            headers.as_slice(),
            "{id}: :date header"
        );
        assert_eq!(envelope.date_millis, date_millis);
        assert_eq!(envelope.payload, payload, "{id}: payload");
        assert_eq!(
            &frame[ENVELOPE_SIGNATURE_RANGE],
            unhex(&expected).as_slice(),
            "{id}: signature"
        );
    }
}

macro_rules! event_cases {
    ($($name:ident => $id:literal, $applies:ident;)*) => {
        $(
            #[test]
            fn $name() {
                run_case($id, SignerApplies::$applies);
            }
        )*

        #[test]
        fn event_cases_are_all_covered() {
            let mut ids: Vec<String> = read_json(VECTORS)["cases"]
                .as_array()
                .expect("cases")
                .iter()
                .map(|c| str_at(c, "id").to_owned())
                .collect();
            ids.sort();
            let mut covered: Vec<String> = [$($id),*].iter().map(|s| s.to_string()).collect();
            covered.sort();
            assert_eq!(ids, covered);
            assert_eq!(covered.len(), 14);
        }
    };
}

event_cases! {
    aws_c_auth_event_1 => "aws-c-auth-event-1", Yes;
    aws_c_auth_event_2 => "aws-c-auth-event-2", Yes;
    aws_c_auth_event_3 => "aws-c-auth-event-3", Yes;
    aws_c_auth_event_4_end_frame => "aws-c-auth-event-4", Yes;
    go_v1_stream_1 => "go-v1-stream-1", No;
    go_v1_stream_2 => "go-v1-stream-2", No;
    go_v2_stream_1 => "go-v2-stream-1", No;
    go_v2_stream_2 => "go-v2-stream-2", No;
    go_v2_stream_3 => "go-v2-stream-3", No;
    go_v2_stream_4_end_frame => "go-v2-stream-4", No;
    smithy_ts_event_1_date_differs_from_signing_time => "smithy-ts-event-1", No;
    transcribe_py_event_1_millisecond_date => "transcribe-py-event-1", Yes;
    smithy_rs_sts_1 => "smithy-rs-sts-1", Yes;
    smithy_kotlin_event_1 => "smithy-kotlin-event-1", Yes;
}

/// Within each group, each case's prior signature is the previous case's signature, and the
/// primitives reproduce the whole chain from the first prior alone.
#[test]
fn chains_link_within_each_group() {
    let groups: [&[&str]; 3] = [
        &[
            "aws-c-auth-event-1",
            "aws-c-auth-event-2",
            "aws-c-auth-event-3",
            "aws-c-auth-event-4",
        ],
        &["go-v1-stream-1", "go-v1-stream-2"],
        &[
            "go-v2-stream-1",
            "go-v2-stream-2",
            "go-v2-stream-3",
            "go-v2-stream-4",
        ],
    ];
    for group in groups {
        let first = case(group[0]);
        let mut prior = str_at(&first["inputs"], "prior_signature_in_string_to_sign").to_owned();
        for id in group {
            let case = case(id);
            let inputs = &case["inputs"];
            assert_eq!(
                str_at(inputs, "prior_signature_in_string_to_sign"),
                prior,
                "{id}: link"
            );
            let time = UNIX_EPOCH + Duration::from_secs(u64_at(inputs, "signing_time_epoch_s"));
            let date = &format_amz_date(time).expect("after 1970")[..8];
            let key = derive_signing_key(
                str_at(inputs, "secret_access_key"),
                date,
                str_at(inputs, "region"),
                str_at(inputs, "service"),
            );
            let sts = event_string_to_sign(
                time,
                str_at(inputs, "region"),
                str_at(inputs, "service"),
                &prior,
                &unhex(str_at(inputs, "headers_hashed_hex")),
                &unhex(str_at(inputs, "payload_hex")),
            )
            .expect("after 1970");
            prior = hex_lower(&hmac_sha256(&key, sts.as_bytes()));
            assert_eq!(prior, expected_signature(&case), "{id}");
        }
    }
}

/// The aws-c-auth group through ONE `EventSigner` on a manual clock: three chunks with
/// `sign`, then the end frame with `finish`, each at its case's time.
#[test]
fn aws_c_auth_chain_through_one_signer() {
    let ids = [
        "aws-c-auth-event-1",
        "aws-c-auth-event-2",
        "aws-c-auth-event-3",
        "aws-c-auth-event-4",
    ];
    let first = case(ids[0]);
    let inputs = &first["inputs"];
    let seed = str_at(&first["seed_request"], "expected_signature_hex");
    assert_eq!(seed, str_at(inputs, "prior_signature_in_string_to_sign"));
    let time = ManualTime::new(UNIX_EPOCH);
    let mut signer = EventSigner::new(
        creds(
            str_at(inputs, "access_key_id"),
            str_at(inputs, "secret_access_key"),
            None,
        ),
        str_at(inputs, "region"),
        str_at(inputs, "service"),
        seed,
        Clock::new(time.clone()),
    );
    for (n, id) in ids.iter().enumerate() {
        let case = case(id);
        let inputs = &case["inputs"];
        time.set(UNIX_EPOCH + Duration::from_secs(u64_at(inputs, "signing_time_epoch_s")));
        let payload = unhex(str_at(inputs, "payload_hex"));
        let frame = if n + 1 == ids.len() {
            assert!(payload.is_empty(), "the last case is the end frame");
            signer.finish().expect("end frame")
        } else {
            signer.sign(&payload).expect("chunk")
        };
        let envelope = decode_envelope(&frame);
        assert_eq!(envelope.signature_hex(), expected_signature(&case), "{id}");
        assert_eq!(
            envelope.date_header.to_vec(),
            unhex(str_at(inputs, "headers_hashed_hex"))
        );
        assert_eq!(envelope.payload, payload);
    }
    assert!(signer.is_finished());
}

/// The aws-c-auth seed: an HTTP/2-style request signed in the Authorization header with the
/// payload hash `STREAMING-AWS4-HMAC-SHA256-EVENTS`. Not a WebSocket presign, but its
/// string-to-sign and key derivation are the ones our presigner uses.
#[test]
fn aws_c_auth_seed_request_signature() {
    let first = case("aws-c-auth-event-1");
    let inputs = &first["inputs"];
    let seed = &first["seed_request"];
    let headers = &seed["headers"];
    let amz_date = str_at(headers, "x-amz-date");
    let names = [
        "content-encoding",
        "host",
        "x-amz-content-sha256",
        "x-amz-date",
    ];
    let canonical_headers: String = names
        .iter()
        .map(|n| format!("{n}:{}\n", str_at(headers, n)))
        .collect();
    let canonical_request = format!(
        "{}\n{}\n\n{canonical_headers}\n{}\n{}",
        str_at(seed, "method"),
        str_at(seed, "path"),
        names.join(";"),
        str_at(headers, "x-amz-content-sha256"),
    );
    let scope = format!(
        "{}/{}/{}/aws4_request",
        &amz_date[..8],
        str_at(inputs, "region"),
        str_at(inputs, "service")
    );
    let sts = request_string_to_sign(amz_date, &scope, &canonical_request);
    let key = derive_signing_key(
        str_at(inputs, "secret_access_key"),
        &amz_date[..8],
        str_at(inputs, "region"),
        str_at(inputs, "service"),
    );
    let signature = hex_lower(&hmac_sha256(&key, sts.as_bytes()));
    assert_eq!(signature, str_at(seed, "expected_signature_hex"));
    assert!(str_at(seed, "expected_authorization").ends_with(&format!("Signature={signature}")));
}

/// transcribe-py-event-1: `:date` keeps the milliseconds of the clock reading while the
/// string-to-sign has whole seconds; hashing a truncated `:date` would give another signature.
#[test]
fn transcribe_py_date_keeps_milliseconds() {
    let case = case("transcribe-py-event-1");
    let inputs = &case["inputs"];
    let reading = clock_reading(&case);
    assert_eq!(support::epoch_millis(reading), 1_595_543_995_029);
    let headers = unhex(str_at(inputs, "headers_hashed_hex"));
    assert_eq!(headers, encode_date_header(1_595_543_995_029));
    let truncated = event_string_to_sign(
        reading,
        str_at(inputs, "region"),
        str_at(inputs, "service"),
        str_at(inputs, "prior_signature_in_string_to_sign"),
        &encode_date_header(1_595_543_995_000),
        &unhex(str_at(inputs, "payload_hex")),
    )
    .expect("after 1970");
    let key = derive_signing_key(
        str_at(inputs, "secret_access_key"),
        "20200723",
        str_at(inputs, "region"),
        str_at(inputs, "service"),
    );
    assert_ne!(
        hex_lower(&hmac_sha256(&key, truncated.as_bytes())),
        expected_signature(&case)
    );
}

/// smithy-rs-sts-1: our envelope and the aws-sigv4-ordered one in the vector carry the same
/// prelude, the same two headers (in the other order), the same payload.
#[test]
fn smithy_rs_envelope_matches_up_to_header_order() {
    let case = case("smithy-rs-sts-1");
    let inputs = &case["inputs"];
    let theirs = unhex(str_at(
        &case["derived_by_research"],
        "signed_envelope_hex_aws_sigv4_header_order",
    ));
    let mut signer = EventSigner::new(
        creds(
            str_at(inputs, "access_key_id"),
            str_at(inputs, "secret_access_key"),
            None,
        ),
        str_at(inputs, "region"),
        str_at(inputs, "service"),
        str_at(inputs, "prior_signature_in_string_to_sign"),
        Clock::system(),
    );
    let mut ours = BytesMut::new();
    signer
        .sign_at(
            &unhex(str_at(inputs, "payload_hex")),
            clock_reading(&case),
            &mut ours,
        )
        .expect("sign");
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(&ours[..12], &theirs[..12], "prelude (lengths and CRC)");
    // Ours: :date (15) then :chunk-signature (52); theirs: the other way round.
    assert_eq!(&ours[12..27], &theirs[64..79], ":date header");
    assert_eq!(&ours[27..79], &theirs[12..64], ":chunk-signature header");
    assert_eq!(
        &ours[79..ours.len() - 4],
        &theirs[79..theirs.len() - 4],
        "payload"
    );
    assert_ne!(
        &ours[ours.len() - 4..],
        &theirs[theirs.len() - 4..],
        "message CRC covers the order"
    );
    let end = theirs.len() - 4;
    assert_eq!(theirs[end..], crc32fast::hash(&theirs[..end]).to_be_bytes());
}

// ---------------------------------------------------------------------------------------------
// protocol.md 3.9
// ---------------------------------------------------------------------------------------------

const TEST_AKID: &str = "ANOTREAL";
const TEST_SECRET: &str = "notrealrnrELgWzOk3IfjzDKtFBhDby";
const TEST_TOKEN: &str = "notarealsessiontoken";
const SEED: &str = "3bda071a1cf6a5d4c3a3a6a572bc5d6b685c567428447c32ecbd5a08f6619b94";
const INNER: &str = "0000006c000000585c509ce30d3a6d6573736167652d747970650700056576656e740b3a6576656e742d7479706507000a417564696f4576656e740d3a636f6e74656e742d747970650700186170706c69636174696f6e2f6f637465742d73747265616d0001020371e2c8d0";

fn encode(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    write_message_to(message, &mut out).expect("encodable");
    out
}

/// (a) the smithy-rs published string-to-sign.
#[test]
fn protocol_md_3_9_a_smithy_rs_string_to_sign() {
    let inner = encode(&Message::new(&b"test payload"[..]).add_header(Header::new(
        "some-header",
        HeaderValue::String("value".into()),
    )));
    let prior = sha256_hex(b"last message sts");
    assert_eq!(
        prior,
        "be1f8c7d79ef8e1abc5254a2c70e4da3bfaf4f07328f527444e1fc6ea67273e2"
    );
    let time = UNIX_EPOCH + Duration::new(123_456_789, 1234);
    let sts = event_string_to_sign(
        time,
        "us-east-1",
        "testservice",
        &prior,
        &encode_date_header(123_456_789_000),
        &inner,
    )
    .expect("after 1970");
    assert_eq!(
        sts.split('\n').collect::<Vec<_>>(),
        [
            "AWS4-HMAC-SHA256-PAYLOAD",
            "19731129T213309Z",
            "19731129/us-east-1/testservice/aws4_request",
            "be1f8c7d79ef8e1abc5254a2c70e4da3bfaf4f07328f527444e1fc6ea67273e2",
            "0c0e3b3bf66b59b976181bd7d401927bbd624107303c713fd1e5f3d3c8dd1b1e",
            "f2eba0f2e95967ee9fbc6db5e678d2fd599229c0d04b11e4fc8e0f2a02a806c6",
        ]
    );
}

/// (b) our chained vector, byte for byte: envelope, end frame, and the simpler `hello` event.
#[test]
fn protocol_md_3_9_b_chained_envelope_and_end_frame() {
    // The inner message is what an independent encoder writes for the stated headers.
    let inner = encode(&sdk_audio_event::sdk_audio_event(&[0u8, 1, 2, 3][..]));
    assert_eq!(hex::encode(&inner), INNER);

    let time = ManualTime::new(at_millis(1_724_194_904_567));
    let credentials = creds(TEST_AKID, TEST_SECRET, Some(TEST_TOKEN));
    let mut signer = EventSigner::new(
        credentials.clone(),
        "us-west-2",
        "transcribe",
        SEED,
        Clock::new(time.clone()),
    );
    let frame = signer.sign(&inner).expect("event");
    let mut expected = unhex("000000bf0000004318605086053a646174650800000191720659f7103a6368756e6b2d7369676e617475726506002042a0aafa1dc0e13966b12b2013ce404a8d292ba15444794525e7542a914e861b");
    expected.extend(&inner);
    expected.extend(unhex("c224870f"));
    assert_eq!(hex::encode(&frame), hex::encode(&expected));
    let envelope = decode_envelope(&frame);
    assert_eq!(envelope.date_millis, 1_724_194_904_567);
    assert_eq!(
        envelope.signature_hex(),
        "42a0aafa1dc0e13966b12b2013ce404a8d292ba15444794525e7542a914e861b"
    );

    time.set(at_millis(1_724_194_905_000));
    let end = signer.finish().expect("end frame");
    assert_eq!(
        hex::encode(&end),
        "0000005300000043f5447a58053a64617465080000019172065ba8103a6368756e6b2d7369676e6174757265060020a64c7320d6bd4d4fff788e81fbe9da41828c4fb6b31cc536af489c6e4c5fe395b47e65a8"
    );
    assert!(signer.sign(&inner).is_err(), "nothing after the end frame");

    time.set(at_millis(1_724_194_904_567));
    let mut simple = EventSigner::new(
        credentials,
        "us-west-2",
        "transcribe",
        SEED,
        Clock::new(time),
    );
    let hello = decode_envelope(&simple.sign(b"hello").expect("event"));
    assert_eq!(
        hello.signature_hex(),
        "6d67feeb4ba69ebe4981b7f02c20ac99f3e71ce51d89d8db175244e5f4fe859b"
    );
    assert_eq!(hello.payload, b"hello");
}

/// The AWS guide's example end frame (Transcribe developer guide, "Setting up an HTTP/2
/// stream", `streaming-http2.md`, shown base64-encoded there; protocol.md 3.9 (c) states
/// what it decodes to). Its signature cannot be recomputed (the credentials are not given);
/// everything else can, and our end frame at the same instant has the same bytes up to the
/// signature.
#[test]
fn protocol_md_3_9_c_aws_guide_end_frame() {
    const GUIDE_END_FRAME_BASE64: &str = "AAAAUwAAAEP1RHpYBTpkYXRlCAAAAWiXUkMLEDpjaHVuay1zaWduYXR1cmUGACCt6Zy+uymwEK2SrLp/zVBI5eGn83jdBwCaRUBJA+eaDafqjqI=";
    let guide = base64_decode(GUIDE_END_FRAME_BASE64);
    let envelope = decode_envelope(&guide); // checks both CRCs and the header layout
    assert_eq!(envelope.total_len, 83);
    assert_eq!(envelope.headers_len, 67);
    assert_eq!(&guide[8..12], unhex("f5447a58").as_slice(), "prelude CRC");
    assert_eq!(envelope.date_millis, 1_548_726_977_291);
    assert_eq!(
        iso_time("2019-01-29T01:56:17.291Z"),
        at_millis(1_548_726_977_291)
    );
    assert!(envelope.payload.is_empty());

    let clock = Clock::new(ManualTime::new(at_millis(1_548_726_977_291)));
    let mut signer = EventSigner::new(
        creds(TEST_AKID, TEST_SECRET, None),
        "us-west-2",
        "transcribe",
        SEED,
        clock,
    );
    let ours = signer.finish().expect("end frame");
    assert_eq!(
        &ours[..47],
        &guide[..47],
        "prelude, :date and the signature header's name/type/length"
    );
    assert_eq!(ours.len(), guide.len());
    // Same prelude as the protocol.md 3.9 (b) end frame.
    assert_eq!(hex::encode(&ours[..12]), "0000005300000043f5447a58");
}

/// Standard base64 (with padding), enough for the guide's frame.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut bits = 0u32;
    let mut count = 0;
    for c in text.bytes().filter(|&c| c != b'=') {
        let value = ALPHABET
            .iter()
            .position(|&a| a == c)
            .expect("base64 character");
        bits = (bits << 6) | u32::try_from(value).expect("< 64");
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push(u8::try_from((bits >> count) & 0xff).expect("a byte"));
        }
    }
    out
}
