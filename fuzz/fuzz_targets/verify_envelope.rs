//! The chain and upgrade verifiers. The first byte picks the mode:
//!
//! * 0: the rest is arbitrary bytes, decoded as a stream of frames into a fresh chain verifier;
//! * 1: the rest drives `arbitrary` mutations of a valid chain signed with `EventSigner`
//!   (byte flips with or without fixed CRCs, header and payload edits, reordering, drops);
//! * 2: the rest drives an upgrade request: raw strings, or edits of a valid presigned one;
//! * 3: the rest is text, `host` and the request target on either side of the first newline
//!   (seeded with the presigned requests of the AWS signing test suite).
//!
//! Never a panic; a frame is accepted only if it carries the original `(:date, signature,
//! payload)` at its position within the 5-minute window; an accepted upgrade has the original
//! key, scope and signature; no secret appears in any rejection text.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use sigv4_ws_fuzz::chain::{
    check_arbitrary_frames, check_chain, check_upgrade, ChainInput, UpgradeInput,
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            let shift = rest.first().map_or(0, |b| i32::from(*b as i8) * 1000);
            check_arbitrary_frames(rest, shift);
        }
        1 => {
            if let Ok(input) = ChainInput::arbitrary_take_rest(Unstructured::new(rest)) {
                check_chain(&input);
            }
        }
        2 => {
            if let Ok(input) = UpgradeInput::arbitrary_take_rest(Unstructured::new(rest)) {
                check_upgrade(&input);
            }
        }
        _ => {
            let text = String::from_utf8_lossy(rest);
            let (host, target) = text.split_once('\n').unwrap_or(("", &text));
            check_upgrade(&UpgradeInput::Raw {
                path_and_query: target.to_owned(),
                host: host.to_owned(),
                clock_shift: 0,
            });
        }
    }
});
