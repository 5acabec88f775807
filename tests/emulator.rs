#![cfg(feature = "emulator")]
//! The emulator driven by a minimal raw client written here (tokio-tungstenite + Presigner +
//! EventSigner + codec), not by the crate's transport.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sigv4_ws::emulator::{
    Delivery, EmulatedService, Emulator, EmulatorConfig, EmulatorHandle, Fault, Outcome,
    RejectionStyle,
};
use sigv4_ws::proto::codec::{DecodeError, FrameDecoder, HeaderValue, Message};
use sigv4_ws::verify::RejectionKind;
use sigv4_ws::{Clock, EventSigner, ManualTime, PresignedUrl, Presigner};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;
use url::Url;

type Ws = WebSocketStream<TcpStream>;

const TRANSCRIBE: &str = "wss://transcribestreaming.us-east-1.amazonaws.com:8443/stream-transcription-websocket?language-code=en-US&media-encoding=pcm&sample-rate=16000";
const MEDICAL: &str = "wss://transcribestreaming.us-east-1.amazonaws.com:8443/medical-stream-transcription-websocket?language-code=en-US&media-encoding=pcm&sample-rate=16000&specialty=PRIMARYCARE&type=CONVERSATION";
const CALL_ANALYTICS: &str = "wss://transcribestreaming.us-east-1.amazonaws.com:8443/call-analytics-stream-transcription-websocket?language-code=en-US&media-encoding=pcm&sample-rate=8000";
const LIVENESS: &str = "wss://streaming-rekognition.us-east-1.amazonaws.com/start-face-liveness-session-websocket?session-id=5b0a4a5e-2f0e-4d67-9c3a-6a9e0b1f2c3d&video-width=640&video-height=480&challenge-versions=FaceMovementAndLightChallenge_1.0.0";
/// 2024-08-20T23:01:43Z
const T0: u64 = 1_724_194_903;
/// Longest any single wait in these tests may take before it is called a failure.
const PATIENCE: Duration = Duration::from_secs(10);

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn service_of(url: &str) -> &'static str {
    if url.contains("rekognition") {
        "rekognition"
    } else {
        "transcribe"
    }
}

/// `url` with the query parameter `param` set to `value`, or left out (`None`).
fn with_param(url: &str, param: &str, value: Option<&str>) -> String {
    let mut url = Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter_map(|(k, v)| {
            let v = if k == param {
                value?.to_owned()
            } else {
                v.into_owned()
            };
            Some((k.into_owned(), v))
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

struct Conn {
    ws: Ws,
    response: http::Response<Option<Vec<u8>>>,
    presigned: PresignedUrl,
}

/// Presigns `url` with the emulator's credentials and `clock`, and connects to the emulator
/// while sending the AWS `Host` header that was signed.
async fn try_open(handle: &EmulatorHandle, url: &str, clock: &Clock) -> Result<Conn, WsError> {
    let presigned = Presigner::new(handle.credentials(), "us-east-1", service_of(url))
        .presign(&Url::parse(url).unwrap(), clock)
        .unwrap();
    open_presigned(handle, presigned, None).await
}

async fn open_presigned(
    handle: &EmulatorHandle,
    presigned: PresignedUrl,
    host: Option<&str>,
) -> Result<Conn, WsError> {
    let target = &presigned.url()[url::Position::BeforePath..];
    let mut request = format!("ws://{}{}", handle.local_addr(), target)
        .into_client_request()
        .unwrap();
    let host = host
        .map(str::to_owned)
        .unwrap_or_else(|| presigned.host_header());
    request.headers_mut().insert("Host", host.parse().unwrap());
    let tcp = TcpStream::connect(handle.local_addr()).await.unwrap();
    let (ws, response) = tokio_tungstenite::client_async(request, tcp).await?;
    Ok(Conn {
        ws,
        response,
        presigned,
    })
}

async fn open(handle: &EmulatorHandle, url: &str) -> Conn {
    try_open(handle, url, &Clock::system())
        .await
        .expect("upgrade")
}

#[derive(Debug)]
enum Got {
    Event(Message),
    Close(Option<u16>),
    Ended(String),
}

impl Conn {
    async fn send(&mut self, bytes: impl Into<Bytes>) {
        self.ws
            .send(WsMessage::Binary(bytes.into()))
            .await
            .expect("send");
    }

    /// Sends `frames` audio events of `chunk`, then the empty one that ends the stream.
    async fn send_audio_then_end(&mut self, frames: usize, chunk: &[u8]) {
        for _ in 0..frames {
            self.send(audio_event(chunk)).await;
        }
        self.send(audio_event(&[])).await;
    }

    /// Signs `inner` with `signer` and sends the envelope.
    async fn send_signed(&mut self, signer: &mut EventSigner, inner: &[u8]) {
        let frame = signer.sign(inner).unwrap();
        self.send(frame).await;
    }

    async fn next(&mut self) -> Got {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("the emulator said nothing in time");
            match next {
                Some(Ok(WsMessage::Binary(data))) => {
                    return Got::Event(
                        Message::decode(&data).unwrap_or_else(|e| panic!("undecodable frame: {e}")),
                    )
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    return Got::Close(frame.map(|f| u16::from(f.code)))
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Got::Ended(e.to_string()),
                None => return Got::Ended("stream ended".into()),
            }
        }
    }

    /// Every event until the close frame; returns them and the close code.
    async fn until_close(&mut self) -> (Vec<Message>, Option<u16>) {
        let mut events = Vec::new();
        loop {
            match self.next().await {
                Got::Event(m) => events.push(m),
                Got::Close(code) => {
                    // Let tungstenite answer the close and see the end.
                    while let Ok(Some(_)) = tokio::time::timeout(PATIENCE, self.ws.next()).await {}
                    return (events, code);
                }
                Got::Ended(why) => panic!(
                    "ended without a close frame: {why}; events so far {}",
                    events.len()
                ),
            }
        }
    }

    /// `until_close`, checking that the close came no sooner than `at_least` from now.
    async fn until_close_after(&mut self, at_least: Duration) -> (Vec<Message>, Option<u16>) {
        let started = Instant::now();
        let closed = self.until_close().await;
        assert!(started.elapsed() >= at_least, "{:?}", started.elapsed());
        closed
    }

    fn signer(&self, clock: Clock) -> EventSigner {
        EventSigner::new(
            sigv4_ws::emulator::example_credentials(),
            "us-east-1",
            service_of(self.presigned.url().as_str()),
            self.presigned.signature(),
            clock,
        )
    }
}

fn audio_event(audio: &[u8]) -> Bytes {
    Message::new(Bytes::copy_from_slice(audio))
        .with_header(":message-type", HeaderValue::from("event"))
        .with_header(":event-type", HeaderValue::from("AudioEvent"))
        .with_header(
            ":content-type",
            HeaderValue::from("application/octet-stream"),
        )
        .encode()
        .unwrap()
}

fn json_event(event_type: &str, body: &Value) -> Bytes {
    Message::new(Bytes::from(body.to_string()))
        .with_header(":event-type", HeaderValue::from(event_type))
        .with_header(":message-type", HeaderValue::from("event"))
        .with_header(":content-type", HeaderValue::from("application/json"))
        .encode()
        .unwrap()
}

fn video_event(video: &[u8], millis: u64) -> Bytes {
    json_event(
        "VideoEvent",
        &json!({"VideoChunk": base64::engine::general_purpose::STANDARD.encode(video), "TimestampMillis": millis}),
    )
}

fn event_type(m: &Message) -> &str {
    m.header_str(":event-type")
        .or_else(|| m.header_str(":exception-type"))
        .unwrap_or_default()
}

fn body(m: &Message) -> Value {
    serde_json::from_slice(m.payload()).expect("JSON payload")
}

fn transcript(m: &Message) -> (bool, String) {
    let result = &body(m)["Transcript"]["Results"][0];
    (
        result["IsPartial"].as_bool().expect("IsPartial"),
        result["Alternatives"][0]["Transcript"]
            .as_str()
            .expect("Transcript")
            .to_owned(),
    )
}

/// The `:date` of a signed envelope, epoch milliseconds.
fn frame_date(frame: &[u8]) -> i64 {
    Message::decode(frame)
        .unwrap()
        .header(":date")
        .unwrap()
        .as_timestamp_millis()
        .unwrap()
}

/// 100 ms of 16 kHz mono PCM.
const CHUNK_16K: usize = 3200;

fn date_header(conn: &Conn) -> SystemTime {
    let value = conn
        .response
        .headers()
        .get("date")
        .expect("Date header on the 101");
    httpdate::parse_http_date(value.to_str().unwrap()).unwrap()
}

async fn emulator(config: EmulatorConfig) -> EmulatorHandle {
    Emulator::start(config).await.expect("emulator starts")
}

// ---------------------------------------------------------------------------------------------
// Transcribe.

#[tokio::test]
async fn transcribe_sends_partials_during_the_stream_and_a_final_after_the_end_marker() {
    let handle = emulator(EmulatorConfig::default()).await;
    let mut conn = open(&handle, TRANSCRIBE).await;
    assert_eq!(conn.response.status(), 101);
    let server_date = date_header(&conn);
    let skew = server_date
        .duration_since(Clock::system().now())
        .unwrap_or_else(|e| e.duration());
    assert!(
        skew < Duration::from_secs(60),
        "Date header {server_date:?} far from now"
    );

    // Pings are answered.
    conn.ws
        .send(WsMessage::Ping(Bytes::from_static(b"are you there")))
        .await
        .unwrap();
    match tokio::time::timeout(PATIENCE, conn.ws.next())
        .await
        .unwrap()
    {
        Some(Ok(WsMessage::Pong(data))) => assert_eq!(&data[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }

    for _ in 0..15 {
        conn.send(audio_event(&[0u8; CHUNK_16K])).await;
    }
    // A partial arrives while the stream is still open.
    let Got::Event(first) = conn.next().await else {
        panic!("expected a partial result")
    };
    assert_eq!(event_type(&first), "TranscriptEvent");
    assert_eq!(
        transcript(&first),
        (true, "received 1.0 s of audio in 10 frames".into())
    );
    let result = &body(&first)["Transcript"]["Results"][0];
    assert_eq!(result["LanguageCode"], "en-US");
    assert_eq!(result["StartTime"], 0.0);
    assert_eq!(result["EndTime"], 1.0);

    for _ in 15..32 {
        conn.send(audio_event(&[0u8; CHUNK_16K])).await;
    }
    conn.send(audio_event(&[])).await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1000));
    let texts: Vec<(bool, String)> = events.iter().map(transcript).collect();
    assert_eq!(
        texts,
        vec![
            (true, "received 2.0 s of audio in 20 frames".into()),
            (true, "received 3.0 s of audio in 30 frames".into()),
            (false, "received 3.2 s of audio in 32 frames".into()),
        ]
    );

    let records = handle.wait_for_finished(1, PATIENCE).await;
    let record = &records[0];
    assert_eq!(record.service, Some(EmulatedService::Transcribe));
    assert_eq!(
        record.path.as_deref(),
        Some("/stream-transcription-websocket")
    );
    assert_eq!(
        record.host.as_deref(),
        Some("transcribestreaming.us-east-1.amazonaws.com:8443")
    );
    assert_eq!(record.media_frames, 32);
    assert_eq!(record.media_bytes, 32 * CHUNK_16K as u64);
    assert_eq!(record.messages_received, 33);
    assert!(record.frame_dates_millis.is_empty(), "nothing was signed");
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(
        record.url_date.map(secs),
        Some(secs(conn.presigned.signed_at()))
    );
    assert_eq!(
        record
            .sent
            .iter()
            .filter(|s| *s == "TranscriptEvent")
            .count(),
        4
    );
    assert_eq!(record.close_sent, Some(1000));
    assert_eq!(record.close_received, Some(1000));
    assert_eq!(record.outcome, Outcome::Completed);
    assert_eq!(record.rejection, None);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_zero_length_websocket_message_ends_a_transcribe_stream() {
    let handle = emulator(EmulatorConfig::default()).await;
    let mut conn = open(&handle, TRANSCRIBE).await;
    for _ in 0..5 {
        conn.send(audio_event(&[1u8; CHUNK_16K])).await;
    }
    conn.send(Bytes::new()).await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1000));
    assert_eq!(events.len(), 1);
    assert_eq!(
        transcript(&events[0]),
        (false, "received 0.5 s of audio in 5 frames".into())
    );
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert_eq!(records[0].outcome, Outcome::Completed);
}

#[tokio::test]
async fn segments_get_their_own_final_results_and_flac_is_counted_in_bytes() {
    let handle = emulator(
        EmulatorConfig::default()
            .transcript_cadence(Duration::from_secs(1), 2)
            .partials_per_segment(2),
    )
    .await;
    let url = TRANSCRIBE.replace("media-encoding=pcm", "media-encoding=flac");
    let mut conn = open(&handle, &url).await;
    conn.send_audio_then_end(5, &[7u8; 100]).await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1000));
    let results: Vec<(String, bool, String)> = events
        .iter()
        .map(|m| {
            let r = &body(m)["Transcript"]["Results"][0];
            let (partial, text) = transcript(m);
            (r["ResultId"].as_str().unwrap().to_owned(), partial, text)
        })
        .collect();
    assert_eq!(results.len(), 3, "{results:?}");
    assert!(results[0].1);
    assert_eq!(results[0].2, "received 200 bytes of audio in 2 frames");
    assert_eq!(
        (results[1].1, results[1].2.as_str()),
        (false, "received 400 bytes of audio in 4 frames")
    );
    assert_eq!(results[0].0, results[1].0, "same segment, same result id");
    assert_eq!(
        (results[2].1, results[2].2.as_str()),
        (false, "received 100 bytes of audio in 1 frame")
    );
    assert_ne!(
        results[1].0, results[2].0,
        "a new segment has a new result id"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn medical_streams_get_medical_transcripts() {
    let handle = emulator(EmulatorConfig::default()).await;
    let mut conn = open(&handle, MEDICAL).await;
    conn.send_audio_then_end(12, &[0u8; CHUNK_16K]).await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1000));
    assert_eq!(events.len(), 2);
    for event in &events {
        assert_eq!(event_type(event), "TranscriptEvent");
        let result = &body(event)["Transcript"]["Results"][0];
        assert_eq!(result["ChannelId"], "ch_0");
        assert!(
            result.get("LanguageCode").is_none(),
            "medical results carry no LanguageCode"
        );
    }
    assert_eq!(
        transcript(&events[1]),
        (false, "received 1.2 s of audio in 12 frames".into())
    );
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert_eq!(records[0].service, Some(EmulatedService::TranscribeMedical));
}

#[tokio::test]
async fn call_analytics_takes_a_configuration_event_and_sends_utterances_and_categories() {
    let handle = emulator(EmulatorConfig::default()).await;
    let mut conn = open(&handle, CALL_ANALYTICS).await;
    let configuration = json!({"ChannelDefinitions": [{"ChannelId": 0, "ParticipantRole": "CUSTOMER"}, {"ChannelId": 1, "ParticipantRole": "AGENT"}]});
    conn.send(json_event("ConfigurationEvent", &configuration))
        .await;
    // 8 kHz mono: 1600 bytes per 100 ms.
    for _ in 0..10 {
        conn.send(audio_event(&[0u8; 1600])).await;
    }
    let Got::Event(partial) = conn.next().await else {
        panic!("expected an utterance")
    };
    assert_eq!(event_type(&partial), "UtteranceEvent");
    let utterance = body(&partial);
    assert_eq!(utterance["IsPartial"], true);
    assert_eq!(utterance["ParticipantRole"], "CUSTOMER");
    assert_eq!(
        utterance["Transcript"],
        "received 1.0 s of audio in 10 frames"
    );
    assert_eq!(utterance["EndOffsetMillis"], 1000);
    conn.send(audio_event(&[0u8; 800])).await;
    conn.send(audio_event(&[])).await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1000));
    let kinds: Vec<&str> = events.iter().map(event_type).collect();
    assert_eq!(kinds, ["UtteranceEvent", "CategoryEvent"]);
    assert_eq!(body(&events[0])["IsPartial"], false);
    assert_eq!(
        body(&events[0])["Transcript"],
        "received 1.1 s of audio in 11 frames"
    );
    assert_eq!(body(&events[1])["MatchedCategories"], json!([]));
}

#[tokio::test]
async fn a_late_configuration_event_is_a_bad_request() {
    let handle = emulator(EmulatorConfig::default()).await;
    let mut conn = open(&handle, CALL_ANALYTICS).await;
    conn.send(audio_event(&[0u8; 1600])).await;
    conn.send(json_event("ConfigurationEvent", &json!({})))
        .await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1008));
    assert_eq!(event_type(&events[0]), "BadRequestException");
    assert!(body(&events[0])["Message"]
        .as_str()
        .unwrap()
        .contains("must be the first event"));
}

#[tokio::test]
async fn signed_transcribe_frames_are_verified_unwrapped_and_their_dates_recorded() {
    let handle = emulator(EmulatorConfig::default().require_signed_transcribe(true)).await;
    let mut conn = open(&handle, TRANSCRIBE).await;
    let mut signer = conn.signer(Clock::system());
    let mut sent_dates = Vec::new();
    for _ in 0..10 {
        let frame = signer.sign(&audio_event(&[0u8; CHUNK_16K])).unwrap();
        sent_dates.push(frame_date(&frame));
        conn.send(frame).await;
    }
    let end = signer.finish().unwrap();
    sent_dates.push(frame_date(&end));
    conn.send(end).await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1000));
    assert_eq!(
        transcript(events.last().unwrap()),
        (false, "received 1.0 s of audio in 10 frames".into())
    );
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert_eq!(records[0].frame_dates_millis, sent_dates);
    assert_eq!(records[0].frame_dates().len(), 11);

    // A zero-length message is no signed end frame.
    let mut conn = open(&handle, TRANSCRIBE).await;
    conn.send(Bytes::new()).await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1008));
    assert_eq!(event_type(&events[0]), "BadRequestException");
    let records = handle.wait_for_finished(2, PATIENCE).await;
    assert_eq!(
        records[1].rejection.as_ref().unwrap().kind,
        Some(RejectionKind::MissingSignature)
    );

    // And a bare event is refused once signing is required.
    let mut conn = open(&handle, TRANSCRIBE).await;
    conn.send(audio_event(&[0u8; 10])).await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1008));
    assert_eq!(event_type(&events[0]), "BadRequestException");
    assert!(body(&events[0])["Message"]
        .as_str()
        .unwrap()
        .starts_with("Missing Authentication Token"));
    let records = handle.wait_for_finished(3, PATIENCE).await;
    assert_eq!(
        records[2].rejection.as_ref().unwrap().kind,
        Some(RejectionKind::MissingSignature)
    );
}

#[tokio::test]
async fn a_tampered_signed_frame_mid_stream_gets_an_exception_and_a_close() {
    let handle = emulator(EmulatorConfig::default()).await;
    let mut conn = open(&handle, TRANSCRIBE).await;
    let mut signer = conn.signer(Clock::system());
    conn.send_signed(&mut signer, &audio_event(&[0u8; 320]))
        .await;
    let _skipped = signer.sign(&audio_event(&[1u8; 320])).unwrap();
    conn.send_signed(&mut signer, &audio_event(&[2u8; 320]))
        .await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1008));
    assert_eq!(event_type(&events[0]), "InvalidSignatureException");
    assert_eq!(
        body(&events[0])["Message"],
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );
    let records = handle.wait_for_finished(1, PATIENCE).await;
    let rejection = records[0].rejection.clone().unwrap();
    assert_eq!(rejection.kind, Some(RejectionKind::SignatureMismatch));
    assert_eq!(rejection.delivery, Delivery::ExceptionFrame);
    assert_eq!(
        records[0].frame_dates_millis.len(),
        1,
        "only the first frame verified"
    );
}

#[tokio::test]
async fn the_no_audio_timeout_ends_the_stream_with_a_bad_request() {
    let handle =
        emulator(EmulatorConfig::default().no_audio_timeout(Duration::from_millis(300))).await;
    let mut conn = open(&handle, TRANSCRIBE).await;
    conn.send(audio_event(&[0u8; CHUNK_16K])).await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1008));
    assert_eq!(events.len(), 1);
    assert_eq!(event_type(&events[0]), "BadRequestException");
    assert_eq!(events[0].header_str(":message-type"), Some("exception"));
    assert_eq!(
        events[0].header_str(":content-type"),
        Some("application/json")
    );
    assert_eq!(
        body(&events[0]),
        json!({"Message": "Your request timed out because no new audio was received for 0.3 seconds."})
    );
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert_eq!(records[0].outcome, Outcome::TimedOut);
}

#[tokio::test]
async fn missing_service_parameters_are_named_in_the_exception() {
    let handle = emulator(EmulatorConfig::default()).await;
    const BAD_REQUEST: &str = "BadRequestException";
    const VALIDATION: &str = "ValidationException";
    for (base, param, value, exception) in [
        (TRANSCRIBE, "media-encoding", None, BAD_REQUEST),
        (TRANSCRIBE, "sample-rate", Some("1000"), BAD_REQUEST),
        (TRANSCRIBE, "language-code", None, BAD_REQUEST),
        (MEDICAL, "specialty", None, BAD_REQUEST),
        (LIVENESS, "video-width", None, VALIDATION),
        (LIVENESS, "session-id", None, VALIDATION),
    ] {
        let url = with_param(base, param, value);
        let mut conn = open(&handle, &url).await;
        conn.send(audio_event(&[0u8; 10])).await;
        let (events, code) = conn.until_close().await;
        assert_eq!(code, Some(1008), "{url}");
        assert_eq!(event_type(&events[0]), exception, "{url}");
        let message = body(&events[0])["Message"].as_str().unwrap().to_owned();
        assert!(message.contains(&format!("'{param}'")), "{url}: {message}");
    }
    // Identify-language replaces language-code.
    let mut conn = open(
        &handle,
        &TRANSCRIBE.replace(
            "language-code=en-US",
            "identify-language=true&language-options=fr-FR,en-US",
        ),
    )
    .await;
    conn.send(audio_event(&[0u8; CHUNK_16K])).await;
    conn.send(audio_event(&[])).await;
    let (events, _) = conn.until_close().await;
    let result = &body(&events[0])["Transcript"]["Results"][0];
    assert_eq!(result["LanguageCode"], "fr-FR");
    assert_eq!(result["LanguageIdentification"][0]["LanguageCode"], "fr-FR");
}

// ---------------------------------------------------------------------------------------------
// Liveness.

#[tokio::test]
async fn liveness_sends_session_information_while_streaming_and_disconnection_after_the_end() {
    let handle = emulator(EmulatorConfig::default()).await;
    let mut conn = open(&handle, LIVENESS).await;
    assert!(conn.response.headers().get("date").is_some());
    let mut signer = conn.signer(Clock::system());
    let mut dates = Vec::new();
    let mut send = |signer: &mut EventSigner, inner: Bytes| {
        let frame = signer.sign(&inner).unwrap();
        dates.push(frame_date(&frame));
        frame
    };

    let frame = send(
        &mut signer,
        video_event(&[0x1a, 0x45, 0xdf, 0xa3, 1, 2, 3], 1_724_194_903_000),
    );
    conn.send(frame).await;
    let Got::Event(info) = conn.next().await else {
        panic!("expected ServerSessionInformationEvent")
    };
    assert_eq!(event_type(&info), "ServerSessionInformationEvent");
    let challenge =
        &body(&info)["SessionInformation"]["Challenge"]["FaceMovementAndLightChallenge"];
    for field in [
        "OvalParameters",
        "LightChallengeType",
        "ChallengeConfig",
        "ColorSequences",
    ] {
        assert!(
            challenge.get(field).is_some(),
            "missing {field}: {challenge}"
        );
    }
    assert!(challenge["ColorSequences"][0]["FreshnessColor"]["RGB"].is_array());
    assert_eq!(challenge["OvalParameters"]["CenterX"], 320.0);

    let frame = send(&mut signer, video_event(&[4u8; 1000], 1_724_194_904_000));
    conn.send(frame).await;
    let session_info = json!({"Challenge": {"FaceMovementAndLightChallenge": {"ChallengeId": "0b5e1f9a-3c2d-4e6f-8a7b-9c0d1e2f3a4b", "VideoStartTimestamp": 1_724_194_904_000_i64}}});
    let frame = send(
        &mut signer,
        json_event("ClientSessionInformationEvent", &session_info),
    );
    conn.send(frame).await;
    let frame = send(&mut signer, video_event(&[], 1_724_194_905_000));
    conn.send(frame).await;
    let Got::Event(disconnect) = conn.next().await else {
        panic!("expected DisconnectionEvent")
    };
    assert_eq!(event_type(&disconnect), "DisconnectionEvent");
    let at = body(&disconnect)["TimestampMillis"].as_i64().unwrap();
    let now = Clock::system()
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!((now - at).abs() < 60_000, "{at} vs {now}");

    let end = signer.finish().unwrap();
    dates.push(frame_date(&end));
    conn.send(end).await;
    conn.ws.close(None).await.unwrap();
    while let Ok(Some(_)) = tokio::time::timeout(PATIENCE, conn.ws.next()).await {}

    let records = handle.wait_for_finished(1, PATIENCE).await;
    let record = &records[0];
    assert_eq!(record.service, Some(EmulatedService::Liveness));
    assert_eq!(record.frame_dates_millis, dates);
    assert_eq!(record.media_frames, 2);
    assert_eq!(record.media_bytes, 1007);
    assert_eq!(
        record.video_timestamps_millis,
        [1_724_194_903_000, 1_724_194_904_000, 1_724_194_905_000],
        "every VideoEvent's TimestampMillis, the empty one included"
    );
    assert_eq!(
        record.sent,
        ["ServerSessionInformationEvent", "DisconnectionEvent"],
        "no ChallengeEvent for the 1.0.0 light challenge"
    );
    assert_eq!(
        record.signed_host.as_deref(),
        Some("streaming-rekognition.us-east-1.amazonaws.com")
    );
    assert_eq!(record.close_received, Some(1005));
    assert_eq!(record.outcome, Outcome::Completed);
    assert!(record
        .params
        .contains(&("video-width".into(), "640".into())));
}

#[tokio::test]
async fn liveness_closes_with_1000_when_the_client_lingers_after_disconnection() {
    let handle = emulator(EmulatorConfig::default().close_grace(Duration::from_millis(200))).await;
    let mut conn = open(&handle, LIVENESS).await;
    let mut signer = conn.signer(Clock::system());
    conn.send_signed(&mut signer, &video_event(&[1, 2, 3], T0 * 1000 + 1))
        .await;
    conn.send(signer.finish().unwrap()).await;
    let (events, code) = conn.until_close().await;
    let kinds: Vec<&str> = events.iter().map(event_type).collect();
    assert_eq!(
        kinds,
        ["ServerSessionInformationEvent", "DisconnectionEvent"]
    );
    assert_eq!(code, Some(1000));
}

#[tokio::test]
async fn an_unsigned_liveness_event_is_refused() {
    let handle = emulator(EmulatorConfig::default()).await;
    let mut conn = open(&handle, LIVENESS).await;
    conn.send(video_event(&[1, 2, 3], 1_724_194_903_000)).await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1008));
    // The first events go out on the first frame at the latest; the refusal follows them.
    let kinds: Vec<&str> = events.iter().map(event_type).collect();
    assert_eq!(
        kinds,
        ["ServerSessionInformationEvent", "InvalidSignatureException"]
    );
    let message = body(&events[1])["Message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("Missing Authentication Token"),
        "{message}"
    );
    assert!(message.contains(":chunk-signature"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// Rejections of the upgrade.

#[tokio::test]
async fn an_emulator_an_hour_ahead_dates_its_101_so_and_refuses_the_first_frame() {
    let time = ManualTime::new(at(T0));
    let handle = emulator(
        EmulatorConfig::default()
            .time_source(time.clone())
            .clock_offset_millis(3_600_000),
    )
    .await;
    // The client's clock is the host's: an hour behind the emulator.
    let client_clock = Clock::new(time.clone());
    let mut conn = try_open(&handle, TRANSCRIBE, &client_clock).await.unwrap();
    assert_eq!(conn.response.status(), 101);
    assert_eq!(date_header(&conn), at(T0 + 3600));
    assert_eq!(handle.clock().now(), at(T0 + 3600));
    // Nothing comes right behind the 101: the exception waits for the first message.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), conn.ws.next())
            .await
            .is_err()
    );
    conn.send(audio_event(&[0u8; 320])).await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1008));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].header_str(":message-type"), Some("exception"));
    assert_eq!(event_type(&events[0]), "BadRequestException");
    assert_eq!(
        body(&events[0]),
        json!({"Message": "Signature expired: 20240820T230143Z is now earlier than 20240820T235643Z (20240821T000143Z - 5 min.)"})
    );
    let records = handle.wait_for_finished(1, PATIENCE).await;
    let rejection = records[0].rejection.clone().unwrap();
    assert_eq!(rejection.kind, Some(RejectionKind::SignatureExpired));
    assert_eq!(rejection.delivery, Delivery::ExceptionFrame);
    let diagnosis = rejection.diagnosis.unwrap();
    assert_eq!(diagnosis.skew_millis(), Some(-3_600_000));
    assert!(
        diagnosis.to_string().contains("1 h 00 m behind"),
        "{diagnosis}"
    );
    assert_eq!(records[0].url_date, Some(at(T0)));
    assert_eq!(
        records[0].upgrade_date_header.as_deref(),
        Some("Wed, 21 Aug 2024 00:01:43 GMT")
    );
}

#[tokio::test]
async fn an_emulator_an_hour_behind_says_not_yet_current_to_liveness() {
    let time = ManualTime::new(at(T0));
    let handle = emulator(
        EmulatorConfig::default()
            .time_source(time.clone())
            .clock_offset_millis(-3_600_000),
    )
    .await;
    let client_clock = Clock::new(time.clone());
    let mut conn = try_open(&handle, LIVENESS, &client_clock).await.unwrap();
    assert_eq!(date_header(&conn), at(T0 - 3600));
    let mut signer = conn.signer(client_clock);
    conn.send_signed(&mut signer, &video_event(&[1], T0 * 1000 + 1))
        .await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1008));
    assert_eq!(event_type(&events[0]), "InvalidSignatureException");
    assert_eq!(
        body(&events[0])["Message"],
        "Signature not yet current: 20240820T230143Z is still later than 20240820T220643Z (20240820T220143Z + 5 min.)"
    );
}

#[tokio::test]
async fn frames_whose_dates_leave_the_window_mid_stream_are_refused() {
    let time = ManualTime::new(at(T0));
    let handle = emulator(EmulatorConfig::default().time_source(time.clone())).await;
    let client_time = ManualTime::new(at(T0));
    let mut conn = try_open(&handle, LIVENESS, &Clock::new(client_time.clone()))
        .await
        .unwrap();
    let mut signer = conn.signer(Clock::new(client_time.clone()));
    conn.send_signed(&mut signer, &video_event(&[1], T0 * 1000 + 1))
        .await;
    let Got::Event(info) = conn.next().await else {
        panic!()
    };
    assert_eq!(event_type(&info), "ServerSessionInformationEvent");
    // The client signs a frame 6 minutes in the future.
    client_time.advance(Duration::from_secs(360));
    conn.send_signed(&mut signer, &video_event(&[2], T0 * 1000 + 2))
        .await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1008));
    assert_eq!(
        body(&events[0])["Message"],
        "Signature not yet current: 20240820T230743Z is still later than 20240820T230643Z (20240820T230143Z + 5 min.)"
    );
}

#[tokio::test]
async fn http403_style_refuses_the_upgrade_with_date_error_type_and_json_body() {
    let time = ManualTime::new(at(T0));
    let handle = emulator(
        EmulatorConfig::default()
            .time_source(time.clone())
            .rejection_style(RejectionStyle::Http403),
    )
    .await;
    let stranger =
        aws_credential_types::Credentials::new("AKIDSTRANGER", "secret", None, None, "t");
    let presigned = Presigner::new(stranger, "us-east-1", "rekognition")
        .presign(&Url::parse(LIVENESS).unwrap(), &Clock::new(time.clone()))
        .unwrap();
    let Err(WsError::Http(response)) = open_presigned(&handle, presigned, None).await.map(|_| ())
    else {
        panic!("expected an HTTP refusal")
    };
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["date"], "Tue, 20 Aug 2024 23:01:43 GMT");
    assert_eq!(
        response.headers()["x-amzn-errortype"],
        "UnrecognizedClientException"
    );
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"__type": "UnrecognizedClientException", "message": "The security token included in the request is invalid."})
    );
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert_eq!(records[0].outcome, Outcome::Rejected);
    assert_eq!(records[0].upgrade_status, Some(403));
    assert_eq!(
        records[0].rejection.as_ref().unwrap().delivery,
        Delivery::HttpStatus(403)
    );
}

/// Presigns the Transcribe URL for its host without the port, and connects with the port in
/// the `Host` header.
async fn open_signed_without_port(handle: &EmulatorHandle) -> Result<Conn, WsError> {
    let presigned = Presigner::new(handle.credentials(), "us-east-1", "transcribe")
        .presign(
            &Url::parse(&TRANSCRIBE.replace(":8443", "")).unwrap(),
            &Clock::system(),
        )
        .unwrap();
    open_presigned(
        handle,
        presigned,
        Some("transcribestreaming.us-east-1.amazonaws.com:8443"),
    )
    .await
}

#[tokio::test]
async fn a_host_signed_without_its_port_is_accepted_by_default_like_the_js_sdk_needs() {
    let handle = emulator(EmulatorConfig::default().rejection_style(RejectionStyle::Http403)).await;
    let result = open_signed_without_port(&handle).await;
    assert!(result.is_ok(), "the upgrade should be accepted");
    drop(result);
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert_eq!(
        records[0].host.as_deref(),
        Some("transcribestreaming.us-east-1.amazonaws.com:8443")
    );
    assert_eq!(
        records[0].signed_host.as_deref(),
        Some("transcribestreaming.us-east-1.amazonaws.com"),
        "the URL verified with the Host without its port"
    );
}

#[tokio::test]
async fn a_host_signed_without_its_port_is_diagnosed_in_the_record() {
    let handle = emulator(
        EmulatorConfig::default()
            .rejection_style(RejectionStyle::Http403)
            .accept_host_without_port(false),
    )
    .await;
    let result = open_signed_without_port(&handle).await;
    let Err(WsError::Http(response)) = result.map(|_| ()) else {
        panic!("expected a refusal")
    };
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["x-amzn-errortype"],
        "InvalidSignatureException"
    );
    let records = handle.wait_for_finished(1, PATIENCE).await;
    let diagnosis = records[0]
        .rejection
        .as_ref()
        .unwrap()
        .diagnosis
        .as_ref()
        .unwrap()
        .to_string();
    assert!(
        diagnosis.contains(
            "the Host you signed (`transcribestreaming.us-east-1.amazonaws.com`) differs"
        ),
        "{diagnosis}"
    );
}

#[tokio::test]
async fn an_unknown_path_is_a_404() {
    let handle = emulator(EmulatorConfig::default()).await;
    let result = try_open(
        &handle,
        "wss://transcribestreaming.us-east-1.amazonaws.com:8443/no-such-api?x=1",
        &Clock::system(),
    )
    .await;
    let Err(WsError::Http(response)) = result.map(|_| ()) else {
        panic!("expected a 404")
    };
    assert_eq!(response.status(), 404);
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert_eq!(records[0].outcome, Outcome::NotFound);
}

// ---------------------------------------------------------------------------------------------
// Faults.

#[tokio::test]
async fn stall_before_upgrade_never_answers() {
    let handle = emulator(EmulatorConfig::default().fault(Fault::StallBeforeUpgrade)).await;
    let attempt = tokio::time::timeout(
        Duration::from_millis(300),
        try_open(&handle, TRANSCRIBE, &Clock::system()),
    )
    .await;
    assert!(attempt.is_err(), "the upgrade must not complete");
    let records = handle.shutdown().await;
    assert!(records[0].fault_injected);
    assert_eq!(records[0].outcome, Outcome::Fault);
}

#[tokio::test]
async fn stall_after_upgrade_never_reads_or_writes() {
    let handle = emulator(EmulatorConfig::default().fault(Fault::StallAfterUpgrade)).await;
    let mut conn = open(&handle, TRANSCRIBE).await;
    conn.ws
        .send(WsMessage::Ping(Bytes::from_static(b"x")))
        .await
        .unwrap();
    conn.send(audio_event(&[0u8; CHUNK_16K])).await;
    conn.send(audio_event(&[])).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), conn.ws.next())
            .await
            .is_err(),
        "no pong, no results"
    );
    let records = handle.shutdown().await;
    assert!(records[0].fault_injected);
    assert_eq!(records[0].messages_received, 0);
}

/// An emulator with `fault`, and a Transcribe connection to it that has sent `frames` audio
/// events of 320 bytes.
async fn faulty_after(fault: Fault, frames: usize) -> (EmulatorHandle, Conn) {
    let handle = emulator(EmulatorConfig::default().fault(fault)).await;
    let mut conn = open(&handle, TRANSCRIBE).await;
    for _ in 0..frames {
        conn.send(audio_event(&[0u8; 320])).await;
    }
    (handle, conn)
}

#[tokio::test]
async fn close_mid_stream_cleanly_sends_1011() {
    let fault = Fault::CloseMidStream {
        after_frames: 3,
        abrupt: false,
    };
    let (handle, mut conn) = faulty_after(fault, 3).await;
    let (events, code) = conn.until_close().await;
    assert!(events.is_empty());
    assert_eq!(code, Some(1011));
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert_eq!(records[0].outcome, Outcome::Fault);
    assert_eq!(records[0].messages_received, 3);
}

#[tokio::test]
async fn close_mid_stream_abruptly_drops_the_connection_without_a_close_frame() {
    let fault = Fault::CloseMidStream {
        after_frames: 2,
        abrupt: true,
    };
    let (handle, mut conn) = faulty_after(fault, 2).await;
    match conn.next().await {
        Got::Ended(_) => {}
        other => panic!("expected the connection to drop, got {other:?}"),
    }
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert_eq!(records[0].close_sent, None);
}

async fn first_binary_after_one_frame(fault: Fault) -> Bytes {
    let (_handle, mut conn) = faulty_after(fault, 1).await;
    loop {
        match tokio::time::timeout(PATIENCE, conn.ws.next())
            .await
            .unwrap()
        {
            Some(Ok(WsMessage::Binary(data))) => return data,
            Some(Ok(_)) => {}
            other => panic!("expected a binary message, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn garbage_is_not_an_event_stream_frame() {
    let data = first_binary_after_one_frame(Fault::Garbage { after_frames: 1 }).await;
    assert!(!data.is_empty());
    let mut buffer = bytes::BytesMut::from(&data[..]);
    assert!(FrameDecoder::new().decode(&mut buffer).is_err());
}

#[tokio::test]
async fn bad_crc_fails_the_message_checksum() {
    let data = first_binary_after_one_frame(Fault::BadCrc { after_frames: 1 }).await;
    assert!(matches!(
        Message::decode(&data),
        Err(DecodeError::MessageChecksum { .. })
    ));
}

#[tokio::test]
async fn oversized_declares_more_than_sixteen_mebibytes() {
    let data = first_binary_after_one_frame(Fault::Oversized { after_frames: 1 }).await;
    let declared = u32::from_be_bytes(data[..4].try_into().unwrap());
    assert!(declared as usize > 16 * 1024 * 1024 + 128 * 1024);
    let mut buffer = bytes::BytesMut::from(&data[..]);
    assert!(matches!(
        FrameDecoder::new().decode(&mut buffer),
        Err(DecodeError::PayloadTooLarge { .. })
    ));
}

#[tokio::test]
async fn a_slow_reader_delays_every_message() {
    let delay = Duration::from_millis(100);
    let handle = emulator(EmulatorConfig::default().fault(Fault::SlowReader {
        per_message_delay: delay,
    }))
    .await;
    let mut conn = open(&handle, TRANSCRIBE).await;
    let started = Instant::now();
    conn.send_audio_then_end(4, &[0u8; CHUNK_16K]).await;
    let (events, code) = conn.until_close().await;
    // Five messages, each read only after the delay: the final cannot come sooner.
    assert!(started.elapsed() >= delay * 5, "{:?}", started.elapsed());
    assert_eq!(code, Some(1000));
    assert_eq!(
        transcript(&events[0]),
        (false, "received 0.4 s of audio in 4 frames".into())
    );
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert!(records[0].fault_injected);
}

// ---------------------------------------------------------------------------------------------
// Many connections, and shutdown.

#[tokio::test]
async fn many_connections_at_once_and_one_after_another() {
    let handle = emulator(EmulatorConfig::default()).await;
    let mut tasks = Vec::new();
    for i in 0..8usize {
        let mut conn = open(&handle, if i % 2 == 0 { TRANSCRIBE } else { MEDICAL }).await;
        tasks.push(tokio::spawn(async move {
            conn.send_audio_then_end(i + 1, &[0u8; CHUNK_16K]).await;
            let (events, code) = conn.until_close().await;
            (transcript(events.last().unwrap()).1, code)
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let (text, code) = task.await.unwrap();
        assert_eq!(code, Some(1000));
        assert_eq!(
            text,
            format!(
                "received {}.{} s of audio in {} frame{}",
                (i + 1) / 10,
                (i + 1) % 10,
                i + 1,
                if i == 0 { "" } else { "s" }
            )
        );
    }
    for _ in 0..3 {
        let mut conn = open(&handle, TRANSCRIBE).await;
        conn.send(Bytes::new()).await;
        let (_, code) = conn.until_close().await;
        assert_eq!(code, Some(1000));
    }
    let records = handle.wait_for_finished(11, PATIENCE).await;
    assert_eq!(records.len(), 11);
    assert!(
        records.iter().all(|r| r.outcome == Outcome::Completed),
        "{records:?}"
    );
    let ids: Vec<u64> = records.iter().map(|r| r.id).collect();
    assert_eq!(ids, (0..11).collect::<Vec<_>>());
}

#[tokio::test]
async fn shutdown_closes_open_sessions_with_1001_and_returns() {
    let handle = emulator(EmulatorConfig::default()).await;
    let mut conns = Vec::new();
    for url in [TRANSCRIBE, MEDICAL, LIVENESS] {
        let mut conn = open(&handle, url).await;
        if url == LIVENESS {
            let mut signer = conn.signer(Clock::system());
            conn.send_signed(&mut signer, &video_event(&[1], T0 * 1000 + 1))
                .await;
        } else {
            conn.send(audio_event(&[0u8; 320])).await;
        }
        conns.push(conn);
    }
    // Wait until the emulator has seen every first message.
    let deadline = Instant::now() + PATIENCE;
    while handle
        .records()
        .iter()
        .filter(|r| r.messages_received > 0)
        .count()
        < 3
    {
        assert!(Instant::now() < deadline, "messages not seen");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let clients = tokio::spawn(async move {
        let mut codes = Vec::new();
        for mut conn in conns {
            let (_, code) = conn.until_close().await;
            codes.push(code);
        }
        codes
    });
    let records = tokio::time::timeout(PATIENCE, handle.shutdown())
        .await
        .expect("shutdown returns");
    assert_eq!(clients.await.unwrap(), [Some(1001), Some(1001), Some(1001)]);
    assert_eq!(records.len(), 3);
    for record in &records {
        assert_eq!(record.outcome, Outcome::Shutdown);
        assert_eq!(record.close_sent, Some(1001));
    }
}

// ---------------------------------------------------------------------------------------------
// Parameter constraints, challenge events, end frames, timestamps, idle timeout.

/// Opens `url`, sends one signed (Liveness) or bare (Transcribe) event, and returns the
/// exception type and message that end the connection with 1008.
async fn refusal(handle: &EmulatorHandle, url: &str) -> (String, String) {
    let mut conn = try_open(handle, url, &Clock::system())
        .await
        .expect("exception-frame style: the upgrade succeeds");
    if url.contains("rekognition") {
        let mut signer = conn.signer(Clock::system());
        conn.send_signed(&mut signer, &video_event(&[1], T0 * 1000 + 1))
            .await;
    } else {
        conn.send(audio_event(&[0u8; 320])).await;
    }
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1008), "{url}");
    assert_eq!(events.len(), 1, "{url}");
    (
        event_type(&events[0]).to_owned(),
        body(&events[0])["Message"].as_str().unwrap().to_owned(),
    )
}

fn liveness_with(param: &str, value: &str) -> String {
    with_param(LIVENESS, param, Some(value))
}

#[tokio::test]
async fn liveness_parameters_are_checked_against_the_api_reference_constraints() {
    let handle = emulator(EmulatorConfig::default()).await;
    let long = ["FaceMovementChallenge_1.0.0"; 6].join(",");
    assert_eq!(long.len(), 167);
    let cases: Vec<(&str, &str, String)> = vec![
        (
            "challenge-versions",
            "Light_1.0.0",
            "2 validation errors detected: Value 'Light_1.0.0' at 'challenge-versions' failed to satisfy constraint: Member must have length greater than or equal to 15; Value 'Light_1.0.0' at 'challenge-versions' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([a-zA-Z]{10,}_\\d+\\.\\d+\\.\\d+){1}(,[a-zA-Z]{10,}_\\d+\\.\\d+\\.\\d+)*".to_owned(),
        ),
        (
            "challenge-versions",
            "FaceMovement2Challenge_1.0.0",
            "1 validation error detected: Value 'FaceMovement2Challenge_1.0.0' at 'challenge-versions' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([a-zA-Z]{10,}_\\d+\\.\\d+\\.\\d+){1}(,[a-zA-Z]{10,}_\\d+\\.\\d+\\.\\d+)*".to_owned(),
        ),
        (
            "challenge-versions",
            "FaceMovementChallenge_1.0,FaceMovementAndLightChallenge_1.0.0",
            "1 validation error detected: Value 'FaceMovementChallenge_1.0,FaceMovementAndLightChallenge_1.0.0' at 'challenge-versions' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([a-zA-Z]{10,}_\\d+\\.\\d+\\.\\d+){1}(,[a-zA-Z]{10,}_\\d+\\.\\d+\\.\\d+)*".to_owned(),
        ),
        (
            "challenge-versions",
            &long,
            format!("1 validation error detected: Value '{long}' at 'challenge-versions' failed to satisfy constraint: Member must have length less than or equal to 150"),
        ),
        (
            "session-id",
            "not-a-uuid",
            "2 validation errors detected: Value 'not-a-uuid' at 'session-id' failed to satisfy constraint: Member must have length greater than or equal to 36; Value 'not-a-uuid' at 'session-id' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}".to_owned(),
        ),
        (
            "session-id",
            "5B0A4A5E-2F0E-4D67-9C3A-6A9E0B1F2C3D",
            "1 validation error detected: Value '5B0A4A5E-2F0E-4D67-9C3A-6A9E0B1F2C3D' at 'session-id' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}".to_owned(),
        ),
        (
            "video-width",
            "64",
            "2 validation errors detected: Value '64' at 'video-width' failed to satisfy constraint: Member must have length greater than or equal to 3; Value '64' at 'video-width' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9]{3,}$".to_owned(),
        ),
        (
            "challenge-versions",
            "UnknownChallengeType_1.0.0",
            "None of the challenge versions 'UnknownChallengeType_1.0.0' is supported: this emulator runs FaceMovementAndLightChallenge and FaceMovementChallenge.".to_owned(),
        ),
    ];
    for (param, value, expected) in cases {
        let (exception, message) = refusal(&handle, &liveness_with(param, value)).await;
        assert_eq!(exception, "ValidationException", "{param}={value}");
        assert_eq!(message, expected, "{param}={value}");
    }
    // Two parameters wrong at once: both reported.
    let url = liveness_with("session-id", "x").replace("video-height=480", "video-height=48");
    let (_, message) = refusal(&handle, &url).await;
    assert!(
        message.starts_with("4 validation errors detected: "),
        "{message}"
    );
    assert!(message.contains("at 'video-height'"), "{message}");
}

/// Opens a Liveness session with these challenge versions and returns the events the emulator
/// sends before the client says anything, up to the first pause: the service speaks first.
async fn liveness_greeting(versions: &str) -> Vec<Message> {
    let handle = emulator(EmulatorConfig::default()).await;
    let url = liveness_with("challenge-versions", versions);
    let mut conn = try_open(&handle, &url, &Clock::system()).await.unwrap();
    let mut events = Vec::new();
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_millis(300), conn.ws.next()).await
    {
        if let WsMessage::Binary(data) = message {
            events.push(Message::decode(&data).unwrap());
        }
    }
    events
}

#[tokio::test]
async fn a_challenge_event_precedes_the_session_information_unless_light_1_0_0() {
    // The light challenge at 1.0.0: session information only.
    let events =
        liveness_greeting("FaceMovementAndLightChallenge_1.0.0,FaceMovementChallenge_1.0.0").await;
    let kinds: Vec<&str> = events.iter().map(event_type).collect();
    assert_eq!(kinds, ["ServerSessionInformationEvent"]);

    for (versions, kind, version) in [
        (
            "FaceMovementChallenge_1.0.0",
            "FaceMovementChallenge",
            "1.0.0",
        ),
        (
            "FaceMovementChallenge_1.0.0,FaceMovementAndLightChallenge_1.0.0",
            "FaceMovementChallenge",
            "1.0.0",
        ),
        (
            "FaceMovementAndLightChallenge_2.1.0,FaceMovementChallenge_1.0.0",
            "FaceMovementAndLightChallenge",
            "2.1.0",
        ),
        (
            "SomeFutureChallenge_1.0.0,FaceMovementChallenge_3.0.0",
            "FaceMovementChallenge",
            "3.0.0",
        ),
    ] {
        let events = liveness_greeting(versions).await;
        let kinds: Vec<&str> = events.iter().map(event_type).collect();
        // Amplify Android needs the ChallengeEvent first (protocol.md 4.5).
        assert_eq!(
            kinds,
            ["ChallengeEvent", "ServerSessionInformationEvent"],
            "{versions}"
        );
        let challenge = &body(&events[1])["SessionInformation"]["Challenge"];
        assert!(challenge.get(kind).is_some(), "{versions}: {challenge}");
        assert_eq!(events[0].header_str(":message-type"), Some("event"));
        assert_eq!(
            body(&events[0]),
            json!({"Type": kind, "Version": version}),
            "{versions}"
        );
    }
}

#[tokio::test]
async fn a_stalled_liveness_session_times_out_before_its_disconnection() {
    let handle =
        emulator(EmulatorConfig::default().liveness_idle_timeout(Duration::from_millis(300))).await;
    let mut conn = open(&handle, LIVENESS).await;
    let mut signer = conn.signer(Clock::system());
    conn.send_signed(&mut signer, &video_event(&[1], T0 * 1000 + 1))
        .await;
    let (events, code) = conn.until_close_after(Duration::from_millis(250)).await;
    assert_eq!(code, Some(1008));
    let kinds: Vec<&str> = events.iter().map(event_type).collect();
    assert_eq!(
        kinds,
        ["ServerSessionInformationEvent", "ValidationException"]
    );
    assert_eq!(
        body(&events[1]),
        json!({"Message": "Your request timed out because no new event was received for 0.3 seconds."})
    );
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert_eq!(records[0].outcome, Outcome::TimedOut);
    assert_eq!(records[0].close_sent, Some(1008));

    // A client that never says anything gets the session information, then times out too.
    let mut conn = open(&handle, LIVENESS).await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1008));
    let kinds: Vec<&str> = events.iter().map(event_type).collect();
    assert_eq!(
        kinds,
        ["ServerSessionInformationEvent", "ValidationException"]
    );
    let records = handle.wait_for_finished(2, PATIENCE).await;
    assert_eq!(records[1].outcome, Outcome::TimedOut);

    // The default is 30 s.
    assert!(format!("{:?}", EmulatorConfig::default()).contains("liveness_idle_timeout: 30s"));
}

#[tokio::test]
async fn call_analytics_accepts_identify_language_instead_of_a_language_code() {
    let handle = emulator(EmulatorConfig::default()).await;
    let url = CALL_ANALYTICS.replace(
        "language-code=en-US",
        "identify-language=true&language-options=es-US,en-US",
    );
    let mut conn = open(&handle, &url).await;
    conn.send_audio_then_end(3, &[0u8; 1600]).await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1000));
    let kinds: Vec<&str> = events.iter().map(event_type).collect();
    assert_eq!(kinds, ["UtteranceEvent", "CategoryEvent"]);
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert_eq!(records[0].outcome, Outcome::Completed);
    assert_eq!(records[0].rejection, None);

    // Neither a language code nor identification: refused, naming both.
    let (exception, message) =
        refusal(&handle, &CALL_ANALYTICS.replace("language-code=en-US&", "")).await;
    assert_eq!(exception, "BadRequestException");
    assert!(
        message.contains("'language-code'") && message.contains("'identify-language'"),
        "{message}"
    );
}

#[tokio::test]
async fn only_two_channels_are_accepted_and_only_with_channel_identification() {
    let handle = emulator(EmulatorConfig::default()).await;
    for (params, expected) in [
        (
            "&number-of-channels=1&enable-channel-identification=true",
            "1 validation error detected: Value '1' at 'number-of-channels' failed to satisfy constraint: Member must have value greater than or equal to 2",
        ),
        (
            "&number-of-channels=3&enable-channel-identification=true",
            "The parameter 'number-of-channels' must be 2: only two-channel audio is supported; got '3'.",
        ),
        (
            "&number-of-channels=2",
            "The parameter 'number-of-channels' requires 'enable-channel-identification' set to true.",
        ),
        (
            "&enable-channel-identification=true",
            "The parameter 'enable-channel-identification' requires 'number-of-channels' (2).",
        ),
    ] {
        for base in [TRANSCRIBE, MEDICAL] {
            let (exception, message) = refusal(&handle, &format!("{base}{params}")).await;
            assert_eq!(exception, "BadRequestException", "{params}");
            assert_eq!(message, expected, "{params}");
        }
    }
    // Two channels with identification: accepted (16 kHz stereo: 6400 bytes per 100 ms).
    let url = format!("{TRANSCRIBE}&number-of-channels=2&enable-channel-identification=true");
    let mut conn = open(&handle, &url).await;
    conn.send(audio_event(&[0u8; 6400])).await;
    conn.send(audio_event(&[])).await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1000));
    assert_eq!(
        transcript(&events[0]),
        (false, "received 0.1 s of audio in 1 frame".into())
    );
}

#[tokio::test]
async fn a_signed_transcribe_end_frame_after_the_empty_audio_event_is_verified_and_recorded() {
    let handle = emulator(EmulatorConfig::default().close_grace(Duration::from_secs(5))).await;
    let mut conn = open(&handle, TRANSCRIBE).await;
    let mut signer = conn.signer(Clock::system());
    let mut dates = Vec::new();
    for inner in [audio_event(&[0u8; CHUNK_16K]), audio_event(&[])] {
        let frame = signer.sign(&inner).unwrap();
        dates.push(frame_date(&frame));
        conn.send(frame).await;
    }
    // The finals come after the empty AudioEvent, before the end frame is even sent...
    let Got::Event(last) = conn.next().await else {
        panic!("expected the final result")
    };
    assert_eq!(
        transcript(&last),
        (false, "received 0.1 s of audio in 1 frame".into())
    );
    // ...and the emulator still waits for the end frame before closing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!handle.records()[0].is_finished());
    let end = signer.finish().unwrap();
    dates.push(frame_date(&end));
    conn.send(end).await;
    let (events, code) = conn.until_close().await;
    assert!(events.is_empty());
    assert_eq!(code, Some(1000));
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert_eq!(
        records[0].frame_dates_millis, dates,
        "the end frame's date included"
    );
    assert_eq!(records[0].outcome, Outcome::Completed);

    // A wrong end frame (its chain skips a signature) is refused after the finals.
    let mut conn = open(&handle, TRANSCRIBE).await;
    let mut signer = conn.signer(Clock::system());
    conn.send_signed(&mut signer, &audio_event(&[0u8; 320]))
        .await;
    conn.send_signed(&mut signer, &audio_event(&[])).await;
    let _skipped = signer.sign(&audio_event(&[1u8; 320])).unwrap();
    conn.send(signer.finish().unwrap()).await;
    let (events, code) = conn.until_close().await;
    let kinds: Vec<&str> = events.iter().map(event_type).collect();
    assert_eq!(kinds, ["TranscriptEvent", "InvalidSignatureException"]);
    assert_eq!(code, Some(1008));
    let records = handle.wait_for_finished(2, PATIENCE).await;
    assert_eq!(
        records[1].rejection.as_ref().unwrap().kind,
        Some(RejectionKind::SignatureMismatch)
    );
    assert_eq!(records[1].frame_dates_millis.len(), 2);
}

#[tokio::test]
async fn a_signed_transcribe_stream_without_an_end_frame_closes_after_the_grace() {
    let handle = emulator(EmulatorConfig::default().close_grace(Duration::from_millis(300))).await;
    let mut conn = open(&handle, TRANSCRIBE).await;
    let mut signer = conn.signer(Clock::system());
    conn.send_signed(&mut signer, &audio_event(&[0u8; 320]))
        .await;
    conn.send_signed(&mut signer, &audio_event(&[])).await;
    let (events, code) = conn.until_close_after(Duration::from_millis(250)).await;
    assert_eq!(events.len(), 1);
    assert_eq!(code, Some(1000));
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert_eq!(records[0].frame_dates_millis.len(), 2);
    assert_eq!(records[0].outcome, Outcome::Completed);
}

// ---------------------------------------------------------------------------------------------
// Configured waits of `Duration::MAX` (issue 14 item 8).

/// `Duration::MAX` as every emulator wait means "never time out": before deadlines were
/// computed with checked arithmetic, `Instant::now() + Duration::MAX` panicked in the
/// connection task (Transcribe's no-audio deadline, Liveness's first-event and idle deadlines,
/// the close grace) and in `wait_for_finished` itself.
#[tokio::test]
async fn duration_max_waits_mean_never_and_do_not_panic() {
    let config = EmulatorConfig::default()
        .no_audio_timeout(Duration::MAX)
        .close_grace(Duration::MAX)
        .handshake_timeout(Duration::MAX)
        .liveness_idle_timeout(Duration::MAX)
        .liveness_first_event_delay(Duration::MAX);
    let handle = emulator(config).await;

    let mut transcribe = open(&handle, TRANSCRIBE).await;
    transcribe.send_audio_then_end(3, &[1u8; CHUNK_16K]).await;
    let (events, code) = transcribe.until_close().await;
    assert_eq!(code, Some(1000));
    assert!(!events.is_empty(), "the stream got its transcript");

    let mut liveness = open(&handle, LIVENESS).await;
    liveness.ws.close(None).await.expect("client close");
    let _ = liveness.until_close().await;

    let records = handle.wait_for_finished(2, Duration::MAX).await;
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].outcome, Outcome::Completed);
    assert!(
        records.iter().all(|r| r.is_finished()),
        "both connections ended without a panic: {records:?}"
    );
}

/// Streams one video and then this `ClientSessionInformationEvent` on a session with these
/// challenge versions, and returns the `ValidationException`'s message.
async fn refused_client_information(versions: &str, information: Value) -> String {
    let handle = emulator(EmulatorConfig::default()).await;
    let url = liveness_with("challenge-versions", versions);
    let mut conn = try_open(&handle, &url, &Clock::system()).await.unwrap();
    let mut signer = conn.signer(Clock::system());
    conn.send_signed(&mut signer, &video_event(&[1, 2, 3], T0 * 1000))
        .await;
    conn.send_signed(
        &mut signer,
        &json_event("ClientSessionInformationEvent", &information),
    )
    .await;
    let (events, code) = conn.until_close().await;
    assert_eq!(code, Some(1008), "{information}");
    let refusal = events.last().expect("an exception");
    assert_eq!(event_type(refusal), "ValidationException", "{information}");
    body(refusal)["Message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn client_information_is_checked_against_the_model() {
    const LIGHT: &str = "FaceMovementAndLightChallenge_2.0.0,FaceMovementChallenge_1.0.0";
    const ID: &str = "0b5e1f9a-3c2d-4e6f-8a7b-9c0d1e2f3a4b";
    let start = T0 as i64 * 1000;
    let cases = [
        (
            LIGHT,
            json!({"Challenge": {}}),
            "1 validation error detected: Value '{}' at 'Challenge' failed to satisfy constraint: Member must have exactly one member, FaceMovementAndLightChallenge, the challenge of this session",
        ),
        (
            "FaceMovementChallenge_1.0.0",
            json!({"Challenge": {"FaceMovementAndLightChallenge": {"ChallengeId": ID}}}),
            "failed to satisfy constraint: Member must have exactly one member, FaceMovementChallenge, the challenge of this session",
        ),
        (
            LIGHT,
            json!({"Challenge": {"FaceMovementAndLightChallenge": {"ChallengeId": "c-1"}}}),
            "1 validation error detected: Value 'c-1' at 'Challenge.FaceMovementAndLightChallenge.ChallengeId' failed to satisfy constraint: Member must satisfy regular expression pattern: ",
        ),
        (
            LIGHT,
            json!({"Challenge": {"FaceMovementAndLightChallenge": {"ChallengeId": ID, "VideoStartTimestamp": 1}}}),
            "Value '1' at 'Challenge.FaceMovementAndLightChallenge.VideoStartTimestamp' failed to satisfy constraint: Member must be an epoch-millisecond timestamp between 1640995200000 and 2272147200000",
        ),
        (
            LIGHT,
            json!({"Challenge": {"FaceMovementAndLightChallenge": {"ChallengeId": ID, "ColorDisplayed": {
                "CurrentColor": {"RGB": [255, 0]}, "SequenceNumber": 51, "CurrentColorStartTimestamp": start}}}}),
            "2 validation errors detected: Value '[255,0]' at 'Challenge.FaceMovementAndLightChallenge.ColorDisplayed.CurrentColor.RGB' failed to satisfy constraint: Member must be a list of 3 integers between 0 and 255; Value '51' at 'Challenge.FaceMovementAndLightChallenge.ColorDisplayed.SequenceNumber' failed to satisfy constraint: Member must be between 0 and 50",
        ),
        (
            "FaceMovementChallenge_1.0.0",
            json!({"Challenge": {"FaceMovementChallenge": {"ChallengeId": ID, "InitialFace": {
                "BoundingBox": {"Width": 320, "Height": 0.5, "Left": 0.1, "Top": 0.1}, "InitialFaceDetectedTimestamp": start}}}}),
            "1 validation error detected: Value '320' at 'Challenge.FaceMovementChallenge.InitialFace.BoundingBox.Width' failed to satisfy constraint: Member must be a fraction of the video size between 0 and 1",
        ),
    ];
    for (versions, information, expected) in cases {
        let message = refused_client_information(versions, information.clone()).await;
        assert!(
            message.contains(expected),
            "{information}\n{message}\nexpected {expected}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Ambiguous requests (issue 16 item 2).

/// Two `Host` headers (as Python's `websockets` sends when given one as an extra header) get
/// HTTP 400 saying so (RFC 9112 3.2), even with the exception-frame rejection style; before,
/// the emulator verified against the first and answered with a 101 and an exception frame.
/// Written as raw HTTP so that no client library merges the two headers.
#[tokio::test]
async fn two_host_headers_are_a_400_that_says_so() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let handle = emulator(EmulatorConfig::default()).await;
    let presigned = Presigner::new(handle.credentials(), "us-east-1", "transcribe")
        .presign(&Url::parse(TRANSCRIBE).unwrap(), &Clock::system())
        .unwrap();
    let target = &presigned.url()[url::Position::BeforePath..];
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        handle.local_addr(),
        presigned.host_header()
    );
    let mut tcp = TcpStream::connect(handle.local_addr()).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("2 Host headers"), "{response}");
}
