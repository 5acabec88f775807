//! The sans-IO core: clock, presigning, event signing, the event-stream codec.
//!
//! Nothing in here opens a socket, spawns a task or depends on an async runtime, and only
//! [`clock`] reads the system clock: every other function takes its time from a [`Clock`]
//! or as an argument. The core builds with `--no-default-features`.

pub mod clock;
pub mod codec;
pub mod presign;
pub mod redact;
pub mod sign;
pub mod sigv4;
pub mod skew;

pub use clock::{Clock, EvidenceSource, ManualTime, OffsetUpdate, SkewObservation};
pub use presign::{PresignError, PresignedUrl, Presigner};
pub use sign::{EventSigner, SignError};
