//! A duplex streaming session: a `Sink` of outgoing messages, a `Stream` of incoming ones, and
//! one driver task that owns the socket and the signature chain.
//!
//! # How frames are signed
//!
//! Messages wait in a bounded queue *unsigned*. The driver takes the next one only when the
//! socket has accepted the previous one, encodes it, signs it with `Clock::now()` at that moment,
//! and writes it. A message that waited minutes in the queue is still signed fresh.
//!
//! # Ending, cancelling, dropping
//!
//! * `SinkExt::close` (or [`SessionSink::end`]) ends the stream: the driver writes the signed
//!   empty end frame (when frames are signed), then keeps reading; the stream half yields the
//!   remaining events and ends (`None`) when the server closes, or after
//!   [`SessionConfig::final_results_timeout`](super::SessionConfig::final_results_timeout).
//! * [`SessionSink::disconnect`] sends a WebSocket close at once, also after the end of stream
//!   (for example when Liveness's `DisconnectionEvent` arrives).
//! * Dropping the sink half without closing it cancels the stream: the driver sends a close
//!   frame (1001, going away) and stops within two seconds.
//! * Dropping the stream half discards incoming events; sending goes on.
//! * Dropping both stops the driver within two seconds (after closing the socket with 1000 if the
//!   stream was ended, 1001 if not). No task outlives that.
//!
//! The stream half must be polled for incoming events to flow; if it is not, the driver stops
//! reading once [`SessionConfig::incoming_capacity`](super::SessionConfig::incoming_capacity)
//! events are waiting (writes go on).

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use futures_channel::mpsc as futures_mpsc;
use futures_core::Stream;
use futures_sink::Sink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, Notify};
use tokio::time::{sleep, Instant, Sleep};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;

use crate::proto::clock::{Clock, OffsetUpdate};
use crate::proto::codec::{FrameDecoder, Limits, Message};
use crate::proto::redact::RedactedUrl;
use crate::proto::sign::EventSigner;

use super::config::FrameSigning;
use super::connector::{DialError, Dialer, Established};
use super::error::{Error, ErrorKind};
use super::rejection::{Cause, Rejection};
use super::stream::MaybeTls;

/// How long the driver waits for a close handshake (or a last exception) before giving up.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Stand-in for "no deadline" (tokio timers need an instant).
const FAR_AWAY: Duration = Duration::from_secs(86_400 * 365);

/// Where a clock correction came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OffsetSource {
    /// The `Date` header of the 101 upgrade response.
    UpgradeDate,
    /// A refused upgrade (its `Date` header or its error body).
    RejectedUpgrade,
    /// An exception frame after the upgrade.
    ExceptionFrame,
}

/// A clock correction the session made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetLearned {
    /// Where the evidence came from.
    pub source: OffsetSource,
    /// Offset before, in milliseconds.
    pub previous_millis: i64,
    /// Offset after, in milliseconds.
    pub current_millis: i64,
}

impl OffsetLearned {
    pub(crate) fn new(source: OffsetSource, update: OffsetUpdate) -> Self {
        OffsetLearned {
            source,
            previous_millis: update.previous_millis,
            current_millis: update.current_millis,
        }
    }
}

impl fmt::Display for OffsetLearned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = match self.source {
            OffsetSource::UpgradeDate => "the upgrade response's Date header",
            OffsetSource::RejectedUpgrade => "the refused upgrade",
            OffsetSource::ExceptionFrame => "the server's exception message",
        };
        write!(
            f,
            "clock offset learned from {from}: {} ms (was {} ms)",
            self.current_millis, self.previous_millis
        )
    }
}

/// Counters of a session, readable while it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// Event frames written (end frame included).
    pub frames_sent: u64,
    /// Bytes of event frames written.
    pub bytes_sent: u64,
    /// Event-stream messages received.
    pub messages_received: u64,
    /// Connections re-opened after a clock correction.
    pub reconnects: u32,
    /// The offset of the session's clock now, in milliseconds.
    pub clock_offset_millis: i64,
}

struct Shared {
    clock: Clock,
    frames_sent: AtomicU64,
    bytes_sent: AtomicU64,
    messages_received: AtomicU64,
    reconnects: AtomicU32,
    learned: Mutex<Vec<OffsetLearned>>,
    failure: Mutex<Option<(ErrorKind, String)>>,
    finished: AtomicBool,
    finished_notify: Notify,
    url: Mutex<String>,
}

impl Shared {
    fn stats(&self) -> SessionStats {
        SessionStats {
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            messages_received: self.messages_received.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            clock_offset_millis: self.clock.offset_millis(),
        }
    }

    fn learned(&self) -> Vec<OffsetLearned> {
        self.learned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn closed_error(&self) -> Error {
        match &*self.failure.lock().unwrap_or_else(PoisonError::into_inner) {
            Some((kind, message)) => {
                Error::new(ErrorKind::Closed, format!("the session ended: {message}"))
                    .with_source(Error::new(kind.clone(), message.clone()))
            }
            None => Error::new(ErrorKind::Closed, "the session is closed"),
        }
    }
}

/// Marks the driver finished even if it is aborted or panics.
struct FinishGuard(Arc<Shared>);

impl Drop for FinishGuard {
    fn drop(&mut self) {
        self.0.finished.store(true, Ordering::Release);
        self.0.finished_notify.notify_waiters();
    }
}

enum Command {
    Send(Message),
    End,
    Disconnect(u16),
}

/// A streaming session. It is both a [`Sink`] of [`Message`]s and a [`Stream`] of incoming
/// messages; [`Session::split`] gives the halves to separate tasks.
///
/// Incoming exception messages arrive as `Err` items carrying the service's exception type
/// and message; the stream ends (`None`) when the connection is closed.
pub struct Session {
    sink: SessionSink,
    stream: SessionStream,
}

/// The sending half of a [`Session`].
pub struct SessionSink {
    tx: futures_mpsc::Sender<Command>,
    shared: Arc<Shared>,
    end_queued: bool,
}

/// The receiving half of a [`Session`].
pub struct SessionStream {
    rx: mpsc::Receiver<Result<Message, Error>>,
    shared: Arc<Shared>,
}

/// Observes whether a session's driver task has stopped.
#[derive(Clone)]
pub struct SessionWatch {
    shared: Arc<Shared>,
}

impl Session {
    pub(crate) fn start(
        dialer: Arc<Dialer>,
        established: Established,
        retries_left: u32,
        learned: Vec<OffsetLearned>,
    ) -> Session {
        let config = &dialer.config;
        let (tx, outgoing) = futures_mpsc::channel(config.queue_capacity.max(1).saturating_sub(1));
        let (incoming, rx) = mpsc::channel(config.incoming_capacity.max(1));
        let shared = Arc::new(Shared {
            clock: dialer.clock.clone(),
            frames_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            reconnects: AtomicU32::new(0),
            learned: Mutex::new(learned),
            failure: Mutex::new(None),
            finished: AtomicBool::new(false),
            finished_notify: Notify::new(),
            url: Mutex::new(RedactedUrl(established.presigned.url()).to_string()),
        });
        let span = tracing::info_span!(
            "sigv4_ws::session",
            service = %dialer.service,
            url = %RedactedUrl(established.presigned.url()),
            offset_ms = dialer.clock.offset_millis(),
            frames_sent = tracing::field::Empty,
            bytes_sent = tracing::field::Empty,
            reconnects = tracing::field::Empty,
        );
        let driver = Driver::new(
            dialer,
            established,
            outgoing,
            incoming,
            shared.clone(),
            retries_left,
        );
        let guard = FinishGuard(shared.clone());
        tokio::spawn(
            async move {
                let _guard = guard;
                driver.run().await;
            }
            .instrument(span),
        );
        Session {
            sink: SessionSink {
                tx,
                shared: shared.clone(),
                end_queued: false,
            },
            stream: SessionStream { rx, shared },
        }
    }

    /// Splits into a sending and a receiving half.
    pub fn split(self) -> (SessionSink, SessionStream) {
        (self.sink, self.stream)
    }

    /// The session's clock (shared with the caller's, if one was given).
    pub fn clock(&self) -> &Clock {
        &self.sink.shared.clock
    }

    /// Counters.
    pub fn stats(&self) -> SessionStats {
        self.sink.shared.stats()
    }

    /// Every clock correction made while connecting or streaming.
    pub fn offsets_learned(&self) -> Vec<OffsetLearned> {
        self.sink.shared.learned()
    }

    /// The URL in use, with its signature and session token masked.
    pub fn redacted_url(&self) -> String {
        self.sink
            .shared
            .url
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A handle that tells when the driver task has stopped.
    pub fn watch(&self) -> SessionWatch {
        SessionWatch {
            shared: self.sink.shared.clone(),
        }
    }

    /// Ends the stream: see [`SessionSink::end`].
    pub async fn end(&mut self) -> Result<(), Error> {
        self.sink.end().await
    }

    /// Sends a WebSocket close at once: see [`SessionSink::disconnect`].
    pub async fn disconnect(&mut self, code: u16) -> Result<(), Error> {
        self.sink.disconnect(code).await
    }
}

impl SessionSink {
    /// Ends the stream (same as `SinkExt::close`): the end frame is sent when frames are signed,
    /// then the server's remaining events are read. Returns once the end is queued.
    pub async fn end(&mut self) -> Result<(), Error> {
        self.close().await
    }

    /// Sends a WebSocket close frame with `code` (1000 for a normal end) as soon as the messages
    /// queued before it are written.
    pub async fn disconnect(&mut self, code: u16) -> Result<(), Error> {
        let shared = self.shared.clone();
        self.tx
            .send(Command::Disconnect(code))
            .await
            .map_err(|_| shared.closed_error())
    }

    /// Counters.
    pub fn stats(&self) -> SessionStats {
        self.shared.stats()
    }

    /// The session's clock.
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// Every clock correction made while connecting or streaming.
    pub fn offsets_learned(&self) -> Vec<OffsetLearned> {
        self.shared.learned()
    }

    /// A handle that tells when the driver task has stopped.
    pub fn watch(&self) -> SessionWatch {
        SessionWatch {
            shared: self.shared.clone(),
        }
    }
}

impl SessionStream {
    /// Counters.
    pub fn stats(&self) -> SessionStats {
        self.shared.stats()
    }

    /// Every clock correction made while connecting or streaming.
    pub fn offsets_learned(&self) -> Vec<OffsetLearned> {
        self.shared.learned()
    }
}

impl SessionWatch {
    /// Whether the driver task has stopped.
    pub fn is_finished(&self) -> bool {
        self.shared.finished.load(Ordering::Acquire)
    }

    /// Waits until the driver task has stopped.
    pub async fn finished(&self) {
        loop {
            let notified = self.shared.finished_notify.notified();
            if self.is_finished() {
                return;
            }
            notified.await;
        }
    }
}

impl Sink<Message> for SessionSink {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.end_queued {
            return Poll::Ready(Err(Error::new(
                ErrorKind::Closed,
                "the stream was already ended",
            )));
        }
        let shared = self.shared.clone();
        self.tx.poll_ready(cx).map_err(|_| shared.closed_error())
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        let shared = self.shared.clone();
        self.tx
            .start_send(Command::Send(item))
            .map_err(|_| shared.closed_error())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.end_queued {
            let shared = self.shared.clone();
            match self.tx.poll_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(Err(shared.closed_error())),
                Poll::Ready(Ok(())) => {}
            }
            self.tx
                .start_send(Command::End)
                .map_err(|_| shared.closed_error())?;
            self.end_queued = true;
        }
        // The channel stays open so that `disconnect` still works after the end of stream.
        Poll::Ready(Ok(()))
    }
}

impl Stream for SessionStream {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Sink<Message> for Session {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.sink).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        Pin::new(&mut self.sink).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.sink).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.sink).poll_close(cx)
    }
}

impl Stream for Session {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.stream).poll_next(cx)
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("url", &self.redacted_url())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SessionSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSink")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SessionStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStream")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SessionWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionWatch")
            .field("finished", &self.is_finished())
            .finish()
    }
}

enum Event {
    Delivered,
    IncomingClosed,
    Frame(Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>),
    Command(Option<Command>),
    Timer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Taking messages from the queue.
    Streaming,
    /// End marker sent; reading the final events until the server closes.
    Ending,
    /// Close sent (or the socket broke); waiting briefly for the peer.
    Closing,
}

/// Messages sent since the connection opened, kept until the server shows it accepted the
/// stream, so a clock-skew rejection can be cured by reconnecting without losing any.
struct Replay {
    messages: VecDeque<Message>,
    bytes: usize,
    max_messages: usize,
    max_bytes: usize,
}

struct Driver {
    dialer: Arc<Dialer>,
    ws: WebSocketStream<MaybeTls>,
    signer: Option<EventSigner>,
    outgoing: futures_mpsc::Receiver<Command>,
    incoming: mpsc::Sender<Result<Message, Error>>,
    incoming_open: bool,
    pending_in: VecDeque<Result<Message, Error>>,
    shared: Arc<Shared>,
    retries_left: u32,
    replay: Option<Replay>,
    decoder: FrameDecoder,
    read_buf: BytesMut,
    frame_buf: BytesMut,
    scratch: BytesMut,
    write_error: Option<Error>,
    reported_error: bool,
    end_sent: bool,
    outgoing_done: bool,
    server_close_code: Option<u16>,
}

impl Driver {
    fn new(
        dialer: Arc<Dialer>,
        established: Established,
        outgoing: futures_mpsc::Receiver<Command>,
        incoming: mpsc::Sender<Result<Message, Error>>,
        shared: Arc<Shared>,
        retries_left: u32,
    ) -> Driver {
        let config = &dialer.config;
        let replay = (retries_left > 0 && config.replay_messages > 0).then(|| Replay {
            messages: VecDeque::new(),
            bytes: 0,
            max_messages: config.replay_messages,
            max_bytes: config.replay_bytes,
        });
        let limits = Limits::new()
            .max_payload_len(config.max_incoming_message)
            .max_headers_len(config.max_incoming_message.min(128 * 1024));
        let signer = Self::signer_for(&dialer, &established);
        Driver {
            ws: established.ws,
            signer,
            outgoing,
            incoming,
            incoming_open: true,
            pending_in: VecDeque::new(),
            shared,
            retries_left,
            replay,
            decoder: FrameDecoder::with_limits(limits),
            read_buf: BytesMut::new(),
            frame_buf: BytesMut::new(),
            scratch: BytesMut::new(),
            write_error: None,
            reported_error: false,
            end_sent: false,
            outgoing_done: false,
            server_close_code: None,
            dialer,
        }
    }

    fn signer_for(dialer: &Dialer, established: &Established) -> Option<EventSigner> {
        (dialer.config.frame_signing == FrameSigning::Signed).then(|| {
            EventSigner::new(
                dialer.credentials.clone(),
                dialer.region.clone(),
                dialer.service.clone(),
                established.presigned.signature(),
                dialer.clock.clone(),
            )
        })
    }

    async fn run(mut self) {
        if let Err(error) = self.run_inner().await {
            tracing::debug!(error = %error, "session ended with an error");
            *self
                .shared
                .failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner) =
                Some((error.kind().clone(), error.message().to_owned()));
            if self.incoming_open {
                // Deliver what was already decoded, then the error; give up if nobody reads.
                let deliver = async {
                    while let Some(item) = self.pending_in.pop_front() {
                        if self.incoming.send(item).await.is_err() {
                            return;
                        }
                    }
                    let _ = self.incoming.send(Err(error)).await;
                };
                let _ = tokio::time::timeout(CLOSE_GRACE, deliver).await;
            }
        } else if self.incoming_open {
            let deliver = async {
                while let Some(item) = self.pending_in.pop_front() {
                    if self.incoming.send(item).await.is_err() {
                        return;
                    }
                }
            };
            let _ = tokio::time::timeout(CLOSE_GRACE, deliver).await;
        }
        let stats = self.shared.stats();
        let span = tracing::Span::current();
        span.record("offset_ms", stats.clock_offset_millis);
        span.record("frames_sent", stats.frames_sent);
        span.record("bytes_sent", stats.bytes_sent);
        span.record("reconnects", stats.reconnects);
        tracing::debug!(
            frames_sent = stats.frames_sent,
            bytes_sent = stats.bytes_sent,
            messages_received = stats.messages_received,
            reconnects = stats.reconnects,
            offset_ms = stats.clock_offset_millis,
            "session finished"
        );
    }

    fn idle_deadline(&self) -> Instant {
        Instant::now() + self.dialer.config.idle_timeout.unwrap_or(FAR_AWAY)
    }

    async fn run_inner(&mut self) -> Result<(), Error> {
        let mut phase = Phase::Streaming;
        let timer: Pin<&mut Sleep> = std::pin::pin!(sleep(FAR_AWAY));
        let mut timer = timer;
        timer.as_mut().reset(self.idle_deadline());
        loop {
            let can_deliver = !self.pending_in.is_empty() && self.incoming_open;
            let can_read = self.pending_in.is_empty() || !self.incoming_open;
            let event = tokio::select! {
                biased;
                permit = self.incoming.reserve(), if can_deliver => match permit {
                    Ok(permit) => {
                        if let Some(item) = self.pending_in.pop_front() {
                            permit.send(item);
                        }
                        Event::Delivered
                    }
                    Err(_) => Event::IncomingClosed,
                },
                frame = self.ws.next(), if can_read => Event::Frame(frame),
                command = self.outgoing.next(), if phase != Phase::Closing && !self.outgoing_done && self.write_error.is_none() => {
                    Event::Command(command)
                }
                () = &mut timer => Event::Timer,
            };
            match event {
                Event::Delivered => {}
                Event::IncomingClosed => {
                    self.incoming_open = false;
                    self.pending_in.clear();
                    if phase == Phase::Ending && self.outgoing_done {
                        // Nobody holds either half any more: stop waiting for final events.
                        self.close_socket(1000).await;
                        phase = Phase::Closing;
                        timer.as_mut().reset(Instant::now() + CLOSE_GRACE);
                    }
                }
                Event::Frame(frame) => {
                    if phase == Phase::Streaming {
                        timer.as_mut().reset(self.idle_deadline());
                    }
                    match frame {
                        None => return self.socket_ended(phase),
                        Some(Err(e)) => {
                            if phase != Phase::Streaming && self.write_error.is_none() {
                                return Ok(());
                            }
                            return Err(self.write_error.take().unwrap_or_else(|| {
                                Error::new(ErrorKind::Io, format!("the connection failed: {e}"))
                                    .with_source(e)
                            }));
                        }
                        Some(Ok(message)) => {
                            if self.on_ws_message(message).await? {
                                // Reconnected after a clock correction: carry on on the new socket.
                                phase = if self.end_sent {
                                    Phase::Ending
                                } else {
                                    Phase::Streaming
                                };
                                timer.as_mut().reset(self.idle_deadline());
                            }
                        }
                    }
                }
                Event::Command(command) => match command {
                    Some(Command::Send(_)) | Some(Command::End) if phase == Phase::Ending => {
                        // The sink refuses these after the end; nothing to do.
                    }
                    Some(Command::Send(message)) => {
                        if let Err(e) = self.send_event(message).await {
                            if e.kind() == &ErrorKind::WriteTimeout {
                                return Err(e);
                            }
                            // Keep reading briefly: the server may have said why (e.g. a skew exception).
                            self.write_error = Some(e);
                            timer.as_mut().reset(Instant::now() + CLOSE_GRACE);
                        }
                    }
                    Some(Command::End) => {
                        self.send_end().await?;
                        phase = Phase::Ending;
                        timer
                            .as_mut()
                            .reset(Instant::now() + self.dialer.config.final_results_timeout);
                    }
                    Some(Command::Disconnect(code)) => {
                        self.close_socket(code).await;
                        phase = Phase::Closing;
                        timer.as_mut().reset(Instant::now() + CLOSE_GRACE);
                    }
                    None if phase == Phase::Ending => {
                        self.outgoing_done = true;
                        if !self.incoming_open {
                            self.close_socket(1000).await;
                            phase = Phase::Closing;
                            timer.as_mut().reset(Instant::now() + CLOSE_GRACE);
                        }
                    }
                    None => {
                        tracing::debug!("sink dropped without ending the stream: cancelling");
                        self.outgoing_done = true;
                        self.close_socket(1001).await;
                        phase = Phase::Closing;
                        timer.as_mut().reset(Instant::now() + CLOSE_GRACE);
                    }
                },
                Event::Timer => {
                    if let Some(e) = self.write_error.take() {
                        return Err(e);
                    }
                    match phase {
                        Phase::Streaming => {
                            let after = self.dialer.config.idle_timeout.unwrap_or(FAR_AWAY);
                            return Err(Error::timeout(
                                ErrorKind::IdleTimeout,
                                "the server sent nothing",
                                after,
                            ));
                        }
                        Phase::Ending => {
                            tracing::debug!(
                                "no close from the server after the end of stream; closing"
                            );
                            self.close_socket(1000).await;
                            phase = Phase::Closing;
                            timer.as_mut().reset(Instant::now() + CLOSE_GRACE);
                        }
                        Phase::Closing => return Ok(()),
                    }
                }
            }
        }
    }

    fn socket_ended(&mut self, phase: Phase) -> Result<(), Error> {
        if let Some(e) = self.write_error.take() {
            return Err(e);
        }
        if phase != Phase::Streaming || self.reported_error {
            return Ok(());
        }
        let code = self.server_close_code;
        let mut error = Error::new(
            ErrorKind::ConnectionClosed,
            "the server closed the connection in mid-stream",
        );
        if let Some(code) = code {
            error = error.with_close_code(code);
        }
        Err(error)
    }

    /// Handles one WebSocket message. Returns `true` if the session reconnected.
    async fn on_ws_message(&mut self, message: WsMessage) -> Result<bool, Error> {
        let bytes = match message {
            WsMessage::Binary(bytes) => bytes,
            WsMessage::Text(text) => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("the server sent a text message ({} bytes) where event-stream binary was expected", text.len()),
                ))
            }
            WsMessage::Close(frame) => {
                self.server_close_code = frame.map(|f| u16::from(f.code));
                return Ok(false);
            }
            _ => return Ok(false),
        };
        self.read_buf.extend_from_slice(&bytes);
        loop {
            let decoded = self.decoder.decode(&mut self.read_buf).map_err(|e| {
                Error::new(
                    ErrorKind::Protocol,
                    format!("malformed event-stream message from the server: {e}"),
                )
                .with_source(e)
            })?;
            let Some(message) = decoded else { break };
            self.shared
                .messages_received
                .fetch_add(1, Ordering::Relaxed);
            match Rejection::from_message(&message) {
                None => {
                    // The server is answering normally: the stream was accepted.
                    self.replay = None;
                    if self.incoming_open {
                        self.pending_in.push_back(Ok(message));
                    }
                }
                Some(rejection) => {
                    if self.try_skew_recovery(&rejection).await? {
                        return Ok(true);
                    }
                    self.reported_error = true;
                    if self.incoming_open {
                        self.pending_in.push_back(Err(rejection.into_error()));
                    }
                }
            }
        }
        Ok(false)
    }

    /// If `rejection` is a clock problem that the evidence corrects, and the messages sent so far
    /// can be replayed, reconnect with a fresh URL and re-send them. Returns `true` if it did.
    async fn try_skew_recovery(&mut self, rejection: &Rejection) -> Result<bool, Error> {
        let Cause::Skew(skew) = rejection.cause else {
            return Ok(false);
        };
        let update = self
            .shared
            .clock
            .observe(&skew.observation(self.shared.clock.source_now()));
        if !update.changed() {
            return Ok(false);
        }
        self.shared
            .learned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(OffsetLearned::new(OffsetSource::ExceptionFrame, update));
        tracing::Span::current().record("offset_ms", update.current_millis);
        tracing::info!(
            offset_ms = update.current_millis,
            previous_ms = update.previous_millis,
            "clock offset learned from an exception frame"
        );
        if self.retries_left == 0 || self.replay.is_none() {
            return Ok(false);
        }
        self.retries_left -= 1;
        let replay = self.replay.take().map(|r| r.messages).unwrap_or_default();
        self.close_socket(1000).await;
        let mut learned = Vec::new();
        let established = loop {
            match self.dialer.dial(&mut learned).await {
                Ok(established) => break established,
                Err(DialError::Retryable(e)) if self.retries_left > 0 => {
                    self.retries_left -= 1;
                    tracing::info!(error = %e, "clock corrected again; presigning again");
                }
                Err(DialError::Retryable(e)) | Err(DialError::Fatal(e)) => return Err(e),
            }
        };
        self.shared
            .learned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(learned);
        self.shared.reconnects.fetch_add(1, Ordering::Relaxed);
        *self
            .shared
            .url
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            RedactedUrl(established.presigned.url()).to_string();
        self.signer = Self::signer_for(&self.dialer, &established);
        self.ws = established.ws;
        self.decoder = FrameDecoder::with_limits(self.decoder.limits());
        self.read_buf.clear();
        self.write_error = None;
        self.server_close_code = None;
        self.replay = Some(Replay {
            messages: VecDeque::new(),
            bytes: 0,
            max_messages: self.dialer.config.replay_messages,
            max_bytes: self.dialer.config.replay_bytes,
        });
        tracing::info!(
            resent = replay.len(),
            "reconnected with the corrected clock; re-sending"
        );
        for message in replay {
            self.send_event(message).await?;
        }
        if self.end_sent {
            self.send_end().await?;
        }
        Ok(true)
    }

    async fn send_event(&mut self, message: Message) -> Result<(), Error> {
        self.frame_buf.clear();
        if let Some(signer) = &mut self.signer {
            self.scratch.clear();
            message.encode_into(&mut self.scratch).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidRequest,
                    format!("cannot encode the message: {e}"),
                )
                .with_source(e)
            })?;
            signer
                .sign_into(&self.scratch, &mut self.frame_buf)
                .map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidRequest,
                        format!("cannot sign the message: {e}"),
                    )
                    .with_source(e)
                })?;
        } else {
            message.encode_into(&mut self.frame_buf).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidRequest,
                    format!("cannot encode the message: {e}"),
                )
                .with_source(e)
            })?;
        }
        if let Some(replay) = &mut self.replay {
            replay.bytes += message.payload().len();
            replay.messages.push_back(message);
            if replay.messages.len() > replay.max_messages || replay.bytes > replay.max_bytes {
                // Too much to hold: from here on a skew rejection cannot be cured without loss.
                self.replay = None;
            }
        }
        self.write_frame().await
    }

    async fn send_end(&mut self) -> Result<(), Error> {
        self.end_sent = true;
        self.frame_buf.clear();
        let Some(signer) = &mut self.signer else {
            return Ok(());
        };
        signer.finish_into(&mut self.frame_buf).map_err(|e| {
            Error::new(ErrorKind::Closed, format!("cannot sign the end frame: {e}")).with_source(e)
        })?;
        self.write_frame().await
    }

    async fn write_frame(&mut self) -> Result<(), Error> {
        let frame = self.frame_buf.split().freeze();
        let len = frame.len() as u64;
        let timeout = self.dialer.config.write_timeout;
        match tokio::time::timeout(timeout, self.ws.send(WsMessage::Binary(frame))).await {
            Ok(Ok(())) => {
                self.shared.frames_sent.fetch_add(1, Ordering::Relaxed);
                self.shared.bytes_sent.fetch_add(len, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(e)) => Err(Error::new(
                ErrorKind::ConnectionClosed,
                format!("could not write a frame: {e}"),
            )
            .with_source(e)),
            Err(_) => Err(Error::timeout(
                ErrorKind::WriteTimeout,
                "a frame could not be written",
                timeout,
            )),
        }
    }

    async fn close_socket(&mut self, code: u16) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, self.ws.close(Some(frame))).await;
    }
}
