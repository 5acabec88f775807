//! The async transport: tokio + tokio-tungstenite + rustls, driving the sans-IO core.
//!
//! [`Connector::connect`] presigns the URL at the moment it dials (never earlier), upgrades,
//! and learns the server's clock from the answer; the [`Session`] it returns signs every frame
//! at the moment it is written. This layer adds no protocol rules of its own: presigning,
//! signing and framing come from [`crate::proto`], and the transport does not know which
//! service it carries.
//!
//! The session's clock is the [`crate::Clock`] given in the [`ConnectRequest`]: one offset for
//! the URL and the frames, corrected by the `Date` header of the upgrade response, by a refused
//! upgrade's body, or by an exception frame carrying "Signature expired" / "Signature not yet
//! current".

mod config;
mod connector;
mod error;
mod rejection;
mod session;
mod stream;

pub use config::{FrameSigning, PlaintextPolicy, SessionConfig};
pub use connector::{ConnectRequest, Connector};
pub use error::{Error, ErrorKind};
pub use session::{
    EncodedMessage, OffsetLearned, OffsetSource, Session, SessionSink, SessionStats, SessionStream,
    SessionWatch,
};
