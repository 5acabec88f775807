//! A local emulator of Amazon Transcribe Streaming and Rekognition Face Liveness over
//! presigned WebSockets, built on [`crate::verify`].
//!
//! It listens on `127.0.0.1` (port 0 by default), accepts whatever `Host` a client signed
//! (clients sign the real AWS host name even when they connect to 127.0.0.1), verifies every
//! presigned URL and every signed frame against its own clock, and answers the way the
//! services do:
//!
//! * **Transcribe** (`/stream-transcription-websocket`, `/medical-stream-transcription-websocket`,
//!   `/call-analytics-stream-transcription-websocket`, signing name `transcribe`): bare
//!   `AudioEvent`s (signed envelopes are verified and unwrapped too); partial results while
//!   audio arrives, a final result per segment and at the end; the text says what was received
//!   (`received 3.2 s of audio in 32 frames`). The end of stream is a zero-length WebSocket
//!   message, an empty `AudioEvent`, or the signed empty end frame; then the remaining finals
//!   and a close with 1000. A signed stream that ends with an empty `AudioEvent` gets its
//!   finals, then the emulator reads and verifies the signed end frame that follows (for up to
//!   [`EmulatorConfig::close_grace`]) before closing.
//! * **Face Liveness** (`/start-face-liveness-session-websocket`, signing name `rekognition`):
//!   signed envelopes only; the four parameters checked against the API reference's
//!   constraints; the service speaks first: right after the upgrade (see
//!   [`EmulatorConfig::liveness_first_event_delay`]) a `ChallengeEvent` (`{"Type":...,"Version":...}`)
//!   unless the challenge is the 1.0.0 light challenge, then a `ServerSessionInformationEvent` for the first
//!   requested challenge the emulator knows (`FaceMovementAndLightChallenge` or
//!   `FaceMovementChallenge`), without waiting for the client; a `DisconnectionEvent` after the empty
//!   `VideoChunk` or the signed end frame; then it waits for the client's close (closing with
//!   1000 itself after [`EmulatorConfig::close_grace`]). A session silent for
//!   [`EmulatorConfig::liveness_idle_timeout`] before its `DisconnectionEvent` is ended with a
//!   `ValidationException`.
//!
//! # Errors and close codes
//!
//! With [`RejectionStyle::ExceptionFrame`] (the default) a refused upgrade still gets its 101
//! (with a `Date` header), and the exception frame (`:message-type` `exception`,
//! `:exception-type`, `:content-type` `application/json`, payload `{"Message":"..."}`) is sent
//! when the client's first message arrives, never right behind the 101. Every exception frame,
//! at the upgrade or mid-stream, is followed by a close with **1008** (policy violation): a
//! client can tell an error ending from a normal one (1000) by the code alone, as Amplify
//! Android's retry logic does (a JavaScript client treats any close as end of stream). Other
//! codes sent: 1000 after a completed stream, 1001 on shutdown, 1011 for
//! [`Fault::CloseMidStream`] with `abrupt: false`.
//!
//! With [`RejectionStyle::Http403`] the upgrade itself is refused: status
//! [`crate::verify::Rejection::http_status`] (403 for authentication failures, 400 for bad
//! requests and Transcribe's time errors), a `Date` header, `x-amzn-ErrorType`, and the AWS
//! JSON error body `{"__type":"...","message":"..."}`.
//!
//! # Time
//!
//! The emulator has ONE clock ([`EmulatorHandle::clock`]): the host clock (or
//! [`EmulatorConfig::time_source`]) plus [`EmulatorConfig::clock_offset_millis`]. Every `Date`
//! header and every time judgement (URL and frames alike) uses it, so an offset of +1 h
//! behaves exactly like a client whose clock is an hour behind.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use sigv4_ws::emulator::{Emulator, EmulatorConfig};
//! let emulator = Emulator::start(EmulatorConfig::default()).await?;
//! println!("emulating at {}", emulator.endpoint());
//! let records = emulator.shutdown().await;
//! # let _ = records; Ok(()) }
//! ```

mod deadline;
mod faults;
mod liveness;
mod liveness_events;
mod record;
mod server;
mod transcribe;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_smithy_async::time::{SharedTimeSource, TimeSource};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

use crate::proto::Clock;
use crate::verify::Verifier;

pub use faults::{Fault, OVERSIZED_DECLARED_LEN};
pub use record::{
    ConnectionRecord, Delivery, EmulatedService, MediaStamp, Outcome, RecordedRejection,
};

use record::Records;

/// Close code after every exception frame (policy violation).
pub const CLOSE_AFTER_EXCEPTION: u16 = 1008;
/// Close code after a completed stream.
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code of open sessions on shutdown.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code of [`Fault::CloseMidStream`] with `abrupt: false`.
pub const CLOSE_FAULT: u16 = 1011;

/// The access key id of the documented AWS example credentials, accepted by default.
pub const EXAMPLE_ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
/// The secret of the documented AWS example credentials, accepted by default.
pub const EXAMPLE_SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// The documented AWS example credentials (no session token).
pub fn example_credentials() -> Credentials {
    Credentials::new(
        EXAMPLE_ACCESS_KEY_ID,
        EXAMPLE_SECRET_ACCESS_KEY,
        None,
        None,
        "sigv4-ws-emulator",
    )
}

/// How a refused upgrade is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RejectionStyle {
    /// 101 with a `Date` header, then the exception frame once the client's first message
    /// arrives, then a close with 1008 (the default; what Rekognition is observed to do).
    #[default]
    ExceptionFrame,
    /// Refuse the upgrade with an HTTP error (403 for authentication failures), a `Date`
    /// header, `x-amzn-ErrorType` and an AWS JSON error body.
    Http403,
}

/// Configuration of an [`Emulator`]. Build it with [`EmulatorConfig::default`] and the
/// chainable setters.
#[derive(Clone)]
#[non_exhaustive]
pub struct EmulatorConfig {
    pub(crate) bind: SocketAddr,
    pub(crate) credentials: Vec<Credentials>,
    pub(crate) clock_offset_millis: i64,
    pub(crate) time_source: Option<SharedTimeSource>,
    pub(crate) rejection_style: RejectionStyle,
    pub(crate) require_signed_transcribe: bool,
    pub(crate) no_audio_timeout: Duration,
    pub(crate) partial_every: Duration,
    pub(crate) partial_every_frames: u64,
    pub(crate) partials_per_segment: u32,
    pub(crate) fault: Fault,
    pub(crate) fault_connections: Option<u64>,
    pub(crate) max_message_bytes: usize,
    pub(crate) close_grace: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) send_date_header: bool,
    pub(crate) host_without_port: bool,
    pub(crate) record_media_stamps: bool,
    pub(crate) liveness_idle_timeout: Duration,
    pub(crate) liveness_first_event_delay: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            credentials: vec![example_credentials()],
            clock_offset_millis: 0,
            time_source: None,
            rejection_style: RejectionStyle::ExceptionFrame,
            require_signed_transcribe: false,
            no_audio_timeout: Duration::from_secs(15),
            partial_every: Duration::from_secs(1),
            partial_every_frames: 10,
            partials_per_segment: 5,
            fault: Fault::None,
            fault_connections: None,
            max_message_bytes: 1024 * 1024 + 64 * 1024,
            close_grace: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(10),
            send_date_header: true,
            host_without_port: true,
            record_media_stamps: false,
            liveness_idle_timeout: Duration::from_secs(30),
            liveness_first_event_delay: Duration::from_millis(100),
        }
    }
}

impl EmulatorConfig {
    /// Whether upgrade responses (101 and refusals) carry a `Date` header from the emulator's
    /// clock. Default true, as Rekognition does; turn it off to make clients learn the clock from
    /// the error messages alone.
    pub fn send_date_header(mut self, send: bool) -> Self {
        self.send_date_header = send;
        self
    }

    /// Whether a URL signed for the received `Host` without its port is accepted. Default true:
    /// aws-sdk-js-v3 signs a custom endpoint's host without the port it connects to (the real
    /// endpoints use default ports, so the services never see this). Turn off for a strict check.
    pub fn accept_host_without_port(mut self, accept: bool) -> Self {
        self.host_without_port = accept;
        self
    }

    /// Keep, for every Transcribe audio event, its arrival time and the first 8 bytes of its
    /// audio in [`ConnectionRecord::media_stamps`]. Default off. A load generator writes the time
    /// each frame was due there and computes its lag from the records.
    pub fn record_media_stamps(mut self, record: bool) -> Self {
        self.record_media_stamps = record;
        self
    }

    /// The address to listen on. Default `127.0.0.1:0` (any free port, loopback only).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Accept only these credentials (replacing the list). Default: the documented example
    /// keys `AKIDEXAMPLE` / `wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY` ([`example_credentials`]).
    /// Credentials with a session token require that exact `X-Amz-Security-Token`.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = vec![credentials];
        self
    }

    /// Accept these credentials too.
    pub fn add_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials.push(credentials);
        self
    }

    /// Offset of the emulator's clock from its time source, in ms. Default 0. `+3_600_000`
    /// makes the emulator an hour ahead, i.e. simulates a client whose clock is an hour behind.
    pub fn clock_offset_millis(mut self, millis: i64) -> Self {
        self.clock_offset_millis = millis;
        self
    }

    /// The time source of the emulator's clock (e.g. a [`crate::ManualTime`] in tests).
    /// Default: the system clock.
    pub fn time_source(mut self, source: impl TimeSource + 'static) -> Self {
        self.time_source = Some(SharedTimeSource::new(source));
        self
    }

    /// How refused upgrades are reported. Default [`RejectionStyle::ExceptionFrame`].
    pub fn rejection_style(mut self, style: RejectionStyle) -> Self {
        self.rejection_style = style;
        self
    }

    /// Refuse unsigned Transcribe events (every event must be a signed envelope). Default
    /// `false`: Transcribe accepts bare events, as every official WebSocket client sends them.
    pub fn require_signed_transcribe(mut self, required: bool) -> Self {
        self.require_signed_transcribe = required;
        self
    }

    /// How long a Transcribe stream may go without new audio before it is ended with
    /// `BadRequestException` ("Your request timed out because no new audio was received for
    /// 15 seconds."). Default 15 s.
    pub fn no_audio_timeout(mut self, timeout: Duration) -> Self {
        self.no_audio_timeout = timeout;
        self
    }

    /// How often partial Transcribe results are sent: each time `audio` more PCM audio has
    /// arrived (default 1 s), or for FLAC / Ogg-Opus (whose duration the emulator does not
    /// decode) every `frames` audio events (default 10).
    pub fn transcript_cadence(mut self, audio: Duration, frames: u64) -> Self {
        self.partial_every = audio;
        self.partial_every_frames = frames.max(1);
        self
    }

    /// How many partial results make a segment, which then gets its final result and a new
    /// result id. Default 5 (5 s of PCM at the default cadence).
    pub fn partials_per_segment(mut self, partials: u32) -> Self {
        self.partials_per_segment = partials.max(1);
        self
    }

    /// A misbehaviour to commit on every connection. Default [`Fault::None`].
    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = fault;
        self
    }

    /// Injects the fault only into the first `n` connections (default: every connection), so a
    /// client that reconnects after the fault finds a healthy server.
    pub fn fault_connections(mut self, n: u64) -> Self {
        self.fault_connections = Some(n);
        self
    }

    /// Largest WebSocket message (and event-stream frame) accepted. Default 1 MiB + 64 KiB.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// How long to wait for the client's close frame after the emulator closes, and (Liveness)
    /// after the `DisconnectionEvent` before closing itself. Default 2 s.
    pub fn close_grace(mut self, grace: Duration) -> Self {
        self.close_grace = grace;
        self
    }

    /// How long a Face Liveness session may go without a client message before its
    /// `DisconnectionEvent`; then it is ended with a `ValidationException` ("Your request timed
    /// out because no new event was received for 30 seconds.") and a close with 1008, so a
    /// stalled client does not hold a connection until shutdown. Default 30 s (AWS's own limit
    /// is not documented).
    pub fn liveness_idle_timeout(mut self, timeout: Duration) -> Self {
        self.liveness_idle_timeout = timeout;
        self
    }

    /// How long a Liveness session waits after the upgrade before it sends its first events
    /// (`ChallengeEvent`, `ServerSessionInformationEvent`) unless a client frame arrives first.
    /// The aws-sdk-js-v3 WebSocket handler (and Amplify web's copy of it) attaches its message
    /// listener only after its `open` promise resolved and the response stream is iterated, so
    /// frames written in the same instant as the 101 are lost on loopback; on a real network the
    /// round trip provides this gap. Default 100 ms; zero sends with the 101.
    pub fn liveness_first_event_delay(mut self, delay: Duration) -> Self {
        self.liveness_first_event_delay = delay;
        self
    }

    /// How long a client may take to send its upgrade request. Default 10 s.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
}

impl fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.credentials.iter().map(|c| c.access_key_id()).collect();
        f.debug_struct("EmulatorConfig")
            .field("bind", &self.bind)
            .field("access_key_ids", &keys)
            .field("clock_offset_millis", &self.clock_offset_millis)
            .field("custom_time_source", &self.time_source.is_some())
            .field("rejection_style", &self.rejection_style)
            .field("require_signed_transcribe", &self.require_signed_transcribe)
            .field("no_audio_timeout", &self.no_audio_timeout)
            .field("partial_every", &self.partial_every)
            .field("partial_every_frames", &self.partial_every_frames)
            .field("partials_per_segment", &self.partials_per_segment)
            .field("fault", &self.fault)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("close_grace", &self.close_grace)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("send_date_header", &self.send_date_header)
            .field("host_without_port", &self.host_without_port)
            .field("liveness_idle_timeout", &self.liveness_idle_timeout)
            .finish()
    }
}

/// The emulator: [`Emulator::start`] binds and serves in the background.
#[derive(Debug)]
#[non_exhaustive]
pub struct Emulator;

impl Emulator {
    /// Binds `config`'s address and serves in background tasks (needs a tokio runtime).
    pub async fn start(config: EmulatorConfig) -> io::Result<EmulatorHandle> {
        let listener = TcpListener::bind(config.bind).await?;
        let local_addr = listener.local_addr()?;
        let clock = match &config.time_source {
            Some(source) => Clock::new(source.clone()),
            None => Clock::system(),
        };
        clock.set_offset_millis(config.clock_offset_millis);
        let mut verifier = Verifier::new(clock.clone());
        for credentials in &config.credentials {
            verifier.add_credentials(credentials.clone());
        }
        let records = Records::new();
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let credentials = config.credentials.clone();
        let ctx = Arc::new(server::Ctx {
            config,
            clock: clock.clone(),
            verifier,
            records: Arc::clone(&records),
        });
        let task = tokio::spawn(server::accept_loop(listener, ctx, shutdown_rx));
        tracing::debug!(%local_addr, "emulator listening");
        Ok(EmulatorHandle {
            local_addr,
            clock,
            credentials,
            records,
            shutdown: shutdown_tx,
            task: Some(task),
        })
    }

    /// Starts, serves until `signal` completes (e.g. Ctrl-C), then shuts down gracefully and
    /// returns the records. `on_ready` sees the handle first (to print the endpoint).
    pub async fn serve_until(
        config: EmulatorConfig,
        on_ready: impl FnOnce(&EmulatorHandle),
        signal: impl Future<Output = ()>,
    ) -> io::Result<Vec<ConnectionRecord>> {
        let handle = Emulator::start(config).await?;
        on_ready(&handle);
        Ok(handle.run_until(signal).await)
    }
}

/// A running emulator. Dropping it stops accepting and ends every connection task (without
/// waiting); [`EmulatorHandle::shutdown`] does the same gracefully and waits.
pub struct EmulatorHandle {
    local_addr: SocketAddr,
    clock: Clock,
    credentials: Vec<Credentials>,
    records: Arc<Records>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl EmulatorHandle {
    /// The address the emulator listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://127.0.0.1:PORT` (clients turn it into `ws://`).
    pub fn endpoint(&self) -> Url {
        let text = format!("http://{}", self.local_addr);
        Url::parse(&text)
            .unwrap_or_else(|_| Url::parse("http://127.0.0.1/").expect("static URL parses"))
    }

    /// The credentials clients should sign with (the first accepted set).
    pub fn credentials(&self) -> Credentials {
        self.credentials
            .first()
            .cloned()
            .unwrap_or_else(example_credentials)
    }

    /// Every accepted set of credentials.
    pub fn all_credentials(&self) -> &[Credentials] {
        &self.credentials
    }

    /// The emulator's own clock (its offset included): the time of its `Date` headers and
    /// of every judgement.
    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    /// A snapshot of every connection's record, in accept order.
    pub fn records(&self) -> Vec<ConnectionRecord> {
        self.records.snapshot()
    }

    /// Waits until at least `count` connections have finished (or `timeout` passes), then
    /// returns a snapshot of all records.
    pub async fn wait_for_finished(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Vec<ConnectionRecord> {
        let mut changes = self.records.subscribe();
        let deadline = deadline::deadline_in(timeout);
        loop {
            let records = self.records.snapshot();
            if records.iter().filter(|r| r.is_finished()).count() >= count {
                return records;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return self.records.snapshot(),
            }
        }
    }

    /// Stops accepting, closes open sessions with 1001, waits for every connection task to
    /// end, and returns the records.
    pub async fn shutdown(mut self) -> Vec<ConnectionRecord> {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.records.snapshot()
    }

    /// Serves until `signal` completes (e.g. `tokio::signal::ctrl_c()` mapped to `()`), then
    /// shuts down gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Vec<ConnectionRecord> {
        signal.await;
        self.shutdown().await
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

impl fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorHandle")
            .field("local_addr", &self.local_addr)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}
