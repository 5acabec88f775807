#![cfg(feature = "emulator")]
//! The REAL aws-sdk-js-v3 Rekognition streaming client (browser WebSocket wiring, in Node with
//! the `ws` package) against the emulator: `interop/js/liveness_client.mjs`, whose environment
//! contract and JSON-lines output are described in `interop/js/README.md`.
//!
//! Needs `node` (20 or later) on `PATH` and `npm install --no-audit --no-fund` run in
//! `interop/js`. Without them every test here prints a loud note and passes, unless
//! `SIGV4_WS_REQUIRE_NODE` is set (CI sets it), in which case they fail.
//! `SIGV4_WS_INTEROP_VERBOSE=1` prints every run's output (with `--nocapture`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use serde_json::{json, Value};
use sigv4_ws::emulator::{
    ConnectionRecord, Delivery, Emulator, EmulatorConfig, EmulatorHandle, Outcome, RejectionStyle,
};
use sigv4_ws::verify::{RejectionKind, Verifier, SIGNATURE_MISMATCH_MESSAGE};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

/// Longest a client run may take before it is killed and the test fails (the script's own
/// hard timeout, `TIMEOUT_MS`, is 20 s).
const RUN_LIMIT: Duration = Duration::from_secs(40);
/// Longest the emulator may take to finish a connection after the client exited.
const PATIENCE: Duration = Duration::from_secs(10);
const HOUR_MS: i64 = 3_600_000;

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/js")
}

/// What is missing to run the client, if anything.
fn missing_prerequisite() -> Option<String> {
    match std::process::Command::new("node").arg("--version").output() {
        Err(error) => return Some(format!("`node` is not on PATH ({error})")),
        Ok(output) if !output.status.success() => {
            return Some(format!("`node --version` failed ({})", output.status))
        }
        Ok(output) => {
            let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            let major = version
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok());
            if major.is_none_or(|m| m < 20) {
                return Some(format!("`node` is {version}; Node 20 or later is needed"));
            }
        }
    }
    let modules = js_dir().join("node_modules");
    for package in [
        "@aws-sdk/client-rekognitionstreaming",
        "@aws-sdk/middleware-websocket",
        "rekognitionstreaming-legacy",
        "ws",
    ] {
        if !modules.join(package).join("package.json").is_file() {
            return Some(format!("{} has no `{package}`", modules.display()));
        }
    }
    None
}

/// Whether the JS client can run here. Without Node or the npm packages: a loud note and
/// `false`, or a failure when `SIGV4_WS_REQUIRE_NODE` is set.
fn node_ready(test: &str) -> bool {
    let Some(problem) = missing_prerequisite() else {
        return true;
    };
    let required =
        std::env::var_os("SIGV4_WS_REQUIRE_NODE").is_some_and(|v| !v.is_empty() && v != "0");
    let fix = format!(
        "run `npm install --no-audit --no-fund` in {} (and put Node 20+ on PATH)",
        js_dir().display()
    );
    if required {
        panic!("{test}: the JS interop test cannot run: {problem}. SIGV4_WS_REQUIRE_NODE is set, so this is a failure: {fix}.");
    }
    eprintln!(
        "\n************************************************************************\n\
         SKIPPED {test}: the real aws-sdk-js-v3 interop test did not run.\n\
         Reason: {problem}.\n\
         To run it: {fix}. Set SIGV4_WS_REQUIRE_NODE=1 to make this a failure.\n\
         ************************************************************************\n"
    );
    false
}

/// One run of `liveness_client.mjs`.
struct Run {
    label: String,
    code: Option<i32>,
    lines: Vec<Value>,
    raw: Vec<String>,
    stderr: String,
}

impl Run {
    /// Every stdout line of this `kind`.
    fn of(&self, kind: &str) -> Vec<&Value> {
        self.lines.iter().filter(|l| l["kind"] == kind).collect()
    }

    /// The final stdout line.
    fn last(&self) -> &Value {
        self.lines.last().unwrap_or(&Value::Null)
    }

    /// The `event` lines' types, in order.
    fn event_types(&self) -> Vec<&str> {
        self.of("event")
            .iter()
            .filter_map(|l| l["type"].as_str())
            .collect()
    }

    /// The `:date` of every message the SDK sent, in order.
    fn sent_dates(&self) -> Vec<i64> {
        self.of("sent")
            .iter()
            .map(|l| {
                l["date_ms"]
                    .as_i64()
                    .unwrap_or_else(|| panic!("a sent line without date_ms: {l}\n{self}"))
            })
            .collect()
    }

    fn line(&self, kind: &str) -> &Value {
        self.of(kind)
            .first()
            .copied()
            .unwrap_or_else(|| panic!("no `{kind}` line\n{self}"))
    }

    #[track_caller]
    fn assert_exit(&self, code: i32) {
        assert_eq!(self.code, Some(code), "exit code\n{self}");
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "--- {} (exit {:?}) stdout:", self.label, self.code)?;
        for line in &self.raw {
            writeln!(f, "{line}")?;
        }
        writeln!(f, "--- stderr:\n{}---", self.stderr)
    }
}

/// How to run the client.
struct Client<'a> {
    label: &'a str,
    client: &'a str,
    offset_ms: i64,
    credentials: Credentials,
    session_id: &'a str,
    env: Vec<(&'a str, &'a str)>,
}

impl<'a> Client<'a> {
    fn new(label: &'a str, client: &'a str, handle: &EmulatorHandle) -> Self {
        Client {
            label,
            client,
            offset_ms: 0,
            credentials: handle.credentials(),
            session_id: "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b",
            env: Vec::new(),
        }
    }

    fn offset(mut self, ms: i64) -> Self {
        self.offset_ms = ms;
        self
    }

    fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    fn session_id(mut self, id: &'a str) -> Self {
        self.session_id = id;
        self
    }

    fn env(mut self, name: &'a str, value: &'a str) -> Self {
        self.env.push((name, value));
        self
    }

    /// Spawns `node liveness_client.mjs` against `handle` and waits for it (killing it after
    /// [`RUN_LIMIT`]).
    async fn run(self, handle: &EmulatorHandle) -> Run {
        let script = js_dir().join("liveness_client.mjs");
        let mut command = Command::new("node");
        command
            .arg(&script)
            .current_dir(js_dir())
            .env("ENDPOINT", format!("http://{}", handle.local_addr()))
            .env("AWS_REGION", "us-east-1")
            .env("ACCESS_KEY_ID", self.credentials.access_key_id())
            .env("SECRET_ACCESS_KEY", self.credentials.secret_access_key())
            .env("SESSION_ID", self.session_id)
            .env("CLIENT", self.client)
            .env("CLOCK_OFFSET_MS", self.offset_ms.to_string())
            .env("TIMEOUT_MS", "20000")
            .env_remove("SESSION_TOKEN")
            .env_remove("WS_HOST_HEADER")
            .env_remove("CHALLENGE_VERSIONS")
            .env_remove("VIDEO_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (name, value) in &self.env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "{}: cannot spawn node {}: {e}",
                self.label,
                script.display()
            )
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let out_task = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let mut raw = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                raw.push(line);
            }
            raw
        });
        let err_task = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        let waited = tokio::time::timeout(RUN_LIMIT, child.wait()).await;
        let (code, timed_out) = match waited {
            Ok(Ok(status)) => (status.code(), false),
            Ok(Err(error)) => panic!("{}: waiting for node failed: {error}", self.label),
            Err(_elapsed) => {
                let _ = child.kill().await;
                (None, true)
            }
        };
        let raw = out_task.await.unwrap_or_default();
        let stderr = err_task.await.unwrap_or_default();
        let lines = raw
            .iter()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|_| json!({"kind": "unparsed", "text": l}))
            })
            .collect();
        let run = Run {
            label: self.label.to_owned(),
            code,
            lines,
            raw,
            stderr,
        };
        if std::env::var_os("SIGV4_WS_INTEROP_VERBOSE").is_some() {
            eprintln!("{run}");
        }
        assert!(
            !timed_out,
            "the client did not finish within {RUN_LIMIT:?} and was killed\n{run}"
        );
        run
    }
}

async fn emulator(config: EmulatorConfig) -> EmulatorHandle {
    Emulator::start(config).await.expect("the emulator starts")
}

/// The record of the connection whose `session-id` is `session_id`.
async fn record_of(handle: &EmulatorHandle, session_id: &str, run: &Run) -> ConnectionRecord {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let found = handle.records().into_iter().find(|r| {
            r.params
                .iter()
                .any(|(k, v)| k == "session-id" && v == session_id)
        });
        match found {
            Some(record) if record.is_finished() => return record,
            other => {
                if tokio::time::Instant::now() >= deadline {
                    panic!("no finished connection for session {session_id}: {other:#?}\n{run}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn emulator_now_millis(handle: &EmulatorHandle) -> i64 {
    millis(handle.clock().now())
}

/// `yyyymmddThhmmssZ` to seconds since the epoch, checked character by character.
fn compact_secs(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = &b[range];
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let (y, m, d) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hh, mm, ss) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), March-based year.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// AWS's `Signature expired: <t1> is now earlier than <t2> (<t3> - 5 min.)`, parsed without a
/// regular expression: the three times in seconds.
fn parse_signature_expired(message: &str) -> Option<(i64, i64, i64)> {
    let rest = message.strip_prefix("Signature expired: ")?;
    let (t1, rest) = rest.split_at_checked(16)?;
    let rest = rest.strip_prefix(" is now earlier than ")?;
    let (t2, rest) = rest.split_at_checked(16)?;
    let rest = rest.strip_prefix(" (")?;
    let (t3, rest) = rest.split_at_checked(16)?;
    if rest != " - 5 min.)" {
        return None;
    }
    Some((compact_secs(t1)?, compact_secs(t2)?, compact_secs(t3)?))
}

#[test]
fn the_signature_expired_parser_takes_the_aws_format_only() {
    // protocol.md 5.1 / interop/js/README.md example.
    let parsed = parse_signature_expired(
        "Signature expired: 20261125T092019Z is now earlier than 20261125T101519Z (20261125T102019Z - 5 min.)",
    );
    let t3 = compact_secs("20261125T102019Z").unwrap();
    assert_eq!(t3, 1_795_602_019);
    assert_eq!(parsed, Some((t3 - 3600, t3 - 300, t3)));
    assert_eq!(compact_secs("19700101T000000Z"), Some(0));
    assert_eq!(compact_secs("20000229T235959Z"), Some(951_868_799));
    for bad in [
        "Signature expired: 20261125T092019Z is now earlier than 20261125T101519Z (20261125T102019Z - 5 min.",
        "Signature expired: 20261125T092019Z is now earlier than 20261125T101519Z (20261125T102019Z + 5 min.)",
        "Signature not yet current: 20261125T092019Z is still later than 20261125T101519Z (20261125T102019Z + 5 min.)",
        "Signature expired: 2026112T092019Z is now earlier than 20261125T101519Z (20261125T102019Z - 5 min.)",
        "Signature expired: 20261325T092019Z is now earlier than 20261125T101519Z (20261125T102019Z - 5 min.)",
        "Signature expired: 20261125T092019Z  is now earlier than 20261125T101519Z (20261125T102019Z - 5 min.)",
        "Signature expired: 20261125T092019Z is now earlier than 20261125T101519Z (20261125T102019Z - 5 min.) ",
    ] {
        assert_eq!(parse_signature_expired(bad), None, "{bad}");
    }
}

/// The end of every successful run: exit 0, `done` last, the session information and the
/// disconnection surfaced by the SDK, and an emulator record in which the URL and every frame
/// the SDK sent (the end frame included) verified.
async fn assert_clean_session(
    handle: &EmulatorHandle,
    run: &Run,
    session_id: &str,
) -> ConnectionRecord {
    run.assert_exit(0);
    assert_eq!(run.last()["kind"], "done", "{run}");
    let events = run.event_types();
    assert!(
        events.contains(&"ServerSessionInformationEvent"),
        "{events:?}\n{run}"
    );
    assert!(events.contains(&"DisconnectionEvent"), "{events:?}\n{run}");

    let record = record_of(handle, session_id, run).await;
    assert_eq!(record.upgrade_status, Some(101), "{record:#?}\n{run}");
    assert_eq!(record.rejection, None, "{record:#?}\n{run}");
    assert_eq!(record.outcome, Outcome::Completed, "{record:#?}\n{run}");
    let sent = run.of("sent");
    assert!(
        sent.last().is_some_and(|l| l["end_frame"] == true),
        "the SDK's last message is the signed empty end frame\n{run}"
    );
    assert!(sent.iter().all(|l| l["crc_ok"] == true), "{run}");
    assert!(!record.frame_dates_millis.is_empty(), "{record:#?}\n{run}");
    assert_eq!(
        record.frame_dates_millis,
        run.sent_dates(),
        "every frame the SDK sent verified, in order, the end frame included\n{run}"
    );
    let video_stamps: Vec<i64> = sent
        .iter()
        .filter(|l| l["inner_event_type"] == "VideoEvent")
        .filter_map(|l| l["timestamp_millis"].as_i64())
        .collect();
    assert_eq!(record.video_timestamps_millis, video_stamps, "{run}");
    record
}

// ---------------------------------------------------------------------------------------------
// 1. The current client, clocks agreeing.

#[tokio::test]
async fn current_sdk_streams_and_every_signed_frame_verifies() {
    if !node_ready("current_sdk_streams_and_every_signed_frame_verifies") {
        return;
    }
    let handle = emulator(EmulatorConfig::default()).await;
    let session = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
    let run = Client::new("current, offset 0", "current", &handle)
        .session_id(session)
        .run(&handle)
        .await;
    let start = run.line("start");
    assert_eq!(start["client_version"], "3.1112.0", "{run}");
    let record = assert_clean_session(&handle, &run, session).await;
    assert_eq!(
        record.sent,
        ["ServerSessionInformationEvent", "DisconnectionEvent"],
        "{run}"
    );
    assert_eq!(run.of("input_end").len(), 1, "{run}");

    // The SDK signed `host:127.0.0.1` and connected with `Host: 127.0.0.1:PORT`: the URL
    // verified only because the emulator accepts a signed Host without its port.
    let port_host = handle.local_addr().to_string();
    assert_eq!(record.host.as_deref(), Some(port_host.as_str()), "{run}");
    assert_eq!(record.signed_host.as_deref(), Some("127.0.0.1"), "{run}");

    // `x-amz-user-agent` is in the URL and part of the signed canonical query: the URL
    // verifies as sent, and not with that parameter changed or removed.
    let url_line = run.line("url");
    let user_agent = url_line["x_amz_user_agent"].as_str().unwrap_or_default();
    assert!(user_agent.starts_with("aws-sdk-js/"), "{run}");
    assert_eq!(url_line["user_agent"], Value::Null, "{run}");
    let url = url::Url::parse(url_line["url"].as_str().unwrap()).unwrap();
    let path_and_query = &url[url::Position::BeforePath..];
    let verifier = Verifier::new(handle.clock()).with_credentials(handle.credentials());
    verifier
        .verify_upgrade(path_and_query, "127.0.0.1")
        .unwrap_or_else(|r| panic!("the SDK's URL does not verify: {r:?}\n{run}"));
    let with_port = verifier.verify_upgrade(path_and_query, &port_host);
    assert_eq!(
        with_port.map(|_| ()).map_err(|r| r.kind()),
        Err(RejectionKind::SignatureMismatch),
        "the SDK did not sign the port"
    );
    let encoded_agent = url
        .query_pairs()
        .find(|(k, _)| k == "x-amz-user-agent")
        .map(|(_, v)| v.into_owned())
        .expect("x-amz-user-agent in the URL");
    for (what, changed) in [
        (
            "changed",
            path_and_query.replace(
                &format!("x-amz-user-agent={}", encoded_agent.replace('/', "%2F")),
                "x-amz-user-agent=aws-sdk-js%2F0.0.0",
            ),
        ),
        (
            "removed",
            path_and_query.replace(
                &format!("&x-amz-user-agent={}", encoded_agent.replace('/', "%2F")),
                "",
            ),
        ),
    ] {
        assert_ne!(
            changed, path_and_query,
            "{what}: the replacement found nothing"
        );
        let verdict = verifier.verify_upgrade(&changed, "127.0.0.1");
        assert_eq!(
            verdict.map(|_| ()).map_err(|r| r.kind()),
            Err(RejectionKind::SignatureMismatch),
            "x-amz-user-agent {what}: {changed}"
        );
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn a_strict_host_check_refuses_the_sdk_unless_it_sends_the_signed_host() {
    if !node_ready("a_strict_host_check_refuses_the_sdk_unless_it_sends_the_signed_host") {
        return;
    }
    let handle = emulator(EmulatorConfig::default().accept_host_without_port(false)).await;
    let refused_id = "1a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
    let signed_id = "2a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
    let (refused, signed) = tokio::join!(
        Client::new("current, strict host", "current", &handle)
            .session_id(refused_id)
            .run(&handle),
        Client::new(
            "current, strict host, WS_HOST_HEADER=signed",
            "current",
            &handle
        )
        .session_id(signed_id)
        .env("WS_HOST_HEADER", "signed")
        .run(&handle),
    );
    // Host 127.0.0.1:PORT, signed as 127.0.0.1: a signature mismatch.
    refused.assert_exit(3);
    let exception = refused.last();
    assert_eq!(exception["kind"], "exception", "{refused}");
    assert_eq!(exception["name"], "InvalidSignatureException", "{refused}");
    assert_eq!(
        exception["message"], SIGNATURE_MISMATCH_MESSAGE,
        "{refused}"
    );
    let record = record_of(&handle, refused_id, &refused).await;
    assert_eq!(record.signed_host, None);
    let rejection = record.rejection.expect("a rejection");
    assert_eq!(rejection.kind, Some(RejectionKind::SignatureMismatch));
    let diagnosis = rejection.diagnosis.expect("a diagnosis").to_string();
    assert!(
        diagnosis.contains("the Host you signed (`127.0.0.1`) differs"),
        "{diagnosis}"
    );
    // Sending exactly the signed Host passes the strict check.
    let record = assert_clean_session(&handle, &signed, signed_id).await;
    assert_eq!(record.host.as_deref(), Some("127.0.0.1"));
    assert_eq!(record.signed_host.as_deref(), Some("127.0.0.1"));
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 2. and 3. The emulator an hour ahead: the current client applies its offset to the URL and
// every frame; the legacy one only to the URL.

#[tokio::test]
async fn current_sdk_with_a_clock_offset_passes_against_a_server_an_hour_ahead() {
    if !node_ready("current_sdk_with_a_clock_offset_passes_against_a_server_an_hour_ahead") {
        return;
    }
    let handle = emulator(EmulatorConfig::default().clock_offset_millis(HOUR_MS)).await;
    let session = "3a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
    let run = Client::new("current, offset +1 h", "current", &handle)
        .offset(HOUR_MS)
        .session_id(session)
        .run(&handle)
        .await;
    let record = assert_clean_session(&handle, &run, session).await;
    let server_now = emulator_now_millis(&handle);
    let near_server = |ms: i64| (server_now - ms).abs() < 60_000;
    let url_date = record.url_date.map(millis).expect("X-Amz-Date");
    assert!(
        near_server(url_date),
        "URL signed at {url_date}, server {server_now}"
    );
    for date in &record.frame_dates_millis {
        assert!(
            near_server(*date),
            "frame signed at {date}, server {server_now}\n{run}"
        );
    }
    assert!(!record.video_timestamps_millis.is_empty());
    for stamp in &record.video_timestamps_millis {
        assert!(
            near_server(*stamp),
            "TimestampMillis {stamp}, server {server_now}"
        );
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn legacy_sdk_with_a_clock_offset_gets_its_frames_refused_as_expired() {
    if !node_ready("legacy_sdk_with_a_clock_offset_gets_its_frames_refused_as_expired") {
        return;
    }
    let handle = emulator(EmulatorConfig::default().clock_offset_millis(HOUR_MS)).await;
    let session = "4a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
    let run = Client::new("legacy, offset +1 h", "legacy", &handle)
        .offset(HOUR_MS)
        .session_id(session)
        .run(&handle)
        .await;
    let start = run.line("start");
    assert_eq!(start["client_version"], "3.398.0", "{run}");
    assert_eq!(start["middleware_websocket_version"], "3.398.0", "{run}");

    run.assert_exit(3);
    let exception = run.last();
    assert_eq!(exception["kind"], "exception", "{run}");
    assert_eq!(exception["name"], "InvalidSignatureException", "{run}");
    let message = exception["message"].as_str().unwrap_or_default();
    let Some((signed, limit, now)) = parse_signature_expired(message) else {
        panic!("not AWS's `Signature expired` text: {message:?}\n{run}")
    };
    assert_eq!(now - limit, 300, "{message}");
    // The refused frame is the first one, signed with the raw clock (an hour behind).
    let first = run.sent_dates()[0];
    assert_eq!(signed, first.div_euclid(1000), "{message}\n{run}");
    let server_now = emulator_now_millis(&handle) / 1000;
    assert!(
        (server_now - now).abs() < 60,
        "{message} vs server {server_now}"
    );
    assert!((now - signed - 3600).abs() < 60, "{message}");

    let record = record_of(&handle, session, &run).await;
    // The URL (presigned with the offset) verified; the first frame did not.
    assert_eq!(record.upgrade_status, Some(101));
    assert_eq!(record.signed_host.as_deref(), Some("127.0.0.1"));
    let url_date = record.url_date.map(millis).expect("X-Amz-Date") / 1000;
    assert!((server_now - url_date).abs() < 60, "URL date {url_date}");
    assert!(record.frame_dates_millis.is_empty(), "{record:#?}");
    assert_eq!(record.outcome, Outcome::Rejected);
    let rejection = record.rejection.expect("a rejection");
    assert_eq!(rejection.kind, Some(RejectionKind::SignatureExpired));
    assert_eq!(rejection.delivery, Delivery::ExceptionFrame);
    assert_eq!(rejection.exception_type, "InvalidSignatureException");
    assert_eq!(rejection.message, message);
    assert_eq!(record.close_sent, Some(1008));
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 4. A wrong secret, both clients.

fn wrong_secret(handle: &EmulatorHandle) -> Credentials {
    let good = handle.credentials();
    let mut secret = good.secret_access_key().to_owned();
    let last = secret
        .pop()
        .map_or('x', |c| if c == 'x' { 'y' } else { 'x' });
    secret.push(last);
    Credentials::new(good.access_key_id(), secret, None, None, "wrong")
}

#[tokio::test]
async fn both_sdks_surface_the_emulators_exception_for_a_wrong_secret() {
    if !node_ready("both_sdks_surface_the_emulators_exception_for_a_wrong_secret") {
        return;
    }
    let handle = emulator(EmulatorConfig::default()).await;
    let current_id = "5a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
    let legacy_id = "6a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
    let (current, legacy) = tokio::join!(
        Client::new("current, wrong secret", "current", &handle)
            .credentials(wrong_secret(&handle))
            .session_id(current_id)
            .run(&handle),
        Client::new("legacy, wrong secret", "legacy", &handle)
            .credentials(wrong_secret(&handle))
            .session_id(legacy_id)
            .run(&handle),
    );
    for (run, id) in [(&current, current_id), (&legacy, legacy_id)] {
        run.assert_exit(3);
        let record = record_of(&handle, id, run).await;
        let rejection = record.rejection.clone().expect("a rejection");
        assert_eq!(rejection.kind, Some(RejectionKind::SignatureMismatch));
        assert_eq!(rejection.delivery, Delivery::ExceptionFrame);
        let exception = run.last();
        assert_eq!(exception["kind"], "exception", "{run}");
        assert_eq!(
            exception["name"],
            rejection.exception_type.as_str(),
            "{run}"
        );
        assert_eq!(exception["message"], rejection.message.as_str(), "{run}");
        assert_eq!(rejection.message, SIGNATURE_MISMATCH_MESSAGE);
        // The exception came after the client's first message, not behind the 101.
        assert!(!run.of("sent").is_empty(), "{run}");
        assert_eq!(record.sent, ["InvalidSignatureException"]);
        assert_eq!(record.close_sent, Some(1008));
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn both_sdks_report_an_http_403_refusal_as_a_connect_error() {
    if !node_ready("both_sdks_report_an_http_403_refusal_as_a_connect_error") {
        return;
    }
    let handle = emulator(EmulatorConfig::default().rejection_style(RejectionStyle::Http403)).await;
    let (current, legacy) = tokio::join!(
        Client::new("current, wrong secret, HTTP 403", "current", &handle)
            .credentials(wrong_secret(&handle))
            .run(&handle),
        Client::new("legacy, wrong secret, HTTP 403", "legacy", &handle)
            .credentials(wrong_secret(&handle))
            .run(&handle),
    );
    for run in [&current, &legacy] {
        // A browser-style client sees no status or body: only its connect timeout, plus the
        // `ws` error text the script adds.
        run.assert_exit(4);
        let error = run.last();
        assert_eq!(error["kind"], "error", "{run}");
        assert_eq!(error["phase"], "connect", "{run}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains("Unexpected server response: 403"), "{run}");
    }
    let records = handle.wait_for_finished(2, PATIENCE).await;
    assert_eq!(records.len(), 2);
    for record in &records {
        let rejection = record.rejection.as_ref().expect("a rejection");
        assert_eq!(rejection.delivery, Delivery::HttpStatus(403));
        assert_eq!(rejection.message, SIGNATURE_MISMATCH_MESSAGE);
    }
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The ChallengeEvent of a non-1.0.0-light challenge, as the SDKs see it.

#[tokio::test]
async fn the_current_sdk_surfaces_the_challenge_event_and_the_legacy_one_drops_it() {
    if !node_ready("the_current_sdk_surfaces_the_challenge_event_and_the_legacy_one_drops_it") {
        return;
    }
    let handle = emulator(EmulatorConfig::default()).await;
    let current_id = "7a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
    let legacy_id = "8a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
    let versions = "FaceMovementChallenge_1.0.0";
    let (current, legacy) = tokio::join!(
        Client::new("current, movement challenge", "current", &handle)
            .session_id(current_id)
            .env("CHALLENGE_VERSIONS", versions)
            .run(&handle),
        Client::new("legacy, movement challenge", "legacy", &handle)
            .session_id(legacy_id)
            .env("CHALLENGE_VERSIONS", versions)
            .run(&handle),
    );
    let record = assert_clean_session(&handle, &current, current_id).await;
    assert_eq!(
        record.sent,
        [
            "ChallengeEvent",
            "ServerSessionInformationEvent",
            "DisconnectionEvent"
        ]
    );
    let challenge = current
        .of("event")
        .into_iter()
        .find(|l| l["type"] == "ChallengeEvent")
        .unwrap_or_else(|| panic!("no ChallengeEvent surfaced\n{current}"));
    assert_eq!(
        challenge["body"],
        json!({"Type": "FaceMovementChallenge", "Version": "1.0.0"}),
        "{current}"
    );
    let info = current
        .of("event")
        .into_iter()
        .find(|l| l["type"] == "ServerSessionInformationEvent")
        .expect("session information");
    assert!(
        info["body"]["SessionInformation"]["Challenge"]["FaceMovementChallenge"].is_object(),
        "{current}"
    );

    // The legacy model has no ChallengeEvent: received on the wire, never surfaced. Nor has
    // it a FaceMovementChallenge member, so its light-challenge information is refused.
    legacy.assert_exit(3);
    assert_eq!(legacy.last()["name"], "ValidationException", "{legacy}");
    assert!(
        legacy.last()["message"]
            .as_str()
            .is_some_and(|m| m.contains("exactly one member, FaceMovementChallenge")),
        "{legacy}"
    );
    assert!(
        legacy
            .of("recv")
            .iter()
            .any(|l| l["event_type"] == "ChallengeEvent"),
        "{legacy}"
    );
    assert!(
        !legacy.event_types().contains(&"ChallengeEvent"),
        "{legacy}"
    );
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The service speaks first: a client that waits for the session information, as Amplify web
// does (its recorder starts on the ServerSessionInformationEvent), still completes.

#[tokio::test]
async fn an_sdk_client_that_waits_for_the_session_information_completes() {
    if !node_ready("an_sdk_client_that_waits_for_the_session_information_completes") {
        return;
    }
    let handle = emulator(EmulatorConfig::default()).await;
    let light_id = "9a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
    let movement_id = "9b1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
    let (light, movement) = tokio::join!(
        Client::new("current, waits, light 2.0.0", "current", &handle)
            .session_id(light_id)
            .env("WAIT_FOR_SESSION_INFO", "1")
            .env(
                "CHALLENGE_VERSIONS",
                "FaceMovementAndLightChallenge_2.0.0,FaceMovementChallenge_1.0.0"
            )
            .run(&handle),
        Client::new("current, waits, movement 1.0.0", "current", &handle)
            .session_id(movement_id)
            .env("WAIT_FOR_SESSION_INFO", "1")
            .env("CHALLENGE_VERSIONS", "FaceMovementChallenge_1.0.0")
            .run(&handle),
    );
    for (run, id, kind) in [
        (&light, light_id, "FaceMovementAndLightChallenge"),
        (&movement, movement_id, "FaceMovementChallenge"),
    ] {
        let record = assert_clean_session(&handle, run, id).await;
        assert_eq!(
            record.sent,
            [
                "ChallengeEvent",
                "ServerSessionInformationEvent",
                "DisconnectionEvent"
            ],
            "{run}"
        );
        // Nothing was sent before the session information surfaced in the SDK.
        assert_eq!(run.of("input_start").len(), 1, "{run}");
        assert_eq!(
            run.event_types()[..2],
            ["ChallengeEvent", "ServerSessionInformationEvent"],
            "{run}"
        );
        let challenge = run
            .of("event")
            .into_iter()
            .find(|l| l["type"] == "ChallengeEvent")
            .unwrap_or_else(|| panic!("no ChallengeEvent\n{run}"));
        assert_eq!(challenge["body"]["Type"], kind, "{run}");
    }
    handle.shutdown().await;
}
