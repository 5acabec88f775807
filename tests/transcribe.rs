#![cfg(all(feature = "emulator", feature = "transcribe"))]
//! The typed Transcribe client against the local emulator: typed request → connect → audio out
//! → typed events back → clean end, for standard, medical and Call Analytics streams.

use std::time::Duration;

use aws_credential_types::Credentials;
use sigv4_ws::emulator::{
    ConnectionRecord, EmulatedService, Emulator, EmulatorConfig, EmulatorHandle, Outcome,
};
use sigv4_ws::services::pacing::{pcm_chunks, KeepAlive, PcmFormat, RealTimePacer};
use sigv4_ws::services::transcribe::model::{ItemType, UtteranceEvent};
use sigv4_ws::services::transcribe::{
    ChannelDefinition, ConfigurationEvent, MediaEncoding, MedicalType, ParticipantRole,
    PostCallAnalyticsSettings, Specialty, StartCallAnalyticsStreamTranscription,
    StartMedicalStreamTranscription, StartRequest, StartStreamTranscription, TranscribeClient,
    TranscribeError, TranscribeEvent, TranscribeStream,
};
use sigv4_ws::transport::{FrameSigning, SessionConfig};
use sigv4_ws::Clock;

/// Longest any single wait may take before the test calls it a failure (not a speed check).
const PATIENCE: Duration = Duration::from_secs(20);

async fn emulator() -> EmulatorHandle {
    // A partial result every 100 ms of PCM, a final one every 3 partials: a 1-second clip
    // gives partials and finals during the stream.
    let config = EmulatorConfig::default()
        .transcript_cadence(Duration::from_millis(100), 1)
        .partials_per_segment(3)
        .close_grace(Duration::from_millis(200));
    Emulator::start(config).await.expect("the emulator starts")
}

fn client(emulator: &EmulatorHandle) -> TranscribeClient {
    TranscribeClient::new("us-east-1")
        .endpoint(emulator.endpoint())
        .credentials(emulator.credentials())
        .clock(Clock::system())
}

/// One second of 16-bit PCM at `rate` Hz, in 100 ms chunks.
fn one_second(rate: u32, channels: u16) -> Vec<bytes::Bytes> {
    let format = PcmFormat::new(rate, channels);
    let audio = format.silence(Duration::from_secs(1));
    pcm_chunks(audio, format, Duration::from_millis(100)).collect()
}

/// Every event until the server closes the connection.
async fn drain(stream: &mut TranscribeStream) -> Vec<TranscribeEvent> {
    let mut events = Vec::new();
    loop {
        let next = tokio::time::timeout(PATIENCE, stream.next_event())
            .await
            .expect("the stream neither sent an event nor ended in time");
        match next {
            None => return events,
            Some(Ok(event)) => events.push(event),
            Some(Err(e)) => panic!("unexpected error after {} events: {e}", events.len()),
        }
    }
}

async fn only_record(emulator: &EmulatorHandle) -> ConnectionRecord {
    let records = emulator.wait_for_finished(1, PATIENCE).await;
    assert_eq!(records.len(), 1, "{records:#?}");
    records.into_iter().next().unwrap()
}

fn param<'a>(record: &'a ConnectionRecord, name: &str) -> Option<&'a str> {
    record
        .params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn transcripts(events: &[TranscribeEvent]) -> Vec<(bool, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            TranscribeEvent::Transcript(t) => Some(t),
            _ => None,
        })
        .flat_map(|t| t.transcript.results.iter())
        .map(|r| {
            let text = r
                .alternatives
                .first()
                .and_then(|a| a.transcript.clone())
                .unwrap_or_default();
            (r.is_partial, text)
        })
        .collect()
}

#[tokio::test]
async fn standard_stream_from_request_to_clean_end() {
    let emulator = emulator().await;
    let request = StartStreamTranscription::new(MediaEncoding::Pcm, 16_000).language_code("en-US");
    let mut stream = client(&emulator).start(request).await.expect("connects");
    let session_id = stream.session_id().to_owned();
    assert_eq!(
        session_id.len(),
        36,
        "a v4 UUID was generated: {session_id}"
    );

    let too_big = stream.send_audio(vec![0u8; 32_002]).await.unwrap_err();
    assert_eq!(
        too_big.validation_error().map(|e| e.field),
        Some("AudioChunk")
    );
    let empty = stream.send_audio(Vec::<u8>::new()).await.unwrap_err();
    assert_eq!(
        empty.validation_error().map(|e| e.field),
        Some("AudioChunk")
    );
    for chunk in one_second(16_000, 1) {
        stream.send_audio(chunk).await.expect("audio is accepted");
    }
    stream.finish().await.expect("end of stream");
    stream.finish().await.expect("finishing twice is harmless");
    assert!(
        stream.send_audio(vec![0u8; 2]).await.is_err(),
        "nothing after finish"
    );
    let events = drain(&mut stream).await;

    let results = transcripts(&events);
    assert!(
        results.iter().any(|(partial, _)| *partial),
        "partials during the stream: {results:?}"
    );
    let finals: Vec<&String> = results.iter().filter(|(p, _)| !p).map(|(_, t)| t).collect();
    assert!(!finals.is_empty(), "final results: {results:?}");
    let heard: f64 = finals
        .iter()
        .filter_map(|t| {
            t.strip_prefix("received ")?
                .split(' ')
                .next()?
                .parse::<f64>()
                .ok()
        })
        .sum();
    assert!(
        (heard - 1.0).abs() < 0.05,
        "the finals account for the whole second: {finals:?}"
    );
    let last = match events.last() {
        Some(TranscribeEvent::Transcript(t)) => t,
        other => panic!("the stream should end with a transcript, got {other:?}"),
    };
    assert_eq!(
        last.transcript.results[0].language_code.as_deref(),
        Some("en-US")
    );
    assert_eq!(
        last.transcript.results[0].channel_id.as_deref(),
        Some("ch_0")
    );

    let record = only_record(&emulator).await;
    assert_eq!(record.service, Some(EmulatedService::Transcribe));
    assert_eq!(record.outcome, Outcome::Completed);
    assert_eq!(record.media_frames, 10);
    assert_eq!(record.media_bytes, 32_000);
    assert_eq!(param(&record, "session-id"), Some(session_id.as_str()));
    assert_eq!(param(&record, "media-encoding"), Some("pcm"));
    assert_eq!(param(&record, "sample-rate"), Some("16000"));
    assert!(
        record.frame_dates_millis.is_empty(),
        "frames are unsigned by default"
    );
    assert_eq!(record.close_sent, Some(1000));
    assert!(
        stream.stats().frames_sent >= 11,
        "10 audio events and the empty one"
    );
}

#[tokio::test]
async fn split_halves_and_signed_frames() {
    let emulator = emulator().await;
    let client = client(&emulator).frame_signing(FrameSigning::Signed);
    let request = StartStreamTranscription::new(MediaEncoding::Pcm, 8_000)
        .language_code("en-GB")
        .session_id("0f8fad5b-d9cb-469f-a165-70867728950e");
    let stream = client.start(request).await.expect("connects");
    assert_eq!(stream.session_id(), "0f8fad5b-d9cb-469f-a165-70867728950e");
    let (mut audio, mut events) = stream.split();
    let sender = tokio::spawn(async move {
        for chunk in one_second(8_000, 1) {
            audio.send_audio(chunk).await?;
        }
        audio.finish().await?;
        Ok::<_, TranscribeError>(())
    });
    let mut received = Vec::new();
    while let Some(event) = tokio::time::timeout(PATIENCE, events.next_event())
        .await
        .expect("in time")
    {
        received.push(event.expect("no error"));
    }
    sender
        .await
        .expect("the sender task ends")
        .expect("sending works");
    // Counted once written; by the time the server has closed, everything was.
    let stats = events.stats();
    assert_eq!(
        stats.frames_sent, 12,
        "10 audio + empty audio + signed end frame: {stats:?}"
    );
    assert!(received.iter().any(TranscribeEvent::is_final));

    let record = only_record(&emulator).await;
    assert_eq!(record.outcome, Outcome::Completed);
    assert_eq!(record.media_frames, 10);
    // Every event was a verified signed envelope: the 10 audio events and the empty one (the
    // emulator ends the stream at the empty AudioEvent, so it may not read the end frame).
    assert!(
        (11..=12).contains(&record.frame_dates_millis.len()),
        "{record:#?}"
    );
}

#[tokio::test]
async fn medical_stream() {
    let emulator = emulator().await;
    let request = StartMedicalStreamTranscription::new(
        "en-US",
        MediaEncoding::Pcm,
        16_000,
        Specialty::Cardiology,
        MedicalType::Dictation,
    )
    .show_speaker_label(true);
    let mut stream = client(&emulator).start(request).await.expect("connects");
    for chunk in one_second(16_000, 1) {
        stream.send_audio(chunk).await.unwrap();
    }
    stream.finish().await.unwrap();
    let events = drain(&mut stream).await;
    let results = transcripts(&events);
    assert!(results.iter().any(|(p, _)| !p), "{results:?}");
    for event in &events {
        let TranscribeEvent::Transcript(t) = event else {
            panic!("medical sends transcripts only: {event:?}")
        };
        assert_eq!(
            t.transcript.results[0].language_code, None,
            "the medical shape has no LanguageCode"
        );
    }

    let record = only_record(&emulator).await;
    assert_eq!(record.service, Some(EmulatedService::TranscribeMedical));
    assert_eq!(record.outcome, Outcome::Completed);
    assert_eq!(param(&record, "specialty"), Some("CARDIOLOGY"));
    assert_eq!(param(&record, "type"), Some("DICTATION"));
    assert_eq!(param(&record, "show-speaker-label"), Some("true"));
    assert_eq!(param(&record, "session-id"), Some(stream.session_id()));
}

#[tokio::test]
async fn call_analytics_stream_sends_its_configuration_first() {
    let emulator = emulator().await;
    // Channel 0 is the customer: the emulator labels utterances with channel 0's role, so
    // CUSTOMER utterances prove the configuration arrived before the audio.
    let configuration = ConfigurationEvent::new(vec![
        ChannelDefinition::new(0, ParticipantRole::Customer),
        ChannelDefinition::new(1, ParticipantRole::Agent),
    ])
    .post_call_analytics(PostCallAnalyticsSettings::new(
        "s3://my-bucket/calls/",
        "arn:aws:iam::123456789012:role/TranscribeCallAnalytics",
    ));
    let request = StartCallAnalyticsStreamTranscription::new(MediaEncoding::Pcm, 8_000)
        .language_code("en-US")
        .configuration(configuration);
    let mut stream = client(&emulator).start(request).await.expect("connects");
    // A second configuration is refused locally: it must be the first and only one... after
    // audio, certainly.
    for chunk in one_second(8_000, 2) {
        stream.send_audio(chunk).await.unwrap();
    }
    let late = stream
        .send_configuration(ConfigurationEvent::new(vec![
            ChannelDefinition::new(0, ParticipantRole::Agent),
            ChannelDefinition::new(1, ParticipantRole::Customer),
        ]))
        .await
        .unwrap_err();
    assert_eq!(
        late.validation_error().map(|e| e.field),
        Some("ConfigurationEvent")
    );
    stream.finish().await.unwrap();
    let events = drain(&mut stream).await;

    let utterances: Vec<&UtteranceEvent> = events
        .iter()
        .filter_map(|e| match e {
            TranscribeEvent::Utterance(u) => Some(u),
            _ => None,
        })
        .collect();
    assert!(!utterances.is_empty(), "{events:?}");
    assert!(utterances
        .iter()
        .all(|u| u.participant_role == Some(ParticipantRole::Customer)));
    assert!(utterances.iter().any(|u| !u.is_partial));
    assert!(utterances.iter().all(|u| u
        .items
        .iter()
        .all(|i| i.item_type != Some(ItemType::Punctuation))));
    assert!(
        matches!(events.last(), Some(TranscribeEvent::Category(_))),
        "a CategoryEvent ends the stream: {:?}",
        events.last()
    );

    let record = only_record(&emulator).await;
    assert_eq!(
        record.service,
        Some(EmulatedService::TranscribeCallAnalytics)
    );
    assert_eq!(record.outcome, Outcome::Completed);
    assert_eq!(record.media_frames, 10);
    assert!(record.rejection.is_none(), "{:?}", record.rejection);
}

#[tokio::test]
async fn the_no_audio_timeout_arrives_as_a_typed_bad_request() {
    let config = EmulatorConfig::default().no_audio_timeout(Duration::from_millis(300));
    let emulator = Emulator::start(config).await.unwrap();
    let request = StartStreamTranscription::new(MediaEncoding::Pcm, 16_000).language_code("en-US");
    let mut stream = client(&emulator).start(request).await.expect("connects");
    // The emulator reports a refusal when the client's first message arrives; this stream
    // sends nothing and waits for the timeout.
    let first = tokio::time::timeout(PATIENCE, stream.next_event())
        .await
        .expect("in time")
        .expect("an item");
    match first {
        Err(TranscribeError::BadRequest { message }) => {
            assert!(message.contains("no new audio was received"), "{message}");
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }
    let record = only_record(&emulator).await;
    assert_eq!(record.outcome, Outcome::TimedOut);
}

#[tokio::test]
async fn wrong_secret_is_a_transport_auth_error() {
    let emulator = emulator().await;
    let client = TranscribeClient::new("us-east-1")
        .endpoint(emulator.endpoint())
        .credentials(Credentials::new(
            emulator.credentials().access_key_id(),
            "not-the-secret",
            None,
            None,
            "test",
        ));
    let request = StartStreamTranscription::new(MediaEncoding::Pcm, 16_000).language_code("en-US");
    let mut stream = client.start(request).await.expect("the 101 comes first");
    stream.send_audio(vec![0u8; 320]).await.expect("queued");
    let error = tokio::time::timeout(PATIENCE, stream.next_event())
        .await
        .expect("in time")
        .expect("an item")
        .expect_err("the stream is refused");
    assert!(error.is_auth(), "{error:?}");
    assert!(error.transport_error().is_some(), "{error:?}");
    assert!(!error.to_string().contains("not-the-secret"));
}

#[tokio::test]
async fn invalid_requests_never_reach_the_server() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let bad: Vec<StartRequest> = vec![
        StartStreamTranscription::new(MediaEncoding::Pcm, 16_000).into(),
        StartStreamTranscription::new(MediaEncoding::OggOpus, 44_100)
            .language_code("en-US")
            .into(),
        StartMedicalStreamTranscription::new(
            "en-US",
            MediaEncoding::Pcm,
            8_000,
            Specialty::PrimaryCare,
            MedicalType::Conversation,
        )
        .into(),
        StartCallAnalyticsStreamTranscription::new(MediaEncoding::Pcm, 8_000)
            .language_code("en-US")
            .configuration(ConfigurationEvent::new(vec![ChannelDefinition::new(
                0,
                ParticipantRole::Agent,
            )]))
            .into(),
    ];
    for request in bad {
        let error = client.start(request).await.unwrap_err();
        assert!(error.validation_error().is_some(), "{error:?}");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(emulator.records().is_empty(), "nothing was dialled");
}

#[tokio::test]
async fn a_short_final_results_timeout_does_not_cut_the_finals() {
    // The session waits for the server's close after the end of stream; a custom session
    // configuration is honoured.
    let emulator = emulator().await;
    let client = client(&emulator)
        .session_config(SessionConfig::default().final_results_timeout(Duration::from_secs(5)));
    let request = StartStreamTranscription::new(MediaEncoding::Flac, 44_100).language_code("en-US");
    let mut stream = client.start(request).await.expect("connects");
    for _ in 0..3 {
        stream.send_audio(vec![7u8; 1_000]).await.unwrap();
    }
    stream.finish().await.unwrap();
    let events = drain(&mut stream).await;
    let results = transcripts(&events);
    assert_eq!(results.last().map(|(p, _)| *p), Some(false), "{results:?}");
    assert!(
        results.iter().any(|(_, t)| t.contains("bytes of audio")),
        "FLAC is counted in bytes: {results:?}"
    );
    assert_eq!(only_record(&emulator).await.outcome, Outcome::Completed);
}

#[tokio::test]
async fn keep_alive_silence_outlasts_the_no_audio_timeout() {
    // The emulator ends a stream after 1 s without audio; silence every 100 ms keeps a quiet
    // stream alive for 2.5 s, well past the timeout, and then it ends cleanly.
    let config = EmulatorConfig::default().no_audio_timeout(Duration::from_secs(1));
    let emulator = Emulator::start(config).await.unwrap();
    let request = StartStreamTranscription::new(MediaEncoding::Pcm, 8_000).language_code("en-US");
    let mut stream = client(&emulator).start(request).await.expect("connects");
    let format = PcmFormat::new(8_000, 1);
    let start = tokio::time::Instant::now();
    let mut keep_alive = KeepAlive::pcm(format, Duration::from_millis(100), start);
    let mut sent = 0;
    while start.elapsed() < Duration::from_millis(2_500) {
        tokio::time::sleep_until(keep_alive.deadline()).await;
        if let Some(silence) = keep_alive.poll(tokio::time::Instant::now()) {
            stream
                .send_audio(silence)
                .await
                .expect("silence is accepted");
            sent += 1;
        }
    }
    assert!(sent >= 10, "{sent}");
    stream.finish().await.unwrap();
    let events = drain(&mut stream).await;
    assert!(!transcripts(&events).is_empty());
    let record = only_record(&emulator).await;
    assert_eq!(record.outcome, Outcome::Completed, "{record:#?}");
    assert_eq!(record.media_frames, sent);
}

#[tokio::test]
async fn paced_audio_goes_out_no_faster_than_it_plays() {
    let emulator = emulator().await;
    let request = StartStreamTranscription::new(MediaEncoding::Pcm, 16_000).language_code("en-US");
    let mut stream = client(&emulator).start(request).await.expect("connects");
    let format = PcmFormat::new(16_000, 1);
    let start = tokio::time::Instant::now();
    let mut pacer = RealTimePacer::new();
    let chunks = pcm_chunks(
        format.silence(Duration::from_millis(500)),
        format,
        Duration::from_millis(50),
    );
    for chunk in chunks {
        pacer.pace(format.duration_of(chunk.len())).await;
        stream.send_audio(chunk).await.unwrap();
    }
    // The tenth 50 ms chunk may not leave before 450 ms of audio have played (a lower bound).
    assert!(start.elapsed() >= Duration::from_millis(450));
    assert_eq!(pacer.audio_sent(), Duration::from_millis(500));
    stream.finish().await.unwrap();
    drain(&mut stream).await;
    assert_eq!(only_record(&emulator).await.media_bytes, 16_000);
}
