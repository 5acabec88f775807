//! Turning what a server says about time into clock offsets: pure functions, no clock reads.
//!
//! Three kinds of evidence exist on these WebSocket APIs (protocol.md section 5):
//! the HTTP `Date` header of the upgrade response, and the times AWS writes into
//! `Signature expired: <signed> is now earlier than <limit> (<now> - 5 min.)` and
//! `Signature not yet current: <signed> is still later than <limit> (<now> + 5 min.)`.
//! Each becomes a [`SkewObservation`] that [`crate::Clock::observe`] applies.

use std::fmt;
use std::time::{Duration, SystemTime};

use super::clock::{millis_between, EvidenceSource, SkewObservation};
use super::sigv4::{parse_amz_date, UtcTime};

/// The servers' tolerance either side of their clock: five minutes.
pub const SIGNATURE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// Below this skew a rejection is not blamed on the clock (the cross-SDK rule: 4 minutes,
/// a margin under the 5-minute window).
pub const SKEW_THRESHOLD: Duration = Duration::from_secs(4 * 60);

/// A response that took longer than this is too stale to learn the server's time from.
pub const MAX_TRUSTED_ROUND_TRIP: Duration = Duration::from_secs(15 * 60);

/// Resolution of an HTTP `Date` header and of the SigV4 time format: one second.
const ONE_SECOND_MILLIS: u64 = 1000;

/// Why a piece of time evidence was not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkewEvidenceError {
    /// The `Date` header is not an RFC 7231 date.
    #[error(
        "the Date header is not an HTTP date (expected e.g. \"Thu, 01 Jan 2026 00:00:01 GMT\")"
    )]
    BadDate,
    /// The round trip took too long for its `Date` header to say anything about now.
    #[error("the response took {round_trip_millis} ms to arrive, longer than the 15-minute trust limit; its Date header is ignored")]
    UntrustedRoundTrip {
        /// How long the round trip took.
        round_trip_millis: u64,
    },
    /// The response was received before it was sent: the local clock jumped.
    #[error("the local clock went backwards during the request; its Date header is ignored")]
    ClockWentBackwards,
    /// The text contains no "Signature expired" / "not yet current" times.
    #[error("the message carries no server time (it is not a \"Signature expired\" or \"Signature not yet current\" message)")]
    NoServerTime,
}

/// Evidence from a `Date` header seen on a response to a request sent at `sent_at` and
/// received at `received_at` (both local *source* times, i.e. [`crate::Clock::source_now`]).
///
/// The estimate compares the server's date with the midpoint of the round trip; its
/// uncertainty is the header's one-second resolution plus half the round trip.
pub fn observe_date_header(
    date_header: &str,
    sent_at: SystemTime,
    received_at: SystemTime,
) -> Result<SkewObservation, SkewEvidenceError> {
    let server_time =
        httpdate::parse_http_date(date_header.trim()).map_err(|_| SkewEvidenceError::BadDate)?;
    let round_trip = received_at
        .duration_since(sent_at)
        .map_err(|_| SkewEvidenceError::ClockWentBackwards)?;
    if round_trip > MAX_TRUSTED_ROUND_TRIP {
        return Err(SkewEvidenceError::UntrustedRoundTrip {
            round_trip_millis: u64::try_from(round_trip.as_millis()).unwrap_or(u64::MAX),
        });
    }
    let midpoint = sent_at + round_trip / 2;
    let half_trip = u64::try_from((round_trip / 2).as_millis()).unwrap_or(u64::MAX);
    Ok(SkewObservation::new(
        millis_between(server_time, midpoint),
        ONE_SECOND_MILLIS.saturating_add(half_trip),
        EvidenceSource::DateHeader,
    ))
}

/// Which side of the window a signature fell on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkewDirection {
    /// "Signature expired": the signing time is more than 5 minutes behind the server.
    Expired,
    /// "Signature not yet current": the signing time is more than 5 minutes ahead of the server.
    NotYetCurrent,
}

/// The times inside an AWS clock-skew message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkewMessage {
    /// Which way the signature missed the window.
    pub direction: SkewDirection,
    /// The time the request or event was signed with.
    pub signed_at: SystemTime,
    /// The server's time when it judged the signature (the parenthesised value).
    pub server_now: SystemTime,
}

impl SkewMessage {
    /// Finds the skew message in `text` (it may be embedded in JSON or other prose).
    ///
    /// Accepts the compact SigV4 form (`20240820T230143Z`) and ISO 8601 (`2024-08-20T23:01:43Z`).
    pub fn parse(text: &str) -> Option<SkewMessage> {
        let (direction, rest) = if let Some(i) = text.find("Signature expired:") {
            (
                SkewDirection::Expired,
                &text[i + "Signature expired:".len()..],
            )
        } else if let Some(i) = text.find("Signature not yet current:") {
            (
                SkewDirection::NotYetCurrent,
                &text[i + "Signature not yet current:".len()..],
            )
        } else {
            return None;
        };
        let signed_at = parse_flexible_time(rest.split_whitespace().next()?)?;
        let open = rest.find('(')?;
        let inner = &rest[open + 1..];
        let server_token = inner.split_whitespace().next()?;
        let server_now = parse_flexible_time(server_token)?;
        Some(SkewMessage {
            direction,
            signed_at,
            server_now,
        })
    }

    /// The offset this message implies when received at the local source time `observed_at`.
    ///
    /// The uncertainty is two seconds: the one-second resolution of the times plus an
    /// allowance for the message's trip to us.
    pub fn observation(&self, observed_at: SystemTime) -> SkewObservation {
        SkewObservation::from_server_time(
            self.server_now,
            observed_at,
            2 * ONE_SECOND_MILLIS,
            EvidenceSource::SkewMessage,
        )
    }

    /// How far the signing time was from the server's time, in milliseconds
    /// (negative: the signer's clock was behind).
    pub fn skew_millis(&self) -> i64 {
        millis_between(self.signed_at, self.server_now)
    }
}

/// Parses the server time out of a skew message and turns it into an observation.
pub fn observe_skew_message(
    text: &str,
    observed_at: SystemTime,
) -> Result<SkewObservation, SkewEvidenceError> {
    SkewMessage::parse(text)
        .map(|m| m.observation(observed_at))
        .ok_or(SkewEvidenceError::NoServerTime)
}

fn parse_flexible_time(token: &str) -> Option<SystemTime> {
    let token = token.trim_matches(|c: char| matches!(c, '"' | ',' | '.' | ')' | '(' | '\''));
    if let Some(t) = parse_amz_date(token) {
        return Some(t);
    }
    // ISO 8601 extended: strip the separators and fractional seconds, then reuse the compact parser.
    let compact: String = token
        .split('.')
        .next()
        .unwrap_or(token)
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let compact = if compact.ends_with('Z') {
        compact
    } else {
        format!("{compact}Z")
    };
    parse_amz_date(&compact)
}

/// Error codes whose rejection may be caused by a skewed clock (the cross-SDK list).
pub fn is_clock_skew_error_code(code: &str) -> bool {
    matches!(
        code,
        "InvalidSignatureException"
            | "SignatureDoesNotMatch"
            | "AuthFailure"
            | "RequestTimeTooSkewed"
            | "RequestExpired"
            | "RequestInTheFuture"
            | "AccessDeniedException"
    )
}

/// Formats a time the way AWS writes it in skew messages (`yyyymmddTHHMMSSZ`).
pub fn skew_message_time(time: SystemTime) -> SkewTime {
    SkewTime(time)
}

/// Display helper for [`skew_message_time`].
#[derive(Clone, Copy, Debug)]
pub struct SkewTime(SystemTime);

impl fmt::Display for SkewTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match super::sigv4::epoch_seconds(self.0) {
            Some(secs) => {
                let bytes = UtcTime::from_epoch_seconds(secs).amz_date_bytes();
                f.write_str(std::str::from_utf8(&bytes).map_err(|_| fmt::Error)?)
            }
            None => f.write_str("19700101T000000Z"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn date_header_estimate_uses_round_trip_midpoint() {
        // 2026-01-01T00:00:00Z = 1767225600
        let obs = observe_date_header(
            "Thu, 01 Jan 2026 00:05:01 GMT",
            at(1_767_225_600),
            at(1_767_225_602),
        )
        .unwrap();
        assert_eq!(obs.estimated_offset_millis(), 300_000);
        assert_eq!(obs.uncertainty_millis(), 2000);
    }

    #[test]
    fn stale_or_garbled_dates_are_refused() {
        assert_eq!(
            observe_date_header("yesterday", at(0), at(1)),
            Err(SkewEvidenceError::BadDate)
        );
        assert!(matches!(
            observe_date_header(
                "Thu, 01 Jan 2026 00:10:00 GMT",
                at(1_767_225_600),
                at(1_767_226_560)
            ),
            Err(SkewEvidenceError::UntrustedRoundTrip { .. })
        ));
        assert_eq!(
            observe_date_header("Thu, 01 Jan 2026 00:10:00 GMT", at(10), at(5)),
            Err(SkewEvidenceError::ClockWentBackwards)
        );
    }

    #[test]
    fn expired_message_yields_server_time() {
        let text = r#"{"Message":"Signature expired: 20240820T225000Z is now earlier than 20240820T225643Z (20240820T230143Z - 5 min.)"}"#;
        let m = SkewMessage::parse(text).unwrap();
        assert_eq!(m.direction, SkewDirection::Expired);
        assert_eq!(m.server_now, parse_amz_date("20240820T230143Z").unwrap());
        assert_eq!(m.skew_millis(), -(11 * 60 + 43) * 1000);
        let obs = m.observation(parse_amz_date("20240820T225000Z").unwrap());
        assert_eq!(obs.estimated_offset_millis(), (11 * 60 + 43) * 1000);
    }

    #[test]
    fn not_yet_current_message_and_iso_times() {
        let m = SkewMessage::parse("Signature not yet current: 2024-08-21T00:01:43.000Z is still later than 2024-08-20T23:06:43Z (2024-08-20T23:01:43Z + 5 min.)").unwrap();
        assert_eq!(m.direction, SkewDirection::NotYetCurrent);
        assert_eq!(m.skew_millis(), 3_600_000);
    }

    #[test]
    fn other_texts_carry_no_time() {
        for text in [
            "",
            "The request signature we calculated does not match",
            "Signature expired:",
            "Signature expired: soon (later - 5 min.)",
        ] {
            assert_eq!(SkewMessage::parse(text), None, "{text}");
        }
    }

    #[test]
    fn skew_time_formats_compactly() {
        assert_eq!(
            skew_message_time(at(1_724_194_903)).to_string(),
            "20240820T230143Z"
        );
    }
}
