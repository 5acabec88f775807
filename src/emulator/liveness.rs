//! The emulated Face Liveness session: signed video and session events in, challenge and
//! disconnection out.

use base64::Engine as _;
use bytes::BytesMut;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::proto::codec::{FrameDecoder, Limits, Message, EVENT_TYPE};
use crate::verify::{VerifiedUpgrade, UNRECOGNIZED_CLIENT_MESSAGE};

use super::record::Outcome;
use super::server::{Incoming, ServiceError, Session};
use super::CLOSE_NORMAL;

const VALIDATION: &str = "ValidationException";

/// Checks the four required Liveness parameters; the message names the parameter, in AWS's
/// validation-error form.
pub(crate) fn validate_params(upgrade: &VerifiedUpgrade) -> Result<(), ServiceError> {
    for name in [
        "session-id",
        "video-width",
        "video-height",
        "challenge-versions",
    ] {
        if upgrade.param(name).is_none_or(str::is_empty) {
            return Err(ServiceError::new(
                VALIDATION,
                format!("1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"),
            ));
        }
    }
    for name in ["video-width", "video-height"] {
        let value = upgrade.param(name).unwrap_or_default();
        if !matches!(value.parse::<u32>(), Ok(1..)) {
            return Err(ServiceError::new(
                VALIDATION,
                format!("1 validation error detected: Value '{value}' at '{name}' failed to satisfy constraint: Member must be a positive integer"),
            ));
        }
    }
    let versions = upgrade.param("challenge-versions").unwrap_or_default();
    let well_formed = versions.split(',').all(|entry| {
        entry.split_once('_').is_some_and(|(kind, version)| {
            !kind.is_empty()
                && kind.bytes().all(|b| b.is_ascii_alphanumeric())
                && version.split('.').count() == 3
                && version
                    .split('.')
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
    });
    if !well_formed {
        return Err(ServiceError::new(
            VALIDATION,
            format!("1 validation error detected: Value '{versions}' at 'challenge-versions' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_.,]+_\\d+\\.\\d+\\.\\d+$"),
        ));
    }
    Ok(())
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
    let versions = upgrade.param("challenge-versions").unwrap_or_default();
    let light = versions.is_empty() || versions.contains("FaceMovementAndLightChallenge");
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
    let mut decoder = FrameDecoder::with_limits(Limits::new().max_payload_len(max));
    let mut buffer = BytesMut::new();
    let mut informed = false;
    let mut disconnected_at: Option<Instant> = None;

    loop {
        let deadline = disconnected_at.map(|at| at + grace);
        let data = match session.recv(deadline).await {
            Incoming::Data(data) => data,
            Incoming::Closed => {
                return if disconnected_at.is_some() {
                    Outcome::Completed
                } else {
                    Outcome::ClientClosed
                }
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
            match client_event(session, &inner) {
                Err(error) => return session.reject(error).await,
                Ok(ClientEvent::End) => {
                    if disconnected_at.is_none() {
                        disconnect(session).await;
                        disconnected_at = Some(Instant::now());
                    }
                }
                Ok(ClientEvent::Other) => {
                    if !informed && disconnected_at.is_none() {
                        informed = true;
                        let info = session_information(upgrade);
                        session
                            .send_event("ServerSessionInformationEvent", &info)
                            .await;
                    }
                }
            }
        }
    }
}

enum ClientEvent {
    /// The empty `VideoChunk` end marker.
    End,
    /// Video or session information.
    Other,
}

fn client_event(session: &Session, event: &Message) -> Result<ClientEvent, ServiceError> {
    let event_type = event.header_str(EVENT_TYPE).unwrap_or_default();
    let body: Value = serde_json::from_slice(event.payload()).map_err(|error| {
        ServiceError::new(
            VALIDATION,
            format!("The {event_type} payload is not valid JSON: {error}"),
        )
    })?;
    match event_type {
        "VideoEvent" => {
            let chunk = body.get("VideoChunk").and_then(Value::as_str).unwrap_or_default();
            if chunk.is_empty() {
                return Ok(ClientEvent::End);
            }
            let video = base64::engine::general_purpose::STANDARD
                .decode(chunk)
                .map_err(|error| ServiceError::new(VALIDATION, format!("VideoChunk is not valid base64: {error}")))?;
            session.record_media(video.len());
            Ok(ClientEvent::Other)
        }
        "ClientSessionInformationEvent" => {
            if body.get("Challenge").is_none() {
                return Err(ServiceError::new(
                    VALIDATION,
                    "1 validation error detected: Value null at 'Challenge' failed to satisfy constraint: Member must not be null",
                ));
            }
            Ok(ClientEvent::Other)
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
