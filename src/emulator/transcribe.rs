//! The emulated Transcribe stream: audio in, honest transcripts out.

use bytes::BytesMut;
use serde_json::{json, Value};

use crate::proto::codec::{
    FrameDecoder, Limits, Message, CHUNK_SIGNATURE, DATE, EVENT_TYPE, MESSAGE_TYPE,
};
use crate::verify::{ChainVerifier, VerifiedUpgrade};

use super::deadline::deadline_in;
use super::record::{EmulatedService, Outcome};
use super::server::{seconds_text, Incoming, ServiceError, Session};
use super::CLOSE_NORMAL;

const BAD_REQUEST: &str = "BadRequestException";

/// Checks Transcribe's query parameters; the message names the parameter.
pub(crate) fn validate_params(
    service: EmulatedService,
    upgrade: &VerifiedUpgrade,
) -> Result<(), ServiceError> {
    let bad = |message: String| Err(ServiceError::new(BAD_REQUEST, message));
    match upgrade.param("media-encoding") {
        None => return bad("The request is missing the required parameter 'media-encoding': use pcm, ogg-opus or flac.".into()),
        Some("pcm" | "ogg-opus" | "flac") => {}
        Some(other) => {
            return bad(format!(
                "The parameter 'media-encoding' must be one of pcm, ogg-opus, flac; got '{other}'."
            ))
        }
    }
    let min_rate = if service == EmulatedService::TranscribeMedical {
        16_000
    } else {
        8_000
    };
    match upgrade.param("sample-rate") {
        None => return bad("The request is missing the required parameter 'sample-rate' (Hz, e.g. 16000).".into()),
        Some(text) => match text.parse::<u32>() {
            Ok(rate) if (min_rate..=48_000).contains(&rate) => {}
            _ => {
                return bad(format!(
                    "The parameter 'sample-rate' must be an integer from {min_rate} to 48000; got '{text}'."
                ))
            }
        },
    }
    let is_true = |name: &str| upgrade.param(name) == Some("true");
    check_channels(
        upgrade.param("number-of-channels"),
        is_true("enable-channel-identification"),
    )
    .map_err(|message| ServiceError::new(BAD_REQUEST, message))?;
    match service {
        EmulatedService::Transcribe => {
            if upgrade.param("language-code").is_none()
                && !is_true("identify-language")
                && !is_true("identify-multiple-languages")
            {
                return bad("The request must include 'language-code', or 'identify-language' or 'identify-multiple-languages' set to true.".into());
            }
        }
        EmulatedService::TranscribeMedical => {
            for name in ["language-code", "specialty", "type"] {
                if upgrade.param(name).is_none_or(str::is_empty) {
                    return bad(format!(
                        "The request is missing the required parameter '{name}'."
                    ));
                }
            }
            if let Some(kind) = upgrade.param("type") {
                if !matches!(kind, "CONVERSATION" | "DICTATION") {
                    return bad(format!(
                        "The parameter 'type' must be CONVERSATION or DICTATION; got '{kind}'."
                    ));
                }
            }
        }
        _ => {
            // Call Analytics: `language-code` or `identify-language` (the API's "language-code
            // or identify-language" requirement); no `identify-multiple-languages` here.
            if upgrade.param("language-code").is_none_or(str::is_empty)
                && !is_true("identify-language")
            {
                return bad("The request must include 'language-code', or 'identify-language' set to true (with 'language-options').".into());
            }
        }
    }
    Ok(())
}

/// `number-of-channels` and `enable-channel-identification`: Transcribe takes two-channel
/// audio only (`NumberOfChannels`: minimum 2, and only two channels are supported), and each
/// parameter needs the other.
fn check_channels(channels: Option<&str>, identification: bool) -> Result<(), String> {
    match channels {
        Some(text) => {
            if text != "2" {
                let below = text.parse::<i64>().is_ok_and(|n| n < 2);
                return Err(if below {
                    format!("1 validation error detected: Value '{text}' at 'number-of-channels' failed to satisfy constraint: Member must have value greater than or equal to 2")
                } else {
                    format!("The parameter 'number-of-channels' must be 2: only two-channel audio is supported; got '{text}'.")
                });
            }
            if !identification {
                return Err("The parameter 'number-of-channels' requires 'enable-channel-identification' set to true.".into());
            }
            Ok(())
        }
        None if identification => Err(
            "The parameter 'enable-channel-identification' requires 'number-of-channels' (2)."
                .into(),
        ),
        None => Ok(()),
    }
}

/// The no-audio timeout text; AWS's exact words for the 15-second default.
fn timeout_message(timeout: std::time::Duration) -> String {
    format!(
        "Your request timed out because no new audio was received for {} seconds.",
        seconds_text(timeout)
    )
}

/// Transcript bookkeeping for one stream.
struct Transcript {
    service: EmulatedService,
    /// PCM bytes per second of audio; `None` for FLAC / Ogg-Opus.
    bytes_per_second: Option<u64>,
    language: String,
    identified: bool,
    participant_role: String,
    connection: u64,
    partial_bytes: u64,
    partial_frames: u64,
    partials_per_segment: u32,
    segment: u32,
    segment_start_bytes: u64,
    segment_frames: u64,
    segment_bytes: u64,
    partials_in_segment: u32,
    next_partial: u64,
    total_frames: u64,
    configured: bool,
}

impl Transcript {
    fn new(service: EmulatedService, upgrade: &VerifiedUpgrade, session: &Session) -> Transcript {
        let config = session.config();
        let rate: u64 = upgrade
            .param("sample-rate")
            .and_then(|r| r.parse().ok())
            .unwrap_or(16_000);
        let channels: u64 = upgrade
            .param("number-of-channels")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let bytes_per_second =
            (upgrade.param("media-encoding") == Some("pcm")).then_some(2 * rate * channels);
        let identified = upgrade.param("language-code").is_none();
        let language = upgrade
            .param("language-code")
            .or_else(|| upgrade.param("preferred-language"))
            .or_else(|| {
                upgrade
                    .param("language-options")
                    .and_then(|o| o.split(',').next())
            })
            .unwrap_or("en-US")
            .to_owned();
        let partial_bytes = bytes_per_second
            .map(|bps| ((bps as f64) * config.partial_every.as_secs_f64()) as u64)
            .unwrap_or(0)
            .max(1);
        let partial_frames = config.partial_every_frames.max(1);
        let mut transcript = Transcript {
            service,
            bytes_per_second,
            language,
            identified,
            participant_role: "AGENT".into(),
            connection: session.slot.id(),
            partial_bytes,
            partial_frames,
            partials_per_segment: config.partials_per_segment.max(1),
            segment: 0,
            segment_start_bytes: 0,
            segment_frames: 0,
            segment_bytes: 0,
            partials_in_segment: 0,
            next_partial: 0,
            total_frames: 0,
            configured: false,
        };
        transcript.next_partial = transcript.step();
        transcript
    }

    fn step(&self) -> u64 {
        if self.bytes_per_second.is_some() {
            self.partial_bytes
        } else {
            self.partial_frames
        }
    }

    fn progress(&self) -> u64 {
        if self.bytes_per_second.is_some() {
            self.segment_bytes
        } else {
            self.segment_frames
        }
    }

    /// Adds one audio chunk; returns the events it triggers.
    fn audio(&mut self, len: usize) -> Vec<(&'static str, Value)> {
        self.total_frames += 1;
        self.segment_frames += 1;
        self.segment_bytes += len as u64;
        let mut events = Vec::new();
        while self.progress() >= self.next_partial {
            self.partials_in_segment += 1;
            if self.partials_in_segment >= self.partials_per_segment {
                events.push(self.result(false));
                self.new_segment();
            } else {
                events.push(self.result(true));
                self.next_partial += self.step();
            }
        }
        events
    }

    fn new_segment(&mut self) {
        self.segment += 1;
        self.segment_start_bytes += self.segment_bytes;
        self.segment_bytes = 0;
        self.segment_frames = 0;
        self.partials_in_segment = 0;
        self.next_partial = self.step();
    }

    /// The final results at the end of the stream.
    fn finish(&mut self) -> Vec<(&'static str, Value)> {
        let mut events = Vec::new();
        if self.segment_frames > 0 || self.total_frames == 0 {
            events.push(self.result(false));
        }
        if self.service == EmulatedService::TranscribeCallAnalytics {
            events.push((
                "CategoryEvent",
                json!({"MatchedCategories": [], "MatchedDetails": {}}),
            ));
        }
        events
    }

    fn text(&self) -> String {
        let frames = match self.segment_frames {
            1 => "1 frame".to_owned(),
            n => format!("{n} frames"),
        };
        match self.bytes_per_second {
            Some(bps) => format!(
                "received {:.1} s of audio in {frames}",
                self.segment_bytes as f64 / bps as f64
            ),
            None => format!("received {} bytes of audio in {frames}", self.segment_bytes),
        }
    }

    /// Start and end of the current segment, in seconds (0 when the duration is unknown).
    fn times(&self) -> (f64, f64) {
        match self.bytes_per_second {
            Some(bps) => (
                self.segment_start_bytes as f64 / bps as f64,
                (self.segment_start_bytes + self.segment_bytes) as f64 / bps as f64,
            ),
            None => (0.0, 0.0),
        }
    }

    fn result(&self, partial: bool) -> (&'static str, Value) {
        let id = format!("emulator-{}-{}", self.connection, self.segment);
        let (start, end) = self.times();
        let text = self.text();
        match self.service {
            EmulatedService::TranscribeCallAnalytics => (
                "UtteranceEvent",
                json!({
                    "UtteranceId": id,
                    "IsPartial": partial,
                    "ParticipantRole": self.participant_role,
                    "BeginOffsetMillis": (start * 1000.0).round() as u64,
                    "EndOffsetMillis": (end * 1000.0).round() as u64,
                    "Transcript": text,
                    "Items": [],
                    "Entities": [],
                    "Sentiment": "NEUTRAL",
                    "IssuesDetected": [],
                }),
            ),
            EmulatedService::TranscribeMedical => (
                "TranscriptEvent",
                json!({"Transcript": {"Results": [{
                    "ResultId": id,
                    "StartTime": start,
                    "EndTime": end,
                    "IsPartial": partial,
                    "Alternatives": [{"Transcript": text, "Items": [], "Entities": []}],
                    "ChannelId": "ch_0",
                }]}}),
            ),
            _ => {
                let mut result = json!({
                    "ResultId": id,
                    "StartTime": start,
                    "EndTime": end,
                    "IsPartial": partial,
                    "Alternatives": [{"Transcript": text, "Items": [], "Entities": []}],
                    "ChannelId": "ch_0",
                    "LanguageCode": self.language,
                });
                if self.identified {
                    result["LanguageIdentification"] =
                        json!([{"LanguageCode": self.language, "Score": 1.0}]);
                }
                (
                    "TranscriptEvent",
                    json!({"Transcript": {"Results": [result]}}),
                )
            }
        }
    }
}

/// What one received message means for the stream.
enum Step {
    Continue,
    Audio,
    /// The end of the audio: the signed empty end frame (`end_frame`), or an empty `AudioEvent`.
    End {
        end_frame: bool,
    },
    Reject(ServiceError),
}

pub(crate) async fn run(
    session: &mut Session,
    upgrade: &VerifiedUpgrade,
    service: EmulatedService,
) -> Outcome {
    let timeout = session.config().no_audio_timeout;
    let max = session.config().max_message_bytes;
    let require_signed = session.config().require_signed_transcribe;
    let mut transcript = Transcript::new(service, upgrade, session);
    let mut decoder = FrameDecoder::with_limits(Limits::new().max_payload_len(max));
    let mut buffer = BytesMut::new();
    let mut chain: Option<ChainVerifier> = None;
    let mut deadline = deadline_in(timeout);

    loop {
        let data = match session.recv(Some(deadline)).await {
            Incoming::Data(data) => data,
            Incoming::Closed => return Outcome::ClientClosed,
            Incoming::Timeout => {
                session
                    .reject(ServiceError::new(BAD_REQUEST, timeout_message(timeout)))
                    .await;
                return Outcome::TimedOut;
            }
            Incoming::Shutdown => return session.shut_down().await,
            Incoming::Lost(reason) => return Outcome::ConnectionLost(reason),
            Incoming::FaultClosed => return Outcome::Fault,
        };
        if data.is_empty() {
            // The JavaScript browser client's end of stream: a zero-length binary message. It
            // is not a signed frame, so a stream that must be signed cannot end this way.
            if require_signed || chain.is_some() {
                let verifier = match chain.as_mut() {
                    Some(verifier) => Some(verifier),
                    None => {
                        chain = session.ctx.verifier.chain_verifier(upgrade);
                        chain.as_mut()
                    }
                };
                if let Some(Err(rejection)) = verifier.map(|v| v.verify_frame(&Message::new(data)))
                {
                    return session.reject(rejection.into()).await;
                }
            }
            return finish(session, &mut transcript, None).await;
        }
        buffer.extend_from_slice(&data);
        loop {
            let message = match decoder.decode(&mut buffer) {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(error) => {
                    return session
                        .reject(ServiceError::new(
                            BAD_REQUEST,
                            format!("Could not decode the event stream: {error}"),
                        ))
                        .await
                }
            };
            let step = handle(
                session,
                upgrade,
                &mut transcript,
                &mut chain,
                require_signed,
                message,
            )
            .await;
            match step {
                Step::Continue => {}
                Step::Audio => deadline = deadline_in(timeout),
                Step::End { end_frame } => {
                    // A signed stream's empty AudioEvent is followed by the signed empty end
                    // frame: read and verify that too before closing.
                    let end = match chain.as_mut() {
                        Some(chain) if !end_frame => Some(EndFrame {
                            chain,
                            decoder: &mut decoder,
                            buffer: &mut buffer,
                        }),
                        _ => None,
                    };
                    return finish(session, &mut transcript, end).await;
                }
                Step::Reject(error) => return session.reject(error).await,
            }
        }
    }
}

async fn handle(
    session: &mut Session,
    upgrade: &VerifiedUpgrade,
    transcript: &mut Transcript,
    chain: &mut Option<ChainVerifier>,
    require_signed: bool,
    message: Message,
) -> Step {
    let signed = message.header(DATE).is_some() || message.header(CHUNK_SIGNATURE).is_some();
    let event = if signed || require_signed || chain.is_some() {
        if chain.is_none() {
            *chain = session.ctx.verifier.chain_verifier(upgrade);
        }
        let Some(verifier) = chain.as_mut() else {
            return Step::Reject(ServiceError::new(
                "UnrecognizedClientException",
                crate::verify::UNRECOGNIZED_CLIENT_MESSAGE,
            ));
        };
        let verified = match verifier.verify_frame(&message) {
            Ok(verified) => verified,
            Err(rejection) => return Step::Reject(rejection.into()),
        };
        session.record_frame_date(verified.date_millis());
        if verified.is_end() {
            return Step::End { end_frame: true };
        }
        match verified.inner_message() {
            Ok(inner) => inner,
            Err(error) => {
                return Step::Reject(ServiceError::new(
                    BAD_REQUEST,
                    format!("Could not decode the event inside the signed envelope: {error}"),
                ))
            }
        }
    } else {
        message
    };

    match event.header_str(MESSAGE_TYPE) {
        Some("event") => {}
        other => {
            return Step::Reject(ServiceError::new(
                BAD_REQUEST,
                format!(
                    "Expected a message with ':message-type' 'event'; got {}.",
                    other
                        .map(|t| format!("'{t}'"))
                        .unwrap_or_else(|| "none".into())
                ),
            ))
        }
    }
    match event.header_str(EVENT_TYPE) {
        Some("AudioEvent") => {
            let audio = event.payload();
            if audio.is_empty() {
                return Step::End { end_frame: false };
            }
            session.record_audio(audio);
            for (event_type, payload) in transcript.audio(audio.len()) {
                if !session.send_event(event_type, &payload).await {
                    break;
                }
            }
            Step::Audio
        }
        Some("ConfigurationEvent")
            if transcript.service == EmulatedService::TranscribeCallAnalytics =>
        {
            if transcript.configured || transcript.total_frames > 0 {
                return Step::Reject(ServiceError::new(
                    BAD_REQUEST,
                    "A ConfigurationEvent must be the first event of the stream, and only one may be sent.",
                ));
            }
            let config: Value = match serde_json::from_slice(event.payload()) {
                Ok(config) => config,
                Err(error) => {
                    return Step::Reject(ServiceError::new(
                        BAD_REQUEST,
                        format!("The ConfigurationEvent is not valid JSON: {error}"),
                    ))
                }
            };
            if let Some(role) = config
                .pointer("/ChannelDefinitions/0/ParticipantRole")
                .and_then(Value::as_str)
            {
                transcript.participant_role = role.to_owned();
            }
            transcript.configured = true;
            Step::Continue
        }
        other => Step::Reject(ServiceError::new(
            BAD_REQUEST,
            format!(
                "Unexpected event type {} for this stream.",
                other
                    .map(|t| format!("'{t}'"))
                    .unwrap_or_else(|| "(none)".into())
            ),
        )),
    }
}

/// A signed stream whose audio ended with an empty `AudioEvent`: the signed empty end frame is
/// still to come.
struct EndFrame<'a> {
    chain: &'a mut ChainVerifier,
    decoder: &'a mut FrameDecoder,
    buffer: &'a mut BytesMut,
}

/// Sends the final results; for a signed stream ended by an empty `AudioEvent`, then reads and
/// verifies the signed end frame (for up to the close grace); then closes with 1000.
async fn finish(
    session: &mut Session,
    transcript: &mut Transcript,
    end: Option<EndFrame<'_>>,
) -> Outcome {
    for (event_type, payload) in transcript.finish() {
        if !session.send_event(event_type, &payload).await {
            return Outcome::ConnectionLost("the client went away before the final results".into());
        }
    }
    if let Some(end) = end {
        if let Some(outcome) = await_end_frame(session, end).await {
            return outcome;
        }
    }
    session.close(CLOSE_NORMAL, "").await;
    Outcome::Completed
}

/// Reads the signed empty end frame. `None` when it verified or did not come within the close
/// grace (the caller then closes); `Some` when the connection already ended, or a bad frame
/// got an exception.
async fn await_end_frame(session: &mut Session, end: EndFrame<'_>) -> Option<Outcome> {
    let EndFrame {
        chain,
        decoder,
        buffer,
    } = end;
    let deadline = deadline_in(session.config().close_grace);
    loop {
        let message = match decoder.decode(buffer) {
            Ok(Some(message)) => Some(message),
            Ok(None) => None,
            Err(error) => {
                let error = ServiceError::new(
                    BAD_REQUEST,
                    format!("Could not decode the event stream: {error}"),
                );
                return Some(session.reject(error).await);
            }
        };
        if let Some(message) = message {
            let verified = match chain.verify_frame(&message) {
                Ok(verified) => verified,
                Err(rejection) => return Some(session.reject(rejection.into()).await),
            };
            session.record_frame_date(verified.date_millis());
            if verified.is_end() {
                return None;
            }
            let error = ServiceError::new(
                BAD_REQUEST,
                "An event arrived after the empty AudioEvent that ended the audio; only the signed empty end frame may follow it.",
            );
            return Some(session.reject(error).await);
        }
        match session.recv(Some(deadline)).await {
            Incoming::Data(data) if data.is_empty() => {
                // Not a signed frame: the chain verifier says what is missing.
                if let Err(rejection) = chain.verify_frame(&Message::new(data)) {
                    return Some(session.reject(rejection.into()).await);
                }
                return None;
            }
            Incoming::Data(data) => buffer.extend_from_slice(&data),
            Incoming::Closed => return Some(Outcome::Completed),
            Incoming::Timeout => return None,
            Incoming::Shutdown => return Some(session.shut_down().await),
            Incoming::Lost(reason) => return Some(Outcome::ConnectionLost(reason)),
            Incoming::FaultClosed => return Some(Outcome::Fault),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timeout_text_is_aws_text_at_the_default() {
        assert_eq!(
            timeout_message(Duration::from_secs(15)),
            "Your request timed out because no new audio was received for 15 seconds."
        );
        assert_eq!(
            timeout_message(Duration::from_millis(300)),
            "Your request timed out because no new audio was received for 0.3 seconds."
        );
    }
}
