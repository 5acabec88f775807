//! The `stream_file` example CLI, run as a process against the emulator (in-process with
//! `--emulator`, or `stream_file serve` in another process), on 127.0.0.1 only.
//!
//! The binary is found as `tests/support/example_bin.rs` says: when running only this target
//! (`cargo test --all-features --test cli`), build the examples first.
//!
//! Every child gets an environment with no AWS credentials or profile, instance metadata
//! disabled and empty config files, so nothing here can reach AWS.
#![cfg(all(feature = "emulator", feature = "transcribe", feature = "liveness"))]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A safety net against a hung child, not a performance bound.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

#[path = "support/example_bin.rs"]
mod example_bin;

fn binary() -> PathBuf {
    example_bin::example_binary("stream_file")
}

fn fixture(relative: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(relative)
        .display()
        .to_string()
}

/// A fresh scratch directory under Cargo's `target/tmp` (never the system temp directory).
fn scratch() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "stream_file_cli_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The command with an environment that cannot reach AWS: no credentials, no profile, no
/// instance metadata, empty config files.
fn command(args: &[&str]) -> Command {
    let dir = scratch();
    let config = dir.join("config");
    let credentials = dir.join("credentials");
    std::fs::write(&config, "").expect("empty config");
    std::fs::write(&credentials, "").expect("empty credentials");
    let mut cmd = Command::new(binary());
    cmd.args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// Runs to completion (killed after [`CHILD_TIMEOUT`]).
fn run_command(mut cmd: Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn stream_file");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let status = wait_with_timeout(&mut child, CHILD_TIMEOUT);
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("stream_file did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run(args: &[&str]) -> Output {
    run_command(command(args))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// Every stdout line parsed as JSON (the test fails on a line that is not).
fn json_lines(output: &Output) -> Vec<Value> {
    text(&output.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{}", describe(output)))
        })
        .collect()
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// The final transcripts of the TranscriptEvents.
fn final_transcripts(events: &[Value]) -> Vec<String> {
    of_type(events, "TranscriptEvent")
        .iter()
        .flat_map(|e| {
            e["event"]["Transcript"]["Results"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|r| r["IsPartial"] == false)
        .filter_map(|r| {
            r["Alternatives"][0]["Transcript"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// Asserts a failure: the exit code, exactly one line on stderr containing `says`, no backtrace.
fn assert_fails(output: &Output, code: i32, says: &str) {
    assert_eq!(output.status.code(), Some(code), "{}", describe(output));
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr\n{}",
        describe(output)
    );
    assert!(lines[0].starts_with("error: "), "{}", describe(output));
    assert!(
        lines[0].to_lowercase().contains(&says.to_lowercase()),
        "stderr should say {says:?}\n{}",
        describe(output)
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{}",
        describe(output)
    );
}

fn transcribe_ok(extra: &[&str], file: &str) -> Vec<Value> {
    let mut args = vec!["transcribe", "--emulator", "--fast", "--json"];
    args.extend_from_slice(extra);
    let path = fixture(file);
    args.push(&path);
    let output = run(&args);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let events = json_lines(&output);
    assert_eq!(
        of_type(&events, "connected").len(),
        1,
        "{}",
        describe(&output)
    );
    assert!(
        !final_transcripts(&events).is_empty(),
        "no final transcript\n{}",
        describe(&output)
    );
    let done = of_type(&events, "done");
    assert_eq!(done.len(), 1, "{}", describe(&output));
    assert_eq!(done[0]["interrupted"], false);
    events
}

fn audio_sent_millis(events: &[Value]) -> u64 {
    of_type(events, "done")[0]["audioSentMillis"]
        .as_u64()
        .expect("audioSentMillis")
}

#[test]
fn transcribes_wav() {
    let events = transcribe_ok(&[], "audio/hello.wav");
    let sent = audio_sent_millis(&events);
    assert!((6_650..=6_750).contains(&sent), "sent {sent} ms");
    let input = of_type(&events, "input");
    assert_eq!(input[0]["mediaEncoding"], "pcm");
    assert_eq!(input[0]["sampleRate"], 16_000);
}

#[test]
fn transcribes_flac_decoded_and_passed_through() {
    let decoded = transcribe_ok(&[], "audio/hello.flac");
    assert!((6_650..=6_750).contains(&audio_sent_millis(&decoded)));
    let passed = transcribe_ok(&["--media-encoding", "flac"], "audio/hello.flac");
    assert_eq!(of_type(&passed, "input")[0]["mediaEncoding"], "flac");
    assert!((6_650..=6_750).contains(&audio_sent_millis(&passed)));
}

#[test]
fn transcribes_mp3() {
    let events = transcribe_ok(&[], "audio/hello.mp3");
    assert!((6_600..=6_850).contains(&audio_sent_millis(&events)));
}

#[test]
fn transcribes_ogg_opus_passed_through_and_resampled_stereo() {
    let opus = transcribe_ok(&["--media-encoding", "ogg-opus"], "audio/hello.ogg");
    assert_eq!(of_type(&opus, "input")[0]["mediaEncoding"], "ogg-opus");
    let stereo = transcribe_ok(&[], "audio/hello_44k_stereo.wav");
    assert!((1_650..=1_750).contains(&audio_sent_millis(&stereo)));
}

#[test]
fn transcribes_medical_and_call_analytics() {
    let medical = transcribe_ok(
        &["--medical", "--specialty", "CARDIOLOGY"],
        "audio/hello.wav",
    );
    assert!(of_type(&medical, "connected")[0]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("Medical"));
    let path = fixture("audio/hello.wav");
    let output = run(&[
        "transcribe",
        "--emulator",
        "--fast",
        "--json",
        "--call-analytics",
        &path,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let events = json_lines(&output);
    let finals: Vec<&Value> = of_type(&events, "UtteranceEvent")
        .into_iter()
        .filter(|e| e["event"]["IsPartial"] == false)
        .collect();
    assert!(!finals.is_empty(), "{}", describe(&output));
    assert_eq!(of_type(&events, "done")[0]["finalResults"], finals.len());
}

#[test]
fn human_output_has_timestamped_final_lines() {
    let output = run(&[
        "transcribe",
        "--emulator",
        "--fast",
        &fixture("audio/hello.wav"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = text(&output.stdout);
    let finals: Vec<&str> = stdout.lines().filter(|l| l.starts_with('[')).collect();
    assert!(!finals.is_empty(), "{}", describe(&output));
    for line in &finals {
        let bytes = line.as_bytes();
        // [mm:ss.cc-mm:ss.cc] text
        assert!(
            line.len() > 20 && bytes[18] == b']' && bytes[9] == b'-',
            "{line}"
        );
    }
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("done: sent 00:06.70 of audio"),
        "{}",
        describe(&output)
    );
}

/// The in-process emulator's clock is off by an hour either way: the first URL is refused or
/// corrected from the upgrade's Date header, the offset is learned, and the stream succeeds.
#[test]
fn transcribe_learns_an_hour_of_skew_either_way() {
    for skew in [3_600_000i64, -3_600_000] {
        let skew_arg = skew.to_string();
        let events = transcribe_ok(
            &["--emulator-clock-offset-ms", &skew_arg],
            "audio/hello.wav",
        );
        assert_learned(&events, skew);
    }
}

#[test]
fn liveness_learns_an_hour_of_skew_either_way() {
    for skew in [3_600_000i64, -3_600_000] {
        let skew_arg = skew.to_string();
        let events = liveness_ok(&["--emulator-clock-offset-ms", &skew_arg]);
        assert_learned(&events, skew);
    }
}

fn assert_learned(events: &[Value], skew: i64) {
    let learned = of_type(events, "clockOffsetLearned");
    assert!(!learned.is_empty(), "no clock offset learned: {events:?}");
    let last = learned.last().expect("one");
    let offset = last["offsetMillis"].as_i64().expect("offsetMillis");
    assert!(
        (offset - skew).abs() < 5_000,
        "learned {offset} ms for a skew of {skew} ms"
    );
    assert!(last["message"]
        .as_str()
        .unwrap_or_default()
        .contains("clock offset learned"));
    // The offset was learned before the stream was accepted.
    let position = |kind: &str| events.iter().position(|e| e["type"] == kind);
    assert!(
        position("clockOffsetLearned") < position("connected"),
        "{events:?}"
    );
    let done = of_type(events, "done");
    assert_eq!(done.len(), 1);
    assert!((done[0]["clockOffsetMillis"].as_i64().unwrap_or(0) - skew).abs() < 5_000);
}

fn liveness_ok(extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["liveness", "--emulator", "--fast", "--json"];
    args.extend_from_slice(extra);
    let path = fixture("video/face.webm");
    args.push(&path);
    let output = run(&args);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let events = json_lines(&output);
    assert_eq!(
        of_type(&events, "ServerSessionInformationEvent").len(),
        1,
        "{}",
        describe(&output)
    );
    assert_eq!(
        of_type(&events, "DisconnectionEvent").len(),
        1,
        "{}",
        describe(&output)
    );
    let done = of_type(&events, "done");
    assert_eq!(done.len(), 1, "{}", describe(&output));
    assert_eq!(done[0]["videoEvents"], 3, "{}", describe(&output));
    events
}

#[test]
fn liveness_streams_the_webm() {
    let events = liveness_ok(&[]);
    let info = of_type(&events, "ServerSessionInformationEvent");
    assert!(
        info[0]["event"]["SessionInformation"]["Challenge"].is_object(),
        "{events:?}"
    );
}

#[test]
fn liveness_human_output_shows_the_session_information() {
    let output = run(&[
        "liveness",
        "--emulator",
        "--fast",
        &fixture("video/face.webm"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("session information"),
        "{}",
        describe(&output)
    );
    assert!(stdout.contains("disconnection"), "{}", describe(&output));
}

#[test]
fn missing_file_is_a_usage_error() {
    let output = run(&["transcribe", "--emulator", "/nonexistent/dir/hello.wav"]);
    assert_fails(&output, 2, "no such file");
    let output = run(&["liveness", "--emulator", "/nonexistent/dir/face.webm"]);
    assert_fails(&output, 2, "no such file");
}

#[test]
fn text_file_named_wav_is_a_usage_error() {
    let path = scratch().join("notes.wav");
    std::fs::write(&path, "Dear diary, this is not audio.\n".repeat(50)).expect("write");
    let output = run(&[
        "transcribe",
        "--emulator",
        path.to_str().expect("utf-8 path"),
    ]);
    assert_fails(&output, 2, "not a supported audio file");
}

#[test]
fn corrupt_and_unsupported_audio_are_usage_errors() {
    // Ogg Opus cannot be decoded: the message says to pass it through.
    let output = run(&["transcribe", "--emulator", &fixture("audio/hello.ogg")]);
    assert_fails(&output, 2, "--media-encoding ogg-opus");
    // A WAV cut inside its header.
    let wav = std::fs::read(fixture("audio/hello.wav")).expect("fixture");
    let cut = scratch().join("cut.wav");
    std::fs::write(&cut, &wav[..30]).expect("write");
    let output = run(&[
        "transcribe",
        "--emulator",
        cut.to_str().expect("utf-8 path"),
    ]);
    assert_fails(&output, 2, "cut.wav");
    // A FLAC whose frames are damaged (passed through: checked by decoding before streaming).
    let mut flac = std::fs::read(fixture("audio/hello.flac")).expect("fixture");
    let n = flac.len();
    for b in &mut flac[n / 3..n / 3 + 4096] {
        *b = 0xAA;
    }
    let bad = scratch().join("bad.flac");
    std::fs::write(&bad, &flac).expect("write");
    let output = run(&[
        "transcribe",
        "--emulator",
        "--media-encoding",
        "flac",
        bad.to_str().expect("utf-8 path"),
    ]);
    assert_fails(&output, 2, "bad.flac");
    // A WAV that ends halfway through its data.
    let half = scratch().join("half.wav");
    std::fs::write(&half, &wav[..100_000]).expect("write");
    let output = run(&[
        "transcribe",
        "--emulator",
        half.to_str().expect("utf-8 path"),
    ]);
    assert_fails(&output, 2, "truncated");
    // A video that is not WebM.
    let output = run(&["liveness", "--emulator", &fixture("audio/hello.wav")]);
    assert_fails(&output, 2, "not a WebM video");
}

#[test]
fn bad_endpoints_are_usage_errors() {
    let wav = fixture("audio/hello.wav");
    let output = run(&["transcribe", "--endpoint", "not-a-url", &wav]);
    assert_fails(&output, 2, "is not a URL");
    // 0.0.0.0 is not a loopback address: refused before anything is dialled.
    let output = run(&["transcribe", "--endpoint", "ws://0.0.0.0:9/", &wav]);
    assert_fails(&output, 2, "unencrypted");
    let output = run(&[
        "liveness",
        "--endpoint",
        "ftp://127.0.0.1/",
        &fixture("video/face.webm"),
    ]);
    assert_fails(&output, 2, "not supported");
}

#[test]
fn missing_credentials_are_a_usage_error() {
    // No --emulator, no credentials anywhere, instance metadata off, a loopback endpoint:
    // nothing leaves the machine.
    let output = run(&[
        "transcribe",
        "--endpoint",
        "ws://127.0.0.1:9",
        &fixture("audio/hello.wav"),
    ]);
    assert_fails(&output, 2, "no AWS credentials");
}

#[test]
fn usage_errors_exit_2() {
    let output = run(&[
        "transcribe",
        "--emulator",
        "--sample-rate",
        "96000",
        &fixture("audio/hello.wav"),
    ]);
    assert_fails(&output, 2, "outside");
    let output = run(&["transcribe", "--no-such-option"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let output = run(&["--help"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(text(&output.stdout).contains("transcribe"));
}

/// The in-process emulator accepts another secret than the client signs with: the stream is
/// refused (exit 1) and the verifier's diagnosis is printed before the one-line error.
#[test]
fn in_process_emulator_diagnosis_is_printed() {
    let secret = "zzEmulatorOnlySecretzz";
    for (command, file) in [
        ("transcribe", "audio/hello.wav"),
        ("liveness", "video/face.webm"),
    ] {
        let path = fixture(file);
        let output = run(&[
            command,
            "--emulator",
            "--fast",
            "--emulator-secret-access-key",
            secret,
            &path,
        ]);
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("the emulator refused the stream"),
            "{}",
            describe(&output)
        );
        assert!(stderr.contains("diagnosis: "), "{}", describe(&output));
        assert!(stderr.contains("what to do: "), "{}", describe(&output));
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: InvalidSignatureException"),
            "{}",
            describe(&output)
        );
        assert!(
            !stderr.contains(secret) && !text(&output.stdout).contains(secret),
            "{}",
            describe(&output)
        );
    }
}

/// `serve` in its own process; a client with the right keys succeeds, one with a wrong secret
/// is refused (exit 1, one line) and `serve` prints the verifier's diagnosis; SIGTERM stops it.
#[test]
fn serve_accepts_the_example_keys_and_explains_a_refusal() {
    let mut cmd = command(&["serve", "--addr", "127.0.0.1:0"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut server = cmd.spawn().expect("spawn serve");
    let stdout = server.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let endpoint = loop {
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(e) => {
                let _ = server.kill();
                panic!("serve printed no address ({e}): {seen:?}");
            }
        };
        seen.push(line.clone());
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.trim().to_owned();
        }
    };
    assert!(endpoint.starts_with("ws://127.0.0.1:"), "{endpoint}");

    let wav = fixture("audio/hello.wav");
    let mut good = command(&[
        "transcribe",
        "--fast",
        "--json",
        "--endpoint",
        &endpoint,
        &wav,
    ]);
    good.env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE").env(
        "AWS_SECRET_ACCESS_KEY",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    );
    let output = run_command(good);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(!final_transcripts(&json_lines(&output)).is_empty());

    let mut bad = command(&["transcribe", "--fast", "--endpoint", &endpoint, &wav]);
    bad.env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    let output = run_command(bad);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = text(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.to_lowercase().contains("signature"),
        "{}",
        describe(&output)
    );
    assert!(
        !stderr.contains("not-the-secret"),
        "the secret was printed\n{}",
        describe(&output)
    );

    // serve reports the refused connection with the verifier's diagnosis.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.iter().any(|l| l.contains("diagnosis")) && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(line);
        }
    }
    assert!(seen.iter().any(|l| l.contains("diagnosis")), "{seen:#?}");

    let pid = server.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = wait_with_timeout(&mut server, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{seen:#?}");
}

/// Ctrl-C (SIGINT) in the middle of a real-time stream ends it cleanly: end marker, the last
/// results, a `done` line, and exit code 130.
#[test]
fn ctrl_c_ends_the_transcribe_stream_cleanly() {
    interrupt_mid_stream(&[
        "transcribe",
        "--emulator",
        "--json",
        &fixture("audio/hello.wav"),
    ]);
}

#[test]
fn ctrl_c_ends_the_liveness_session_cleanly() {
    interrupt_mid_stream(&[
        "liveness",
        "--emulator",
        "--json",
        &fixture("video/face.webm"),
    ]);
}

fn interrupt_mid_stream(args: &[&str]) {
    let mut cmd = command(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut buf = String::new();
        let _ = stderr.read_to_string(&mut buf);
        buf
    });
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let connected = line.contains("\"connected\"");
        seen.push(line);
        if connected {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("\"connected\"")),
        "{seen:#?}"
    );
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill")
        .success());
    seen.extend(lines);
    let status = wait_with_timeout(&mut child, CHILD_TIMEOUT);
    let stderr = err_reader.join().unwrap_or_default();
    assert_eq!(status.code(), Some(130), "{seen:#?}\n{stderr}");
    let done: Vec<Value> = seen
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "done")
        .collect();
    assert_eq!(done.len(), 1, "{seen:#?}\n{stderr}");
    assert_eq!(done[0]["interrupted"], true);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: interrupted") && last.contains("ended cleanly"),
        "{stderr}"
    );
}
