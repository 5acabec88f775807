//! Typed clients for the two services: Amazon Transcribe Streaming ([`transcribe`], feature
//! `transcribe`) and Rekognition Face Liveness ([`liveness`], feature `liveness`), plus
//! helpers to pace pre-recorded audio and keep quiet streams alive ([`pacing`]).
//!
//! Each service has the same four parts:
//!
//! * `request` — the start request, with one setter per query parameter, checked by
//!   `validate()` **before** anything is dialled. A refusal is a [`ValidationError`] that names
//!   the query parameter (or JSON field) and says what to change.
//! * `model` — serde models of the events in both directions, sans-IO: they build and read
//!   [`crate::proto::codec::Message`]s and never touch the transport, so tests and servers can
//!   use them on their own.
//! * `error` — the service's exceptions as a typed error, with the transport error (and its
//!   `is_clock_skew()`, `is_auth()`, … predicates) kept for everything else.
//! * the client and its stream, in the module root, on top of [`crate::transport`].
//!
//! What the two services do alike is written once, here: the client's settings, endpoint URL
//! and connecting (`client`), a session split into its sending and receiving halves
//! (`stream`), and the typed error declared from a table of the service's exceptions
//! (`error`).

use std::fmt;

/// A string-valued enum of a JSON model that keeps values this version does not know
/// (`Other`), with serde, `as_str` and `Display`.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(from = "String", into = "String")]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this version does not know.
            Other(String),
        }

        impl $name {
            /// The value as on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)*
                    $name::Other(s) => s,
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $($wire => $name::$variant,)*
                    _ => $name::Other(s),
                }
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.as_str().to_owned()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mod client;
mod error;
pub mod pacing;
mod stream;

#[cfg(feature = "liveness")]
pub mod liveness;
#[cfg(feature = "transcribe")]
pub mod transcribe;

/// A start request (or an outgoing event) that the service would refuse, found before connecting.
///
/// `field` is the query parameter as it appears on the wire (`sample-rate`, `language-options`,
/// `challenge-versions`, …) or, for JSON events, the field name (`ChannelDefinitions`);
/// `reason` says what is wrong and what to do.
///
/// ```
/// # #[cfg(feature = "transcribe")] {
/// use sigv4_ws::services::transcribe::{MediaEncoding, StartStreamTranscription};
///
/// let request = StartStreamTranscription::new(MediaEncoding::Pcm, 4_000).language_code("en-US");
/// let error = request.validate().unwrap_err();
/// assert_eq!(error.field, "sample-rate");
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidationError {
    /// The query parameter or JSON field at fault, spelled as on the wire.
    pub field: &'static str,
    /// What is wrong with it and how to fix it.
    pub reason: String,
}

impl ValidationError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ValidationError {
            field,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for ValidationError {}

/// Whether `value` is a UUID in its 36-character text form (8-4-4-4-12 hex digits).
pub(crate) fn is_uuid(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Checks that a region is a plain DNS label sequence (`us-east-1`), so that it cannot change
/// the host it is put into.
pub(crate) fn check_region(region: &str) -> Result<(), ValidationError> {
    let ok = !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "region",
            format!("{region:?} is not an AWS region name; use the form `us-east-1`"),
        ))
    }
}

/// The DNS suffix of a region's partition: `amazonaws.com.cn` for China, else `amazonaws.com`.
pub(crate) fn dns_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

/// Builds the unsigned endpoint URL: `base` (custom or regional), the service `path` appended
/// to the base's own path, and `query` appended to any query the base already has.
pub(crate) fn endpoint_url(
    base: &url::Url,
    path: &str,
    query: &[(&'static str, String)],
) -> Result<url::Url, ValidationError> {
    if !matches!(base.scheme(), "wss" | "https" | "ws" | "http") {
        return Err(ValidationError::new(
            "endpoint",
            format!(
                "the endpoint scheme `{}` is not supported; use wss:// or https:// (ws:// or http:// for a local emulator)",
                base.scheme()
            ),
        ));
    }
    if base.host_str().is_none_or(str::is_empty) {
        return Err(ValidationError::new(
            "endpoint",
            "the endpoint URL has no host",
        ));
    }
    let mut url = base.clone();
    let joined = format!("{}{}", base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url.set_fragment(None);
    if !query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (name, value) in query {
            pairs.append_pair(name, value);
        }
    }
    Ok(url)
}

/// The `Message` (or `message`) field of a JSON exception payload, or the payload as text.
pub(crate) fn exception_message(payload: &[u8]) -> String {
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

/// A server message that is not a usable event (both services).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventError {
    /// An `exception` (or `error`) message: the service refused the stream.
    Exception {
        /// `:exception-type` (or `:error-code`), e.g. `BadRequestException`.
        exception_type: String,
        /// The service's message.
        message: String,
    },
    /// A known event whose payload does not parse, or a message without `:event-type`.
    Malformed {
        /// Its `:event-type` (empty when missing).
        event_type: String,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::Exception {
                exception_type,
                message,
            } => write!(f, "{exception_type}: {message}"),
            EventError::Malformed { event_type, reason } => {
                write!(f, "malformed {event_type} event from the server: {reason}")
            }
        }
    }
}

impl std::error::Error for EventError {}

/// The `:event-type` of an ordinary event; an exception or a message without one is an error.
pub(crate) fn event_type(message: &crate::proto::codec::Message) -> Result<&str, EventError> {
    if let Some((exception_type, message)) = read_exception(message) {
        return Err(EventError::Exception {
            exception_type,
            message,
        });
    }
    message
        .header_str(crate::proto::codec::EVENT_TYPE)
        .ok_or_else(|| EventError::Malformed {
            event_type: String::new(),
            reason: "the message has no :event-type header".to_owned(),
        })
}

/// Parses a JSON event payload; a parse failure names the event type.
pub(crate) fn parse_event<T: for<'de> serde::Deserialize<'de>>(
    event_type: &str,
    payload: &[u8],
) -> Result<T, EventError> {
    serde_json::from_slice(payload).map_err(|e| EventError::Malformed {
        event_type: event_type.to_owned(),
        reason: e.to_string(),
    })
}

/// An `exception` or `error` message's type and text, or `None` for an ordinary event.
pub(crate) fn read_exception(message: &crate::proto::codec::Message) -> Option<(String, String)> {
    use crate::proto::codec::{ERROR_CODE, ERROR_MESSAGE, EXCEPTION_TYPE, MESSAGE_TYPE};
    match message.header_str(MESSAGE_TYPE) {
        Some("exception") => Some((
            message
                .header_str(EXCEPTION_TYPE)
                .unwrap_or("UnknownException")
                .to_owned(),
            exception_message(message.payload()),
        )),
        Some("error") => Some((
            message
                .header_str(ERROR_CODE)
                .unwrap_or("UnknownError")
                .to_owned(),
            message
                .header_str(ERROR_MESSAGE)
                .unwrap_or_default()
                .to_owned(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        assert!(is_uuid("3f3b1f8a-5d9f-4e43-a9a3-0a4e3f1f6a11"));
        assert!(is_uuid("3F3B1F8A-5D9F-4E43-A9A3-0A4E3F1F6A11"));
        assert!(!is_uuid("3f3b1f8a5d9f4e43a9a30a4e3f1f6a11"));
        assert!(!is_uuid("3f3b1f8a-5d9f-4e43-a9a3-0a4e3f1f6a1g"));
        assert!(!is_uuid("3f3b1f8a-5d9f-4e43-a9a3-0a4e3f1f6a1"));
        assert!(!is_uuid(""));
    }

    #[test]
    fn regions_cannot_change_the_host() {
        assert!(check_region("us-east-1").is_ok());
        assert!(check_region("cn-north-1").is_ok());
        for bad in [
            "",
            "us-east-1.evil.com",
            "US-EAST-1",
            "us east",
            "-us",
            "a/b",
        ] {
            let e = check_region(bad).unwrap_err();
            assert_eq!(e.field, "region", "{bad}");
        }
        assert_eq!(dns_suffix("cn-north-1"), "amazonaws.com.cn");
        assert_eq!(dns_suffix("eu-west-1"), "amazonaws.com");
    }

    #[test]
    fn endpoint_paths_and_queries_are_joined() {
        let base = url::Url::parse("http://127.0.0.1:9000").unwrap();
        let url = endpoint_url(&base, "/x-websocket", &[("a", "1,2".into())]).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9000/x-websocket?a=1%2C2");
        let proxy = url::Url::parse("https://proxy.example/aws/?tenant=7#frag").unwrap();
        let url = endpoint_url(&proxy, "/x-websocket", &[("b", "2".into())]).unwrap();
        assert_eq!(
            url.as_str(),
            "https://proxy.example/aws/x-websocket?tenant=7&b=2"
        );
        let bad = url::Url::parse("ftp://h/").unwrap();
        assert_eq!(endpoint_url(&bad, "/x", &[]).unwrap_err().field, "endpoint");
    }

    #[test]
    fn exception_messages_are_read_from_json_or_text() {
        assert_eq!(exception_message(br#"{"Message":"m1"}"#), "m1");
        assert_eq!(exception_message(br#"{"message":"m2","Code":"c"}"#), "m2");
        assert_eq!(exception_message(b"plain"), "plain");
        assert_eq!(exception_message(b"\xff"), "\u{fffd}");
    }
}
