//! `liveness FILE`: stream a WebM video as one-second `VideoEvent`s stamped by the session clock,
//! report the challenge, and print the server's session information and the disconnection.
//!
//! This tool has no camera or UI: after the video it reports a `ClientSessionInformationEvent`
//! for the challenge the server chose with a new challenge id and the video's start and end
//! times, but no face positions or colours (it cannot know them).

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
use crate::connect::{self, Interrupts, Target};
use crate::fail::{Fail, Kind};
use crate::output::{fmt_time, Out};
use crate::video::VideoFile;

/// How long to wait for the server's answer after the end of the video.
const FINAL_WAIT: Duration = Duration::from_secs(35);
/// How long the sender waits for the session information before reporting the challenge.
const SESSION_INFORMATION_WAIT: Duration = Duration::from_secs(10);

pub async fn run(args: LivenessArgs) -> Result<(), Fail> {
    let path = args.file.clone();
    let video = tokio::task::spawn_blocking(move || VideoFile::open(&path))
        .await
        .map_err(|e| Fail::input(format!("cannot read {}: {e}", args.file.display())))??;
    let width = args
        .video_width
        .or(video.info.width)
        .filter(|w| *w > 0)
        .ok_or_else(|| {
            Fail::input(format!(
                "{}: the video does not say its width; give --video-width",
                args.file.display()
            ))
        })?;
    let height = args
        .video_height
        .or(video.info.height)
        .filter(|h| *h > 0)
        .ok_or_else(|| {
            Fail::input(format!(
                "{}: the video does not say its height; give --video-height",
                args.file.display()
            ))
        })?;
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
    let result = match result {
        Err(Failure::Liveness(error)) => {
            Err(connect::explain(&out, &target, &error.to_string(), exit_kind(&error)).await)
        }
        Err(Failure::Fail(fail)) => Err(fail),
        Ok(()) => Ok(()),
    };
    out.finish();
    target.shutdown().await;
    result
}

enum Failure {
    Liveness(LivenessError),
    Fail(Fail),
}

impl From<Fail> for Failure {
    fn from(f: Fail) -> Self {
        Failure::Fail(f)
    }
}

impl From<LivenessError> for Failure {
    fn from(e: LivenessError) -> Self {
        Failure::Liveness(e)
    }
}

fn exit_kind(error: &LivenessError) -> Kind {
    use sigv4_ws::transport::ErrorKind;
    match error {
        LivenessError::InvalidRequest(_) => Kind::Input,
        LivenessError::Transport(e)
            if matches!(
                e.kind(),
                ErrorKind::InvalidRequest | ErrorKind::PlaintextRefused | ErrorKind::Credentials
            ) =>
        {
            Kind::Input
        }
        _ => Kind::Service,
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
    let mut client = LivenessClient::new(target.region.clone())
        .credentials(target.credentials.clone())
        .clock(target.clock.clone());
    if let Some(endpoint) = &target.endpoint {
        client = client.endpoint(endpoint.clone());
    }
    let stream = client.start(request).await?;
    let mut interrupts = Interrupts::claim();
    let mut offsets_reported = 0;
    connect::report_offsets(out, &stream.offsets_learned(), &mut offsets_reported);
    let endpoint = match &target.endpoint {
        Some(url) => connect::ws_form(url),
        None => format!("Rekognition Face Liveness in {}", target.region),
    };
    out.note(
        "connected",
        &format!("streaming to {endpoint}, session {}", stream.session_id()),
        json!({ "sessionId": stream.session_id(), "endpoint": endpoint }),
    );
    let (sender, mut receiver) = stream.split();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (challenge_tx, challenge_rx) = oneshot::channel();
    let pacer = if args.connect.fast {
        RealTimePacer::unpaced()
    } else {
        RealTimePacer::new()
    };
    let send_task = tokio::spawn(send_all(
        sender,
        video,
        pacer,
        Arc::clone(out),
        stop_rx,
        challenge_rx,
    ));

    let mut challenge_tx = Some(challenge_tx);
    let mut interrupted = false;
    let mut receive_error = None;
    let mut disconnected = false;
    loop {
        tokio::select! {
            event = receiver.next_event() => match event {
                Some(Ok(event)) => {
                    if let LivenessEvent::ServerSessionInformation(info) = &event {
                        if let (Some(tx), Some(challenge)) = (challenge_tx.take(), &info.session_information.challenge) {
                            let _ = tx.send(challenge.challenge_type());
                        }
                    }
                    disconnected |= matches!(event, LivenessEvent::Disconnection(_));
                    show(out, &event);
                    connect::report_offsets(out, &receiver.offsets_learned(), &mut offsets_reported);
                }
                Some(Err(error)) => {
                    receive_error = Some(error);
                    break;
                }
                None => break,
            },
            () = interrupts.next(), if !interrupted => {
                interrupted = true;
                let _ = stop_tx.send(true);
                out.stderr_line("interrupted: ending the session (Ctrl-C again to quit at once)");
            }
        }
    }
    connect::report_offsets(out, &receiver.offsets_learned(), &mut offsets_reported);
    let _ = stop_tx.send(true);
    drop(challenge_tx);
    let sent = match tokio::time::timeout(FINAL_WAIT, send_task).await {
        Ok(Ok(sent)) => sent,
        Ok(Err(join)) => {
            return Err(Fail::service(format!("the sending task failed: {join}")).into())
        }
        Err(_) => return Err(Fail::service("the sending task did not finish").into()),
    };
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
        return Err(Fail::interrupted(format!(
            "interrupted after {} of video; the session was ended cleanly",
            fmt_time(sent.video.as_secs_f64())
        ))
        .into());
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
        if *stop.borrow() {
            sent.interrupted = true;
            break;
        }
        tokio::select! {
            () = pacer.pace(slice.video) => {}
            _ = stop.changed() => {
                sent.interrupted = true;
                break;
            }
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
