//! The skew-evidence parsers: `SkewMessage::parse`, `observe_skew_message`,
//! `observe_date_header` and `parse_amz_date`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::Arbitrary;
use sigv4_ws::proto::clock::EvidenceSource;
use sigv4_ws::proto::sigv4::{format_amz_date, parse_amz_date};
use sigv4_ws::proto::skew::{
    observe_date_header, observe_skew_message, SkewDirection, SkewEvidenceError, SkewMessage,
    MAX_TRUSTED_ROUND_TRIP,
};
use sigv4_ws::{Clock, ManualTime};

/// A time anywhere `SystemTime` can be on this platform: seconds either side of the epoch.
pub fn time_from_secs(secs: i64, nanos: u32) -> SystemTime {
    let magnitude = Duration::new(secs.unsigned_abs(), nanos % 1_000_000_000);
    let t = if secs >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    t.unwrap_or(UNIX_EPOCH)
}

/// `parse_amz_date` accepts exactly `yyyymmddTHHMMSSZ` from 1970 to 9999, and what it accepts
/// formats back to the same text (a leap second `60` rolls over to the next minute).
pub fn check_amz_date(text: &str) {
    let Some(t) = parse_amz_date(text) else {
        return;
    };
    let b = text.as_bytes();
    assert_eq!(b.len(), 16, "accepted {text:?}");
    assert!(b[8] == b'T' && b[15] == b'Z', "accepted {text:?}");
    assert!(
        b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || i == 15 || c.is_ascii_digit()),
        "accepted {text:?}"
    );
    assert!(t >= UNIX_EPOCH);
    let formatted = format_amz_date(t).expect("an accepted date formats");
    if &text[13..15] != "60" {
        assert_eq!(formatted, text, "parse/format round trip");
    }
}

/// The time tokens of a skew message, as `parse_flexible_time` accepts them.
fn check_message(text: &str, observed_at: SystemTime) {
    let parsed = SkewMessage::parse(text);
    if let Some(m) = &parsed {
        let expired = text.find("Signature expired:");
        let not_yet = text.find("Signature not yet current:");
        match m.direction {
            SkewDirection::Expired => assert!(expired.is_some()),
            SkewDirection::NotYetCurrent => assert!(expired.is_none() && not_yet.is_some()),
        }
        assert!(m.signed_at >= UNIX_EPOCH && m.server_now >= UNIX_EPOCH);
        let _ = m.skew_millis();
        let obs = m.observation(observed_at);
        assert_eq!(obs.source(), EvidenceSource::SkewMessage);
        assert_eq!(obs.uncertainty_millis(), 2000);
    }
    let observed = observe_skew_message(text, observed_at);
    assert_eq!(
        observed,
        parsed
            .map(|m| m.observation(observed_at))
            .ok_or(SkewEvidenceError::NoServerTime)
    );
    if let Ok(obs) = observed {
        apply(&obs, observed_at);
    }
}

/// A clock takes any observation without panicking.
fn apply(obs: &sigv4_ws::proto::SkewObservation, at: SystemTime) {
    let clock = Clock::new(ManualTime::new(at));
    let update = clock.observe(obs);
    let _ = (update.changed(), update.delta_millis(), clock.now());
}

/// `observe_date_header` never panics; what it accepts has a round trip of at most 15 minutes
/// and an uncertainty of one second plus half the round trip.
fn check_date_header(text: &str, sent: SystemTime, received: SystemTime) {
    match observe_date_header(text, sent, received) {
        Ok(obs) => {
            let rtt = received
                .duration_since(sent)
                .expect("accepted a response received before it was sent");
            assert!(rtt <= MAX_TRUSTED_ROUND_TRIP);
            assert_eq!(obs.source(), EvidenceSource::DateHeader);
            let half = (rtt / 2).as_millis() as u64;
            assert_eq!(obs.uncertainty_millis(), 1000 + half);
            apply(&obs, sent);
        }
        Err(e) => {
            let _ = e.to_string();
            if let SkewEvidenceError::ClockWentBackwards = e {
                assert!(received < sent);
            }
        }
    }
}

/// A fuzzed skew input.
#[derive(Arbitrary, Debug)]
pub struct SkewInput {
    /// How to build the text.
    pub shape: Shape,
    /// Local send time, seconds from the epoch (either side).
    pub sent_secs: i64,
    /// Sub-second part of the send time.
    pub sent_nanos: u32,
    /// Round trip in milliseconds (negative: the clock went backwards).
    pub round_trip_ms: i32,
}

/// How the text is put together.
#[derive(Arbitrary, Debug)]
pub enum Shape {
    /// The text as given.
    Raw(String),
    /// An AWS skew message with fuzzed time tokens around it.
    Expired {
        /// Before the message.
        prefix: String,
        /// The signing time token.
        signed: String,
        /// The limit token.
        limit: String,
        /// The server time token.
        now: String,
        /// After the message.
        suffix: String,
    },
    /// The "not yet current" form.
    NotYetCurrent {
        /// The signing time token.
        signed: String,
        /// The limit token.
        limit: String,
        /// The server time token.
        now: String,
    },
    /// An HTTP date with fuzzed fields.
    HttpDate {
        /// Day name.
        weekday: String,
        /// Day of the month.
        day: u8,
        /// Month name.
        month: String,
        /// Year.
        year: u16,
        /// `HH:MM:SS`.
        time: String,
    },
}

impl Shape {
    /// The text this shape stands for.
    pub fn text(&self) -> String {
        match self {
            Shape::Raw(s) => s.clone(),
            Shape::Expired {
                prefix,
                signed,
                limit,
                now,
                suffix,
            } => format!(
                "{prefix}Signature expired: {signed} is now earlier than {limit} ({now} - 5 min.){suffix}"
            ),
            Shape::NotYetCurrent { signed, limit, now } => format!(
                "Signature not yet current: {signed} is still later than {limit} ({now} + 5 min.)"
            ),
            Shape::HttpDate {
                weekday,
                day,
                month,
                year,
                time,
            } => format!("{weekday}, {day:02} {month} {year} {time} GMT"),
        }
    }
}

/// Every skew parser on one input.
pub fn check_skew(input: &SkewInput) {
    let text = input.shape.text();
    let sent = time_from_secs(input.sent_secs, input.sent_nanos);
    let delta = Duration::from_millis(u64::from(input.round_trip_ms.unsigned_abs()));
    let received = if input.round_trip_ms >= 0 {
        sent.checked_add(delta)
    } else {
        sent.checked_sub(delta)
    }
    .unwrap_or(sent);
    check_all(&text, sent, received);
}

/// The checks on one text and one pair of times.
pub fn check_all(text: &str, sent: SystemTime, received: SystemTime) {
    check_amz_date(text);
    for token in text.split_whitespace().take(8) {
        check_amz_date(token);
    }
    check_message(text, received);
    check_date_header(text, sent, received);
}
