//! `liveness FILE`: stream a WebM video as one-second `VideoEvent`s stamped by the session clock,
//! report the challenge, and print the server's session information and the disconnection.
//!
//! This tool has no camera or UI: after the video it reports a `ClientSessionInformationEvent`
//! for the challenge the server chose with a new challenge id and the video's start and end
//! times, but no face positions or colours (it cannot know them).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sigv4_ws::services::liveness::{
    ChallengeType, ClientChallenge, FaceMovementAndLightClientChallenge,
    FaceMovementClientChallenge, LivenessClient, LivenessError, LivenessEvent, LivenessSender,
    ServerChallenge, StartFaceLivenessSession,
};
use sigv4_ws::services::pacing::RealTimePacer;
use tokio::sync::{oneshot, watch};

use crate::cli::LivenessArgs;
use crate::connect::{self, Target};
use crate::fail::{Fail, Kind};
use crate::output::{fmt_time, Out};
use crate::session::{self, Connected, Failure, ForTarget, ServiceError};
use crate::video::VideoFile;

/// How long to wait for the server's answer after the end of the video.
const FINAL_WAIT: Duration = Duration::from_secs(35);
/// How long the sender waits for the session information before reporting the challenge.
const SESSION_INFORMATION_WAIT: Duration = Duration::from_secs(10);

pub async fn run(args: LivenessArgs) -> Result<(), Fail> {
    let video = session::read_input(&args.file, VideoFile::open).await?;
    let width = dimension(args.video_width, video.info.width, "width", &args.file)?;
    let height = dimension(args.video_height, video.info.height, "height", &args.file)?;
    let against_aws = !args.connect.emulator && args.connect.endpoint.is_none();
    let session_id = match &args.session_id {
        Some(id) => id.clone(),
        None if against_aws => {
            return Err(Fail::input(
                "--session-id is required against AWS: create the session with CreateFaceLivenessSession first",
            ))
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let request =
        StartFaceLivenessSession::new(session_id, width, height, args.challenge_versions.clone());
    // The request and the region, checked without dialling.
    LivenessClient::new(args.connect.region.clone())
        .endpoint_url(&request)
        .map_err(|e| Fail::input(format!("the request would be refused: {e}")))?;

    let out = Arc::new(Out::new(args.connect.json, video.info.duration, "video"));
    let target = connect::prepare(&args.connect, &out).await?;
    out.note(
        "input",
        &format!(
            "{}: {} video, {width}x{height}, {} bytes, {}",
            args.file.display(),
            video.info.doc_type,
            video.bytes.len(),
            video
                .info
                .duration
                .map(|d| format!(
                    "{} long, sent in one-second pieces",
                    fmt_time(d.as_secs_f64())
                ))
                .unwrap_or_else(|| "duration unknown, sent in 32 KiB pieces".to_owned())
        ),
        json!({
            "file": args.file.display().to_string(),
            "width": width,
            "height": height,
            "bytes": video.bytes.len(),
            "durationMillis": video.info.duration.map(|d| d.as_millis() as u64),
        }),
    );
    let result = stream(&args, &out, &target, video, request).await;
    session::conclude(&out, target, result).await
}

/// The video's width or height (`name`): as given by `--video-<name>`, else as the file says.
fn dimension(given: Option<u32>, found: Option<u32>, name: &str, file: &Path) -> Result<u32, Fail> {
    given.or(found).filter(|d| *d > 0).ok_or_else(|| {
        Fail::input(format!(
            "{}: the video does not say its {name}; give --video-{name}",
            file.display()
        ))
    })
}

impl ServiceError for LivenessError {
    fn exit_kind(&self) -> Kind {
        match self {
            LivenessError::InvalidRequest(_) => Kind::Input,
            LivenessError::Transport(e) if session::is_usage_error(e) => Kind::Input,
            _ => Kind::Service,
        }
    }
}

struct Sent {
    events: u64,
    bytes: u64,
    video: Duration,
    interrupted: bool,
}

async fn stream(
    args: &LivenessArgs,
    out: &Arc<Out>,
    target: &Target,
    video: VideoFile,
    request: StartFaceLivenessSession,
) -> Result<(), Failure> {
    let stream = LivenessClient::for_target(target).start(request).await?;
    let mut connected = Connected::new(out, &stream.offsets_learned());
    let endpoint = session::destination(target, "Rekognition Face Liveness");
    out.note(
        "connected",
        &format!("streaming to {endpoint}, session {}", stream.session_id()),
        json!({ "sessionId": stream.session_id(), "endpoint": endpoint }),
    );
    let (sender, mut receiver) = stream.split();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (challenge_tx, challenge_rx) = oneshot::channel();
    let send_task = tokio::spawn(send_all(
        sender,
        video,
        session::pacer(&args.connect),
        Arc::clone(out),
        stop_rx,
        challenge_rx,
    ));

    let mut challenge_tx = Some(challenge_tx);
    let mut disconnected = false;
    let receive_error = connected
        .receive(&mut receiver, &stop_tx, "session", |event| {
            if let LivenessEvent::ServerSessionInformation(info) = event {
                if let (Some(tx), Some(challenge)) =
                    (challenge_tx.take(), &info.session_information.challenge)
                {
                    let _ = tx.send(challenge.challenge_type());
                }
            }
            disconnected |= matches!(event, LivenessEvent::Disconnection(_));
            show(out, event);
        })
        .await;
    drop(challenge_tx);
    let sent = session::sent(send_task, FINAL_WAIT).await?;
    let stats = receiver.stats();
    if let Some(error) = receive_error {
        return Err(error.into());
    }
    let sent = sent?;
    if !disconnected && !sent.interrupted {
        return Err(
            Fail::service("the server closed the session without a DisconnectionEvent").into(),
        );
    }
    out.finish();
    out.note(
        "done",
        &format!(
            "done: sent {} of video in {} VideoEvents ({} bytes), clock offset {} ms",
            fmt_time(sent.video.as_secs_f64()),
            sent.events,
            sent.bytes,
            stats.clock_offset_millis
        ),
        json!({
            "videoEvents": sent.events,
            "videoBytes": sent.bytes,
            "videoSentMillis": sent.video.as_millis() as u64,
            "clockOffsetMillis": stats.clock_offset_millis,
            "reconnects": stats.reconnects,
            "interrupted": sent.interrupted,
        }),
    );
    if sent.interrupted {
        return Err(session::interrupted_after(sent.video, "video", "session").into());
    }
    Ok(())
}

async fn send_all(
    mut sender: LivenessSender,
    video: VideoFile,
    mut pacer: RealTimePacer,
    out: Arc<Out>,
    mut stop: watch::Receiver<bool>,
    challenge: oneshot::Receiver<ChallengeType>,
) -> Result<Sent, LivenessError> {
    let mut sent = Sent {
        events: 0,
        bytes: 0,
        video: Duration::ZERO,
        interrupted: false,
    };
    let started = sender.now_millis();
    for slice in video.slices() {
        if !session::next_turn(&mut pacer, slice.video, &mut stop).await {
            sent.interrupted = true;
            break;
        }
        // Stamped with the session clock (skew-corrected), as the frame's signature is.
        sender.send_video(slice.bytes.to_vec()).await?;
        sent.events += 1;
        sent.bytes += slice.bytes.len() as u64;
        sent.video += slice.video;
        out.progress(sent.video, "video");
    }
    if !sent.interrupted && sent.events > 0 {
        let challenge_type = tokio::select! {
            got = tokio::time::timeout(SESSION_INFORMATION_WAIT, challenge) => got.ok().and_then(Result::ok),
            _ = stop.changed() => None,
        };
        if let Some(challenge_type) = challenge_type {
            let record = client_challenge(challenge_type, started, sender.now_millis());
            if let Some(record) = record {
                sender.send_client_information(record).await?;
            }
        }
    }
    // The empty VideoChunk, then the signed end frame; the server answers with DisconnectionEvent.
    sender.finish().await?;
    Ok(sent)
}

/// What this tool can honestly report about the challenge: its type, a new id and the video's
/// start and end on the session clock.
fn client_challenge(
    challenge_type: ChallengeType,
    start: i64,
    end: i64,
) -> Option<ClientChallenge> {
    let challenge_id = uuid::Uuid::new_v4().to_string();
    match challenge_type {
        ChallengeType::FaceMovementAndLightChallenge => Some(
            ClientChallenge::FaceMovementAndLight(FaceMovementAndLightClientChallenge {
                challenge_id,
                video_start_timestamp: Some(start),
                video_end_timestamp: Some(end),
                ..Default::default()
            }),
        ),
        ChallengeType::FaceMovementChallenge => {
            Some(ClientChallenge::FaceMovement(FaceMovementClientChallenge {
                challenge_id,
                video_start_timestamp: Some(start),
                video_end_timestamp: Some(end),
                ..Default::default()
            }))
        }
        _ => None,
    }
}

fn show(out: &Out, event: &LivenessEvent) {
    if out.is_json() {
        let value = match event {
            LivenessEvent::ServerSessionInformation(e) => {
                json!({ "type": "ServerSessionInformationEvent", "event": serde_json::to_value(e).unwrap_or_default() })
            }
            LivenessEvent::Challenge(e) => {
                json!({ "type": "ChallengeEvent", "event": serde_json::to_value(e).unwrap_or_default() })
            }
            LivenessEvent::Disconnection(e) => {
                json!({ "type": "DisconnectionEvent", "event": serde_json::to_value(e).unwrap_or_default() })
            }
            LivenessEvent::Unknown {
                event_type,
                payload,
            } => {
                json!({ "type": event_type, "payload": String::from_utf8_lossy(payload) })
            }
            _ => json!({ "type": "Unknown" }),
        };
        out.json_line(&value);
        return;
    }
    match event {
        LivenessEvent::ServerSessionInformation(info) => {
            out.stdout_line(&format!(
                "session information: {}",
                describe_challenge(info.session_information.challenge.as_ref())
            ));
        }
        LivenessEvent::Challenge(c) => {
            out.stdout_line(&format!(
                "challenge: {} {}",
                c.challenge_type.as_str(),
                c.version
            ));
        }
        LivenessEvent::Disconnection(d) => {
            let at = u64::try_from(d.timestamp_millis)
                .ok()
                .map(|ms| {
                    httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_millis(ms))
                })
                .unwrap_or_else(|| format!("{} ms", d.timestamp_millis));
            out.stdout_line(&format!(
                "disconnection: the server ended the session at {at} (its clock)"
            ));
        }
        LivenessEvent::Unknown { event_type, .. } => {
            out.stderr_line(&format!(
                "note: the server sent an event this tool does not know: {event_type}"
            ));
        }
        _ => {}
    }
}

fn describe_challenge(challenge: Option<&ServerChallenge>) -> String {
    let Some(challenge) = challenge else {
        return "no challenge".to_owned();
    };
    let mut text = challenge.challenge_type().as_str().to_owned();
    if let Some(oval) = challenge.oval_parameters() {
        text.push_str(&format!(
            ", oval {}x{} px centred at ({}, {})",
            oval.width, oval.height, oval.center_x, oval.center_y
        ));
    }
    if let ServerChallenge::FaceMovementAndLight(light) = challenge {
        text.push_str(&format!(
            ", {} colour(s) to show",
            light.color_sequences.len()
        ));
    }
    text
}
