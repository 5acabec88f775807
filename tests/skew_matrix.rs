//! The clock-skew matrix (issue 8, part 1): the HOST clock off by −24 h … +24 h, × each way a
//! server tells the client its time, × each service mode, through the typed clients.
//!
//! * Host skews: the issue's −24 h, −1 h, −6 min, −4 min, 0, +4 min, +6 min, +1 h, +24 h; plus
//!   ±2 min (a host a little off, the common case), and ±4 min again with a 300 s URL lifetime.
//!   The emulator runs on the true system time; the client's clock is a [`Clock`] over a
//!   deliberately wrong source (the system clock shifted by the skew), so what is off is the
//!   host, as in the field.
//! * Channels: (a) the `Date` header of the 101 (the emulator default); (b) a refused upgrade's
//!   body (no `Date` header, `RejectionStyle::Http403`); (c) an exception frame after the
//!   upgrade (no `Date` header, `RejectionStyle::ExceptionFrame`); and (d), added, a refused
//!   upgrade that carries a `Date` header too, as AWS error responses do.
//! * Modes: Transcribe through `TranscribeClient` with unsigned frames (the default), the same
//!   with `FrameSigning::Signed`, and Face Liveness through `LivenessClient`.
//!
//! When a re-presign is needed: only when the first URL cannot be accepted, i.e. its
//! `X-Amz-Date` is outside the 5-minute window, or (host behind) it expired before it arrived:
//! with the default `X-Amz-Expires` of 60 s a host 2 or 4 minutes behind signs URLs that are
//! already expired, so those need exactly one re-presign; with 300 s they need none.
//!
//! Every case asserts: the session succeeds with exactly the re-presigns needed (0 or 1: ≤ 2
//! connection records); the offset is learned from the channel under test; the refused first
//! connection took no media; the final connection was accepted and completed, its URL date and
//! every verified frame `:date` within the window of the emulator's clock (within a minute once
//! the offset is learned; the emulator records only verified dates); and the emulator's final
//! record counts exactly the frames and bytes the producer sent, none dropped or duplicated
//! across the reconnect. Frames are small and sent without pacing, so the whole matrix (156
//! cases) runs in seconds.
#![cfg(all(feature = "emulator", feature = "transcribe", feature = "liveness"))]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sigv4_ws::emulator::{
    ConnectionRecord, Emulator, EmulatorConfig, EmulatorHandle, Outcome, RejectionStyle,
};
use sigv4_ws::services::liveness::{
    LivenessClient, LivenessEvent, StartFaceLivenessSession, DEFAULT_CHALLENGE_VERSIONS,
};
use sigv4_ws::services::transcribe::{MediaEncoding, StartStreamTranscription, TranscribeClient};
use sigv4_ws::transport::{FrameSigning, OffsetLearned, OffsetSource, SessionConfig, SessionStats};
use sigv4_ws::Clock;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
/// The servers' window either side of their clock.
const WINDOW: i64 = 5 * MINUTE;
/// Generous bound for any one step (connect, a stream's end, the emulator's bookkeeping).
const PATIENCE: Duration = Duration::from_secs(20);
/// Media frames per session: few and small, so a reconnect's replay buffer holds them all.
const FRAMES: usize = 12;
/// 10 ms of 16 kHz mono PCM.
const AUDIO_CHUNK: usize = 320;
/// A small stand-in for a WebM slice.
const VIDEO_CHUNK: usize = 96;
/// How close the learned offset must come to the true one (Date headers have 1 s resolution).
const OFFSET_TOLERANCE: i64 = 5_000;
/// How close every signed time on the accepted connection must be to the emulator's clock.
const DATE_TOLERANCE: i64 = 60_000;

/// How the server tells the client its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channel {
    /// (a) `Date` on the 101 response.
    DateHeader,
    /// (b) a refused upgrade's JSON body (HTTP 400/403), no `Date` header.
    RejectedUpgrade,
    /// (c) an exception frame after the upgrade, no `Date` header.
    ExceptionFrame,
    /// (d) a refused upgrade that also carries a `Date` header, as AWS error responses do
    /// (not in the list; added because it takes a different path in the connector).
    RejectedUpgradeWithDate,
}

impl Channel {
    fn emulator(self) -> EmulatorConfig {
        let base = EmulatorConfig::default().close_grace(Duration::from_millis(200));
        match self {
            Channel::DateHeader => base,
            Channel::RejectedUpgrade => base
                .send_date_header(false)
                .rejection_style(RejectionStyle::Http403),
            Channel::ExceptionFrame => base.send_date_header(false),
            Channel::RejectedUpgradeWithDate => base.rejection_style(RejectionStyle::Http403),
        }
    }

    fn sends_date(self) -> bool {
        matches!(self, Channel::DateHeader | Channel::RejectedUpgradeWithDate)
    }

    fn offset_source(self) -> OffsetSource {
        match self {
            Channel::DateHeader => OffsetSource::UpgradeDate,
            Channel::RejectedUpgrade | Channel::RejectedUpgradeWithDate => {
                OffsetSource::RejectedUpgrade
            }
            Channel::ExceptionFrame => OffsetSource::ExceptionFrame,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Transcribe,
    TranscribeSigned,
    Liveness,
}

impl Mode {
    fn signed(self) -> bool {
        self != Mode::Transcribe
    }

    fn chunk(self) -> usize {
        match self {
            Mode::Liveness => VIDEO_CHUNK,
            _ => AUDIO_CHUNK,
        }
    }
}

/// A clock over a host clock that is `skew_ms` off the true time (offset 0: nothing learned yet).
fn host_clock(skew_ms: i64) -> Clock {
    let wrong_host = Clock::system();
    wrong_host.set_offset_millis(skew_ms);
    Clock::new(wrong_host)
}

fn millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

fn session_config() -> SessionConfig {
    SessionConfig::default()
        .connect_timeout(PATIENCE)
        .idle_timeout(Some(PATIENCE))
        .final_results_timeout(Duration::from_secs(5))
}

/// What the client side saw.
#[derive(Debug)]
struct ClientSide {
    learned: Vec<OffsetLearned>,
    stats: SessionStats,
    media_frames: u64,
    media_bytes: u64,
}

/// A chunk whose bytes say which frame it is (so a reordering or a duplicate changes the sum).
fn chunk(index: usize, len: usize) -> Vec<u8> {
    vec![(index % 251) as u8 + 1; len]
}

async fn transcribe_session(
    handle: &EmulatorHandle,
    clock: &Clock,
    config: SessionConfig,
    mode: Mode,
    ctx: &str,
) -> ClientSide {
    let signing = if mode.signed() {
        FrameSigning::Signed
    } else {
        FrameSigning::Unsigned
    };
    let client = TranscribeClient::new("us-east-1")
        .endpoint(handle.endpoint())
        .credentials(handle.credentials())
        .clock(clock.clone())
        .session_config(config)
        .frame_signing(signing);
    let request = StartStreamTranscription::new(MediaEncoding::Pcm, 16_000).language_code("en-US");
    let stream = tokio::time::timeout(PATIENCE, client.start(request))
        .await
        .unwrap_or_else(|_| panic!("{ctx}: start did not finish in {PATIENCE:?}"))
        .unwrap_or_else(|e| panic!("{ctx}: start failed: {e}"));
    let (mut audio, mut events) = stream.split();
    let reader_ctx = ctx.to_owned();
    let reader = tokio::spawn(async move {
        let mut count = 0usize;
        while let Some(event) = events.next_event().await {
            if let Err(e) = event {
                panic!("{reader_ctx}: the stream reported an error: {e}");
            }
            count += 1;
        }
        (count, events.stats(), events.offsets_learned())
    });
    for i in 0..FRAMES {
        audio
            .send_audio(chunk(i, AUDIO_CHUNK))
            .await
            .unwrap_or_else(|e| panic!("{ctx}: audio frame {i} refused: {e}"));
    }
    audio
        .finish()
        .await
        .unwrap_or_else(|e| panic!("{ctx}: finish failed: {e}"));
    let (events, stats, learned) = tokio::time::timeout(PATIENCE, reader)
        .await
        .unwrap_or_else(|_| panic!("{ctx}: the stream did not end within {PATIENCE:?}"))
        .unwrap_or_else(|e| panic!("{ctx}: reader task: {e}"));
    assert!(events > 0, "{ctx}: no transcript came back");
    ClientSide {
        learned,
        stats,
        media_frames: FRAMES as u64,
        media_bytes: (FRAMES * AUDIO_CHUNK) as u64,
    }
}

async fn liveness_session(
    handle: &EmulatorHandle,
    clock: &Clock,
    config: SessionConfig,
    ctx: &str,
) -> ClientSide {
    let client = LivenessClient::new("us-east-1")
        .endpoint(handle.endpoint())
        .credentials(handle.credentials())
        .clock(clock.clone())
        .session_config(config);
    let request = StartFaceLivenessSession::new(
        "6a1c1f3e-2b8d-4c55-9e0a-3f7d2c1b0a99",
        320,
        240,
        DEFAULT_CHALLENGE_VERSIONS,
    );
    let stream = tokio::time::timeout(PATIENCE, client.start(request))
        .await
        .unwrap_or_else(|_| panic!("{ctx}: start did not finish in {PATIENCE:?}"))
        .unwrap_or_else(|e| panic!("{ctx}: start failed: {e}"));
    let (mut video, mut events) = stream.split();
    let reader_ctx = ctx.to_owned();
    let reader = tokio::spawn(async move {
        let mut informed = false;
        let mut disconnected = false;
        while let Some(event) = events.next_event().await {
            match event {
                Ok(LivenessEvent::ServerSessionInformation(_)) => informed = true,
                Ok(LivenessEvent::Disconnection(_)) => disconnected = true,
                Ok(_) => {}
                Err(e) => panic!("{reader_ctx}: the session reported an error: {e}"),
            }
        }
        (
            informed,
            disconnected,
            events.stats(),
            events.offsets_learned(),
        )
    });
    for i in 0..FRAMES {
        video
            .send_video(chunk(i, VIDEO_CHUNK))
            .await
            .unwrap_or_else(|e| panic!("{ctx}: video frame {i} refused: {e}"));
    }
    let sent_bytes = video.video_bytes_sent();
    video
        .finish()
        .await
        .unwrap_or_else(|e| panic!("{ctx}: finish failed: {e}"));
    let (informed, disconnected, stats, learned) = tokio::time::timeout(PATIENCE, reader)
        .await
        .unwrap_or_else(|_| panic!("{ctx}: the session did not end within {PATIENCE:?}"))
        .unwrap_or_else(|e| panic!("{ctx}: reader task: {e}"));
    assert!(informed, "{ctx}: no ServerSessionInformationEvent");
    assert!(disconnected, "{ctx}: no DisconnectionEvent");
    ClientSide {
        learned,
        stats,
        media_frames: FRAMES as u64,
        media_bytes: sent_bytes,
    }
}

/// Waits until every connection the emulator accepted has finished, then stops it.
async fn settled_records(handle: EmulatorHandle) -> Vec<ConnectionRecord> {
    let accepted = handle.records().len();
    let records = handle.wait_for_finished(accepted, PATIENCE).await;
    let unfinished: Vec<_> = records
        .iter()
        .filter(|r| !r.is_finished())
        .map(|r| r.id)
        .collect();
    assert!(
        unfinished.is_empty(),
        "connections {unfinished:?} still open after {PATIENCE:?}"
    );
    handle.shutdown().await
}

/// Whether a URL presigned on a host `skew_ms` off the true time, with `X-Amz-Expires` of
/// `expires_ms`, is refused on arrival: its `X-Amz-Date` is outside the 5-minute window, or
/// (host behind) it expired before it was used. Only then is a re-presign needed.
fn url_refused(skew_ms: i64, expires_ms: i64) -> bool {
    skew_ms.abs() > WINDOW || -skew_ms > expires_ms
}

async fn run_case(skew_ms: i64, url_expires: Duration, channel: Channel, mode: Mode) {
    let expires_ms = url_expires.as_millis() as i64;
    let ctx = format!(
        "host clock {:+} s, X-Amz-Expires {} s, evidence via {channel:?}, {mode:?}",
        skew_ms / 1000,
        expires_ms / 1000
    );
    let handle = Emulator::start(channel.emulator())
        .await
        .expect("the emulator starts on 127.0.0.1");
    let emulator_clock = handle.clock();
    let clock = host_clock(skew_ms);
    let config = session_config().url_expires_in(url_expires);
    let client = match mode {
        Mode::Liveness => liveness_session(&handle, &clock, config, &ctx).await,
        _ => transcribe_session(&handle, &clock, config, mode, &ctx).await,
    };
    let records = settled_records(handle).await;
    let server_now = millis(emulator_clock.now());
    let shown = format!("{ctx}\nclient: {client:#?}\nrecords: {records:#?}");

    // At most one re-presign, and none unless the first URL could not be accepted.
    let refused = url_refused(skew_ms, expires_ms);
    let expected_connections = if refused { 2 } else { 1 };
    assert_eq!(
        records.len(),
        expected_connections,
        "connections made: {shown}"
    );
    assert!(client.stats.reconnects <= 1, "session reconnects: {shown}");
    if matches!(
        channel,
        Channel::RejectedUpgrade | Channel::RejectedUpgradeWithDate
    ) {
        assert_eq!(
            client.stats.reconnects, 0,
            "corrected while connecting: {shown}"
        );
    }
    if channel == Channel::ExceptionFrame {
        assert_eq!(
            client.stats.reconnects,
            u32::from(refused),
            "reconnected mid-session: {shown}"
        );
    }

    // What the clock learned: the host's error, from the channel under test, whenever the
    // channel carried evidence (a Date header always does; a refusal only when there is one).
    let date_teaches = channel.sends_date() && skew_ms.abs() > 2_000;
    let learned = refused || date_teaches;
    if learned {
        let expected_source = if refused {
            channel.offset_source()
        } else {
            OffsetSource::UpgradeDate
        };
        assert!(
            client.learned.iter().any(|l| l.source == expected_source),
            "the offset must be learned from {expected_source:?}: {shown}"
        );
        let offset = clock.offset_millis();
        assert!(
            (offset + skew_ms).abs() <= OFFSET_TOLERANCE,
            "learned offset {offset} ms for a host {skew_ms} ms off: {shown}"
        );
    } else {
        assert!(client.learned.is_empty(), "nothing to learn: {shown}");
        assert_eq!(clock.offset_millis(), 0, "the offset moved: {shown}");
    }

    // The first connection of a re-presigned session was refused, never served.
    if refused {
        let first = &records[0];
        assert_eq!(
            first.media_frames, 0,
            "the refused connection took no media: {shown}"
        );
        assert!(
            first.rejection.is_some(),
            "the first URL was not acceptable: {shown}"
        );
        assert!(
            first.frame_dates_millis.is_empty(),
            "no frame verified on it: {shown}"
        );
    }

    // The final connection: accepted, completed, every signed time inside the window. Times
    // signed after the offset was learned (a re-presigned URL; every frame, since frames are
    // signed after the upgrade's Date header is read) are within a minute of the emulator.
    let url_tolerance = if refused { DATE_TOLERANCE } else { WINDOW };
    let frame_tolerance = if learned { DATE_TOLERANCE } else { WINDOW };
    let last = records.last().expect("a connection");
    assert!(
        last.rejection.is_none(),
        "the final connection was refused: {shown}"
    );
    assert_eq!(last.upgrade_status, Some(101), "{shown}");
    assert_eq!(last.outcome, Outcome::Completed, "{shown}");
    let url_date = millis(last.url_date.expect("the final URL carries X-Amz-Date"));
    assert!(
        (url_date - server_now).abs() <= url_tolerance,
        "final X-Amz-Date {url_date} vs emulator {server_now}: {shown}"
    );
    if mode.signed() {
        // Media frames, the empty end-marker event, and the signed empty end frame.
        assert_eq!(
            last.frame_dates_millis.len(),
            FRAMES + 2,
            "verified frames: {shown}"
        );
        for date in &last.frame_dates_millis {
            assert!(
                (date - server_now).abs() <= frame_tolerance,
                ":date {date} vs emulator {server_now}: {shown}"
            );
        }
    } else {
        assert!(
            last.frame_dates_millis.is_empty(),
            "unsigned frames carry no :date: {shown}"
        );
    }

    // No media lost or duplicated across the retry.
    assert_eq!(
        last.media_frames, client.media_frames,
        "media frames: {shown}"
    );
    assert_eq!(last.media_bytes, client.media_bytes, "media bytes: {shown}");
    assert_eq!(
        client.media_bytes,
        (FRAMES * mode.chunk()) as u64,
        "{shown}"
    );
    let total: u64 = records.iter().map(|r| r.media_frames).sum();
    assert_eq!(
        total, client.media_frames,
        "media accepted across all connections: {shown}"
    );
}

/// One module per host skew (and URL lifetime), with the twelve channel × mode cases in each;
/// a failing case is named `skew_matrix::<skew>::<mode>_<channel>`.
macro_rules! skew_cases {
    ($($skew_name:ident => $skew_ms:expr, expires $expires_s:expr;)*) => {
        $(
            mod $skew_name {
                #[allow(unused_imports)]
                use super::{run_case, Channel, Mode, HOUR, MINUTE};

                const SKEW_MS: i64 = $skew_ms;
                const EXPIRES: std::time::Duration = std::time::Duration::from_secs($expires_s);

                skew_cases!(@case transcribe_date_header, DateHeader, Transcribe);
                skew_cases!(@case transcribe_rejected_upgrade, RejectedUpgrade, Transcribe);
                skew_cases!(@case transcribe_exception_frame, ExceptionFrame, Transcribe);
                skew_cases!(@case transcribe_rejected_upgrade_with_date, RejectedUpgradeWithDate, Transcribe);
                skew_cases!(@case transcribe_signed_date_header, DateHeader, TranscribeSigned);
                skew_cases!(@case transcribe_signed_rejected_upgrade, RejectedUpgrade, TranscribeSigned);
                skew_cases!(@case transcribe_signed_exception_frame, ExceptionFrame, TranscribeSigned);
                skew_cases!(@case transcribe_signed_rejected_upgrade_with_date, RejectedUpgradeWithDate, TranscribeSigned);
                skew_cases!(@case liveness_date_header, DateHeader, Liveness);
                skew_cases!(@case liveness_rejected_upgrade, RejectedUpgrade, Liveness);
                skew_cases!(@case liveness_exception_frame, ExceptionFrame, Liveness);
                skew_cases!(@case liveness_rejected_upgrade_with_date, RejectedUpgradeWithDate, Liveness);
            }
        )*
    };
    (@case $name:ident, $channel:ident, $mode:ident) => {
        #[tokio::test]
        async fn $name() {
            run_case(SKEW_MS, EXPIRES, Channel::$channel, Mode::$mode).await;
        }
    };
}

// The nine host skews with the default 60 s URL lifetime; ±2 min (a host a little off,
// the common case) added; and ±4 min again with a 300 s lifetime, where a host 4 minutes
// behind signs a URL that is still valid when it arrives.
skew_cases! {
    host_24h_behind => -24 * HOUR, expires 60;
    host_1h_behind => -HOUR, expires 60;
    host_6min_behind => -6 * MINUTE, expires 60;
    host_4min_behind => -4 * MINUTE, expires 60;
    host_2min_behind => -2 * MINUTE, expires 60;
    host_in_sync => 0, expires 60;
    host_2min_ahead => 2 * MINUTE, expires 60;
    host_4min_ahead => 4 * MINUTE, expires 60;
    host_6min_ahead => 6 * MINUTE, expires 60;
    host_1h_ahead => HOUR, expires 60;
    host_24h_ahead => 24 * HOUR, expires 60;
    host_4min_behind_url_lives_300s => -4 * MINUTE, expires 300;
    host_4min_ahead_url_lives_300s => 4 * MINUTE, expires 300;
}
