//! An `AudioEvent` built the way aws-smithy-types builds it: the independent encoder that our
//! codec and signer are compared with (benchmark cross-check, aws-sigv4 equality tests, the
//! protocol vectors).

use aws_smithy_types::event_stream::{Header, HeaderValue, Message};

/// The `AudioEvent` inner message carrying `audio`, as the SDKs' encoder has it.
pub fn sdk_audio_event(audio: impl Into<bytes::Bytes>) -> Message {
    Message::new(audio)
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ))
        .add_header(Header::new(
            ":event-type",
            HeaderValue::String("AudioEvent".into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/octet-stream".into()),
        ))
}
