//! Face Liveness events, both directions, as serde models over [`Message`]s (sans-IO).
//!
//! Outgoing events are JSON with headers `:event-type`, `:message-type` `event`,
//! `:content-type` `application/json`, in that (the JavaScript SDK's) order:
//! [`VideoEvent`] (`{"VideoChunk": <base64>, "TimestampMillis": <epoch ms>}`) and
//! [`ClientSessionInformationEvent`] (the client's record of the challenge). Incoming:
//! [`LivenessEvent::from_message`] reads [`ServerSessionInformationEvent`] (the oval, the
//! challenge configuration, the colour sequence), [`ChallengeEvent`] and
//! [`DisconnectionEvent`], keeps unknown types as [`LivenessEvent::Unknown`], and reports
//! exception messages as [`EventError::Exception`].
//!
//! ```
//! use sigv4_ws::services::liveness::model::VideoEvent;
//!
//! let message = VideoEvent::new(&b"\x1a\x45\xdf\xa3"[..], 1_724_194_903_000).to_message();
//! assert_eq!(message.payload().as_ref(), br#"{"VideoChunk":"GkXfow==","TimestampMillis":1724194903000}"#);
//! ```

use std::time::UNIX_EPOCH;

use base64::Engine as _;
use bytes::Bytes;
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::proto::clock::Clock;
use crate::proto::codec::{HeaderValue, Message, CONTENT_TYPE, EVENT_TYPE, MESSAGE_TYPE};
pub use crate::services::EventError;
use crate::services::{event_type, parse_event as parse, ValidationError};

/// `:event-type` of video.
pub const VIDEO_EVENT: &str = "VideoEvent";
/// `:event-type` of the client's challenge record.
pub const CLIENT_SESSION_INFORMATION_EVENT: &str = "ClientSessionInformationEvent";
/// `:event-type` of the server's challenge parameters.
pub const SERVER_SESSION_INFORMATION_EVENT: &str = "ServerSessionInformationEvent";
/// `:event-type` of the server's challenge announcement.
pub const CHALLENGE_EVENT: &str = "ChallengeEvent";
/// `:event-type` of the server's end of session.
pub const DISCONNECTION_EVENT: &str = "DisconnectionEvent";

/// Smallest `TimestampMillis` the service accepts (2022-01-01T00:00:00Z).
pub const MIN_TIMESTAMP_MILLIS: i64 = 1_640_995_200_000;
/// Largest `TimestampMillis` the service accepts (2042-01-01T00:00:00Z).
pub const MAX_TIMESTAMP_MILLIS: i64 = 2_272_147_200_000;

fn json_event(event_type: &str, payload: Vec<u8>) -> Message {
    Message::new(payload)
        .with_header(EVENT_TYPE, HeaderValue::from(event_type))
        .with_header(MESSAGE_TYPE, HeaderValue::from("event"))
        .with_header(CONTENT_TYPE, HeaderValue::from("application/json"))
}

open_enum! {
    /// A challenge type.
    ChallengeType {
        /// Face movement with a sequence of screen colours.
        FaceMovementAndLightChallenge => "FaceMovementAndLightChallenge",
        /// Face movement only.
        FaceMovementChallenge => "FaceMovementChallenge",
    }
}

open_enum! {
    /// `LightChallengeType` of the light challenge.
    LightChallengeType {
        /// Colours one after another.
        Sequential => "SEQUENTIAL",
        /// Colours at once.
        Simultaneous => "SIMULTANEOUS",
    }
}

// ---------------------------------------------------------------------------------------
// Outgoing
// ---------------------------------------------------------------------------------------

/// A `VideoEvent`: a chunk of the recorded video (base64 in the JSON) and its time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VideoEvent {
    /// The video bytes (e.g. a WebM slice). Empty marks the end of the video.
    #[serde(
        serialize_with = "base64_serialize",
        deserialize_with = "base64_deserialize",
        default
    )]
    pub video_chunk: Bytes,
    /// Milliseconds since the Unix epoch, on the skew-corrected clock.
    pub timestamp_millis: i64,
}

/// Corrected epoch milliseconds of `clock` (0 before 1970, which [`VideoEvent::validate`] refuses).
pub(crate) fn epoch_millis(clock: &Clock) -> i64 {
    clock
        .now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn base64_serialize<S: Serializer>(bytes: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn base64_deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
    let text = String::deserialize(deserializer)?;
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map(Bytes::from)
        .map_err(|e| D::Error::custom(format!("VideoChunk is not base64: {e}")))
}

impl VideoEvent {
    /// A video event for `chunk` at `timestamp_millis`.
    pub fn new(chunk: impl Into<Bytes>, timestamp_millis: i64) -> Self {
        VideoEvent {
            video_chunk: chunk.into(),
            timestamp_millis,
        }
    }

    /// A video event for `chunk` stamped with `clock`'s corrected time (epoch milliseconds):
    /// the time the session signs the frame with, so `TimestampMillis` and `:date` agree even
    /// on a host whose clock is off.
    pub fn now(chunk: impl Into<Bytes>, clock: &Clock) -> Self {
        VideoEvent::new(chunk, epoch_millis(clock))
    }

    /// Checks the timestamp is within the service's range.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if !(MIN_TIMESTAMP_MILLIS..=MAX_TIMESTAMP_MILLIS).contains(&self.timestamp_millis) {
            return Err(ValidationError::new(
                "TimestampMillis",
                format!(
                    "{} is outside {MIN_TIMESTAMP_MILLIS}..={MAX_TIMESTAMP_MILLIS}; use epoch milliseconds from the session clock",
                    self.timestamp_millis
                ),
            ));
        }
        Ok(())
    }

    /// The event as a message.
    pub fn to_message(&self) -> Message {
        // Bytes and an integer always serialize.
        json_event(VIDEO_EVENT, serde_json::to_vec(self).unwrap_or_default())
    }
}

/// A `ClientSessionInformationEvent`: what the client showed and saw during the challenge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClientSessionInformationEvent {
    /// The challenge record.
    pub challenge: ClientChallenge,
}

impl ClientSessionInformationEvent {
    /// The event for `challenge`.
    pub fn new(challenge: ClientChallenge) -> Self {
        ClientSessionInformationEvent { challenge }
    }

    /// Checks the record: a challenge id and finite bounding boxes.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.challenge.validate()
    }

    /// The event as a message. Fails only on non-finite numbers; validate first.
    pub fn to_message(&self) -> Result<Message, ValidationError> {
        self.validate()?;
        let payload = serde_json::to_vec(self).map_err(|e| {
            ValidationError::new(
                "ClientSessionInformationEvent",
                format!("cannot be encoded: {e}"),
            )
        })?;
        Ok(json_event(CLIENT_SESSION_INFORMATION_EVENT, payload))
    }
}

/// The client's challenge record: `{"FaceMovementAndLightChallenge": {...}}` or
/// `{"FaceMovementChallenge": {...}}`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ClientChallenge {
    /// The light challenge (with the colours displayed).
    FaceMovementAndLight(FaceMovementAndLightClientChallenge),
    /// The movement-only challenge.
    FaceMovement(FaceMovementClientChallenge),
}

impl ClientChallenge {
    /// The challenge type.
    pub fn challenge_type(&self) -> ChallengeType {
        match self {
            ClientChallenge::FaceMovementAndLight(_) => {
                ChallengeType::FaceMovementAndLightChallenge
            }
            ClientChallenge::FaceMovement(_) => ChallengeType::FaceMovementChallenge,
        }
    }

    fn validate(&self) -> Result<(), ValidationError> {
        let (id, initial, target) = match self {
            ClientChallenge::FaceMovementAndLight(c) => {
                (&c.challenge_id, &c.initial_face, &c.target_face)
            }
            ClientChallenge::FaceMovement(c) => (&c.challenge_id, &c.initial_face, &c.target_face),
        };
        if id.is_empty() {
            return Err(ValidationError::new(
                "ChallengeId",
                "required: the id of the challenge this record answers",
            ));
        }
        let boxes = initial
            .iter()
            .map(|f| &f.bounding_box)
            .chain(target.iter().map(|f| &f.bounding_box));
        for b in boxes {
            if ![b.width, b.height, b.left, b.top]
                .iter()
                .all(|v| v.is_finite())
            {
                return Err(ValidationError::new(
                    "BoundingBox",
                    "Width, Height, Left and Top must be finite fractions of the video size",
                ));
            }
        }
        Ok(())
    }
}

impl Serialize for ClientChallenge {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            ClientChallenge::FaceMovementAndLight(c) => {
                map.serialize_entry("FaceMovementAndLightChallenge", c)?
            }
            ClientChallenge::FaceMovement(c) => map.serialize_entry("FaceMovementChallenge", c)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ClientChallenge {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (name, value) = single_member::<D>(deserializer)?;
        match name.as_str() {
            "FaceMovementAndLightChallenge" => serde_json::from_value(value)
                .map(ClientChallenge::FaceMovementAndLight)
                .map_err(D::Error::custom),
            "FaceMovementChallenge" => serde_json::from_value(value)
                .map(ClientChallenge::FaceMovement)
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "unknown client challenge {other:?}"
            ))),
        }
    }
}

/// Reads a one-member JSON object (a union): its member name and value.
fn single_member<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<(String, serde_json::Value), D::Error> {
    let map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
    map.into_iter()
        .next()
        .ok_or_else(|| D::Error::custom("the challenge object has no member"))
}

/// The light challenge record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaceMovementAndLightClientChallenge {
    /// The challenge id.
    pub challenge_id: String,
    /// When recording started (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_start_timestamp: Option<i64>,
    /// When recording ended (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_end_timestamp: Option<i64>,
    /// Where the face was first detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_face: Option<InitialFace>,
    /// Where the face was when it filled the oval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_face: Option<TargetFace>,
    /// The colour being displayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_displayed: Option<ColorDisplayed>,
}

/// The movement-only challenge record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaceMovementClientChallenge {
    /// The challenge id.
    pub challenge_id: String,
    /// When recording started (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_start_timestamp: Option<i64>,
    /// When recording ended (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_end_timestamp: Option<i64>,
    /// Where the face was first detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_face: Option<InitialFace>,
    /// Where the face was when it filled the oval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_face: Option<TargetFace>,
}

/// A box as fractions of the video's width and height.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BoundingBox {
    /// Width / video width.
    pub width: f64,
    /// Height / video height.
    pub height: f64,
    /// Left edge / video width.
    pub left: f64,
    /// Top edge / video height.
    pub top: f64,
}

/// Where the face was first detected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InitialFace {
    /// The face's box.
    pub bounding_box: BoundingBox,
    /// When it was detected (epoch ms).
    pub initial_face_detected_timestamp: i64,
}

/// Where the face was when it filled the oval, and for how long.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TargetFace {
    /// The face's box.
    pub bounding_box: BoundingBox,
    /// When it reached the target position (epoch ms).
    pub face_detected_in_target_position_start_timestamp: i64,
    /// When it left it (epoch ms).
    pub face_detected_in_target_position_end_timestamp: i64,
}

/// A colour as `[r, g, b]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FreshnessColor {
    /// Red, green, blue, 0 to 255.
    #[serde(rename = "RGB")]
    pub rgb: Vec<u8>,
}

impl FreshnessColor {
    /// The colour `r, g, b`.
    pub fn rgb(r: u8, g: u8, b: u8) -> Self {
        FreshnessColor { rgb: vec![r, g, b] }
    }
}

/// The colour on screen during the light challenge.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ColorDisplayed {
    /// The colour now.
    pub current_color: FreshnessColor,
    /// Its index in the server's colour sequence.
    pub sequence_number: i64,
    /// When it appeared (epoch ms).
    pub current_color_start_timestamp: i64,
    /// The colour before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_color: Option<FreshnessColor>,
}

// ---------------------------------------------------------------------------------------
// Incoming
// ---------------------------------------------------------------------------------------

/// A `ServerSessionInformationEvent`: the parameters of the challenge to run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServerSessionInformationEvent {
    /// The session information.
    pub session_information: SessionInformation,
}

/// The challenge the server chose.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SessionInformation {
    /// The challenge, absent only if the server sent none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<ServerChallenge>,
}

/// The server's challenge: `{"FaceMovementAndLightChallenge": {...}}`,
/// `{"FaceMovementChallenge": {...}}`, or a type this version does not know.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ServerChallenge {
    /// The light challenge.
    FaceMovementAndLight(FaceMovementAndLightServerChallenge),
    /// The movement-only challenge.
    FaceMovement(FaceMovementServerChallenge),
    /// Another challenge type, kept as JSON.
    Unknown {
        /// The member name (the challenge type).
        name: String,
        /// Its value.
        value: serde_json::Value,
    },
}

impl ServerChallenge {
    /// The challenge type.
    pub fn challenge_type(&self) -> ChallengeType {
        match self {
            ServerChallenge::FaceMovementAndLight(_) => {
                ChallengeType::FaceMovementAndLightChallenge
            }
            ServerChallenge::FaceMovement(_) => ChallengeType::FaceMovementChallenge,
            ServerChallenge::Unknown { name, .. } => ChallengeType::Other(name.clone()),
        }
    }

    /// The oval the face must fill (both known challenge types have one).
    pub fn oval_parameters(&self) -> Option<&OvalParameters> {
        match self {
            ServerChallenge::FaceMovementAndLight(c) => Some(&c.oval_parameters),
            ServerChallenge::FaceMovement(c) => Some(&c.oval_parameters),
            ServerChallenge::Unknown { .. } => None,
        }
    }

    /// The detection thresholds.
    pub fn challenge_config(&self) -> Option<&ChallengeConfig> {
        match self {
            ServerChallenge::FaceMovementAndLight(c) => Some(&c.challenge_config),
            ServerChallenge::FaceMovement(c) => Some(&c.challenge_config),
            ServerChallenge::Unknown { .. } => None,
        }
    }
}

impl Serialize for ServerChallenge {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            ServerChallenge::FaceMovementAndLight(c) => {
                map.serialize_entry("FaceMovementAndLightChallenge", c)?
            }
            ServerChallenge::FaceMovement(c) => map.serialize_entry("FaceMovementChallenge", c)?,
            ServerChallenge::Unknown { name, value } => map.serialize_entry(name, value)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ServerChallenge {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (name, value) = single_member::<D>(deserializer)?;
        match name.as_str() {
            "FaceMovementAndLightChallenge" => serde_json::from_value(value)
                .map(ServerChallenge::FaceMovementAndLight)
                .map_err(D::Error::custom),
            "FaceMovementChallenge" => serde_json::from_value(value)
                .map(ServerChallenge::FaceMovement)
                .map_err(D::Error::custom),
            _ => Ok(ServerChallenge::Unknown { name, value }),
        }
    }
}

/// The light challenge's parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct FaceMovementAndLightServerChallenge {
    /// The oval.
    pub oval_parameters: OvalParameters,
    /// How colours are shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub light_challenge_type: Option<LightChallengeType>,
    /// Detection thresholds.
    pub challenge_config: ChallengeConfig,
    /// The colours to show, in order.
    pub color_sequences: Vec<ColorSequence>,
}

/// The movement-only challenge's parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct FaceMovementServerChallenge {
    /// The oval.
    pub oval_parameters: OvalParameters,
    /// Detection thresholds.
    pub challenge_config: ChallengeConfig,
}

/// The oval the face must fill, in video pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct OvalParameters {
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
    /// Centre, horizontally.
    pub center_x: f64,
    /// Centre, vertically.
    pub center_y: f64,
}

/// Thresholds for the client's face detection; all optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ChallengeConfig {
    /// Face detection score threshold (BlazeFace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blaze_face_detection_threshold: Option<f64>,
    /// Minimum face distance before the oval match starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_distance_threshold_min: Option<f64>,
    /// Face distance threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_distance_threshold: Option<f64>,
    /// Maximum face distance before the oval match starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_distance_threshold_max: Option<f64>,
    /// Oval intersection-over-union threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oval_iou_threshold: Option<f64>,
    /// Oval height / width.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oval_height_width_ratio: Option<f64>,
    /// Oval IoU width threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oval_iou_width_threshold: Option<f64>,
    /// Oval IoU height threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oval_iou_height_threshold: Option<f64>,
    /// Face IoU width threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_iou_width_threshold: Option<f64>,
    /// Face IoU height threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_iou_height_threshold: Option<f64>,
    /// Time allowed to fit the face in the oval, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oval_fit_timeout: Option<i64>,
}

/// One step of the colour sequence.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ColorSequence {
    /// The colour.
    pub freshness_color: FreshnessColor,
    /// How long it scrolls down, in milliseconds.
    pub downscroll_duration: f64,
    /// How long it stays, in milliseconds.
    pub flat_display_duration: f64,
}

/// A `ChallengeEvent`: which challenge (type and version) the session runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChallengeEvent {
    /// The challenge type.
    #[serde(rename = "Type")]
    pub challenge_type: ChallengeType,
    /// Its version, `x.y.z`.
    #[serde(default)]
    pub version: String,
}

/// A `DisconnectionEvent`: the server is done; the client closes with 1000.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DisconnectionEvent {
    /// When (epoch ms).
    pub timestamp_millis: i64,
}

/// An event from Face Liveness.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum LivenessEvent {
    /// The challenge parameters.
    ServerSessionInformation(ServerSessionInformationEvent),
    /// The challenge type and version.
    Challenge(ChallengeEvent),
    /// The session is over.
    Disconnection(DisconnectionEvent),
    /// An event type this version does not know, kept as is.
    Unknown {
        /// Its `:event-type`.
        event_type: String,
        /// Its payload.
        payload: Bytes,
    },
}

impl LivenessEvent {
    /// Decodes a server message.
    pub fn from_message(message: &Message) -> Result<LivenessEvent, EventError> {
        let event_type = event_type(message)?;
        let payload = message.payload();
        Ok(match event_type {
            SERVER_SESSION_INFORMATION_EVENT => {
                LivenessEvent::ServerSessionInformation(parse(event_type, payload)?)
            }
            CHALLENGE_EVENT => LivenessEvent::Challenge(parse(event_type, payload)?),
            DISCONNECTION_EVENT => LivenessEvent::Disconnection(parse(event_type, payload)?),
            other => LivenessEvent::Unknown {
                event_type: other.to_owned(),
                payload: payload.clone(),
            },
        })
    }

    /// The event as a server message (for emulators and tests).
    pub fn to_message(&self) -> Message {
        let (event_type, json) = match self {
            LivenessEvent::ServerSessionInformation(e) => {
                (SERVER_SESSION_INFORMATION_EVENT, serde_json::to_vec(e))
            }
            LivenessEvent::Challenge(e) => (CHALLENGE_EVENT, serde_json::to_vec(e)),
            LivenessEvent::Disconnection(e) => (DISCONNECTION_EVENT, serde_json::to_vec(e)),
            LivenessEvent::Unknown {
                event_type,
                payload,
            } => {
                return json_event(event_type, payload.to_vec());
            }
        };
        json_event(event_type, json.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::codec::EXCEPTION_TYPE;

    const LIGHT: &str = r#"{
      "SessionInformation": {
        "Challenge": {
          "FaceMovementAndLightChallenge": {
            "OvalParameters": {"Width": 288.0, "Height": 465.5, "CenterX": 320.0, "CenterY": 240.0},
            "LightChallengeType": "SEQUENTIAL",
            "ChallengeConfig": {
              "BlazeFaceDetectionThreshold": 0.75,
              "FaceDistanceThresholdMin": 0.4,
              "FaceDistanceThreshold": 0.4,
              "FaceDistanceThresholdMax": 0.0,
              "OvalIouThreshold": 0.7,
              "OvalHeightWidthRatio": 1.618,
              "OvalIouWidthThreshold": 0.25,
              "OvalIouHeightThreshold": 0.25,
              "FaceIouWidthThreshold": 0.15,
              "FaceIouHeightThreshold": 0.15,
              "OvalFitTimeout": 7000
            },
            "ColorSequences": [
              {"FreshnessColor": {"RGB": [0, 0, 0]}, "DownscrollDuration": 300.0, "FlatDisplayDuration": 100.0},
              {"FreshnessColor": {"RGB": [0, 255, 255]}, "DownscrollDuration": 300.0, "FlatDisplayDuration": 0.0}
            ]
          }
        }
      }
    }"#;

    const MOVEMENT: &str = r#"{
      "SessionInformation": {
        "Challenge": {
          "FaceMovementChallenge": {
            "OvalParameters": {"Width": 200.0, "Height": 320.0, "CenterX": 320.0, "CenterY": 240.0},
            "ChallengeConfig": {"BlazeFaceDetectionThreshold": 0.75, "OvalFitTimeout": 7000}
          }
        }
      }
    }"#;

    const CLIENT_LIGHT: &str = r#"{
      "Challenge": {
        "FaceMovementAndLightChallenge": {
          "ChallengeId": "c-1",
          "VideoStartTimestamp": 1724194903000,
          "VideoEndTimestamp": 1724194909000,
          "InitialFace": {
            "BoundingBox": {"Width": 0.3, "Height": 0.4, "Left": 0.35, "Top": 0.3},
            "InitialFaceDetectedTimestamp": 1724194903500
          },
          "TargetFace": {
            "BoundingBox": {"Width": 0.45, "Height": 0.6, "Left": 0.275, "Top": 0.2},
            "FaceDetectedInTargetPositionStartTimestamp": 1724194905000,
            "FaceDetectedInTargetPositionEndTimestamp": 1724194906000
          },
          "ColorDisplayed": {
            "CurrentColor": {"RGB": [255, 0, 0]},
            "SequenceNumber": 3,
            "CurrentColorStartTimestamp": 1724194906500,
            "PreviousColor": {"RGB": [0, 255, 0]}
          }
        }
      }
    }"#;

    const CLIENT_MOVEMENT: &str = r#"{
      "Challenge": {
        "FaceMovementChallenge": {
          "ChallengeId": "c-2",
          "VideoStartTimestamp": 1724194903000,
          "VideoEndTimestamp": 1724194909000,
          "InitialFace": {
            "BoundingBox": {"Width": 0.3, "Height": 0.4, "Left": 0.35, "Top": 0.3},
            "InitialFaceDetectedTimestamp": 1724194903500
          },
          "TargetFace": {
            "BoundingBox": {"Width": 0.45, "Height": 0.6, "Left": 0.275, "Top": 0.2},
            "FaceDetectedInTargetPositionStartTimestamp": 1724194905000,
            "FaceDetectedInTargetPositionEndTimestamp": 1724194906000
          }
        }
      }
    }"#;

    fn server_event(event_type: &str, json: &str) -> Message {
        Message::new(json.as_bytes().to_vec())
            .with_header(EVENT_TYPE, HeaderValue::from(event_type))
            .with_header(MESSAGE_TYPE, HeaderValue::from("event"))
            .with_header(CONTENT_TYPE, HeaderValue::from("application/json"))
    }

    fn round_trip<T>(json: &str)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
    {
        let parsed: T = serde_json::from_str(json).unwrap();
        let again = serde_json::to_value(&parsed).unwrap();
        let original: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(again, original, "serializing loses or invents fields");
        assert_eq!(serde_json::from_value::<T>(again).unwrap(), parsed);
    }

    #[test]
    fn light_challenge_round_trips() {
        round_trip::<ServerSessionInformationEvent>(LIGHT);
        let e: ServerSessionInformationEvent = serde_json::from_str(LIGHT).unwrap();
        let challenge = e.session_information.challenge.as_ref().unwrap();
        assert_eq!(
            challenge.challenge_type(),
            ChallengeType::FaceMovementAndLightChallenge
        );
        let ServerChallenge::FaceMovementAndLight(light) = challenge else {
            panic!("{challenge:?}")
        };
        assert_eq!(
            light.light_challenge_type,
            Some(LightChallengeType::Sequential)
        );
        assert_eq!(
            light.color_sequences[1].freshness_color,
            FreshnessColor::rgb(0, 255, 255)
        );
        assert_eq!(light.challenge_config.oval_fit_timeout, Some(7000));
        assert_eq!(challenge.oval_parameters().map(|o| o.center_x), Some(320.0));
    }

    #[test]
    fn movement_challenge_round_trips() {
        round_trip::<ServerSessionInformationEvent>(MOVEMENT);
        let e: ServerSessionInformationEvent = serde_json::from_str(MOVEMENT).unwrap();
        let challenge = e.session_information.challenge.unwrap();
        assert!(
            matches!(&challenge, ServerChallenge::FaceMovement(m) if m.oval_parameters.height == 320.0)
        );
        assert_eq!(
            challenge
                .challenge_config()
                .and_then(|c| c.face_distance_threshold),
            None
        );
    }

    #[test]
    fn unknown_server_challenges_are_kept() {
        let json = r#"{"SessionInformation":{"Challenge":{"FutureChallenge":{"X":1}}}}"#;
        round_trip::<ServerSessionInformationEvent>(json);
        let e: ServerSessionInformationEvent = serde_json::from_str(json).unwrap();
        let challenge = e.session_information.challenge.unwrap();
        assert_eq!(
            challenge.challenge_type(),
            ChallengeType::Other("FutureChallenge".into())
        );
        assert!(challenge.oval_parameters().is_none());
        assert!(serde_json::from_str::<ServerChallenge>("{}").is_err());
    }

    #[test]
    fn client_challenges_round_trip() {
        round_trip::<ClientSessionInformationEvent>(CLIENT_LIGHT);
        round_trip::<ClientSessionInformationEvent>(CLIENT_MOVEMENT);
        let light: ClientSessionInformationEvent = serde_json::from_str(CLIENT_LIGHT).unwrap();
        assert_eq!(
            light.challenge.challenge_type(),
            ChallengeType::FaceMovementAndLightChallenge
        );
        let m = light.to_message().unwrap();
        let names: Vec<&str> = m.headers().iter().map(|h| h.name()).collect();
        assert_eq!(names, [":event-type", ":message-type", ":content-type"]);
        assert_eq!(
            m.header_str(EVENT_TYPE),
            Some("ClientSessionInformationEvent")
        );
        assert_eq!(m.header_str(CONTENT_TYPE), Some("application/json"));
        let back: ClientSessionInformationEvent = serde_json::from_slice(m.payload()).unwrap();
        assert_eq!(back, light);
        let movement: ClientSessionInformationEvent =
            serde_json::from_str(CLIENT_MOVEMENT).unwrap();
        assert_eq!(
            movement.challenge.challenge_type(),
            ChallengeType::FaceMovementChallenge
        );
        assert!(serde_json::from_str::<ClientChallenge>(r#"{"Other":{}}"#).is_err());
    }

    #[test]
    fn client_challenge_validation() {
        let empty_id = ClientSessionInformationEvent::new(ClientChallenge::FaceMovement(
            FaceMovementClientChallenge::default(),
        ));
        assert_eq!(empty_id.validate().unwrap_err().field, "ChallengeId");
        assert_eq!(empty_id.to_message().unwrap_err().field, "ChallengeId");
        let nan = ClientSessionInformationEvent::new(ClientChallenge::FaceMovementAndLight(
            FaceMovementAndLightClientChallenge {
                challenge_id: "c".into(),
                initial_face: Some(InitialFace {
                    bounding_box: BoundingBox {
                        width: f64::NAN,
                        ..BoundingBox::default()
                    },
                    initial_face_detected_timestamp: 0,
                }),
                ..FaceMovementAndLightClientChallenge::default()
            },
        ));
        assert_eq!(nan.validate().unwrap_err().field, "BoundingBox");
    }

    #[test]
    fn video_events_are_base64_json_with_the_js_header_order() {
        let v = VideoEvent::new(vec![0u8, 1, 2, 250], 1_724_194_903_123);
        v.validate().unwrap();
        let m = v.to_message();
        let names: Vec<&str> = m.headers().iter().map(|h| h.name()).collect();
        assert_eq!(names, [":event-type", ":message-type", ":content-type"]);
        assert_eq!(m.header_str(EVENT_TYPE), Some("VideoEvent"));
        assert_eq!(m.header_str(MESSAGE_TYPE), Some("event"));
        assert_eq!(m.header_str(CONTENT_TYPE), Some("application/json"));
        assert_eq!(
            m.payload().as_ref(),
            br#"{"VideoChunk":"AAEC+g==","TimestampMillis":1724194903123}"#
        );
        let back: VideoEvent = serde_json::from_slice(m.payload()).unwrap();
        assert_eq!(back, v);
        let end = VideoEvent::new(Bytes::new(), 1_724_194_903_123).to_message();
        assert_eq!(
            end.payload().as_ref(),
            br#"{"VideoChunk":"","TimestampMillis":1724194903123}"#
        );
        assert!(
            serde_json::from_str::<VideoEvent>(r#"{"VideoChunk":"***","TimestampMillis":1}"#)
                .is_err()
        );
    }

    #[test]
    fn video_events_are_stamped_with_the_corrected_clock() {
        use crate::proto::clock::ManualTime;
        use std::time::Duration;
        let time = ManualTime::new(UNIX_EPOCH + Duration::from_millis(1_724_194_903_250));
        let clock = Clock::new(time.clone());
        clock.set_offset_millis(3_600_000); // the server is an hour ahead of this host
        let v = VideoEvent::now(vec![1u8], &clock);
        assert_eq!(v.timestamp_millis, 1_724_198_503_250);
        time.advance(Duration::from_millis(1_000));
        assert_eq!(
            VideoEvent::now(vec![1u8], &clock).timestamp_millis,
            1_724_198_504_250
        );
        let before_1970 = Clock::new(ManualTime::new(UNIX_EPOCH));
        before_1970.set_offset_millis(-1);
        assert_eq!(epoch_millis(&before_1970), 0);
        assert!(VideoEvent::now(vec![1u8], &before_1970).validate().is_err());
    }

    #[test]
    fn video_timestamps_must_be_in_the_service_range() {
        assert_eq!(
            VideoEvent::new(Bytes::new(), 1_000)
                .validate()
                .unwrap_err()
                .field,
            "TimestampMillis"
        );
        assert!(VideoEvent::new(Bytes::new(), MAX_TIMESTAMP_MILLIS + 1)
            .validate()
            .is_err());
        VideoEvent::new(Bytes::new(), MIN_TIMESTAMP_MILLIS)
            .validate()
            .unwrap();
    }

    #[test]
    fn messages_decode_to_typed_events() {
        let info =
            LivenessEvent::from_message(&server_event("ServerSessionInformationEvent", LIGHT))
                .unwrap();
        assert!(matches!(&info, LivenessEvent::ServerSessionInformation(_)));
        let challenge = LivenessEvent::from_message(&server_event(
            "ChallengeEvent",
            r#"{"Type":"FaceMovementChallenge","Version":"1.0.0"}"#,
        ))
        .unwrap();
        assert_eq!(
            challenge,
            LivenessEvent::Challenge(ChallengeEvent {
                challenge_type: ChallengeType::FaceMovementChallenge,
                version: "1.0.0".into()
            })
        );
        let bye = LivenessEvent::from_message(&server_event(
            "DisconnectionEvent",
            r#"{"TimestampMillis":1724194910000}"#,
        ))
        .unwrap();
        assert_eq!(
            bye,
            LivenessEvent::Disconnection(DisconnectionEvent {
                timestamp_millis: 1_724_194_910_000
            })
        );
        let unknown = LivenessEvent::from_message(&server_event("NewEvent", "{}")).unwrap();
        assert!(
            matches!(&unknown, LivenessEvent::Unknown { event_type, .. } if event_type == "NewEvent")
        );
        for event in [info, challenge, bye, unknown] {
            assert_eq!(
                LivenessEvent::from_message(&event.to_message()).unwrap(),
                event
            );
        }
    }

    #[test]
    fn malformed_and_exception_messages() {
        let bad = LivenessEvent::from_message(&server_event("DisconnectionEvent", r#""nope""#))
            .unwrap_err();
        assert!(
            matches!(&bad, EventError::Malformed { event_type, .. } if event_type == "DisconnectionEvent")
        );
        let bad_rgb = LivenessEvent::from_message(&server_event(
            "ServerSessionInformationEvent",
            r#"{"SessionInformation":{"Challenge":{"FaceMovementAndLightChallenge":{"ColorSequences":[{"FreshnessColor":{"RGB":[256]}}]}}}}"#,
        ))
        .unwrap_err();
        assert!(matches!(bad_rgb, EventError::Malformed { .. }));
        let exception = Message::new(&br#"{"Message":"Session expired","Code":"x"}"#[..])
            .with_header(MESSAGE_TYPE, HeaderValue::from("exception"))
            .with_header(EXCEPTION_TYPE, HeaderValue::from("ValidationException"));
        assert_eq!(
            LivenessEvent::from_message(&exception).unwrap_err(),
            EventError::Exception {
                exception_type: "ValidationException".into(),
                message: "Session expired".into()
            }
        );
        let no_type = Message::new(&b"{}"[..]);
        assert!(matches!(
            LivenessEvent::from_message(&no_type),
            Err(EventError::Malformed { .. })
        ));
    }
}
