//! Arbitrary strings into `SkewMessage::parse`, `observe_skew_message`, `observe_date_header`
//! and `parse_amz_date`. The first byte picks the mode: even, the rest is the text (lossy
//! UTF-8) with fixed times; odd, the rest drives a structured input (templates of AWS's skew
//! messages and HTTP dates with fuzzed tokens, arbitrary send and receive times).
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use sigv4_ws_fuzz::skew::{check_all, check_skew, SkewInput};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let text = String::from_utf8_lossy(rest);
        // 2026-01-01T00:00:00Z, and a 2-second round trip.
        let sent = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        check_all(&text, sent, sent + Duration::from_secs(2));
    } else if let Ok(input) = SkewInput::arbitrary_take_rest(Unstructured::new(rest)) {
        check_skew(&input);
    }
});
