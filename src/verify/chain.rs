//! Verification of a chain of signed event frames (the `:date` / `:chunk-signature` envelope).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use bytes::Bytes;
use hmac::Mac;
use sha2::{Digest, Sha256};

use crate::proto::clock::{millis_between, Clock};
use crate::proto::codec::{DecodeError, HeaderValue, Message, CHUNK_SIGNATURE, DATE};
use crate::proto::sigv4::{
    derive_signing_key, encode_date_header, epoch_seconds, event_string_to_sign, feed_event_prefix,
    feed_event_tail, hex32, keyed_hmac, HmacSha256, UtcTime,
};
use crate::proto::skew::{skew_message_time, SIGNATURE_WINDOW};

use super::rejection::{clock_advice, window_check, Diagnosis, Rejection, RejectionKind, Service};
use super::upgrade::{VerifiedUpgrade, SIGNATURE_MISMATCH_MESSAGE};

/// Verifies the signed frames of one stream, in order, each chained on the previous signature
/// (the upgrade's `X-Amz-Signature` for the first).
///
/// Every frame must be an envelope with exactly `:date` (timestamp) and `:chunk-signature`
/// (32 bytes); its `:date` must be within ±5 minutes of the verifier's clock; its signature is
/// recomputed with the frame's own date for the scope, so a stream crossing UTC midnight
/// changes scope. A dropped, reordered or altered frame breaks the chain and is refused as a
/// mismatch. After the empty end frame, any frame is refused ([`RejectionKind::ChainEnded`]).
/// A refused frame does not advance the chain.
///
/// A frame that verifies costs two SHA-256 passes (the `:date` header and the payload) and one
/// HMAC with a cached key, and allocates nothing (`tests/verify_no_alloc.rs`); only a refusal
/// builds the string-to-sign as text, for its diagnosis.
pub struct ChainVerifier {
    credentials: Credentials,
    region: String,
    service: String,
    service_kind: Option<Service>,
    clock: Clock,
    window: Duration,
    prior: Prior,
    /// The signing key of one UTC day (days since the epoch), already keyed into an HMAC so
    /// that each frame hashes only its string-to-sign.
    day_mac: Option<(u64, HmacSha256)>,
    /// The day's HMAC with the string-to-sign's first three lines absorbed, for one epoch
    /// second: frames 100 ms apart share it nine times in ten.
    second_mac: Option<(u64, HmacSha256)>,
    ended: bool,
    verified: u64,
}

impl ChainVerifier {
    /// A chain seeded with `upgrade`'s signature, checked with `credentials` (those of the
    /// upgrade's access key id) and judged by `clock`.
    pub fn new(upgrade: &VerifiedUpgrade, credentials: Credentials, clock: Clock) -> ChainVerifier {
        ChainVerifier {
            credentials,
            region: upgrade.region().to_owned(),
            service: upgrade.service().to_owned(),
            service_kind: upgrade.service_kind(),
            clock,
            window: SIGNATURE_WINDOW,
            prior: Prior::Seed(upgrade.seed_signature().to_owned()),
            day_mac: None,
            second_mac: None,
            ended: false,
            verified: 0,
        }
    }

    /// How many frames have been verified.
    pub fn frames_verified(&self) -> u64 {
        self.verified
    }

    /// Whether the empty end frame has been verified.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The clock time is judged by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Verifies the next frame of the stream.
    pub fn verify_frame(&mut self, frame: &Message) -> Result<VerifiedEvent, Rejection> {
        let index = self.verified;
        if self.ended {
            return Err(self.reject(
                RejectionKind::ChainEnded,
                "The stream has already ended: no event may follow the empty end frame.".to_owned(),
                Diagnosis::new(
                    RejectionKind::ChainEnded,
                    format!(
                        "frame #{} arrived after the signed empty end frame (frame #{})",
                        index + 1,
                        index
                    ),
                )
                .advise(
                    "send the empty end frame last, once, and open a new session to stream more",
                ),
            ));
        }
        let (millis, signature) = self.envelope(frame, index)?;
        let date = time_from_millis(millis);

        let now = self.clock.now();
        let skew = millis_between(date, now);
        if let Err((kind, message)) = window_check(date, now, self.window) {
            return Err(self.reject(
                kind,
                message,
                Diagnosis::new(
                    kind,
                    format!(
                        "frame #{index}'s :date is {} ({millis} ms) and the server's clock reads {}",
                        skew_message_time(date),
                        skew_message_time(now)
                    ),
                )
                .skew(skew)
                .advise(clock_advice(skew, "each frame"))
                .advise("sign each frame when it is sent (never a batch in advance) and send media at real-time pace"),
            ));
        }

        let payload = frame.payload();
        let date_header = encode_date_header(millis);
        // The string-to-sign is fed to the HMAC in pieces rather than built: a frame that
        // verifies allocates nothing and formats nothing.
        let matches = match epoch_seconds(date) {
            Some(secs) => {
                let mut mac = self.second_mac(secs);
                feed_event_tail(
                    self.prior.as_bytes(),
                    &Sha256::digest(date_header).into(),
                    &Sha256::digest(payload).into(),
                    &mut |piece: &[u8]| mac.update(piece),
                );
                mac.verify_slice(&signature).is_ok()
            }
            // Before 1970: no scope date exists, so nothing can match.
            None => false,
        };
        if !matches {
            let string_to_sign = event_string_to_sign(
                date,
                &self.region,
                &self.service,
                self.prior.as_str(),
                &date_header,
                payload,
            );
            let shown = string_to_sign.map(|sts| mask_prior_line(&sts));
            return Err(self.reject(
                RejectionKind::SignatureMismatch,
                SIGNATURE_MISMATCH_MESSAGE.to_owned(),
                Diagnosis::new(
                    RejectionKind::SignatureMismatch,
                    format!(
                        "frame #{index} (:date {millis} ms, payload {} bytes) is not signed by the expected key over the \
                         previous frame's signature{}",
                        payload.len(),
                        if index == 0 { " (for the first frame: the URL's X-Amz-Signature)" } else { "" }
                    ),
                )
                .skew(skew)
                .expected(None, shown)
                .advise("sign and send frames strictly in order, one chain per connection: a dropped, reordered or resent frame breaks the chain")
                .advise("seed the chain with the X-Amz-Signature of the URL this connection was opened with")
                .advise("keep the same credentials, region and service for the whole stream (freeze them when the stream starts)")
                .advise("hash the encoded :date header (type 8, milliseconds) and sign with the scope date of the frame's own :date"),
            ));
        }

        self.prior = Prior::Chained(hex32(&signature));
        self.verified += 1;
        let is_end = payload.is_empty();
        if is_end {
            self.ended = true;
        }
        Ok(VerifiedEvent {
            payload: payload.clone(),
            date_millis: millis,
            is_end,
            index,
        })
    }

    /// Checks the envelope's shape; returns the `:date` millis and the 32 signature bytes.
    fn envelope(&self, frame: &Message, index: u64) -> Result<(i64, [u8; 32]), Rejection> {
        let date = frame.header(DATE);
        let signature = frame.header(CHUNK_SIGNATURE);
        if date.is_none() && signature.is_none() {
            return Err(self.reject(
                RejectionKind::MissingSignature,
                "Missing Authentication Token: the event carries no ':date' and no ':chunk-signature' header.".to_owned(),
                Diagnosis::new(
                    RejectionKind::MissingSignature,
                    format!("frame #{index} is a bare event, not a signed envelope"),
                )
                .advise("wrap every event in a signed envelope (:date + :chunk-signature) chained from the URL's X-Amz-Signature"),
            ));
        }
        let mut problems = Vec::new();
        let millis = match date {
            Some(HeaderValue::Timestamp(ms)) => Some(*ms),
            Some(_) => {
                problems.push("':date' is not a timestamp header".to_owned());
                None
            }
            None => {
                problems.push("':date' is missing".to_owned());
                None
            }
        };
        let sig: Option<[u8; 32]> = match signature {
            Some(HeaderValue::ByteArray(bytes)) => match <[u8; 32]>::try_from(bytes.as_ref()) {
                Ok(sig) => Some(sig),
                Err(_) => {
                    problems.push(format!(
                        "':chunk-signature' is {} bytes, not 32",
                        bytes.len()
                    ));
                    None
                }
            },
            Some(_) => {
                problems.push("':chunk-signature' is not a byte-array header".to_owned());
                None
            }
            None => {
                problems.push("':chunk-signature' is missing".to_owned());
                None
            }
        };
        for header in frame.headers() {
            let name = header.name();
            if name != DATE && name != CHUNK_SIGNATURE {
                problems.push(format!("unexpected header '{name}'"));
            }
        }
        if frame.headers().len() > 2 && problems.is_empty() {
            problems.push("a header is repeated".to_owned());
        }
        match (millis, sig) {
            (Some(ms), Some(sig)) if problems.is_empty() => Ok((ms, sig)),
            _ => {
                let list = problems.join("; ");
                Err(self.reject(
                    RejectionKind::MalformedEnvelope,
                    format!("Invalid signed event envelope: {list}."),
                    Diagnosis::new(RejectionKind::MalformedEnvelope, format!("frame #{index}: {list}"))
                        .advise("an envelope has exactly two headers, :date (type 8, ms) and :chunk-signature (type 6, 32 bytes); the event goes in its payload"),
                ))
            }
        }
    }

    /// A copy of the day's HMAC with `AWS4-HMAC-SHA256-PAYLOAD\n<amz date>\n<scope>\n`
    /// absorbed, rebuilt when the second changes; the day key is re-derived when the UTC day
    /// changes, so a stream crossing midnight switches scope.
    fn second_mac(&mut self, secs: u64) -> HmacSha256 {
        if let Some((cached, mac)) = &self.second_mac {
            if *cached == secs {
                return mac.clone();
            }
        }
        let amz_date = UtcTime::from_epoch_seconds(secs).amz_date_bytes();
        let mut mac = self.day_mac(secs / 86_400, &amz_date);
        feed_event_prefix(
            &amz_date,
            &self.region,
            &self.service,
            &mut |piece: &[u8]| mac.update(piece),
        );
        self.second_mac = Some((secs, mac.clone()));
        mac
    }

    /// A copy of the HMAC keyed with the signing key of `day` (days since the epoch), whose
    /// `yyyymmdd` starts `amz_date`.
    fn day_mac(&mut self, day: u64, amz_date: &[u8; 16]) -> HmacSha256 {
        if let Some((cached, mac)) = &self.day_mac {
            if *cached == day {
                return mac.clone();
            }
        }
        // Always ASCII digits: `amz_date_bytes` writes nothing else there.
        let date = std::str::from_utf8(&amz_date[..8]).unwrap_or_default();
        let key = derive_signing_key(
            self.credentials.secret_access_key(),
            date,
            &self.region,
            &self.service,
        );
        let mac = keyed_hmac(&key);
        self.day_mac = Some((day, mac.clone()));
        mac
    }

    fn reject(&self, kind: RejectionKind, message: String, diagnosis: Diagnosis) -> Rejection {
        Rejection::new(kind, message, self.service_kind, diagnosis)
    }
}

impl fmt::Debug for ChainVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainVerifier")
            .field("access_key_id", &self.credentials.access_key_id())
            .field("region", &self.region)
            .field("service", &self.service)
            .field("frames_verified", &self.verified)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// The signature the next frame chains on.
enum Prior {
    /// The upgrade's `X-Amz-Signature`, verbatim.
    Seed(String),
    /// Lower-case hex of the last verified frame's signature.
    Chained([u8; 64]),
}

impl Prior {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Prior::Seed(seed) => seed.as_bytes(),
            Prior::Chained(hex) => hex,
        }
    }

    /// As text, for the refusal path's string-to-sign.
    fn as_str(&self) -> &str {
        // Hex digits are ASCII, so the fallback is never taken.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

/// `UNIX_EPOCH ± millis`, saturating far from the epoch instead of panicking.
fn time_from_millis(millis: i64) -> SystemTime {
    let magnitude = Duration::from_millis(millis.unsigned_abs());
    let shifted = if millis >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    shifted.unwrap_or(UNIX_EPOCH)
}

/// An event string-to-sign with its prior-signature line (the fourth) masked.
fn mask_prior_line(string_to_sign: &str) -> String {
    string_to_sign
        .split('\n')
        .enumerate()
        .map(|(i, line)| {
            if i == 3 {
                "*** (prior signature)"
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A frame that passed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedEvent {
    payload: Bytes,
    date_millis: i64,
    is_end: bool,
    index: u64,
}

impl VerifiedEvent {
    /// The envelope's payload: the encoded inner message (empty for the end frame).
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The payload, by value.
    pub fn into_payload(self) -> Bytes {
        self.payload
    }

    /// Decodes the inner message (an error for the end frame, whose payload is empty).
    pub fn inner_message(&self) -> Result<Message, DecodeError> {
        // Sharing the payload's storage: no copy of the media per frame.
        Message::decode_shared(&self.payload)
    }

    /// The frame's `:date`, in milliseconds since the epoch.
    pub fn date_millis(&self) -> i64 {
        self.date_millis
    }

    /// The frame's `:date`.
    pub fn date(&self) -> SystemTime {
        time_from_millis(self.date_millis)
    }

    /// Whether this is the empty end-of-stream frame.
    pub fn is_end(&self) -> bool {
        self.is_end
    }

    /// Position in the chain (0 for the first frame).
    pub fn index(&self) -> u64 {
        self.index
    }
}
