//! The emulated Face Liveness session: signed video and session events in, challenge and
//! disconnection out.

use base64::Engine as _;
use bytes::BytesMut;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::proto::codec::{FrameDecoder, Limits, Message, EVENT_TYPE};
use crate::verify::{VerifiedUpgrade, UNRECOGNIZED_CLIENT_MESSAGE};

use super::deadline::deadline_after;
use super::liveness_events::{check_client_information, check_video_event, MAX_VIDEO_BYTES};
use super::record::Outcome;
use super::server::{seconds_text, Incoming, ServiceError, Session};
use super::CLOSE_NORMAL;

const VALIDATION: &str = "ValidationException";

/// `session-id`: fixed length 36, this pattern (the API reference's; lower-case hex only).
pub(crate) const SESSION_ID_PATTERN: &str =
    "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
/// `video-width`, `video-height`: 3 to 4 characters, this pattern.
pub(crate) const VIDEO_DIMENSION_PATTERN: &str = "^[0-9]{3,}$";
/// `challenge-versions`: 15 to 150 characters, this pattern.
pub(crate) const CHALLENGE_VERSIONS_PATTERN: &str =
    r"^([a-zA-Z]{10,}_\d+\.\d+\.\d+){1}(,[a-zA-Z]{10,}_\d+\.\d+\.\d+)*";

/// The light challenge at this version is announced by the session information alone; every
/// other challenge also gets a `ChallengeEvent` (protocol.md 4.5).
const LIGHT: &str = "FaceMovementAndLightChallenge";
const MOVEMENT: &str = "FaceMovementChallenge";

/// Checks the four required Liveness parameters against the constraints of the API reference
/// (`StartFaceLivenessSession`), reporting every violation in AWS's validation-error form
/// (`N validation error(s) detected: Value '...' at '<parameter>' failed to satisfy
/// constraint: Member must ...`); parameters are named as in the query. Then picks the
/// challenge to run (see [`chosen_challenge`]).
pub(crate) fn validate_params(upgrade: &VerifiedUpgrade) -> Result<(), ServiceError> {
    let mut violations: Vec<String> = Vec::new();
    let mut check = |name: &str,
                     min: usize,
                     max: usize,
                     pattern: &str,
                     matches: fn(&str) -> bool| {
        let Some(value) = upgrade.param(name).filter(|v| !v.is_empty()) else {
            violations.push(format!(
                "Value null at '{name}' failed to satisfy constraint: Member must not be null"
            ));
            return;
        };
        let len = value.chars().count();
        if len < min {
            violations.push(format!("Value '{value}' at '{name}' failed to satisfy constraint: Member must have length greater than or equal to {min}"));
        }
        if len > max {
            violations.push(format!("Value '{value}' at '{name}' failed to satisfy constraint: Member must have length less than or equal to {max}"));
        }
        if !matches(value) {
            violations.push(format!("Value '{value}' at '{name}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"));
        }
    };
    check("session-id", 36, 36, SESSION_ID_PATTERN, is_session_id);
    check("video-width", 3, 4, VIDEO_DIMENSION_PATTERN, is_dimension);
    check("video-height", 3, 4, VIDEO_DIMENSION_PATTERN, is_dimension);
    check(
        "challenge-versions",
        15,
        150,
        CHALLENGE_VERSIONS_PATTERN,
        is_challenge_versions,
    );
    if !violations.is_empty() {
        let count = violations.len();
        let plural = if count == 1 { "" } else { "s" };
        return Err(ServiceError::new(
            VALIDATION,
            format!(
                "{count} validation error{plural} detected: {}",
                violations.join("; ")
            ),
        ));
    }
    let versions = upgrade.param("challenge-versions").unwrap_or_default();
    if chosen_challenge(versions).is_none() {
        return Err(ServiceError::new(
            VALIDATION,
            format!("None of the challenge versions '{versions}' is supported: this emulator runs {LIGHT} and {MOVEMENT}."),
        ));
    }
    Ok(())
}

/// `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`, whole value.
fn is_session_id(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(b),
        })
}

/// `^[0-9]{3,}$`.
fn is_dimension(value: &str) -> bool {
    value.len() >= 3 && value.bytes().all(|b| b.is_ascii_digit())
}

/// The whole value matches `([a-zA-Z]{10,}_\d+\.\d+\.\d+)(,[a-zA-Z]{10,}_\d+\.\d+\.\d+)*`.
fn is_challenge_versions(value: &str) -> bool {
    value.split(',').all(|entry| parse_entry(entry).is_some())
}

/// One `[a-zA-Z]{10,}_\d+\.\d+\.\d+` entry, as (type, version).
fn parse_entry(entry: &str) -> Option<(&str, &str)> {
    let (kind, version) = entry.split_once('_')?;
    let kind_ok = kind.len() >= 10 && kind.bytes().all(|b| b.is_ascii_alphabetic());
    let mut parts = 0;
    let version_ok = version.split('.').all(|n| {
        parts += 1;
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    });
    (kind_ok && version_ok && parts == 3).then_some((kind, version))
}

/// The challenge the session runs: the first requested entry whose type the emulator knows.
fn chosen_challenge(versions: &str) -> Option<(&str, &str)> {
    versions
        .split(',')
        .filter_map(parse_entry)
        .find(|(kind, _)| *kind == LIGHT || *kind == MOVEMENT)
}

/// The `ChallengeEvent` that precedes the session information, unless the challenge is the
/// 1.0.0 light challenge (protocol.md 4.5; Amplify Android refuses a session whose information
/// comes before its `ChallengeEvent`).
fn challenge_event(upgrade: &VerifiedUpgrade) -> Option<Value> {
    let (kind, version) = chosen_challenge(upgrade.param("challenge-versions")?)?;
    if kind == LIGHT && version == "1.0.0" {
        return None;
    }
    Some(json!({"Type": kind, "Version": version}))
}

/// The `ServerSessionInformationEvent` for the requested challenge (protocol.md 4.5). The
/// oval is placed in the middle of the video, in pixels; the thresholds are plausible values,
/// not the service's.
fn session_information(upgrade: &VerifiedUpgrade) -> Value {
    let width: f64 = upgrade
        .param("video-width")
        .and_then(|w| w.parse().ok())
        .unwrap_or(640.0);
    let height: f64 = upgrade
        .param("video-height")
        .and_then(|h| h.parse().ok())
        .unwrap_or(480.0);
    let oval_width = (width * 0.5).round();
    let oval = json!({
        "Width": oval_width,
        "Height": (oval_width * 1.618).round().min(height),
        "CenterX": (width / 2.0).round(),
        "CenterY": (height / 2.0).round(),
    });
    let config = json!({
        "BlazeFaceDetectionThreshold": 0.75,
        "FaceDistanceThresholdMin": 0.4,
        "FaceDistanceThreshold": 0.32,
        "FaceDistanceThresholdMax": 0.1,
        "OvalIouThreshold": 0.7,
        "OvalHeightWidthRatio": 1.618,
        "OvalIouWidthThreshold": 0.25,
        "OvalIouHeightThreshold": 0.25,
        "FaceIouWidthThreshold": 0.15,
        "FaceIouHeightThreshold": 0.15,
        "OvalFitTimeout": 7000,
    });
    let light = upgrade
        .param("challenge-versions")
        .and_then(chosen_challenge)
        .is_none_or(|(kind, _)| kind == LIGHT);
    let challenge = if light {
        let colors = [
            [0, 0, 0],
            [0, 255, 255],
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [255, 255, 0],
            [0, 255, 0],
            [255, 0, 0],
        ];
        let sequences: Vec<Value> = colors
            .iter()
            .enumerate()
            .map(|(i, rgb)| {
                json!({
                    "FreshnessColor": {"RGB": rgb},
                    "DownscrollDuration": if i == 0 { 0 } else { 300 },
                    "FlatDisplayDuration": if i == 0 { 100 } else { 0 },
                })
            })
            .collect();
        json!({"FaceMovementAndLightChallenge": {
            "OvalParameters": oval,
            "LightChallengeType": "SEQUENTIAL",
            "ChallengeConfig": config,
            "ColorSequences": sequences,
        }})
    } else {
        json!({"FaceMovementChallenge": {"OvalParameters": oval, "ChallengeConfig": config}})
    };
    json!({"SessionInformation": {"Challenge": challenge}})
}

pub(crate) async fn run(session: &mut Session, upgrade: &VerifiedUpgrade) -> Outcome {
    let Some(mut chain) = session.ctx.verifier.chain_verifier(upgrade) else {
        return session
            .reject(ServiceError::new(
                "UnrecognizedClientException",
                UNRECOGNIZED_CLIENT_MESSAGE,
            ))
            .await;
    };
    let max = session.config().max_message_bytes;
    let grace = session.config().close_grace;
    let idle = session.config().liveness_idle_timeout;
    let mut decoder = FrameDecoder::with_limits(Limits::new().max_payload_len(max));
    let mut buffer = BytesMut::new();
    let mut informed = false;
    let mut disconnected_at: Option<Instant> = None;
    let mut last_message = Instant::now();
    let first_events_at = deadline_after(last_message, session.config().liveness_first_event_delay);
    let mut progress = Progress {
        challenge: upgrade
            .param("challenge-versions")
            .and_then(chosen_challenge)
            .map_or(
                LIGHT,
                |(kind, _)| if kind == MOVEMENT { MOVEMENT } else { LIGHT },
            ),
        video_bytes: 0,
    };

    loop {
        let deadline = match disconnected_at {
            Some(at) => deadline_after(at, grace),
            None if !informed => first_events_at,
            None => deadline_after(last_message, idle),
        };
        let data = match session.recv(Some(deadline)).await {
            Incoming::Data(data) => {
                last_message = Instant::now();
                if !informed {
                    informed = true;
                    send_first_events(session, upgrade).await;
                }
                data
            }
            Incoming::Timeout if !informed => {
                // The service speaks first: the client waits for the session information.
                informed = true;
                send_first_events(session, upgrade).await;
                continue;
            }
            Incoming::Closed => {
                return if disconnected_at.is_some() {
                    Outcome::Completed
                } else {
                    Outcome::ClientClosed
                }
            }
            Incoming::Timeout if disconnected_at.is_none() => {
                // A stalled client: end the session instead of holding it until shutdown.
                let message = format!(
                    "Your request timed out because no new event was received for {} seconds.",
                    seconds_text(idle)
                );
                session.reject(ServiceError::new(VALIDATION, message)).await;
                return Outcome::TimedOut;
            }
            Incoming::Timeout => {
                // The client did not close after the DisconnectionEvent: close for it.
                session.close(CLOSE_NORMAL, "").await;
                return Outcome::Completed;
            }
            Incoming::Shutdown => return session.shut_down().await,
            Incoming::Lost(reason) => return Outcome::ConnectionLost(reason),
            Incoming::FaultClosed => return Outcome::Fault,
        };
        if data.is_empty() {
            // Not an event-stream message at all, so certainly not a signed one.
            if let Err(rejection) = chain.verify_frame(&Message::new(data)) {
                return session.reject(rejection.into()).await;
            }
            continue;
        }
        buffer.extend_from_slice(&data);
        loop {
            let message = match decoder.decode(&mut buffer) {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(error) => {
                    return session
                        .reject(ServiceError::new(
                            VALIDATION,
                            format!("Could not decode the event stream: {error}"),
                        ))
                        .await
                }
            };
            let verified = match chain.verify_frame(&message) {
                Ok(verified) => verified,
                Err(rejection) => return session.reject(rejection.into()).await,
            };
            session.record_frame_date(verified.date_millis());
            if verified.is_end() {
                if disconnected_at.is_none() {
                    disconnect(session).await;
                    disconnected_at = Some(Instant::now());
                }
                continue;
            }
            let inner = match verified.inner_message() {
                Ok(inner) => inner,
                Err(error) => {
                    return session
                        .reject(ServiceError::new(
                            VALIDATION,
                            format!(
                                "Could not decode the event inside the signed envelope: {error}"
                            ),
                        ))
                        .await
                }
            };
            match client_event(session, &mut progress, &inner) {
                Err(error) => return session.reject(error).await,
                Ok(ClientEvent::End) => {
                    if disconnected_at.is_none() {
                        disconnect(session).await;
                        disconnected_at = Some(Instant::now());
                    }
                }
                Ok(ClientEvent::Other) => {}
            }
        }
    }
}

/// `ChallengeEvent` (when the challenge has one), then `ServerSessionInformationEvent`.
async fn send_first_events(session: &mut Session, upgrade: &VerifiedUpgrade) {
    if let Some(challenge) = challenge_event(upgrade) {
        if !session.send_event("ChallengeEvent", &challenge).await {
            return;
        }
    }
    session
        .send_event(
            "ServerSessionInformationEvent",
            &session_information(upgrade),
        )
        .await;
}

enum ClientEvent {
    /// The empty `VideoChunk` end marker.
    End,
    /// Video or session information.
    Other,
}

/// What the checks of later events need from earlier ones.
struct Progress {
    /// The session's challenge type: the one member a `ClientSessionInformationEvent` may have.
    challenge: &'static str,
    video_bytes: u64,
}

fn client_event(
    session: &mut Session,
    progress: &mut Progress,
    event: &Message,
) -> Result<ClientEvent, ServiceError> {
    let event_type = event.header_str(EVENT_TYPE).unwrap_or_default();
    let body: Value = serde_json::from_slice(event.payload()).map_err(|error| {
        ServiceError::new(
            VALIDATION,
            format!("The {event_type} payload is not valid JSON: {error}"),
        )
    })?;
    match event_type {
        "VideoEvent" => {
            if let Some(message) = check_video_event(&body).message() {
                return Err(ServiceError::new(VALIDATION, message));
            }
            if let Some(millis) = body.get("TimestampMillis").and_then(Value::as_i64) {
                session.record_video_timestamp(millis);
            }
            let chunk = body.get("VideoChunk").and_then(Value::as_str).unwrap_or_default();
            if chunk.is_empty() {
                return Ok(ClientEvent::End);
            }
            let video = base64::engine::general_purpose::STANDARD
                .decode(chunk)
                .map_err(|error| ServiceError::new(VALIDATION, format!("VideoChunk is not valid base64: {error}")))?;
            session.record_media(video.len());
            progress.video_bytes += video.len() as u64;
            if progress.video_bytes > MAX_VIDEO_BYTES {
                return Err(ServiceError::new(
                    VALIDATION,
                    format!(
                        "The video of this session exceeds the limit of {MAX_VIDEO_BYTES} bytes (10 MB)."
                    ),
                ));
            }
            Ok(ClientEvent::Other)
        }
        "ClientSessionInformationEvent" => {
            match check_client_information(&body, progress.challenge).message() {
                Some(message) => Err(ServiceError::new(VALIDATION, message)),
                None => Ok(ClientEvent::Other),
            }
        }
        other => Err(ServiceError::new(
            VALIDATION,
            format!("Unexpected event type '{other}': a client sends VideoEvent and ClientSessionInformationEvent."),
        )),
    }
}

async fn disconnect(session: &mut Session) {
    let now = session.now_millis();
    session
        .send_event("DisconnectionEvent", &json!({"TimestampMillis": now}))
        .await;
}
