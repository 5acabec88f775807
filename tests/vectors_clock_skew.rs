//! The 10 cross-SDK clock-skew scenarios (fixtures/clock-skew/clock-skew-test-cases.json)
//! run through our one clock.
//!
//! Model of one client, per scenario: a `ManualTime` under one `Clock`.
//!
//! * At the start of each operation the clock's offset is set to `initialClientSkew` (the
//!   file carries the skew from one operation to the next through that field; asserting it
//!   equals the previous operation's `expectedClientSkew` checks the carry-over).
//! * Per attempt: the manual time is set to `clientTimeAtSend`; the signing time is
//!   `clock.now()`, which must equal `expectedSigningTime`, and a `Presigner` reading the same
//!   clock must put exactly that time in `X-Amz-Date`. Then the manual time is set to
//!   `clientTimeAtReceive` and, unless the response has an `Age` header (a cached response
//!   says nothing about the server's clock now), its `Date` header is fed to
//!   `observe_date_header(date, sent, received)` (which refuses a round trip over 15 minutes)
//!   and applied with `Clock::observe`.
//! * Outcome: a status below 300 is a success. An error is retried when the attempt budget
//!   allows (`maxAttempts`, default 3) and it is a clock-skew candidate: the error code is a
//!   clock-skew code (`is_clock_skew_error_code`), this response gave a usable `Date`, and
//!   the resulting offset exceeds `SKEW_THRESHOLD` (4 minutes). Otherwise it is an error.
//!   The file's attempts must then be exactly the ones this model makes.
//! * After the operation, `clock.offset_millis()` must equal `expectedClientSkew` seconds.

mod support;

use std::time::Duration;

use serde_json::Value;
use sigv4_ws::proto::skew::{is_clock_skew_error_code, observe_date_header, SKEW_THRESHOLD};
use sigv4_ws::{Clock, ManualTime, Presigner};
use support::{creds, iso_time, read_json, str_at};
use url::Url;

const DEFAULT_MAX_ATTEMPTS: u64 = 3;

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Success,
    Error,
}

fn header<'a>(response: &'a Value, name: &str) -> Option<&'a str> {
    response["headers"]
        .as_object()
        .expect("headers object")
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

fn run_scenario(index: usize, description: &str) {
    let all = read_json("clock-skew/clock-skew-test-cases.json");
    let scenario = &all["tests"][index];
    assert_eq!(
        str_at(scenario, "description"),
        description,
        "scenario order"
    );

    let time = ManualTime::new(iso_time("2026-01-01T00:00:00Z"));
    let clock = Clock::new(time.clone());
    let presigner = Presigner::new(
        creds(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
        ),
        "us-east-1",
        "rekognition",
    );
    let endpoint = Url::parse(
        "wss://streaming-rekognition.us-east-1.amazonaws.com/start-face-liveness-session-websocket",
    )
    .expect("url");
    let mut carried_skew_secs: Option<i64> = None;

    for (op_index, operation) in scenario["operations"]
        .as_array()
        .expect("operations")
        .iter()
        .enumerate()
    {
        let ctx = format!("{description} / operation {op_index}");
        let initial = operation["initialClientSkew"]
            .as_i64()
            .expect("initialClientSkew");
        if let Some(carried) = carried_skew_secs {
            assert_eq!(
                initial, carried,
                "{ctx}: skew carried from the previous operation"
            );
        }
        clock.set_offset_millis(initial * 1000);
        let max_attempts = operation["maxAttempts"]
            .as_u64()
            .unwrap_or(DEFAULT_MAX_ATTEMPTS);
        let attempts = operation["attempts"].as_array().expect("attempts");
        let mut outcome = None;

        for (n, attempt) in attempts.iter().enumerate() {
            assert!(
                outcome.is_none(),
                "{ctx}: the file has an attempt {n} the model would not make"
            );
            let actx = format!("{ctx} / attempt {n}");

            time.set(iso_time(str_at(attempt, "clientTimeAtSend")));
            let sent_at = clock.source_now();
            let signing_time = clock.now();
            assert_eq!(
                signing_time,
                iso_time(str_at(attempt, "expectedSigningTime")),
                "{actx}: signing time"
            );
            let signed = presigner.presign(&endpoint, &clock).expect("presign");
            assert_eq!(
                signed.signed_at(),
                signing_time,
                "{actx}: the presigner reads the same clock"
            );
            let amz_date = signed
                .url()
                .query_pairs()
                .find(|(k, _)| k == "X-Amz-Date")
                .map(|(_, v)| v.into_owned());
            assert_eq!(
                amz_date,
                sigv4_ws::proto::sigv4::format_amz_date(signing_time),
                "{actx}: X-Amz-Date"
            );

            time.set(iso_time(str_at(attempt, "clientTimeAtReceive")));
            let received_at = clock.source_now();
            let response = &attempt["response"];
            let observed = match (header(response, "Date"), header(response, "Age")) {
                (Some(date), None) => observe_date_header(date, sent_at, received_at)
                    .ok()
                    .map(|observation| clock.observe(&observation)),
                _ => None,
            };

            let status = response["statusCode"].as_u64().expect("statusCode");
            if status < 300 {
                outcome = Some(Outcome::Success);
                continue;
            }
            let code = response["errorCode"].as_str().unwrap_or_default();
            let skewed =
                Duration::from_millis(clock.offset_millis().unsigned_abs()) > SKEW_THRESHOLD;
            let candidate = is_clock_skew_error_code(code) && observed.is_some() && skewed;
            let budget_left = (n as u64) + 1 < max_attempts;
            if !(candidate && budget_left) {
                outcome = Some(Outcome::Error);
            }
        }

        let expected = match str_at(operation, "expectedOutcome") {
            "success" => Outcome::Success,
            "error" => Outcome::Error,
            other => panic!("{ctx}: unknown outcome {other}"),
        };
        assert_eq!(
            outcome,
            Some(expected),
            "{ctx}: outcome (None: the model wanted another attempt)"
        );
        let expected_skew = operation["expectedClientSkew"]
            .as_i64()
            .expect("expectedClientSkew");
        assert_eq!(
            clock.offset_millis(),
            expected_skew * 1000,
            "{ctx}: client skew"
        );
        carried_skew_secs = Some(expected_skew);
    }
}

macro_rules! scenarios {
    ($($name:ident => $index:literal, $description:literal;)*) => {
        $(
            #[test]
            fn $name() {
                run_scenario($index, $description);
            }
        )*

        #[test]
        fn scenarios_are_all_covered() {
            let all = read_json("clock-skew/clock-skew-test-cases.json");
            let count = all["tests"].as_array().map(Vec::len);
            assert_eq!(count, Some([$($index),*].len()));
            assert_eq!(count, Some(10));
        }
    };
}

scenarios! {
    clocks_agree => 0,
        "Clocks agree, request succeeds on first attempt, ClientSkew updated to 0";
    skew_error_retried_and_skew_persists => 1,
        "Definite clock skew error on first attempt, retry succeeds, ClientSkew persists to next operation";
    skew_error_without_retry_budget_still_records_skew => 2,
        "Clock skew error with no retry budget still updates ClientSkew";
    delayed_response_is_not_trusted => 3,
        "Delayed response exceeding trust threshold does not update ClientSkew";
    stale_skew_corrected_by_success => 4,
        "Stale ClientSkew is silently corrected by a successful response without error or retry";
    skew_below_threshold_not_retried => 5,
        "Possible clock skew error with skew below detection threshold is not retried as clock skew";
    skew_above_threshold_retried => 6,
        "Possible clock skew error with skew above detection threshold is retried and succeeds";
    skew_error_without_date_not_a_candidate => 7,
        "Clock skew error with no Date header is not treated as a candidate, ClientSkew is not updated";
    cached_response_with_age_ignored => 8,
        "Cached response with Age header does not update ClientSkew";
    cached_response_does_not_poison_skew => 9,
        "Cached response with Age header does not poison ClientSkew even when followed by a clock skew error";
}

/// The file's error codes are all on our list; our list's two extra codes (`RequestExpired`,
/// `RequestInTheFuture`, kept from the JS SDK's list, protocol.md 5.4) do not occur in it.
#[test]
fn error_codes_of_the_file_are_clock_skew_codes() {
    let all = read_json("clock-skew/clock-skew-test-cases.json");
    let mut codes: Vec<String> = Vec::new();
    for scenario in all["tests"].as_array().expect("tests") {
        for operation in scenario["operations"].as_array().expect("operations") {
            for attempt in operation["attempts"].as_array().expect("attempts") {
                if let Some(code) = attempt["response"]["errorCode"].as_str() {
                    codes.push(code.to_owned());
                }
            }
        }
    }
    assert!(!codes.is_empty());
    for code in &codes {
        assert!(is_clock_skew_error_code(code), "{code}");
    }
    for code in [
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "AuthFailure",
        "RequestTimeTooSkewed",
        "AccessDeniedException",
    ] {
        assert!(
            is_clock_skew_error_code(code),
            "{code} (the file's documented list)"
        );
    }
    for code in ["ThrottlingException", "BadRequestException", ""] {
        assert!(!is_clock_skew_error_code(code), "{code}");
    }
    assert_eq!(SKEW_THRESHOLD, Duration::from_secs(240));
}
