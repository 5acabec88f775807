//! `StartFaceLivenessSession`: the start request, validated before connecting.
//!
//! Query parameters (the `x-amz-rekognition-streaming-liveness-` prefix of their HTTP header
//! form removed, protocol.md section 4.6): `session-id`, `video-width`, `video-height`,
//! `challenge-versions` (all required), and the optional `precheck-view-enabled` (`1`/`0`) and
//! `attempt-count` that Amplify's clients send (their meaning is not documented by AWS).
//!
//! # Validation rules
//!
//! | Parameter | Rule |
//! |---|---|
//! | `session-id` | a UUID (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`), as returned by `CreateFaceLivenessSession` |
//! | `video-width`, `video-height` | positive |
//! | `challenge-versions` | 15..=150 characters; comma-separated `<ChallengeType>_<major>.<minor>.<patch>`, the type at least 10 letters (AWS's pattern `[a-zA-Z]{10,}_\d+\.\d+\.\d+`) |

use crate::services::{is_uuid, ValidationError};

/// Path of Face Liveness over WebSocket.
pub const PATH: &str = "/start-face-liveness-session-websocket";

/// The challenge versions current clients announce: both challenge types at 1.0.0.
pub const DEFAULT_CHALLENGE_VERSIONS: &str =
    "FaceMovementAndLightChallenge_1.0.0,FaceMovementChallenge_1.0.0";

/// `StartFaceLivenessSession` over `/start-face-liveness-session-websocket`.
///
/// ```
/// use sigv4_ws::services::liveness::{StartFaceLivenessSession, DEFAULT_CHALLENGE_VERSIONS};
///
/// let request = StartFaceLivenessSession::new(
///     "3f3b1f8a-5d9f-4e43-a9a3-0a4e3f1f6a11", 640, 480, DEFAULT_CHALLENGE_VERSIONS,
/// );
/// request.validate()?;
/// assert_eq!(request.query()[1], ("video-width", "640".to_owned()));
/// # Ok::<(), sigv4_ws::services::ValidationError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartFaceLivenessSession {
    session_id: String,
    video_width: u32,
    video_height: u32,
    challenge_versions: String,
    precheck_view_enabled: Option<bool>,
    attempt_count: Option<u32>,
}

impl StartFaceLivenessSession {
    /// A request for the session `session_id` (from `CreateFaceLivenessSession`), video of
    /// `video_width` × `video_height` pixels, and the challenge versions this client supports
    /// (e.g. [`DEFAULT_CHALLENGE_VERSIONS`]).
    pub fn new(
        session_id: impl Into<String>,
        video_width: u32,
        video_height: u32,
        challenge_versions: impl Into<String>,
    ) -> Self {
        StartFaceLivenessSession {
            session_id: session_id.into(),
            video_width,
            video_height,
            challenge_versions: challenge_versions.into(),
            precheck_view_enabled: None,
            attempt_count: None,
        }
    }

    /// `precheck-view-enabled` (sent as `1` or `0`), as Amplify's clients send it.
    pub fn precheck_view_enabled(mut self, enabled: bool) -> Self {
        self.precheck_view_enabled = Some(enabled);
        self
    }

    /// `attempt-count`, as Amplify's clients send it.
    pub fn attempt_count(mut self, count: u32) -> Self {
        self.attempt_count = Some(count);
        self
    }

    /// The session id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The video width in pixels.
    pub fn video_width(&self) -> u32 {
        self.video_width
    }

    /// The video height in pixels.
    pub fn video_height(&self) -> u32 {
        self.video_height
    }

    /// The challenge versions.
    pub fn challenge_versions(&self) -> &str {
        &self.challenge_versions
    }

    /// Checks every rule in the [module docs](self) without connecting.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if !is_uuid(&self.session_id) {
            return Err(ValidationError::new(
                "session-id",
                format!(
                    "{:?} is not a UUID; pass the SessionId returned by CreateFaceLivenessSession",
                    self.session_id
                ),
            ));
        }
        if self.video_width == 0 {
            return Err(ValidationError::new(
                "video-width",
                "must be positive: the width of the video in pixels",
            ));
        }
        if self.video_height == 0 {
            return Err(ValidationError::new(
                "video-height",
                "must be positive: the height of the video in pixels",
            ));
        }
        check_challenge_versions(&self.challenge_versions)
    }

    /// The query parameters as they will be sent (before signing).
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("session-id", self.session_id.clone()),
            ("video-width", self.video_width.to_string()),
            ("video-height", self.video_height.to_string()),
            ("challenge-versions", self.challenge_versions.clone()),
        ];
        if let Some(enabled) = self.precheck_view_enabled {
            q.push((
                "precheck-view-enabled",
                if enabled { "1" } else { "0" }.to_owned(),
            ));
        }
        if let Some(count) = self.attempt_count {
            q.push(("attempt-count", count.to_string()));
        }
        q
    }
}

fn check_challenge_versions(versions: &str) -> Result<(), ValidationError> {
    if !(15..=150).contains(&versions.len()) {
        return Err(ValidationError::new(
            "challenge-versions",
            format!(
                "{} characters; it must be 15 to 150, e.g. {DEFAULT_CHALLENGE_VERSIONS}",
                versions.len()
            ),
        ));
    }
    for item in versions.split(',') {
        let shaped = item.rsplit_once('_').is_some_and(|(kind, version)| {
            kind.len() >= 10 && kind.bytes().all(|b| b.is_ascii_alphabetic()) && is_version(version)
        });
        if !shaped {
            return Err(ValidationError::new(
                "challenge-versions",
                format!("{item:?} is not of the form <ChallengeType>_<major>.<minor>.<patch>, e.g. FaceMovementChallenge_1.0.0"),
            ));
        }
    }
    Ok(())
}

/// `\d+\.\d+\.\d+`.
fn is_version(version: &str) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f3b1f8a-5d9f-4e43-a9a3-0a4e3f1f6a11";

    fn request() -> StartFaceLivenessSession {
        StartFaceLivenessSession::new(ID, 640, 480, DEFAULT_CHALLENGE_VERSIONS)
    }

    #[track_caller]
    fn refused(request: StartFaceLivenessSession, field: &str, contains: &str) {
        let error = request
            .validate()
            .expect_err("the request should be refused");
        assert_eq!(error.field, field, "{error}");
        assert!(error.reason.contains(contains), "{error}");
    }

    #[test]
    fn valid_requests_pass() {
        request().validate().unwrap();
        StartFaceLivenessSession::new(ID, 1, 1, "FaceMovementChallenge_1.0.0")
            .validate()
            .unwrap();
        StartFaceLivenessSession::new(ID, 1280, 720, "FaceMovementAndLightChallenge_10.20.300")
            .precheck_view_enabled(true)
            .attempt_count(2)
            .validate()
            .unwrap();
    }

    #[test]
    fn session_id_must_be_a_uuid() {
        refused(
            StartFaceLivenessSession::new("session-1", 640, 480, DEFAULT_CHALLENGE_VERSIONS),
            "session-id",
            "UUID",
        );
        refused(
            StartFaceLivenessSession::new("", 640, 480, DEFAULT_CHALLENGE_VERSIONS),
            "session-id",
            "UUID",
        );
    }

    #[test]
    fn video_width_must_be_positive() {
        refused(
            StartFaceLivenessSession::new(ID, 0, 480, DEFAULT_CHALLENGE_VERSIONS),
            "video-width",
            "positive",
        );
    }

    #[test]
    fn video_height_must_be_positive() {
        refused(
            StartFaceLivenessSession::new(ID, 640, 0, DEFAULT_CHALLENGE_VERSIONS),
            "video-height",
            "positive",
        );
    }

    #[test]
    fn challenge_versions_length_is_15_to_150() {
        refused(
            StartFaceLivenessSession::new(ID, 640, 480, "Abcdefghij_1.0"),
            "challenge-versions",
            "15 to 150",
        );
        let long = ["FaceMovementChallenge_1.0.0"; 6].join(",");
        assert!(long.len() > 150);
        refused(
            StartFaceLivenessSession::new(ID, 640, 480, long),
            "challenge-versions",
            "15 to 150",
        );
    }

    #[test]
    fn challenge_versions_follow_the_pattern() {
        for bad in [
            "FaceMovementChallenge-1.0.0",
            "FaceMovementChallenge_1.0",
            "FaceMovementChallenge_1.0.x",
            "Face2MovementChallenge_1.0.0",
            "ShortType_1.0.0,FaceMovementChallenge_1.0.0",
            "FaceMovementChallenge_1.0.0,",
            "FaceMovementChallenge_1.0.0, FaceMovementAndLightChallenge_1.0.0",
        ] {
            refused(
                StartFaceLivenessSession::new(ID, 640, 480, bad),
                "challenge-versions",
                "<ChallengeType>",
            );
        }
    }

    #[test]
    fn query_has_the_four_parameters_and_the_optional_two() {
        assert_eq!(
            request().query(),
            vec![
                ("session-id", ID.to_owned()),
                ("video-width", "640".to_owned()),
                ("video-height", "480".to_owned()),
                ("challenge-versions", DEFAULT_CHALLENGE_VERSIONS.to_owned()),
            ]
        );
        let q = request()
            .precheck_view_enabled(false)
            .attempt_count(3)
            .query();
        assert_eq!(q[4], ("precheck-view-enabled", "0".to_owned()));
        assert_eq!(q[5], ("attempt-count", "3".to_owned()));
        assert_eq!(request().precheck_view_enabled(true).query()[4].1, "1");
    }
}
