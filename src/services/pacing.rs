//! Real-time pacing of pre-recorded audio, PCM chunking, and keep-alive silence.
//!
//! Transcribe processes audio at real-time speed, so a file sent faster than real time waits in
//! the service's queue, and signed frames age there until they fail with "Signature expired"
//! (protocol.md section 0, item 3). Conversely, a stream with no audio for 15 seconds ends with
//! `BadRequestException: Your request timed out because no new audio was received for 15
//! seconds.` The three helpers here address both:
//!
//! * [`pcm_chunks`] splits raw PCM into chunks of a given duration (100 ms is a good default;
//!   a chunk must not exceed one second of audio), on frame boundaries.
//! * [`RealTimePacer`] waits before each chunk so that audio leaves no faster than it plays
//!   ([`RealTimePacer::unpaced`] is the `--fast` equivalent: no waiting).
//! * [`KeepAlive`] produces a silence chunk when no audio was sent for a while.
//!
//! The timing logic is sans-IO: [`RealTimePacer::delay`] and [`KeepAlive::poll`] take the
//! current [`Instant`]; only [`RealTimePacer::pace`] sleeps (with tokio's timer, so tests can
//! run it under `tokio::time::pause`).
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use sigv4_ws::services::pacing::{pcm_chunks, PcmFormat, RealTimePacer};
//!
//! # async fn demo() {
//! let format = PcmFormat::new(16_000, 1); // 16 kHz mono, 16-bit
//! let audio = Bytes::from(vec![0u8; 32_000]); // one second
//! let mut pacer = RealTimePacer::new();
//! for chunk in pcm_chunks(audio, format, Duration::from_millis(100)) {
//!     pacer.pace(format.duration_of(chunk.len())).await;
//!     // stream.send_audio(chunk).await?;
//! }
//! # }
//! ```

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// The shape of raw PCM audio: sample rate, channels (interleaved) and bytes per sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcmFormat {
    sample_rate: u32,
    channels: u16,
    bytes_per_sample: u16,
}

impl PcmFormat {
    /// Signed 16-bit little-endian PCM (what Transcribe takes) at `sample_rate` Hz with
    /// `channels` interleaved channels. Zero values are treated as 1.
    pub fn new(sample_rate: u32, channels: u16) -> Self {
        PcmFormat {
            sample_rate: sample_rate.max(1),
            channels: channels.max(1),
            bytes_per_sample: 2,
        }
    }

    /// Sets the bytes per sample (2 for 16-bit PCM). Zero is treated as 1.
    pub fn bytes_per_sample(mut self, bytes: u16) -> Self {
        self.bytes_per_sample = bytes.max(1);
        self
    }

    /// Samples per second per channel.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Interleaved channels.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Bytes of one frame (one sample of every channel).
    pub fn frame_len(&self) -> usize {
        usize::from(self.channels) * usize::from(self.bytes_per_sample)
    }

    /// Bytes of one second of audio.
    pub fn bytes_per_second(&self) -> u64 {
        u64::from(self.sample_rate) * self.frame_len() as u64
    }

    /// How long `len` bytes of this audio play.
    pub fn duration_of(&self, len: usize) -> Duration {
        let nanos = (len as u128) * 1_000_000_000 / u128::from(self.bytes_per_second());
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Bytes of `duration` of audio, rounded down to whole frames (at least one frame).
    pub fn len_of(&self, duration: Duration) -> usize {
        let frames = u128::from(self.sample_rate) * duration.as_nanos() / 1_000_000_000;
        let frames = usize::try_from(frames).unwrap_or(usize::MAX).max(1);
        frames.saturating_mul(self.frame_len())
    }

    /// `duration` of digital silence (all-zero samples).
    pub fn silence(&self, duration: Duration) -> Bytes {
        Bytes::from(vec![0u8; self.len_of(duration)])
    }
}

/// Splits raw PCM into chunks of `duration` (the last one may be shorter), each a whole number
/// of frames. No copying: the chunks share `audio`'s buffer.
///
/// ```
/// use std::time::Duration;
/// use sigv4_ws::services::pacing::{pcm_chunks, PcmFormat};
///
/// let format = PcmFormat::new(8_000, 1);
/// let chunks: Vec<_> = pcm_chunks(vec![0u8; 4_000].into(), format, Duration::from_millis(100)).collect();
/// assert_eq!(chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), vec![1_600, 1_600, 800]);
/// ```
pub fn pcm_chunks(audio: Bytes, format: PcmFormat, duration: Duration) -> PcmChunks {
    PcmChunks {
        rest: audio,
        chunk_len: format.len_of(duration),
    }
}

/// Iterator returned by [`pcm_chunks`].
#[derive(Debug, Clone)]
pub struct PcmChunks {
    rest: Bytes,
    chunk_len: usize,
}

impl Iterator for PcmChunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.rest.is_empty() {
            return None;
        }
        let at = self.chunk_len.min(self.rest.len());
        Some(self.rest.split_to(at))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.rest.len().div_ceil(self.chunk_len.max(1));
        (n, Some(n))
    }
}

impl ExactSizeIterator for PcmChunks {}

/// Holds audio back to real time: chunk *n* leaves no earlier than the moment at which the
/// audio before it has finished playing, measured from the first chunk.
///
/// A lead (default zero) lets audio run ahead of real time by that much, which absorbs
/// scheduling jitter without building a queue at the service.
#[derive(Debug, Clone)]
pub struct RealTimePacer {
    enabled: bool,
    lead: Duration,
    started: Option<Instant>,
    sent: Duration,
}

impl Default for RealTimePacer {
    fn default() -> Self {
        RealTimePacer::new()
    }
}

impl RealTimePacer {
    /// A pacer that keeps audio at real time.
    pub fn new() -> Self {
        RealTimePacer {
            enabled: true,
            lead: Duration::ZERO,
            started: None,
            sent: Duration::ZERO,
        }
    }

    /// A pacer that never waits (the `--fast` mode). Only for short clips: audio more than
    /// about five minutes ahead of real time fails with "Signature expired" on signed streams.
    pub fn unpaced() -> Self {
        RealTimePacer {
            enabled: false,
            ..RealTimePacer::new()
        }
    }

    /// Lets audio run ahead of real time by up to `lead`.
    pub fn lead(mut self, lead: Duration) -> Self {
        self.lead = lead;
        self
    }

    /// Whether this pacer waits at all.
    pub fn is_paced(&self) -> bool {
        self.enabled
    }

    /// Audio recorded as sent so far.
    pub fn audio_sent(&self) -> Duration {
        self.sent
    }

    /// How long to wait at `now` before sending the next chunk (zero when it may go now).
    /// The first call starts the clock.
    pub fn delay(&mut self, now: Instant) -> Duration {
        let started = *self.started.get_or_insert(now);
        if !self.enabled {
            return Duration::ZERO;
        }
        let due = started + self.sent.saturating_sub(self.lead);
        due.saturating_duration_since(now)
    }

    /// Records that a chunk playing for `audio` was sent.
    pub fn record(&mut self, audio: Duration) {
        self.sent = self.sent.saturating_add(audio);
    }

    /// Waits until the next chunk may be sent, then records it as sent: call it just before
    /// sending a chunk playing for `audio`.
    pub async fn pace(&mut self, audio: Duration) {
        let wait = self.delay(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        self.record(audio);
    }
}

/// Produces a silence chunk when no audio was sent for `after`, so that a quiet stream is not
/// ended by Transcribe's 15-second no-audio timeout.
///
/// For PCM, [`KeepAlive::pcm`] makes the silence itself. For FLAC or Ogg-Opus, zeros are not
/// silence: encode a short silent frame with your encoder and give it to
/// [`KeepAlive::with_frame`].
///
/// ```
/// use std::time::Duration;
/// use tokio::time::Instant;
/// use sigv4_ws::services::pacing::{KeepAlive, PcmFormat};
///
/// let start = Instant::now();
/// let mut keep_alive = KeepAlive::pcm(PcmFormat::new(16_000, 1), Duration::from_secs(5), start);
/// assert!(keep_alive.poll(start + Duration::from_secs(1)).is_none());
/// let silence = keep_alive.poll(start + Duration::from_secs(5)).expect("due");
/// assert_eq!(silence.len(), 3_200); // 100 ms of 16 kHz mono
/// keep_alive.audio_sent(start + Duration::from_secs(6)); // real audio resets the timer
/// assert!(keep_alive.poll(start + Duration::from_secs(10)).is_none());
/// ```
#[derive(Debug, Clone)]
pub struct KeepAlive {
    after: Duration,
    frame: Bytes,
    last: Instant,
}

impl KeepAlive {
    /// 100 ms of PCM silence whenever nothing was sent for `after` (use well under 15 s,
    /// e.g. 5 s), counting from `now`.
    pub fn pcm(format: PcmFormat, after: Duration, now: Instant) -> Self {
        KeepAlive::with_frame(format.silence(Duration::from_millis(100)), after, now)
    }

    /// Sends `frame` (an encoded silent frame) whenever nothing was sent for `after`.
    pub fn with_frame(frame: Bytes, after: Duration, now: Instant) -> Self {
        KeepAlive {
            after: after.max(Duration::from_millis(1)),
            frame,
            last: now,
        }
    }

    /// Records that audio was sent at `now`.
    pub fn audio_sent(&mut self, now: Instant) {
        self.last = now;
    }

    /// When the next silence is due if no audio is sent before.
    pub fn deadline(&self) -> Instant {
        self.last + self.after
    }

    /// The silence chunk to send now, if one is due; it counts as audio sent at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<Bytes> {
        if now >= self.deadline() {
            self.last = now;
            Some(self.frame.clone())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_format_arithmetic() {
        let f = PcmFormat::new(16_000, 2);
        assert_eq!(f.frame_len(), 4);
        assert_eq!(f.bytes_per_second(), 64_000);
        assert_eq!(f.duration_of(6_400), Duration::from_millis(100));
        assert_eq!(f.len_of(Duration::from_millis(100)), 6_400);
        assert_eq!(f.silence(Duration::from_millis(10)).len(), 640);
        assert!(f.silence(Duration::from_millis(10)).iter().all(|b| *b == 0));
        let zero = PcmFormat::new(0, 0).bytes_per_sample(0);
        assert_eq!(zero.bytes_per_second(), 1);
        assert_eq!(zero.len_of(Duration::ZERO), 1, "at least one frame");
        let wide = PcmFormat::new(8_000, 1).bytes_per_sample(4);
        assert_eq!(wide.frame_len(), 4);
    }

    #[test]
    fn chunks_are_frame_aligned_and_cover_the_input() {
        let f = PcmFormat::new(8_000, 2); // 4-byte frames, 100 ms = 3 200 bytes
        let audio: Bytes = (0..10_000u32).map(|i| i as u8).collect::<Vec<_>>().into();
        let chunks: Vec<Bytes> = pcm_chunks(audio.clone(), f, Duration::from_millis(100)).collect();
        assert_eq!(chunks.len(), 4);
        assert!(chunks[..3].iter().all(|c| c.len() == 3_200));
        assert_eq!(chunks[3].len(), 400);
        assert_eq!(chunks.concat(), audio.to_vec());
        assert_eq!(
            pcm_chunks(Bytes::new(), f, Duration::from_millis(100)).count(),
            0
        );
        assert_eq!(pcm_chunks(audio, f, Duration::from_millis(100)).len(), 4);
    }

    #[test]
    fn pacer_holds_chunks_to_real_time() {
        let t0 = Instant::now();
        let mut p = RealTimePacer::new();
        assert_eq!(p.delay(t0), Duration::ZERO, "the first chunk goes at once");
        p.record(Duration::from_millis(100));
        assert_eq!(p.delay(t0), Duration::from_millis(100));
        assert_eq!(
            p.delay(t0 + Duration::from_millis(40)),
            Duration::from_millis(60)
        );
        assert_eq!(
            p.delay(t0 + Duration::from_millis(250)),
            Duration::ZERO,
            "late: no wait"
        );
        p.record(Duration::from_millis(100));
        assert_eq!(
            p.delay(t0 + Duration::from_millis(150)),
            Duration::from_millis(50)
        );
        assert_eq!(p.audio_sent(), Duration::from_millis(200));
    }

    #[test]
    fn pacer_lead_and_unpaced() {
        let t0 = Instant::now();
        let mut p = RealTimePacer::new().lead(Duration::from_millis(300));
        p.delay(t0);
        p.record(Duration::from_millis(200));
        assert_eq!(p.delay(t0), Duration::ZERO);
        p.record(Duration::from_millis(200));
        assert_eq!(p.delay(t0), Duration::from_millis(100));
        let mut fast = RealTimePacer::unpaced();
        assert!(!fast.is_paced());
        fast.delay(t0);
        fast.record(Duration::from_secs(60));
        assert_eq!(fast.delay(t0), Duration::ZERO);
    }

    #[tokio::test]
    async fn pace_sleeps_until_the_audio_has_played() {
        let t0 = Instant::now();
        let mut p = RealTimePacer::new();
        for _ in 0..5 {
            p.pace(Duration::from_millis(10)).await;
        }
        // The fifth chunk cannot start before 40 ms of audio have played (a lower bound only).
        assert!(Instant::now() - t0 >= Duration::from_millis(40));
    }

    #[test]
    fn keep_alive_fires_only_after_silence() {
        let t0 = Instant::now();
        let mut k = KeepAlive::pcm(PcmFormat::new(8_000, 1), Duration::from_secs(5), t0);
        assert_eq!(k.deadline(), t0 + Duration::from_secs(5));
        assert!(k.poll(t0 + Duration::from_millis(4_999)).is_none());
        assert_eq!(
            k.poll(t0 + Duration::from_secs(5)).map(|b| b.len()),
            Some(1_600)
        );
        assert!(
            k.poll(t0 + Duration::from_secs(6)).is_none(),
            "the silence reset the timer"
        );
        k.audio_sent(t0 + Duration::from_secs(9));
        assert!(k.poll(t0 + Duration::from_secs(13)).is_none());
        assert!(k.poll(t0 + Duration::from_secs(14)).is_some());
        let mut opus = KeepAlive::with_frame(Bytes::from_static(b"OggS"), Duration::ZERO, t0);
        assert_eq!(
            opus.poll(t0 + Duration::from_millis(1)).as_deref(),
            Some(&b"OggS"[..])
        );
    }
}
