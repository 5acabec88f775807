//! A frame with CORRECT lengths and CRCs around fuzzed header-block and payload bytes, so that
//! every input reaches the header parser. Input: a big-endian u16 header-block length, then the
//! header block, then the payload (the length is clamped to what follows).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (split, rest) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
        _ => (0, data),
    };
    let (headers, payload) = rest.split_at(split.min(rest.len()));
    sigv4_ws_fuzz::codec::check_crc_corrected(headers, payload);
});
