//! Stream real-time media to AWS's WebSocket streaming APIs — Amazon Transcribe Streaming
//! (standard, medical, call analytics) and Rekognition Face Liveness — with one skew-corrected
//! clock, URLs presigned at connect time, frames signed at write time, and a verifier and local
//! emulator that explain every rejection.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use aws_credential_types::Credentials;
//! use sigv4_ws::{Clock, EventSigner, ManualTime, Presigner};
//!
//! // One clock for the URL and every frame. Here a fixed time; in production Clock::system().
//! let time = ManualTime::new(UNIX_EPOCH + Duration::from_secs(1_724_194_903));
//! let clock = Clock::new(time.clone());
//! let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None, "example");
//! let endpoint = url::Url::parse(
//!     "https://streaming-rekognition.us-east-1.amazonaws.com/start-face-liveness-session-websocket?session-id=3f3b1f8a-5d9f-4e43-a9a3-0a4e3f1f6a11",
//! )?;
//!
//! // The server told us (Date header, "Signature expired" message) that we are an hour behind:
//! clock.set_offset_millis(3_600_000);
//!
//! let presigned = Presigner::new(creds.clone(), "us-east-1", "rekognition").presign(&endpoint, &clock)?;
//! assert!(presigned.url().as_str().contains("X-Amz-Date=20240821T000143Z")); // corrected
//!
//! let mut signer = EventSigner::new(creds, "us-east-1", "rekognition", presigned.signature(), clock.clone());
//! let frame = signer.sign(b"an encoded inner event")?;            // :date is corrected too
//! let date_ms = i64::from_be_bytes(frame[19..27].try_into()?);
//! assert_eq!(date_ms, 1_724_198_503_000);
//! let end = signer.finish()?;                                      // the signed empty end frame
//! assert_eq!(end.len(), 83);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layers
//!
//! * [`proto`] — the sans-IO core: [`Clock`], presigning ([`Presigner`]), chained event signing
//!   ([`EventSigner`]), the event-stream codec, skew evidence. No sockets, no runtime; only the
//!   clock module reads the system clock. Builds with `--no-default-features`.
//! * `transport` (feature `transport`) — tokio + tokio-tungstenite + rustls: a connector that
//!   presigns when it dials and learns the clock offset from the server, and a session that signs
//!   each frame as it is written.
//! * `services` (features `transcribe`, `liveness`) — typed requests, events and errors.
//! * `verify` and `emulator` (features of the same names) — the server side: a verifier with AWS's
//!   error texts and a diagnosis, and a local emulator of both services built on it.
//!
//! # Features
//!
//! | Feature | Enables | Default |
//! |---|---|---|
//! | `transport` | the async client transport | yes |
//! | `transcribe` | the typed Transcribe client | yes |
//! | `liveness` | the typed Face Liveness client | yes |
//! | `verify` | the sans-IO verifier | no |
//! | `emulator` | the local emulator (implies `verify`) | no |
//!
//! # Secrets
//!
//! Secret keys, session tokens and signatures never appear in `Debug` or `Display` output, logs
//! or error messages: presigned URLs print with `X-Amz-Signature` and `X-Amz-Security-Token`
//! masked, signers print only their type, region and service, and a decoded envelope's
//! `:chunk-signature` header prints as `***`.
//!
//! One dependency does not keep this promise: tungstenite writes the upgrade request (the
//! presigned URL, session token included) and every frame's bytes to the `log` crate at TRACE
//! level. Keep the `tungstenite` target at DEBUG or above in production (for example
//! `RUST_LOG=trace,tungstenite=debug` with `tracing-subscriber`'s `EnvFilter`, or
//! `log::set_max_level(log::LevelFilter::Debug)`). `tests/secrets.rs` pins this, so the note
//! can go when tungstenite stops.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

#[cfg(feature = "emulator")]
pub mod emulator;
pub mod proto;
#[cfg(feature = "sdk-config")]
pub mod sdk;
#[cfg(any(feature = "transcribe", feature = "liveness"))]
pub mod services;
#[cfg(feature = "transport")]
pub mod transport;
#[cfg(feature = "verify")]
pub mod verify;

pub use proto::{Clock, EventSigner, ManualTime, PresignError, PresignedUrl, Presigner, SignError};
