//! A duplex streaming session: a `Sink` of outgoing messages, a `Stream` of incoming ones, and
//! one driver task that owns the socket and the signature chain.
//!
//! # How frames are signed
//!
//! Messages wait in a bounded queue *unsigned*. The driver takes the next one only when the
//! socket has accepted the previous one, encodes it, signs it with `Clock::now()` at that moment,
//! and writes it. A message that waited minutes in the queue is still signed fresh. When more
//! messages are already waiting, the driver signs them one after the other and writes them
//! with one system call (up to
//! [`SessionConfig::write_buffer_size`](super::SessionConfig::write_buffer_size)); it never waits
//! for more to arrive.
//!
//! # Cost per frame
//!
//! Once a session is warm, sending an [`EncodedMessage`] (a pre-encoded header block and a
//! payload, see [`SessionSink::send_encoded`]) allocates nothing: the queue is a fixed ring, the
//! driver encodes (and signs) into per-thread buffers it reuses, and its write deadline is one
//! timer armed only when a write cannot complete at once. The payload is copied once into the frame (twice
//! when signed: into the inner message, then into the envelope) and once more by the WebSocket
//! layer, which masks it into its output buffer. A [`Message`] costs its own header strings on
//! top.
//!
//! # Ending, cancelling, dropping
//!
//! * `SinkExt::close` (or [`SessionSink::end`]) ends the stream: the driver writes the signed
//!   empty end frame (when frames are signed), then keeps reading; the stream half yields the
//!   remaining events and ends (`None`) when the server closes. If the server has not closed
//!   within [`SessionConfig::final_results_timeout`](super::SessionConfig::final_results_timeout),
//!   the driver closes, and the stream yields an [`ErrorKind::FinalResultsTimeout`] error
//!   before it ends: the last results may be missing.
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

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
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
use crate::proto::codec::{
    encode_headers_into, EncodeError, FrameDecoder, Header, Limits, Message, MAX_PAYLOAD_LEN,
    MIN_MESSAGE_LEN,
};
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
    /// Writes of event frames to the socket. Fewer than `frames_sent` when frames that were
    /// already queued shared one write (see
    /// [`SessionConfig::write_buffer_size`](super::SessionConfig::write_buffer_size)).
    pub socket_writes: u64,
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
    socket_writes: AtomicU64,
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
            socket_writes: self.socket_writes.load(Ordering::Relaxed),
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
    SendEncoded(EncodedMessage),
    End,
    Disconnect(u16),
}

/// An outgoing event-stream message whose header block is already encoded: the cheap way to
/// send many events of the same kind (audio chunks, video chunks).
///
/// Build one per kind of event with [`EncodedMessage::new`] (or [`EncodedMessage::from_message`]),
/// then give each event its payload with [`EncodedMessage::with_payload`], which shares the
/// header block (a reference count, no copy, no allocation). Send it with
/// [`SessionSink::send_encoded`]; the driver writes the prelude, the header block, the payload
/// and the CRCs straight into its reused frame buffer, and signs the result when frames are
/// signed, exactly as it would the equivalent [`Message`].
///
/// ```
/// use bytes::Bytes;
/// use sigv4_ws::proto::codec::{Header, HeaderValue, Message, EVENT_TYPE, MESSAGE_TYPE};
/// use sigv4_ws::transport::EncodedMessage;
///
/// let template = EncodedMessage::new(
///     &[
///         Header::new(MESSAGE_TYPE, HeaderValue::from("event")),
///         Header::new(EVENT_TYPE, HeaderValue::from("AudioEvent")),
///     ],
///     Bytes::new(),
/// )?;
/// let event = template.with_payload(Bytes::from_static(b"pcm"));
/// let mut frame = bytes::BytesMut::new();
/// event.encode_into(&mut frame)?;
/// let expected = Message::new(Bytes::from_static(b"pcm"))
///     .with_header(MESSAGE_TYPE, HeaderValue::from("event"))
///     .with_header(EVENT_TYPE, HeaderValue::from("AudioEvent"));
/// assert_eq!(&frame[..], &expected.encode()?[..]);
/// # Ok::<(), sigv4_ws::proto::codec::EncodeError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedMessage {
    headers: Bytes,
    payload: Bytes,
}

impl EncodedMessage {
    /// Encodes `headers` once (checking the format's limits) and pairs them with `payload`.
    pub fn new(
        headers: &[Header],
        payload: impl Into<Bytes>,
    ) -> Result<EncodedMessage, EncodeError> {
        let mut block = BytesMut::new();
        encode_headers_into(headers, &mut block)?;
        Ok(EncodedMessage {
            headers: block.freeze(),
            payload: payload.into(),
        })
    }

    /// The same message with its header block encoded (the payload is shared, not copied).
    pub fn from_message(message: &Message) -> Result<EncodedMessage, EncodeError> {
        EncodedMessage::new(message.headers(), message.payload().clone())
    }

    /// The same header block with another payload. Allocates nothing.
    pub fn with_payload(&self, payload: impl Into<Bytes>) -> EncodedMessage {
        EncodedMessage {
            headers: self.headers.clone(),
            payload: payload.into(),
        }
    }

    /// The encoded header block.
    pub fn header_block(&self) -> &[u8] {
        &self.headers
    }

    /// The payload.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Length of the encoded frame: prelude, header block, payload and CRC.
    pub fn encoded_len(&self) -> usize {
        MIN_MESSAGE_LEN
            .saturating_add(self.headers.len())
            .saturating_add(self.payload.len())
    }

    /// Appends the encoded frame to `dst`: one reserve, the prelude, one copy of the header
    /// block and of the payload, and the CRCs. Fails (leaving `dst` as it was) if the payload is
    /// larger than 16 MiB.
    pub fn encode_into(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        if self.payload.len() > MAX_PAYLOAD_LEN {
            return Err(EncodeError::PayloadTooLarge {
                len: self.payload.len(),
                max: MAX_PAYLOAD_LEN,
            });
        }
        let total = self.encoded_len();
        dst.reserve(total);
        let start = dst.len();
        // Both fit in u32: the header block is at most 128 KiB (checked in `new`) and the
        // payload at most 16 MiB (checked above).
        dst.put_u32(total as u32);
        dst.put_u32(self.headers.len() as u32);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&dst[start..]);
        dst.put_u32(crc.clone().finalize());
        dst.put_slice(&self.headers);
        dst.put_slice(&self.payload);
        crc.update(&dst[start + 8..]);
        dst.put_u32(crc.finalize());
        Ok(())
    }
}

impl fmt::Debug for EncodedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedMessage")
            .field("header_block_len", &self.headers.len())
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// The bounded queue between the sink and the driver: a ring allocated once, one lock, two
/// wakers. (A futures-channel node per message was one allocation per frame.)
struct Queue {
    state: Mutex<QueueState>,
}

struct QueueState {
    items: VecDeque<Command>,
    capacity: usize,
    rx_waker: Option<Waker>,
    tx_waker: Option<Waker>,
    tx_alive: bool,
    rx_alive: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// The sending end (one per session: the sink).
struct QueueTx(Arc<Queue>);

/// The receiving end (the driver).
struct QueueRx(Arc<Queue>);

fn queue(capacity: usize) -> (QueueTx, QueueRx) {
    let capacity = capacity.max(1);
    let queue = Arc::new(Queue {
        state: Mutex::new(QueueState {
            items: VecDeque::with_capacity(capacity),
            capacity,
            rx_waker: None,
            tx_waker: None,
            tx_alive: true,
            rx_alive: true,
        }),
    });
    (QueueTx(queue.clone()), QueueRx(queue))
}

impl QueueTx {
    /// `Ready(Ok)` when there is room, `Ready(Err)` when the driver is gone.
    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        let mut state = self.0.lock();
        if !state.rx_alive {
            return Poll::Ready(Err(()));
        }
        if state.items.len() < state.capacity {
            return Poll::Ready(Ok(()));
        }
        register(&mut state.tx_waker, cx);
        Poll::Pending
    }

    fn start_send(&self, command: Command) -> Result<(), ()> {
        let waker = {
            let mut state = self.0.lock();
            if !state.rx_alive {
                return Err(());
            }
            state.items.push_back(command);
            state.rx_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Queues two commands under one lock: the driver sees both or neither.
    fn start_send_pair(&self, first: Command, second: Command) -> Result<(), ()> {
        let waker = {
            let mut state = self.0.lock();
            if !state.rx_alive {
                return Err(());
            }
            state.items.push_back(first);
            state.items.push_back(second);
            state.rx_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    async fn send(&self, command: Command) -> Result<(), ()> {
        poll_fn(|cx| self.poll_ready(cx)).await?;
        self.start_send(command)
    }
}

impl Drop for QueueTx {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.0.lock();
            state.tx_alive = false;
            state.rx_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl QueueRx {
    /// The next command; `None` once the sink is gone and the queue is empty.
    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Command>> {
        let mut state = self.0.lock();
        match state.items.pop_front() {
            Some(command) => {
                let waker = state.tx_waker.take();
                drop(state);
                if let Some(waker) = waker {
                    waker.wake();
                }
                Poll::Ready(Some(command))
            }
            None if !state.tx_alive => Poll::Ready(None),
            None => {
                register(&mut state.rx_waker, cx);
                Poll::Pending
            }
        }
    }

    async fn recv(&self) -> Option<Command> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next command if it is an event that is already waiting; never waits, and leaves
    /// an end or disconnect in place for the main loop.
    fn try_recv_event(&self) -> Option<Outgoing> {
        let mut state = self.0.lock();
        let outgoing = match state.items.front() {
            Some(Command::Send(_) | Command::SendEncoded(_)) => match state.items.pop_front()? {
                Command::Send(message) => Outgoing::Message(message),
                Command::SendEncoded(message) => Outgoing::Encoded(message),
                Command::End | Command::Disconnect(_) => return None,
            },
            _ => return None,
        };
        let waker = state.tx_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Some(outgoing)
    }

    /// Whether the end of stream is waiting in the queue.
    fn end_queued(&self) -> bool {
        self.0
            .lock()
            .items
            .iter()
            .any(|command| matches!(command, Command::End))
    }
}

impl Drop for QueueRx {
    fn drop(&mut self) {
        let (items, waker) = {
            let mut state = self.0.lock();
            state.rx_alive = false;
            (std::mem::take(&mut state.items), state.tx_waker.take())
        };
        drop(items);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
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
    tx: QueueTx,
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
        let (tx, outgoing) = queue(config.queue_capacity);
        let (incoming, rx) = mpsc::channel(config.incoming_capacity.max(1));
        let shared = Arc::new(Shared {
            clock: dialer.clock.clone(),
            frames_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            socket_writes: AtomicU64::new(0),
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
        self.tx
            .send(Command::Disconnect(code))
            .await
            .map_err(|_| self.shared.closed_error())
    }

    /// Queues `message` and the end of stream together, so that no server reaction to
    /// `message` (such as closing after an end marker inside it) can be seen before the end is
    /// queued. Waits for room for `message`; the end may use one slot beyond the bound.
    pub(crate) async fn send_then_end(&mut self, message: Message) -> Result<(), Error> {
        self.room_before_the_end().await?;
        self.tx
            .start_send_pair(Command::Send(message), Command::End)
            .map_err(|_| self.shared.closed_error())?;
        self.end_queued = true;
        Ok(())
    }

    /// Sends a message whose header block is already encoded: the same as sending the
    /// equivalent [`Message`] through the [`Sink`], without building header strings per event
    /// (see [`EncodedMessage`]). Waits while the queue is full (backpressure).
    pub async fn send_encoded(&mut self, message: EncodedMessage) -> Result<(), Error> {
        self.room_before_the_end().await?;
        self.tx
            .start_send(Command::SendEncoded(message))
            .map_err(|_| self.shared.closed_error())
    }

    /// Waits for room in the queue; refuses once the end of stream is queued or the session
    /// has stopped.
    async fn room_before_the_end(&mut self) -> Result<(), Error> {
        if self.end_queued {
            return Err(Error::new(
                ErrorKind::Closed,
                "the stream was already ended",
            ));
        }
        poll_fn(|cx| self.tx.poll_ready(cx))
            .await
            .map_err(|_| self.shared.closed_error())
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

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.end_queued {
            return Poll::Ready(Err(Error::new(
                ErrorKind::Closed,
                "the stream was already ended",
            )));
        }
        self.tx
            .poll_ready(cx)
            .map_err(|_| self.shared.closed_error())
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.tx
            .start_send(Command::Send(item))
            .map_err(|_| self.shared.closed_error())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.end_queued {
            match self.tx.poll_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(Err(self.shared.closed_error())),
                Poll::Ready(Ok(())) => {}
            }
            self.tx
                .start_send(Command::End)
                .map_err(|_| self.shared.closed_error())?;
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

/// An event as it waits in the replay buffer.
enum Outgoing {
    Message(Message),
    Encoded(EncodedMessage),
}

impl Outgoing {
    fn payload_len(&self) -> usize {
        match self {
            Outgoing::Message(m) => m.payload().len(),
            Outgoing::Encoded(m) => m.payload().len(),
        }
    }

    fn encode_into(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Outgoing::Message(m) => m.encode_into(dst),
            Outgoing::Encoded(m) => m.encode_into(dst),
        }
    }
}

/// Messages sent since the connection opened, kept until the server shows it accepted the
/// stream, so a clock-skew rejection can be cured by reconnecting without losing any.
struct Replay {
    messages: VecDeque<Outgoing>,
    bytes: usize,
    max_messages: usize,
    max_bytes: usize,
}

struct Driver {
    dialer: Arc<Dialer>,
    ws: WebSocketStream<MaybeTls>,
    signer: Option<EventSigner>,
    outgoing: QueueRx,
    incoming: mpsc::Sender<Result<Message, Error>>,
    incoming_open: bool,
    pending_in: VecDeque<Result<Message, Error>>,
    shared: Arc<Shared>,
    retries_left: u32,
    replay: Option<Replay>,
    decoder: FrameDecoder,
    read_buf: BytesMut,
    /// The write deadline, armed only when a write cannot complete at once.
    write_timer: Pin<Box<Sleep>>,
    write_error: Option<Error>,
    /// Frames (and their bytes) handed to the WebSocket layer since the last flush.
    unflushed: (u64, u64),
    /// The last read found nothing: see [`poll_next_message`].
    read_drained: bool,
    reported_error: bool,
    end_sent: bool,
    outgoing_done: bool,
    server_close_code: Option<u16>,
}

impl Driver {
    fn new(
        dialer: Arc<Dialer>,
        established: Established,
        outgoing: QueueRx,
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
            write_timer: Box::pin(sleep(FAR_AWAY)),
            write_error: None,
            unflushed: (0, 0),
            read_drained: false,
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
                frame = poll_fn(|cx| poll_next_message(&mut self.ws, &mut self.read_drained, cx)), if can_read => Event::Frame(frame),
                command = self.outgoing.recv(), if phase != Phase::Closing && !self.outgoing_done && self.write_error.is_none() && self.server_close_code.is_none() => {
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
                    Some(Command::Send(_) | Command::SendEncoded(_) | Command::End)
                        if phase == Phase::Ending =>
                    {
                        // The sink refuses these after the end; nothing to do.
                    }
                    Some(Command::Send(message)) => {
                        if let Err(e) = self.send_events(Outgoing::Message(message)).await {
                            if e.kind() == &ErrorKind::WriteTimeout {
                                return Err(e);
                            }
                            // Keep reading briefly: the server may have said why (e.g. a skew exception).
                            self.write_error = Some(e);
                            timer.as_mut().reset(Instant::now() + CLOSE_GRACE);
                        }
                    }
                    Some(Command::SendEncoded(message)) => {
                        if let Err(e) = self.send_events(Outgoing::Encoded(message)).await {
                            if e.kind() == &ErrorKind::WriteTimeout {
                                return Err(e);
                            }
                            // Keep reading briefly: the server may have said why (e.g. a skew exception).
                            self.write_error = Some(e);
                            timer.as_mut().reset(Instant::now() + CLOSE_GRACE);
                        }
                    }
                    Some(Command::End) => {
                        if self.server_close_code.is_none() {
                            self.send_end().await?;
                        } else {
                            // The server already closed (e.g. after Transcribe's empty
                            // `AudioEvent`): the end frame can no longer be written, and the
                            // stream is over anyway.
                            self.end_sent = true;
                        }
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
                            // The stream did not finish: say so rather than end as if it had.
                            tracing::debug!(
                                "no close from the server after the end of stream; closing"
                            );
                            self.close_socket(1000).await;
                            return Err(Error::timeout(
                                ErrorKind::FinalResultsTimeout,
                                "the server did not finish the stream after its end",
                                self.dialer.config.final_results_timeout,
                            ));
                        }
                        Phase::Closing => return Ok(()),
                    }
                }
            }
        }
    }

    fn socket_ended(&mut self, phase: Phase) -> Result<(), Error> {
        if let Some(e) = self.write_error.take() {
            // A write that raced the server's close frame: report the close, which says why.
            if self.server_close_code.is_none() || phase != Phase::Streaming {
                return Err(e);
            }
        }
        if phase != Phase::Streaming || self.reported_error {
            return Ok(());
        }
        let code = self.server_close_code;
        if matches!(code, None | Some(1000)) && self.outgoing.end_queued() {
            // The end of stream was already asked for and is still in the queue behind the
            // frames just written (e.g. Transcribe's empty `AudioEvent`, which the server may
            // answer by closing before the driver reaches the end marker): a normal ending.
            return Ok(());
        }
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
        // Retry if this message corrected the clock, or if the clock was already corrected (by
        // another session sharing it) after this connection's signature was made: then the
        // corrected clock now reads far from the rejected signing time.
        let signed_long_ago =
            crate::proto::clock::millis_between(self.shared.clock.now(), skew.signed_at)
                .unsigned_abs()
                > 5_000;
        if !update.changed() && !signed_long_ago {
            return Ok(false);
        }
        if update.changed() {
            self.shared
                .learned
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(OffsetLearned::new(OffsetSource::ExceptionFrame, update));
        }
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
        self.read_drained = false;
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
        self.flush_frames().await?;
        if self.end_sent {
            self.send_end().await?;
        }
        Ok(true)
    }

    /// Sends `first` and whatever events are already waiting behind it, up to
    /// [`SessionConfig::write_buffer_size`](super::SessionConfig::write_buffer_size) bytes,
    /// with one write to the socket. Each frame is still signed just before it is handed to
    /// the WebSocket layer, microseconds before the write, and nothing waits for more frames:
    /// only frames the application already queued (a sender ahead of the socket, or a file
    /// streamed faster than real time) share a system call.
    async fn send_events(&mut self, first: Outgoing) -> Result<(), Error> {
        let limit = self.dialer.config.write_buffer_size;
        let mut batched = self.send_event(first).await?;
        while batched < limit {
            let Some(next) = self.outgoing.try_recv_event() else {
                break;
            };
            batched += self.send_event(next).await?;
        }
        self.flush_frames().await
    }

    /// Encodes (and signs) `message` and hands the frame to the WebSocket layer, which writes
    /// it out at the latest on the next [`Driver::flush_frames`]. Returns the frame's length.
    async fn send_event(&mut self, message: Outgoing) -> Result<usize, Error> {
        let signer = &mut self.signer;
        let frame = with_frame_buffers(|scratch, frame_buf| {
            let Some(signer) = signer else {
                return message.encode_into(frame_buf).map_err(encode_error);
            };
            scratch.clear();
            message.encode_into(scratch).map_err(encode_error)?;
            signer.sign_into(scratch, frame_buf).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidRequest,
                    format!("cannot sign the message: {e}"),
                )
                .with_source(e)
            })
        })?;
        if let Some(replay) = &mut self.replay {
            replay.bytes += message.payload_len();
            replay.messages.push_back(message);
            if replay.messages.len() > replay.max_messages || replay.bytes > replay.max_bytes {
                // Too much to hold: from here on a skew rejection cannot be cured without loss.
                self.replay = None;
            }
        }
        self.write_frame(frame).await
    }

    async fn send_end(&mut self) -> Result<(), Error> {
        self.end_sent = true;
        let Some(signer) = &mut self.signer else {
            return Ok(());
        };
        let frame = with_frame_buffers(|_, frame_buf| {
            signer.finish_into(frame_buf).map_err(|e| {
                Error::new(ErrorKind::Closed, format!("cannot sign the end frame: {e}"))
                    .with_source(e)
            })
        })?;
        self.write_frame(frame).await?;
        self.flush_frames().await
    }

    /// Hands `frame` to the WebSocket layer (which copies it). Returns the frame's length.
    async fn write_frame(&mut self, frame: Bytes) -> Result<usize, Error> {
        let len = frame.len();
        let feed = self.ws.feed(WsMessage::Binary(frame));
        with_write_deadline(
            feed,
            &mut self.write_timer,
            self.dialer.config.write_timeout,
        )
        .await?;
        self.unflushed.0 += 1;
        self.unflushed.1 += len as u64;
        Ok(len)
    }

    /// Writes out the frames handed to the WebSocket layer but not yet written.
    async fn flush_frames(&mut self) -> Result<(), Error> {
        let flush = self.ws.flush();
        with_write_deadline(
            flush,
            &mut self.write_timer,
            self.dialer.config.write_timeout,
        )
        .await?;
        self.count_flushed();
        Ok(())
    }

    fn count_flushed(&mut self) {
        let (frames, bytes) = std::mem::take(&mut self.unflushed);
        if frames == 0 {
            return;
        }
        self.shared.frames_sent.fetch_add(frames, Ordering::Relaxed);
        self.shared.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
        self.shared.socket_writes.fetch_add(1, Ordering::Relaxed);
    }

    async fn close_socket(&mut self, code: u16) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, self.ws.close(Some(frame))).await;
    }
}

/// The next WebSocket message, without asking the WebSocket layer while the socket has had
/// nothing new since its last read came back empty. The driver wakes for every frame it
/// writes, and a read attempt is not free: tungstenite zero-fills its whole read buffer before
/// each one (4 KiB of memory, cold in the cache when thousands of sessions take turns). Once
/// a read returned `Pending`, every layer (tungstenite, rustls) has consumed what it had, so
/// nothing can arrive without the TCP socket becoming readable.
fn poll_next_message(
    ws: &mut WebSocketStream<MaybeTls>,
    drained: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>> {
    if *drained {
        // An error is not ours to report: the read below meets it and says what it was.
        if ws.get_ref().poll_read_ready(cx).is_pending() {
            return Poll::Pending;
        }
        *drained = false;
    }
    let next = ws.poll_next_unpin(cx);
    *drained = next.is_pending();
    next
}

fn encode_error(e: EncodeError) -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        format!("cannot encode the message: {e}"),
    )
    .with_source(e)
}

thread_local! {
    /// The buffers frames are built in, one pair per thread rather than per session: a frame
    /// lives in them only from its encoding to the WebSocket layer's copy of it, never across
    /// an `await`. With thousands of sessions, per-session buffers were 6.7 KiB of each
    /// session's memory and cold in the cache at every frame; these stay warm.
    static FRAME_BUFFERS: RefCell<(BytesMut, BytesMut)> =
        RefCell::new((BytesMut::new(), BytesMut::new()));
}

/// A buffer that grew beyond this for a rare large frame is let go rather than kept by the
/// thread for good.
const RETAINED_BUFFER_LIMIT: usize = 256 * 1024;

/// Runs `build` with this thread's (scratch, frame) buffers and returns the frame it wrote,
/// split off the frame buffer. The WebSocket layer copies the frame and drops it before the
/// next one, so the next `reserve` reclaims the same allocation.
fn with_frame_buffers(
    build: impl FnOnce(&mut BytesMut, &mut BytesMut) -> Result<(), Error>,
) -> Result<Bytes, Error> {
    FRAME_BUFFERS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffers) => {
            let (scratch, frame) = &mut *buffers;
            frame.clear();
            let built = build(scratch, frame).map(|()| frame.split().freeze());
            if scratch.capacity() > RETAINED_BUFFER_LIMIT {
                *scratch = BytesMut::new();
            }
            if built
                .as_ref()
                .is_ok_and(|f| f.len() > RETAINED_BUFFER_LIMIT)
            {
                *frame = BytesMut::new();
            }
            built
        }
        // Not reachable (nothing in `build` re-enters), but a fresh pair is always correct.
        Err(_) => {
            let mut frame = BytesMut::new();
            build(&mut BytesMut::new(), &mut frame).map(|()| frame.freeze())
        }
    })
}

/// Runs a write to the WebSocket under the session's write deadline. A write that completes
/// at once (the usual case) touches no timer: the one deadline of the session is armed only
/// when the socket pushes back.
async fn with_write_deadline<F>(
    write: F,
    timer: &mut Pin<Box<Sleep>>,
    timeout: Duration,
) -> Result<(), Error>
where
    F: Future<Output = Result<(), tokio_tungstenite::tungstenite::Error>>,
{
    let mut write = std::pin::pin!(write);
    let mut armed = false;
    let outcome = poll_fn(|cx| {
        if let Poll::Ready(result) = write.as_mut().poll(cx) {
            return Poll::Ready(Some(result));
        }
        if !armed {
            timer.as_mut().reset(Instant::now() + timeout);
            armed = true;
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await;
    match outcome {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(Error::new(
            ErrorKind::ConnectionClosed,
            format!("could not write a frame: {e}"),
        )
        .with_source(e)),
        None => Err(Error::timeout(
            ErrorKind::WriteTimeout,
            "a frame could not be written",
            timeout,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retained() -> (usize, usize) {
        FRAME_BUFFERS.with(|cell| {
            let buffers = cell.borrow();
            (buffers.0.capacity(), buffers.1.capacity())
        })
    }

    #[test]
    fn frame_buffers_are_reused_for_ordinary_frames() {
        let first = with_frame_buffers(|scratch, frame| {
            scratch.extend_from_slice(&[1; 3_300]);
            frame.extend_from_slice(&[2; 3_400]);
            Ok(())
        })
        .expect("built");
        assert_eq!(first.len(), 3_400);
        let address = first.as_ptr();
        drop(first);
        let second = with_frame_buffers(|_, frame| {
            frame.extend_from_slice(&[3; 3_400]);
            Ok(())
        })
        .expect("built");
        // The same allocation, reclaimed: nothing was allocated for the second frame.
        assert_eq!(second.as_ptr(), address);
        assert!(second.iter().all(|&b| b == 3));
        assert!(retained().0 >= 3_300);
    }

    #[test]
    fn a_large_frame_does_not_stay_with_the_thread() {
        let frame = with_frame_buffers(|scratch, frame| {
            scratch.extend_from_slice(&vec![1; 2 * RETAINED_BUFFER_LIMIT]);
            frame.extend_from_slice(&vec![2; 2 * RETAINED_BUFFER_LIMIT]);
            Ok(())
        })
        .expect("built");
        assert_eq!(frame.len(), 2 * RETAINED_BUFFER_LIMIT);
        assert_eq!(retained(), (0, 0));
    }

    #[test]
    fn a_failed_build_returns_its_error() {
        let error = with_frame_buffers(|_, frame| {
            frame.extend_from_slice(b"partial");
            Err(Error::new(ErrorKind::InvalidRequest, "cannot encode"))
        })
        .expect_err("the build failed");
        assert_eq!(error.kind(), &ErrorKind::InvalidRequest);
        let next = with_frame_buffers(|_, frame| {
            frame.extend_from_slice(b"whole");
            Ok(())
        })
        .expect("built");
        assert_eq!(&next[..], b"whole");
    }
}
