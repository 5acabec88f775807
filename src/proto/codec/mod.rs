//! Event-stream message codec: turns [`Message`]s into AWS event-stream binary frames and back.
//!
//! A frame is a 12-byte prelude (total length, headers length, prelude CRC-32), a block of
//! typed headers, the payload, and a CRC-32 over everything before it; all integers are
//! big-endian. This module is sans-IO: [`Message::encode_into`] appends a frame to a buffer,
//! [`FrameDecoder`] takes whole frames off the front of a receive buffer, and
//! [`Message::decode`] parses one frame held in a slice. Decoding never panics on any input,
//! refuses frames larger than its [`Limits`] from the prelude alone, and keeps duplicate
//! header names; encoding refuses messages the AWS implementations would reject (see the
//! `MAX_*` constants).
//!
//! ```
//! use sigv4_ws::proto::codec::{HeaderValue, Message, MESSAGE_TYPE};
//!
//! let msg = Message::new(&b"{}"[..])
//!     .with_header(MESSAGE_TYPE, HeaderValue::from("event"));
//! let frame = msg.encode()?;
//! assert_eq!(frame.len(), msg.encoded_len());
//! assert_eq!(Message::decode(&frame)?, msg);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod decode;
mod encode;
mod error;
mod message;

pub use decode::{FrameDecoder, Limits};
pub use encode::encode_headers_into;
pub use error::{DecodeError, EncodeError};
pub use message::{Header, HeaderValue, Message};

/// `:message-type`: `event`, `exception` or `error`.
pub const MESSAGE_TYPE: &str = ":message-type";
/// `:event-type`: the event-stream union member an `event` message carries.
pub const EVENT_TYPE: &str = ":event-type";
/// `:content-type`: media type of the payload.
pub const CONTENT_TYPE: &str = ":content-type";
/// `:exception-type`: name of the modeled error an `exception` message carries.
pub const EXCEPTION_TYPE: &str = ":exception-type";
/// `:error-code`: code of an unmodeled `error` message.
pub const ERROR_CODE: &str = ":error-code";
/// `:error-message`: text of an unmodeled `error` message.
pub const ERROR_MESSAGE: &str = ":error-message";
/// `:date`: signing time of a signed envelope, a timestamp header.
pub const DATE: &str = ":date";
/// `:chunk-signature`: the event signature of a signed envelope, a byte-array header.
pub const CHUNK_SIGNATURE: &str = ":chunk-signature";

/// Length of the prelude: total length, headers length, prelude CRC (4 bytes each).
pub const PRELUDE_LEN: usize = 12;
/// Length of the trailer: the message CRC.
pub const TRAILER_LEN: usize = 4;
/// Length of the smallest frame (no headers, empty payload): prelude plus trailer.
pub const MIN_MESSAGE_LEN: usize = 16;

/// Longest header name the encoder emits (its length prefix is one byte).
pub const MAX_HEADER_NAME_LEN: usize = 255;
/// Longest byte-array or string header value the encoder emits (`i16::MAX`, as in the C, Go
/// and Python implementations).
pub const MAX_HEADER_VALUE_LEN: usize = 32_767;
/// Largest header block the encoder emits, and the default decoding limit: 128 KiB.
pub const MAX_HEADERS_LEN: usize = 128 * 1024;
/// Largest payload the encoder emits, and the default decoding limit: 16 MiB.
pub const MAX_PAYLOAD_LEN: usize = 16 * 1024 * 1024;
