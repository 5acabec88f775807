#![cfg(all(feature = "sdk-config", feature = "emulator", feature = "transcribe"))]
//! One clock for an app's SDK clients and its streams (issue 15, item 2): a real aws-sdk-sts
//! client, with the `Clock` as its time source and `ClockInterceptor` installed, calls a local
//! STS stand-in an hour ahead of this host; the clock learns the hour, the SDK's next request
//! signs with it once (not twice), and the next Transcribe stream presigns with it, so the
//! emulator (also an hour ahead) accepts its very first attempt.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_types::region::Region;
use aws_types::SdkConfig;
use sigv4_ws::emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use sigv4_ws::proto::sigv4::parse_amz_date;
use sigv4_ws::proto::skew::skew_message_time;
use sigv4_ws::sdk::ClockInterceptor;
use sigv4_ws::services::transcribe::{MediaEncoding, StartStreamTranscription, TranscribeClient};
use sigv4_ws::Clock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const HOUR_MS: i64 = 3_600_000;
/// Longest any single wait may take before the test calls it a failure (not a speed check).
const PATIENCE: Duration = Duration::from_secs(20);
/// How far apart two readings of "now" taken during one exchange may be.
const SLACK_MS: i64 = 5_000;

const IDENTITY: &str = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:iam::123456789012:user/test</Arn>
    <UserId>AIDAEXAMPLEUSERID</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"#;

/// What the STS stand-in answers to one request.
#[derive(Clone)]
enum Answer {
    /// 200 with the caller identity and a `Date` at server time.
    Identity,
    /// 403 `SignatureDoesNotMatch` "Signature expired" with the server time in the message
    /// and no `Date` header, so that only the message can teach the clock.
    SignatureExpired,
}

/// A one-request-per-connection HTTP/1.1 stand-in for STS whose clock is `offset_ms` ahead of
/// this host. It answers `answers` in turn and records each request's `X-Amz-Date`.
struct StsStandIn {
    endpoint: String,
    signed_at: Arc<Mutex<Vec<SystemTime>>>,
}

impl StsStandIn {
    async fn start(offset_ms: i64, answers: Vec<Answer>) -> StsStandIn {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let endpoint = format!("http://{}", listener.local_addr().expect("local addr"));
        let signed_at = Arc::new(Mutex::new(Vec::new()));
        let record = signed_at.clone();
        tokio::spawn(async move {
            for answer in answers {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let head = read_request(&mut socket).await;
                if let Some(date) = header(&head, "x-amz-date").and_then(parse_amz_date) {
                    record
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(date);
                }
                let server_now = server_time(offset_ms);
                let response = match answer {
                    Answer::Identity => http_response(
                        "200 OK",
                        &format!("Date: {}\r\n", httpdate::fmt_http_date(server_now)),
                        IDENTITY,
                    ),
                    Answer::SignatureExpired => {
                        let signed = Clock::system().now();
                        let limit = server_now - Duration::from_secs(300);
                        let body = format!(
                            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>Signature expired: {} is now earlier than {} ({} - 5 min.)</Message></Error><RequestId>1</RequestId></ErrorResponse>",
                            skew_message_time(signed),
                            skew_message_time(limit),
                            skew_message_time(server_now),
                        );
                        http_response("403 Forbidden", "", &body)
                    }
                };
                socket
                    .write_all(response.as_bytes())
                    .await
                    .expect("write response");
                let _ = socket.shutdown().await;
            }
        });
        StsStandIn {
            endpoint,
            signed_at,
        }
    }

    fn signed_at(&self) -> Vec<SystemTime> {
        self.signed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// This host's time moved by `offset_ms`.
fn server_time(offset_ms: i64) -> SystemTime {
    let server = Clock::system();
    server.set_offset_millis(offset_ms);
    server.now()
}

/// The request head, after reading (and dropping) its body.
async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut buf).await.expect("read request");
        assert!(n > 0, "the client closed before sending a request");
        bytes.extend_from_slice(&buf[..n]);
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while bytes.len() < head_end + length {
        let n = socket.read(&mut buf).await.expect("read body");
        assert!(n > 0, "the client closed mid-body");
        bytes.extend_from_slice(&buf[..n]);
    }
    head
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

fn http_response(status: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

fn sts_client(shared: &SdkConfig, endpoint: &str, clock: &Clock) -> aws_sdk_sts::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = aws_sdk_sts::config::Builder::from(shared)
        .endpoint_url(endpoint)
        .http_client(http)
        .time_source(clock.clone())
        .interceptor(ClockInterceptor::new(clock.clone()))
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

async fn emulator_an_hour_ahead() -> EmulatorHandle {
    Emulator::start(EmulatorConfig::default().clock_offset_millis(HOUR_MS))
        .await
        .expect("the emulator starts")
}

/// The shared config an app would load, with `clock` as its time source.
fn shared_config(credentials: Credentials, clock: &Clock) -> SdkConfig {
    SdkConfig::builder()
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .time_source(clock.clone())
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

fn assert_near(actual_ms: i64, expected_ms: i64, what: &str) {
    assert!(
        (actual_ms - expected_ms).abs() <= SLACK_MS,
        "{what}: {actual_ms} ms, expected about {expected_ms} ms"
    );
}

fn millis_from_now(time: SystemTime) -> i64 {
    match time.duration_since(Clock::system().now()) {
        Ok(ahead) => i64::try_from(ahead.as_millis()).expect("fits"),
        Err(behind) => -i64::try_from(behind.duration().as_millis()).expect("fits"),
    }
}

/// Starts a stream with `client`, sends a little audio, ends it, and returns the emulator's
/// records once it is done.
async fn one_stream(client: &TranscribeClient, emulator: &EmulatorHandle) {
    let request = StartStreamTranscription::new(MediaEncoding::Pcm, 16_000).language_code("en-US");
    let mut stream = tokio::time::timeout(PATIENCE, client.start(request))
        .await
        .expect("the stream starts in time")
        .expect("the emulator accepts the stream");
    stream
        .send_audio(vec![0u8; 3_200])
        .await
        .expect("audio is sent");
    stream.finish().await.expect("the stream ends");
    while let Some(event) = tokio::time::timeout(PATIENCE, stream.next_event())
        .await
        .expect("the stream ends in time")
    {
        event.expect("no error event");
    }
    emulator.wait_for_finished(1, PATIENCE).await;
}

#[tokio::test]
async fn an_sdk_call_teaches_the_clock_the_next_stream_presigns_with() {
    let emulator = emulator_an_hour_ahead().await;
    let clock = Clock::system();
    let shared = shared_config(emulator.credentials(), &clock);
    let sts = StsStandIn::start(HOUR_MS, vec![Answer::Identity, Answer::Identity]).await;
    let client = sts_client(&shared, &sts.endpoint, &clock);

    let identity = client
        .get_caller_identity()
        .send()
        .await
        .expect("the first call succeeds");
    assert_eq!(identity.account(), Some("123456789012"));
    assert_near(clock.offset_millis(), HOUR_MS, "offset learned from Date");

    client
        .get_caller_identity()
        .send()
        .await
        .expect("the second call succeeds");
    let signed = sts.signed_at();
    assert_eq!(signed.len(), 2, "{signed:?}");
    assert_near(
        millis_from_now(signed[0]),
        0,
        "first request, before learning",
    );
    // Corrected once by the clock; the SDK's own skew correction must not add it again.
    assert_near(millis_from_now(signed[1]), HOUR_MS, "second request");

    // The streaming client built from the same shared config: its time source is the clock.
    let transcribe = TranscribeClient::from_conf(&shared).endpoint(emulator.endpoint());
    one_stream(&transcribe, &emulator).await;
    let records = emulator.records();
    assert_eq!(records.len(), 1, "one attempt, no skew retry: {records:#?}");
    assert_eq!(records[0].upgrade_status, Some(101), "{records:#?}");
    let url_date = records[0].url_date.expect("the URL carried X-Amz-Date");
    assert_near(millis_from_now(url_date), HOUR_MS, "stream presign time");
}

#[tokio::test]
async fn a_skew_error_teaches_the_clock_without_a_date_header() {
    let clock = Clock::system();
    let shared = shared_config(sigv4_ws::emulator::example_credentials(), &clock);
    let sts = StsStandIn::start(-HOUR_MS, vec![Answer::SignatureExpired]).await;
    let client = sts_client(&shared, &sts.endpoint, &clock);

    let error = client
        .get_caller_identity()
        .send()
        .await
        .expect_err("the stand-in rejects the call");
    assert_eq!(
        aws_sdk_sts::error::ProvideErrorMetadata::code(&error),
        Some("SignatureDoesNotMatch")
    );
    assert_near(
        clock.offset_millis(),
        -HOUR_MS,
        "offset learned from the message",
    );
}
