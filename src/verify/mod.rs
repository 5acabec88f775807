//! Server-side verification, sans-IO: presigned WebSocket upgrades and chained event
//! signatures, refused with the exception names and texts AWS uses.
//!
//! * [`Verifier::verify_upgrade`] checks a presigned upgrade request (the raw request target
//!   and the `Host` header received) and returns a [`VerifiedUpgrade`].
//! * [`ChainVerifier::verify_frame`] checks each signed frame of the stream that follows, and
//!   returns the [`VerifiedEvent`] inside.
//! * Every refusal is a [`Rejection`]: the [`RejectionKind`], the AWS exception name and HTTP
//!   status, the exact AWS message, and a [`Diagnosis`] that tells the user what to fix.
//!
//! Signatures are recomputed from the primitives of [`crate::proto::sigv4`], never through
//! the crate's own [`crate::Presigner`] or [`crate::EventSigner`], so a bug on the signing side
//! cannot be mirrored here. Signature comparisons run in constant time. Neither secrets nor
//! received signatures ever appear in a message, a diagnosis, or `Debug` output.
//!
//! Messages that are AWS's own (copied from observed responses, protocol.md 5.1): the two
//! clock-window texts, the signature-mismatch text, and the unknown-key text. Texts for
//! malformed parameters follow AWS's wording where it is known from other AWS services; the
//! URL-expiry text is this crate's choice (see [`Verifier::verify_upgrade`]).

mod chain;
mod rejection;
mod upgrade;

pub use chain::{ChainVerifier, VerifiedEvent};
pub use rejection::{
    exception_http_status, exception_payload, http_error_body, Diagnosis, Rejection, RejectionKind,
    Service, LIVENESS_PATH, TRANSCRIBE_PATHS,
};
pub use upgrade::{
    VerifiedUpgrade, Verifier, MAX_EXPIRES_SECS, SIGNATURE_MISMATCH_MESSAGE,
    UNRECOGNIZED_CLIENT_MESSAGE,
};
