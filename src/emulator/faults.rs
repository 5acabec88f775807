//! Misbehaviours the emulator can be told to commit, so clients can be tested against them.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::proto::codec::{HeaderValue, Message, CONTENT_TYPE, EVENT_TYPE, MESSAGE_TYPE};

/// One misbehaviour, applied to every connection of an emulator. Frame counts are WebSocket
/// data messages received from the client on that connection; `after_frames: 0` fires right
/// after the upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Fault {
    /// Behave (the default).
    #[default]
    None,
    /// Accept the TCP connection and never answer the upgrade request.
    StallBeforeUpgrade,
    /// Complete the upgrade, then never read or write (no pongs either).
    StallAfterUpgrade,
    /// Close the connection after `after_frames` messages: with a close frame (code 1011,
    /// "emulator fault") when `abrupt` is false, or by dropping the TCP connection without
    /// any close frame when it is true.
    CloseMidStream {
        /// Messages to accept first.
        after_frames: u64,
        /// Drop the TCP connection instead of closing the WebSocket.
        abrupt: bool,
    },
    /// After `after_frames` messages, send one binary message of pseudo-random bytes that is
    /// not an event-stream frame (its prelude checksum never matches); then carry on.
    Garbage {
        /// Messages to accept first.
        after_frames: u64,
    },
    /// After `after_frames` messages, send a well-formed `TranscriptEvent` frame whose
    /// message CRC is wrong; then carry on.
    BadCrc {
        /// Messages to accept first.
        after_frames: u64,
    },
    /// After `after_frames` messages, send a frame whose prelude (with a valid prelude CRC)
    /// declares 16 MiB + 128 KiB + 1 bytes, more than any client accepts; only the prelude
    /// and a few bytes are actually sent. Then carry on.
    Oversized {
        /// Messages to accept first.
        after_frames: u64,
    },
    /// Wait this long before reading each message (a slow server: the client's sends back up).
    SlowReader {
        /// Delay before each read.
        per_message_delay: Duration,
    },
}

impl Fault {
    /// The message count after which a send/close fault fires, if this is one.
    pub(crate) fn trigger(self) -> Option<u64> {
        match self {
            Fault::CloseMidStream { after_frames, .. }
            | Fault::Garbage { after_frames }
            | Fault::BadCrc { after_frames }
            | Fault::Oversized { after_frames } => Some(after_frames),
            _ => None,
        }
    }
}

/// Declared total length of the [`Fault::Oversized`] frame.
pub const OVERSIZED_DECLARED_LEN: u32 = 16 * 1024 * 1024 + 128 * 1024 + 1;

/// The bytes of a send fault, if `fault` is one.
pub(crate) fn fault_bytes(fault: Fault, seed: u64) -> Option<Bytes> {
    match fault {
        Fault::Garbage { .. } => Some(garbage(seed)),
        Fault::BadCrc { .. } => Some(bad_crc_frame()),
        Fault::Oversized { .. } => Some(oversized_prelude()),
        _ => None,
    }
}

/// 64 pseudo-random bytes (xorshift) whose first 12 bytes are not a valid prelude.
fn garbage(seed: u64) -> Bytes {
    let mut state = seed | 1;
    let mut out = BytesMut::with_capacity(64);
    for _ in 0..8 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.put_u64(state);
    }
    if crc32fast::hash(&out[..8]).to_be_bytes() == out[8..12] {
        out[11] ^= 0xff;
    }
    out.freeze()
}

fn bad_crc_frame() -> Bytes {
    let message = Message::new(Bytes::from_static(br#"{"Transcript":{"Results":[]}}"#))
        .with_header(MESSAGE_TYPE, HeaderValue::from("event"))
        .with_header(EVENT_TYPE, HeaderValue::from("TranscriptEvent"))
        .with_header(CONTENT_TYPE, HeaderValue::from("application/json"));
    let mut frame = BytesMut::new();
    if message.encode_into(&mut frame).is_err() {
        return Bytes::new();
    }
    let last = frame.len() - 1;
    frame[last] ^= 0x5a;
    frame.freeze()
}

fn oversized_prelude() -> Bytes {
    let mut out = BytesMut::with_capacity(28);
    out.put_u32(OVERSIZED_DECLARED_LEN);
    out.put_u32(0);
    let crc = crc32fast::hash(&out[..8]);
    out.put_u32(crc);
    out.put_slice(&[0u8; 16]);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::codec::{DecodeError, FrameDecoder};

    #[test]
    fn every_fault_frame_is_refused_by_the_codec() {
        let mut g = BytesMut::from(&garbage(42)[..]);
        assert!(FrameDecoder::new().decode(&mut g).is_err());
        let bad = bad_crc_frame();
        assert!(matches!(
            Message::decode(&bad),
            Err(DecodeError::MessageChecksum { .. })
        ));
        let mut big = BytesMut::from(&oversized_prelude()[..]);
        assert!(matches!(
            FrameDecoder::new().decode(&mut big),
            Err(DecodeError::PayloadTooLarge { .. })
        ));
    }
}
