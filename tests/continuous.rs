//! Reconnect as a new session: a stream that the server cuts keeps going on a new session,
//! re-sends the audio no final result covered yet, and reports times on one timeline.
#![cfg(all(feature = "emulator", feature = "transcribe"))]

use std::time::Duration;

use sigv4_ws::emulator::{Emulator, EmulatorConfig, EmulatorHandle, Fault};
use sigv4_ws::services::transcribe::{
    ContinuousEvent, ContinuousStream, MediaEncoding, ReconnectPolicy, StartStreamTranscription,
    TranscribeClient, TranscribeEvent,
};

const PATIENCE: Duration = Duration::from_secs(15);
const FRAME: usize = 3200; // 100 ms of 16 kHz 16-bit mono PCM

async fn emulator(fault: Fault) -> EmulatorHandle {
    Emulator::start(
        EmulatorConfig::default()
            .transcript_cadence(Duration::from_millis(200), 2)
            .partials_per_segment(2)
            .fault(fault)
            .fault_connections(1),
    )
    .await
    .expect("emulator")
}

fn client(handle: &EmulatorHandle) -> TranscribeClient {
    TranscribeClient::new("us-east-1")
        .endpoint(handle.endpoint())
        .credentials(handle.credentials())
}

fn request() -> StartStreamTranscription {
    StartStreamTranscription::new(MediaEncoding::Pcm, 16_000).language_code("en-US")
}

struct Outcome {
    final_ends: Vec<f64>,
    notices: Vec<ContinuousEvent>,
    error: Option<String>,
}

async fn stream_frames(handle: &EmulatorHandle, frames: usize, policy: ReconnectPolicy) -> Outcome {
    let mut stream = ContinuousStream::start(client(handle), request(), policy)
        .await
        .expect("first session starts");
    let mut outcome = Outcome {
        final_ends: Vec::new(),
        notices: Vec::new(),
        error: None,
    };
    let mut sent = 0;
    let mut finished = false;
    loop {
        tokio::select! {
            event = stream.next_event() => match event {
                None => break,
                Some(Err(e)) => {
                    outcome.error = Some(e.to_string());
                }
                Some(Ok(ContinuousEvent::Event(TranscribeEvent::Transcript(t)))) => {
                    for result in t.transcript.results.iter().filter(|r| !r.is_partial) {
                        outcome.final_ends.push(result.end_time.unwrap_or(-1.0));
                    }
                }
                Some(Ok(notice @ ContinuousEvent::Reconnected { .. })) => outcome.notices.push(notice),
                Some(Ok(_)) => {}
            },
            () = tokio::time::sleep(Duration::from_millis(5)), if !finished => {
                if sent < frames {
                    if stream.send_audio(vec![1u8; FRAME]).await.is_err() {
                        finished = true;
                    }
                    sent += 1;
                } else {
                    finished = true;
                    let _ = stream.finish().await;
                }
            }
        }
    }
    outcome
}

#[tokio::test]
async fn a_stream_cut_by_the_server_continues_on_a_new_session_on_one_timeline() {
    let handle = emulator(Fault::CloseMidStream {
        after_frames: 15,
        abrupt: false,
    })
    .await;
    let outcome = tokio::time::timeout(
        PATIENCE,
        stream_frames(&handle, 40, ReconnectPolicy::default()),
    )
    .await
    .expect("the stream ends");
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.notices.len(), 1, "{:?}", outcome.notices);
    let ContinuousEvent::Reconnected {
        previous_session_id,
        session_id,
        resumed_at,
        resent,
        lost,
        ..
    } = &outcome.notices[0]
    else {
        panic!("a reconnection notice")
    };
    assert_ne!(previous_session_id, session_id, "a new session id");
    assert_eq!(*lost, Duration::ZERO);
    assert!(*resent > Duration::ZERO);
    // Finals every 400 ms: the first session acknowledged whole 400 ms segments before the cut.
    assert_eq!(resumed_at.as_millis() % 400, 0, "resumed at {resumed_at:?}");

    // One timeline: final result ends only grow, and the last one is the total audio sent.
    assert!(
        outcome.final_ends.windows(2).all(|w| w[0] < w[1]),
        "{:?}",
        outcome.final_ends
    );
    let last = outcome.final_ends.last().copied().unwrap_or_default();
    assert!(
        (last - 4.0).abs() < 1e-6,
        "last final ends at {last} s, expected 4.0"
    );

    // Nothing lost, nothing beyond the unacknowledged part re-sent.
    let records = handle.wait_for_finished(2, PATIENCE).await;
    assert_eq!(records.len(), 2);
    let expected_second = (40 * FRAME) as u64 - resumed_at.as_millis() as u64 * 32;
    assert_eq!(records[1].media_bytes, expected_second);
    assert_eq!(
        records[1]
            .params
            .iter()
            .find(|(k, _)| k == "session-id")
            .map(|(_, v)| v.as_str()),
        Some(session_id.as_str())
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn an_abrupt_drop_is_also_survived() {
    let handle = emulator(Fault::CloseMidStream {
        after_frames: 9,
        abrupt: true,
    })
    .await;
    let outcome = tokio::time::timeout(
        PATIENCE,
        stream_frames(&handle, 20, ReconnectPolicy::default()),
    )
    .await
    .expect("the stream ends");
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.notices.len(), 1);
    let last = outcome.final_ends.last().copied().unwrap_or_default();
    assert!((last - 2.0).abs() < 1e-6, "last final ends at {last} s");
    handle.shutdown().await;
}

#[tokio::test]
async fn without_reconnects_left_the_error_is_reported() {
    let handle = emulator(Fault::CloseMidStream {
        after_frames: 5,
        abrupt: false,
    })
    .await;
    let outcome = tokio::time::timeout(
        PATIENCE,
        stream_frames(&handle, 20, ReconnectPolicy::default().max_reconnects(0)),
    )
    .await
    .expect("the stream ends");
    assert!(outcome.notices.is_empty());
    let error = outcome.error.expect("the cut is reported");
    assert!(error.contains("closed"), "{error}");
    handle.shutdown().await;
}
