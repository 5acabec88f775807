//! The in-memory form of an event-stream message: [`Message`], [`Header`] and [`HeaderValue`].

use std::borrow::Cow;

use bytes::Bytes;

/// Type byte of [`HeaderValue::Bool`]`(true)`.
pub(crate) const TYPE_TRUE: u8 = 0;
/// Type byte of [`HeaderValue::Bool`]`(false)`.
pub(crate) const TYPE_FALSE: u8 = 1;
/// Type byte of [`HeaderValue::Byte`].
pub(crate) const TYPE_BYTE: u8 = 2;
/// Type byte of [`HeaderValue::Int16`].
pub(crate) const TYPE_INT16: u8 = 3;
/// Type byte of [`HeaderValue::Int32`].
pub(crate) const TYPE_INT32: u8 = 4;
/// Type byte of [`HeaderValue::Int64`].
pub(crate) const TYPE_INT64: u8 = 5;
/// Type byte of [`HeaderValue::ByteArray`].
pub(crate) const TYPE_BYTE_ARRAY: u8 = 6;
/// Type byte of [`HeaderValue::String`].
pub(crate) const TYPE_STRING: u8 = 7;
/// Type byte of [`HeaderValue::Timestamp`].
pub(crate) const TYPE_TIMESTAMP: u8 = 8;
/// Type byte of [`HeaderValue::Uuid`].
pub(crate) const TYPE_UUID: u8 = 9;

/// A typed header value. The variants map one-to-one onto the wire types 0..=9.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    /// Boolean; encoded as type 0 (`true`) or 1 (`false`) with no value bytes.
    Bool(bool),
    /// Signed byte (type 2).
    Byte(i8),
    /// Signed 16-bit integer (type 3).
    Int16(i16),
    /// Signed 32-bit integer (type 4).
    Int32(i32),
    /// Signed 64-bit integer (type 5).
    Int64(i64),
    /// Raw bytes with a 16-bit length prefix (type 6), e.g. `:chunk-signature`.
    ByteArray(Bytes),
    /// UTF-8 string with a 16-bit length prefix (type 7), e.g. `:message-type`.
    String(String),
    /// Milliseconds since the Unix epoch (type 8), e.g. `:date`.
    Timestamp(i64),
    /// 16 raw UUID bytes (type 9).
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// The wire type byte of this value (0..=9).
    pub fn type_byte(&self) -> u8 {
        match self {
            HeaderValue::Bool(true) => TYPE_TRUE,
            HeaderValue::Bool(false) => TYPE_FALSE,
            HeaderValue::Byte(_) => TYPE_BYTE,
            HeaderValue::Int16(_) => TYPE_INT16,
            HeaderValue::Int32(_) => TYPE_INT32,
            HeaderValue::Int64(_) => TYPE_INT64,
            HeaderValue::ByteArray(_) => TYPE_BYTE_ARRAY,
            HeaderValue::String(_) => TYPE_STRING,
            HeaderValue::Timestamp(_) => TYPE_TIMESTAMP,
            HeaderValue::Uuid(_) => TYPE_UUID,
        }
    }

    /// The string, if this is a [`HeaderValue::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a [`HeaderValue::ByteArray`].
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            HeaderValue::ByteArray(b) => Some(b),
            _ => None,
        }
    }

    /// The milliseconds since the Unix epoch, if this is a [`HeaderValue::Timestamp`].
    pub fn as_timestamp_millis(&self) -> Option<i64> {
        match self {
            HeaderValue::Timestamp(ms) => Some(*ms),
            _ => None,
        }
    }

    /// The boolean, if this is a [`HeaderValue::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            HeaderValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The 16 bytes, if this is a [`HeaderValue::Uuid`].
    pub fn as_uuid(&self) -> Option<&[u8; 16]> {
        match self {
            HeaderValue::Uuid(u) => Some(u),
            _ => None,
        }
    }

    /// Encoded length of this value: the type byte plus the value bytes (including the
    /// 2-byte length prefix of byte arrays and strings). The header name is not included.
    pub fn encoded_len(&self) -> usize {
        1 + match self {
            HeaderValue::Bool(_) => 0,
            HeaderValue::Byte(_) => 1,
            HeaderValue::Int16(_) => 2,
            HeaderValue::Int32(_) => 4,
            HeaderValue::Int64(_) | HeaderValue::Timestamp(_) => 8,
            HeaderValue::ByteArray(b) => 2usize.saturating_add(b.len()),
            HeaderValue::String(s) => 2usize.saturating_add(s.len()),
            HeaderValue::Uuid(_) => 16,
        }
    }
}

impl From<bool> for HeaderValue {
    fn from(v: bool) -> Self {
        HeaderValue::Bool(v)
    }
}

impl From<i8> for HeaderValue {
    fn from(v: i8) -> Self {
        HeaderValue::Byte(v)
    }
}

impl From<i16> for HeaderValue {
    fn from(v: i16) -> Self {
        HeaderValue::Int16(v)
    }
}

impl From<i32> for HeaderValue {
    fn from(v: i32) -> Self {
        HeaderValue::Int32(v)
    }
}

/// An `i64` becomes [`HeaderValue::Int64`]; build [`HeaderValue::Timestamp`] explicitly.
impl From<i64> for HeaderValue {
    fn from(v: i64) -> Self {
        HeaderValue::Int64(v)
    }
}

impl From<String> for HeaderValue {
    fn from(v: String) -> Self {
        HeaderValue::String(v)
    }
}

impl From<&str> for HeaderValue {
    fn from(v: &str) -> Self {
        HeaderValue::String(v.to_owned())
    }
}

impl From<Bytes> for HeaderValue {
    fn from(v: Bytes) -> Self {
        HeaderValue::ByteArray(v)
    }
}

/// One header: a name and a typed value.
///
/// `Debug` masks the value of `:chunk-signature`: an event signature is a credential-derived
/// secret and must not reach logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// Borrowed for the well-known names, so decoding them allocates nothing (a signed
    /// event's two envelope and three inner headers are decoded per frame).
    name: Cow<'static, str>,
    value: HeaderValue,
}

/// Header names a decoder meets on nearly every message.
const KNOWN_NAMES: [&str; 8] = [
    super::DATE,
    super::CHUNK_SIGNATURE,
    super::MESSAGE_TYPE,
    super::EVENT_TYPE,
    super::CONTENT_TYPE,
    super::EXCEPTION_TYPE,
    super::ERROR_CODE,
    super::ERROR_MESSAGE,
];

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("Header");
        out.field("name", &self.name);
        if self.name == super::CHUNK_SIGNATURE {
            out.field("value", &"***");
        } else {
            out.field("value", &self.value);
        }
        out.finish()
    }
}

impl Header {
    /// A header named `name` with `value`. Limits (name 1..=255 bytes, value at most
    /// 32767 bytes) are checked when the header is encoded.
    pub fn new(name: impl Into<String>, value: HeaderValue) -> Header {
        Header {
            name: Cow::Owned(name.into()),
            value,
        }
    }

    /// A decoded header: the name is copied only when it is not a well-known one.
    pub(crate) fn decoded(name: &str, value: HeaderValue) -> Header {
        let name = match KNOWN_NAMES.iter().find(|known| **known == name) {
            Some(known) => Cow::Borrowed(*known),
            None => Cow::Owned(name.to_owned()),
        };
        Header { name, value }
    }

    /// The header name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The header value.
    pub fn value(&self) -> &HeaderValue {
        &self.value
    }

    /// Splits the header into its name and value.
    pub fn into_parts(self) -> (String, HeaderValue) {
        (self.name.into_owned(), self.value)
    }

    /// Encoded length of this header: name-length byte, name, type byte and value.
    pub fn encoded_len(&self) -> usize {
        1usize
            .saturating_add(self.name.len())
            .saturating_add(self.value.encoded_len())
    }
}

/// One event-stream message: an ordered list of headers and a payload.
///
/// Headers keep insertion order, and a name may appear more than once (the decoder keeps
/// duplicates; [`Message::header`] returns the first).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Message {
    headers: Vec<Header>,
    payload: Bytes,
}

impl Message {
    /// A message with no headers and the given payload.
    pub fn new(payload: impl Into<Bytes>) -> Message {
        Message {
            headers: Vec::new(),
            payload: payload.into(),
        }
    }

    /// Builds a message from an already assembled header list and payload.
    pub fn from_parts(headers: Vec<Header>, payload: impl Into<Bytes>) -> Message {
        Message {
            headers,
            payload: payload.into(),
        }
    }

    /// Appends a header (after any existing ones) and returns the message.
    pub fn with_header(mut self, name: impl Into<String>, value: HeaderValue) -> Message {
        self.headers.push(Header::new(name, value));
        self
    }

    /// Appends a header after any existing ones.
    pub fn push_header(&mut self, header: Header) {
        self.headers.push(header);
    }

    /// All headers, in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The value of the first header called `name`, if any.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| &h.value)
    }

    /// The value of the first header called `name`, if there is one and it is a string.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(HeaderValue::as_str)
    }

    /// The payload.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Splits the message into its headers and payload.
    pub fn into_parts(self) -> (Vec<Header>, Bytes) {
        (self.headers, self.payload)
    }

    /// Length of the header block this message encodes to (saturating; limits are not checked).
    pub fn headers_encoded_len(&self) -> usize {
        self.headers
            .iter()
            .fold(0usize, |acc, h| acc.saturating_add(h.encoded_len()))
    }

    /// Length of the frame [`Message::encode`] produces: 16 bytes of prelude and trailer, plus
    /// the header block and the payload (saturating; limits are not checked here).
    pub fn encoded_len(&self) -> usize {
        super::MIN_MESSAGE_LEN
            .saturating_add(self.headers_encoded_len())
            .saturating_add(self.payload.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_bytes_and_lengths() {
        let cases: [(HeaderValue, u8, usize); 10] = [
            (HeaderValue::Bool(true), 0, 1),
            (HeaderValue::Bool(false), 1, 1),
            (HeaderValue::Byte(-1), 2, 2),
            (HeaderValue::Int16(-1), 3, 3),
            (HeaderValue::Int32(-1), 4, 5),
            (HeaderValue::Int64(-1), 5, 9),
            (HeaderValue::ByteArray(Bytes::from_static(b"abc")), 6, 6),
            (HeaderValue::String("abcd".into()), 7, 7),
            (HeaderValue::Timestamp(8), 8, 9),
            (HeaderValue::Uuid([0; 16]), 9, 17),
        ];
        for (v, t, len) in cases {
            assert_eq!(v.type_byte(), t, "{v:?}");
            assert_eq!(v.encoded_len(), len, "{v:?}");
        }
    }

    #[test]
    fn accessors() {
        let m = Message::new(&b"hi"[..])
            .with_header(":message-type", HeaderValue::from("event"))
            .with_header("dup", HeaderValue::Int32(1))
            .with_header("dup", HeaderValue::Int32(2))
            .with_header(":date", HeaderValue::Timestamp(5));
        assert_eq!(m.header_str(":message-type"), Some("event"));
        assert_eq!(m.header("dup"), Some(&HeaderValue::Int32(1)));
        assert_eq!(m.header_str("dup"), None);
        assert_eq!(
            m.header(":date").and_then(HeaderValue::as_timestamp_millis),
            Some(5)
        );
        assert_eq!(m.headers().len(), 4);
        assert_eq!(m.payload().as_ref(), b"hi");
        // 16 + (1+13+1+2+5) + (1+3+5)*2 + (1+5+9) + 2
        assert_eq!(m.encoded_len(), 16 + 22 + 18 + 15 + 2);
        let (headers, payload) = m.into_parts();
        assert_eq!(headers[0].name(), ":message-type");
        assert_eq!(payload.as_ref(), b"hi");
    }
}
