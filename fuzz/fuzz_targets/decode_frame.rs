//! Arbitrary bytes into `Message::decode` and into a `FrameDecoder` fed in chunks of
//! input-derived sizes: never a panic, a decoded message re-encodes to the same bytes, and the
//! one-shot and streaming decoders agree (see `sigv4_ws_fuzz::codec::check_decode`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sigv4_ws_fuzz::codec::check_decode(data);
});
