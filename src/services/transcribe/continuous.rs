//! Long streams on one timeline: an opt-in policy that reconnects as a new session when the
//! server closes the stream or the connection drops, re-sends the audio not yet covered by a
//! final result, and reports result times on one continuous timeline.
//!
//! Transcribe ends streams on its own schedule (the maximum session length, an internal
//! failure, a network change). A [`ContinuousStream`] hides that: audio keeps flowing into
//! one sender, events keep coming out of one receiver, and every time in them (result
//! `StartTime`/`EndTime`, item and entity times, Call Analytics millisecond offsets) is
//! measured from the start of the first session.
//!
//! # What is re-sent
//!
//! A final result's `EndTime` tells how far the service has fully processed the audio. The
//! stream keeps the PCM sent after the latest final result (up to
//! [`ReconnectPolicy::resend_limit`]) and re-sends it on the new session, whose times are then
//! shifted by the audio position where that re-sent audio starts. Partial results of the
//! interrupted session may therefore be repeated, never lost; final results are not repeated
//! because the re-sent audio starts at the last final's end. Only PCM can be re-sent (the
//! position of a byte in FLAC or Ogg-Opus is not known without decoding); for those
//! encodings the stream reconnects without re-sending and says so in the
//! [`ContinuousEvent::Reconnected`] notice.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::error::TranscribeError;
use super::model::{CategoryEvent, TranscribeEvent, TranscriptEvent, UtteranceEvent};
use super::request::{MediaEncoding, StartRequest};
use super::{TranscribeClient, TranscribeStream};

/// When and how a [`ContinuousStream`] reconnects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// Reconnections allowed over the whole stream. Default 10.
    pub max_reconnects: u32,
    /// Wait before reconnecting. Default 200 ms.
    pub backoff: Duration,
    /// Most audio kept for re-sending (the part not yet covered by a final result). Default
    /// 30 s; older audio is dropped from the buffer (and the gap reported).
    pub resend_limit: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            max_reconnects: 10,
            backoff: Duration::from_millis(200),
            resend_limit: Duration::from_secs(30),
        }
    }
}

impl ReconnectPolicy {
    /// Sets [`ReconnectPolicy::max_reconnects`].
    pub fn max_reconnects(mut self, n: u32) -> Self {
        self.max_reconnects = n;
        self
    }

    /// Sets [`ReconnectPolicy::backoff`].
    pub fn backoff(mut self, d: Duration) -> Self {
        self.backoff = d;
        self
    }

    /// Sets [`ReconnectPolicy::resend_limit`].
    pub fn resend_limit(mut self, d: Duration) -> Self {
        self.resend_limit = d;
        self
    }
}

/// What a [`ContinuousStream`] yields.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ContinuousEvent {
    /// A service event, its times shifted onto the continuous timeline.
    Event(TranscribeEvent),
    /// The stream moved to a new session.
    Reconnected {
        /// The session that ended.
        previous_session_id: String,
        /// The new session.
        session_id: String,
        /// Where on the continuous timeline the new session's audio starts.
        resumed_at: Duration,
        /// How much audio was re-sent (the part not yet covered by a final result).
        resent: Duration,
        /// Audio after the last final result that could not be re-sent because it was beyond
        /// the resend limit. Always zero for FLAC and Ogg-Opus, whose audio is not re-sent: for
        /// those, the timeline continues after the latest result and audio sent between that
        /// result and the reconnection may be missing from the transcript.
        lost: Duration,
        /// Why the previous session ended.
        reason: String,
    },
}

/// A Transcribe stream that survives server closes and dropped connections by reconnecting as
/// a new session. Build it with [`ContinuousStream::start`].
pub struct ContinuousStream {
    audio: mpsc::Sender<Input>,
    events: mpsc::Receiver<Result<ContinuousEvent, TranscribeError>>,
    finished: bool,
}

enum Input {
    Audio(Bytes),
    Finish,
}

impl ContinuousStream {
    /// Starts the first session (errors here are the start request's own: validation, auth,
    /// connect) and the task that keeps the stream going.
    pub async fn start(
        client: TranscribeClient,
        request: impl Into<StartRequest>,
        policy: ReconnectPolicy,
    ) -> Result<ContinuousStream, TranscribeError> {
        let request: StartRequest = request.into();
        let stream = client.start(request.clone()).await?;
        let bytes_per_second = match request.media_encoding() {
            MediaEncoding::Pcm => {
                Some(u64::from(request.sample_rate()) * u64::from(request.channels()) * 2)
            }
            _ => None,
        };
        let (audio, audio_rx) = mpsc::channel(8);
        let (events_tx, events) = mpsc::channel(32);
        let task = Keeper {
            client,
            request,
            policy,
            reconnects: 0,
            stream,
            offset: Duration::ZERO,
            position: Duration::ZERO,
            bytes_per_second,
            unacknowledged: VecDeque::new(),
            unacknowledged_len: Duration::ZERO,
            acknowledged: Duration::ZERO,
            latest_end: Duration::ZERO,
            finishing: false,
            audio_rx,
            events: events_tx,
        };
        tokio::spawn(task.run());
        Ok(ContinuousStream {
            audio,
            events,
            finished: false,
        })
    }

    /// Sends a chunk of audio (see [`TranscribeStream::send_audio`]). Returns an error once the
    /// stream has failed for good; the reason then arrives from [`ContinuousStream::next_event`].
    pub async fn send_audio(&mut self, chunk: impl Into<Bytes>) -> Result<(), TranscribeError> {
        let chunk = chunk.into();
        if self.finished {
            return Err(closed("the stream was already finished"));
        }
        self.audio
            .send(Input::Audio(chunk))
            .await
            .map_err(|_| closed("the stream has ended; read next_event for the reason"))
    }

    /// Ends the stream: the current session gets the end marker, then the remaining events
    /// arrive and [`ContinuousStream::next_event`] returns `None`.
    pub async fn finish(&mut self) -> Result<(), TranscribeError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.audio
            .send(Input::Finish)
            .await
            .map_err(|_| closed("the stream has ended; read next_event for the reason"))
    }

    /// The next event on the continuous timeline, a reconnection notice, or the error that
    /// ended the stream; `None` once it has ended.
    pub async fn next_event(&mut self) -> Option<Result<ContinuousEvent, TranscribeError>> {
        self.events.recv().await
    }
}

impl fmt::Debug for ContinuousStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContinuousStream")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

fn closed(why: &str) -> TranscribeError {
    TranscribeError::Transport(crate::transport::Error::new(
        crate::transport::ErrorKind::Closed,
        why.to_owned(),
    ))
}

/// The task behind a [`ContinuousStream`].
struct Keeper {
    client: TranscribeClient,
    request: StartRequest,
    policy: ReconnectPolicy,
    reconnects: u32,
    stream: TranscribeStream,
    /// Timeline position where the current session's audio starts.
    offset: Duration,
    /// Timeline position of the end of the audio sent so far.
    position: Duration,
    bytes_per_second: Option<u64>,
    /// PCM sent after the last final result, with its timeline start.
    unacknowledged: VecDeque<(Duration, Bytes)>,
    unacknowledged_len: Duration,
    /// Timeline position up to which final results have covered the audio.
    acknowledged: Duration,
    /// Latest result end seen (timeline): the resume point when audio positions are unknown.
    latest_end: Duration,
    finishing: bool,
    audio_rx: mpsc::Receiver<Input>,
    events: mpsc::Sender<Result<ContinuousEvent, TranscribeError>>,
}

/// What woke the keeper; the event is boxed so the select's output stays small.
enum Step {
    Input(Option<Input>),
    Event(Box<Option<Result<TranscribeEvent, TranscribeError>>>),
}

impl Keeper {
    async fn run(mut self) {
        loop {
            let step = tokio::select! {
                input = self.audio_rx.recv(), if !self.finishing => Step::Input(input),
                event = self.stream.next_event() => Step::Event(Box::new(event)),
            };
            // Unboxed for matching: `Ok` carries a session event, `Err` an input from the caller.
            let step = match step {
                Step::Event(event) => Ok(*event),
                Step::Input(input) => Err(input),
            };
            match step {
                Err(Some(Input::Audio(chunk))) => {
                    let duration = self.duration_of(chunk.len());
                    self.remember(chunk.clone(), duration);
                    self.position += duration;
                    if let Err(e) = self.stream.send_audio(chunk).await {
                        // A validation error is the caller's; a transport error shows up on the
                        // event side too, where the reconnect decision is made.
                        if matches!(e, TranscribeError::Validation(_)) {
                            let _ = self.events.send(Err(e)).await;
                            return;
                        }
                    }
                }
                Err(Some(Input::Finish)) | Err(None) => {
                    self.finishing = true;
                    if let Err(e) = self.stream.finish().await {
                        tracing::debug!(error = %e, "finishing the session failed");
                    }
                }
                Ok(Some(Ok(event))) => {
                    let event = self.shift(event);
                    if self
                        .events
                        .send(Ok(ContinuousEvent::Event(event)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(Some(Err(error))) => {
                    if self.finishing || !error.is_retryable() || !self.reconnect_allowed() {
                        let _ = self.events.send(Err(error)).await;
                        return;
                    }
                    if !self.reconnect(error.to_string()).await {
                        return;
                    }
                }
                Ok(None) => {
                    if self.finishing || !self.reconnect_allowed() {
                        return;
                    }
                    if !self
                        .reconnect("the server closed the stream".to_owned())
                        .await
                    {
                        return;
                    }
                }
            }
        }
    }

    fn reconnect_allowed(&self) -> bool {
        self.reconnects < self.policy.max_reconnects
    }

    fn duration_of(&self, len: usize) -> Duration {
        match self.bytes_per_second {
            Some(rate) if rate > 0 => Duration::from_secs_f64(len as f64 / rate as f64),
            _ => Duration::ZERO,
        }
    }

    fn remember(&mut self, chunk: Bytes, duration: Duration) {
        if self.bytes_per_second.is_none() {
            return;
        }
        self.unacknowledged.push_back((self.position, chunk));
        self.unacknowledged_len += duration;
        while self.unacknowledged_len > self.policy.resend_limit {
            let Some((_, old)) = self.unacknowledged.pop_front() else {
                break;
            };
            self.unacknowledged_len = self
                .unacknowledged_len
                .saturating_sub(self.duration_of(old.len()));
        }
    }

    /// Final results up to `end` (timeline) cover the audio before it: stop keeping it.
    fn acknowledge(&mut self, end: Duration) {
        if end <= self.acknowledged {
            return;
        }
        self.acknowledged = end;
        while let Some((start, chunk)) = self.unacknowledged.front() {
            let chunk_end = *start + self.duration_of(chunk.len());
            if chunk_end > end {
                break;
            }
            self.unacknowledged_len = self
                .unacknowledged_len
                .saturating_sub(self.duration_of(chunk.len()));
            self.unacknowledged.pop_front();
        }
    }

    /// Opens a new session and re-sends the unacknowledged audio. `false` if that failed (the
    /// error has been delivered).
    async fn reconnect(&mut self, reason: String) -> bool {
        self.reconnects += 1;
        tokio::time::sleep(self.policy.backoff).await;
        let previous_session_id = self.stream.session_id().to_owned();
        let mut request = self.request.clone();
        request.set_session_id(uuid::Uuid::new_v4().to_string());
        let stream = match self.client.start(request).await {
            Ok(stream) => stream,
            Err(e) => {
                let _ = self.events.send(Err(e)).await;
                return false;
            }
        };
        self.stream = stream;
        let (resume_from, lost) = if self.bytes_per_second.is_some() {
            let from = self
                .unacknowledged
                .front()
                .map(|(start, _)| *start)
                .unwrap_or(self.position);
            (from, from.saturating_sub(self.acknowledged))
        } else {
            // FLAC / Ogg-Opus: positions are unknown; continue the timeline after the latest result.
            (self.latest_end, Duration::ZERO)
        };
        self.offset = resume_from;
        let mut resent = Duration::ZERO;
        let chunks: Vec<Bytes> = self.unacknowledged.iter().map(|(_, c)| c.clone()).collect();
        for chunk in chunks {
            resent += self.duration_of(chunk.len());
            if let Err(e) = self.stream.send_audio(chunk).await {
                let _ = self.events.send(Err(e)).await;
                return false;
            }
        }
        tracing::info!(%previous_session_id, session_id = %self.stream.session_id(), ?resent, "reconnected as a new session");
        let notice = ContinuousEvent::Reconnected {
            previous_session_id,
            session_id: self.stream.session_id().to_owned(),
            resumed_at: resume_from,
            resent,
            lost,
            reason,
        };
        self.events.send(Ok(notice)).await.is_ok()
    }

    fn shift(&mut self, event: TranscribeEvent) -> TranscribeEvent {
        let offset = self.offset;
        match event {
            TranscribeEvent::Transcript(mut t) => {
                shift_transcript(&mut t, offset);
                if let Some(end) = t
                    .transcript
                    .results
                    .iter()
                    .filter_map(|r| r.end_time)
                    .reduce(f64::max)
                {
                    self.latest_end = self.latest_end.max(Duration::from_secs_f64(end.max(0.0)));
                }
                if let Some(end) = t
                    .transcript
                    .results
                    .iter()
                    .filter(|r| !r.is_partial)
                    .filter_map(|r| r.end_time)
                    .reduce(f64::max)
                {
                    self.acknowledge(Duration::from_secs_f64(end.max(0.0)));
                }
                TranscribeEvent::Transcript(t)
            }
            TranscribeEvent::Utterance(mut u) => {
                shift_utterance(&mut u, offset);
                if !u.is_partial {
                    if let Some(end) = u.end_offset_millis {
                        self.acknowledge(Duration::from_millis(u64::try_from(end).unwrap_or(0)));
                    }
                }
                TranscribeEvent::Utterance(u)
            }
            TranscribeEvent::Category(mut c) => {
                shift_category(&mut c, offset);
                TranscribeEvent::Category(c)
            }
            other => other,
        }
    }
}

fn add_secs(value: &mut Option<f64>, offset: Duration) {
    if let Some(v) = value {
        *v += offset.as_secs_f64();
    }
}

fn add_millis(value: &mut Option<i64>, offset: Duration) {
    if let Some(v) = value {
        *v = v.saturating_add(i64::try_from(offset.as_millis()).unwrap_or(i64::MAX));
    }
}

fn shift_transcript(event: &mut TranscriptEvent, offset: Duration) {
    for result in &mut event.transcript.results {
        add_secs(&mut result.start_time, offset);
        add_secs(&mut result.end_time, offset);
        for alternative in &mut result.alternatives {
            for item in &mut alternative.items {
                add_secs(&mut item.start_time, offset);
                add_secs(&mut item.end_time, offset);
            }
            for entity in &mut alternative.entities {
                add_secs(&mut entity.start_time, offset);
                add_secs(&mut entity.end_time, offset);
            }
        }
    }
}

fn shift_utterance(event: &mut UtteranceEvent, offset: Duration) {
    add_millis(&mut event.begin_offset_millis, offset);
    add_millis(&mut event.end_offset_millis, offset);
    for item in &mut event.items {
        add_millis(&mut item.begin_offset_millis, offset);
        add_millis(&mut item.end_offset_millis, offset);
    }
    for entity in &mut event.entities {
        add_millis(&mut entity.begin_offset_millis, offset);
        add_millis(&mut entity.end_offset_millis, offset);
    }
}

fn shift_category(event: &mut CategoryEvent, offset: Duration) {
    for details in event.matched_details.values_mut() {
        for range in &mut details.timestamp_ranges {
            add_millis(&mut range.begin_offset_millis, offset);
            add_millis(&mut range.end_offset_millis, offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::transcribe::model::{Transcript, TranscriptResult};

    #[test]
    fn transcript_times_move_onto_the_timeline() {
        let mut event = TranscriptEvent {
            transcript: Transcript {
                results: vec![TranscriptResult {
                    start_time: Some(0.5),
                    end_time: Some(1.25),
                    ..Default::default()
                }],
            },
        };
        shift_transcript(&mut event, Duration::from_millis(2500));
        assert_eq!(event.transcript.results[0].start_time, Some(3.0));
        assert_eq!(event.transcript.results[0].end_time, Some(3.75));
    }

    #[test]
    fn default_policy_is_bounded() {
        let policy = ReconnectPolicy::default();
        assert_eq!(policy.max_reconnects, 10);
        assert!(policy.resend_limit <= Duration::from_secs(60));
    }
}
