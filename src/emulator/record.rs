//! What each connection did, kept for tests and for the CLI's summary.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::verify::{Diagnosis, Rejection, RejectionKind, Service};

/// Which emulated API a connection addressed (from its path).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EmulatedService {
    /// Transcribe `/stream-transcription-websocket`.
    Transcribe,
    /// Transcribe Medical `/medical-stream-transcription-websocket`.
    TranscribeMedical,
    /// Transcribe Call Analytics `/call-analytics-stream-transcription-websocket`.
    TranscribeCallAnalytics,
    /// Rekognition Face Liveness `/start-face-liveness-session-websocket`.
    Liveness,
}

impl EmulatedService {
    /// The API a WebSocket path belongs to.
    pub fn from_path(path: &str) -> Option<EmulatedService> {
        match path {
            "/stream-transcription-websocket" => Some(EmulatedService::Transcribe),
            "/medical-stream-transcription-websocket" => Some(EmulatedService::TranscribeMedical),
            "/call-analytics-stream-transcription-websocket" => {
                Some(EmulatedService::TranscribeCallAnalytics)
            }
            "/start-face-liveness-session-websocket" => Some(EmulatedService::Liveness),
            _ => None,
        }
    }

    /// The service family (decides the signing name and exception names).
    pub fn family(self) -> Service {
        match self {
            EmulatedService::Liveness => Service::Liveness,
            _ => Service::Transcribe,
        }
    }
}

/// How a rejection reached the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// As an exception frame after the 101 (and then a close).
    ExceptionFrame,
    /// As an HTTP error response to the upgrade, with this status.
    HttpStatus(u16),
    /// Not delivered: the client went away first.
    NotDelivered,
}

/// A refusal the emulator decided on (signature, time, or request validation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRejection {
    /// The verifier's kind, for signature and time rejections; `None` for request validation
    /// (missing or bad service parameters, bad events, the no-audio timeout).
    pub kind: Option<RejectionKind>,
    /// The AWS exception name sent.
    pub exception_type: String,
    /// The exception message sent.
    pub message: String,
    /// The verifier's diagnosis, for signature and time rejections.
    pub diagnosis: Option<Diagnosis>,
    /// How it was sent.
    pub delivery: Delivery,
}

impl RecordedRejection {
    pub(crate) fn from_rejection(rejection: &Rejection, delivery: Delivery) -> Self {
        RecordedRejection {
            kind: Some(rejection.kind()),
            exception_type: rejection.exception_type().to_owned(),
            message: rejection.message().to_owned(),
            diagnosis: Some(rejection.diagnosis().clone()),
            delivery,
        }
    }

    pub(crate) fn request_error(exception_type: &str, message: &str, delivery: Delivery) -> Self {
        RecordedRejection {
            kind: None,
            exception_type: exception_type.to_owned(),
            message: message.to_owned(),
            diagnosis: None,
            delivery,
        }
    }
}

/// How a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Still running.
    Open,
    /// The stream ended normally: end marker, final results, close 1000.
    Completed,
    /// Refused (exception frame or HTTP error); see [`ConnectionRecord::rejection`].
    Rejected,
    /// The path is not one of the emulated APIs: 404.
    NotFound,
    /// The client closed (or stopped) before ending its stream.
    ClientClosed,
    /// The connection broke (I/O or WebSocket protocol error) before the stream ended.
    ConnectionLost(String),
    /// No audio (Transcribe) or no event before the `DisconnectionEvent` (Liveness) for the
    /// configured time: an exception, then close.
    TimedOut,
    /// The emulator shut down while the connection was open (close 1001).
    Shutdown,
    /// A configured fault ended the connection.
    Fault,
    /// The request was not a WebSocket upgrade, or the handshake did not complete.
    HandshakeFailed(String),
}

/// When an audio event arrived, and the first 8 bytes of its audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaStamp {
    /// Arrival on the emulator's clock, in microseconds since the Unix epoch (taken when the
    /// event was decoded, after its signature was verified).
    pub arrival_micros: i64,
    /// The first 8 audio bytes as a little-endian `u64` (zero-padded when shorter).
    pub prefix: u64,
}

/// What one connection did.
///
/// All times come from the emulator's clock. Fields are public for reading; new fields
/// may be added.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionRecord {
    /// 0 for the first accepted connection, then 1, 2, ...
    pub id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// The request path (without the query), once the upgrade request was read.
    pub path: Option<String>,
    /// The `Host` header received.
    pub host: Option<String>,
    /// The `Host` value the presigned URL verified with: the received one, or the received one
    /// without its port when [`crate::emulator::EmulatorConfig::accept_host_without_port`]
    /// let that through (what aws-sdk-js-v3 signs for a custom endpoint). `None` when the URL
    /// did not verify.
    pub signed_host: Option<String>,
    /// The API addressed, when the path is known.
    pub service: Option<EmulatedService>,
    /// The service's query parameters (non-`X-Amz-*`), decoded.
    pub params: Vec<(String, String)>,
    /// The URL's `X-Amz-Date`, when present and well-formed (even if the URL was refused).
    pub url_date: Option<SystemTime>,
    /// The `Date` header sent on the upgrade response (101 or error).
    pub upgrade_date_header: Option<String>,
    /// The HTTP status of the upgrade response (101, or the error status).
    pub upgrade_status: Option<u16>,
    /// The `:date` (milliseconds since the epoch) of every verified signed frame, in order,
    /// the signed empty end frame included.
    pub frame_dates_millis: Vec<i64>,
    /// Liveness: the `TimestampMillis` of every `VideoEvent` received (the empty end-of-video
    /// one included), in order; events without one are skipped. Lets tests check that payload
    /// timestamps follow the server's clock.
    pub video_timestamps_millis: Vec<i64>,
    /// WebSocket data messages (binary or text) received.
    pub messages_received: u64,
    /// Media events received: `AudioEvent`s with audio (Transcribe) or `VideoEvent`s with a
    /// chunk (Liveness).
    pub media_frames: u64,
    /// Media bytes received: raw audio (Transcribe) or decoded video (Liveness).
    pub media_bytes: u64,
    /// With [`EmulatorConfig::record_media_stamps`](super::EmulatorConfig::record_media_stamps):
    /// one entry per Transcribe audio event, in order.
    pub media_stamps: Vec<MediaStamp>,
    /// Event and exception types sent, in order (e.g. `TranscriptEvent`, `BadRequestException`).
    pub sent: Vec<String>,
    /// The refusal, if any.
    pub rejection: Option<RecordedRejection>,
    /// Whether the configured fault was injected on this connection.
    pub fault_injected: bool,
    /// The close code the emulator sent (or echoed).
    pub close_sent: Option<u16>,
    /// The close code the client sent (1005 when its close frame had no code).
    pub close_received: Option<u16>,
    /// How it ended.
    pub outcome: Outcome,
}

impl ConnectionRecord {
    pub(crate) fn new(id: u64, peer: SocketAddr) -> Self {
        ConnectionRecord {
            id,
            peer,
            path: None,
            host: None,
            signed_host: None,
            service: None,
            params: Vec::new(),
            url_date: None,
            upgrade_date_header: None,
            upgrade_status: None,
            frame_dates_millis: Vec::new(),
            video_timestamps_millis: Vec::new(),
            messages_received: 0,
            media_frames: 0,
            media_bytes: 0,
            media_stamps: Vec::new(),
            sent: Vec::new(),
            rejection: None,
            fault_injected: false,
            close_sent: None,
            close_received: None,
            outcome: Outcome::Open,
        }
    }

    /// The `:date` of every verified signed frame, as times.
    pub fn frame_dates(&self) -> Vec<SystemTime> {
        self.frame_dates_millis
            .iter()
            .map(|ms| {
                let magnitude = Duration::from_millis(ms.unsigned_abs());
                if *ms >= 0 {
                    UNIX_EPOCH + magnitude
                } else {
                    UNIX_EPOCH.checked_sub(magnitude).unwrap_or(UNIX_EPOCH)
                }
            })
            .collect()
    }

    /// Whether the connection task has finished.
    pub fn is_finished(&self) -> bool {
        self.outcome != Outcome::Open
    }
}

/// The shared list of records, with a change counter to wait on.
#[derive(Debug)]
pub(crate) struct Records {
    list: Mutex<Vec<ConnectionRecord>>,
    changed: watch::Sender<u64>,
}

impl Records {
    pub(crate) fn new() -> Arc<Records> {
        Arc::new(Records {
            list: Mutex::new(Vec::new()),
            changed: watch::channel(0).0,
        })
    }

    pub(crate) fn open(self: &Arc<Self>, peer: SocketAddr) -> RecordSlot {
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        let index = list.len();
        list.push(ConnectionRecord::new(index as u64, peer));
        drop(list);
        self.bump();
        RecordSlot {
            records: Arc::clone(self),
            index,
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<ConnectionRecord> {
        self.list
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn bump(&self) {
        // Nobody waits (no `wait_for_finished` running): skip the notification, which costs a
        // lock and a wake-up pass per update, several updates per received frame. A waiter
        // subscribes before taking its snapshot, so it misses nothing.
        if self.changed.receiver_count() == 0 {
            return;
        }
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// One connection's handle on its record.
#[derive(Debug, Clone)]
pub(crate) struct RecordSlot {
    records: Arc<Records>,
    index: usize,
}

impl RecordSlot {
    pub(crate) fn update(&self, f: impl FnOnce(&mut ConnectionRecord)) {
        {
            let mut list = self
                .records
                .list
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(record) = list.get_mut(self.index) {
                f(record);
            }
        }
        self.records.bump();
    }

    pub(crate) fn id(&self) -> u64 {
        self.index as u64
    }

    /// Sets the outcome unless one was already set.
    pub(crate) fn finish(&self, outcome: Outcome) {
        self.update(|r| {
            if r.outcome == Outcome::Open {
                r.outcome = outcome;
            }
        });
    }
}
