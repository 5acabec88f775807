//! `transcribe FILE`: decode (or pass through) the audio, stream it in ~100 ms chunks at real
//! time (or `--fast`), show partial results in place and final ones as timestamped lines.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sigv4_ws::services::pacing::RealTimePacer;
use sigv4_ws::services::transcribe::model::{TranscriptResult, UtteranceEvent};
use sigv4_ws::services::transcribe::{
    AudioSender, ChannelDefinition, ConfigurationEvent, MediaEncoding, MedicalType,
    PartialResultsStability, ParticipantRole, Specialty, StartCallAnalyticsStreamTranscription,
    StartMedicalStreamTranscription, StartRequest, StartStreamTranscription, TranscribeClient,
    TranscribeError, TranscribeEvent,
};
use tokio::sync::watch;

use crate::audio::{AudioSource, Chunk, Encoding};
use crate::cli::{MedicalTypeArg, SpecialtyArg, Stability, TranscribeArgs};
use crate::connect::{self, Target};
use crate::fail::{Fail, Kind};
use crate::output::{fmt_span, fmt_time, Out};
use crate::session::{self, Connected, Failure, ForTarget, ServiceError};

/// How long to wait for the last results after the end marker (or after Ctrl-C).
const FINAL_RESULTS_WAIT: Duration = Duration::from_secs(35);

pub async fn run(args: TranscribeArgs) -> Result<(), Fail> {
    // Everything about the input is checked before anything is dialled.
    let encoding = args.media_encoding;
    let sample_rate = args.sample_rate;
    let (source, first) = session::read_input(&args.file, move |file| {
        let mut source = AudioSource::open(file, encoding, sample_rate)?;
        let first = source
            .next_chunk()?
            .ok_or_else(|| Fail::input(format!("{}: the file holds no audio", file.display())))?;
        Ok((source, first))
    })
    .await?;
    let request = build_request(&args, &source)?;
    // The request and the region, checked without dialling.
    TranscribeClient::new(args.connect.region.clone())
        .endpoint_url(&request)
        .map_err(|e| Fail::input(format!("the request would be refused: {e}")))?;

    let out = Arc::new(Out::new(args.connect.json, source.duration, "audio"));
    let target = connect::prepare(&args.connect, &out).await?;
    out.note(
        "input",
        &format!("{}: {}", args.file.display(), source.description),
        json!({
            "file": args.file.display().to_string(),
            "mediaEncoding": source.encoding.as_str(),
            "sampleRate": source.sample_rate,
            "durationMillis": source.duration.map(|d| d.as_millis() as u64),
        }),
    );

    let result = stream(&args, &out, &target, source, first, request).await;
    session::conclude(&out, target, result).await
}

/// Whether a client error is the user's (2) or the service's / network's (1).
impl ServiceError for TranscribeError {
    fn exit_kind(&self) -> Kind {
        match self {
            TranscribeError::Validation(_) => Kind::Input,
            TranscribeError::Transport(e) if session::is_usage_error(e) => Kind::Input,
            _ => Kind::Service,
        }
    }
}

fn build_request(args: &TranscribeArgs, source: &AudioSource) -> Result<StartRequest, Fail> {
    let encoding = match source.encoding {
        Encoding::Pcm => MediaEncoding::Pcm,
        Encoding::Flac => MediaEncoding::Flac,
        Encoding::OggOpus => MediaEncoding::OggOpus,
    };
    let rate = source.sample_rate;
    let stability = args.partial_results_stability.map(|s| match s {
        Stability::Low => PartialResultsStability::Low,
        Stability::Medium => PartialResultsStability::Medium,
        Stability::High => PartialResultsStability::High,
    });
    let options: Vec<String> = args
        .language_options
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let language = args
        .language_code
        .clone()
        .unwrap_or_else(|| "en-US".to_owned());
    if args.medical {
        let specialty = match args.specialty {
            SpecialtyArg::PrimaryCare => Specialty::PrimaryCare,
            SpecialtyArg::Cardiology => Specialty::Cardiology,
            SpecialtyArg::Neurology => Specialty::Neurology,
            SpecialtyArg::Oncology => Specialty::Oncology,
            SpecialtyArg::Radiology => Specialty::Radiology,
            SpecialtyArg::Urology => Specialty::Urology,
        };
        let medical_type = match args.medical_type {
            MedicalTypeArg::Conversation => MedicalType::Conversation,
            MedicalTypeArg::Dictation => MedicalType::Dictation,
        };
        if stability.is_some() {
            return Err(Fail::input(
                "--partial-results-stability is not available with --medical",
            ));
        }
        let request =
            StartMedicalStreamTranscription::new(language, encoding, rate, specialty, medical_type)
                .show_speaker_label(args.show_speaker_label);
        return Ok(request.into());
    }
    if args.call_analytics {
        if args.show_speaker_label {
            return Err(Fail::input(
                "--show-speaker-label is not available with --call-analytics (it labels agent and customer by channel)",
            ));
        }
        let mut request = StartCallAnalyticsStreamTranscription::new(encoding, rate)
            .language_code(language)
            .configuration(ConfigurationEvent::new(vec![
                ChannelDefinition::new(0, ParticipantRole::Agent),
                ChannelDefinition::new(1, ParticipantRole::Customer),
            ]));
        if let Some(stability) = stability {
            request = request
                .enable_partial_results_stabilization(true)
                .partial_results_stability(stability);
        }
        return Ok(request.into());
    }
    let mut request =
        StartStreamTranscription::new(encoding, rate).show_speaker_label(args.show_speaker_label);
    if args.identify_language {
        request = request.identify_language(true).language_options(options);
        if let Some(preferred) = &args.preferred_language {
            request = request.preferred_language(preferred.clone());
        }
    } else {
        request = request.language_code(language);
    }
    if let Some(stability) = stability {
        request = request
            .enable_partial_results_stabilization(true)
            .partial_results_stability(stability);
    }
    Ok(request.into())
}

async fn stream(
    args: &TranscribeArgs,
    out: &Arc<Out>,
    target: &Target,
    source: AudioSource,
    first: Chunk,
    request: StartRequest,
) -> Result<(), Failure> {
    let kind = request.kind();
    let stream = TranscribeClient::for_target(target).start(request).await?;
    // From here on the first Ctrl-C ends the stream cleanly.
    let mut connected = Connected::new(out, &stream.offsets_learned());
    let endpoint = session::destination(target, "Amazon Transcribe");
    out.note(
        "connected",
        &format!(
            "streaming to {endpoint} ({kind:?}), session {}",
            stream.session_id()
        ),
        json!({ "sessionId": stream.session_id(), "endpoint": endpoint }),
    );
    let (sender, mut receiver) = stream.split();

    // The sender runs on its own task; Ctrl-C asks it to stop, and it then ends the stream.
    let (stop_tx, stop_rx) = watch::channel(false);
    let send_task = tokio::spawn(send_all(
        sender,
        source,
        first,
        session::pacer(&args.connect),
        Arc::clone(out),
        stop_rx,
    ));

    let mut printer = Printer::new(
        args.show_speaker_label || args.call_analytics,
        args.identify_language,
    );
    let receive_error = connected
        .receive(&mut receiver, &stop_tx, "stream", |event| {
            printer.show(out, event)
        })
        .await;
    let sent = session::sent(send_task, FINAL_RESULTS_WAIT).await;
    let stats = receiver.stats();
    printer.flush(out);
    if let Some(error) = receive_error {
        return Err(error.into());
    }
    // The sending task's own result, or why there is none.
    let sent = sent??;
    let summary = format!(
        "done: sent {} of audio in {} chunks, {} final result{}, clock offset {} ms{}",
        fmt_time(sent.audio.as_secs_f64()),
        sent.chunks,
        printer.finals,
        if printer.finals == 1 { "" } else { "s" },
        stats.clock_offset_millis,
        if stats.reconnects > 0 {
            format!(
                ", {} reconnect(s) after a clock correction",
                stats.reconnects
            )
        } else {
            String::new()
        }
    );
    out.finish();
    out.note(
        "done",
        &summary,
        json!({
            "audioSentMillis": sent.audio.as_millis() as u64,
            "chunks": sent.chunks,
            "finalResults": printer.finals,
            "clockOffsetMillis": stats.clock_offset_millis,
            "reconnects": stats.reconnects,
            "interrupted": sent.interrupted,
        }),
    );
    if sent.interrupted {
        return Err(session::interrupted_after(sent.audio, "audio", "stream").into());
    }
    Ok(())
}

struct Sent {
    audio: Duration,
    chunks: u64,
    interrupted: bool,
}

async fn send_all(
    mut sender: AudioSender,
    mut source: AudioSource,
    first: Chunk,
    mut pacer: RealTimePacer,
    out: Arc<Out>,
    mut stop: watch::Receiver<bool>,
) -> Result<Sent, Failure> {
    let mut sent = Sent {
        audio: Duration::ZERO,
        chunks: 0,
        interrupted: false,
    };
    let mut next = Some(first);
    let mut decode_error = None;
    while let Some(chunk) = next.take() {
        if !session::next_turn(&mut pacer, chunk.audio, &mut stop).await {
            sent.interrupted = true;
            break;
        }
        if let Err(e) = sender.send_audio(chunk.bytes).await {
            // The receiver sees the reason (an exception) too; it is reported from there.
            return Err(e.into());
        }
        sent.audio += chunk.audio;
        sent.chunks += 1;
        out.progress(sent.audio, "audio");
        match source.next_chunk() {
            Ok(chunk) => next = chunk,
            Err(fail) => decode_error = Some(fail),
        }
    }
    // End marker, then the session ends; the service sends the last results and closes.
    sender.finish().await?;
    match decode_error {
        Some(fail) => Err(fail.into()),
        None => Ok(sent),
    }
}

/// Turns events into lines (human) or JSON objects.
struct Printer {
    speakers: bool,
    languages: bool,
    finals: u64,
    partial_shown: bool,
}

impl Printer {
    fn new(speakers: bool, languages: bool) -> Printer {
        Printer {
            speakers,
            languages,
            finals: 0,
            partial_shown: false,
        }
    }

    fn show(&mut self, out: &Out, event: &TranscribeEvent) {
        if out.is_json() {
            out.json_line(&event_json(event));
            self.finals += count_finals(event);
            return;
        }
        match event {
            TranscribeEvent::Transcript(t) => {
                for result in &t.transcript.results {
                    self.result(out, result);
                }
            }
            TranscribeEvent::Utterance(u) => self.utterance(out, u),
            TranscribeEvent::Category(c) if !c.matched_categories.is_empty() => {
                out.stdout_line(&format!(
                    "categories matched: {}",
                    c.matched_categories.join(", ")
                ));
            }
            TranscribeEvent::Unknown { event_type, .. } => {
                out.stderr_line(&format!(
                    "note: the server sent an event this tool does not know: {event_type}"
                ));
            }
            _ => {}
        }
    }

    fn result(&mut self, out: &Out, result: &TranscriptResult) {
        let Some(alternative) = result.alternatives.first() else {
            return;
        };
        let mut text = if self.speakers {
            with_speakers(alternative)
        } else {
            alternative.transcript.clone().unwrap_or_default()
        };
        if self.languages {
            if let Some(language) = &result.language_code {
                text = format!("{text} ({language})");
            }
        }
        if result.is_partial {
            out.partial(&text);
            self.partial_shown = true;
        } else {
            self.finals += 1;
            out.partial("");
            self.partial_shown = false;
            let line = fmt_span(
                result.start_time.unwrap_or(0.0),
                result.end_time.unwrap_or(0.0),
                &text,
            );
            out.stdout_line(&line);
        }
    }

    fn utterance(&mut self, out: &Out, u: &UtteranceEvent) {
        let role = u
            .participant_role
            .as_ref()
            .map(|r| format!("{}: ", r.as_str()))
            .unwrap_or_default();
        let text = format!("{role}{}", u.transcript.as_deref().unwrap_or_default());
        if u.is_partial {
            out.partial(&text);
        } else {
            self.finals += 1;
            out.partial("");
            let ms = |v: Option<i64>| v.unwrap_or(0) as f64 / 1000.0;
            out.stdout_line(&fmt_span(
                ms(u.begin_offset_millis),
                ms(u.end_offset_millis),
                &text,
            ));
        }
    }

    fn flush(&mut self, out: &Out) {
        if self.partial_shown {
            out.partial("");
            self.partial_shown = false;
        }
    }
}

fn count_finals(event: &TranscribeEvent) -> u64 {
    match event {
        TranscribeEvent::Transcript(t) => t
            .transcript
            .results
            .iter()
            .filter(|r| !r.is_partial)
            .count() as u64,
        TranscribeEvent::Utterance(u) => u64::from(!u.is_partial),
        _ => 0,
    }
}

/// `spk_0: Hello there. spk_1: Hi.` from the items' speaker labels (the plain transcript when
/// the items carry none).
fn with_speakers(alternative: &sigv4_ws::services::transcribe::model::Alternative) -> String {
    let mut text = String::new();
    let mut current: Option<&str> = None;
    let mut any = false;
    for item in &alternative.items {
        let Some(content) = item.content.as_deref() else {
            continue;
        };
        let punctuation = item
            .item_type
            .as_ref()
            .is_some_and(|t| t.as_str() == "punctuation");
        if let Some(speaker) = item.speaker.as_deref() {
            any = true;
            if current != Some(speaker) && !punctuation {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(speaker);
                text.push(':');
                current = Some(speaker);
            }
        }
        if !punctuation && !text.is_empty() {
            text.push(' ');
        }
        text.push_str(content);
    }
    if any {
        text
    } else {
        alternative.transcript.clone().unwrap_or_default()
    }
}

fn event_json(event: &TranscribeEvent) -> serde_json::Value {
    let (name, body) = match event {
        TranscribeEvent::Transcript(e) => ("TranscriptEvent", serde_json::to_value(e)),
        TranscribeEvent::Utterance(e) => ("UtteranceEvent", serde_json::to_value(e)),
        TranscribeEvent::Category(e) => ("CategoryEvent", serde_json::to_value(e)),
        TranscribeEvent::Unknown {
            event_type,
            payload,
        } => {
            return json!({
                "type": event_type,
                "payload": String::from_utf8_lossy(payload),
            })
        }
        _ => return json!({ "type": "Unknown" }),
    };
    json!({ "type": name, "event": body.unwrap_or(serde_json::Value::Null) })
}
