//! Proven against the real thing: our presigner and event signer give the same signatures
//! as aws-sigv4 (smithy-rs), the signer the AWS SDK for Rust ships.
//!
//! * Presign: aws-sigv4 `http_request::sign` with `SignatureLocation::QueryParams`, the
//!   session token included (its default `SessionTokenMode::Include`), an empty body
//!   (`SignableBody::Bytes(&[])`, so the payload hash is SHA-256 of ""), over the https://
//!   form of the URL; ours through `Presigner::presign_at` (wss:// URL) and `sign_query`.
//! * Events: aws-sigv4 `event_stream::sign_message` / `sign_empty_message` against
//!   `EventSigner::sign_at` over the same inner bytes, chained. aws-sigv4 truncates the
//!   signing time to whole seconds (its `:date` too), so event times here are whole seconds;
//!   it also writes `:chunk-signature` before `:date`, so the signatures are compared, not
//!   the frames (plus the `:date` value and the payload).

#[path = "../benches/support/sdk_audio_event.rs"]
mod sdk_audio_event;
mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::event_stream::{sign_empty_message, sign_message};
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::BytesMut;
use proptest::prelude::*;
use sigv4_ws::proto::sigv4::{sign_query, QuerySigningInput};
use sigv4_ws::{EventSigner, Presigner};
use support::{at_millis, creds, decode_envelope, iso_time};
use url::Url;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJGMEQCIBe+token/with=chars";

/// What aws-sigv4 puts in a presigned URL.
struct AwsPresign {
    signature: String,
    params: Vec<(String, String)>,
}

fn aws_presign(
    credentials: &Credentials,
    https_url: &str,
    region: &str,
    service: &str,
    time: SystemTime,
    expires: Duration,
) -> AwsPresign {
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let request = SignableRequest::new(
        "GET",
        https_url,
        std::iter::empty(),
        SignableBody::Bytes(&[]),
    )
    .expect("signable request");
    let (instructions, signature) = sign(request, &params)
        .expect("aws-sigv4 signs")
        .into_parts();
    AwsPresign {
        signature,
        params: instructions
            .params()
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_string()))
            .collect(),
    }
}

struct PresignCase {
    region: &'static str,
    service: &'static str,
    host: &'static str,
    port: Option<u16>,
    path: &'static str,
    query: &'static str,
    token: bool,
    time: &'static str,
    expires: u64,
}

fn compare_presign(case: &PresignCase) {
    let port = case.port.map(|p| format!(":{p}")).unwrap_or_default();
    let query = if case.query.is_empty() {
        String::new()
    } else {
        format!("?{}", case.query)
    };
    let https = format!("https://{}{port}{}{query}", case.host, case.path);
    let credentials = creds(AKID, SECRET, case.token.then_some(TOKEN));
    let time = iso_time(case.time);
    let expires = Duration::from_secs(case.expires);

    let theirs = aws_presign(
        &credentials,
        &https,
        case.region,
        case.service,
        time,
        expires,
    );

    let ours = Presigner::new(credentials.clone(), case.region, case.service)
        .expires_in(expires)
        .presign_at(&Url::parse(&https).expect("url"), time)
        .expect("presign");
    assert_eq!(
        ours.signature(),
        theirs.signature,
        "Presigner vs aws-sigv4 for {https}"
    );
    assert_eq!(ours.url().scheme(), "wss");

    // Every signing parameter aws-sigv4 adds has the same value in our URL.
    let our_params: Vec<(String, String)> = ours.url().query_pairs().into_owned().collect();
    for (key, value) in &theirs.params {
        assert!(
            our_params.iter().any(|(k, v)| k == key && v == value),
            "{key}={value} missing from our URL for {https}"
        );
    }
    assert_eq!(
        theirs
            .params
            .iter()
            .any(|(k, _)| k == "X-Amz-Security-Token"),
        case.token
    );

    // The generic function agrees too.
    let url = Url::parse(&https).expect("url");
    let own: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let generic = sign_query(
        &QuerySigningInput {
            access_key_id: AKID,
            secret_access_key: SECRET,
            session_token: case.token.then_some(TOKEN),
            region: case.region,
            service: case.service,
            host: &ours.host_header(),
            wire_path: url.path(),
            params: &own,
            expires_secs: case.expires,
        },
        time,
    )
    .expect("after 1970");
    assert_eq!(
        generic.signature, theirs.signature,
        "sign_query vs aws-sigv4 for {https}"
    );
}

macro_rules! presign_cases {
    ($($name:ident: $case:expr;)*) => {
        $(
            #[test]
            fn $name() {
                compare_presign(&$case);
            }
        )*
    };
}

presign_cases! {
    presign_transcribe_8443_with_token: PresignCase {
        region: "us-west-2",
        service: "transcribe",
        host: "transcribestreaming.us-west-2.amazonaws.com",
        port: Some(8443),
        path: "/stream-transcription-websocket",
        query: "language-code=en-US&media-encoding=pcm&sample-rate=16000",
        token: true,
        time: "2024-08-20T23:01:43.250Z",
        expires: 60,
    };
    presign_transcribe_8443_without_token: PresignCase {
        region: "eu-central-1",
        service: "transcribe",
        host: "transcribestreaming.eu-central-1.amazonaws.com",
        port: Some(8443),
        path: "/medical-stream-transcription-websocket",
        query: "language-code=en-US&media-encoding=flac&sample-rate=44100&specialty=PRIMARYCARE&type=CONVERSATION&show-speaker-label=true",
        token: false,
        time: "2025-02-28T23:59:59Z",
        expires: 300,
    };
    presign_transcribe_escaped_values: PresignCase {
        region: "ap-southeast-2",
        service: "transcribe",
        host: "transcribestreaming.ap-southeast-2.amazonaws.com",
        port: Some(8443),
        path: "/call-analytics-stream-transcription-websocket",
        query: "vocabulary-name=my%20vocab%2Fv2%3Dfinal&session-id=a%2Bb%26c&language-model-name=caf%C3%A9*!~'()&vocabulary-filter-method=mask",
        token: true,
        time: "2030-12-31T23:59:59.999Z",
        expires: 15,
    };
    presign_liveness_default_port_with_token: PresignCase {
        region: "us-east-1",
        service: "rekognition",
        host: "streaming-rekognition.us-east-1.amazonaws.com",
        port: None,
        path: "/start-face-liveness-session-websocket",
        query: "session-id=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0&video-width=640&video-height=480&challenge-versions=FaceMovementAndLightChallenge_1.0.0&x-amz-user-agent=aws-amplify%2F6.0%20ui-react-liveness",
        token: true,
        time: "2024-02-29T12:00:00.001Z",
        expires: 299,
    };
    presign_liveness_explicit_443_without_token: PresignCase {
        region: "eu-west-1",
        service: "rekognition",
        host: "streaming-rekognition.eu-west-1.amazonaws.com",
        port: Some(443),
        path: "/start-face-liveness-session-websocket",
        query: "session-id=x&video-width=1280&video-height=720",
        token: false,
        time: "2026-01-01T00:00:00Z",
        expires: 60,
    };
    presign_no_query_double_encoded_path: PresignCase {
        region: "us-gov-west-1",
        service: "transcribe",
        host: "transcribestreaming-fips.us-gov-west-1.amazonaws.com",
        port: Some(8443),
        path: "/foo%3Dbar/stream",
        query: "",
        token: true,
        time: "2019-01-29T01:56:17.291Z",
        expires: 1,
    };
    presign_repeated_keys_and_empty_values: PresignCase {
        region: "ca-central-1",
        service: "transcribe",
        host: "localhost",
        port: Some(8443),
        path: "/stream-transcription-websocket",
        query: "b=2&a=z&a=y&empty=&A=1",
        token: false,
        time: "1999-12-31T23:59:59.500Z",
        expires: 120,
    };
}

// ---------------------------------------------------------------------------------------------
// Event signing
// ---------------------------------------------------------------------------------------------

fn encode(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    write_message_to(message, &mut out).expect("encodable");
    out
}

fn timestamp_millis(value: &HeaderValue) -> i64 {
    match value {
        HeaderValue::Timestamp(t) => t.to_millis().expect("in range"),
        other => panic!(":date is not a timestamp: {other:?}"),
    }
}

/// Signs `messages` then the end frame with both signers, chained from `seed`, at `times`
/// (one per message plus one for the end frame), and asserts identical signatures.
fn compare_event_chain(
    credentials: &Credentials,
    region: &str,
    service: &str,
    seed: &str,
    messages: &[Message],
    times: &[SystemTime],
) {
    assert_eq!(times.len(), messages.len() + 1);
    let identity = credentials.clone().into();
    let mut ours = EventSigner::new(
        credentials.clone(),
        region,
        service,
        seed,
        sigv4_ws::Clock::system(),
    );
    let mut last = seed.to_owned();
    for (i, time) in times.iter().enumerate() {
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(*time)
            .settings(())
            .build()
            .expect("signing params");
        let (payload, (their_frame, their_signature)) = match messages.get(i) {
            Some(message) => (
                encode(message),
                sign_message(message, &last, &params)
                    .expect("aws-sigv4 signs")
                    .into_parts(),
            ),
            None => (
                Vec::new(),
                sign_empty_message(&last, &params)
                    .expect("aws-sigv4 signs")
                    .into_parts(),
            ),
        };
        let mut frame = BytesMut::new();
        ours.sign_at(&payload, *time, &mut frame).expect("we sign");
        let envelope = decode_envelope(&frame);
        assert_eq!(envelope.signature_hex(), their_signature, "event {i}");
        assert_eq!(
            their_frame.payload().as_ref(),
            payload.as_slice(),
            "event {i} payload"
        );
        let their_date = their_frame
            .headers()
            .iter()
            .find(|h| h.name().as_str() == ":date")
            .map(|h| timestamp_millis(h.value()))
            .expect(":date");
        assert_eq!(envelope.date_millis, their_date, "event {i} :date");
        let their_bytes = their_frame
            .headers()
            .iter()
            .find(|h| h.name().as_str() == ":chunk-signature")
            .and_then(|h| h.value().as_byte_array().ok().cloned())
            .expect(":chunk-signature");
        assert_eq!(their_bytes.as_ref(), envelope.signature.as_slice());
        last = their_signature;
    }
}

fn audio_event(payload: &[u8]) -> Message {
    sdk_audio_event::sdk_audio_event(payload.to_vec())
}

#[test]
fn events_match_aws_sigv4_seeded_by_our_presign() {
    let credentials = creds(AKID, SECRET, Some(TOKEN));
    let url = Url::parse("wss://transcribestreaming.us-west-2.amazonaws.com:8443/stream-transcription-websocket?language-code=en-US&media-encoding=pcm&sample-rate=16000").expect("url");
    let start = iso_time("2024-08-20T23:01:43Z");
    let presigned = Presigner::new(credentials.clone(), "us-west-2", "transcribe")
        .presign_at(&url, start)
        .expect("presign");
    let messages: Vec<Message> = (0u8..4)
        .map(|n| audio_event(&vec![n; 320 * usize::from(n)]))
        .collect();
    let times: Vec<SystemTime> = (1..=5).map(|s| start + Duration::from_secs(s)).collect();
    compare_event_chain(
        &credentials,
        "us-west-2",
        "transcribe",
        presigned.signature(),
        &messages,
        &times,
    );
}

#[test]
fn events_match_aws_sigv4_across_utc_midnight() {
    let credentials = creds(AKID, SECRET, None);
    let messages = vec![
        Message::new(&b"{\"VideoChunk\":\"AAAA\",\"TimestampMillis\":1}"[..])
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("event".into()),
            ))
            .add_header(Header::new(
                ":event-type",
                HeaderValue::String("VideoEvent".into()),
            )),
        Message::new(&b""[..]).add_header(Header::new("flag", HeaderValue::Bool(true))),
    ];
    let times = [
        iso_time("2024-12-31T23:59:58Z"),
        iso_time("2024-12-31T23:59:59Z"),
        iso_time("2025-01-01T00:00:00Z"),
    ];
    compare_event_chain(
        &credentials,
        "ap-northeast-1",
        "rekognition",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        &messages,
        &times,
    );
}

/// Documents why the other tests use whole seconds: with milliseconds, aws-sigv4 truncates
/// the `:date` it hashes and sends, while we keep them (protocol.md 3.3), so the signatures
/// differ -- yet both match the primitives for their own `:date`.
#[test]
fn sub_second_times_differ_only_by_the_date_header() {
    let credentials = creds(AKID, SECRET, None);
    let time = at_millis(1_724_194_904_567);
    let message = audio_event(b"abc");
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("rekognition")
        .time(time)
        .settings(())
        .build()
        .expect("signing params");
    let (_, theirs) = sign_message(&message, "seed", &params)
        .expect("signs")
        .into_parts();
    let mut ours = EventSigner::new(
        credentials.clone(),
        "us-east-1",
        "rekognition",
        "seed",
        sigv4_ws::Clock::system(),
    );
    let mut frame = BytesMut::new();
    ours.sign_at(&encode(&message), time, &mut frame)
        .expect("signs");
    assert_ne!(decode_envelope(&frame).signature_hex(), theirs);

    let mut whole = EventSigner::new(
        credentials,
        "us-east-1",
        "rekognition",
        "seed",
        sigv4_ws::Clock::system(),
    );
    let mut frame = BytesMut::new();
    whole
        .sign_at(&encode(&message), at_millis(1_724_194_904_000), &mut frame)
        .expect("signs");
    assert_eq!(decode_envelope(&frame).signature_hex(), theirs);
}

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

fn region_strategy() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "us-east-1",
        "us-west-2",
        "eu-west-1",
        "ap-southeast-2",
        "sa-east-1",
    ])
}

fn service_strategy() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["transcribe", "rekognition", "testservice"])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Random payloads, header values, times (whole seconds, 1970..2100), seeds and chain
    /// lengths: our event signatures equal aws-sigv4's, end frame included.
    #[test]
    fn event_signatures_equal_aws_sigv4(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 0..4),
        header_value in "[ -~]{0,40}",
        start in 0u64..4_102_444_800,
        gaps in prop::collection::vec(0u64..90_000, 5),
        seed in "[0-9a-f]{64}",
        token in prop::option::of("[A-Za-z0-9+/=]{1,64}"),
        region in region_strategy(),
        service in service_strategy(),
    ) {
        let credentials = creds(AKID, SECRET, token.as_deref());
        let messages: Vec<Message> = payloads
            .iter()
            .map(|p| {
                Message::new(p.clone())
                    .add_header(Header::new(":event-type", HeaderValue::String(header_value.clone().into())))
            })
            .collect();
        let mut time = UNIX_EPOCH + Duration::from_secs(start);
        let times: Vec<SystemTime> = gaps
            .iter()
            .take(messages.len() + 1)
            .map(|gap| {
                time += Duration::from_secs(*gap);
                time
            })
            .collect();
        compare_event_chain(&credentials, region, service, &seed, &messages, &times);
    }

    /// Random query values (any text, escaped by the URL serializer), times with
    /// milliseconds, ports and tokens: our presign signature equals aws-sigv4's.
    #[test]
    fn presign_signatures_equal_aws_sigv4(
        values in prop::collection::vec(("[a-z-]{1,12}", "\\PC{0,24}"), 0..5),
        millis in 0u64..4_102_444_800_000,
        port in prop::option::of(prop::sample::select(vec![443u16, 8443, 9000])),
        token in prop::option::of("[A-Za-z0-9+/=]{1,64}"),
        region in region_strategy(),
        service in service_strategy(),
        expires in 1u64..=300,
    ) {
        let mut url = Url::parse(&format!(
            "https://streaming.{region}.amazonaws.com{}/start-websocket",
            port.map(|p| format!(":{p}")).unwrap_or_default()
        ))
        .expect("url");
        if !values.is_empty() {
            url.query_pairs_mut().extend_pairs(values.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        let credentials = creds(AKID, SECRET, token.as_deref());
        let time = at_millis(millis);
        let theirs = aws_presign(&credentials, url.as_str(), region, service, time, Duration::from_secs(expires));
        let ours = Presigner::new(credentials, region, service)
            .expires_in(Duration::from_secs(expires))
            .presign_at(&url, time)
            .expect("presign");
        prop_assert_eq!(ours.signature(), theirs.signature.as_str());
    }
}
