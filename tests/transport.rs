//! The transport against the emulator: late presigning, signing at write time, clock learning
//! and the one retry, refusals that are not retried, timeouts, mid-stream closes, backpressure.
#![cfg(all(feature = "emulator", feature = "transport"))]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use sigv4_ws::emulator::{
    ConnectionRecord, Emulator, EmulatorConfig, EmulatorHandle, Fault, RejectionStyle,
};
use sigv4_ws::proto::codec::{HeaderValue, Message};
use sigv4_ws::transport::{
    ConnectRequest, Connector, ErrorKind, FrameSigning, OffsetSource, SessionConfig,
};
use sigv4_ws::{Clock, ManualTime};
use url::Url;

const PATIENCE: Duration = Duration::from_secs(10);
const HOUR_MS: i64 = 3_600_000;

fn transcribe_url(handle: &EmulatorHandle) -> Url {
    let mut url = handle.endpoint();
    url.set_path("/stream-transcription-websocket");
    url.set_query(Some(
        "language-code=en-US&media-encoding=pcm&sample-rate=16000",
    ));
    url
}

fn liveness_url(handle: &EmulatorHandle) -> Url {
    let mut url = handle.endpoint();
    url.set_path("/start-face-liveness-session-websocket");
    url.set_query(Some(
        "session-id=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0&video-width=320&video-height=240&challenge-versions=FaceMovementAndLightChallenge_1.0.0",
    ));
    url
}

fn audio_event(bytes: usize) -> Message {
    audio_event_of(vec![0u8; bytes])
}

fn audio_event_of(audio: Vec<u8>) -> Message {
    Message::new(audio)
        .with_header(":message-type", HeaderValue::String("event".into()))
        .with_header(":event-type", HeaderValue::String("AudioEvent".into()))
        .with_header(
            ":content-type",
            HeaderValue::String("application/octet-stream".into()),
        )
}

fn video_event(timestamp_millis: i64, chunk_base64: &str) -> Message {
    let json = format!(r#"{{"VideoChunk":"{chunk_base64}","TimestampMillis":{timestamp_millis}}}"#);
    Message::new(json.into_bytes())
        .with_header(":event-type", HeaderValue::String("VideoEvent".into()))
        .with_header(":message-type", HeaderValue::String("event".into()))
        .with_header(
            ":content-type",
            HeaderValue::String("application/json".into()),
        )
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn start(config: EmulatorConfig) -> EmulatorHandle {
    Emulator::start(config)
        .await
        .expect("the emulator starts on loopback")
}

fn request(handle: &EmulatorHandle, url: Url, service: &str, clock: &Clock) -> ConnectRequest {
    ConnectRequest::new(url, "us-east-1", service)
        .credentials(handle.credentials())
        .clock(clock.clone())
}

fn transcribe_request(handle: &EmulatorHandle, clock: &Clock) -> ConnectRequest {
    request(handle, transcribe_url(handle), "transcribe", clock)
}

/// Streams `frames` audio events, ends the stream, and collects what comes back.
async fn transcribe_round_trip(
    handle: &EmulatorHandle,
    clock: &Clock,
    config: SessionConfig,
    frames: usize,
) -> (
    Vec<Message>,
    sigv4_ws::transport::SessionStats,
    Vec<sigv4_ws::transport::OffsetLearned>,
) {
    let session = Connector::new(config)
        .connect(transcribe_request(handle, clock))
        .await
        .expect("connects");
    let learned_at_connect = session.offsets_learned();
    let (mut sink, mut stream) = session.split();
    let reader = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(item) = stream.next().await {
            events.push(item.expect("no error from the emulator"));
        }
        (events, stream.stats(), stream.offsets_learned())
    });
    for _ in 0..frames {
        sink.send(audio_event(3200)).await.expect("frame accepted");
    }
    sink.send(audio_event(0))
        .await
        .expect("end marker accepted");
    sink.close().await.expect("end of stream");
    let (events, stats, learned) = tokio::time::timeout(PATIENCE, reader)
        .await
        .expect("the stream ends")
        .expect("reader task");
    assert!(learned.len() >= learned_at_connect.len());
    (events, stats, learned)
}

fn verified_record(records: &[ConnectionRecord]) -> &ConnectionRecord {
    records
        .iter()
        .rfind(|r| r.rejection.is_none() && r.upgrade_status == Some(101))
        .expect("one connection went through")
}

#[tokio::test]
async fn a_plain_transcribe_stream_round_trips() {
    let handle = start(EmulatorConfig::default()).await;
    let clock = Clock::system();
    let (events, stats, learned) =
        transcribe_round_trip(&handle, &clock, SessionConfig::default(), 12).await;
    assert!(events
        .iter()
        .any(|m| m.header_str(":event-type") == Some("TranscriptEvent")));
    assert_eq!(stats.frames_sent, 13);
    assert_eq!(stats.reconnects, 0);
    assert!(
        learned.is_empty(),
        "no correction when the clocks agree: {learned:?}"
    );
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].media_frames, 12);
    handle.shutdown().await;
}

/// The emulator's clock is off by `offset`; the client learns it and every signature verifies.
async fn liveness_with_emulator_offset(offset_ms: i64, emulator: EmulatorConfig) {
    let handle = start(emulator.clock_offset_millis(offset_ms)).await;
    let clock = Clock::system();
    let config = SessionConfig::default().frame_signing(FrameSigning::Signed);
    let session = Connector::new(config)
        .connect(request(
            &handle,
            liveness_url(&handle),
            "rekognition",
            &clock,
        ))
        .await
        .expect("connects after learning the offset");
    let (mut sink, mut stream) = session.split();
    let reader = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(m) => events.push(m.header_str(":event-type").unwrap_or_default().to_owned()),
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        (events, stream.offsets_learned(), stream.stats())
    });
    for _ in 0..4 {
        sink.send(video_event(millis(clock.now()), "AAAA"))
            .await
            .unwrap();
    }
    sink.send(video_event(millis(clock.now()), ""))
        .await
        .unwrap();
    sink.close().await.unwrap();
    let (events, learned, stats) = tokio::time::timeout(PATIENCE, reader)
        .await
        .unwrap()
        .unwrap();
    assert!(
        events.contains(&"ServerSessionInformationEvent".to_owned()),
        "{events:?}"
    );
    assert!(
        events.contains(&"DisconnectionEvent".to_owned()),
        "{events:?}"
    );
    assert!(!learned.is_empty(), "the offset was learned");
    let learned_ms = clock.offset_millis();
    assert!(
        (learned_ms - offset_ms).abs() < 5_000,
        "learned {learned_ms} for {offset_ms}"
    );

    let records = handle
        .wait_for_finished(stats.reconnects as usize + 1, PATIENCE)
        .await;
    let good = verified_record(&records);
    let server_now = millis(handle.clock().now());
    // The URL and every frame carry corrected times: within the window of the emulator's clock.
    let url_date = millis(good.url_date.expect("url date"));
    assert!(
        (url_date - server_now).abs() < 60_000,
        "URL X-Amz-Date {url_date} vs server {server_now}"
    );
    assert_eq!(
        good.frame_dates_millis.len(),
        6,
        "5 events + the end frame, all verified"
    );
    for date in &good.frame_dates_millis {
        assert!(
            (date - server_now).abs() < 60_000,
            ":date {date} vs server {server_now}"
        );
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn liveness_succeeds_against_a_server_an_hour_ahead() {
    liveness_with_emulator_offset(HOUR_MS, EmulatorConfig::default()).await;
}

#[tokio::test]
async fn liveness_succeeds_against_a_server_an_hour_behind() {
    liveness_with_emulator_offset(-HOUR_MS, EmulatorConfig::default()).await;
}

#[tokio::test]
async fn skew_is_learned_from_the_exception_frame_when_there_is_no_date_header() {
    liveness_with_emulator_offset(HOUR_MS, EmulatorConfig::default().send_date_header(false)).await;
}

#[tokio::test]
async fn skew_is_learned_from_a_refused_upgrade_when_there_is_no_date_header() {
    liveness_with_emulator_offset(
        -HOUR_MS,
        EmulatorConfig::default()
            .send_date_header(false)
            .rejection_style(RejectionStyle::Http403),
    )
    .await;
}

#[tokio::test]
async fn the_date_header_corrects_the_url_and_the_frames_with_one_re_presign() {
    let handle = start(EmulatorConfig::default().clock_offset_millis(HOUR_MS)).await;
    let clock = Clock::system();
    let (events, stats, learned) =
        transcribe_round_trip(&handle, &clock, SessionConfig::default(), 5).await;
    assert!(!events.is_empty());
    assert_eq!(learned.len(), 1, "{learned:?}");
    assert_eq!(learned[0].source, OffsetSource::UpgradeDate);
    assert_eq!(
        stats.reconnects, 0,
        "corrected while connecting, before any frame"
    );
    let records = handle.wait_for_finished(2, PATIENCE).await;
    assert_eq!(records.len(), 2, "exactly one re-presign");
    let good = verified_record(&records);
    assert_eq!(good.media_frames, 5);
    let url_shift = millis(records[1].url_date.unwrap()) - millis(records[0].url_date.unwrap());
    assert!(
        (url_shift - HOUR_MS).abs() < 5_000,
        "X-Amz-Date moved by {url_shift} ms"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn an_exception_frame_mid_connection_replays_every_frame_after_reconnecting() {
    let handle = start(
        EmulatorConfig::default()
            .clock_offset_millis(-HOUR_MS)
            .send_date_header(false),
    )
    .await;
    let clock = Clock::system();
    let (_, stats, learned) =
        transcribe_round_trip(&handle, &clock, SessionConfig::default(), 8).await;
    assert_eq!(stats.reconnects, 1);
    assert!(
        learned
            .iter()
            .any(|l| l.source == OffsetSource::ExceptionFrame),
        "{learned:?}"
    );
    let records = handle.wait_for_finished(2, PATIENCE).await;
    assert_eq!(records.len(), 2);
    // Transcribe frames are unsigned, so the first connection's URL was judged on the first frame.
    assert!(records[0].rejection.is_some());
    // None dropped, none duplicated: the second connection got all 8 audio frames.
    assert_eq!(verified_record(&records).media_frames, 8);
    handle.shutdown().await;
}

/// A Transcribe request with the emulator's access key and another secret.
fn with_wrong_secret(handle: &EmulatorHandle, secret: &str) -> ConnectRequest {
    let wrong = aws_credential_types::Credentials::new(
        handle.credentials().access_key_id(),
        secret,
        None,
        None,
        "test",
    );
    ConnectRequest::new(transcribe_url(handle), "us-east-1", "transcribe")
        .credentials(wrong)
        .clock(Clock::system())
}

#[tokio::test]
async fn a_signature_mismatch_is_not_retried() {
    let handle = start(EmulatorConfig::default().rejection_style(RejectionStyle::Http403)).await;
    let result = Connector::new(SessionConfig::default())
        .connect(with_wrong_secret(&handle, "not-the-secret"))
        .await;
    let error = result.expect_err("the signature cannot match");
    assert_eq!(error.kind(), &ErrorKind::SignatureMismatch, "{error}");
    assert!(error.is_auth());
    assert!(!error.is_clock_skew());
    assert_eq!(error.http_status(), Some(403));
    assert!(!error.to_string().contains("not-the-secret"));
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert_eq!(records.len(), 1, "no retry");
    handle.shutdown().await;
}

#[tokio::test]
async fn a_signature_mismatch_in_an_exception_frame_is_not_retried() {
    let handle = start(EmulatorConfig::default()).await;
    let session = Connector::new(SessionConfig::default())
        .connect(with_wrong_secret(&handle, "wrong"))
        .await
        .expect("the upgrade itself succeeds; the rejection follows the first frame");
    let (mut sink, mut stream) = session.split();
    sink.send(audio_event(3200)).await.unwrap();
    let first = tokio::time::timeout(PATIENCE, stream.next()).await.unwrap();
    let error = first.expect("an item").expect_err("a rejection");
    assert_eq!(error.kind(), &ErrorKind::SignatureMismatch);
    assert_eq!(error.exception_type(), Some("InvalidSignatureException"));
    assert!(
        tokio::time::timeout(PATIENCE, stream.next())
            .await
            .unwrap()
            .is_none(),
        "then the stream ends"
    );
    assert_eq!(stream.stats().reconnects, 0);
    assert_eq!(handle.wait_for_finished(1, PATIENCE).await.len(), 1);
    handle.shutdown().await;
}

/// A frame that waited in the queue longer than the 5-minute window is signed when it is
/// written, not when it was queued, so it verifies.
#[tokio::test(flavor = "current_thread")]
async fn a_frame_queued_longer_than_the_window_is_signed_at_write_time() {
    let time = ManualTime::new(UNIX_EPOCH + Duration::from_secs(1_767_225_600));
    let handle = start(EmulatorConfig::default().time_source(time.clone())).await;
    let clock = Clock::new(time.clone());
    let session = Connector::new(SessionConfig::default().frame_signing(FrameSigning::Signed))
        .connect(request(
            &handle,
            liveness_url(&handle),
            "rekognition",
            &clock,
        ))
        .await
        .unwrap();
    let queued_at = millis(clock.now());
    let (mut sink, mut stream) = session.split();
    // On a current-thread runtime the driver cannot run between these lines: the frame sits
    // in the queue while the clock moves six minutes on.
    sink.feed(video_event(queued_at, "AAAA")).await.unwrap();
    time.advance(Duration::from_secs(6 * 60));
    sink.feed(video_event(millis(clock.now()), ""))
        .await
        .unwrap();
    sink.close().await.unwrap();
    while let Some(item) = tokio::time::timeout(PATIENCE, stream.next()).await.unwrap() {
        item.expect("no rejection");
    }
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert!(records[0].rejection.is_none(), "{:?}", records[0].rejection);
    let first_frame_date = records[0].frame_dates_millis[0];
    assert_eq!(
        first_frame_date - queued_at,
        6 * 60 * 1000,
        "signed when written, not when queued"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn a_client_built_long_before_connecting_presigns_at_connect() {
    let time = ManualTime::new(UNIX_EPOCH + Duration::from_secs(1_767_225_600));
    let handle = start(EmulatorConfig::default().time_source(time.clone())).await;
    let clock = Clock::new(time.clone());
    let connector = Connector::new(SessionConfig::default());
    let prepared = transcribe_request(&handle, &clock);
    // Built during "INIT", used ten minutes later during "INVOKE".
    time.advance(Duration::from_secs(600));
    let session = connector.connect(prepared).await.unwrap();
    let (mut sink, mut stream) = session.split();
    sink.send(audio_event(3200)).await.unwrap();
    sink.send(audio_event(0)).await.unwrap();
    sink.close().await.unwrap();
    while let Some(item) = tokio::time::timeout(PATIENCE, stream.next()).await.unwrap() {
        item.expect("no rejection");
    }
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert!(records[0].rejection.is_none());
    assert_eq!(
        millis(records[0].url_date.unwrap()),
        millis(time_now(&time))
    );
    handle.shutdown().await;
}

fn time_now(time: &ManualTime) -> SystemTime {
    use aws_smithy_async::time::TimeSource;
    time.now()
}

#[tokio::test]
async fn a_server_that_never_answers_the_upgrade_times_out() {
    let handle = start(EmulatorConfig::default().fault(Fault::StallBeforeUpgrade)).await;
    let started = tokio::time::Instant::now();
    let error =
        Connector::new(SessionConfig::default().connect_timeout(Duration::from_millis(300)))
            .connect(transcribe_request(&handle, &Clock::system()))
            .await
            .expect_err("no answer");
    assert_eq!(error.kind(), &ErrorKind::ConnectTimeout);
    assert!(error.is_timeout());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "gave up near the configured 300 ms"
    );
    drop(handle);
}

#[tokio::test]
async fn a_server_that_goes_silent_after_the_upgrade_hits_the_idle_timeout() {
    let handle = start(EmulatorConfig::default().fault(Fault::StallAfterUpgrade)).await;
    let session =
        Connector::new(SessionConfig::default().idle_timeout(Some(Duration::from_millis(300))))
            .connect(transcribe_request(&handle, &Clock::system()))
            .await
            .unwrap();
    let watch = session.watch();
    let (mut sink, mut stream) = session.split();
    sink.send(audio_event(320)).await.unwrap();
    let error = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::IdleTimeout);
    assert!(tokio::time::timeout(PATIENCE, stream.next())
        .await
        .unwrap()
        .is_none());
    tokio::time::timeout(PATIENCE, watch.finished())
        .await
        .expect("the driver stops");
    drop(handle);
}

async fn closes_mid_stream(abrupt: bool) {
    let handle = start(EmulatorConfig::default().fault(Fault::CloseMidStream {
        after_frames: 3,
        abrupt,
    }))
    .await;
    let session = Connector::new(SessionConfig::default())
        .connect(transcribe_request(&handle, &Clock::system()))
        .await
        .unwrap();
    let watch = session.watch();
    let (mut sink, mut stream) = session.split();
    let producer = tokio::spawn(async move {
        for _ in 0..50 {
            if sink.send(audio_event(3200)).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    });
    let mut error = None;
    while let Some(item) = tokio::time::timeout(PATIENCE, stream.next()).await.unwrap() {
        if let Err(e) = item {
            error = Some(e);
        }
    }
    let error = error.expect("a typed error");
    assert!(
        matches!(error.kind(), ErrorKind::ConnectionClosed | ErrorKind::Io),
        "{:?}: {error}",
        error.kind()
    );
    if !abrupt {
        assert_eq!(error.close_code(), Some(1011));
    }
    tokio::time::timeout(PATIENCE, watch.finished())
        .await
        .expect("the driver stops");
    assert!(
        producer.await.unwrap(),
        "the producer is told the session ended"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn a_clean_close_mid_stream_is_a_typed_error() {
    closes_mid_stream(false).await;
}

#[tokio::test]
async fn an_abrupt_close_mid_stream_is_a_typed_error() {
    closes_mid_stream(true).await;
}

#[tokio::test]
async fn a_producer_that_outruns_a_slow_server_is_held_back() {
    let handle = start(EmulatorConfig::default().fault(Fault::SlowReader {
        per_message_delay: Duration::from_millis(20),
    }))
    .await;
    let queue = 4;
    let session = Connector::new(SessionConfig::default().queue_capacity(queue))
        .connect(transcribe_request(&handle, &Clock::system()))
        .await
        .unwrap();
    let (mut sink, _stream) = session.split();
    let frame = 256 * 1024;
    let mut accepted = 0u64;
    let mut max_backlog = 0u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), sink.send(audio_event(frame))).await
        {
            Ok(sent) => sent.expect("accepted"),
            Err(_) => continue, // held back: the queue is full
        }
        accepted += 1;
        max_backlog = max_backlog.max(accepted - sink.stats().frames_sent);
    }
    // Unbounded buffering would have accepted 2 s of instant sends (thousands of frames).
    assert!(
        accepted < 400,
        "accepted {accepted} frames of {frame} bytes in 2 s"
    );
    assert!(
        max_backlog <= queue as u64 + 2,
        "backlog {max_backlog} > queue {queue}"
    );
    drop(sink);
    drop(handle);
}

#[tokio::test]
async fn dropping_a_session_mid_stream_stops_its_task() {
    let handle = start(EmulatorConfig::default()).await;
    let session = Connector::new(SessionConfig::default())
        .connect(transcribe_request(&handle, &Clock::system()))
        .await
        .unwrap();
    let watch = session.watch();
    let mut session = session;
    session.send(audio_event(3200)).await.unwrap();
    drop(session);
    tokio::time::timeout(PATIENCE, watch.finished())
        .await
        .expect("no task outlives the session");
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert_eq!(records[0].close_received, Some(1001));
    handle.shutdown().await;
}

#[tokio::test]
async fn plain_ws_to_a_non_loopback_host_is_refused() {
    let error = Connector::new(SessionConfig::default())
        .connect(
            ConnectRequest::new(
                Url::parse("ws://example.com/stream-transcription-websocket").unwrap(),
                "us-east-1",
                "transcribe",
            )
            .credentials(aws_credential_types::Credentials::new(
                "AKID", "SECRET", None, None, "t",
            )),
        )
        .await
        .expect_err("refused before any connection");
    assert_eq!(error.kind(), &ErrorKind::PlaintextRefused);
}

/// Two sessions share one clock; the first learns the offset from its exception frame. The
/// second, whose URL was signed before that correction, must still re-presign when its own
/// rejection arrives, although its evidence no longer changes the clock.
#[tokio::test]
async fn a_session_whose_clock_was_corrected_by_another_still_retries() {
    let handle = start(
        EmulatorConfig::default()
            .clock_offset_millis(HOUR_MS)
            .send_date_header(false),
    )
    .await;
    let clock = Clock::system();
    let connector = Connector::new(SessionConfig::default());
    let first = connector
        .connect(transcribe_request(&handle, &clock))
        .await
        .unwrap();
    let second = connector
        .connect(transcribe_request(&handle, &clock))
        .await
        .unwrap();
    let mut results = Vec::new();
    for session in [first, second] {
        let (mut sink, mut stream) = session.split();
        sink.send(audio_event(3200)).await.unwrap();
        sink.send(audio_event(0)).await.unwrap();
        sink.close().await.unwrap();
        let mut errors = Vec::new();
        while let Some(item) = tokio::time::timeout(PATIENCE, stream.next()).await.unwrap() {
            if let Err(e) = item {
                errors.push(e.to_string());
            }
        }
        results.push((errors, stream.stats().reconnects));
    }
    for (errors, reconnects) in &results {
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(*reconnects, 1);
    }
    assert!((clock.offset_millis() - HOUR_MS).abs() < 5_000);
    handle.shutdown().await;
}

/// Queues `frames` numbered audio events before the driver gets to run (a current-thread
/// runtime: nothing else runs until the test awaits), then ends the stream. Returns the
/// session's counters and the emulator's record.
async fn queue_then_send(
    write_buffer_size: usize,
    frames: usize,
) -> (sigv4_ws::transport::SessionStats, ConnectionRecord) {
    let handle = start(
        EmulatorConfig::default()
            .require_signed_transcribe(true)
            .record_media_stamps(true),
    )
    .await;
    let config = SessionConfig::default()
        .frame_signing(FrameSigning::Signed)
        .queue_capacity(frames)
        .write_buffer_size(write_buffer_size);
    let session = Connector::new(config)
        .connect(transcribe_request(&handle, &Clock::system()))
        .await
        .expect("connects");
    let (mut sink, mut stream) = session.split();
    for n in 1..=frames as u64 {
        let mut audio = vec![0u8; 3200];
        audio[..8].copy_from_slice(&n.to_le_bytes());
        let event = audio_event_of(audio);
        // `feed` returns as soon as the frame is queued: all of them wait for the driver.
        sink.feed(event).await.expect("queued");
    }
    sink.send(audio_event(0)).await.expect("end marker");
    sink.close().await.expect("end of stream");
    while let Some(item) = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the stream ends")
    {
        item.expect("no error from the emulator");
    }
    let stats = stream.stats();
    let records = handle.wait_for_finished(1, PATIENCE).await;
    let record = verified_record(&records).clone();
    handle.shutdown().await;
    (stats, record)
}

#[tokio::test(flavor = "current_thread")]
async fn frames_already_queued_share_socket_writes_and_keep_the_chain() {
    let frames = 48;
    let (stats, record) = queue_then_send(64 * 1024, frames).await;
    // 48 audio frames, the empty AudioEvent and the signed end frame.
    assert_eq!(stats.frames_sent, frames as u64 + 2);
    assert!(
        stats.socket_writes * 4 <= stats.frames_sent,
        "{} writes for {} frames: queued frames were not batched",
        stats.socket_writes,
        stats.frames_sent
    );
    // Every frame verified in order (the emulator refuses unsigned frames and a broken chain).
    assert!(record.rejection.is_none(), "{:?}", record.rejection);
    assert_eq!(record.media_frames, frames as u64);
    let order: Vec<u64> = record.media_stamps.iter().map(|s| s.prefix).collect();
    assert_eq!(order, (1..=frames as u64).collect::<Vec<_>>());
    assert_eq!(record.frame_dates_millis.len(), frames + 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_zero_write_buffer_writes_every_frame_on_its_own() {
    let frames = 20;
    let (stats, record) = queue_then_send(0, frames).await;
    assert_eq!(stats.frames_sent, frames as u64 + 2);
    assert_eq!(stats.socket_writes, stats.frames_sent);
    assert!(record.rejection.is_none(), "{:?}", record.rejection);
    assert_eq!(record.media_frames, frames as u64);
}

#[tokio::test]
async fn a_server_that_never_finishes_after_the_end_is_reported() {
    // The emulator takes the upgrade, then neither reads nor answers: the frames fit in the
    // socket buffers, the end is sent, and no close ever comes.
    let handle = start(EmulatorConfig::default().fault(Fault::StallAfterUpgrade)).await;
    let wait = Duration::from_millis(300);
    let config = SessionConfig::default()
        .idle_timeout(Some(PATIENCE))
        .final_results_timeout(wait);
    let session = Connector::new(config)
        .connect(transcribe_request(&handle, &Clock::system()))
        .await
        .expect("connects");
    let watch = session.watch();
    let (mut sink, mut stream) = session.split();
    for _ in 0..5 {
        sink.send(audio_event(3200)).await.expect("queued");
    }
    sink.send(audio_event(0)).await.expect("end marker queued");
    let ended = tokio::time::Instant::now();
    sink.close().await.expect("end queued");
    let error = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the stream says something")
        .expect("not a silent end")
        .expect_err("an error, not an event");
    assert_eq!(error.kind(), &ErrorKind::FinalResultsTimeout, "{error}");
    assert!(error.is_timeout());
    assert!(error.to_string().contains("300 ms"), "{error}");
    assert!(ended.elapsed() >= wait, "{:?}", ended.elapsed());
    assert!(tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the stream ends")
        .is_none());
    tokio::time::timeout(PATIENCE, watch.finished())
        .await
        .expect("driver stops");
    assert_eq!(
        stream.stats().frames_sent,
        6,
        "every frame was written before the wait"
    );
    drop(handle);
}
