//! Amazon Transcribe Streaming over WebSocket: standard, medical and Call Analytics.
//!
//! [`TranscribeClient::start`] validates a typed start request ([`StartStreamTranscription`],
//! [`StartMedicalStreamTranscription`] or [`StartCallAnalyticsStreamTranscription`]) before
//! anything is dialled, generates a `session-id` when none was given (a v4 UUID, as the
//! JavaScript SDK does), presigns the URL at the moment it connects, and returns a
//! [`TranscribeStream`]: send audio with [`send_audio`](TranscribeStream::send_audio), read
//! typed [`TranscribeEvent`]s with [`next_event`](TranscribeStream::next_event), and end with
//! [`finish`](TranscribeStream::finish), which sends the documented end marker (an empty
//! `AudioEvent`) and ends the session; the remaining results then arrive until the server
//! closes the connection.
//!
//! * Endpoint: `wss://transcribestreaming.<region>.amazonaws.com:8443` (FIPS:
//!   `transcribestreaming-fips.<region>…`; China regions use `amazonaws.com.cn`), or any URL
//!   given to [`TranscribeClient::endpoint`] (a proxy, or the local emulator).
//! * Signing name `transcribe`. Frames are sent **unsigned** by default, as AWS documents for
//!   WebSockets and as the JavaScript browser client does; [`TranscribeClient::frame_signing`]
//!   switches to signed envelopes.
//! * Audio must match the request: PCM is signed 16-bit little-endian without a header. Send
//!   chunks of at most one second (about 100 ms is a good size) at real-time pace; see
//!   [`crate::services::pacing`] for chunking, pacing and keep-alive silence.
//!
//! # Example
//!
//! Stream a raw PCM file at real-time pace from one task while another prints the final
//! transcripts:
//!
//! ```no_run
//! use std::time::Duration;
//! use aws_credential_types::Credentials;
//! use sigv4_ws::services::pacing::{pcm_chunks, PcmFormat, RealTimePacer};
//! use sigv4_ws::services::transcribe::{
//!     MediaEncoding, StartStreamTranscription, TranscribeClient, TranscribeEvent,
//! };
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = TranscribeClient::new("us-east-1")
//!     .credentials(Credentials::new("AKIDEXAMPLE", "secret", None, None, "example"));
//! let request = StartStreamTranscription::new(MediaEncoding::Pcm, 16_000).language_code("en-US");
//! let stream = client.start(request).await?; // validated, presigned and connected
//! println!("session {}", stream.session_id());
//! let (mut audio, mut events) = stream.split();
//!
//! let pcm = std::fs::read("speech-16k-mono.raw")?;
//! let sender = tokio::spawn(async move {
//!     let format = PcmFormat::new(16_000, 1);
//!     let mut pacer = RealTimePacer::new();
//!     for chunk in pcm_chunks(pcm.into(), format, Duration::from_millis(100)) {
//!         pacer.pace(format.duration_of(chunk.len())).await;
//!         audio.send_audio(chunk).await?;
//!     }
//!     audio.finish().await // empty AudioEvent, then the end of the stream
//! });
//!
//! while let Some(event) = events.next_event().await {
//!     match event? {
//!         TranscribeEvent::Transcript(t) => {
//!             for text in t.final_transcripts() {
//!                 println!("{text}");
//!             }
//!         }
//!         _ => {}
//!     }
//! }
//! sender.await??;
//! # Ok(())
//! # }
//! ```
//!
//! Without `split`, one task can alternate, as here against the local emulator (feature
//! `emulator`; this example runs as a test): send, finish, then read until the server closes
//! (the session buffers a few dozen incoming events meanwhile).
//!
//! ```
//! # #[cfg(feature = "emulator")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use sigv4_ws::emulator::{Emulator, EmulatorConfig};
//! use sigv4_ws::services::pacing::{pcm_chunks, PcmFormat};
//! use sigv4_ws::services::transcribe::{
//!     MediaEncoding, StartStreamTranscription, TranscribeClient, TranscribeEvent,
//! };
//!
//! let emulator = Emulator::start(EmulatorConfig::default()).await?;
//! let client = TranscribeClient::new("us-east-1")
//!     .endpoint(emulator.endpoint()) // http://127.0.0.1:PORT
//!     .credentials(emulator.credentials());
//! let request = StartStreamTranscription::new(MediaEncoding::Pcm, 16_000).language_code("en-US");
//! let mut stream = client.start(request).await?;
//!
//! let format = PcmFormat::new(16_000, 1);
//! for chunk in pcm_chunks(format.silence(Duration::from_secs(2)), format, Duration::from_millis(100)) {
//!     stream.send_audio(chunk).await?; // a short clip: no pacing needed
//! }
//! stream.finish().await?;
//!
//! let mut finals = Vec::new();
//! while let Some(event) = stream.next_event().await {
//!     if let TranscribeEvent::Transcript(t) = event? {
//!         finals.extend(t.final_transcripts().map(str::to_owned));
//!     }
//! }
//! assert!(!finals.is_empty());
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "emulator"))]
//! # fn main() {}
//! ```

pub mod continuous;
pub mod error;
pub mod model;
pub mod request;

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use bytes::Bytes;
use futures_core::Stream;
use futures_util::{SinkExt, StreamExt};
use url::Url;

use crate::proto::clock::Clock;
use crate::services::{check_region, dns_suffix, endpoint_url, ValidationError};
use crate::transport::{
    ConnectRequest, Connector, EncodedMessage, ErrorKind, FrameSigning, OffsetLearned, Session,
    SessionConfig, SessionSink, SessionStats, SessionStream,
};

pub use continuous::{ContinuousEvent, ContinuousStream, ReconnectPolicy};
pub use error::TranscribeError;
pub use model::{
    ChannelDefinition, ConfigurationEvent, ParticipantRole, PostCallAnalyticsSettings,
    TranscribeEvent, TranscriptEvent,
};
pub use request::{
    ContentIdentificationType, ContentRedactionType, MediaEncoding,
    MedicalContentIdentificationType, MedicalType, PartialResultsStability, Specialty,
    StartCallAnalyticsStreamTranscription, StartMedicalStreamTranscription, StartRequest,
    StartStreamTranscription, StreamKind, TranscriptFormat, VocabularyFilterMethod,
};

/// The SigV4 signing name of Transcribe Streaming.
pub const SIGNING_NAME: &str = "transcribe";
/// The port of Transcribe's WebSocket endpoint.
pub const PORT: u16 = 8443;

/// Starts Transcribe streams. Cheap to clone; configure once, start many streams.
///
/// ```
/// use aws_credential_types::Credentials;
/// use sigv4_ws::services::transcribe::{MediaEncoding, StartStreamTranscription, TranscribeClient};
///
/// let client = TranscribeClient::new("eu-west-1")
///     .credentials(Credentials::new("AKIDEXAMPLE", "secret", None, None, "example"));
/// let request = StartStreamTranscription::new(MediaEncoding::Pcm, 16_000).language_code("en-GB");
/// let url = client.endpoint_url(&request.into())?;
/// assert_eq!(
///     url.as_str(),
///     "wss://transcribestreaming.eu-west-1.amazonaws.com:8443/stream-transcription-websocket?language-code=en-GB&sample-rate=16000&media-encoding=pcm",
/// );
/// # Ok::<(), sigv4_ws::services::ValidationError>(())
/// ```
#[derive(Clone)]
pub struct TranscribeClient {
    region: String,
    credentials: Option<SharedCredentialsProvider>,
    clock: Clock,
    endpoint: Option<Url>,
    fips: bool,
    config: SessionConfig,
}

impl TranscribeClient {
    /// A client for `region` (e.g. `us-east-1`) with a system clock, the regional endpoint and
    /// the default [`SessionConfig`] (unsigned frames).
    pub fn new(region: impl Into<String>) -> Self {
        TranscribeClient {
            region: region.into(),
            credentials: None,
            clock: Clock::system(),
            endpoint: None,
            fips: false,
            config: SessionConfig::default().frame_signing(FrameSigning::Unsigned),
        }
    }

    /// The credentials provider (static [`Credentials`](aws_credential_types::Credentials), or
    /// aws-config's chain). Credentials are resolved when a stream starts and pinned for it.
    pub fn credentials(mut self, provider: impl ProvideCredentials + 'static) -> Self {
        self.credentials = Some(SharedCredentialsProvider::new(provider));
        self
    }

    /// The clock for the URL (and frames, when signed). Share one clock between clients so an
    /// offset learned by one stream serves the next.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A custom endpoint instead of the regional one: the service path is appended to its
    /// path, e.g. `http://127.0.0.1:PORT` for the local emulator or a proxy's URL.
    pub fn endpoint(mut self, url: Url) -> Self {
        self.endpoint = Some(url);
        self
    }

    /// Uses the FIPS endpoint `transcribestreaming-fips.<region>…` (ignored with a custom endpoint).
    pub fn fips(mut self, enabled: bool) -> Self {
        self.fips = enabled;
        self
    }

    /// Session configuration (timeouts, queue sizes, TLS, frame signing).
    pub fn session_config(mut self, config: SessionConfig) -> Self {
        self.config = config;
        self
    }

    /// Frame signing: [`FrameSigning::Unsigned`] (the default, as AWS documents) or
    /// [`FrameSigning::Signed`].
    pub fn frame_signing(mut self, signing: FrameSigning) -> Self {
        self.config = self.config.frame_signing(signing);
        self
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The clock.
    pub fn get_clock(&self) -> &Clock {
        &self.clock
    }

    /// The unsigned URL a request connects to (endpoint, path and query), after validating
    /// the request. Useful to presign on a backend with [`crate::Presigner`].
    pub fn endpoint_url(&self, request: &StartRequest) -> Result<Url, ValidationError> {
        request.validate()?;
        check_region(&self.region)?;
        let base = match &self.endpoint {
            Some(url) => url.clone(),
            None => {
                let host = if self.fips {
                    format!(
                        "transcribestreaming-fips.{}.{}",
                        self.region,
                        dns_suffix(&self.region)
                    )
                } else {
                    format!(
                        "transcribestreaming.{}.{}",
                        self.region,
                        dns_suffix(&self.region)
                    )
                };
                Url::parse(&format!("wss://{host}:{PORT}")).map_err(|e| {
                    ValidationError::new("region", format!("cannot form the endpoint host: {e}"))
                })?
            }
        };
        endpoint_url(&base, request.path(), &request.query())
    }

    /// Validates `request`, connects, and (for Call Analytics with a configuration) sends the
    /// `ConfigurationEvent` first.
    pub async fn start(
        &self,
        request: impl Into<StartRequest>,
    ) -> Result<TranscribeStream, TranscribeError> {
        let mut request = request.into();
        request.validate()?;
        let session_id = request
            .ensure_session_id(|| uuid::Uuid::new_v4().to_string())
            .to_owned();
        let url = self.endpoint_url(&request)?;
        let mut connect =
            ConnectRequest::new(url, self.region.clone(), SIGNING_NAME).clock(self.clock.clone());
        if let Some(provider) = &self.credentials {
            connect = connect.credentials(provider.clone());
        }
        let session = Connector::new(self.config.clone()).connect(connect).await?;
        tracing::debug!(session_id = %session_id, kind = ?request.kind(), "transcribe stream started");
        let mut stream =
            TranscribeStream::new(session, request.kind(), session_id, max_chunk_len(&request));
        if let Some(configuration) = request.configuration() {
            stream.send_configuration(configuration.clone()).await?;
        }
        Ok(stream)
    }
}

/// For PCM, the bytes of one second of audio: the largest `AudioChunk` Transcribe accepts.
fn max_chunk_len(request: &StartRequest) -> Option<usize> {
    if request.media_encoding() != MediaEncoding::Pcm {
        return None;
    }
    let channels = match request.kind() {
        StreamKind::CallAnalytics => 2,
        _ => request.channels(),
    };
    usize::try_from(u64::from(request.sample_rate()) * u64::from(channels) * 2).ok()
}

impl fmt::Debug for TranscribeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TranscribeClient")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint.as_ref().map(Url::as_str))
            .field("fips", &self.fips)
            .field("has_credentials", &self.credentials.is_some())
            .field("clock", &self.clock)
            .field("config", &self.config)
            .finish()
    }
}

/// A running Transcribe stream. [`split`](Self::split) it to send and receive from separate tasks.
#[derive(Debug)]
pub struct TranscribeStream {
    sender: AudioSender,
    receiver: EventReceiver,
}

impl TranscribeStream {
    fn new(
        session: Session,
        kind: StreamKind,
        session_id: String,
        max_chunk: Option<usize>,
    ) -> Self {
        let clock = session.clock().clone();
        let (sink, stream) = session.split();
        TranscribeStream {
            sender: AudioSender {
                sink,
                kind,
                session_id: session_id.clone(),
                clock,
                audio_sent: false,
                max_chunk,
                finished: false,
                // The three `AudioEvent` headers, encoded once per stream (they are static, so
                // this cannot fail; if it did, audio would go the `Message` way).
                audio_template: EncodedMessage::from_message(&model::audio_event(Bytes::new()))
                    .ok(),
            },
            receiver: EventReceiver {
                stream,
                session_id,
                ended: false,
            },
        }
    }

    /// Sends one chunk of audio (see [`AudioSender::send_audio`]).
    pub async fn send_audio(&mut self, chunk: impl Into<Bytes>) -> Result<(), TranscribeError> {
        self.sender.send_audio(chunk).await
    }

    /// Sends the Call Analytics configuration (see [`AudioSender::send_configuration`]).
    pub async fn send_configuration(
        &mut self,
        configuration: ConfigurationEvent,
    ) -> Result<(), TranscribeError> {
        self.sender.send_configuration(configuration).await
    }

    /// Ends the audio (see [`AudioSender::finish`]); then read the remaining events.
    pub async fn finish(&mut self) -> Result<(), TranscribeError> {
        self.sender.finish().await
    }

    /// The next event, `None` once the server has closed the connection.
    pub async fn next_event(&mut self) -> Option<Result<TranscribeEvent, TranscribeError>> {
        self.receiver.next_event().await
    }

    /// Splits into a sending and a receiving half.
    pub fn split(self) -> (AudioSender, EventReceiver) {
        (self.sender, self.receiver)
    }

    /// The session id sent to the service (generated when the request had none).
    pub fn session_id(&self) -> &str {
        &self.sender.session_id
    }

    /// Counters of the underlying session.
    pub fn stats(&self) -> SessionStats {
        self.sender.stats()
    }

    /// Clock corrections made while connecting or streaming.
    pub fn offsets_learned(&self) -> Vec<OffsetLearned> {
        self.sender.offsets_learned()
    }

    /// The session's (skew-corrected) clock.
    pub fn clock(&self) -> &Clock {
        &self.sender.clock
    }
}

/// The sending half of a [`TranscribeStream`].
pub struct AudioSender {
    sink: SessionSink,
    kind: StreamKind,
    session_id: String,
    clock: Clock,
    audio_sent: bool,
    /// For PCM: the bytes of one second of audio, the largest chunk Transcribe takes.
    max_chunk: Option<usize>,
    finished: bool,
    /// The `AudioEvent` header block: each chunk is sent as this plus the chunk, with no
    /// per-chunk header strings (see [`EncodedMessage`]).
    audio_template: Option<EncodedMessage>,
}

impl AudioSender {
    /// Sends one chunk of audio as an `AudioEvent`. Waits while the send queue is full
    /// (backpressure). An empty chunk is refused: it would end the stream; use
    /// [`finish`](Self::finish) for that. For PCM, a chunk of more than one second of audio
    /// (sample rate × channels × 2 bytes; channels from `number-of-channels`, 2 for Call
    /// Analytics, else 1) is refused too: Transcribe takes at most one second per event.
    pub async fn send_audio(&mut self, chunk: impl Into<Bytes>) -> Result<(), TranscribeError> {
        let chunk = chunk.into();
        if chunk.is_empty() {
            return Err(ValidationError::new(
                "AudioChunk",
                "an empty chunk is the end-of-stream marker; call finish() to end the stream",
            )
            .into());
        }
        if let Some(max) = self.max_chunk.filter(|max| chunk.len() > *max) {
            return Err(ValidationError::new(
                "AudioChunk",
                format!(
                    "{} bytes is more than one second of this PCM audio ({max} bytes); send smaller chunks, e.g. 100 ms with pacing::pcm_chunks",
                    chunk.len()
                ),
            )
            .into());
        }
        self.check_open()?;
        match &self.audio_template {
            Some(template) => self.sink.send_encoded(template.with_payload(chunk)).await?,
            None => self.sink.send(model::audio_event(chunk)).await?,
        }
        self.audio_sent = true;
        Ok(())
    }

    /// Sends a Call Analytics `ConfigurationEvent`. It must come before any audio, and is only
    /// accepted on Call Analytics streams. (A configuration given with the start request is
    /// sent automatically.)
    pub async fn send_configuration(
        &mut self,
        configuration: ConfigurationEvent,
    ) -> Result<(), TranscribeError> {
        if self.kind != StreamKind::CallAnalytics {
            return Err(ValidationError::new(
                "ConfigurationEvent",
                "only Call Analytics streams take a configuration event",
            )
            .into());
        }
        if self.audio_sent {
            return Err(ValidationError::new(
                "ConfigurationEvent",
                "must be the first event of the stream; send it before any audio",
            )
            .into());
        }
        configuration.validate()?;
        self.check_open()?;
        self.sink.send(configuration.to_message()).await?;
        Ok(())
    }

    /// Ends the audio: sends the empty `AudioEvent` Transcribe documents as the end marker,
    /// then ends the session (with signed frames, the signed empty end frame follows). The
    /// service then delivers the last results and closes. Calling it again does nothing.
    pub async fn finish(&mut self) -> Result<(), TranscribeError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        // Both at once: the server may close as soon as it sees the empty `AudioEvent`.
        self.sink
            .send_then_end(model::audio_event(Bytes::new()))
            .await?;
        Ok(())
    }

    /// Closes the connection at once with a WebSocket close `code` (1000 for normal),
    /// abandoning results still in flight.
    pub async fn disconnect(&mut self, code: u16) -> Result<(), TranscribeError> {
        self.finished = true;
        self.sink.disconnect(code).await?;
        Ok(())
    }

    /// Whether [`finish`](Self::finish) (or [`disconnect`](Self::disconnect)) was called.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The session id sent to the service.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Counters of the underlying session.
    pub fn stats(&self) -> SessionStats {
        self.sink.stats()
    }

    /// Clock corrections made while connecting or streaming.
    pub fn offsets_learned(&self) -> Vec<OffsetLearned> {
        self.sink.offsets_learned()
    }

    /// The session's (skew-corrected) clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    fn check_open(&self) -> Result<(), TranscribeError> {
        if self.finished {
            return Err(TranscribeError::Transport(crate::transport::Error::new(
                ErrorKind::Closed,
                "the stream was already finished; start a new stream to send more audio",
            )));
        }
        Ok(())
    }
}

impl fmt::Debug for AudioSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AudioSender")
            .field("kind", &self.kind)
            .field("session_id", &self.session_id)
            .field("finished", &self.finished)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The receiving half of a [`TranscribeStream`]; also a [`Stream`] of events.
pub struct EventReceiver {
    stream: SessionStream,
    session_id: String,
    ended: bool,
}

impl EventReceiver {
    /// The next event, `None` once the server has closed the connection. Exceptions arrive as
    /// typed errors; the stream normally ends right after one.
    pub async fn next_event(&mut self) -> Option<Result<TranscribeEvent, TranscribeError>> {
        self.next().await
    }

    /// The session id sent to the service.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Counters of the underlying session.
    pub fn stats(&self) -> SessionStats {
        self.stream.stats()
    }

    /// Clock corrections made while connecting or streaming.
    pub fn offsets_learned(&self) -> Vec<OffsetLearned> {
        self.stream.offsets_learned()
    }
}

impl Stream for EventReceiver {
    type Item = Result<TranscribeEvent, TranscribeError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.stream.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(message))) => Poll::Ready(Some(
                TranscribeEvent::from_message(&message).map_err(TranscribeError::from),
            )),
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
        }
    }
}

impl fmt::Debug for EventReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventReceiver")
            .field("session_id", &self.session_id)
            .field("ended", &self.ended)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> StartRequest {
        StartStreamTranscription::new(MediaEncoding::Pcm, 16_000)
            .language_code("en-US")
            .into()
    }

    #[test]
    fn pcm_chunks_are_limited_to_one_second() {
        assert_eq!(max_chunk_len(&request()), Some(32_000));
        let stereo: StartRequest = StartStreamTranscription::new(MediaEncoding::Pcm, 16_000)
            .language_code("en-US")
            .enable_channel_identification(true)
            .number_of_channels(2)
            .into();
        assert_eq!(max_chunk_len(&stereo), Some(64_000));
        let call: StartRequest =
            StartCallAnalyticsStreamTranscription::new(MediaEncoding::Pcm, 8_000)
                .language_code("en-US")
                .into();
        assert_eq!(max_chunk_len(&call), Some(32_000));
        let medical: StartRequest = StartMedicalStreamTranscription::new(
            "en-US",
            MediaEncoding::Pcm,
            48_000,
            Specialty::PrimaryCare,
            MedicalType::Dictation,
        )
        .into();
        assert_eq!(max_chunk_len(&medical), Some(96_000));
        let flac: StartRequest = StartStreamTranscription::new(MediaEncoding::Flac, 16_000)
            .language_code("en-US")
            .into();
        assert_eq!(max_chunk_len(&flac), None);
    }

    #[test]
    fn the_encoded_audio_path_writes_the_same_frame_as_the_message_path() {
        let template = EncodedMessage::from_message(&model::audio_event(Bytes::new())).unwrap();
        for chunk in [
            Bytes::from_static(b"\x01\x02\x03"),
            Bytes::from(vec![7u8; 3_200]),
        ] {
            let mut encoded = bytes::BytesMut::new();
            template
                .with_payload(chunk.clone())
                .encode_into(&mut encoded)
                .unwrap();
            assert_eq!(
                &encoded[..],
                &model::audio_event(chunk).encode().unwrap()[..]
            );
        }
    }

    #[test]
    fn regional_fips_and_custom_endpoints() {
        let client = TranscribeClient::new("us-west-2");
        assert_eq!(
            client.endpoint_url(&request()).unwrap().as_str(),
            "wss://transcribestreaming.us-west-2.amazonaws.com:8443/stream-transcription-websocket?language-code=en-US&sample-rate=16000&media-encoding=pcm"
        );
        let fips = TranscribeClient::new("us-gov-west-1").fips(true);
        assert_eq!(
            fips.endpoint_url(&request()).unwrap().host_str(),
            Some("transcribestreaming-fips.us-gov-west-1.amazonaws.com")
        );
        let china = TranscribeClient::new("cn-north-1");
        assert_eq!(
            china.endpoint_url(&request()).unwrap().host_str(),
            Some("transcribestreaming.cn-north-1.amazonaws.com.cn")
        );
        let local = TranscribeClient::new("us-east-1")
            .endpoint(Url::parse("http://127.0.0.1:4566").unwrap());
        let url = local.endpoint_url(&request()).unwrap();
        assert_eq!(
            url.as_str().split('?').next(),
            Some("http://127.0.0.1:4566/stream-transcription-websocket")
        );
    }

    #[test]
    fn endpoint_url_validates_request_and_region() {
        let bad: StartRequest = StartStreamTranscription::new(MediaEncoding::Pcm, 16_000).into();
        assert_eq!(
            TranscribeClient::new("us-east-1")
                .endpoint_url(&bad)
                .unwrap_err()
                .field,
            "language-code"
        );
        assert_eq!(
            TranscribeClient::new("evil.com/x")
                .endpoint_url(&request())
                .unwrap_err()
                .field,
            "region"
        );
    }

    #[tokio::test]
    async fn invalid_requests_fail_before_connecting() {
        // Port 9 on loopback: nothing listens; a connection attempt would give an I/O error.
        let client =
            TranscribeClient::new("us-east-1").endpoint(Url::parse("http://127.0.0.1:9").unwrap());
        let error = client
            .start(StartStreamTranscription::new(MediaEncoding::Pcm, 100).language_code("en-US"))
            .await
            .unwrap_err();
        assert_eq!(
            error.validation_error().map(|e| e.field),
            Some("sample-rate")
        );
    }

    #[tokio::test]
    async fn missing_credentials_are_a_transport_error() {
        let client =
            TranscribeClient::new("us-east-1").endpoint(Url::parse("http://127.0.0.1:9").unwrap());
        let error = client.start(request()).await.unwrap_err();
        assert_eq!(
            error.transport_error().map(|e| e.kind().clone()),
            Some(ErrorKind::Credentials)
        );
    }

    #[test]
    fn debug_hides_credentials() {
        let client =
            TranscribeClient::new("us-east-1").credentials(aws_credential_types::Credentials::new(
                "AKIDEXAMPLE",
                "very-secret-key",
                Some("session-token-value".into()),
                None,
                "test",
            ));
        let shown = format!("{client:?}");
        assert!(!shown.contains("very-secret-key"));
        assert!(!shown.contains("session-token-value"));
        assert!(shown.contains("has_credentials: true"));
    }
}
