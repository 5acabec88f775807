//! The Face Liveness client events checked against the Rekognition streaming model
//! (aws-sdk-js-v3 `clients/client-rekognitionstreaming/src/schemas/schemas_0.ts`, required
//! members; `codegen/sdk-codegen/aws-models/rekognitionstreaming.json`, ranges and patterns;
//! protocol.md 4.4 and 4.5a). Violations are reported in AWS's validation-error form.

use serde_json::Value;

/// `EpochMillis`: the model's range for every client timestamp.
const EPOCH_MILLIS: std::ops::RangeInclusive<i64> = 1_640_995_200_000..=2_272_147_200_000;
/// `ColorDisplayed.SequenceNumber`: the model's range.
const SEQUENCE_NUMBER: std::ops::RangeInclusive<i64> = 0..=50;
/// The whole video of one session: at most 10 MB (StartFaceLivenessSession API reference).
pub(crate) const MAX_VIDEO_BYTES: u64 = 10 * 1024 * 1024;
/// `ChallengeId`: a UUID.
const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// Collects violations as `Value '...' at 'path' failed to satisfy constraint: ...` and
/// renders them as AWS does (`N validation error(s) detected: a; b`).
#[derive(Default)]
pub(crate) struct Violations(Vec<String>);

impl Violations {
    fn push(&mut self, value: Option<&Value>, path: &str, constraint: &str) {
        let shown = match value {
            None | Some(Value::Null) => "null".to_owned(),
            Some(Value::String(text)) => format!("'{text}'"),
            Some(other) => format!("'{other}'"),
        };
        self.0.push(format!(
            "Value {shown} at '{path}' failed to satisfy constraint: Member must {constraint}"
        ));
    }

    /// `None` when nothing was violated, else AWS's message.
    pub(crate) fn message(&self) -> Option<String> {
        let count = self.0.len();
        let plural = if count == 1 { "" } else { "s" };
        (count > 0).then(|| {
            format!(
                "{count} validation error{plural} detected: {}",
                self.0.join("; ")
            )
        })
    }

    fn required<'a>(&mut self, parent: &'a Value, name: &str, path: &str) -> Option<&'a Value> {
        let value = parent.get(name).filter(|v| !v.is_null());
        if value.is_none() {
            self.push(None, &format!("{path}{name}"), "not be null");
        }
        value
    }

    fn millis(&mut self, parent: &Value, name: &str, path: &str, required: bool) {
        let value = parent.get(name).filter(|v| !v.is_null());
        let Some(value) = value else {
            if required {
                self.push(None, &format!("{path}{name}"), "not be null");
            }
            return;
        };
        if !value.as_i64().is_some_and(|m| EPOCH_MILLIS.contains(&m)) {
            self.push(
                Some(value),
                &format!("{path}{name}"),
                &format!(
                    "be an epoch-millisecond timestamp between {} and {}",
                    EPOCH_MILLIS.start(),
                    EPOCH_MILLIS.end()
                ),
            );
        }
    }

    fn bounding_box(&mut self, parent: &Value, path: &str) {
        let Some(bounds) = self.required(parent, "BoundingBox", path) else {
            return;
        };
        for side in ["Width", "Height", "Left", "Top"] {
            let Some(value) = self.required(bounds, side, &format!("{path}BoundingBox.")) else {
                continue;
            };
            // Boxes are fractions of the video's width and height (protocol.md 4.5a).
            if !value.as_f64().is_some_and(|f| (0.0..=1.0).contains(&f)) {
                self.push(
                    Some(value),
                    &format!("{path}BoundingBox.{side}"),
                    "be a fraction of the video size between 0 and 1",
                );
            }
        }
    }

    fn color(&mut self, parent: &Value, name: &str, path: &str) {
        let Some(color) = self.required(parent, name, path) else {
            return;
        };
        let path = format!("{path}{name}.");
        let Some(rgb) = self.required(color, "RGB", &path) else {
            return;
        };
        let valid = rgb.as_array().is_some_and(|values| {
            values.len() == 3
                && values
                    .iter()
                    .all(|v| v.as_i64().is_some_and(|c| (0..=255).contains(&c)))
        });
        if !valid {
            self.push(
                Some(rgb),
                &format!("{path}RGB"),
                "be a list of 3 integers between 0 and 255",
            );
        }
    }
}

/// Checks `VideoEvent.TimestampMillis`.
pub(crate) fn check_video_event(body: &Value) -> Violations {
    let mut violations = Violations::default();
    violations.millis(body, "TimestampMillis", "", false);
    violations
}

/// Checks a `ClientSessionInformationEvent` body against the model, for a session whose
/// challenge is `session_challenge` (`FaceMovementAndLightChallenge` or
/// `FaceMovementChallenge`): exactly that one member, a UUID `ChallengeId`, timestamps in
/// range, boxes as fractions, colours as RGB triples and `SequenceNumber` 0–50.
pub(crate) fn check_client_information(body: &Value, session_challenge: &str) -> Violations {
    let mut violations = Violations::default();
    let Some(challenge) = violations.required(body, "Challenge", "") else {
        return violations;
    };
    let members: Vec<&String> = challenge
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    if members.len() != 1 || members[0] != session_challenge {
        violations.push(
            Some(challenge),
            "Challenge",
            &format!("have exactly one member, {session_challenge}, the challenge of this session"),
        );
        return violations;
    }
    let record = &challenge[session_challenge];
    let path = format!("Challenge.{session_challenge}.");
    if let Some(id) = violations.required(record, "ChallengeId", &path) {
        if !id.as_str().is_some_and(is_uuid) {
            violations.push(
                Some(id),
                &format!("{path}ChallengeId"),
                &format!("satisfy regular expression pattern: {UUID_PATTERN}"),
            );
        }
    }
    violations.millis(record, "VideoStartTimestamp", &path, false);
    violations.millis(record, "VideoEndTimestamp", &path, false);
    if let Some(face) = record.get("InitialFace").filter(|v| !v.is_null()) {
        let face_path = format!("{path}InitialFace.");
        violations.bounding_box(face, &face_path);
        violations.millis(face, "InitialFaceDetectedTimestamp", &face_path, true);
    }
    if let Some(face) = record.get("TargetFace").filter(|v| !v.is_null()) {
        let face_path = format!("{path}TargetFace.");
        violations.bounding_box(face, &face_path);
        for name in [
            "FaceDetectedInTargetPositionStartTimestamp",
            "FaceDetectedInTargetPositionEndTimestamp",
        ] {
            violations.millis(face, name, &face_path, true);
        }
    }
    if let Some(colors) = record.get("ColorDisplayed").filter(|v| !v.is_null()) {
        let color_path = format!("{path}ColorDisplayed.");
        violations.color(colors, "CurrentColor", &color_path);
        if colors.get("PreviousColor").is_some_and(|v| !v.is_null()) {
            violations.color(colors, "PreviousColor", &color_path);
        }
        if let Some(number) = violations.required(colors, "SequenceNumber", &color_path) {
            if !number
                .as_i64()
                .is_some_and(|n| SEQUENCE_NUMBER.contains(&n))
            {
                violations.push(
                    Some(number),
                    &format!("{color_path}SequenceNumber"),
                    "be between 0 and 50",
                );
            }
        }
        violations.millis(colors, "CurrentColorStartTimestamp", &color_path, true);
    }
    violations
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.chars().all(|c| c.is_ascii_hexdigit()))
}
