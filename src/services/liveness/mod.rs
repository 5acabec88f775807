//! Rekognition Face Liveness over WebSocket (`StartFaceLivenessSession`).
//!
//! The session id comes from `CreateFaceLivenessSession`, called by your backend with the
//! ordinary AWS SDK. [`LivenessClient::start`] validates a [`StartFaceLivenessSession`],
//! presigns the URL when it connects, and returns a [`LivenessStream`]. Then:
//!
//! 1. Send video with [`send_video`](LivenessSender::send_video): each chunk (e.g. a one-second
//!    WebM slice from the recorder) becomes a `VideoEvent` whose `TimestampMillis` is read from
//!    the **session clock**, i.e. corrected for this host's clock skew, the same time the
//!    frame's signature carries.
//! 2. After the first event the server answers with a `ServerSessionInformationEvent`: the oval
//!    to fit and, for the light challenge, the colours to show.
//! 3. Report what was shown and seen with
//!    [`send_client_information`](LivenessSender::send_client_information)
//!    (a [`ClientChallenge`] of either type).
//! 4. [`finish`](LivenessSender::finish): a `VideoEvent` with an empty chunk (the end marker the
//!    service expects), then the signed empty end frame.
//! 5. The server sends a `DisconnectionEvent`; [`next_event`](LivenessReceiver::next_event)
//!    then closes the connection with code 1000 and the stream ends.
//!
//! * Endpoint: `wss://streaming-rekognition.<region>.amazonaws.com` (FIPS:
//!   `streaming-rekognition-fips.<region>…`), or any URL given to [`LivenessClient::endpoint`].
//! * Signing name `rekognition`. Every frame is signed (chained SigV4 event signatures): the
//!   service requires it, so the client always sets [`FrameSigning::Signed`].
//!
//! # Example
//!
//! ```no_run
//! use aws_credential_types::Credentials;
//! use sigv4_ws::services::liveness::{
//!     ClientChallenge, FaceMovementClientChallenge, LivenessClient, LivenessEvent, ServerChallenge,
//!     StartFaceLivenessSession, DEFAULT_CHALLENGE_VERSIONS,
//! };
//!
//! # async fn run(session_id: String, recording: Vec<Vec<u8>>) -> Result<(), Box<dyn std::error::Error>> {
//! let client = LivenessClient::new("us-east-1")
//!     .credentials(Credentials::new("AKIDEXAMPLE", "secret", None, None, "example"));
//! let request = StartFaceLivenessSession::new(session_id, 640, 480, DEFAULT_CHALLENGE_VERSIONS);
//! let (mut video, mut events) = client.start(request).await?.split();
//!
//! let started = video.now_millis(); // skew-corrected epoch milliseconds
//! let mut slices = recording.into_iter();
//! if let Some(first) = slices.next() {
//!     video.send_video(first).await?; // the server answers the first event
//! }
//! while let Some(event) = events.next_event().await {
//!     match event? {
//!         LivenessEvent::ServerSessionInformation(info) => {
//!             if let Some(ServerChallenge::FaceMovement(challenge)) = info.session_information.challenge {
//!                 println!("fit the face in the oval {:?}", challenge.oval_parameters);
//!             }
//!             for slice in slices.by_ref() {
//!                 video.send_video(slice).await?;
//!             }
//!             let record = FaceMovementClientChallenge {
//!                 challenge_id: "challenge-id-from-your-ui".to_owned(),
//!                 video_start_timestamp: Some(started),
//!                 video_end_timestamp: Some(video.now_millis()),
//!                 ..Default::default()
//!             };
//!             video.send_client_information(ClientChallenge::FaceMovement(record)).await?;
//!             video.finish().await?; // empty VideoChunk, then the signed end frame
//!         }
//!         LivenessEvent::Disconnection(_) => println!("done; fetch the result from your backend"),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The same steps against the local emulator (feature `emulator`; this example runs as a test):
//!
//! ```
//! # #[cfg(feature = "emulator")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use sigv4_ws::emulator::{Emulator, EmulatorConfig};
//! use sigv4_ws::services::liveness::{
//!     ClientChallenge, FaceMovementAndLightClientChallenge, LivenessClient, LivenessEvent,
//!     StartFaceLivenessSession, DEFAULT_CHALLENGE_VERSIONS,
//! };
//!
//! let emulator = Emulator::start(EmulatorConfig::default().close_grace(Duration::from_millis(100))).await?;
//! let client = LivenessClient::new("us-east-1")
//!     .endpoint(emulator.endpoint())
//!     .credentials(emulator.credentials());
//! let session_id = "5b0a4a5e-2f0e-4d67-9c3a-6a9e0b1f2c3d";
//! let mut stream = client
//!     .start(StartFaceLivenessSession::new(session_id, 640, 480, DEFAULT_CHALLENGE_VERSIONS))
//!     .await?;
//!
//! let started = stream.now_millis();
//! stream.send_video(vec![0x1a, 0x45, 0xdf, 0xa3]).await?;
//! let Some(Ok(LivenessEvent::ServerSessionInformation(info))) = stream.next_event().await else {
//!     panic!("the server answers the first event with the challenge");
//! };
//! assert!(info.session_information.challenge.is_some());
//!
//! let record = FaceMovementAndLightClientChallenge {
//!     challenge_id: "1c5e1f9a-3c2d-4e6f-8a7b-9c0d1e2f3a4b".to_owned(), // a UUID, as the model requires
//!     video_start_timestamp: Some(started),
//!     video_end_timestamp: Some(stream.now_millis()),
//!     ..Default::default()
//! };
//! stream.send_client_information(ClientChallenge::FaceMovementAndLight(record)).await?;
//! stream.finish().await?;
//! assert!(matches!(stream.next_event().await, Some(Ok(LivenessEvent::Disconnection(_)))));
//! assert!(stream.next_event().await.is_none()); // closed with 1000
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "emulator"))]
//! # fn main() {}
//! ```

pub mod error;
pub mod model;
pub mod request;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Mutex;
use url::Url;

use crate::services::client::{service_client, Service};
use crate::services::stream::{self, duplex_methods, session_accessors, Incoming, Outgoing};
use crate::services::ValidationError;
use crate::transport::{FrameSigning, Session, SessionConfig, SessionSink};
use model::epoch_millis;

pub use error::LivenessError;
pub use model::{
    BoundingBox, ChallengeConfig, ChallengeEvent, ChallengeType, ClientChallenge,
    ClientSessionInformationEvent, ColorDisplayed, ColorSequence, DisconnectionEvent,
    FaceMovementAndLightClientChallenge, FaceMovementAndLightServerChallenge,
    FaceMovementClientChallenge, FaceMovementServerChallenge, FreshnessColor, InitialFace,
    LightChallengeType, LivenessEvent, OvalParameters, ServerChallenge,
    ServerSessionInformationEvent, SessionInformation, TargetFace, VideoEvent,
};
pub use request::{StartFaceLivenessSession, DEFAULT_CHALLENGE_VERSIONS, PATH};

/// The SigV4 signing name of Rekognition Streaming.
pub const SIGNING_NAME: &str = "rekognition";

/// The WebSocket close code for a normal end, sent after the `DisconnectionEvent`.
pub const NORMAL_CLOSE: u16 = 1000;

const SERVICE: Service = Service {
    host: "streaming-rekognition",
    port: None,
    signing_name: SIGNING_NAME,
    sdk_id: "RekognitionStreaming",
};

service_client! {
    /// Starts Face Liveness sessions. Cheap to clone.
    ///
    /// ```
    /// use sigv4_ws::services::liveness::{LivenessClient, StartFaceLivenessSession, DEFAULT_CHALLENGE_VERSIONS};
    ///
    /// let client = LivenessClient::new("eu-west-1");
    /// let request = StartFaceLivenessSession::new("3f3b1f8a-5d9f-4e43-a9a3-0a4e3f1f6a11", 640, 480, DEFAULT_CHALLENGE_VERSIONS);
    /// let url = client.endpoint_url(&request)?;
    /// assert_eq!(url.host_str(), Some("streaming-rekognition.eu-west-1.amazonaws.com"));
    /// assert_eq!(url.path(), "/start-face-liveness-session-websocket");
    /// # Ok::<(), sigv4_ws::services::ValidationError>(())
    /// ```
    pub struct LivenessClient {
        service: SERVICE,
        /// A client for `region` with a system clock, the regional endpoint and the default
        /// [`SessionConfig`] with signed frames.
        new: FrameSigning::Signed,
        /// The clock for the URL, every frame's signature and the `TimestampMillis` of video.
        clock,
        connection: "session",
        fips_host: "streaming-rekognition-fips",
        module: "liveness",
        env_id: "REKOGNITIONSTREAMING",
    }
}

impl LivenessClient {
    /// Session configuration. Its frame signing is always set to [`FrameSigning::Signed`],
    /// which Face Liveness requires.
    pub fn session_config(mut self, config: SessionConfig) -> Self {
        self.core.config = config.frame_signing(FrameSigning::Signed);
        self
    }

    /// The unsigned URL a request connects to, after validating the request.
    pub fn endpoint_url(&self, request: &StartFaceLivenessSession) -> Result<Url, ValidationError> {
        request.validate()?;
        self.core.url(PATH, &request.query())
    }

    /// Validates `request` and connects.
    pub async fn start(
        &self,
        request: StartFaceLivenessSession,
    ) -> Result<LivenessStream, LivenessError> {
        let url = self.endpoint_url(&request)?;
        // Frames are signed: `new` and `session_config` see to it.
        let session = self.core.connect(url).await?;
        tracing::debug!(session_id = %request.session_id(), "face liveness session started");
        Ok(LivenessStream::new(
            session,
            request.session_id().to_owned(),
        ))
    }
}

/// A running Face Liveness session. [`split`](Self::split) it to send video while reading
/// events.
#[derive(Debug)]
pub struct LivenessStream {
    sender: LivenessSender,
    receiver: LivenessReceiver,
}

impl LivenessStream {
    fn new(session: Session, session_id: String) -> Self {
        let closed = "the session was already finished; start a new session to send more";
        let (sink, state, incoming) =
            stream::split(session, session_id, closed, LivenessEvent::from_message);
        // The receiver closes the connection when the server says it is done.
        let sink = Arc::new(Mutex::new(sink));
        LivenessStream {
            sender: LivenessSender {
                sink: sink.clone(),
                state,
                video_bytes: 0,
            },
            receiver: LivenessReceiver { incoming, sink },
        }
    }

    /// Sends a chunk of video stamped with the session clock (see [`LivenessSender::send_video`]).
    pub async fn send_video(&mut self, chunk: impl Into<Bytes>) -> Result<(), LivenessError> {
        self.sender.send_video(chunk).await
    }

    /// The session clock's time in epoch milliseconds (skew-corrected): use it for the
    /// timestamps of a [`ClientChallenge`].
    pub fn now_millis(&self) -> i64 {
        self.sender.now_millis()
    }

    /// Sends the client's challenge record (see [`LivenessSender::send_client_information`]).
    pub async fn send_client_information(
        &mut self,
        challenge: ClientChallenge,
    ) -> Result<(), LivenessError> {
        self.sender.send_client_information(challenge).await
    }

    duplex_methods!(
        LivenessSender,
        LivenessReceiver,
        LivenessEvent,
        LivenessError
    );

    session_accessors!(sender: session_id, clock);

    session_accessors!(receiver: stats, offsets_learned);
}

/// The sending half of a [`LivenessStream`].
pub struct LivenessSender {
    sink: Arc<Mutex<SessionSink>>,
    state: Outgoing,
    video_bytes: u64,
}

impl LivenessSender {
    /// Sends `chunk` as a `VideoEvent` stamped with the session clock's (skew-corrected) time.
    /// An empty chunk is refused: it is the end marker; use [`finish`](Self::finish).
    pub async fn send_video(&mut self, chunk: impl Into<Bytes>) -> Result<(), LivenessError> {
        let event = VideoEvent::now(chunk, self.state.clock());
        self.send_video_event(event).await
    }

    /// Sends `chunk` as a `VideoEvent` with an explicit `timestamp_millis` (epoch ms, which must
    /// be on the skew-corrected clock, e.g. from [`now_millis`](Self::now_millis)).
    pub async fn send_video_at(
        &mut self,
        chunk: impl Into<Bytes>,
        timestamp_millis: i64,
    ) -> Result<(), LivenessError> {
        self.send_video_event(VideoEvent::new(chunk, timestamp_millis))
            .await
    }

    async fn send_video_event(&mut self, event: VideoEvent) -> Result<(), LivenessError> {
        if event.video_chunk.is_empty() {
            return Err(ValidationError::new(
                "VideoChunk",
                "an empty chunk is the end-of-video marker; call finish() to end the session",
            )
            .into());
        }
        event.validate()?;
        self.state.check_open()?;
        let len = event.video_chunk.len() as u64;
        self.sink.lock().await.send(event.to_message()).await?;
        self.video_bytes += len;
        Ok(())
    }

    /// Sends a `ClientSessionInformationEvent` with the client's challenge record.
    pub async fn send_client_information(
        &mut self,
        challenge: ClientChallenge,
    ) -> Result<(), LivenessError> {
        let message = ClientSessionInformationEvent::new(challenge).to_message()?;
        self.state.check_open()?;
        self.sink.lock().await.send(message).await?;
        Ok(())
    }

    /// Ends the video: a `VideoEvent` with an empty `VideoChunk`, then the signed empty end
    /// frame. The server then answers with a `DisconnectionEvent`. Calling it again does nothing.
    pub async fn finish(&mut self) -> Result<(), LivenessError> {
        if !self.state.end() {
            return Ok(());
        }
        let end_marker = VideoEvent::now(Bytes::new(), self.state.clock());
        let mut sink = self.sink.lock().await;
        sink.send(end_marker.to_message()).await?;
        sink.end().await?;
        Ok(())
    }

    /// Closes the connection at once with a WebSocket close `code` (1000 normal; Amplify uses
    /// 4000–4007 for client-side failures).
    pub async fn disconnect(&mut self, code: u16) -> Result<(), LivenessError> {
        self.state.end();
        self.sink.lock().await.disconnect(code).await?;
        Ok(())
    }

    /// The session clock's time in epoch milliseconds (skew-corrected).
    pub fn now_millis(&self) -> i64 {
        epoch_millis(self.state.clock())
    }

    /// Bytes of video sent so far (the service accepts at most 10 MB per session).
    pub fn video_bytes_sent(&self) -> u64 {
        self.video_bytes
    }

    session_accessors!(state: is_finished, session_id, clock);
}

impl fmt::Debug for LivenessSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LivenessSender")
            .field("session_id", &self.session_id())
            .field("finished", &self.is_finished())
            .field("video_bytes", &self.video_bytes)
            .finish_non_exhaustive()
    }
}

/// The receiving half of a [`LivenessStream`].
pub struct LivenessReceiver {
    incoming: Incoming<LivenessEvent, LivenessError>,
    sink: Arc<Mutex<SessionSink>>,
}

impl LivenessReceiver {
    /// The next event, `None` once the connection is closed. On a `DisconnectionEvent` the
    /// connection is closed with code 1000 (as Amplify does) before the event is returned. If
    /// after the end of the stream the server neither closes nor sends a `DisconnectionEvent`
    /// within `final_results_timeout`, the transport closes and this yields that timeout
    /// ([`ErrorKind::FinalResultsTimeout`](crate::transport::ErrorKind::FinalResultsTimeout)).
    pub async fn next_event(&mut self) -> Option<Result<LivenessEvent, LivenessError>> {
        let event = self.incoming.next().await?;
        if let Ok(LivenessEvent::Disconnection(_)) = &event {
            if let Err(e) = self.sink.lock().await.disconnect(NORMAL_CLOSE).await {
                tracing::debug!(error = %e, "could not send the close after DisconnectionEvent (stream already ended)");
            }
        }
        Some(event)
    }

    session_accessors!(incoming: session_id, stats, offsets_learned);
}

impl fmt::Debug for LivenessReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.incoming
            .debug_struct(f, "LivenessReceiver")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::proto::clock::{Clock, ManualTime};

    const ID: &str = "3f3b1f8a-5d9f-4e43-a9a3-0a4e3f1f6a11";

    fn request() -> StartFaceLivenessSession {
        StartFaceLivenessSession::new(ID, 640, 480, DEFAULT_CHALLENGE_VERSIONS)
    }

    #[test]
    fn regional_fips_and_custom_endpoints() {
        let url = LivenessClient::new("us-east-1")
            .endpoint_url(&request())
            .unwrap();
        assert_eq!(url.scheme(), "wss");
        assert_eq!(url.port(), None, "default port 443");
        assert_eq!(
            url.host_str(),
            Some("streaming-rekognition.us-east-1.amazonaws.com")
        );
        assert!(url.query().unwrap().starts_with("session-id=3f3b1f8a"));
        assert!(url.query().unwrap().contains(
            "challenge-versions=FaceMovementAndLightChallenge_1.0.0%2CFaceMovementChallenge_1.0.0"
        ));
        let fips = LivenessClient::new("us-west-2")
            .fips(true)
            .endpoint_url(&request())
            .unwrap();
        assert_eq!(
            fips.host_str(),
            Some("streaming-rekognition-fips.us-west-2.amazonaws.com")
        );
        let local = LivenessClient::new("us-east-1")
            .endpoint(Url::parse("http://127.0.0.1:7000/").unwrap())
            .endpoint_url(&request())
            .unwrap();
        assert_eq!(local.path(), "/start-face-liveness-session-websocket");
        assert_eq!(local.port(), Some(7000));
    }

    #[test]
    fn frame_signing_is_always_signed() {
        let client = LivenessClient::new("us-east-1")
            .session_config(SessionConfig::default().frame_signing(FrameSigning::Unsigned));
        assert_eq!(client.core.config.frame_signing, FrameSigning::Signed);
        assert_eq!(
            LivenessClient::new("us-east-1").core.config.frame_signing,
            FrameSigning::Signed
        );
    }

    #[tokio::test]
    async fn invalid_requests_fail_before_connecting() {
        let client =
            LivenessClient::new("us-east-1").endpoint(Url::parse("http://127.0.0.1:9").unwrap());
        let error = client
            .start(StartFaceLivenessSession::new(
                "nope",
                640,
                480,
                DEFAULT_CHALLENGE_VERSIONS,
            ))
            .await
            .unwrap_err();
        assert_eq!(
            error.validation_error().map(|e| e.field),
            Some("session-id")
        );
        let region = LivenessClient::new("us_east_1")
            .start(request())
            .await
            .unwrap_err();
        assert_eq!(region.validation_error().map(|e| e.field), Some("region"));
    }

    #[test]
    fn epoch_millis_reads_the_corrected_clock() {
        let time = ManualTime::new(UNIX_EPOCH + Duration::from_millis(1_724_194_903_250));
        let clock = Clock::new(time);
        assert_eq!(epoch_millis(&clock), 1_724_194_903_250);
        clock.set_offset_millis(-3_600_000);
        assert_eq!(epoch_millis(&clock), 1_724_191_303_250);
        let before_1970 = Clock::new(ManualTime::new(UNIX_EPOCH));
        before_1970.set_offset_millis(-1);
        assert_eq!(epoch_millis(&before_1970), 0);
    }
}
