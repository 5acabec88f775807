//! The load generator (`examples/load.rs`) run as a process, small: its report must add up.
//!
//! A few real-time sessions with signed frames (the emulator in its own process verifies every
//! signature), and one stream sent as fast as the session takes, where frames already queued
//! must share socket writes. No timing is asserted: these are correctness checks of the
//! generator and of what it measures, not performance figures (those live in the README).
#![cfg(all(feature = "emulator", feature = "transcribe"))]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

#[path = "support/example_bin.rs"]
mod example_bin;

/// Runs `load run <args> --json <file>` and returns the JSON report.
fn run(args: &[&str]) -> Value {
    static N: AtomicU64 = AtomicU64::new(0);
    let json: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "load_generator_{}_{}.json",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let output = Command::new(example_bin::example_binary("load"))
        .arg("run")
        .args(args)
        // The floor's timing is not under test; a debug build would spend seconds on it.
        .args(["--floor-iterations", "50"])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("the load generator starts");
    assert!(
        output.status.success(),
        "load {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&json).expect("the JSON report is written");
    serde_json::from_str(&text).expect("the report is JSON")
}

fn number(report: &Value, path: &str) -> f64 {
    report
        .pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} is not a number in {report:#}"))
}

#[test]
fn signed_real_time_sessions_all_complete_and_every_frame_verifies() {
    let sessions = 12.0;
    // 1.5 s of 100 ms frames: 15 audio frames per session.
    let report = run(&[
        "--sessions",
        "12",
        "--duration",
        "1500ms",
        "--ramp",
        "300ms",
        "--signed",
    ]);
    assert_eq!(number(&report, "/sessions_completed"), sessions);
    assert_eq!(number(&report, "/sessions_failed"), 0.0);
    assert_eq!(number(&report, "/emulator/signature_failures"), 0.0);
    assert_eq!(number(&report, "/emulator/other_rejections"), 0.0);
    let frames = sessions * 15.0;
    assert_eq!(number(&report, "/frames_sent"), frames);
    assert_eq!(number(&report, "/emulator/media_frames"), frames);
    // Every audio frame, the empty AudioEvent and the end frame were signed and verified.
    assert_eq!(
        number(&report, "/emulator/signed_frames_verified"),
        frames + 2.0 * sessions
    );
    // The emulator saw every frame's due time, so the lag covers all of them.
    assert_eq!(number(&report, "/emulator/lag/samples"), frames);
    assert!(number(&report, "/emulator/lag/p50_ms") >= 0.0);
    assert!(number(&report, "/signing_floor/before_us") > 0.0);
    assert!(number(&report, "/client_cpu_us_per_frame") > 0.0);
}

#[test]
fn a_stream_sent_faster_than_real_time_shares_socket_writes() {
    // 60 s of audio: 600 frames.
    let report = run(&["--single", "--fast", "--audio-secs", "60"]);
    assert_eq!(number(&report, "/sessions_completed"), 1.0);
    assert_eq!(number(&report, "/frames_sent"), 600.0);
    assert_eq!(number(&report, "/emulator/media_frames"), 600.0);
    assert!(number(&report, "/fast/times_real_time") > 1.0);
    // The sender outruns the socket, so queued frames go out several per write.
    assert!(
        number(&report, "/frames_per_socket_write") > 2.0,
        "{:#}",
        report["frames_per_socket_write"]
    );

    let one_by_one = run(&[
        "--single",
        "--fast",
        "--audio-secs",
        "60",
        "--write-buffer",
        "0",
    ]);
    assert_eq!(number(&one_by_one, "/frames_per_socket_write"), 1.0);
}
