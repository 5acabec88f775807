//! Session configuration: timeouts, queue bound, frame limits, retry on skew, TLS, buffers.

use std::sync::Arc;
use std::time::Duration;

/// How outgoing events are framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameSigning {
    /// Each event is wrapped in a signed envelope (`:date`, `:chunk-signature`) chained on the
    /// URL's signature, and the stream ends with a signed empty frame. Rekognition Face
    /// Liveness requires this.
    Signed,
    /// Events are sent as plain event-stream messages, as AWS documents for Transcribe over
    /// WebSocket and as the JavaScript browser client does. The URL alone carries the signature.
    Unsigned,
}

/// Whether `ws://` (no TLS) may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PlaintextPolicy {
    /// `ws://` only to loopback addresses (127.0.0.0/8, ::1, `localhost`): local emulators and tests.
    #[default]
    LoopbackOnly,
    /// `ws://` to any host. The presigned URL, and so a replayable credential, travels in clear text.
    Allow,
}

/// Configuration of a streaming session. Construct with [`SessionConfig::default`] and the setters.
///
/// Defaults are chosen for real-time media over the public internet; they may change between
/// minor versions.
#[derive(Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Time allowed for TCP connect, TLS and the WebSocket upgrade together. Default 10 s
    /// (Amplify's Liveness client uses the same).
    pub connect_timeout: Duration,
    /// The session fails if the server sends nothing for this long. Default 60 s: both services
    /// send events regularly while a stream is alive. `None` disables it.
    pub idle_timeout: Option<Duration>,
    /// The session fails if a frame cannot be written for this long (the server stopped
    /// reading). Default 30 s.
    pub write_timeout: Duration,
    /// After the end of the stream, how long to wait for the server's remaining events and its
    /// close before closing from this side, with an
    /// [`ErrorKind::FinalResultsTimeout`](super::ErrorKind::FinalResultsTimeout) error on the
    /// stream. Default 30 s.
    pub final_results_timeout: Duration,
    /// Outgoing messages queued before the producer is held back (backpressure). Default 16
    /// (1.6 s of 100 ms audio frames).
    pub queue_capacity: usize,
    /// Incoming messages buffered before the session stops reading the socket. Default 32.
    pub incoming_capacity: usize,
    /// Largest incoming WebSocket message accepted. Default 1 MiB: server events are small JSON.
    pub max_incoming_message: usize,
    /// How many times a connection rejected because of the clock is re-presigned with the
    /// corrected clock and retried. Default 1. Other rejections are never retried.
    pub skew_retries: u32,
    /// How many messages (and bytes, see [`SessionConfig::replay_bytes`]) sent right after
    /// connecting are kept so they can be re-sent if the server rejects the stream for clock
    /// skew and the session reconnects. Default 64 messages.
    pub replay_messages: usize,
    /// Byte bound of the replay buffer. Default 256 KiB.
    pub replay_bytes: usize,
    /// Frame signing mode. Default [`FrameSigning::Unsigned`]; the typed services set it.
    pub frame_signing: FrameSigning,
    /// `X-Amz-Expires` of the presigned URL. Default 60 s; at most 300 s.
    pub url_expires_in: Duration,
    /// TLS configuration for `wss://`. Default: rustls with the ring provider and the Mozilla
    /// root store from `webpki-roots` (the same roots everywhere, including minimal containers
    /// and Lambda images without a CA bundle). Supply your own for platform roots or a private CA.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Whether `ws://` may go to non-loopback hosts. Default loopback only.
    pub plaintext: PlaintextPolicy,
    /// WebSocket read buffer size. Default 4 KiB: the services' events are small JSON, and
    /// a larger message still arrives whole (the buffer grows for it, reading this much per
    /// system call). tungstenite's default is 128 KiB, which would dominate the memory of an
    /// idle session; tungstenite also zero-fills this many bytes before every read attempt,
    /// which a session makes after each frame it writes.
    pub read_buffer_size: usize,
    /// At most this many bytes of frames that are already waiting in the session's queue are
    /// written to the socket with one system call. Default 64 KiB. Nothing ever waits for a
    /// batch to fill: a frame is written as soon as the driver takes it, together with the
    /// frames queued behind it at that moment (a sender ahead of real time, or catching up
    /// after the socket pushed back), each signed just before it is handed over. 0 writes
    /// every frame on its own.
    pub write_buffer_size: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(60)),
            write_timeout: Duration::from_secs(30),
            final_results_timeout: Duration::from_secs(30),
            queue_capacity: 16,
            incoming_capacity: 32,
            max_incoming_message: 1024 * 1024,
            skew_retries: 1,
            replay_messages: 64,
            replay_bytes: 256 * 1024,
            frame_signing: FrameSigning::Unsigned,
            url_expires_in: Duration::from_secs(60),
            tls: None,
            plaintext: PlaintextPolicy::LoopbackOnly,
            read_buffer_size: 4 * 1024,
            write_buffer_size: 64 * 1024,
        }
    }
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("final_results_timeout", &self.final_results_timeout)
            .field("queue_capacity", &self.queue_capacity)
            .field("incoming_capacity", &self.incoming_capacity)
            .field("max_incoming_message", &self.max_incoming_message)
            .field("skew_retries", &self.skew_retries)
            .field("replay_messages", &self.replay_messages)
            .field("replay_bytes", &self.replay_bytes)
            .field("frame_signing", &self.frame_signing)
            .field("url_expires_in", &self.url_expires_in)
            .field("custom_tls", &self.tls.is_some())
            .field("plaintext", &self.plaintext)
            .field("read_buffer_size", &self.read_buffer_size)
            .field("write_buffer_size", &self.write_buffer_size)
            .finish()
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        impl SessionConfig {
            $(
                $(#[$doc])*
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$name = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`SessionConfig::connect_timeout`].
    connect_timeout: Duration;
    /// Sets [`SessionConfig::idle_timeout`].
    idle_timeout: Option<Duration>;
    /// Sets [`SessionConfig::write_timeout`].
    write_timeout: Duration;
    /// Sets [`SessionConfig::final_results_timeout`].
    final_results_timeout: Duration;
    /// Sets [`SessionConfig::queue_capacity`] (at least 1 is used).
    queue_capacity: usize;
    /// Sets [`SessionConfig::incoming_capacity`] (at least 1 is used).
    incoming_capacity: usize;
    /// Sets [`SessionConfig::max_incoming_message`].
    max_incoming_message: usize;
    /// Sets [`SessionConfig::skew_retries`].
    skew_retries: u32;
    /// Sets [`SessionConfig::replay_messages`].
    replay_messages: usize;
    /// Sets [`SessionConfig::replay_bytes`].
    replay_bytes: usize;
    /// Sets [`SessionConfig::frame_signing`].
    frame_signing: FrameSigning;
    /// Sets [`SessionConfig::url_expires_in`].
    url_expires_in: Duration;
    /// Sets [`SessionConfig::plaintext`].
    plaintext: PlaintextPolicy;
    /// Sets [`SessionConfig::read_buffer_size`].
    read_buffer_size: usize;
    /// Sets [`SessionConfig::write_buffer_size`].
    write_buffer_size: usize;
}

impl SessionConfig {
    /// Uses this rustls configuration for `wss://` instead of the default.
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }
}
