//! Accept loop, upgrade decision, and the per-connection session plumbing shared by both
//! services (receiving, sending events and exceptions, closing, faults).

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;

use crate::proto::codec::{
    HeaderValue, Message, CONTENT_TYPE, EVENT_TYPE, EXCEPTION_TYPE, MESSAGE_TYPE,
};
use crate::proto::sigv4::parse_amz_date;
use crate::proto::Clock;
use crate::verify::{
    exception_http_status, exception_payload, http_error_body, Rejection, VerifiedUpgrade, Verifier,
};

use super::deadline::deadline_in;
use super::faults::{fault_bytes, Fault};
use super::record::{
    ConnectionRecord, Delivery, EmulatedService, MediaStamp, Outcome, RecordSlot,
    RecordedRejection, Records,
};
use super::{
    liveness, transcribe, EmulatorConfig, RejectionStyle, CLOSE_AFTER_EXCEPTION, CLOSE_FAULT,
    CLOSE_GOING_AWAY,
};

/// Everything a connection task needs.
pub(crate) struct Ctx {
    pub(crate) config: EmulatorConfig,
    pub(crate) clock: Clock,
    pub(crate) verifier: Verifier,
    pub(crate) records: Arc<Records>,
}

pub(crate) async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let slot = ctx.records.open(peer);
                    tasks.spawn(connection(tcp, slot, Arc::clone(&ctx), shutdown.clone()));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "emulator accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            () = wait_shutdown(&mut shutdown) => break,
        }
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
    tracing::debug!("emulator stopped");
}

/// Resolves once shutdown is requested (or the handle is gone).
pub(crate) async fn wait_shutdown(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// Marks the record finished even if the task is cancelled.
struct FinishGuard(RecordSlot);

impl Drop for FinishGuard {
    fn drop(&mut self) {
        self.0.finish(Outcome::Shutdown);
    }
}

async fn connection(
    tcp: TcpStream,
    slot: RecordSlot,
    ctx: Arc<Ctx>,
    mut shutdown: watch::Receiver<bool>,
) {
    let guard = FinishGuard(slot.clone());
    let outcome = serve(tcp, &slot, &ctx, &mut shutdown).await;
    tracing::debug!(id = slot.id(), ?outcome, "emulator connection ended");
    slot.finish(outcome);
    drop(guard);
}

/// An error to report as an AWS exception.
#[derive(Clone, Debug)]
pub(crate) struct ServiceError {
    pub(crate) exception_type: String,
    pub(crate) message: String,
    pub(crate) rejection: Option<Rejection>,
}

impl ServiceError {
    pub(crate) fn new(exception_type: &str, message: impl Into<String>) -> Self {
        ServiceError {
            exception_type: exception_type.to_owned(),
            message: message.into(),
            rejection: None,
        }
    }

    fn record(&self, delivery: Delivery) -> RecordedRejection {
        match &self.rejection {
            Some(rejection) => RecordedRejection::from_rejection(rejection, delivery),
            None => RecordedRejection::request_error(&self.exception_type, &self.message, delivery),
        }
    }

    fn http_status(&self) -> u16 {
        exception_http_status(&self.exception_type)
    }
}

impl From<Rejection> for ServiceError {
    fn from(rejection: Rejection) -> Self {
        ServiceError {
            exception_type: rejection.exception_type().to_owned(),
            message: rejection.message().to_owned(),
            rejection: Some(rejection),
        }
    }
}

enum Verdict {
    NotFound,
    Refuse(ServiceError),
    Pending(ServiceError),
    Accept(EmulatedService, Box<VerifiedUpgrade>),
}

struct Decision {
    verdict: Verdict,
}

fn ws_config(config: &EmulatorConfig) -> WebSocketConfig {
    let max = config.max_message_bytes.max(1024);
    WebSocketConfig::default()
        // Client frames are a few KiB (larger ones are read in several calls); tungstenite
        // zero-fills this much before every read attempt, which at 16 KiB was the emulator's
        // largest user-space cost under load.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(max.saturating_mul(2))
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// Looks at the upgrade request and decides the response (sans-IO; runs inside the handshake).
fn decide(
    ctx: &Ctx,
    slot: &RecordSlot,
    request: &Request,
    mut response: Response,
) -> (Decision, Result<Response, ErrorResponse>) {
    let date = httpdate::fmt_http_date(ctx.clock.now());
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let service = EmulatedService::from_path(path);
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let url_date: Option<SystemTime> = pairs
        .iter()
        .find(|(k, _)| k == "X-Amz-Date")
        .and_then(|(_, v)| parse_amz_date(v));
    let params: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, _)| !k.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("x-amz-")))
        .collect();

    let host_count = request.headers().get_all(http::header::HOST).iter().count();
    let mut signed_host: Option<String> = None;
    let verdict = match service {
        None => Verdict::NotFound,
        // RFC 9112 3.2: more than one Host is a 400, whatever the rejection style; verifying
        // against one of them would hide which one the client meant to sign.
        Some(_) if host_count > 1 => Verdict::Refuse(ServiceError::new(
            "BadRequestException",
            format!(
                "The request has {host_count} Host headers; HTTP (RFC 9112 section 3.2) allows exactly one. \
                 Send only the Host header that was signed (check that your WebSocket library does not add its own)."
            ),
        )),
        Some(service) => {
            let error = |e: ServiceError| match ctx.config.rejection_style {
                RejectionStyle::Http403 => Verdict::Refuse(e),
                _ => Verdict::Pending(e),
            };
            let mut verified = ctx.verifier.verify_upgrade(path_and_query, host);
            if ctx.config.host_without_port {
                if let (Err(_), Some((bare, port))) = (&verified, host.rsplit_once(':')) {
                    if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
                        if let Ok(upgrade) = ctx.verifier.verify_upgrade(path_and_query, bare) {
                            verified = Ok(upgrade);
                        }
                    }
                }
            }
            if let Ok(upgrade) = &verified {
                signed_host = Some(upgrade.host().to_owned());
            }
            match verified {
                Err(rejection) => error(rejection.with_service(service.family()).into()),
                Ok(upgrade) => match validate_params(service, &upgrade) {
                    Err(e) => error(e),
                    Ok(()) => Verdict::Accept(service, Box::new(upgrade)),
                },
            }
        }
    };

    let (status, result) = match &verdict {
        Verdict::NotFound => {
            let body = http_error_body(
                "UnknownOperationException",
                &format!(
                    "No WebSocket API at '{path}'. The emulator serves /stream-transcription-websocket, \
                     /medical-stream-transcription-websocket, /call-analytics-stream-transcription-websocket \
                     and /start-face-liveness-session-websocket."
                ),
            );
            (
                404,
                Err(error_response(
                    404,
                    &date,
                    ctx.config.send_date_header,
                    "UnknownOperationException",
                    body,
                )),
            )
        }
        Verdict::Refuse(e) => {
            let status = e.http_status();
            let body = http_error_body(&e.exception_type, &e.message);
            (
                status,
                Err(error_response(
                    status,
                    &date,
                    ctx.config.send_date_header,
                    &e.exception_type,
                    body,
                )),
            )
        }
        Verdict::Pending(..) | Verdict::Accept(..) => {
            if !ctx.config.send_date_header {
                (101, Ok(response))
            } else if let Ok(value) = http::HeaderValue::from_str(&date) {
                response.headers_mut().insert(http::header::DATE, value);
                (101, Ok(response))
            } else {
                (101, Ok(response))
            }
        }
    };

    slot.update(|r| {
        r.path = Some(path.to_owned());
        r.host = Some(host.to_owned());
        r.signed_host = signed_host;
        r.service = service;
        r.params = params;
        r.url_date = url_date;
        r.upgrade_date_header = ctx.config.send_date_header.then(|| date.clone());
        r.upgrade_status = Some(status);
        match &verdict {
            Verdict::Refuse(e) => r.rejection = Some(e.record(Delivery::HttpStatus(status))),
            Verdict::Pending(e) => r.rejection = Some(e.record(Delivery::NotDelivered)),
            _ => {}
        }
    });
    (Decision { verdict }, result)
}

fn error_response(
    status: u16,
    date: &str,
    send_date: bool,
    exception_type: &str,
    body: String,
) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(body.clone()));
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::FORBIDDEN);
    let headers = response.headers_mut();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = http::HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    if send_date {
        put("date", date);
    }
    put("x-amzn-errortype", exception_type);
    put("content-type", "application/json");
    put("content-length", &body.len().to_string());
    put("connection", "close");
    response
}

/// Checks the service's own query parameters.
fn validate_params(
    service: EmulatedService,
    upgrade: &VerifiedUpgrade,
) -> Result<(), ServiceError> {
    match service {
        EmulatedService::Liveness => liveness::validate_params(upgrade),
        _ => transcribe::validate_params(service, upgrade),
    }
}

async fn serve(
    tcp: TcpStream,
    slot: &RecordSlot,
    ctx: &Arc<Ctx>,
    shutdown: &mut watch::Receiver<bool>,
) -> Outcome {
    let healthy;
    let ctx = match ctx.config.fault_connections {
        Some(faulty) if slot.id() >= faulty && ctx.config.fault != Fault::None => {
            let mut config = ctx.config.clone();
            config.fault = Fault::None;
            healthy = Arc::new(Ctx {
                config,
                clock: ctx.clock.clone(),
                verifier: ctx.verifier.clone(),
                records: Arc::clone(&ctx.records),
            });
            &healthy
        }
        _ => ctx,
    };
    if ctx.config.fault == Fault::StallBeforeUpgrade {
        slot.update(|r| r.fault_injected = true);
        wait_shutdown(shutdown).await;
        drop(tcp);
        return Outcome::Fault;
    }

    let mut decision: Option<Decision> = None;
    let handshake = {
        let decision = &mut decision;
        // The error type is tungstenite's; its size is not ours to choose.
        #[allow(clippy::result_large_err)]
        let callback = |request: &Request, response: Response| {
            let (d, result) = decide(ctx, slot, request, response);
            *decision = Some(d);
            result
        };
        let accept = tokio_tungstenite::accept_hdr_async_with_config(
            tcp,
            callback,
            Some(ws_config(&ctx.config)),
        );
        tokio::select! {
            result = tokio::time::timeout(ctx.config.handshake_timeout, accept) => Some(result),
            () = wait_shutdown(shutdown) => None,
        }
    };
    let Some(handshake) = handshake else {
        return Outcome::Shutdown;
    };
    let ws = match handshake {
        Err(_elapsed) => {
            return Outcome::HandshakeFailed(
                "no upgrade request within the handshake timeout".into(),
            )
        }
        Ok(Err(WsError::Http(_))) => {
            return match decision.map(|d| d.verdict) {
                Some(Verdict::NotFound) => Outcome::NotFound,
                _ => Outcome::Rejected,
            }
        }
        Ok(Err(error)) => return Outcome::HandshakeFailed(error.to_string()),
        Ok(Ok(ws)) => ws,
    };
    let Some(decision) = decision else {
        return Outcome::HandshakeFailed("the upgrade completed without a decision".into());
    };

    let mut session = Session {
        ws,
        slot: slot.clone(),
        ctx: Arc::clone(ctx),
        shutdown: shutdown.clone(),
        received: 0,
        pending: PendingRecord::default(),
        timer: Box::pin(tokio::time::sleep(Duration::from_secs(86_400))),
    };
    match decision.verdict {
        Verdict::Pending(error) => session.reject_on_first_message(error).await,
        Verdict::Accept(service, upgrade) => {
            if ctx.config.fault == Fault::StallAfterUpgrade {
                slot.update(|r| r.fault_injected = true);
                wait_shutdown(shutdown).await;
                return Outcome::Fault;
            }
            if ctx.config.fault.trigger() == Some(0) {
                if let Some(outcome) = session.inject_fault().await {
                    return outcome;
                }
            }
            match service {
                EmulatedService::Liveness => liveness::run(&mut session, &upgrade).await,
                _ => transcribe::run(&mut session, &upgrade, service).await,
            }
        }
        // The handshake succeeded, so the verdict was one of the two above.
        Verdict::NotFound | Verdict::Refuse(_) => Outcome::Rejected,
    }
}

/// What [`Session::recv`] got.
pub(crate) enum Incoming {
    /// A binary (or text) message's bytes.
    Data(Bytes),
    /// The client closed (its close frame was answered).
    Closed,
    /// The deadline passed.
    Timeout,
    /// The emulator is shutting down.
    Shutdown,
    /// The connection broke.
    Lost(String),
    /// A fault closed the connection.
    FaultClosed,
}

/// What the frames received since the last write to the connection's record add to it.
///
/// The record sits behind the mutex every connection shares; writing each per-frame fact as
/// it happens took that lock three times per frame. They are gathered here instead and written
/// under one lock by [`Session::update_record`], which every other write goes through too (so
/// the record's order of events is kept), and which runs before the session waits for the
/// next message, sends anything or ends: whoever reads the record after seeing the emulator
/// react, or after it went idle, sees every frame it received.
#[derive(Debug, Default)]
struct PendingRecord {
    messages_received: Option<u64>,
    frame_dates_millis: Vec<i64>,
    video_timestamps_millis: Vec<i64>,
    media_frames: u64,
    media_bytes: u64,
    media_stamps: Vec<MediaStamp>,
}

impl PendingRecord {
    fn is_empty(&self) -> bool {
        self.messages_received.is_none()
            && self.frame_dates_millis.is_empty()
            && self.video_timestamps_millis.is_empty()
            && self.media_frames == 0
            && self.media_bytes == 0
            && self.media_stamps.is_empty()
    }

    /// Moves everything into `record`, keeping this one's buffers for the next frames.
    fn apply(&mut self, record: &mut ConnectionRecord) {
        if let Some(received) = self.messages_received.take() {
            record.messages_received = received;
        }
        record
            .frame_dates_millis
            .extend_from_slice(&self.frame_dates_millis);
        self.frame_dates_millis.clear();
        record
            .video_timestamps_millis
            .extend_from_slice(&self.video_timestamps_millis);
        self.video_timestamps_millis.clear();
        record.media_frames += std::mem::take(&mut self.media_frames);
        record.media_bytes += std::mem::take(&mut self.media_bytes);
        record.media_stamps.extend_from_slice(&self.media_stamps);
        self.media_stamps.clear();
    }
}

/// One upgraded connection.
pub(crate) struct Session {
    ws: WebSocketStream<TcpStream>,
    pub(crate) slot: RecordSlot,
    pub(crate) ctx: Arc<Ctx>,
    shutdown: watch::Receiver<bool>,
    received: u64,
    /// Record keeping not yet written to `slot`.
    pending: PendingRecord,
    /// The one timer behind `recv`'s deadlines (see [`recv_deadline`]).
    timer: Pin<Box<Sleep>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        // Every path out of a session (a return, or the task being cancelled) lands here.
        self.flush_record();
    }
}

impl Session {
    /// Writes the pending per-frame facts, then `f`'s change, to the record under one lock.
    pub(crate) fn update_record(&mut self, f: impl FnOnce(&mut ConnectionRecord)) {
        let pending = &mut self.pending;
        self.slot.update(|r| {
            pending.apply(r);
            f(r);
        });
    }

    /// Writes the pending per-frame facts to the record, if there are any.
    pub(crate) fn flush_record(&mut self) {
        if !self.pending.is_empty() {
            self.update_record(|_| {});
        }
    }

    pub(crate) fn config(&self) -> &EmulatorConfig {
        &self.ctx.config
    }

    pub(crate) fn now_millis(&self) -> i64 {
        self.ctx
            .clock
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    /// The next data message, answering pings on the way; applies faults.
    pub(crate) async fn recv(&mut self, deadline: Option<Instant>) -> Incoming {
        // The last message is handled: its record keeping is written before waiting.
        self.flush_record();
        loop {
            if let Fault::SlowReader { per_message_delay } = self.ctx.config.fault {
                self.update_record(|r| r.fault_injected = true);
                tokio::select! {
                    () = tokio::time::sleep(per_message_delay) => {}
                    () = wait_shutdown(&mut self.shutdown) => return Incoming::Shutdown,
                }
            }
            let next = tokio::select! {
                next = self.ws.next() => next,
                () = recv_deadline(&mut self.timer, deadline) => return Incoming::Timeout,
                () = wait_shutdown(&mut self.shutdown) => return Incoming::Shutdown,
            };
            match next {
                None => return Incoming::Lost("the connection ended without a close frame".into()),
                Some(Err(error)) => return Incoming::Lost(error.to_string()),
                Some(Ok(WsMessage::Close(frame))) => {
                    let code = frame.as_ref().map(|f| u16::from(f.code)).unwrap_or(1005);
                    self.update_record(|r| {
                        r.close_received = Some(code);
                        r.close_sent.get_or_insert(code);
                    });
                    self.drain().await;
                    return Incoming::Closed;
                }
                Some(Ok(WsMessage::Binary(data))) => return self.count(data).await,
                Some(Ok(WsMessage::Text(text))) => return self.count(Bytes::from(text)).await,
                // Pings are answered by tungstenite on the next read or write.
                Some(Ok(_)) => {}
            }
        }
    }

    async fn count(&mut self, data: Bytes) -> Incoming {
        self.received += 1;
        let received = self.received;
        self.pending.messages_received = Some(received);
        if self.ctx.config.fault.trigger() == Some(received) {
            if let Some(_outcome) = self.inject_fault().await {
                return Incoming::FaultClosed;
            }
        }
        Incoming::Data(data)
    }

    /// Injects the configured send/close fault. `Some` when it ended the connection.
    pub(crate) async fn inject_fault(&mut self) -> Option<Outcome> {
        let fault = self.ctx.config.fault;
        self.update_record(|r| r.fault_injected = true);
        match fault {
            Fault::CloseMidStream { abrupt: true, .. } => {
                // The caller drops the socket: no close frame, just the TCP connection ending.
                Some(Outcome::Fault)
            }
            Fault::CloseMidStream { abrupt: false, .. } => {
                self.close(CLOSE_FAULT, "emulator fault: close mid-stream")
                    .await;
                Some(Outcome::Fault)
            }
            _ => {
                let seed =
                    self.slot.id().wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ self.now_millis() as u64;
                if let Some(bytes) = fault_bytes(fault, seed) {
                    let _ = self.ws.send(WsMessage::Binary(bytes)).await;
                }
                None
            }
        }
    }

    /// Sends an encoded event-stream message as one binary WebSocket message.
    async fn send_message(&mut self, message: &Message, name: &str) -> bool {
        let Ok(frame) = message.encode() else {
            return false;
        };
        // What the client reacts to must already be in the record.
        self.flush_record();
        let sent = self.ws.send(WsMessage::Binary(frame)).await.is_ok();
        if sent {
            let name = name.to_owned();
            self.update_record(|r| r.sent.push(name));
        }
        sent
    }

    /// Sends an event with a JSON payload.
    pub(crate) async fn send_event(&mut self, event_type: &str, payload: &Value) -> bool {
        let message = Message::new(Bytes::from(payload.to_string()))
            .with_header(MESSAGE_TYPE, HeaderValue::from("event"))
            .with_header(EVENT_TYPE, HeaderValue::from(event_type))
            .with_header(CONTENT_TYPE, HeaderValue::from("application/json"));
        self.send_message(&message, event_type).await
    }

    /// Sends an exception frame: `{"Message":"..."}`.
    pub(crate) async fn send_exception(&mut self, exception_type: &str, message: &str) -> bool {
        let frame = Message::new(Bytes::from(exception_payload(message)))
            .with_header(MESSAGE_TYPE, HeaderValue::from("exception"))
            .with_header(EXCEPTION_TYPE, HeaderValue::from(exception_type))
            .with_header(CONTENT_TYPE, HeaderValue::from("application/json"));
        self.send_message(&frame, exception_type).await
    }

    /// Exception frame, then close with 1008.
    pub(crate) async fn reject(&mut self, error: ServiceError) -> Outcome {
        let delivered = self
            .send_exception(&error.exception_type, &error.message)
            .await;
        let delivery = if delivered {
            Delivery::ExceptionFrame
        } else {
            Delivery::NotDelivered
        };
        let record = error.record(delivery);
        self.update_record(|r| r.rejection = Some(record));
        if delivered {
            self.close(CLOSE_AFTER_EXCEPTION, "").await;
        }
        Outcome::Rejected
    }

    /// The upgrade was refused with the exception-frame style: wait for the client's first
    /// message, then reject.
    async fn reject_on_first_message(&mut self, error: ServiceError) -> Outcome {
        let deadline = deadline_in(self.ctx.config.no_audio_timeout);
        match self.recv(Some(deadline)).await {
            Incoming::Data(_) | Incoming::Timeout => self.reject(error).await,
            Incoming::Closed => Outcome::ClientClosed,
            Incoming::Shutdown => self.shut_down().await,
            Incoming::Lost(reason) => Outcome::ConnectionLost(reason),
            Incoming::FaultClosed => Outcome::Fault,
        }
    }

    /// Close with 1001 because the emulator is stopping.
    pub(crate) async fn shut_down(&mut self) -> Outcome {
        self.close(CLOSE_GOING_AWAY, "emulator shutting down").await;
        Outcome::Shutdown
    }

    /// Sends a close frame, then waits (bounded) for the client's.
    pub(crate) async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        self.flush_record();
        if self.ws.close(Some(frame)).await.is_ok() {
            self.update_record(|r| r.close_sent = Some(code));
        }
        let grace = self.ctx.config.close_grace;
        let deadline = deadline_in(grace);
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(WsMessage::Close(frame)))) => {
                    let code = frame.as_ref().map(|f| u16::from(f.code)).unwrap_or(1005);
                    self.update_record(|r| r.close_received = Some(code));
                }
                Ok(Some(Ok(_))) => {}
                _ => break,
            }
        }
    }

    /// After the client's close: let tungstenite send its answer and see the end.
    async fn drain(&mut self) {
        let deadline = deadline_in(self.ctx.config.close_grace);
        while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline, self.ws.next()).await {}
    }

    /// Records the `:date` of a verified frame.
    pub(crate) fn record_frame_date(&mut self, millis: i64) {
        self.pending.frame_dates_millis.push(millis);
    }

    /// Records a Liveness `VideoEvent`'s `TimestampMillis`.
    pub(crate) fn record_video_timestamp(&mut self, millis: i64) {
        self.pending.video_timestamps_millis.push(millis);
    }

    /// Records received media.
    pub(crate) fn record_media(&mut self, bytes: usize) {
        self.pending.media_frames += 1;
        self.pending.media_bytes += bytes as u64;
    }

    /// Records received audio, with a [`MediaStamp`] when those are kept.
    pub(crate) fn record_audio(&mut self, audio: &[u8]) {
        if self.ctx.config.record_media_stamps {
            let mut prefix = [0u8; 8];
            let n = audio.len().min(8);
            prefix[..n].copy_from_slice(&audio[..n]);
            let arrival_micros = self
                .ctx
                .clock
                .now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            self.pending.media_stamps.push(MediaStamp {
                arrival_micros,
                prefix: u64::from_le_bytes(prefix),
            });
        }
        self.record_media(audio.len());
    }
}

/// A timeout as AWS words it: whole seconds when whole (`15`), else tenths (`0.3`).
pub(crate) fn seconds_text(timeout: std::time::Duration) -> String {
    if timeout.subsec_millis() == 0 {
        format!("{}", timeout.as_secs())
    } else {
        format!("{:.1}", timeout.as_secs_f64())
    }
}

/// Resolves at `deadline` using the connection's one timer, which is moved back only when
/// `deadline` is earlier than where it stands, and moved forward only when it fires before
/// `deadline`. A stream that pushes its deadline forward on every frame (the no-audio timeout)
/// thus costs no timer work per frame instead of a timer registered and cancelled per frame.
async fn recv_deadline(timer: &mut Pin<Box<Sleep>>, deadline: Option<Instant>) {
    let Some(deadline) = deadline else {
        return std::future::pending().await;
    };
    if timer.deadline() > deadline {
        timer.as_mut().reset(deadline);
    }
    loop {
        timer.as_mut().await;
        if Instant::now() >= deadline {
            return;
        }
        timer.as_mut().reset(deadline);
    }
}
