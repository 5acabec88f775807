//! Nothing secret leaks (issue 8, part 4): not the secret key, not the session token, not any
//! signature produced in the run, in any log line or any `Debug` / `Display` text; and the
//! transport's safety defaults: TLS verification on, `ws://` only to loopback, `X-Amz-Expires`
//! at most 300 s.
//!
//! How "any signature produced in the run" is collected: every session goes through a small
//! recording TCP proxy on 127.0.0.1 in front of the emulator, which keeps what the client sent.
//! From it the test reads each upgrade request's `X-Amz-Signature` (and checks the session token
//! really was sent), unmasks the client's WebSocket frames and takes the `:chunk-signature` of
//! every signed frame. It also recomputes, with the emulator's registered credentials, the
//! signature the server expected for each URL (for a wrong secret, that is a signature the
//! client never sent but the server computed). Signatures made directly with `Presigner`,
//! `EventSigner` and the verifier are added too.
//!
//! How logs are captured: one global `tracing` subscriber at TRACE for every target (span
//! opens and closes included), with `log` records bridged in (rustls, tungstenite). All output
//! except tungstenite's goes into one buffer that must be clean. tungstenite's own TRACE
//! records go into a second buffer: tungstenite logs the whole upgrade request (the presigned
//! URL, a bearer token) and every frame's payload in hex at TRACE, which this crate cannot
//! prevent; `tungstenite_trace_logging_exposes_presigned_urls_known_issue` pins that.
#![cfg(all(feature = "emulator", feature = "transcribe", feature = "liveness"))]

use std::collections::BTreeSet;
use std::fmt::{Debug, Display};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use sigv4_ws::emulator::{
    ConnectionRecord, Emulator, EmulatorConfig, EmulatorHandle, Fault, RejectionStyle,
};
use sigv4_ws::proto::codec::{FrameDecoder, HeaderValue, Message};
use sigv4_ws::proto::presign::{PresignError, MAX_EXPIRES_IN};
use sigv4_ws::proto::redact::RedactedUrl;
use sigv4_ws::proto::sigv4::parse_amz_date;
use sigv4_ws::proto::skew::{observe_date_header, SkewMessage};
use sigv4_ws::services::liveness::{
    ClientChallenge, FaceMovementAndLightClientChallenge, LivenessClient, LivenessEvent,
    StartFaceLivenessSession, VideoEvent, DEFAULT_CHALLENGE_VERSIONS,
};
use sigv4_ws::services::transcribe::{
    ConfigurationEvent, MediaEncoding, StartRequest, StartStreamTranscription, TranscribeClient,
    TranscribeStream,
};
use sigv4_ws::transport::{
    ConnectRequest, Connector, ErrorKind, FrameSigning, PlaintextPolicy, SessionConfig,
};
use sigv4_ws::verify::{ChainVerifier, Verifier};
use sigv4_ws::{Clock, EventSigner, ManualTime, Presigner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use url::Url;

#[path = "support/tls.rs"]
mod tls;

// ---------------------------------------------------------------------------------------------
// The secrets.

const ACCESS_KEY_ID: &str = "AKIDLEAKCHECK";
/// Recognisable, with the characters that get percent-encoded or escaped.
const SECRET: &str = "SECRETSECRETSECRETSECRET/+SECRETSECRET0K";
const WRONG_SECRET: &str = "SECRETSECRETWRONGWRONGWRONG/+WRONGWRONG0";
const TOKEN: &str = "TOKENTOKENTOKENTOKEN/+=TOKENTOKENTOKENTOKEN+/TOKEN==";
const WRONG_TOKEN: &str = "TOKENTOKENWRONGWRONGWRONG/+=WRONGWRONGWRONGWRONG==";

fn leak_check_credentials(secret: &str, token: &str) -> Credentials {
    Credentials::new(
        ACCESS_KEY_ID,
        secret,
        Some(token.to_owned()),
        None,
        "leak-check",
    )
}

fn credentials() -> Credentials {
    leak_check_credentials(SECRET, TOKEN)
}

fn wrong_secret() -> Credentials {
    leak_check_credentials(WRONG_SECRET, TOKEN)
}

fn wrong_token() -> Credentials {
    leak_check_credentials(SECRET, WRONG_TOKEN)
}

/// A Transcribe client for `endpoint` with the secret credentials.
fn transcribe_client(endpoint: Url) -> TranscribeClient {
    TranscribeClient::new("us-east-1")
        .endpoint(endpoint)
        .credentials(credentials())
}

/// A Face Liveness client for `endpoint` with the secret credentials.
fn liveness_client(endpoint: Url) -> LivenessClient {
    LivenessClient::new("us-east-1")
        .endpoint(endpoint)
        .credentials(credentials())
}

/// 16 kHz PCM in US English.
fn pcm_16k() -> StartStreamTranscription {
    StartStreamTranscription::new(MediaEncoding::Pcm, 16_000).language_code("en-US")
}

fn liveness_session() -> StartFaceLivenessSession {
    StartFaceLivenessSession::new(SESSION_ID, 320, 240, DEFAULT_CHALLENGE_VERSIONS)
}

/// The Face Liveness URL on `origin` (scheme, host and port).
fn liveness_url(origin: &Url) -> Url {
    let mut url = origin.clone();
    url.set_path("/start-face-liveness-session-websocket");
    url.set_query(Some(&format!(
        "session-id={SESSION_ID}&video-width=320&video-height=240&challenge-versions=FaceMovementAndLightChallenge_1.0.0"
    )));
    url
}

/// The Transcribe URL on `origin` (scheme, host and port).
fn transcribe_url(origin: &Url) -> Url {
    let mut url = origin.clone();
    url.set_path("/stream-transcription-websocket");
    url.set_query(Some(
        "language-code=en-US&media-encoding=pcm&sample-rate=16000",
    ));
    url
}

const SESSION_ID: &str = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";
const PATIENCE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Log capture: one global subscriber for the whole test binary.

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Logs {
    /// Everything except tungstenite's own records: must never hold a secret.
    ours: Buffer,
    /// tungstenite's records (see the module docs).
    tungstenite: Buffer,
}

fn logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        use tracing_subscriber::filter::{LevelFilter, Targets};
        use tracing_subscriber::fmt::format::FmtSpan;
        use tracing_subscriber::prelude::*;
        let logs = Logs {
            ours: Buffer::default(),
            tungstenite: Buffer::default(),
        };
        let ours = logs.ours.clone();
        let tungstenite = logs.tungstenite.clone();
        let all_but_tungstenite = Targets::new()
            .with_default(LevelFilter::TRACE)
            .with_target("tungstenite", LevelFilter::OFF);
        let only_tungstenite = Targets::new().with_target("tungstenite", LevelFilter::TRACE);
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || ours.clone())
                    .with_ansi(false)
                    .with_span_events(FmtSpan::FULL)
                    .with_filter(all_but_tungstenite),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || tungstenite.clone())
                    .with_ansi(false)
                    .with_filter(only_tungstenite),
            )
            // Also installs the `log` → `tracing` bridge at the subscriber's level (TRACE).
            .try_init()
            .expect("the only global subscriber of this test binary");
        logs
    })
}

// ---------------------------------------------------------------------------------------------
// Forbidden values, shared by every test of this binary (more checking is never wrong).

fn forbidden() -> &'static Mutex<BTreeSet<String>> {
    static FORBIDDEN: OnceLock<Mutex<BTreeSet<String>>> = OnceLock::new();
    FORBIDDEN.get_or_init(|| {
        let mut set = BTreeSet::new();
        for secret in [SECRET, WRONG_SECRET, TOKEN, WRONG_TOKEN] {
            set.insert(secret.to_owned());
            let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
            set.insert(encoded);
            set.insert(
                percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            );
        }
        // Any recognisable piece of them.
        set.insert("SECRETSECRET".to_owned());
        set.insert("TOKENTOKEN".to_owned());
        set.insert("WRONGWRONG".to_owned());
        Mutex::new(set)
    })
}

/// Registers a signature (hex) in every form it could be printed in.
fn forbid_signature_hex(hex_signature: &str) {
    let bytes =
        hex::decode(hex_signature).unwrap_or_else(|e| panic!("not hex {hex_signature:?}: {e}"));
    forbid_signature_bytes(&bytes);
}

fn forbid_signature_bytes(bytes: &[u8]) {
    assert_eq!(bytes.len(), 32, "a SigV4 signature is 32 bytes");
    let hex_lower = hex::encode(bytes);
    let mut set = forbidden().lock().unwrap_or_else(PoisonError::into_inner);
    set.insert(hex_lower.to_ascii_uppercase());
    // A truncated signature is a leak too: 16 hex digits never occur by chance.
    set.insert(hex_lower[..16].to_owned());
    set.insert(hex_lower);
    set.insert(base64::engine::general_purpose::STANDARD.encode(bytes));
    set.insert(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    // `Debug` of the bytes as a slice and as `Bytes` (minus the quotes).
    set.insert(
        format!("{:?}", bytes)
            .trim_matches(|c| c == '[' || c == ']')
            .to_owned(),
    );
    let escaped = format!("{:?}", Bytes::copy_from_slice(bytes));
    set.insert(
        escaped
            .trim_start_matches("b\"")
            .trim_end_matches('"')
            .to_owned(),
    );
}

fn signature_count() -> usize {
    forbidden()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len()
}

/// A snapshot of the forbidden values, indexed by their first 8 bytes so that a text is
/// scanned once, not once per value (the log runs to megabytes, the values to a thousand).
struct Matcher {
    by_prefix: std::collections::HashMap<u64, Vec<String>>,
}

const PREFIX: usize = 8;

fn prefix_key(bytes: &[u8]) -> u64 {
    let mut key = [0u8; PREFIX];
    key.copy_from_slice(&bytes[..PREFIX]);
    u64::from_le_bytes(key)
}

impl Matcher {
    fn snapshot() -> Matcher {
        let mut by_prefix: std::collections::HashMap<u64, Vec<String>> =
            std::collections::HashMap::new();
        for value in forbidden()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            assert!(
                value.len() >= PREFIX,
                "forbidden values are at least {PREFIX} bytes: {value:?}"
            );
            by_prefix
                .entry(prefix_key(value.as_bytes()))
                .or_default()
                .push(value.clone());
        }
        Matcher { by_prefix }
    }

    /// Every forbidden value found in `text`.
    fn find(&self, text: &str) -> Vec<String> {
        let bytes = text.as_bytes();
        let mut found = BTreeSet::new();
        for at in 0..bytes.len().saturating_sub(PREFIX - 1) {
            if let Some(candidates) = self.by_prefix.get(&prefix_key(&bytes[at..])) {
                for candidate in candidates {
                    if bytes[at..].starts_with(candidate.as_bytes()) {
                        found.insert(candidate.clone());
                    }
                }
            }
        }
        found.into_iter().collect()
    }
}

/// Every forbidden value found in `text`.
fn leaks_in(text: &str) -> Vec<String> {
    Matcher::snapshot().find(text)
}

/// Checks every formatted string and the whole captured log (this crate's and its
/// dependencies', tungstenite's own records aside).
fn assert_clean(context: &str, shown: &[String]) {
    let matcher = Matcher::snapshot();
    assert!(
        shown.len() > 5,
        "{context}: too little was formatted to prove anything"
    );
    for text in shown {
        let found = matcher.find(text);
        assert!(
            found.is_empty(),
            "{context}: {found:?} leaked in formatted output:\n{text}"
        );
    }
    let log = logs().ours.text();
    assert!(
        !log.is_empty(),
        "{context}: the log capture is empty: the check would prove nothing"
    );
    let found = matcher.find(&log);
    if !found.is_empty() {
        let lines: Vec<&str> = log
            .lines()
            .filter(|line| found.iter().any(|f| line.contains(f.as_str())))
            .take(5)
            .collect();
        panic!(
            "{context}: {found:?} leaked in the log:\n{}",
            lines.join("\n")
        );
    }
}

/// `{:?}` (and `{:#?}`) of a value.
fn debug(shown: &mut Vec<String>, value: &impl Debug) {
    shown.push(format!("{value:?}"));
    shown.push(format!("{value:#?}"));
}

/// `{}`, `{:?}` and `{:#?}` of a value.
fn both(shown: &mut Vec<String>, value: &(impl Debug + Display)) {
    shown.push(value.to_string());
    debug(shown, value);
}

/// An error in every form ([`both`]), and every error in its source chain.
fn error_chain(shown: &mut Vec<String>, error: &(impl std::error::Error + 'static)) {
    both(shown, error);
    let mut source = error.source();
    while let Some(cause) = source {
        shown.push(cause.to_string());
        shown.push(format!("{cause:?}"));
        source = cause.source();
    }
}

// ---------------------------------------------------------------------------------------------
// The recording proxy.

struct Proxy {
    addr: SocketAddr,
    /// Client-to-server bytes, one entry per connection.
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
    task: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let sent: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let record = sent.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let slot = {
                    let mut all = record.lock().unwrap_or_else(PoisonError::into_inner);
                    all.push(Vec::new());
                    all.len() - 1
                };
                tokio::spawn(pipe(client, upstream, record.clone(), slot));
            }
        });
        Proxy { addr, sent, task }
    }

    fn endpoint(&self) -> Url {
        Url::parse(&format!("http://{}", self.addr)).expect("a URL")
    }

    fn connections(&self) -> Vec<Captured> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|bytes| Captured::parse(bytes))
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(
    client: TcpStream,
    upstream: SocketAddr,
    record: Arc<Mutex<Vec<Vec<u8>>>>,
    slot: usize,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    record.lock().unwrap_or_else(PoisonError::into_inner)[slot]
                        .extend_from_slice(&buf[..n]);
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = server_write.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}

/// What a client sent on one connection.
#[derive(Debug, Default)]
struct Captured {
    /// `ws://<Host><request target>`.
    url: Option<Url>,
    /// Binary WebSocket messages, unmasked.
    messages: Vec<Vec<u8>>,
}

impl Captured {
    fn parse(bytes: &[u8]) -> Captured {
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Captured::default();
        };
        let head = String::from_utf8_lossy(&bytes[..end]);
        let mut lines = head.split("\r\n");
        let target = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("/")
            .to_owned();
        let host = lines
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("host")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default();
        let url = Url::parse(&format!("ws://{host}{target}")).ok();
        Captured {
            url,
            messages: client_frames(&bytes[end + 4..]),
        }
    }

    fn param(&self, name: &str) -> Option<String> {
        self.url
            .as_ref()?
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The `:chunk-signature` of every signed frame sent.
    fn chunk_signatures(&self) -> Vec<Vec<u8>> {
        self.messages
            .iter()
            .filter_map(|m| Message::decode(m).ok())
            .filter_map(|m| {
                m.header(":chunk-signature")
                    .and_then(HeaderValue::as_bytes)
                    .map(<[u8]>::to_vec)
            })
            .collect()
    }
}

/// The binary messages of a client's (masked) WebSocket frames.
fn client_frames(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut partial: Vec<u8> = Vec::new();
    let mut partial_binary = false;
    while bytes.len() >= 2 {
        let fin = bytes[0] & 0x80 != 0;
        let opcode = bytes[0] & 0x0f;
        let masked = bytes[1] & 0x80 != 0;
        let (len, mut at) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 if bytes.len() >= 10 => (
                u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes")) as usize,
                10,
            ),
            n if n < 126 => (n as usize, 2),
            _ => break,
        };
        let mask = if masked {
            if bytes.len() < at + 4 {
                break;
            }
            let key = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
            at += 4;
            Some(key)
        } else {
            None
        };
        if bytes.len() < at + len {
            break;
        }
        let mut payload = bytes[at..at + len].to_vec();
        if let Some(key) = mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        bytes = &bytes[at + len..];
        match opcode {
            0x2 => {
                partial_binary = true;
                partial = payload;
            }
            0x0 => partial.extend_from_slice(&payload),
            _ => {
                partial_binary = false;
                continue;
            }
        }
        if fin && partial_binary {
            messages.push(std::mem::take(&mut partial));
            partial_binary = false;
        }
    }
    messages
}

/// The signature a server holding `registered` expects for a captured presigned URL, for the
/// URL's Host as sent and without its port (the emulator tries both).
fn expected_signatures(url: &Url, registered: &Credentials) -> Vec<String> {
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (Some(date), Some(expires), Some(scope)) = (
        get("X-Amz-Date").and_then(|d| parse_amz_date(&d)),
        get("X-Amz-Expires").and_then(|e| e.parse::<u64>().ok()),
        get("X-Amz-Credential"),
    ) else {
        return Vec::new();
    };
    let scope: Vec<&str> = scope.split('/').collect();
    if scope.len() != 5 {
        return Vec::new();
    }
    let mut unsigned = url.clone();
    unsigned.set_query(None);
    {
        let kept: Vec<&(String, String)> = pairs
            .iter()
            .filter(|(k, _)| !k.starts_with("X-Amz-"))
            .collect();
        if !kept.is_empty() {
            let mut query = unsigned.query_pairs_mut();
            for (k, v) in kept {
                query.append_pair(k, v);
            }
        }
    }
    let presigner = Presigner::new(registered.clone(), scope[2], scope[3])
        .expires_in(Duration::from_secs(expires));
    let mut out = Vec::new();
    if let Ok(signed) = presigner.presign_at(&unsigned, date) {
        out.push(signed.signature().to_owned());
    }
    let mut bare = unsigned.clone();
    if bare.set_port(None).is_ok() {
        if let Ok(signed) = presigner.presign_at(&bare, date) {
            out.push(signed.signature().to_owned());
        }
    }
    out
}

/// Registers every signature a proxy saw (URL, expected-by-server, chunk) and checks the
/// session token really went out. Returns (connections, URL signatures, chunk signatures).
fn harvest(
    proxy: &Proxy,
    registered: &Credentials,
    sent_with_right_credentials: bool,
) -> (usize, usize, usize) {
    let connections = proxy.connections();
    let (mut urls, mut chunks) = (0, 0);
    for captured in &connections {
        let Some(url) = &captured.url else { continue };
        if let Some(signature) = captured.param("X-Amz-Signature") {
            forbid_signature_hex(&signature);
            urls += 1;
            let expected = expected_signatures(url, registered);
            for e in &expected {
                forbid_signature_hex(e);
            }
            if sent_with_right_credentials {
                // The recomputation is right, so the server-side signatures registered for the
                // wrong-secret cases are the real ones.
                assert!(
                    expected.contains(&signature),
                    "recomputed {expected:?}, sent {signature}"
                );
            }
            let token = captured.param("X-Amz-Security-Token").unwrap_or_default();
            assert!(
                token.starts_with("TOKENTOKEN"),
                "the session token was sent: the check has teeth"
            );
        }
        for signature in captured.chunk_signatures() {
            forbid_signature_bytes(&signature);
            chunks += 1;
        }
    }
    (connections.len(), urls, chunks)
}

/// An emulator holding the secret credentials, and a recording proxy in front of it.
struct Rig {
    emulator: EmulatorHandle,
    proxy: Proxy,
    /// How long `finish` waits for connections to end on their own (stalled ones never do).
    settle: Duration,
}

impl Rig {
    async fn start(config: EmulatorConfig) -> Rig {
        let emulator = Emulator::start(
            config
                .credentials(credentials())
                .close_grace(Duration::from_millis(200)),
        )
        .await
        .expect("the emulator starts on 127.0.0.1");
        let proxy = Proxy::start(emulator.local_addr()).await;
        Rig {
            emulator,
            proxy,
            settle: PATIENCE,
        }
    }

    fn endpoint(&self) -> Url {
        self.proxy.endpoint()
    }

    fn liveness_url(&self) -> Url {
        liveness_url(&self.endpoint())
    }

    fn transcribe_url(&self) -> Url {
        transcribe_url(&self.endpoint())
    }

    /// Waits for every connection to finish, stops the emulator, formats its records, and
    /// registers the signatures the proxy saw.
    async fn finish(
        self,
        shown: &mut Vec<String>,
        sent_with_right_credentials: bool,
    ) -> Vec<ConnectionRecord> {
        let accepted = self.emulator.records().len();
        let _ = self.emulator.wait_for_finished(accepted, self.settle).await;
        debug(shown, &self.emulator);
        let records = self.emulator.shutdown().await;
        for record in &records {
            debug(shown, record);
            if let Some(rejection) = &record.rejection {
                debug(shown, rejection);
                if let Some(diagnosis) = &rejection.diagnosis {
                    both(shown, diagnosis);
                }
            }
        }
        harvest(&self.proxy, &credentials(), sent_with_right_credentials);
        records
    }
}

/// Reads a Transcribe stream to its end: events only, no error.
async fn drain(stream: &mut TranscribeStream) {
    while let Some(event) = tokio::time::timeout(PATIENCE, stream.next_event())
        .await
        .expect("events")
    {
        event.expect("no error");
    }
}

fn video(clock: &Clock, len: usize) -> Message {
    VideoEvent::now(vec![5u8; len], clock).to_message()
}

// ---------------------------------------------------------------------------------------------
// Full sessions.

#[tokio::test]
async fn full_sessions_of_both_services_leak_nothing() {
    logs();
    let mut shown = Vec::new();
    let before = signature_count();

    // Transcribe, unsigned and signed frames.
    for signing in [FrameSigning::Unsigned, FrameSigning::Signed] {
        let rig = Rig::start(EmulatorConfig::default()).await;
        let client = transcribe_client(rig.endpoint()).frame_signing(signing);
        debug(&mut shown, &client);
        let request = pcm_16k();
        debug(&mut shown, &request);
        let request: StartRequest = request.into();
        debug(&mut shown, &request);
        let stream = client.start(request).await.expect("transcribe starts");
        debug(&mut shown, &stream);
        let (mut audio, mut events) = stream.split();
        for _ in 0..12 {
            audio
                .send_audio(vec![3u8; 3200])
                .await
                .expect("audio accepted");
        }
        debug(&mut shown, &audio);
        audio.finish().await.expect("finish");
        while let Some(event) = tokio::time::timeout(PATIENCE, events.next_event())
            .await
            .expect("events")
        {
            debug(&mut shown, &event.expect("no error"));
        }
        debug(&mut shown, &events);
        debug(&mut shown, &events.stats());
        debug(&mut shown, &events.offsets_learned());
        let records = rig.finish(&mut shown, true).await;
        assert!(
            records.iter().all(|r| r.rejection.is_none()),
            "{records:#?}"
        );
    }

    // Face Liveness through the typed client.
    {
        let rig = Rig::start(EmulatorConfig::default()).await;
        let client = liveness_client(rig.endpoint());
        debug(&mut shown, &client);
        let request = liveness_session();
        debug(&mut shown, &request);
        let stream = client.start(request).await.expect("liveness starts");
        debug(&mut shown, &stream);
        let started = stream.now_millis();
        let (mut video_out, mut events) = stream.split();
        video_out.send_video(vec![1u8; 900]).await.expect("video");
        let first = events
            .next_event()
            .await
            .expect("an event")
            .expect("no error");
        assert!(
            matches!(first, LivenessEvent::ServerSessionInformation(_)),
            "{first:?}"
        );
        debug(&mut shown, &first);
        for _ in 0..4 {
            video_out.send_video(vec![2u8; 900]).await.expect("video");
        }
        let challenge =
            ClientChallenge::FaceMovementAndLight(FaceMovementAndLightClientChallenge {
                challenge_id: "1c5e1f9a-3c2d-4e6f-8a7b-9c0d1e2f3a4b".to_owned(),
                video_start_timestamp: Some(started),
                video_end_timestamp: Some(video_out.now_millis()),
                ..Default::default()
            });
        debug(&mut shown, &challenge);
        video_out
            .send_client_information(challenge)
            .await
            .expect("client information");
        debug(&mut shown, &video_out);
        video_out.finish().await.expect("finish");
        while let Some(event) = tokio::time::timeout(PATIENCE, events.next_event())
            .await
            .expect("events")
        {
            debug(&mut shown, &event.expect("no error"));
        }
        debug(&mut shown, &events);
        let records = rig.finish(&mut shown, true).await;
        assert_eq!(records.len(), 1);
        assert!(records[0].rejection.is_none(), "{records:#?}");
        assert!(
            !records[0].frame_dates_millis.is_empty(),
            "signed frames went through"
        );
    }

    // The raw transport, signed frames.
    {
        let rig = Rig::start(EmulatorConfig::default()).await;
        let clock = Clock::system();
        let config = SessionConfig::default().frame_signing(FrameSigning::Signed);
        debug(&mut shown, &config);
        let connector = Connector::new(config);
        debug(&mut shown, &connector);
        let request = ConnectRequest::new(rig.liveness_url(), "us-east-1", "rekognition")
            .credentials(credentials())
            .clock(clock.clone());
        debug(&mut shown, &request);
        let session = connector.connect(request).await.expect("connects");
        debug(&mut shown, &session);
        shown.push(session.redacted_url());
        let watch = session.watch();
        debug(&mut shown, &watch);
        let (mut sink, mut stream) = session.split();
        for _ in 0..3 {
            sink.send(video(&clock, 700)).await.expect("sent");
        }
        sink.send(video(&clock, 0)).await.expect("end marker");
        sink.close().await.expect("end of stream");
        debug(&mut shown, &sink);
        while let Some(item) = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .expect("events")
        {
            debug(&mut shown, &item.expect("no error"));
        }
        debug(&mut shown, &stream);
        drop(sink);
        drop(stream);
        tokio::time::timeout(PATIENCE, watch.finished())
            .await
            .expect("driver stops");
        debug(&mut shown, &watch);
        rig.finish(&mut shown, true).await;
    }

    let registered = signature_count() - before;
    assert!(
        registered > 100,
        "only {registered} forbidden forms registered: the proxy saw too little"
    );
    assert_clean("full sessions", &shown);
}

// ---------------------------------------------------------------------------------------------
// Every error path within reach.

#[tokio::test]
async fn error_paths_leak_nothing() {
    logs();
    let mut shown = Vec::new();

    // A wrong secret: refused upgrade (Transcribe), then exception frame (Liveness).
    {
        let rig =
            Rig::start(EmulatorConfig::default().rejection_style(RejectionStyle::Http403)).await;
        let error = TranscribeClient::new("us-east-1")
            .endpoint(rig.endpoint())
            .credentials(wrong_secret())
            .start(pcm_16k())
            .await
            .expect_err("the signature cannot match");
        assert!(error.is_auth(), "{error:?}");
        error_chain(&mut shown, &error);
        rig.finish(&mut shown, false).await;
    }
    {
        let rig = Rig::start(EmulatorConfig::default()).await;
        let stream = LivenessClient::new("us-east-1")
            .endpoint(rig.endpoint())
            .credentials(wrong_secret())
            .start(liveness_session())
            .await
            .expect("the upgrade succeeds; the rejection follows the first frame");
        let (mut video_out, mut events) = stream.split();
        let _ = video_out.send_video(vec![1u8; 100]).await;
        let mut errors = 0;
        while let Some(event) = tokio::time::timeout(PATIENCE, events.next_event())
            .await
            .expect("events")
        {
            if let Err(error) = event {
                assert!(error.is_auth(), "{error:?}");
                error_chain(&mut shown, &error);
                errors += 1;
            }
        }
        assert_eq!(errors, 1);
        // Sending on the ended session: a Closed error that carries the cause.
        if let Err(error) = video_out.send_video(vec![1u8; 100]).await {
            error_chain(&mut shown, &error);
        }
        rig.finish(&mut shown, false).await;
    }

    // A wrong session token, both rejection styles, raw transport.
    for style in [RejectionStyle::Http403, RejectionStyle::ExceptionFrame] {
        let rig = Rig::start(EmulatorConfig::default().rejection_style(style)).await;
        let result = Connector::new(SessionConfig::default())
            .connect(
                ConnectRequest::new(rig.transcribe_url(), "us-east-1", "transcribe")
                    .credentials(wrong_token()),
            )
            .await;
        match result {
            Err(error) => {
                error_chain(&mut shown, &error);
            }
            Ok(mut session) => {
                let _ = session.send(Message::new(vec![0u8; 320])).await;
                while let Some(item) = tokio::time::timeout(PATIENCE, session.next())
                    .await
                    .expect("ends")
                {
                    if let Err(error) = item {
                        error_chain(&mut shown, &error);
                    }
                }
            }
        }
        rig.finish(&mut shown, false).await;
    }

    // A skewed host clock, corrected and retried: from the Date header, from an exception
    // frame; and with retries off, the final ClockSkew error.
    for (offset, config) in [
        (3_600_000, EmulatorConfig::default()),
        (
            -3_600_000,
            EmulatorConfig::default().send_date_header(false),
        ),
    ] {
        let rig = Rig::start(config.clock_offset_millis(offset)).await;
        let clock = Clock::system();
        let client = liveness_client(rig.endpoint()).clock(clock.clone());
        let mut stream = client.start(liveness_session()).await.expect("starts");
        stream.send_video(vec![1u8; 100]).await.expect("video");
        stream.finish().await.expect("finish");
        while let Some(event) = tokio::time::timeout(PATIENCE, stream.next_event())
            .await
            .expect("events")
        {
            debug(&mut shown, &event.expect("corrected: no error"));
        }
        for learned in stream.offsets_learned() {
            both(&mut shown, &learned);
        }
        assert!(!stream.offsets_learned().is_empty());
        debug(&mut shown, &stream.stats());
        debug(&mut shown, &clock);
        rig.finish(&mut shown, true).await;
    }
    {
        let rig = Rig::start(
            EmulatorConfig::default()
                .clock_offset_millis(3_600_000)
                .send_date_header(false)
                .rejection_style(RejectionStyle::Http403),
        )
        .await;
        let error = Connector::new(SessionConfig::default().skew_retries(0))
            .connect(
                ConnectRequest::new(rig.transcribe_url(), "us-east-1", "transcribe")
                    .credentials(credentials()),
            )
            .await
            .expect_err("no retry allowed");
        assert!(error.is_clock_skew(), "{error:?}");
        error_chain(&mut shown, &error);
        rig.finish(&mut shown, true).await;
    }

    // Timeouts and a close in mid-stream.
    for fault in [
        Fault::StallBeforeUpgrade,
        Fault::StallAfterUpgrade,
        Fault::CloseMidStream {
            after_frames: 2,
            abrupt: false,
        },
        Fault::CloseMidStream {
            after_frames: 2,
            abrupt: true,
        },
        Fault::Garbage { after_frames: 1 },
    ] {
        let mut rig = Rig::start(EmulatorConfig::default().fault(fault)).await;
        rig.settle = Duration::from_millis(500);
        debug(&mut shown, &fault);
        let client = transcribe_client(rig.endpoint())
            .frame_signing(FrameSigning::Signed)
            .session_config(
                SessionConfig::default()
                    .connect_timeout(Duration::from_millis(300))
                    .idle_timeout(Some(Duration::from_millis(300)))
                    .frame_signing(FrameSigning::Signed),
            );
        match client.start(pcm_16k()).await {
            Err(error) => {
                error_chain(&mut shown, &error);
            }
            Ok(stream) => {
                let (mut audio, mut events) = stream.split();
                let producer = async {
                    for _ in 0..100 {
                        if let Err(error) = audio.send_audio(vec![4u8; 640]).await {
                            return Some(error);
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    None
                };
                let consumer = async {
                    let mut errors = Vec::new();
                    while let Some(event) = events.next_event().await {
                        if let Err(error) = event {
                            errors.push(error);
                        }
                    }
                    errors
                };
                let (send_error, errors) =
                    tokio::time::timeout(PATIENCE, async { tokio::join!(producer, consumer) })
                        .await
                        .expect("the fault ends the session");
                assert!(!errors.is_empty(), "{fault:?}: a typed error");
                for error in errors.iter().chain(send_error.iter()) {
                    error_chain(&mut shown, error);
                }
            }
        }
        rig.finish(&mut shown, true).await;
    }

    // Validation errors, before anything is dialled.
    let transcribe = TranscribeClient::new("us-east-1").credentials(credentials());
    let bad_rate = transcribe
        .start(StartStreamTranscription::new(MediaEncoding::Pcm, 4_000).language_code("en-US"))
        .await
        .expect_err("4 kHz is refused");
    both(&mut shown, &bad_rate);
    if let Some(validation) = bad_rate.validation_error() {
        both(&mut shown, validation);
    }
    let bad_region = TranscribeClient::new("evil.example/x")
        .credentials(credentials())
        .start(pcm_16k())
        .await
        .expect_err("not a region");
    both(&mut shown, &bad_region);
    let bad_session = LivenessClient::new("us-east-1")
        .credentials(credentials())
        .start(StartFaceLivenessSession::new(
            "not-a-uuid",
            320,
            240,
            DEFAULT_CHALLENGE_VERSIONS,
        ))
        .await
        .expect_err("not a UUID");
    both(&mut shown, &bad_session);
    {
        let rig = Rig::start(EmulatorConfig::default()).await;
        let mut stream = transcribe_client(rig.endpoint())
            .start(pcm_16k())
            .await
            .expect("starts");
        let empty = stream
            .send_audio(Bytes::new())
            .await
            .expect_err("empty chunk");
        both(&mut shown, &empty);
        let too_big = stream
            .send_audio(vec![0u8; 40_000])
            .await
            .expect_err("over a second");
        both(&mut shown, &too_big);
        let configuration = ConfigurationEvent::default();
        let not_call_analytics = stream
            .send_configuration(configuration)
            .await
            .expect_err("only Call Analytics takes a configuration");
        both(&mut shown, &not_call_analytics);
        stream.finish().await.expect("finish");
        drain(&mut stream).await;
        let after = stream
            .send_audio(vec![0u8; 320])
            .await
            .expect_err("finished");
        both(&mut shown, &after);
        rig.finish(&mut shown, true).await;
    }

    // Refused ws:// to a host the policy does not take for loopback.
    let refused = Connector::new(SessionConfig::default())
        .connect(
            ConnectRequest::new(
                Url::parse("ws://[::ffff:127.0.0.1]:9/stream-transcription-websocket")
                    .expect("url"),
                "us-east-1",
                "transcribe",
            )
            .credentials(credentials()),
        )
        .await
        .expect_err("refused");
    assert_eq!(refused.kind(), &ErrorKind::PlaintextRefused);
    both(&mut shown, &refused);

    // No credentials at all.
    let no_credentials = Connector::new(SessionConfig::default())
        .connect(ConnectRequest::new(
            Url::parse("ws://127.0.0.1:9/stream-transcription-websocket").expect("url"),
            "us-east-1",
            "transcribe",
        ))
        .await
        .expect_err("no credentials");
    both(&mut shown, &no_credentials);

    assert_clean("error paths", &shown);
}

// ---------------------------------------------------------------------------------------------
// The sans-IO core and the verifier, formatted directly.

#[tokio::test]
async fn core_and_verifier_types_leak_nothing() {
    logs();
    let mut shown = Vec::new();
    let time = ManualTime::new(UNIX_EPOCH + Duration::from_secs(1_767_225_600));
    let clock = Clock::new(time.clone());
    debug(&mut shown, &time);
    debug(&mut shown, &clock);
    let creds = credentials();
    debug(&mut shown, &creds);
    let wrong = wrong_secret();
    debug(&mut shown, &wrong);

    let endpoint = liveness_url(
        &Url::parse("wss://streaming-rekognition.us-east-1.amazonaws.com").expect("url"),
    );
    let presigner = Presigner::new(creds.clone(), "us-east-1", "rekognition");
    debug(&mut shown, &presigner);
    let presigned = presigner.presign(&endpoint, &clock).expect("presigns");
    forbid_signature_hex(presigned.signature());
    both(&mut shown, &presigned);
    both(&mut shown, &RedactedUrl(presigned.url()));
    // The detector catches a real leak: the raw URL carries both the signature and the token.
    let raw_leaks = leaks_in(presigned.url().as_str());
    assert!(
        raw_leaks.iter().any(|l| l == presigned.signature()),
        "{raw_leaks:?}"
    );
    assert!(
        raw_leaks.iter().any(|l| l.starts_with("TOKENTOKEN")),
        "{raw_leaks:?}"
    );

    // A chain of frames, each signature registered.
    let mut signer = EventSigner::new(
        creds.clone(),
        "us-east-1",
        "rekognition",
        presigned.signature(),
        clock.clone(),
    );
    debug(&mut shown, &signer);
    let mut frames = Vec::new();
    for i in 0..4u8 {
        let inner = video(&clock, 64 + usize::from(i))
            .encode()
            .expect("encodes");
        let frame = signer.sign(&inner).expect("signs");
        forbid_signature_bytes(&frame[47..79]);
        frames.push(frame);
        time.advance(Duration::from_millis(250));
    }
    let end = signer.finish().expect("end frame");
    forbid_signature_bytes(&end[47..79]);
    frames.push(end);
    debug(&mut shown, &signer);
    let after_end = signer.sign(b"late").expect_err("chain finished");
    both(&mut shown, &after_end);

    // The verifier, the chain verifier, and their rejections.
    let verifier = Verifier::new(clock.clone()).with_credentials(creds.clone());
    debug(&mut shown, &verifier);
    let target = format!(
        "{}?{}",
        presigned.url().path(),
        presigned.url().query().unwrap_or_default()
    );
    let host = presigned.host_header();
    let upgrade = verifier.verify_upgrade(&target, &host).expect("verifies");
    assert_eq!(upgrade.seed_signature(), presigned.signature());
    debug(&mut shown, &upgrade);
    let mut chain: ChainVerifier = verifier.chain_verifier(&upgrade).expect("a chain");
    debug(&mut shown, &chain);
    for frame in &frames {
        let message = Message::decode(frame).expect("decodes");
        let verified = chain.verify_frame(&message).expect("verifies");
        debug(&mut shown, &verified);
    }
    debug(&mut shown, &chain);
    // A tampered frame: the chain rejects it and explains without the prior signature.
    let mut chain = verifier.chain_verifier(&upgrade).expect("a chain");
    let mut tampered = BytesMut::from(&frames[0][..]);
    let last = tampered.len() - 5;
    tampered[last] ^= 1;
    let tampered = Message::decode(&fix_crc(tampered)).expect("decodes");
    let rejection = chain.verify_frame(&tampered).expect_err("tampered");
    both(&mut shown, &rejection);
    both(&mut shown, rejection.diagnosis());
    debug(&mut shown, &rejection.kind());
    // The wrong secret: the verifier's mismatch diagnosis (canonical request, string to sign).
    let wrong_presigned = Presigner::new(wrong.clone(), "us-east-1", "rekognition")
        .presign(&endpoint, &clock)
        .expect("presigns");
    forbid_signature_hex(wrong_presigned.signature());
    for expected in expected_signatures(wrong_presigned.url(), &creds) {
        forbid_signature_hex(&expected);
    }
    let wrong_target = format!(
        "{}?{}",
        wrong_presigned.url().path(),
        wrong_presigned.url().query().unwrap_or_default()
    );
    let mismatch = verifier
        .verify_upgrade(&wrong_target, &host)
        .expect_err("mismatch");
    both(&mut shown, &mismatch);
    both(&mut shown, mismatch.diagnosis());
    shown.push(mismatch.exception_payload());
    shown.push(mismatch.http_error_body());
    // Too old: a skew rejection, and the evidence parsed back out of it.
    time.advance(Duration::from_secs(3600));
    let expired = verifier
        .verify_upgrade(&target, &host)
        .expect_err("expired");
    both(&mut shown, &expired);
    both(&mut shown, expired.diagnosis());
    let skew = SkewMessage::parse(expired.message()).expect("a skew message");
    debug(&mut shown, &skew);
    debug(&mut shown, &skew.observation(clock.source_now()));
    debug(
        &mut shown,
        &observe_date_header("Thu, 01 Jan 2026 00:00:01 GMT", clock.now(), clock.now()),
    );

    // Decoded frames. A decoded signed envelope is a generic `Message`: its `Debug` shows every
    // header, the `:chunk-signature` bytes included. Only the inner event is formatted here;
    // `a_decoded_envelope_shows_its_chunk_signature_in_debug` covers the envelope itself.
    let inner = Message::decode(&frames[0][79..frames[0].len() - 4]).expect("inner event");
    debug(&mut shown, &inner);
    let mut decoder = FrameDecoder::new();
    let mut garbage =
        BytesMut::from(&b"\x00\x00\x00\x10\x00\x00\x00\x00\xde\xad\xbe\xef\x00\x00\x00\x00"[..]);
    let decode_error = decoder.decode(&mut garbage).expect_err("bad prelude");
    both(&mut shown, &decode_error);
    debug(&mut shown, &decoder);

    // Configuration and small value types.
    let emulator_config = EmulatorConfig::default()
        .credentials(credentials())
        .add_credentials(wrong_secret());
    debug(&mut shown, &emulator_config);
    let observation = skew.observation(clock.source_now());
    debug(&mut shown, &clock.observe(&observation));
    debug(&mut shown, &VideoEvent::now(vec![1u8; 16], &clock));
    debug(&mut shown, &ConfigurationEvent::default());
    debug(
        &mut shown,
        &(FrameSigning::Signed, PlaintextPolicy::Allow, ErrorKind::Tls),
    );

    // Presign errors, expiry included.
    let too_long = presigner
        .clone()
        .expires_in(MAX_EXPIRES_IN + Duration::from_secs(1))
        .presign(&endpoint, &clock)
        .expect_err("over 300 s");
    both(&mut shown, &too_long);

    assert!(signature_count() > 20);
    assert_clean("core and verifier", &shown);
}

/// Recomputes the message CRC of a frame whose body was changed.
fn fix_crc(mut frame: BytesMut) -> Bytes {
    let end = frame.len() - 4;
    let crc = crc32fast::hash(&frame[..end]).to_be_bytes();
    frame[end..].copy_from_slice(&crc);
    frame.freeze()
}

/// A decoded signed envelope's `Debug` masks its `:chunk-signature` value (the codec's `Header`
/// has a redacting `Debug` for that one header), so even the envelope itself is safe to print.
#[test]
fn a_decoded_envelope_hides_its_chunk_signature_in_debug() {
    let clock = Clock::new(ManualTime::new(
        UNIX_EPOCH + Duration::from_secs(1_767_225_600),
    ));
    let seed = "3bda071a1cf6a5d4c3a3a6a572bc5d6b685c567428447c32ecbd5a08f6619b94";
    let mut signer = EventSigner::new(credentials(), "us-east-1", "rekognition", seed, clock);
    let frame = signer.sign(b"inner").expect("signs");
    let envelope = Message::decode(&frame).expect("decodes");
    let shown = format!("{envelope:?} {envelope:#?}");
    let escaped = format!("{:?}", Bytes::copy_from_slice(&frame[47..79]));
    let escaped = escaped.trim_start_matches("b\"").trim_end_matches('"');
    assert!(
        !shown.contains(escaped),
        "the signature bytes are shown:\n{shown}"
    );
    assert!(
        !shown.contains(&hex(&frame[47..79])),
        "the signature hex is shown"
    );
    assert!(
        shown.contains(":chunk-signature"),
        "the header itself is still listed"
    );
    assert!(
        shown.contains(":date"),
        "other headers are shown as they are"
    );
}

// ---------------------------------------------------------------------------------------------
// tungstenite's TRACE records (a dependency this crate cannot silence).

#[tokio::test]
async fn tungstenite_trace_logging_exposes_presigned_urls_known_issue() {
    logs();
    let rig = Rig::start(EmulatorConfig::default()).await;
    let mut shown = Vec::new();
    let mut stream = transcribe_client(rig.endpoint())
        .start(pcm_16k())
        .await
        .expect("starts");
    stream.send_audio(vec![0u8; 320]).await.expect("audio");
    stream.finish().await.expect("finish");
    drain(&mut stream).await;
    rig.finish(&mut shown, true).await;
    let tungstenite = logs().tungstenite.text();
    let found = leaks_in(&tungstenite);
    assert!(
        found.iter().any(|f| f.starts_with("TOKENTOKEN")),
        "tungstenite no longer logs the upgrade request at TRACE: drop the `tungstenite` exclusion \
         in logs() so its records are checked like everyone else's (found {found:?})"
    );
}

// ---------------------------------------------------------------------------------------------
// TLS verification is on by default.

struct TlsServer {
    addr: SocketAddr,
    root: rustls::pki_types::CertificateDer<'static>,
    handshakes_failed: Arc<Mutex<u32>>,
    upgrades: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A WebSocket server on 127.0.0.1 behind TLS with a self-signed certificate for 127.0.0.1
/// made now. It records failed handshakes and the paths of completed upgrades.
async fn tls_server() -> TlsServer {
    let (acceptor, root) = tls::loopback_acceptor();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handshakes_failed: Arc<Mutex<u32>> = Arc::default();
    let upgrades: Arc<Mutex<Vec<String>>> = Arc::default();
    let (failed, seen) = (handshakes_failed.clone(), upgrades.clone());
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let (failed, seen) = (failed.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    *failed.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                    return;
                };
                #[allow(clippy::result_large_err)]
                let callback = |request: &tokio_tungstenite::tungstenite::handshake::server::Request,
                                response: tokio_tungstenite::tungstenite::handshake::server::Response| {
                    seen.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(request.uri().path().to_owned());
                    Ok(response)
                };
                if let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tls, callback).await {
                    while let Some(Ok(_)) = ws.next().await {}
                }
            });
        }
    });
    TlsServer {
        addr,
        root,
        handshakes_failed,
        upgrades,
        task,
    }
}

fn wss_request(addr: SocketAddr) -> ConnectRequest {
    let url = liveness_url(&Url::parse(&format!("wss://{addr}")).expect("url"));
    ConnectRequest::new(url, "us-east-1", "rekognition").credentials(credentials())
}

#[tokio::test]
async fn tls_verification_is_on_by_default_and_a_caller_root_is_honoured() {
    logs();
    let server = tls_server().await;
    let mut shown = Vec::new();

    // Default configuration: the self-signed certificate is not trusted, and the presigned URL
    // is never sent (no upgrade request reached the server).
    let error = tokio::time::timeout(
        PATIENCE,
        Connector::new(SessionConfig::default()).connect(wss_request(server.addr)),
    )
    .await
    .expect("fails promptly")
    .expect_err("an untrusted certificate");
    assert_eq!(error.kind(), &ErrorKind::Tls, "{error:?}");
    assert!(error.to_string().contains("TLS"), "{error}");
    error_chain(&mut shown, &error);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while *server
        .handshakes_failed
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server saw no failed TLS handshake"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        server
            .upgrades
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty(),
        "no request was sent"
    );

    // The same through the typed client.
    let typed = liveness_client(Url::parse(&format!("wss://{}", server.addr)).expect("url"))
        .start(liveness_session())
        .await
        .expect_err("an untrusted certificate");
    assert_eq!(
        typed.transport_error().map(|e| e.kind().clone()),
        Some(ErrorKind::Tls),
        "{typed:?}"
    );
    both(&mut shown, &typed);

    // A configuration that trusts the test root: the upgrade completes.
    let config = SessionConfig::default().tls(tls::trusting(&server.root));
    debug(&mut shown, &config);
    let mut session = tokio::time::timeout(
        PATIENCE,
        Connector::new(config).connect(wss_request(server.addr)),
    )
    .await
    .expect("connects promptly")
    .expect("trusted");
    debug(&mut shown, &session);
    assert_eq!(
        server
            .upgrades
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_slice(),
        ["/start-face-liveness-session-websocket"]
    );
    let watch = session.watch();
    session.disconnect(1000).await.expect("close");
    drop(session);
    tokio::time::timeout(PATIENCE, watch.finished())
        .await
        .expect("driver stops");
    assert_clean("TLS", &shown);
}

// ---------------------------------------------------------------------------------------------
// ws:// only to loopback unless allowed; X-Amz-Expires at most 300 s.

#[tokio::test]
async fn plain_ws_to_a_non_loopback_host_is_refused_before_connecting_unless_allowed() {
    logs();
    let mut shown = Vec::new();
    // The emulator listens on 127.0.0.1; these two addresses reach it through the loopback
    // interface only, but the policy does not take them for loopback, so the refusal can be
    // shown to happen before any connection (the emulator sees none) without any traffic
    // leaving the machine.
    let handle = Emulator::start(EmulatorConfig::default().credentials(credentials()))
        .await
        .expect("emulator");
    let port = handle.local_addr().port();
    let authorities = [
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("0.0.0.0:{port}"),
    ];
    let targets: Vec<Url> = authorities
        .iter()
        .map(|a| transcribe_url(&Url::parse(&format!("ws://{a}")).expect("url")))
        .collect();
    for (authority, target) in authorities.iter().zip(&targets) {
        let error = Connector::new(SessionConfig::default())
            .connect(
                ConnectRequest::new(target.clone(), "us-east-1", "transcribe")
                    .credentials(credentials()),
            )
            .await
            .expect_err("refused");
        assert_eq!(
            error.kind(),
            &ErrorKind::PlaintextRefused,
            "{target}: {error:?}"
        );
        both(&mut shown, &error);
        let typed = transcribe_client(Url::parse(&format!("ws://{authority}")).expect("url"))
            .start(pcm_16k())
            .await
            .expect_err("refused");
        assert_eq!(
            typed.transport_error().map(|e| e.kind().clone()),
            Some(ErrorKind::PlaintextRefused),
            "{typed:?}"
        );
        both(&mut shown, &typed);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        handle.records().is_empty(),
        "refused before any connection: {:#?}",
        handle.records()
    );

    // Allowed: the policy no longer refuses (the connection itself may still fail, e.g. where
    // IPv6 is disabled; only the policy is under test).
    for target in &targets {
        let result = Connector::new(SessionConfig::default().plaintext(PlaintextPolicy::Allow))
            .connect(
                ConnectRequest::new(target.clone(), "us-east-1", "transcribe")
                    .credentials(credentials()),
            )
            .await;
        match result {
            Ok(mut session) => {
                debug(&mut shown, &session);
                session.disconnect(1000).await.expect("close");
            }
            Err(error) => {
                assert_ne!(
                    error.kind(),
                    &ErrorKind::PlaintextRefused,
                    "{target}: {error:?}"
                );
                both(&mut shown, &error);
            }
        }
    }
    handle.shutdown().await;
    assert_clean("plaintext policy", &shown);
}

#[tokio::test]
async fn x_amz_expires_above_300_seconds_is_refused_before_connecting() {
    logs();
    let mut shown = Vec::new();
    let clock = Clock::system();
    let url = transcribe_url(
        &Url::parse("wss://transcribestreaming.us-east-1.amazonaws.com:8443").expect("url"),
    );
    let presigner = Presigner::new(credentials(), "us-east-1", "transcribe");
    for (seconds, ok) in [
        (1, true),
        (60, true),
        (300, true),
        (301, false),
        (3600, false),
        (0, false),
    ] {
        let result = presigner
            .clone()
            .expires_in(Duration::from_secs(seconds))
            .presign(&url, &clock);
        match (result, ok) {
            (Ok(signed), true) => {
                forbid_signature_hex(signed.signature());
                assert!(signed
                    .url()
                    .as_str()
                    .contains(&format!("X-Amz-Expires={seconds}&")));
                both(&mut shown, &signed);
            }
            (Err(error), false) => {
                assert_eq!(error, PresignError::InvalidExpiry { seconds });
                both(&mut shown, &error);
            }
            (result, _) => panic!("X-Amz-Expires={seconds}: {result:?}"),
        }
    }
    let fractional = presigner
        .clone()
        .expires_in(Duration::from_millis(60_500))
        .presign(&url, &clock)
        .expect_err("whole seconds only");
    both(&mut shown, &fractional);

    // Through the session configuration: refused before any connection is made.
    let handle = Emulator::start(EmulatorConfig::default().credentials(credentials()))
        .await
        .expect("emulator");
    let local = transcribe_url(&handle.endpoint());
    let error = Connector::new(SessionConfig::default().url_expires_in(Duration::from_secs(301)))
        .connect(ConnectRequest::new(local, "us-east-1", "transcribe").credentials(credentials()))
        .await
        .expect_err("refused");
    assert_eq!(error.kind(), &ErrorKind::InvalidRequest, "{error:?}");
    assert!(error.to_string().contains("301"), "{error}");
    error_chain(&mut shown, &error);
    let typed = transcribe_client(handle.endpoint())
        .session_config(SessionConfig::default().url_expires_in(Duration::from_secs(301)))
        .start(pcm_16k())
        .await
        .expect_err("refused");
    assert_eq!(
        typed.transport_error().map(|e| e.kind().clone()),
        Some(ErrorKind::InvalidRequest)
    );
    both(&mut shown, &typed);
    // 300 s is accepted end to end.
    let at_limit = transcribe_url(&handle.endpoint());
    let mut session =
        Connector::new(SessionConfig::default().url_expires_in(Duration::from_secs(300)))
            .connect(
                ConnectRequest::new(at_limit, "us-east-1", "transcribe").credentials(credentials()),
            )
            .await
            .expect("300 s is allowed");
    session.disconnect(1000).await.expect("close");
    drop(session);
    let records = handle.wait_for_finished(1, PATIENCE).await;
    assert_eq!(
        records.len(),
        1,
        "only the 300 s attempt connected: {records:#?}"
    );
    handle.shutdown().await;
    assert_clean("X-Amz-Expires", &shown);
}

/// Writes nothing itself: the capture must hold the crate's own TRACE output, or the checks
/// above would pass vacuously.
#[tokio::test]
async fn the_capture_sees_the_crates_trace_output() {
    logs();
    let handle = Emulator::start(EmulatorConfig::default().credentials(credentials()))
        .await
        .expect("emulator");
    let mut stream = transcribe_client(handle.endpoint())
        .start(pcm_16k())
        .await
        .expect("starts");
    stream.finish().await.expect("finish");
    drain(&mut stream).await;
    handle.shutdown().await;
    let log = logs().ours.text();
    for expected in [
        "presigned",
        "sigv4_ws::session",
        "X-Amz-Signature=***",
        "X-Amz-Security-Token=***",
    ] {
        assert!(
            log.contains(expected),
            "the capture lacks {expected:?}; captured:\n{log}"
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
