//! Verification of a chain of signed event frames (the `:date` / `:chunk-signature` envelope).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use bytes::Bytes;
use hmac::Mac;

use crate::proto::clock::{millis_between, Clock};
use crate::proto::codec::{DecodeError, HeaderValue, Message, CHUNK_SIGNATURE, DATE};
use crate::proto::sigv4::{
    derive_signing_key, encode_date_header, event_string_to_sign, format_amz_date, hex_lower,
    keyed_hmac,
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
pub struct ChainVerifier {
    credentials: Credentials,
    region: String,
    service: String,
    service_kind: Option<Service>,
    clock: Clock,
    window: Duration,
    prior: String,
    day_key: Option<(String, [u8; 32])>,
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
            prior: upgrade.seed_signature().to_owned(),
            day_key: None,
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
        let string_to_sign = event_string_to_sign(
            date,
            &self.region,
            &self.service,
            &self.prior,
            &date_header,
            payload,
        );
        let matches = match (&string_to_sign, self.day_key(date)) {
            (Some(sts), Some(key)) => {
                let mut mac = keyed_hmac(&key);
                mac.update(sts.as_bytes());
                mac.verify_slice(&signature).is_ok()
            }
            _ => false,
        };
        if !matches {
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

        self.prior = hex_lower(&signature);
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

    fn day_key(&mut self, date: SystemTime) -> Option<[u8; 32]> {
        let day = format_amz_date(date)?.get(..8)?.to_owned();
        match &self.day_key {
            Some((cached, key)) if *cached == day => Some(*key),
            _ => {
                let key = derive_signing_key(
                    self.credentials.secret_access_key(),
                    &day,
                    &self.region,
                    &self.service,
                );
                self.day_key = Some((day, key));
                Some(key)
            }
        }
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
        Message::decode(&self.payload)
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
