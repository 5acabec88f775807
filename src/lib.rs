//! sigv4-ws (crate docs are written with the public API; see README.md).
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod proto;
#[cfg(feature = "transport")]
pub mod transport;

pub use proto::{Clock, EventSigner, ManualTime, PresignError, PresignedUrl, Presigner, SignError};
