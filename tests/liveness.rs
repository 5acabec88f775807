#![cfg(all(feature = "emulator", feature = "liveness"))]
//! The typed Face Liveness client against the local emulator: typed request → connect →
//! signed video and session events out → typed events back → DisconnectionEvent → clean end.

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use sigv4_ws::emulator::{
    ConnectionRecord, EmulatedService, Emulator, EmulatorConfig, EmulatorHandle, Outcome,
};
use sigv4_ws::services::liveness::{
    BoundingBox, ChallengeType, ClientChallenge, ColorDisplayed,
    FaceMovementAndLightClientChallenge, FaceMovementClientChallenge, FreshnessColor, InitialFace,
    LivenessClient, LivenessError, LivenessEvent, LivenessStream, ServerChallenge,
    StartFaceLivenessSession, TargetFace, DEFAULT_CHALLENGE_VERSIONS,
};
use sigv4_ws::Clock;

/// Longest any single wait may take before the test calls it a failure (not a speed check).
const PATIENCE: Duration = Duration::from_secs(20);
const SESSION: &str = "5b0a4a5e-2f0e-4d67-9c3a-6a9e0b1f2c3d";

async fn emulator_with(config: EmulatorConfig) -> EmulatorHandle {
    Emulator::start(config.close_grace(Duration::from_millis(300)))
        .await
        .expect("the emulator starts")
}

fn client(emulator: &EmulatorHandle, clock: Clock) -> LivenessClient {
    LivenessClient::new("us-east-1")
        .endpoint(emulator.endpoint())
        .credentials(emulator.credentials())
        .clock(clock)
}

async fn next(stream: &mut LivenessStream) -> Option<Result<LivenessEvent, LivenessError>> {
    tokio::time::timeout(PATIENCE, stream.next_event())
        .await
        .expect("the session neither sent an event nor ended in time")
}

async fn only_record(emulator: &EmulatorHandle) -> ConnectionRecord {
    let records = emulator.wait_for_finished(1, PATIENCE).await;
    assert_eq!(records.len(), 1, "{records:#?}");
    records.into_iter().next().unwrap()
}

fn face(stream: &LivenessStream) -> (InitialFace, TargetFace) {
    let now = stream.now_millis();
    (
        InitialFace {
            bounding_box: BoundingBox {
                width: 0.3,
                height: 0.4,
                left: 0.35,
                top: 0.3,
            },
            initial_face_detected_timestamp: now,
        },
        TargetFace {
            bounding_box: BoundingBox {
                width: 0.5,
                height: 0.6,
                left: 0.25,
                top: 0.2,
            },
            face_detected_in_target_position_start_timestamp: now,
            face_detected_in_target_position_end_timestamp: now + 500,
        },
    )
}

fn emulator_now_millis(emulator: &EmulatorHandle) -> i64 {
    emulator
        .clock()
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn light_challenge_from_request_to_clean_end() {
    let emulator = emulator_with(EmulatorConfig::default()).await;
    let request = StartFaceLivenessSession::new(SESSION, 640, 480, DEFAULT_CHALLENGE_VERSIONS);
    let mut stream = client(&emulator, Clock::system())
        .start(request)
        .await
        .expect("connects");
    assert_eq!(stream.session_id(), SESSION);
    let started = stream.now_millis();

    stream
        .send_video(vec![0x1a, 0x45, 0xdf, 0xa3, 1, 2, 3])
        .await
        .expect("video is accepted");
    let info = match next(&mut stream).await {
        Some(Ok(LivenessEvent::ServerSessionInformation(info))) => info,
        other => panic!("expected the session information, got {other:?}"),
    };
    let challenge = info.session_information.challenge.expect("a challenge");
    assert_eq!(
        challenge.challenge_type(),
        ChallengeType::FaceMovementAndLightChallenge
    );
    let ServerChallenge::FaceMovementAndLight(light) = &challenge else {
        panic!("{challenge:?}")
    };
    assert_eq!(light.oval_parameters.center_x, 320.0);
    assert_eq!(light.oval_parameters.center_y, 240.0);
    assert!(!light.color_sequences.is_empty());
    assert!(light
        .color_sequences
        .iter()
        .all(|c| c.freshness_color.rgb.len() == 3));
    assert!(light.challenge_config.oval_fit_timeout.is_some());

    stream.send_video(vec![4u8; 1_000]).await.unwrap();
    let (initial_face, target_face) = face(&stream);
    let record = FaceMovementAndLightClientChallenge {
        challenge_id: "1c5e1f9a-3c2d-4e6f-8a7b-9c0d1e2f3a4b".to_owned(),
        video_start_timestamp: Some(started),
        video_end_timestamp: Some(stream.now_millis()),
        initial_face: Some(initial_face),
        target_face: Some(target_face),
        color_displayed: Some(ColorDisplayed {
            current_color: light.color_sequences[1].freshness_color.clone(),
            sequence_number: 1,
            current_color_start_timestamp: stream.now_millis(),
            previous_color: Some(FreshnessColor::rgb(0, 0, 0)),
        }),
    };
    stream
        .send_client_information(ClientChallenge::FaceMovementAndLight(record))
        .await
        .expect("session information is accepted");
    stream.finish().await.expect("end of video");

    match next(&mut stream).await {
        Some(Ok(LivenessEvent::Disconnection(bye))) => {
            assert!(bye.timestamp_millis > 1_640_995_200_000, "{bye:?}");
        }
        other => panic!("expected the DisconnectionEvent, got {other:?}"),
    }
    assert!(
        next(&mut stream).await.is_none(),
        "the session ends after the DisconnectionEvent"
    );

    let record = only_record(&emulator).await;
    assert_eq!(record.service, Some(EmulatedService::Liveness));
    assert_eq!(record.outcome, Outcome::Completed, "{record:#?}");
    assert!(record.rejection.is_none(), "{:?}", record.rejection);
    assert_eq!(record.media_frames, 2);
    assert_eq!(record.media_bytes, 1_007);
    // Two videos, the session information, the empty VideoChunk and the signed end frame: all
    // verified signed envelopes.
    assert_eq!(record.frame_dates_millis.len(), 5, "{record:#?}");
    assert_eq!(
        record.sent,
        vec![
            "ServerSessionInformationEvent".to_owned(),
            "DisconnectionEvent".to_owned()
        ]
    );
    let params: Vec<(&str, &str)> = record
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert!(params.contains(&("session-id", SESSION)));
    assert!(params.contains(&("video-width", "640")));
    assert!(params.contains(&("video-height", "480")));
    assert!(params.contains(&("challenge-versions", DEFAULT_CHALLENGE_VERSIONS)));
    assert_eq!(record.close_sent.or(record.close_received), Some(1000));
}

#[tokio::test]
async fn movement_challenge_with_split_halves() {
    let emulator = emulator_with(EmulatorConfig::default()).await;
    let request = StartFaceLivenessSession::new(SESSION, 1280, 720, "FaceMovementChallenge_1.0.0")
        .precheck_view_enabled(true)
        .attempt_count(1);
    let stream = client(&emulator, Clock::system())
        .start(request)
        .await
        .expect("connects");
    let (initial_face, target_face) = face(&stream);
    let (mut video, mut events) = stream.split();

    // The service speaks first: the ChallengeEvent, then the session information, before the
    // client sends anything (Amplify web waits for it before recording).
    let first = tokio::time::timeout(PATIENCE, events.next_event())
        .await
        .expect("in time");
    let Some(Ok(LivenessEvent::Challenge(announced))) = first else {
        panic!("{first:?}")
    };
    assert_eq!(announced.version, "1.0.0");
    let second = tokio::time::timeout(PATIENCE, events.next_event())
        .await
        .expect("in time");
    let Some(Ok(LivenessEvent::ServerSessionInformation(info))) = second else {
        panic!("{second:?}")
    };
    video.send_video(vec![9u8; 64]).await.unwrap();
    let challenge = info.session_information.challenge.expect("a challenge");
    let Some(oval) = challenge.oval_parameters() else {
        panic!("{challenge:?}")
    };
    assert_eq!((oval.center_x, oval.center_y), (640.0, 360.0));
    assert!(matches!(challenge, ServerChallenge::FaceMovement(_)));

    let sender = tokio::spawn(async move {
        video.send_video(vec![8u8; 64]).await?;
        let record = FaceMovementClientChallenge {
            challenge_id: "2c5e1f9a-3c2d-4e6f-8a7b-9c0d1e2f3a4b".to_owned(),
            video_start_timestamp: Some(video.now_millis() - 1_000),
            video_end_timestamp: Some(video.now_millis()),
            initial_face: Some(initial_face),
            target_face: Some(target_face),
        };
        video
            .send_client_information(ClientChallenge::FaceMovement(record))
            .await?;
        video.finish().await?;
        assert!(
            video.send_video(vec![1u8]).await.is_err(),
            "nothing after finish"
        );
        Ok::<_, LivenessError>(video.video_bytes_sent())
    });
    let mut rest = Vec::new();
    while let Some(event) = tokio::time::timeout(PATIENCE, events.next_event())
        .await
        .expect("in time")
    {
        rest.push(event.expect("no error"));
    }
    assert_eq!(sender.await.unwrap().unwrap(), 128);
    assert!(
        matches!(rest.as_slice(), [LivenessEvent::Disconnection(_)]),
        "after the video the session ends: {rest:?}"
    );

    let record = only_record(&emulator).await;
    assert_eq!(record.outcome, Outcome::Completed, "{record:#?}");
    let params: Vec<(&str, &str)> = record
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert!(params.contains(&("precheck-view-enabled", "1")));
    assert!(params.contains(&("attempt-count", "1")));
}

#[tokio::test]
async fn a_skewed_host_clock_is_corrected_for_signatures_and_video_timestamps() {
    // The emulator is an hour ahead: this host's clock is an hour behind.
    let emulator = emulator_with(EmulatorConfig::default().clock_offset_millis(3_600_000)).await;
    let clock = Clock::system();
    let request = StartFaceLivenessSession::new(SESSION, 640, 480, DEFAULT_CHALLENGE_VERSIONS);
    let mut stream = client(&emulator, clock.clone())
        .start(request)
        .await
        .expect("connects after correcting");
    assert!(
        !stream.offsets_learned().is_empty(),
        "the offset was learned from the server"
    );
    // The TimestampMillis of every VideoEvent comes from this: the corrected session clock.
    let skew = (stream.now_millis() - emulator_now_millis(&emulator)).abs();
    assert!(
        skew < 60_000,
        "video timestamps follow the server's time (off by {skew} ms)"
    );
    assert!(
        clock.offset_millis() > 3_000_000,
        "the caller's clock was corrected too"
    );

    stream.send_video(vec![1u8; 10]).await.unwrap();
    assert!(matches!(
        next(&mut stream).await,
        Some(Ok(LivenessEvent::ServerSessionInformation(_)))
    ));
    stream.finish().await.unwrap();
    assert!(matches!(
        next(&mut stream).await,
        Some(Ok(LivenessEvent::Disconnection(_)))
    ));
    assert!(next(&mut stream).await.is_none());

    let records = emulator.wait_for_finished(2, PATIENCE).await;
    let last = records.last().expect("a record");
    assert_eq!(last.outcome, Outcome::Completed, "{records:#?}");
    let server_now = emulator_now_millis(&emulator);
    for date in &last.frame_dates_millis {
        assert!(
            (server_now - date).abs() < 60_000,
            "frame signed at {date}, server time {server_now}"
        );
    }
}

#[tokio::test]
async fn a_wrong_secret_is_an_invalid_signature() {
    let emulator = emulator_with(EmulatorConfig::default()).await;
    let client = LivenessClient::new("us-east-1")
        .endpoint(emulator.endpoint())
        .credentials(Credentials::new(
            emulator.credentials().access_key_id(),
            "not-the-secret",
            None,
            None,
            "test",
        ));
    let request = StartFaceLivenessSession::new(SESSION, 640, 480, DEFAULT_CHALLENGE_VERSIONS);
    let mut stream = client.start(request).await.expect("the 101 comes first");
    stream.send_video(vec![1u8; 10]).await.expect("queued");
    let error = next(&mut stream)
        .await
        .expect("an item")
        .expect_err("refused");
    assert!(
        matches!(error, LivenessError::InvalidSignature { .. }),
        "{error:?}"
    );
    assert!(error.is_auth());
    assert!(!error.is_clock_skew());
    assert!(!error.to_string().contains("not-the-secret"));
}

#[tokio::test]
async fn unknown_credentials_stay_a_transport_auth_error() {
    let emulator = emulator_with(EmulatorConfig::default()).await;
    let client = LivenessClient::new("us-east-1")
        .endpoint(emulator.endpoint())
        .credentials(Credentials::new(
            "AKIDUNKNOWN",
            "whatever",
            None,
            None,
            "test",
        ));
    let request = StartFaceLivenessSession::new(SESSION, 640, 480, DEFAULT_CHALLENGE_VERSIONS);
    let mut stream = client.start(request).await.expect("the 101 comes first");
    stream.send_video(vec![1u8; 10]).await.expect("queued");
    let error = next(&mut stream)
        .await
        .expect("an item")
        .expect_err("refused");
    assert_eq!(
        error.exception_type(),
        Some("UnrecognizedClientException"),
        "{error:?}"
    );
    assert!(error.is_auth());
    assert!(error.transport_error().is_some());
}

#[tokio::test]
async fn invalid_requests_never_reach_the_server() {
    let emulator = emulator_with(EmulatorConfig::default()).await;
    let client = client(&emulator, Clock::system());
    for (request, field) in [
        (
            StartFaceLivenessSession::new("not-a-uuid", 640, 480, DEFAULT_CHALLENGE_VERSIONS),
            "session-id",
        ),
        (
            StartFaceLivenessSession::new(SESSION, 0, 480, DEFAULT_CHALLENGE_VERSIONS),
            "video-width",
        ),
        (
            StartFaceLivenessSession::new(SESSION, 640, 480, "Light_1.0.0"),
            "challenge-versions",
        ),
    ] {
        let error = client.start(request).await.unwrap_err();
        assert_eq!(
            error.validation_error().map(|e| e.field),
            Some(field),
            "{error:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(emulator.records().is_empty(), "nothing was dialled");
}
