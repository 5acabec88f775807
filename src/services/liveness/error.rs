//! Face Liveness exceptions as one typed error.

use crate::services::error::service_error;

service_error! {
    /// What went wrong with a Face Liveness session.
    ///
    /// Note the two validations: [`LivenessError::InvalidRequest`] is this crate refusing a request
    /// before connecting; [`LivenessError::Validation`] is the service's `ValidationException`
    /// (bad video, expired session, …).
    ///
    /// A `Signature expired` / `Signature not yet current` rejection stays a
    /// [`LivenessError::Transport`] error with `is_clock_skew()` true, even though the service sends
    /// it as `InvalidSignatureException`: it needs a clock fix, not a credential fix.
    pub enum LivenessError {
        /// The request (or an event) was refused before being sent.
        InvalidRequest(ValidationError) => "not sent",
        exceptions {
            /// `ValidationException`: the video or the session was not acceptable (wrong format or
            /// size, no face, session expired or already used, …).
            Validation("ValidationException") => "check the video format and size, and that the session id is fresh",
            /// `InternalServerException`.
            InternalServer("InternalServerException") => "retry with a new session",
            /// `ThrottlingException`.
            Throttling("ThrottlingException") => "retry later",
            /// `ServiceQuotaExceededException`.
            ServiceQuotaExceeded("ServiceQuotaExceededException") => "raise the quota or retry later",
            /// `ServiceUnavailableException`.
            ServiceUnavailable("ServiceUnavailableException") => "retry later",
            /// `SessionNotFoundException`: the session id is unknown (or from another region/account).
            SessionNotFound("SessionNotFoundException") => "create the session with CreateFaceLivenessSession in the same region and account",
        }
        auth_exceptions {
            /// `AccessDeniedException`: the credentials may not start this session.
            AccessDenied("AccessDeniedException") => "allow rekognition:StartFaceLivenessSession for these credentials",
            /// `InvalidSignatureException` that is not about time: the signature did not match.
            InvalidSignature("InvalidSignatureException") => "check the secret key, region and signing name",
        }
        /// Worth retrying later (with a new session id: a used one cannot be restarted).
        retryable { InternalServer, Throttling, ServiceUnavailable }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{self, ErrorKind};

    // (exception type, variant, worth retrying, an auth problem)
    const MODELED: [(&str, &str, bool, bool); 8] = [
        ("ValidationException", "Validation", false, false),
        ("InternalServerException", "InternalServer", true, false),
        ("ThrottlingException", "Throttling", true, false),
        (
            "ServiceQuotaExceededException",
            "ServiceQuotaExceeded",
            false,
            false,
        ),
        (
            "ServiceUnavailableException",
            "ServiceUnavailable",
            true,
            false,
        ),
        ("SessionNotFoundException", "SessionNotFound", false, false),
        ("AccessDeniedException", "AccessDenied", false, true),
        ("InvalidSignatureException", "InvalidSignature", false, true),
    ];

    #[test]
    fn every_modeled_exception_has_its_variant() {
        for (exception_type, variant, retryable, auth) in MODELED {
            let e: LivenessError = transport::Error::service(exception_type, "text").into();
            assert_eq!(
                format!("{e:?}"),
                format!("{variant} {{ message: \"text\" }}"),
                "the message is the service's, without the type the transport puts before it"
            );
            assert_eq!(e.exception_type(), Some(exception_type));
            assert!(e
                .to_string()
                .starts_with(&format!("{exception_type}: text (")));
            assert_eq!((e.is_retryable(), e.is_auth()), (retryable, auth));
        }
    }

    #[test]
    fn transport_errors_map_by_kind() {
        let denied: LivenessError =
            transport::Error::new(ErrorKind::Auth, "AccessDeniedException: no")
                .with_exception("AccessDeniedException")
                .into();
        assert!(matches!(&denied, LivenessError::AccessDenied { message } if message == "no"));
        assert!(denied.is_auth());
        let mismatch: LivenessError = transport::Error::new(
            ErrorKind::SignatureMismatch,
            "InvalidSignatureException: does not match",
        )
        .with_exception("InvalidSignatureException")
        .into();
        assert!(matches!(mismatch, LivenessError::InvalidSignature { .. }));
        let skew: LivenessError = transport::Error::new(
            ErrorKind::ClockSkew,
            "InvalidSignatureException: Signature expired",
        )
        .with_exception("InvalidSignatureException")
        .into();
        assert!(skew.is_clock_skew());
        assert!(matches!(skew, LivenessError::Transport(_)));
        let unrecognized: LivenessError =
            transport::Error::new(ErrorKind::Auth, "UnrecognizedClientException: x")
                .with_exception("UnrecognizedClientException")
                .into();
        assert!(matches!(unrecognized, LivenessError::Transport(_)));
        assert!(unrecognized.is_auth());
        let other: LivenessError = transport::Error::service("NewException", "m").into();
        assert!(matches!(other, LivenessError::Unknown { .. }));
        let io: LivenessError = transport::Error::new(ErrorKind::Io, "reset").into();
        assert!(io.is_retryable());
    }

    #[test]
    fn refused_requests_say_so() {
        let v: LivenessError =
            crate::services::ValidationError::new("video-width", "must be positive").into();
        assert_eq!(v.validation_error().map(|e| e.field), Some("video-width"));
        assert!(!v.is_retryable());
        assert_eq!(
            v.to_string(),
            "not sent: invalid `video-width`: must be positive"
        );
    }
}
