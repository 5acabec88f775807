//! Reading a server's "no": an exception frame or a refused upgrade, classified so that only
//! clock problems are retried.

use crate::proto::codec::{Message, ERROR_CODE, ERROR_MESSAGE, EXCEPTION_TYPE, MESSAGE_TYPE};
use crate::proto::skew::SkewMessage;

use super::error::{Error, ErrorKind};

/// A rejection from the server, with its cause as far as the text tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) exception_type: String,
    pub(crate) message: String,
    pub(crate) cause: Cause,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// "Signature expired" / "Signature not yet current", with the server's time.
    Skew(SkewMessage),
    /// The signature did not match.
    Mismatch,
    /// Unknown key or access denied.
    Auth,
    /// Anything else the service says.
    Other,
}

impl Rejection {
    pub(crate) fn classify(exception_type: &str, message: &str) -> Rejection {
        let cause = if let Some(skew) = SkewMessage::parse(message) {
            Cause::Skew(skew)
        } else if message.contains("signature we calculated does not match")
            || exception_type == "SignatureDoesNotMatch"
        {
            Cause::Mismatch
        } else if matches!(
            exception_type,
            "UnrecognizedClientException"
                | "AccessDeniedException"
                | "InvalidClientTokenId"
                | "ExpiredTokenException"
        ) || message.contains("security token included in the request is invalid")
        {
            Cause::Auth
        } else {
            Cause::Other
        };
        Rejection {
            exception_type: exception_type.to_owned(),
            message: message.to_owned(),
            cause,
        }
    }

    /// An `exception` or `error` event-stream message, or `None` for an ordinary event.
    pub(crate) fn from_message(message: &Message) -> Option<Rejection> {
        match message.header_str(MESSAGE_TYPE) {
            Some("exception") => {
                let exception_type = message
                    .header_str(EXCEPTION_TYPE)
                    .unwrap_or("UnknownException");
                let text = message_text(message.payload());
                Some(Rejection::classify(exception_type, &text))
            }
            Some("error") => {
                let code = message.header_str(ERROR_CODE).unwrap_or("UnknownError");
                let text = message.header_str(ERROR_MESSAGE).unwrap_or_default();
                Some(Rejection::classify(code, text))
            }
            _ => None,
        }
    }

    /// A refused upgrade's body (`{"__type": ..., "message": ...}`) and `x-amzn-ErrorType` header.
    pub(crate) fn from_http(
        status: u16,
        error_type_header: Option<&str>,
        body: &[u8],
    ) -> Rejection {
        let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |names: &[&str]| -> Option<String> {
            let object = parsed.as_ref()?.as_object()?;
            names
                .iter()
                .find_map(|n| object.get(*n).and_then(|v| v.as_str()).map(str::to_owned))
        };
        let exception_type = error_type_header
            .map(|h| h.split(':').next().unwrap_or(h).to_owned())
            .or_else(|| field(&["__type", "code", "Code"]))
            .map(|t| t.rsplit('#').next().unwrap_or(&t).to_owned())
            .unwrap_or_else(|| format!("HTTP{status}"));
        let message = field(&["message", "Message"])
            .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(512).collect());
        Rejection::classify(&exception_type, &message)
    }

    /// The error to report when this rejection is final.
    pub(crate) fn into_error(self) -> Error {
        let kind = match self.cause {
            Cause::Skew(_) => ErrorKind::ClockSkew,
            Cause::Mismatch => ErrorKind::SignatureMismatch,
            Cause::Auth => ErrorKind::Auth,
            Cause::Other => ErrorKind::Service,
        };
        let text = format!("{}: {}", self.exception_type, self.message);
        Error::new(kind, text).with_exception(self.exception_type)
    }
}

/// The `Message` field of a JSON exception payload, or the payload as text.
fn message_text(payload: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(payload).ok();
    parsed
        .as_ref()
        .and_then(|v| v.as_object())
        .and_then(|o| o.get("Message").or_else(|| o.get("message")))
        .and_then(|m| m.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| {
            String::from_utf8_lossy(payload)
                .chars()
                .take(2048)
                .collect()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::codec::HeaderValue;

    #[test]
    fn classifies_the_aws_texts() {
        let skew = Rejection::classify(
            "InvalidSignatureException",
            "Signature expired: 20240820T225000Z is now earlier than 20240820T225643Z (20240820T230143Z - 5 min.)",
        );
        assert!(matches!(skew.cause, Cause::Skew(_)));
        let mismatch = Rejection::classify(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        );
        assert_eq!(mismatch.cause, Cause::Mismatch);
        assert_eq!(
            Rejection::classify("UnrecognizedClientException", "x").cause,
            Cause::Auth
        );
        assert_eq!(
            Rejection::classify("BadRequestException", "no audio").cause,
            Cause::Other
        );
    }

    #[test]
    fn reads_exception_frames_and_http_bodies() {
        let frame = Message::new(&br#"{"Message":"Your request timed out because no new audio was received for 15 seconds."}"#[..])
            .with_header(MESSAGE_TYPE, HeaderValue::String("exception".into()))
            .with_header(EXCEPTION_TYPE, HeaderValue::String("BadRequestException".into()));
        let r = Rejection::from_message(&frame).unwrap();
        assert_eq!(r.exception_type, "BadRequestException");
        assert!(r.message.starts_with("Your request timed out"));
        let http = Rejection::from_http(403, None, br#"{"__type":"com.amazon#InvalidSignatureException","message":"Signature not yet current: 20240821T000143Z is still later than 20240820T230643Z (20240820T230143Z + 5 min.)"}"#);
        assert_eq!(http.exception_type, "InvalidSignatureException");
        assert!(matches!(http.cause, Cause::Skew(_)));
        let garbage = Rejection::from_http(500, None, b"\xff\xfe not json");
        assert_eq!(garbage.exception_type, "HTTP500");
    }
}
