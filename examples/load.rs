//! Load generator: many concurrent real-time Transcribe streams against the emulator, with the
//! emulator in a separate process so that the client's cost and the server's are measured apart.
//!
//! ```text
//! cargo run --release --example load -- run --sessions 5000 --duration 60s --ramp 20s
//! cargo run --release --example load -- run --sessions 500 --duration 30s --signed --json /tmp/load.json
//! cargo run --release --example load -- run --single --fast --audio-secs 3600
//! cargo run --release --example load -- serve --addr 127.0.0.1:0   # what `run` spawns
//! ```
//!
//! `run` spawns `serve` (this same executable, through `std::env::current_exe()`), reads the
//! port it prints, opens `--sessions` streams ramped evenly over `--ramp`, and has each send
//! 16 kHz 16-bit mono PCM in `--frame-ms` frames (3,200 bytes per 100 ms) at real-time pace for
//! `--duration`, then end its stream and read the last results. `--signed` signs every frame
//! (Transcribe with `FrameSigning::Signed`; the emulator then refuses any unsigned frame and
//! verifies each signature). Then it stops the emulator, which reports what it saw.
//!
//! # What is measured
//!
//! * **Lag** of a frame: its arrival at the emulator minus the time it was due. Frame `k` of a
//!   stream that started streaming at `T0` is due at `T0 + k * frame`. The sender sleeps until
//!   then, writes the due time (microseconds since the Unix epoch, from `sigv4_ws::Clock`) into
//!   the first 8 bytes of the audio (little-endian), and sends it. The emulator records, when
//!   it has decoded (and for signed frames verified) the audio event, its own clock's time and
//!   those 8 bytes (`EmulatorConfig::record_media_stamps`). Both clocks read the same host
//!   clock, so `arrival - due` covers the sender's wake-up, the queue, the session driver
//!   (encoding, signing, writing), the kernel, and the emulator's own scheduling and
//!   verification. The tokio timer's 1 ms granularity is part of it.
//! * **Enqueue lag** (client side only): due time to the moment `send_audio` returned.
//! * **Client CPU**: `getrusage(RUSAGE_SELF)` of this process (user + system), which runs only
//!   clients. **Emulator CPU**: `/proc/<pid>/stat` (utime + stime) of the serve process.
//!   Reported over the whole run (per stream-minute) and over the steady window, the seconds
//!   in which every session was open and streaming (per frame).
//! * **Client RSS per session**: `VmRSS` from `/proc/self/status` in the middle of the steady
//!   window, minus `VmRSS` just before the first session was opened, divided by the sessions.
//! * **Allocations per frame**: a counting global allocator in this process; the count includes
//!   the one buffer per frame the generator allocates for the stamped audio.
//! * **Signature failures**: emulator records whose rejection came from the verifier (signature
//!   or time); must be 0.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use clap::{Args, Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sigv4_ws::emulator::{Emulator, EmulatorConfig, Outcome};
use sigv4_ws::services::transcribe::{
    model, AudioSender, EventReceiver, MediaEncoding, StartStreamTranscription, TranscribeClient,
};
use sigv4_ws::transport::{
    ConnectRequest, Connector, FrameSigning, SessionConfig, SessionSink, SessionStream,
};
use sigv4_ws::Clock;
use tokio::time::Instant;

#[path = "../benches/support/floor.rs"]
mod floor;

// ---------------------------------------------------------------------------------------------
// Counting allocator

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ---------------------------------------------------------------------------------------------
// Command line

#[derive(Parser)]
#[command(about = "Load generator for sigv4-ws against its emulator (loopback only)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Spawn the emulator process, run the load, report.
    Run(RunArgs),
    /// Run the emulator until stdin says `stop` (or closes); print `PORT <n>` when listening
    /// and `SUMMARY <json>` at the end.
    Serve(ServeArgs),
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Concurrent sessions.
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// How long each session streams (e.g. 60s, 500ms, 2m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Audio per frame, in milliseconds (3,200 bytes per 100 ms).
    #[arg(long, default_value_t = 100)]
    frame_ms: u64,
    /// Sessions start evenly spread over this time.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    ramp: Duration,
    /// Sign every frame (Transcribe with FrameSigning::Signed; the emulator requires it).
    #[arg(long)]
    signed: bool,
    /// Client API: `typed` (TranscribeClient / AudioSender::send_audio) or `message`
    /// (transport Session as a Sink of codec Messages built by model::audio_event).
    #[arg(long, default_value = "typed")]
    api: String,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Client runtime worker threads (1 = current-thread runtime).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Emulator runtime worker threads (1 = current-thread runtime).
    #[arg(long, default_value_t = 1)]
    server_threads: usize,
    /// One session (implies --sessions 1 and no ramp).
    #[arg(long)]
    single: bool,
    /// Send as fast as the session takes instead of in real time.
    #[arg(long)]
    fast: bool,
    /// Audio to send per session with --fast, in seconds (default one hour).
    #[arg(long, default_value_t = 3600.0)]
    audio_secs: f64,
    /// SessionConfig::read_buffer_size (default: the library's).
    #[arg(long)]
    read_buffer: Option<usize>,
    /// SessionConfig::queue_capacity (default: the library's).
    #[arg(long)]
    queue: Option<usize>,
    /// Frames per round when timing the signing floor (seven rounds, before and after the
    /// load; the fastest round counts).
    #[arg(long, default_value_t = 20_000)]
    floor_iterations: usize,
    /// SessionConfig::write_buffer_size (default: the library's; 0 writes every frame on
    /// its own).
    #[arg(long)]
    write_buffer: Option<usize>,
    /// No partial results from the emulator while audio flows (finals at the end only), to
    /// count the send path's allocations alone. Keep --duration under the 60 s idle timeout.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: std::net::SocketAddr,
    /// Runtime worker threads (1 = current-thread runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Refuse unsigned Transcribe events.
    #[arg(long)]
    require_signed: bool,
    /// No partial results while audio flows.
    #[arg(long)]
    quiet: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (e.g. 60s, 500ms, 2m)"))?;
    if !(0.0..=86_400.0).contains(&(value * scale)) {
        return Err(format!("duration out of range: {text:?}"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(args) => run(args),
        Cmd::Serve(args) => serve(args),
    };
    if let Err(error) = result {
        eprintln!("load: {error}");
        std::process::exit(1);
    }
}

fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

// ---------------------------------------------------------------------------------------------
// Process measurements

/// Raises the soft open-file limit to the hard limit. Returns (soft, hard) after.
fn raise_nofile_limit() -> (u64, u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return (0, 0);
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    (limit.rlim_cur, limit.rlim_max)
}

/// User + system CPU seconds of this process.
fn self_cpu_seconds() -> f64 {
    let (user, system) = self_cpu_split();
    user + system
}

/// (user, system) CPU seconds of this process.
fn self_cpu_split() -> (f64, f64) {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

/// User + system CPU seconds of another process, from `/proc/<pid>/stat`.
fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    proc_cpu_split(pid).map(|(user, system)| user + system)
}

/// (user, system) CPU seconds of another process, from `/proc/<pid>/stat`.
fn proc_cpu_split(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime / ticks.max(1.0), stime / ticks.max(1.0)))
}

/// Seconds the threads of a process spent runnable but waiting for a CPU (the second field of
/// `/proc/<pid>/task/*/schedstat`): time lost to other work on the machine.
fn runqueue_wait_seconds(pid: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let mut nanos = 0u64;
    for task in tasks.flatten() {
        let path = task.path().join("schedstat");
        if let Ok(text) = std::fs::read_to_string(path) {
            nanos += text
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    nanos as f64 / 1e9
}

/// CPU time the hypervisor gave to others while this machine's vCPUs wanted to run, summed
/// over the vCPUs (`steal` in `/proc/stat`), in seconds. 0 on bare metal.
fn machine_steal_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let steal: f64 = stat
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(8))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    steal / ticks.max(1.0)
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`).
fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn epoch_micros(clock: &Clock) -> u64 {
    clock
        .now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn percentiles(sorted: &[i64]) -> Value {
    let at = |q: f64| -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let i = ((sorted.len() - 1) as f64 * q).round() as usize;
        sorted[i] as f64 / 1000.0
    };
    json!({
        "samples": sorted.len(),
        "p50_ms": at(0.50),
        "p99_ms": at(0.99),
        "p999_ms": at(0.999),
        "max_ms": sorted.last().map(|v| *v as f64 / 1000.0).unwrap_or(0.0),
        "min_ms": sorted.first().map(|v| *v as f64 / 1000.0).unwrap_or(0.0),
    })
}

/// Per second of the run (from the first arrival): frames, p99 and max lag in ms.
fn lag_by_second(mut timed: Vec<(i64, i64)>) -> Value {
    timed.sort_unstable();
    let Some(first) = timed.first().map(|(second, _)| *second) else {
        return Value::Array(Vec::new());
    };
    let mut rows = Vec::new();
    for group in timed.chunk_by(|a, b| a.0 == b.0) {
        let mut lags: Vec<i64> = group.iter().map(|(_, lag)| *lag).collect();
        lags.sort_unstable();
        let p99 = lags[((lags.len() - 1) as f64 * 0.99).round() as usize];
        rows.push(json!([
            group[0].0 - first,
            lags.len(),
            p99 as f64 / 1000.0,
            lags[lags.len() - 1] as f64 / 1000.0
        ]));
    }
    Value::Array(rows)
}

/// Lock-free histogram of microsecond values: 10 µs buckets up to 10 s, then one overflow.
struct Histogram {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

impl Histogram {
    const BUCKET_US: u64 = 10;
    const BUCKETS: usize = 1_000_000;

    fn new() -> Histogram {
        Histogram {
            buckets: (0..=Self::BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    fn record(&self, micros: u64) {
        let i = ((micros / Self::BUCKET_US) as usize).min(Self::BUCKETS);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(micros, Ordering::Relaxed);
    }

    fn summary(&self) -> Value {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let at = |q: f64| -> f64 {
            if total == 0 {
                return 0.0;
            }
            let target = ((total - 1) as f64 * q).round() as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen > target {
                    return (i as u64 * Self::BUCKET_US) as f64 / 1000.0;
                }
            }
            0.0
        };
        json!({
            "samples": total,
            "p50_ms": at(0.50),
            "p99_ms": at(0.99),
            "p999_ms": at(0.999),
            "max_ms": self.max.load(Ordering::Relaxed) as f64 / 1000.0,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// serve

fn serve(args: ServeArgs) -> Result<(), String> {
    raise_nofile_limit();
    let rt = runtime(args.threads).map_err(|e| e.to_string())?;
    let records = rt
        .block_on(async {
            let mut config = EmulatorConfig::default()
                .bind(args.addr)
                .record_media_stamps(true)
                .require_signed_transcribe(args.require_signed);
            if args.quiet {
                config = config
                    .transcript_cadence(Duration::from_secs(86_400), u64::MAX)
                    .no_audio_timeout(Duration::from_secs(86_400));
            }
            // The stop signal: a line `stop` on stdin, or stdin closing (the parent died).
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            std::thread::spawn(move || {
                let stdin = std::io::stdin();
                let mut line = String::new();
                loop {
                    line.clear();
                    match stdin.lock().read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line.trim() == "stop" => break,
                        Ok(_) => {}
                    }
                }
                let _ = stop_tx.send(());
            });
            Emulator::serve_until(
                config,
                |handle| {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "PORT {}", handle.local_addr().port());
                    let _ = out.flush();
                },
                async move {
                    let _ = stop_rx.await;
                },
            )
            .await
        })
        .map_err(|e| format!("the emulator could not start: {e}"))?;
    drop(rt);

    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut signature_failures = 0u64;
    let mut other_rejections = 0u64;
    let mut rejection_samples: Vec<String> = Vec::new();
    let mut media_frames = 0u64;
    let mut media_bytes = 0u64;
    let mut signed_frames = 0u64;
    let mut lags: Vec<i64> = Vec::new();
    // (arrival second, lag) to see when in the run the slow frames were.
    let mut timed_lags: Vec<(i64, i64)> = Vec::new();
    for record in &records {
        let name = match &record.outcome {
            Outcome::ConnectionLost(_) => "ConnectionLost".to_owned(),
            Outcome::HandshakeFailed(_) => "HandshakeFailed".to_owned(),
            other => format!("{other:?}"),
        };
        *outcomes.entry(name).or_default() += 1;
        if let Some(rejection) = &record.rejection {
            if rejection.kind.is_some() {
                signature_failures += 1;
            } else {
                other_rejections += 1;
            }
            if rejection_samples.len() < 5 {
                rejection_samples.push(format!(
                    "{}: {}",
                    rejection.exception_type, rejection.message
                ));
            }
        }
        media_frames += record.media_frames;
        media_bytes += record.media_bytes;
        signed_frames += record.frame_dates_millis.len() as u64;
        for stamp in &record.media_stamps {
            if stamp.prefix != 0 {
                let lag = stamp.arrival_micros - stamp.prefix as i64;
                lags.push(lag);
                timed_lags.push((stamp.arrival_micros.div_euclid(1_000_000), lag));
            }
        }
    }
    lags.sort_unstable();
    let summary = json!({
        "lag_by_second": lag_by_second(timed_lags),
        "connections": records.len(),
        "outcomes": outcomes,
        "signature_failures": signature_failures,
        "other_rejections": other_rejections,
        "rejection_samples": rejection_samples,
        "media_frames": media_frames,
        "media_bytes": media_bytes,
        "signed_frames_verified": signed_frames,
        "lag": percentiles(&lags),
        "cpu_s": self_cpu_seconds(),
        "peak_rss_kib": status_kib("self", "VmHWM:"),
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "SUMMARY {summary}");
    let _ = out.flush();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// run

/// Shared by every session task.
struct Shared {
    args: RunArgs,
    client: TranscribeClient,
    config: SessionConfig,
    clock: Clock,
    frame_bytes: usize,
    frames_per_session: u64,
    pattern: Bytes,
    frames_sent: AtomicU64,
    /// Frames the sessions wrote (their `SessionStats`), and the socket writes that took.
    frames_written: AtomicU64,
    socket_writes: AtomicU64,
    opened: AtomicUsize,
    finished: AtomicUsize,
    enqueue_lag: Histogram,
    connect_ms: Mutex<Vec<i64>>,
}

enum Sender {
    Typed(AudioSender),
    Raw(SessionSink),
}

enum Receiver {
    Typed(EventReceiver),
    Raw(SessionStream),
}

impl Sender {
    async fn send(&mut self, chunk: Bytes) -> Result<(), String> {
        match self {
            Sender::Typed(sender) => sender.send_audio(chunk).await.map_err(|e| e.to_string()),
            Sender::Raw(sink) => sink
                .send(model::audio_event(chunk))
                .await
                .map_err(|e| e.to_string()),
        }
    }

    fn stats(&self) -> sigv4_ws::transport::SessionStats {
        match self {
            Sender::Typed(sender) => sender.stats(),
            Sender::Raw(sink) => sink.stats(),
        }
    }

    async fn finish(&mut self) -> Result<(), String> {
        match self {
            Sender::Typed(sender) => sender.finish().await.map_err(|e| e.to_string()),
            Sender::Raw(sink) => {
                sink.send(model::audio_event(Bytes::new()))
                    .await
                    .map_err(|e| e.to_string())?;
                sink.end().await.map_err(|e| e.to_string())
            }
        }
    }
}

impl Receiver {
    /// `Some(Ok(()))` per event, `Some(Err)` for an error, `None` at the end.
    async fn next(&mut self) -> Option<Result<(), String>> {
        match self {
            Receiver::Typed(events) => events
                .next_event()
                .await
                .map(|r| r.map(|_| ()).map_err(|e| e.to_string())),
            Receiver::Raw(stream) => stream
                .next()
                .await
                .map(|r| r.map(|_| ()).map_err(|e| e.to_string())),
        }
    }
}

fn request() -> StartStreamTranscription {
    StartStreamTranscription::new(MediaEncoding::Pcm, 16_000).language_code("en-US")
}

async fn open(shared: &Shared) -> Result<(Sender, Receiver), String> {
    match shared.args.api.as_str() {
        "message" => {
            let url = shared
                .client
                .endpoint_url(&request().into())
                .map_err(|e| e.to_string())?;
            let connect = ConnectRequest::new(url, "us-east-1", "transcribe")
                .credentials(sigv4_ws::emulator::example_credentials())
                .clock(shared.clock.clone());
            let session = Connector::new(shared.config.clone())
                .connect(connect)
                .await
                .map_err(|e| e.to_string())?;
            let (sink, stream) = session.split();
            Ok((Sender::Raw(sink), Receiver::Raw(stream)))
        }
        _ => {
            let stream = shared
                .client
                .start(request())
                .await
                .map_err(|e| e.to_string())?;
            let (audio, events) = stream.split();
            Ok((Sender::Typed(audio), Receiver::Typed(events)))
        }
    }
}

/// One frame of audio: the due time in the first 8 bytes, then the pattern. Built in the
/// session's own buffer: once the session has written the previous frame and let go of it, the
/// `reserve` reclaims the same allocation, so steady streaming allocates nothing here either.
fn frame(shared: &Shared, buf: &mut BytesMut, due_micros: u64) -> Bytes {
    buf.reserve(shared.frame_bytes);
    buf.put_u64_le(due_micros);
    buf.put_slice(&shared.pattern[8..shared.frame_bytes]);
    buf.split().freeze()
}

#[derive(Debug)]
struct SessionResult {
    error: Option<String>,
    frames: u64,
    events: u64,
}

async fn session(shared: Arc<Shared>, start_at: Instant) -> SessionResult {
    tokio::time::sleep_until(start_at).await;
    let connect_start = Instant::now();
    let (mut sender, receiver) = match open(&shared).await {
        Ok(pair) => pair,
        Err(error) => {
            shared.finished.fetch_add(1, Ordering::Relaxed);
            return SessionResult {
                error: Some(format!("connect: {error}")),
                frames: 0,
                events: 0,
            };
        }
    };
    if let Ok(mut list) = shared.connect_ms.lock() {
        list.push(connect_start.elapsed().as_micros() as i64);
    }
    shared.opened.fetch_add(1, Ordering::Relaxed);
    let result = stream_audio(&shared, &mut sender, receiver).await;
    let stats = sender.stats();
    shared
        .frames_written
        .fetch_add(stats.frames_sent, Ordering::Relaxed);
    shared
        .socket_writes
        .fetch_add(stats.socket_writes, Ordering::Relaxed);
    shared.finished.fetch_add(1, Ordering::Relaxed);
    result
}

/// Streams the session's audio while a task of its own reads the server's events: the paced
/// sender wakes only for its frames, and never polls the event channel on the way.
async fn stream_audio(
    shared: &Shared,
    sender: &mut Sender,
    mut receiver: Receiver,
) -> SessionResult {
    let mut result = SessionResult {
        error: None,
        frames: 0,
        events: 0,
    };
    // The reader ends with the stream: `Ok` after a normal end, `Err` on an error. If the
    // server ends the stream early, the session stops and the sender's next send fails.
    let reader = tokio::spawn(async move {
        let mut events = 0u64;
        let outcome = loop {
            match receiver.next().await {
                Some(Ok(())) => events += 1,
                Some(Err(e)) => break Err(e),
                None => break Ok(()),
            }
        };
        (outcome, events)
    });
    let frame_len = Duration::from_millis(shared.args.frame_ms);
    let frame_micros = shared.args.frame_ms * 1000;
    let start = Instant::now();
    let start_micros = epoch_micros(&shared.clock);
    let fast = shared.args.fast;
    let mut timer = std::pin::pin!(tokio::time::sleep_until(start));
    let mut buf = BytesMut::new();
    while result.frames < shared.frames_per_session {
        let due = start_micros + result.frames * frame_micros;
        let chunk = if fast {
            // Unpaced: the queue's backpressure is the only brake.
            shared.pattern.slice(..shared.frame_bytes)
        } else {
            timer.as_mut().await;
            frame(shared, &mut buf, due)
        };
        if let Err(e) = sender.send(chunk).await {
            result.error = Some(format!("send: {e}"));
            break;
        }
        if !fast {
            shared
                .enqueue_lag
                .record(epoch_micros(&shared.clock).saturating_sub(due));
            timer
                .as_mut()
                .reset(start + frame_len * ((result.frames + 1) as u32));
        }
        result.frames += 1;
        shared.frames_sent.fetch_add(1, Ordering::Relaxed);
    }
    if result.error.is_none() {
        if let Err(e) = sender.finish().await {
            result.error = Some(format!("finish: {e}"));
        }
    }
    match tokio::time::timeout(Duration::from_secs(30), reader).await {
        Ok(Ok((outcome, events))) => {
            result.events = events;
            if let Err(e) = outcome {
                // The reader's error says why a send failed, if one did.
                result.error = Some(e);
            }
        }
        Ok(Err(e)) => {
            result
                .error
                .get_or_insert_with(|| format!("reader task: {e}"));
        }
        Err(_) => {
            result
                .error
                .get_or_insert_with(|| "no close within 30 s of the end of stream".into());
        }
    }
    if result.error.is_none() && result.events == 0 {
        result.error = Some("no transcript event".into());
    }
    result
}

struct Sample {
    at: f64,
    client_wait: f64,
    emulator_wait: f64,
    client_cpu: f64,
    client_user: f64,
    emulator_user: f64,
    emulator_cpu: f64,
    frames: u64,
    allocations: u64,
    opened: usize,
    finished: usize,
    rss_kib: u64,
    steal_s: f64,
}

fn run(mut args: RunArgs) -> Result<(), String> {
    if args.single {
        args.sessions = 1;
        args.ramp = Duration::ZERO;
    }
    if args.sessions == 0 || args.frame_ms == 0 {
        return Err("--sessions and --frame-ms must be positive".into());
    }
    if args.api != "typed" && args.api != "message" {
        return Err(format!(
            "--api must be typed or message, not {:?}",
            args.api
        ));
    }
    let (nofile, nofile_hard) = raise_nofile_limit();
    if (nofile as usize) < args.sessions + 256 {
        eprintln!(
            "load: warning: the open-file limit is {nofile} (hard {nofile_hard}); {} sessions may not fit",
            args.sessions
        );
    }

    // The emulator, in its own process.
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let mut command = Command::new(exe);
    command
        .arg("serve")
        .arg("--addr")
        .arg("127.0.0.1:0")
        .arg("--threads")
        .arg(args.server_threads.to_string());
    if args.signed {
        command.arg("--require-signed");
    }
    if args.quiet {
        command.arg("--quiet");
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the emulator process: {e}"))?;
    let pid = child.id();
    let mut child_out = BufReader::new(child.stdout.take().ok_or("no emulator stdout")?);
    let mut line = String::new();
    child_out
        .read_line(&mut line)
        .map_err(|e| format!("reading the emulator's port: {e}"))?;
    let port: u16 = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("the emulator said {line:?} instead of its port"))?;

    let floor_before = signing_floor_micros(&args);
    let result = run_load(&args, port, pid);
    let floor_after = signing_floor_micros(&args);

    // Stop the emulator and read its summary (also after a failed run).
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "stop");
    }
    let mut summary = Value::Null;
    let mut line = String::new();
    while child_out
        .read_line(&mut line)
        .map(|n| n > 0)
        .unwrap_or(false)
    {
        if let Some(text) = line.trim().strip_prefix("SUMMARY ") {
            summary = serde_json::from_str(text).unwrap_or(Value::Null);
        }
        line.clear();
    }
    let _ = child.wait();
    let mut report = result?;
    report["emulator"] = summary;
    // The floor of the core benchmark, timed in this process before and after the load; the
    // ratios use the lower (the machine's quieter moment).
    let floor = floor_before.min(floor_after);
    let ratio = |path: &str| {
        report
            .pointer(path)
            .and_then(Value::as_f64)
            .map(|v| v / floor)
    };
    report["signing_floor"] = json!({
        "before_us": floor_before,
        "after_us": floor_after,
        "client_cpu_per_frame_over_floor": ratio("/client_cpu_us_per_frame"),
        "steady_client_cpu_per_frame_over_floor": ratio("/steady/client_cpu_us_per_frame"),
    });
    finish_report(&args, report)
}

/// The signing floor (see `benches/support/floor.rs`) for this run's frame size, in µs.
fn signing_floor_micros(args: &RunArgs) -> f64 {
    let frame_bytes = (16_000 * 2 * args.frame_ms / 1000) as usize;
    let inner = model::audio_event(Bytes::from(vec![0x10u8; frame_bytes]))
        .encode()
        .unwrap_or_default();
    let key = sigv4_ws::proto::sigv4::derive_signing_key(
        "load-generator-floor-key",
        "20240820",
        "us-east-1",
        "transcribe",
    );
    floor::Floor::new(inner.len(), &key).measure_micros(&inner, 7, args.floor_iterations)
}

fn run_load(args: &RunArgs, port: u16, emulator_pid: u32) -> Result<Value, String> {
    let rt = runtime(args.client_threads).map_err(|e| e.to_string())?;
    let clock = Clock::system();
    let signing = if args.signed {
        FrameSigning::Signed
    } else {
        FrameSigning::Unsigned
    };
    let mut config = SessionConfig::default().frame_signing(signing);
    if let Some(bytes) = args.read_buffer {
        config = config.read_buffer_size(bytes);
    }
    if let Some(queue) = args.queue {
        config = config.queue_capacity(queue);
    }
    if let Some(bytes) = args.write_buffer {
        config = config.write_buffer_size(bytes);
    }
    let endpoint =
        url::Url::parse(&format!("http://127.0.0.1:{port}")).map_err(|e| e.to_string())?;
    let client = TranscribeClient::new("us-east-1")
        .endpoint(endpoint)
        .credentials(sigv4_ws::emulator::example_credentials())
        .clock(clock.clone())
        .session_config(config.clone());
    let frame_bytes = (16_000 * 2 * args.frame_ms / 1000) as usize;
    let frames_per_session = if args.fast {
        ((args.audio_secs * 1000.0) / args.frame_ms as f64).ceil() as u64
    } else {
        (args.duration.as_millis() as u64 / args.frame_ms).max(1)
    };
    // A quiet, not silent, pattern: a low square wave. Its first 8 bytes are zero: a --fast
    // frame (sent as is) carries no due time, and the emulator's lag ignores it.
    let pattern: Bytes = (0..frame_bytes.max(8))
        .map(|i| match i {
            0..8 => 0,
            _ if (i / 64) % 2 == 0 => 0x10u8,
            _ => 0xf0,
        })
        .collect::<Vec<u8>>()
        .into();
    let shared = Arc::new(Shared {
        args: args.clone(),
        client,
        config,
        clock,
        frame_bytes,
        frames_per_session,
        pattern,
        frames_sent: AtomicU64::new(0),
        frames_written: AtomicU64::new(0),
        socket_writes: AtomicU64::new(0),
        opened: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        enqueue_lag: Histogram::new(),
        connect_ms: Mutex::new(Vec::with_capacity(args.sessions)),
    });

    let report = rt.block_on(async {
        // Let the runtime and the emulator settle, then take the baseline.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rss_before = status_kib("self", "VmRSS:");
        let t0 = Instant::now();
        let emulator_pid = emulator_pid.to_string();
        let sample = |shared: &Shared| Sample {
            at: t0.elapsed().as_secs_f64(),
            client_wait: runqueue_wait_seconds("self"),
            emulator_wait: runqueue_wait_seconds(&emulator_pid),
            client_cpu: self_cpu_seconds(),
            client_user: self_cpu_split().0,
            emulator_user: proc_cpu_split(emulator_pid.parse().unwrap_or(0))
                .map(|(user, _)| user)
                .unwrap_or(0.0),
            emulator_cpu: proc_cpu_seconds(emulator_pid.parse().unwrap_or(0)).unwrap_or(0.0),
            frames: shared.frames_sent.load(Ordering::Relaxed),
            allocations: ALLOCATIONS.load(Ordering::Relaxed),
            opened: shared.opened.load(Ordering::Relaxed),
            finished: shared.finished.load(Ordering::Relaxed),
            rss_kib: status_kib("self", "VmRSS:"),
            steal_s: machine_steal_seconds(),
        };
        let first = sample(&shared);
        let n = args.sessions;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let offset = args.ramp.mul_f64(i as f64 / n as f64);
            tasks.spawn(session(Arc::clone(&shared), t0 + offset));
        }
        let mut samples = vec![first];
        let mut results = Vec::with_capacity(n);
        let mut tick = tokio::time::interval_at(t0 + Duration::from_secs(1), Duration::from_secs(1));
        // Bounded: every session has its own timeouts; this is a last resort.
        let hard_stop = t0 + args.ramp + args.duration + Duration::from_secs(120);
        let hard_stop = if args.fast {
            t0 + Duration::from_secs(600)
        } else {
            hard_stop
        };
        loop {
            tokio::select! {
                joined = tasks.join_next() => match joined {
                    Some(Ok(result)) => results.push(result),
                    Some(Err(e)) => results.push(SessionResult { error: Some(format!("task: {e}")), frames: 0, events: 0 }),
                    None => break,
                },
                _ = tick.tick() => {
                    let s = sample(&shared);
                    if !args.fast {
                        eprint!(
                            "\r  t={:>5.1}s open={:>5} done={:>5} frames={:>9}  ",
                            s.at, s.opened - s.finished.min(s.opened), s.finished, s.frames
                        );
                    }
                    samples.push(s);
                    if Instant::now() > hard_stop {
                        tasks.abort_all();
                    }
                }
            }
        }
        let last = sample(&shared);
        eprintln!();
        samples.push(last);
        Ok::<_, String>(build_report(args, &shared, &samples, &results, rss_before))
    })?;
    drop(rt);
    Ok(report)
}

fn build_report(
    args: &RunArgs,
    shared: &Shared,
    samples: &[Sample],
    results: &[SessionResult],
    rss_before: u64,
) -> Value {
    let first = &samples[0];
    let last = &samples[samples.len() - 1];
    let n = args.sessions;
    let completed = results.iter().filter(|r| r.error.is_none()).count();
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    for r in results {
        if let Some(e) = &r.error {
            let key: String = e.chars().take(160).collect();
            *failures.entry(key).or_default() += 1;
        }
    }
    let frames: u64 = results.iter().map(|r| r.frames).sum();
    let events: u64 = results.iter().map(|r| r.events).sum();
    let wall = last.at - first.at;
    let client_cpu = last.client_cpu - first.client_cpu;
    let emulator_cpu = last.emulator_cpu - first.emulator_cpu;
    let stream_minutes = if args.fast {
        args.audio_secs * n as f64 / 60.0
    } else {
        n as f64 * (frames_per_stream_secs(args)) / 60.0
    };

    // Steady window: samples where every session was open and none had finished.
    let steady: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.opened == n && s.finished == 0)
        .collect();
    let steady_json = if steady.len() >= 3 {
        // Drop the first and last second of the window (ramp tail and wind-down).
        let a = steady[1];
        let b = steady[steady.len() - 2];
        let mid = steady[steady.len() / 2];
        let frames = (b.frames - a.frames).max(1) as f64;
        let secs = b.at - a.at;
        json!({
            "seconds": secs,
            "frames": b.frames - a.frames,
            "frames_per_s": frames / secs,
            "client_cpu_s": b.client_cpu - a.client_cpu,
            "client_cpu_us_per_frame": (b.client_cpu - a.client_cpu) * 1e6 / frames,
            "client_user_us_per_frame": (b.client_user - a.client_user) * 1e6 / frames,
            "client_system_us_per_frame": (b.client_cpu - b.client_user - a.client_cpu + a.client_user) * 1e6 / frames,
            "client_cpu_cores": (b.client_cpu - a.client_cpu) / secs,
            "emulator_cpu_s": b.emulator_cpu - a.emulator_cpu,
            "emulator_cpu_us_per_frame": (b.emulator_cpu - a.emulator_cpu) * 1e6 / frames,
            "emulator_user_us_per_frame": (b.emulator_user - a.emulator_user) * 1e6 / frames,
            "emulator_cpu_cores": (b.emulator_cpu - a.emulator_cpu) / secs,
            "client_runqueue_wait_s": b.client_wait - a.client_wait,
            "emulator_runqueue_wait_s": b.emulator_wait - a.emulator_wait,
            "allocations_per_frame": (b.allocations - a.allocations) as f64 / frames,
            "machine_steal_s": b.steal_s - a.steal_s,
            "client_rss_kib": mid.rss_kib,
            "client_rss_per_session_kib": (mid.rss_kib.saturating_sub(rss_before)) as f64 / n as f64,
        })
    } else {
        Value::Null
    };
    let mut connect: Vec<i64> = shared
        .connect_ms
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    connect.sort_unstable();
    let fast_json = if args.fast {
        let audio = args.audio_secs * n as f64;
        json!({
            "audio_s": audio,
            "wall_s": wall,
            "times_real_time": audio / wall,
        })
    } else {
        Value::Null
    };
    json!({
        "mode": if args.fast { "fast" } else { "real-time" },
        "api": args.api,
        "signed": args.signed,
        "sessions": n,
        "duration_s": args.duration.as_secs_f64(),
        "frame_ms": args.frame_ms,
        "frame_bytes": shared.frame_bytes,
        "ramp_s": args.ramp.as_secs_f64(),
        "client_threads": args.client_threads,
        "read_buffer": args.read_buffer,
        "queue": args.queue,
        "write_buffer": args.write_buffer,
        "quiet": args.quiet,
        "machine_load_avg": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "server_threads": args.server_threads,
        "sessions_completed": completed,
        "sessions_failed": n - completed,
        "failures": failures,
        "frames_sent": frames,
        "events_received": events,
        "wall_s": wall,
        "frames_per_s": frames as f64 / wall,
        "client_cpu_s": client_cpu,
        "client_cpu_s_per_stream_minute": client_cpu / stream_minutes,
        "client_cpu_us_per_frame": client_cpu * 1e6 / frames.max(1) as f64,
        "client_user_us_per_frame": (last.client_user - first.client_user) * 1e6 / frames.max(1) as f64,
        "emulator_cpu_s": emulator_cpu,
        "client_runqueue_wait_s": last.client_wait - first.client_wait,
        "emulator_runqueue_wait_s": last.emulator_wait - first.emulator_wait,
        "emulator_cpu_s_per_stream_minute": emulator_cpu / stream_minutes,
        "emulator_cpu_us_per_frame": emulator_cpu * 1e6 / frames.max(1) as f64,
        "allocations_per_frame": (last.allocations - first.allocations) as f64 / frames.max(1) as f64,
        "client_rss_before_kib": rss_before,
        "client_peak_rss_kib": status_kib("self", "VmHWM:"),
        "enqueue_lag": shared.enqueue_lag.summary(),
        "frames_per_socket_write": shared.frames_written.load(Ordering::Relaxed) as f64
            / shared.socket_writes.load(Ordering::Relaxed).max(1) as f64,
        "connect": percentiles(&connect),
        "steady": steady_json,
        "fast": fast_json,
    })
}

fn frames_per_stream_secs(args: &RunArgs) -> f64 {
    let frames = (args.duration.as_millis() as u64 / args.frame_ms).max(1);
    (frames * args.frame_ms) as f64 / 1000.0
}

fn finish_report(args: &RunArgs, report: Value) -> Result<(), String> {
    let get = |path: &str| -> String {
        match report.pointer(path) {
            Some(Value::Number(n)) => {
                let v = n.as_f64().unwrap_or(0.0);
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    format!("{v:.0}")
                } else if v.abs() >= 100.0 {
                    format!("{v:.1}")
                } else {
                    format!("{v:.3}")
                }
            }
            Some(Value::Null) | None => "-".into(),
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
        }
    };
    let rows: Vec<(&str, String)> = vec![
        ("mode", get("/mode")),
        (
            "api / signed",
            format!("{} / {}", get("/api"), get("/signed")),
        ),
        (
            "sessions (completed / failed)",
            format!(
                "{} ({} / {})",
                get("/sessions"),
                get("/sessions_completed"),
                get("/sessions_failed")
            ),
        ),
        (
            "signature failures (emulator)",
            get("/emulator/signature_failures"),
        ),
        (
            "other rejections (emulator)",
            get("/emulator/other_rejections"),
        ),
        (
            "signed frames verified (emulator)",
            get("/emulator/signed_frames_verified"),
        ),
        (
            "frames sent / received by emulator",
            format!(
                "{} / {}",
                get("/frames_sent"),
                get("/emulator/media_frames")
            ),
        ),
        (
            "frames/s (whole run | steady)",
            format!("{} | {}", get("/frames_per_s"), get("/steady/frames_per_s")),
        ),
        (
            "lag due->emulator p50 / p99 / max ms",
            format!(
                "{} / {} / {}",
                get("/emulator/lag/p50_ms"),
                get("/emulator/lag/p99_ms"),
                get("/emulator/lag/max_ms")
            ),
        ),
        (
            "enqueue lag p50 / p99 / max ms",
            format!(
                "{} / {} / {}",
                get("/enqueue_lag/p50_ms"),
                get("/enqueue_lag/p99_ms"),
                get("/enqueue_lag/max_ms")
            ),
        ),
        (
            "client CPU s per stream-minute",
            get("/client_cpu_s_per_stream_minute"),
        ),
        (
            "client CPU us/frame (run | steady)",
            format!(
                "{} | {}",
                get("/client_cpu_us_per_frame"),
                get("/steady/client_cpu_us_per_frame")
            ),
        ),
        (
            "client user / system us/frame (steady)",
            format!(
                "{} / {}",
                get("/steady/client_user_us_per_frame"),
                get("/steady/client_system_us_per_frame")
            ),
        ),
        (
            "client user us/frame (run)",
            get("/client_user_us_per_frame"),
        ),
        ("client CPU cores (steady)", get("/steady/client_cpu_cores")),
        (
            "emulator CPU s per stream-minute",
            get("/emulator_cpu_s_per_stream_minute"),
        ),
        (
            "emulator CPU us/frame (run | steady)",
            format!(
                "{} | {}",
                get("/emulator_cpu_us_per_frame"),
                get("/steady/emulator_cpu_us_per_frame")
            ),
        ),
        (
            "emulator user us/frame (steady)",
            get("/steady/emulator_user_us_per_frame"),
        ),
        (
            "emulator CPU cores (steady)",
            get("/steady/emulator_cpu_cores"),
        ),
        (
            "run-queue wait s client / emulator (steady)",
            format!(
                "{} / {} (of {} s)",
                get("/steady/client_runqueue_wait_s"),
                get("/steady/emulator_runqueue_wait_s"),
                get("/steady/seconds")
            ),
        ),
        (
            "signing floor us/frame (before | after)",
            format!(
                "{} | {}",
                get("/signing_floor/before_us"),
                get("/signing_floor/after_us")
            ),
        ),
        (
            "client CPU per frame / floor (run | steady)",
            format!(
                "{} | {}",
                get("/signing_floor/client_cpu_per_frame_over_floor"),
                get("/signing_floor/steady_client_cpu_per_frame_over_floor")
            ),
        ),
        ("machine load average at the end", get("/machine_load_avg")),
        (
            "hypervisor steal s (steady, all vCPUs)",
            get("/steady/machine_steal_s"),
        ),
        (
            "client RSS per session KiB (steady)",
            get("/steady/client_rss_per_session_kib"),
        ),
        (
            "client RSS before / peak KiB",
            format!(
                "{} / {}",
                get("/client_rss_before_kib"),
                get("/client_peak_rss_kib")
            ),
        ),
        (
            "allocations per frame (run | steady)",
            format!(
                "{} | {}",
                get("/allocations_per_frame"),
                get("/steady/allocations_per_frame")
            ),
        ),
        ("frames per socket write", get("/frames_per_socket_write")),
        (
            "connect p50 / p99 ms",
            format!("{} / {}", get("/connect/p50_ms"), get("/connect/p99_ms")),
        ),
        (
            "fast: audio s / wall s / x real time",
            format!(
                "{} / {} / {}",
                get("/fast/audio_s"),
                get("/fast/wall_s"),
                get("/fast/times_real_time")
            ),
        ),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for (k, v) in rows {
        let _ = writeln!(out, "{k:<width$}  {v}");
    }
    if let Some(Value::Array(seconds)) = report.pointer("/emulator/lag_by_second") {
        // The seconds whose p99 lag was worst: where in the run the tail comes from.
        let mut worst: Vec<&Value> = seconds.iter().collect();
        worst.sort_by(|a, b| {
            let p99 = |v: &Value| v.get(2).and_then(Value::as_f64).unwrap_or(0.0);
            p99(b).total_cmp(&p99(a))
        });
        let shown: Vec<String> = worst
            .iter()
            .take(5)
            .map(|v| {
                format!(
                    "t={}s p99 {} ms ({} frames)",
                    v.get(0).cloned().unwrap_or_default(),
                    v.get(2).cloned().unwrap_or_default(),
                    v.get(1).cloned().unwrap_or_default()
                )
            })
            .collect();
        let _ = writeln!(out, "worst seconds for lag: {}", shown.join(", "));
    }
    if let Some(Value::Object(failures)) = report.get("failures") {
        for (reason, count) in failures {
            let _ = writeln!(out, "  failure x{count}: {reason}");
        }
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let _ = writeln!(out, "JSON written to {}", path.display());
    }
    Ok(())
}
