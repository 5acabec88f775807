//! The unit tests of the `stream_file` example: decoding, resampling and chunking, pass-through
//! checks, WebM parsing, argument parsing, endpoint checks and output formatting.
//!
//! They live in the example's own modules (`#[cfg(test)] mod tests`) and are compiled here,
//! because `cargo test` builds examples as plain binaries (which `tests/cli.rs` runs as
//! processes) and does not run their unit tests.
#![cfg(all(feature = "transcribe", feature = "liveness"))]
// Only part of each module is used by its tests.
#![allow(dead_code)]

#[path = "../examples/stream_file/audio.rs"]
mod audio;
#[path = "../examples/stream_file/cli.rs"]
mod cli;
#[path = "../examples/stream_file/connect.rs"]
mod connect;
#[path = "../examples/stream_file/fail.rs"]
mod fail;
#[path = "../examples/stream_file/output.rs"]
mod output;
#[path = "../examples/stream_file/video.rs"]
mod video;
