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

use bytes::Bytes;
use futures_core::Stream;
use futures_util::{SinkExt, StreamExt};
use url::Url;

use crate::services::client::{service_client, Service};
use crate::services::stream::{self, duplex_methods, session_accessors, Incoming, Outgoing};
use crate::services::ValidationError;
use crate::transport::{EncodedMessage, FrameSigning, Session, SessionConfig, SessionSink};

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

const SERVICE: Service = Service {
    host: "transcribestreaming",
    port: Some(PORT),
    signing_name: SIGNING_NAME,
    sdk_id: "Transcribe Streaming",
};

service_client! {
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
    pub struct TranscribeClient {
        service: SERVICE,
        /// A client for `region` (e.g. `us-east-1`) with a system clock, the regional endpoint and
        /// the default [`SessionConfig`] (unsigned frames).
        new: FrameSigning::Unsigned,
        /// The clock for the URL (and frames, when signed). Share one clock between clients so an
        /// offset learned by one stream serves the next.
        clock,
        connection: "stream",
        fips_host: "transcribestreaming-fips",
        module: "transcribe",
        env_id: "TRANSCRIBE_STREAMING",
    }
}

impl TranscribeClient {
    /// Session configuration (timeouts, queue sizes, TLS, frame signing).
    pub fn session_config(mut self, config: SessionConfig) -> Self {
        self.core.config = config;
        self
    }

    /// Frame signing: [`FrameSigning::Unsigned`] (the default, as AWS documents) or
    /// [`FrameSigning::Signed`].
    pub fn frame_signing(mut self, signing: FrameSigning) -> Self {
        self.core.config = self.core.config.frame_signing(signing);
        self
    }

    /// The unsigned URL a request connects to (endpoint, path and query), after validating
    /// the request. Useful to presign on a backend with [`crate::Presigner`].
    pub fn endpoint_url(&self, request: &StartRequest) -> Result<Url, ValidationError> {
        request.validate()?;
        self.core.url(request.path(), &request.query())
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
        let session = self.core.connect(url).await?;
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
        let closed = "the stream was already finished; start a new stream to send more audio";
        let (sink, state, incoming) =
            stream::split(session, session_id, closed, TranscribeEvent::from_message);
        TranscribeStream {
            sender: AudioSender {
                sink,
                state,
                kind,
                audio_sent: false,
                max_chunk,
                // The three `AudioEvent` headers, encoded once per stream (they are static, so
                // this cannot fail; if it did, audio would go the `Message` way).
                audio_template: EncodedMessage::from_message(&model::audio_event(Bytes::new()))
                    .ok(),
            },
            receiver: EventReceiver { incoming },
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

    duplex_methods!(AudioSender, EventReceiver, TranscribeEvent, TranscribeError);

    session_accessors!(sender: session_id, stats, offsets_learned, clock);
}

/// The sending half of a [`TranscribeStream`].
pub struct AudioSender {
    sink: SessionSink,
    state: Outgoing,
    kind: StreamKind,
    audio_sent: bool,
    /// For PCM: the bytes of one second of audio, the largest chunk Transcribe takes.
    max_chunk: Option<usize>,
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
        self.state.check_open()?;
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
        let refusal = if self.kind != StreamKind::CallAnalytics {
            Some("only Call Analytics streams take a configuration event")
        } else if self.audio_sent {
            Some("must be the first event of the stream; send it before any audio")
        } else {
            None
        };
        if let Some(reason) = refusal {
            return Err(ValidationError::new("ConfigurationEvent", reason).into());
        }
        configuration.validate()?;
        self.state.check_open()?;
        self.sink.send(configuration.to_message()).await?;
        Ok(())
    }

    /// Ends the audio: sends the empty `AudioEvent` Transcribe documents as the end marker,
    /// then ends the session (with signed frames, the signed empty end frame follows). The
    /// service then delivers the last results and closes. Calling it again does nothing.
    pub async fn finish(&mut self) -> Result<(), TranscribeError> {
        if !self.state.end() {
            return Ok(());
        }
        // Both at once: the server may close as soon as it sees the empty `AudioEvent`.
        self.sink
            .send_then_end(model::audio_event(Bytes::new()))
            .await?;
        Ok(())
    }

    /// Closes the connection at once with a WebSocket close `code` (1000 for normal),
    /// abandoning results still in flight.
    pub async fn disconnect(&mut self, code: u16) -> Result<(), TranscribeError> {
        self.state.end();
        self.sink.disconnect(code).await?;
        Ok(())
    }

    session_accessors!(state: is_finished, session_id, clock);

    session_accessors!(sink: stats, offsets_learned);
}

impl fmt::Debug for AudioSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AudioSender")
            .field("kind", &self.kind)
            .field("session_id", &self.session_id())
            .field("finished", &self.is_finished())
            .field("stats", &self.stats())
            .finish()
    }
}

/// The receiving half of a [`TranscribeStream`]; also a [`Stream`] of events.
pub struct EventReceiver {
    incoming: Incoming<TranscribeEvent, TranscribeError>,
}

impl EventReceiver {
    /// The next event, `None` once the server has closed the connection. Exceptions arrive as
    /// typed errors; the stream normally ends right after one.
    pub async fn next_event(&mut self) -> Option<Result<TranscribeEvent, TranscribeError>> {
        self.next().await
    }

    session_accessors!(incoming: session_id, stats, offsets_learned);
}

impl Stream for EventReceiver {
    type Item = Result<TranscribeEvent, TranscribeError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.incoming.poll_next_unpin(cx)
    }
}

impl fmt::Debug for EventReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.incoming.debug_struct(f, "EventReceiver").finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ErrorKind;

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
}
