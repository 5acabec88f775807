//! The three start requests, one setter per query parameter, validated before connecting.
//!
//! Every parameter goes in the query string without the `x-amzn-transcribe-` prefix its HTTP/2
//! header form has (protocol.md section 4.3). Booleans are sent only when set (as `true`);
//! lists are sent comma-separated.
//!
//! # Validation rules
//!
//! [`StartStreamTranscription::validate`] and its siblings refuse, naming the parameter:
//!
//! | Parameter | Rule |
//! |---|---|
//! | `sample-rate` | 8000..=48000 Hz (medical: 16000..=48000). PCM and FLAC: any rate in range (FLAC stores arbitrary rates). Ogg-Opus: one of 8000, 12000, 16000, 24000, 48000, the only rates the Opus codec runs at. |
//! | `language-code` | required unless `identify-language` (or, standard only, `identify-multiple-languages`) is set; never together with them; shaped like `en-US` |
//! | `identify-multiple-languages` | not together with `identify-language` |
//! | `language-options` | required with, and only with, language identification; at least two codes, each shaped like `en-US`, one dialect per language, at most 200 characters |
//! | `preferred-language` | only with language identification, and one of `language-options` |
//! | `vocabulary-name`, `vocabulary-filter-name` | `[0-9a-zA-Z._-]`, 1..=200 characters; with language identification use the plural forms instead |
//! | `vocabulary-names`, `vocabulary-filter-names` | only with language identification; each name as above, at most 3000 characters in all |
//! | `vocabulary-filter-method` | needs `vocabulary-filter-name` or `vocabulary-filter-names` |
//! | `language-model-name` | `[0-9a-zA-Z._-]`, 1..=200 characters |
//! | `partial-results-stability` | needs `enable-partial-results-stabilization` |
//! | `enable-channel-identification`, `number-of-channels` | each needs the other; `number-of-channels` must be 2 |
//! | `content-identification-type`, `content-redaction-type` | not both |
//! | `pii-entity-types` | needs one of the two above; upper-case names (`NAME`, `SSN`, …, or `ALL`) separated by commas, at most 300 characters |
//! | `session-id` | a UUID (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`); when absent the client generates a v4 UUID, as the JavaScript SDK does |
//! | `session-resume-window` | at least 1 |
//!
//! The service stays the authority on everything else (which languages a region supports,
//! whether a vocabulary exists, …); those errors arrive as `BadRequestException`.

use std::fmt;

use crate::services::{is_uuid, ValidationError};

use super::model::ConfigurationEvent;

/// Path of standard transcription over WebSocket.
pub const STANDARD_PATH: &str = "/stream-transcription-websocket";
/// Path of medical transcription over WebSocket.
pub const MEDICAL_PATH: &str = "/medical-stream-transcription-websocket";
/// Path of Call Analytics transcription over WebSocket.
pub const CALL_ANALYTICS_PATH: &str = "/call-analytics-stream-transcription-websocket";

/// Lowest sample rate Transcribe accepts, in Hz.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
/// Lowest sample rate Transcribe Medical accepts, in Hz.
pub const MIN_MEDICAL_SAMPLE_RATE: u32 = 16_000;
/// Highest sample rate Transcribe accepts, in Hz.
pub const MAX_SAMPLE_RATE: u32 = 48_000;
/// The sample rates the Opus codec runs at.
pub const OPUS_SAMPLE_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// The value as sent in the query string.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// `media-encoding`: how the audio is encoded.
    MediaEncoding {
        /// Signed 16-bit little-endian PCM, no header (not WAV).
        Pcm => "pcm",
        /// Opus in an Ogg container.
        OggOpus => "ogg-opus",
        /// FLAC.
        Flac => "flac",
    }
}

wire_enum! {
    /// `vocabulary-filter-method`: what happens to filtered words.
    VocabularyFilterMethod {
        /// Removed from the transcript.
        Remove => "remove",
        /// Replaced by `***`.
        Mask => "mask",
        /// Kept and tagged (`VocabularyFilterMatch`).
        Tag => "tag",
    }
}

wire_enum! {
    /// `partial-results-stability`: how much partial results may still change.
    PartialResultsStability {
        /// Least stable, lowest latency.
        Low => "low",
        /// Medium.
        Medium => "medium",
        /// Most stable, highest latency.
        High => "high",
    }
}

wire_enum! {
    /// `content-identification-type`: label sensitive content in the transcript.
    ContentIdentificationType {
        /// Personally identifiable information.
        Pii => "PII",
    }
}

wire_enum! {
    /// `content-redaction-type`: redact sensitive content from the transcript.
    ContentRedactionType {
        /// Personally identifiable information.
        Pii => "PII",
    }
}

wire_enum! {
    /// `content-identification-type` for medical transcription.
    MedicalContentIdentificationType {
        /// Protected health information.
        Phi => "PHI",
    }
}

wire_enum! {
    /// `specialty` of medical transcription.
    Specialty {
        /// Primary care.
        PrimaryCare => "PRIMARYCARE",
        /// Cardiology.
        Cardiology => "CARDIOLOGY",
        /// Neurology.
        Neurology => "NEUROLOGY",
        /// Oncology.
        Oncology => "ONCOLOGY",
        /// Radiology.
        Radiology => "RADIOLOGY",
        /// Urology.
        Urology => "UROLOGY",
    }
}

wire_enum! {
    /// `type` of medical transcription.
    MedicalType {
        /// A conversation between clinician and patient.
        Conversation => "CONVERSATION",
        /// Dictated notes.
        Dictation => "DICTATION",
    }
}

wire_enum! {
    /// `transcript-format`: how numbers and similar are written.
    TranscriptFormat {
        /// As spoken.
        Spoken => "spoken",
        /// As written.
        Written => "written",
    }
}

/// Builder methods that each set one query parameter, declared one line apiece as
/// `name(argument: kind)`: `text` takes anything that converts into a `String`, `flag` a
/// `bool`, `list` any iterator of strings, `wire T` a wire enum kept as its wire value (so that
/// the standard and medical types of one parameter share a field), and any other type is kept
/// as is. Each sets the field of the same name in the request's `params`.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident($arg:ident: $($kind:tt)+);)*) => {
        $(setters!(@setter $(#[$doc])* $name $arg $($kind)+);)*
    };
    (@setter $(#[$doc:meta])* $name:ident $arg:ident text) => {
        $(#[$doc])*
        pub fn $name(mut self, $arg: impl Into<String>) -> Self {
            self.params.$name = Some($arg.into());
            self
        }
    };
    (@setter $(#[$doc:meta])* $name:ident $arg:ident flag) => {
        $(#[$doc])*
        pub fn $name(mut self, $arg: bool) -> Self {
            self.params.$name = $arg;
            self
        }
    };
    (@setter $(#[$doc:meta])* $name:ident $arg:ident list) => {
        $(#[$doc])*
        pub fn $name<I, S>(mut self, $arg: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            self.params.$name = $arg.into_iter().map(Into::into).collect();
            self
        }
    };
    (@setter $(#[$doc:meta])* $name:ident $arg:ident wire $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, $arg: $ty) -> Self {
            self.params.$name = Some($arg.as_str());
            self
        }
    };
    (@setter $(#[$doc:meta])* $name:ident $arg:ident $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, $arg: $ty) -> Self {
            self.params.$name = Some($arg);
            self
        }
    };
}

/// The setters standard and Call Analytics transcription share.
macro_rules! standard_and_call_analytics_setters {
    () => {
        setters! {
            /// `language-code`, e.g. `en-US`.
            language_code(code: text);
            /// `identify-language`: detect the one language of the stream among `language-options`.
            identify_language(enabled: flag);
            /// `language-options`: the candidate languages (at least two) for language identification.
            language_options(codes: list);
            /// `preferred-language`: one of `language-options`, to speed up identification.
            preferred_language(code: text);
            /// `vocabulary-name`: a custom vocabulary (without language identification).
            vocabulary_name(name: text);
            /// `vocabulary-names`: custom vocabularies, one per candidate language (with language
            /// identification).
            vocabulary_names(names: list);
            /// `vocabulary-filter-name`: a custom vocabulary filter (without language identification).
            vocabulary_filter_name(name: text);
            /// `vocabulary-filter-names`: vocabulary filters, one per candidate language (with
            /// language identification).
            vocabulary_filter_names(names: list);
            /// `vocabulary-filter-method`.
            vocabulary_filter_method(method: VocabularyFilterMethod);
            /// `language-model-name`: a custom language model.
            language_model_name(name: text);
            /// `enable-partial-results-stabilization`.
            enable_partial_results_stabilization(enabled: flag);
            /// `partial-results-stability` (needs `enable-partial-results-stabilization`).
            partial_results_stability(stability: PartialResultsStability);
            /// `content-identification-type`: label PII (not with redaction).
            content_identification_type(kind: wire ContentIdentificationType);
            /// `content-redaction-type`: redact PII (not with identification).
            content_redaction_type(kind: ContentRedactionType);
            /// `pii-entity-types`: which PII to identify or redact (`BANK_ACCOUNT_NUMBER`,
            /// `BANK_ROUTING`, `CREDIT_DEBIT_NUMBER`, `CREDIT_DEBIT_CVV`, `CREDIT_DEBIT_EXPIRY`, `PIN`,
            /// `EMAIL`, `ADDRESS`, `NAME`, `PHONE`, `SSN`, or `ALL`).
            pii_entity_types(types: list);
            /// `session-id` (a UUID). When not set, the client generates a v4 UUID.
            session_id(id: text);
        }
    };
}

/// The methods all three requests have that read their `params`.
macro_rules! request_methods {
    () => {
        /// The query parameters, in API order, as they will be sent (before signing).
        pub fn query(&self) -> Vec<(&'static str, String)> {
            self.params.query()
        }

        /// The media encoding.
        pub fn media_encoding(&self) -> MediaEncoding {
            self.params.media_encoding
        }

        /// The sample rate in Hz.
        pub fn sample_rate(&self) -> u32 {
            self.params.sample_rate
        }

        /// The session id, if one was set.
        pub fn get_session_id(&self) -> Option<&str> {
            self.params.session_id.as_deref()
        }
    };
}

/// `StartStreamTranscription` over `/stream-transcription-websocket`.
///
/// ```
/// use sigv4_ws::services::transcribe::{MediaEncoding, PartialResultsStability, StartStreamTranscription};
///
/// let request = StartStreamTranscription::new(MediaEncoding::Pcm, 16_000)
///     .language_code("en-US")
///     .enable_partial_results_stabilization(true)
///     .partial_results_stability(PartialResultsStability::High);
/// request.validate()?;
/// # Ok::<(), sigv4_ws::services::ValidationError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct StartStreamTranscription {
    params: Params,
}

impl StartStreamTranscription {
    /// A request for audio in `media_encoding` at `sample_rate` Hz (both required). Set the
    /// language with [`language_code`](Self::language_code) or
    /// [`identify_language`](Self::identify_language).
    pub fn new(media_encoding: MediaEncoding, sample_rate: u32) -> Self {
        StartStreamTranscription {
            params: Params::new(StreamKind::Standard, media_encoding, sample_rate),
        }
    }

    /// Checks every rule in the [module docs](self) without connecting.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.params.validate()
    }

    request_methods!();

    standard_and_call_analytics_setters!();

    setters! {
        /// `identify-multiple-languages`: detect several languages among `language-options`.
        identify_multiple_languages(enabled: flag);
        /// `show-speaker-label`: label speakers (diarization).
        show_speaker_label(enabled: flag);
        /// `enable-channel-identification`: transcribe each channel separately (needs
        /// `number-of-channels`).
        enable_channel_identification(enabled: flag);
        /// `number-of-channels` (must be 2; needs `enable-channel-identification`).
        number_of_channels(channels: u32);
        /// `session-resume-window`, passed to the service as is.
        session_resume_window(window: u32);
        /// `transcript-format`.
        transcript_format(format: TranscriptFormat);
    }
}

/// `StartMedicalStreamTranscription` over `/medical-stream-transcription-websocket`.
///
/// ```
/// use sigv4_ws::services::transcribe::{MediaEncoding, MedicalType, Specialty, StartMedicalStreamTranscription};
///
/// let request = StartMedicalStreamTranscription::new(
///     "en-US", MediaEncoding::Pcm, 16_000, Specialty::PrimaryCare, MedicalType::Conversation,
/// )
/// .show_speaker_label(true);
/// request.validate()?;
/// # Ok::<(), sigv4_ws::services::ValidationError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct StartMedicalStreamTranscription {
    params: Params,
}

impl StartMedicalStreamTranscription {
    /// A medical request; all five are required by the service. (At the time of writing,
    /// Transcribe Medical transcribes US English, `en-US`, only.)
    pub fn new(
        language_code: impl Into<String>,
        media_encoding: MediaEncoding,
        sample_rate: u32,
        specialty: Specialty,
        medical_type: MedicalType,
    ) -> Self {
        let mut params = Params::new(StreamKind::Medical, media_encoding, sample_rate);
        params.language_code = Some(language_code.into());
        params.specialty = Some(specialty);
        params.medical_type = Some(medical_type);
        StartMedicalStreamTranscription { params }
    }

    /// Checks every rule in the [module docs](self) that applies to medical transcription.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.params.validate()
    }

    request_methods!();

    setters! {
        /// `vocabulary-name`: a custom medical vocabulary.
        vocabulary_name(name: text);
        /// `show-speaker-label`.
        show_speaker_label(enabled: flag);
        /// `session-id` (a UUID). When not set, the client generates a v4 UUID.
        session_id(id: text);
        /// `enable-channel-identification` (needs `number-of-channels`).
        enable_channel_identification(enabled: flag);
        /// `number-of-channels` (must be 2; needs `enable-channel-identification`).
        number_of_channels(channels: u32);
        /// `content-identification-type`: label protected health information.
        content_identification_type(kind: wire MedicalContentIdentificationType);
    }
}

/// `StartCallAnalyticsStreamTranscription` over `/call-analytics-stream-transcription-websocket`.
///
/// A [`ConfigurationEvent`] given with [`configuration`](Self::configuration) is validated with
/// the request and sent as the first event of the stream.
///
/// ```
/// use sigv4_ws::services::transcribe::{
///     ChannelDefinition, ConfigurationEvent, MediaEncoding, ParticipantRole,
///     StartCallAnalyticsStreamTranscription,
/// };
///
/// let request = StartCallAnalyticsStreamTranscription::new(MediaEncoding::Pcm, 8_000)
///     .language_code("en-US")
///     .configuration(ConfigurationEvent::new(vec![
///         ChannelDefinition::new(0, ParticipantRole::Agent),
///         ChannelDefinition::new(1, ParticipantRole::Customer),
///     ]));
/// request.validate()?;
/// # Ok::<(), sigv4_ws::services::ValidationError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct StartCallAnalyticsStreamTranscription {
    params: Params,
    configuration: Option<ConfigurationEvent>,
}

impl StartCallAnalyticsStreamTranscription {
    /// A Call Analytics request for audio in `media_encoding` at `sample_rate` Hz.
    pub fn new(media_encoding: MediaEncoding, sample_rate: u32) -> Self {
        StartCallAnalyticsStreamTranscription {
            params: Params::new(StreamKind::CallAnalytics, media_encoding, sample_rate),
            configuration: None,
        }
    }

    /// Checks every rule in the [module docs](self) that applies to Call Analytics, and the
    /// configuration event if there is one.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.params.validate()?;
        if let Some(configuration) = &self.configuration {
            configuration.validate()?;
        }
        Ok(())
    }

    request_methods!();

    standard_and_call_analytics_setters!();

    /// The `ConfigurationEvent` to send first (channel roles, post-call analytics).
    pub fn configuration(mut self, configuration: ConfigurationEvent) -> Self {
        self.configuration = Some(configuration);
        self
    }

    /// The configuration event, if one was set.
    pub fn get_configuration(&self) -> Option<&ConfigurationEvent> {
        self.configuration.as_ref()
    }
}

/// Which Transcribe operation a stream runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamKind {
    /// `StartStreamTranscription`.
    Standard,
    /// `StartMedicalStreamTranscription`.
    Medical,
    /// `StartCallAnalyticsStreamTranscription`.
    CallAnalytics,
}

impl StreamKind {
    /// The WebSocket path of this operation.
    pub fn path(&self) -> &'static str {
        match self {
            StreamKind::Standard => STANDARD_PATH,
            StreamKind::Medical => MEDICAL_PATH,
            StreamKind::CallAnalytics => CALL_ANALYTICS_PATH,
        }
    }
}

/// Any of the three start requests; [`TranscribeClient::start`](super::TranscribeClient::start)
/// takes anything that converts into it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum StartRequest {
    /// Standard transcription.
    Standard(StartStreamTranscription),
    /// Medical transcription.
    Medical(StartMedicalStreamTranscription),
    /// Call Analytics.
    CallAnalytics(StartCallAnalyticsStreamTranscription),
}

impl From<StartStreamTranscription> for StartRequest {
    fn from(request: StartStreamTranscription) -> Self {
        StartRequest::Standard(request)
    }
}

impl From<StartMedicalStreamTranscription> for StartRequest {
    fn from(request: StartMedicalStreamTranscription) -> Self {
        StartRequest::Medical(request)
    }
}

impl From<StartCallAnalyticsStreamTranscription> for StartRequest {
    fn from(request: StartCallAnalyticsStreamTranscription) -> Self {
        StartRequest::CallAnalytics(request)
    }
}

impl StartRequest {
    /// Which operation this is.
    pub fn kind(&self) -> StreamKind {
        self.params().kind
    }

    /// The WebSocket path.
    pub fn path(&self) -> &'static str {
        self.kind().path()
    }

    /// Checks the request (see the [module docs](self)).
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            StartRequest::Standard(r) => r.validate(),
            StartRequest::Medical(r) => r.validate(),
            StartRequest::CallAnalytics(r) => r.validate(),
        }
    }

    /// The query parameters as they will be sent (before signing).
    pub fn query(&self) -> Vec<(&'static str, String)> {
        self.params().query()
    }

    /// The session id, if one was set.
    pub fn session_id(&self) -> Option<&str> {
        self.params().session_id.as_deref()
    }

    /// The media encoding.
    pub fn media_encoding(&self) -> MediaEncoding {
        self.params().media_encoding
    }

    /// The sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.params().sample_rate
    }

    /// Interleaved channels of the audio: `number-of-channels` when set, else 1.
    pub fn channels(&self) -> u32 {
        self.params().number_of_channels.unwrap_or(1).max(1)
    }

    /// Sets the session id when none was given (the client does this with a v4 UUID).
    pub(crate) fn ensure_session_id(&mut self, generate: impl FnOnce() -> String) -> &str {
        self.params_mut().session_id.get_or_insert_with(generate)
    }

    /// Replaces the session id (a reconnecting stream starts a new session).
    pub(crate) fn set_session_id(&mut self, id: String) {
        self.params_mut().session_id = Some(id);
    }

    /// The configuration event to send first, for Call Analytics.
    pub(crate) fn configuration(&self) -> Option<&ConfigurationEvent> {
        match self {
            StartRequest::CallAnalytics(r) => r.configuration.as_ref(),
            _ => None,
        }
    }

    fn params(&self) -> &Params {
        match self {
            StartRequest::Standard(r) => &r.params,
            StartRequest::Medical(r) => &r.params,
            StartRequest::CallAnalytics(r) => &r.params,
        }
    }

    fn params_mut(&mut self) -> &mut Params {
        match self {
            StartRequest::Standard(r) => &mut r.params,
            StartRequest::Medical(r) => &mut r.params,
            StartRequest::CallAnalytics(r) => &mut r.params,
        }
    }
}

/// The query parameters of a start request, for all three operations: one operation never
/// sets the parameters it does not have, so they are never sent, and one set of rules
/// validates them all.
#[derive(Clone, Debug, PartialEq)]
struct Params {
    kind: StreamKind,
    media_encoding: MediaEncoding,
    sample_rate: u32,
    specialty: Option<Specialty>,
    medical_type: Option<MedicalType>,
    language_code: Option<String>,
    identify_language: bool,
    identify_multiple_languages: bool,
    language_options: Vec<String>,
    preferred_language: Option<String>,
    vocabulary_name: Option<String>,
    vocabulary_names: Vec<String>,
    vocabulary_filter_name: Option<String>,
    vocabulary_filter_names: Vec<String>,
    vocabulary_filter_method: Option<VocabularyFilterMethod>,
    show_speaker_label: bool,
    enable_channel_identification: bool,
    number_of_channels: Option<u32>,
    enable_partial_results_stabilization: bool,
    partial_results_stability: Option<PartialResultsStability>,
    /// As sent: `PII`, or `PHI` for medical transcription.
    content_identification_type: Option<&'static str>,
    content_redaction_type: Option<ContentRedactionType>,
    pii_entity_types: Vec<String>,
    language_model_name: Option<String>,
    session_id: Option<String>,
    session_resume_window: Option<u32>,
    transcript_format: Option<TranscriptFormat>,
}

impl Params {
    fn new(kind: StreamKind, media_encoding: MediaEncoding, sample_rate: u32) -> Params {
        Params {
            kind,
            media_encoding,
            sample_rate,
            specialty: None,
            medical_type: None,
            language_code: None,
            identify_language: false,
            identify_multiple_languages: false,
            language_options: Vec::new(),
            preferred_language: None,
            vocabulary_name: None,
            vocabulary_names: Vec::new(),
            vocabulary_filter_name: None,
            vocabulary_filter_names: Vec::new(),
            vocabulary_filter_method: None,
            show_speaker_label: false,
            enable_channel_identification: false,
            number_of_channels: None,
            enable_partial_results_stabilization: false,
            partial_results_stability: None,
            content_identification_type: None,
            content_redaction_type: None,
            pii_entity_types: Vec::new(),
            language_model_name: None,
            session_id: None,
            session_resume_window: None,
            transcript_format: None,
        }
    }

    /// Checks every rule in the module docs. A parameter the operation does not have is unset,
    /// so its rules pass.
    fn validate(&self) -> Result<(), ValidationError> {
        let min_sample_rate = match self.kind {
            StreamKind::Medical => MIN_MEDICAL_SAMPLE_RATE,
            _ => MIN_SAMPLE_RATE,
        };
        check_sample_rate(self.media_encoding, self.sample_rate, min_sample_rate)?;
        let identify = self.identify_language || self.identify_multiple_languages;
        if self.identify_language && self.identify_multiple_languages {
            return Err(ValidationError::new(
                "identify-multiple-languages",
                "cannot be combined with identify-language; set only one of them",
            ));
        }
        check_languages(&Languages {
            code: self.language_code.as_deref(),
            identify,
            identify_param: if self.identify_multiple_languages {
                "identify-multiple-languages"
            } else {
                "identify-language"
            },
            options: &self.language_options,
            preferred: self.preferred_language.as_deref(),
        })?;
        check_vocabularies(&Vocabularies {
            identify,
            name: self.vocabulary_name.as_deref(),
            names: &self.vocabulary_names,
            filter_name: self.vocabulary_filter_name.as_deref(),
            filter_names: &self.vocabulary_filter_names,
            filter_method: self.vocabulary_filter_method.is_some(),
        })?;
        if let Some(name) = &self.language_model_name {
            check_name("language-model-name", name)?;
        }
        check_channels(self.enable_channel_identification, self.number_of_channels)?;
        check_stability(
            self.enable_partial_results_stabilization,
            self.partial_results_stability.is_some(),
        )?;
        check_content(
            self.content_identification_type.is_some(),
            self.content_redaction_type.is_some(),
            &self.pii_entity_types,
        )?;
        check_session_id(self.session_id.as_deref())?;
        if self.session_resume_window == Some(0) {
            return Err(ValidationError::new(
                "session-resume-window",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The parameters in the order of the operation's API reference. The three orders agree
    /// except that medical lists `session-id` after `show-speaker-label`, and Call Analytics
    /// lists the language model and identification before stabilization and content redaction
    /// where standard transcription lists them after.
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Query::default();
        q.opt("language-code", self.language_code.as_deref());
        q.push("sample-rate", self.sample_rate.to_string());
        q.push("media-encoding", self.media_encoding.as_str().to_owned());
        q.opt("vocabulary-name", self.vocabulary_name.as_deref());
        q.opt("specialty", self.specialty.map(|s| s.as_str()));
        q.opt("type", self.medical_type.map(|t| t.as_str()));
        if self.kind != StreamKind::Medical {
            q.opt("session-id", self.session_id.as_deref());
        }
        q.opt(
            "vocabulary-filter-name",
            self.vocabulary_filter_name.as_deref(),
        );
        q.opt(
            "vocabulary-filter-method",
            self.vocabulary_filter_method.map(|m| m.as_str()),
        );
        if self.kind == StreamKind::CallAnalytics {
            self.language_model_and_identification(&mut q);
        }
        q.flag("show-speaker-label", self.show_speaker_label);
        if self.kind == StreamKind::Medical {
            q.opt("session-id", self.session_id.as_deref());
        }
        q.flag(
            "enable-channel-identification",
            self.enable_channel_identification,
        );
        q.opt(
            "number-of-channels",
            self.number_of_channels.map(|n| n.to_string()).as_deref(),
        );
        q.flag(
            "enable-partial-results-stabilization",
            self.enable_partial_results_stabilization,
        );
        q.opt(
            "partial-results-stability",
            self.partial_results_stability.map(|s| s.as_str()),
        );
        q.opt(
            "content-identification-type",
            self.content_identification_type,
        );
        q.opt(
            "content-redaction-type",
            self.content_redaction_type.map(|c| c.as_str()),
        );
        q.list("pii-entity-types", &self.pii_entity_types);
        if self.kind == StreamKind::Standard {
            self.language_model_and_identification(&mut q);
        }
        q.opt(
            "session-resume-window",
            self.session_resume_window.map(|w| w.to_string()).as_deref(),
        );
        q.opt(
            "transcript-format",
            self.transcript_format.map(|f| f.as_str()),
        );
        q.0
    }

    fn language_model_and_identification(&self, q: &mut Query) {
        q.opt("language-model-name", self.language_model_name.as_deref());
        q.flag("identify-language", self.identify_language);
        q.list("language-options", &self.language_options);
        q.opt("preferred-language", self.preferred_language.as_deref());
        q.flag(
            "identify-multiple-languages",
            self.identify_multiple_languages,
        );
        q.list("vocabulary-names", &self.vocabulary_names);
        q.list("vocabulary-filter-names", &self.vocabulary_filter_names);
    }
}

/// Query builder: skips unset values, sends flags only when true, joins lists with commas.
#[derive(Default)]
struct Query(Vec<(&'static str, String)>);

impl Query {
    fn push(&mut self, name: &'static str, value: String) {
        self.0.push((name, value));
    }

    fn opt(&mut self, name: &'static str, value: Option<&str>) {
        if let Some(value) = value {
            self.push(name, value.to_owned());
        }
    }

    fn flag(&mut self, name: &'static str, value: bool) {
        if value {
            self.push(name, "true".to_owned());
        }
    }

    fn list(&mut self, name: &'static str, values: &[String]) {
        if !values.is_empty() {
            self.push(name, values.join(","));
        }
    }
}

fn check_sample_rate(encoding: MediaEncoding, rate: u32, min: u32) -> Result<(), ValidationError> {
    if !(min..=MAX_SAMPLE_RATE).contains(&rate) {
        return Err(ValidationError::new(
            "sample-rate",
            format!("{rate} Hz is outside {min}..={MAX_SAMPLE_RATE} Hz; resample the audio"),
        ));
    }
    if encoding == MediaEncoding::OggOpus && !OPUS_SAMPLE_RATES.contains(&rate) {
        return Err(ValidationError::new(
            "sample-rate",
            format!(
                "{rate} Hz is not an Opus rate; ogg-opus audio runs at 8000, 12000, 16000, 24000 or 48000 Hz"
            ),
        ));
    }
    Ok(())
}

fn check_language_code(field: &'static str, code: &str) -> Result<(), ValidationError> {
    let ok = code.split_once('-').is_some_and(|(language, region)| {
        (2..=3).contains(&language.len())
            && language.bytes().all(|b| b.is_ascii_lowercase())
            && region.len() == 2
            && region.bytes().all(|b| b.is_ascii_uppercase())
    });
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("{code:?} is not a language code; use the form `en-US`"),
        ))
    }
}

struct Languages<'a> {
    code: Option<&'a str>,
    identify: bool,
    identify_param: &'static str,
    options: &'a [String],
    preferred: Option<&'a str>,
}

fn check_languages(l: &Languages<'_>) -> Result<(), ValidationError> {
    match (l.code, l.identify) {
        (None, false) => {
            return Err(ValidationError::new(
                "language-code",
                "required: set language-code, or identify-language with language-options",
            ))
        }
        (Some(_), true) => {
            return Err(ValidationError::new(
                l.identify_param,
                "cannot be combined with language-code; remove one of them",
            ))
        }
        (Some(code), false) => check_language_code("language-code", code)?,
        (None, true) => {}
    }
    if l.identify && l.options.is_empty() {
        return Err(ValidationError::new(
            "language-options",
            format!(
                "required with {}: list at least two candidate languages",
                l.identify_param
            ),
        ));
    }
    if !l.identify && !l.options.is_empty() {
        return Err(ValidationError::new(
            "language-options",
            "only used with identify-language or identify-multiple-languages; set one of them or remove language-options",
        ));
    }
    if l.identify {
        if l.options.len() < 2 {
            return Err(ValidationError::new(
                "language-options",
                "list at least two languages (with one language, set language-code instead)",
            ));
        }
        for (i, option) in l.options.iter().enumerate() {
            check_language_code("language-options", option)?;
            let language = option.split('-').next().unwrap_or_default();
            if let Some(other) = l.options[..i]
                .iter()
                .find(|o| o.split('-').next() == Some(language))
            {
                return Err(ValidationError::new(
                    "language-options",
                    format!("{other} and {option} are dialects of one language; keep only one per language"),
                ));
            }
        }
        let joined = l.options.join(",").len();
        if joined > 200 {
            return Err(ValidationError::new(
                "language-options",
                format!("{joined} characters; at most 200 are allowed"),
            ));
        }
    }
    if let Some(preferred) = l.preferred {
        if !l.identify {
            return Err(ValidationError::new(
                "preferred-language",
                "only used with language identification; set identify-language or remove preferred-language",
            ));
        }
        if !l.options.iter().any(|o| o == preferred) {
            return Err(ValidationError::new(
                "preferred-language",
                format!("{preferred:?} must be one of language-options"),
            ));
        }
    }
    Ok(())
}

fn check_name(field: &'static str, name: &str) -> Result<(), ValidationError> {
    let ok = (1..=200).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!(
                "{name:?} is not a valid name: use 1 to 200 of the characters 0-9 a-z A-Z . _ -"
            ),
        ))
    }
}

fn check_names(field: &'static str, names: &[String]) -> Result<(), ValidationError> {
    for name in names {
        check_name(field, name)?;
    }
    let joined = names.join(",").len();
    if joined > 3000 {
        return Err(ValidationError::new(
            field,
            format!("{joined} characters; at most 3000 are allowed"),
        ));
    }
    Ok(())
}

struct Vocabularies<'a> {
    identify: bool,
    name: Option<&'a str>,
    names: &'a [String],
    filter_name: Option<&'a str>,
    filter_names: &'a [String],
    filter_method: bool,
}

fn check_vocabularies(v: &Vocabularies<'_>) -> Result<(), ValidationError> {
    for (single, plural, name, names) in [
        ("vocabulary-name", "vocabulary-names", v.name, v.names),
        (
            "vocabulary-filter-name",
            "vocabulary-filter-names",
            v.filter_name,
            v.filter_names,
        ),
    ] {
        if let Some(name) = name {
            if v.identify {
                return Err(ValidationError::new(
                    single,
                    format!("with language identification use {plural} (one per candidate language) instead"),
                ));
            }
            check_name(single, name)?;
        }
        if !names.is_empty() {
            if !v.identify {
                return Err(ValidationError::new(
                    plural,
                    format!("only used with language identification; without it use {single}"),
                ));
            }
            check_names(plural, names)?;
        }
    }
    if v.filter_method && v.filter_name.is_none() && v.filter_names.is_empty() {
        return Err(ValidationError::new(
            "vocabulary-filter-method",
            "needs a vocabulary filter: set vocabulary-filter-name (or vocabulary-filter-names)",
        ));
    }
    Ok(())
}

fn check_channels(enabled: bool, channels: Option<u32>) -> Result<(), ValidationError> {
    match (enabled, channels) {
        (false, None) => Ok(()),
        (true, None) => Err(ValidationError::new(
            "number-of-channels",
            "required with enable-channel-identification: set it to 2",
        )),
        (false, Some(_)) => Err(ValidationError::new(
            "number-of-channels",
            "only used with channel identification: set enable-channel-identification, or remove number-of-channels for mono audio",
        )),
        (true, Some(2)) => Ok(()),
        (true, Some(n)) => Err(ValidationError::new(
            "number-of-channels",
            format!("{n} channels: Transcribe supports exactly 2 with channel identification"),
        )),
    }
}

fn check_stability(enabled: bool, stability: bool) -> Result<(), ValidationError> {
    if stability && !enabled {
        return Err(ValidationError::new(
            "partial-results-stability",
            "needs enable-partial-results-stabilization set to true",
        ));
    }
    Ok(())
}

fn check_content(
    identification: bool,
    redaction: bool,
    pii: &[String],
) -> Result<(), ValidationError> {
    if identification && redaction {
        return Err(ValidationError::new(
            "content-redaction-type",
            "cannot be combined with content-identification-type; choose identification or redaction",
        ));
    }
    if !pii.is_empty() {
        if !identification && !redaction {
            return Err(ValidationError::new(
                "pii-entity-types",
                "needs content-identification-type or content-redaction-type",
            ));
        }
        for kind in pii {
            if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                return Err(ValidationError::new(
                    "pii-entity-types",
                    format!("{kind:?} is not a PII entity type: use upper-case names such as NAME, SSN or ALL"),
                ));
            }
        }
        let joined = pii.join(",").len();
        if joined > 300 {
            return Err(ValidationError::new(
                "pii-entity-types",
                format!("{joined} characters; at most 300 are allowed"),
            ));
        }
    }
    Ok(())
}

fn check_session_id(id: Option<&str>) -> Result<(), ValidationError> {
    match id {
        Some(id) if !is_uuid(id) => Err(ValidationError::new(
            "session-id",
            format!("{id:?} is not a UUID; use the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, or leave it unset to have one generated"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::{ChannelDefinition, ParticipantRole, PostCallAnalyticsSettings};
    use super::*;

    const UUID: &str = "6d2ae1e4-3c3b-4f55-9a8c-1b5c9f0e7d21";

    fn standard() -> StartStreamTranscription {
        StartStreamTranscription::new(MediaEncoding::Pcm, 16_000).language_code("en-US")
    }

    fn identify() -> StartStreamTranscription {
        StartStreamTranscription::new(MediaEncoding::Pcm, 16_000)
            .identify_language(true)
            .language_options(["en-US", "es-US"])
    }

    fn medical() -> StartMedicalStreamTranscription {
        StartMedicalStreamTranscription::new(
            "en-US",
            MediaEncoding::Pcm,
            16_000,
            Specialty::PrimaryCare,
            MedicalType::Conversation,
        )
    }

    fn call_analytics() -> StartCallAnalyticsStreamTranscription {
        StartCallAnalyticsStreamTranscription::new(MediaEncoding::Pcm, 8_000).language_code("en-US")
    }

    fn two_channels() -> Vec<ChannelDefinition> {
        vec![
            ChannelDefinition::new(0, ParticipantRole::Agent),
            ChannelDefinition::new(1, ParticipantRole::Customer),
        ]
    }

    #[track_caller]
    fn refused(result: Result<(), ValidationError>, field: &str, contains: &str) {
        let error = result.expect_err("the request should be refused");
        assert_eq!(error.field, field, "{error}");
        assert!(error.reason.contains(contains), "{error}");
        assert!(error.to_string().contains(field));
    }

    #[test]
    fn valid_requests_pass() {
        standard().validate().unwrap();
        identify().validate().unwrap();
        medical().validate().unwrap();
        call_analytics().validate().unwrap();
        StartStreamTranscription::new(MediaEncoding::Flac, 44_100)
            .language_code("ckb-IQ")
            .vocabulary_name("my.vocab_1-a")
            .vocabulary_filter_name("f")
            .vocabulary_filter_method(VocabularyFilterMethod::Mask)
            .show_speaker_label(true)
            .enable_channel_identification(true)
            .number_of_channels(2)
            .enable_partial_results_stabilization(true)
            .partial_results_stability(PartialResultsStability::Low)
            .content_redaction_type(ContentRedactionType::Pii)
            .pii_entity_types(["NAME", "CREDIT_DEBIT_NUMBER"])
            .language_model_name("lm")
            .session_id(UUID)
            .session_resume_window(30)
            .transcript_format(TranscriptFormat::Written)
            .validate()
            .unwrap();
        identify()
            .identify_multiple_languages(false)
            .preferred_language("es-US")
            .vocabulary_names(["v-en", "v-es"])
            .vocabulary_filter_names(["f-en", "f-es"])
            .vocabulary_filter_method(VocabularyFilterMethod::Tag)
            .validate()
            .unwrap();
    }

    // --- sample-rate -------------------------------------------------------------------

    #[test]
    fn sample_rate_below_8000_is_refused() {
        refused(
            StartStreamTranscription::new(MediaEncoding::Pcm, 7_999)
                .language_code("en-US")
                .validate(),
            "sample-rate",
            "8000..=48000",
        );
    }

    #[test]
    fn sample_rate_above_48000_is_refused() {
        refused(
            StartStreamTranscription::new(MediaEncoding::Flac, 48_001)
                .language_code("en-US")
                .validate(),
            "sample-rate",
            "outside",
        );
    }

    #[test]
    fn pcm_and_flac_take_any_rate_in_range() {
        for rate in [8_000, 11_025, 22_050, 44_100, 48_000] {
            for encoding in [MediaEncoding::Pcm, MediaEncoding::Flac] {
                StartStreamTranscription::new(encoding, rate)
                    .language_code("en-US")
                    .validate()
                    .unwrap();
            }
        }
    }

    #[test]
    fn opus_needs_an_opus_rate() {
        refused(
            StartStreamTranscription::new(MediaEncoding::OggOpus, 44_100)
                .language_code("en-US")
                .validate(),
            "sample-rate",
            "Opus",
        );
        for rate in OPUS_SAMPLE_RATES {
            StartStreamTranscription::new(MediaEncoding::OggOpus, rate)
                .language_code("en-US")
                .validate()
                .unwrap();
        }
    }

    #[test]
    fn medical_sample_rate_is_at_least_16000() {
        let request = StartMedicalStreamTranscription::new(
            "en-US",
            MediaEncoding::Pcm,
            8_000,
            Specialty::Cardiology,
            MedicalType::Dictation,
        );
        refused(request.validate(), "sample-rate", "16000..=48000");
    }

    #[test]
    fn call_analytics_sample_rate_is_checked() {
        refused(
            StartCallAnalyticsStreamTranscription::new(MediaEncoding::Pcm, 96_000)
                .language_code("en-US")
                .validate(),
            "sample-rate",
            "outside",
        );
    }

    // --- language selection ------------------------------------------------------------

    #[test]
    fn a_language_is_required() {
        refused(
            StartStreamTranscription::new(MediaEncoding::Pcm, 16_000).validate(),
            "language-code",
            "required",
        );
        refused(
            StartCallAnalyticsStreamTranscription::new(MediaEncoding::Pcm, 8_000).validate(),
            "language-code",
            "required",
        );
    }

    #[test]
    fn language_code_excludes_identify_language() {
        refused(
            identify().language_code("en-US").validate(),
            "identify-language",
            "language-code",
        );
    }

    #[test]
    fn language_code_excludes_identify_multiple_languages() {
        let request = standard()
            .identify_multiple_languages(true)
            .language_options(["en-US", "es-US"]);
        refused(
            request.validate(),
            "identify-multiple-languages",
            "language-code",
        );
    }

    #[test]
    fn identify_language_excludes_identify_multiple_languages() {
        refused(
            identify().identify_multiple_languages(true).validate(),
            "identify-multiple-languages",
            "identify-language",
        );
    }

    #[test]
    fn language_code_must_look_like_one() {
        for bad in ["english", "en_US", "EN-us", "en-USA", "", "e-US"] {
            refused(
                StartStreamTranscription::new(MediaEncoding::Pcm, 16_000)
                    .language_code(bad)
                    .validate(),
                "language-code",
                "en-US",
            );
        }
        refused(
            StartMedicalStreamTranscription::new(
                "",
                MediaEncoding::Pcm,
                16_000,
                Specialty::Urology,
                MedicalType::Dictation,
            )
            .validate(),
            "language-code",
            "en-US",
        );
    }

    #[test]
    fn identify_language_requires_language_options() {
        let request =
            StartStreamTranscription::new(MediaEncoding::Pcm, 16_000).identify_language(true);
        refused(
            request.validate(),
            "language-options",
            "required with identify-language",
        );
        let multiple = StartStreamTranscription::new(MediaEncoding::Pcm, 16_000)
            .identify_multiple_languages(true);
        refused(
            multiple.validate(),
            "language-options",
            "identify-multiple-languages",
        );
    }

    #[test]
    fn language_options_require_identification() {
        refused(
            standard().language_options(["en-US", "es-US"]).validate(),
            "language-options",
            "only used with",
        );
    }

    #[test]
    fn language_options_need_two_languages() {
        let request = StartStreamTranscription::new(MediaEncoding::Pcm, 16_000)
            .identify_language(true)
            .language_options(["en-US"]);
        refused(request.validate(), "language-options", "at least two");
    }

    #[test]
    fn language_options_must_be_language_codes() {
        let request = StartStreamTranscription::new(MediaEncoding::Pcm, 16_000)
            .identify_language(true)
            .language_options(["en-US", "spanish"]);
        refused(request.validate(), "language-options", "en-US");
    }

    #[test]
    fn language_options_allow_one_dialect_per_language() {
        let request = StartStreamTranscription::new(MediaEncoding::Pcm, 16_000)
            .identify_language(true)
            .language_options(["en-US", "es-US", "en-GB"]);
        refused(request.validate(), "language-options", "en-US and en-GB");
    }

    #[test]
    fn language_options_are_at_most_200_characters() {
        let many: Vec<String> = (0..40)
            .map(|i| {
                format!(
                    "{}{}-US",
                    (b'a' + (i / 26) as u8) as char,
                    (b'a' + (i % 26) as u8) as char
                )
            })
            .collect();
        let request = StartStreamTranscription::new(MediaEncoding::Pcm, 16_000)
            .identify_language(true)
            .language_options(many);
        refused(request.validate(), "language-options", "at most 200");
    }

    #[test]
    fn preferred_language_requires_identification() {
        refused(
            standard().preferred_language("en-US").validate(),
            "preferred-language",
            "only used with",
        );
    }

    #[test]
    fn preferred_language_must_be_an_option() {
        refused(
            identify().preferred_language("fr-FR").validate(),
            "preferred-language",
            "one of language-options",
        );
    }

    // --- vocabularies ------------------------------------------------------------------

    #[test]
    fn vocabulary_name_must_be_a_valid_name() {
        let too_long = "x".repeat(201);
        let names = [
            ("bad name", "0-9"),
            ("a/b", "0-9"),
            ("", "1 to 200"),
            (too_long.as_str(), "1 to 200"),
        ];
        for (name, reason) in names {
            refused(
                standard().vocabulary_name(name).validate(),
                "vocabulary-name",
                reason,
            );
            refused(
                medical().vocabulary_name(name).validate(),
                "vocabulary-name",
                reason,
            );
        }
    }

    #[test]
    fn vocabulary_filter_name_must_be_a_valid_name() {
        refused(
            standard().vocabulary_filter_name("a,b").validate(),
            "vocabulary-filter-name",
            "0-9",
        );
    }

    #[test]
    fn vocabulary_name_is_replaced_by_names_with_identification() {
        refused(
            identify().vocabulary_name("v").validate(),
            "vocabulary-name",
            "vocabulary-names",
        );
    }

    #[test]
    fn vocabulary_filter_name_is_replaced_by_names_with_identification() {
        refused(
            identify().vocabulary_filter_name("f").validate(),
            "vocabulary-filter-name",
            "vocabulary-filter-names",
        );
    }

    #[test]
    fn vocabulary_names_require_identification() {
        refused(
            standard().vocabulary_names(["a", "b"]).validate(),
            "vocabulary-names",
            "vocabulary-name",
        );
    }

    #[test]
    fn vocabulary_filter_names_require_identification() {
        refused(
            standard().vocabulary_filter_names(["a"]).validate(),
            "vocabulary-filter-names",
            "vocabulary-filter-name",
        );
    }

    #[test]
    fn vocabulary_names_are_names_and_at_most_3000_characters() {
        refused(
            identify().vocabulary_names(["ok", "not ok"]).validate(),
            "vocabulary-names",
            "0-9",
        );
        let long: Vec<String> = (0..20).map(|i| format!("{i:0>200}")).collect();
        refused(
            identify().vocabulary_names(long).validate(),
            "vocabulary-names",
            "at most 3000",
        );
    }

    #[test]
    fn vocabulary_filter_method_requires_a_filter() {
        refused(
            standard()
                .vocabulary_filter_method(VocabularyFilterMethod::Remove)
                .validate(),
            "vocabulary-filter-method",
            "vocabulary-filter-name",
        );
    }

    #[test]
    fn language_model_name_must_be_a_valid_name() {
        for (name, reason) in [("lm?", "0-9"), ("", "1 to 200")] {
            let field = "language-model-name";
            refused(
                standard().language_model_name(name).validate(),
                field,
                reason,
            );
            refused(
                call_analytics().language_model_name(name).validate(),
                field,
                reason,
            );
        }
    }

    // --- channels, stabilization, content ----------------------------------------------

    #[test]
    fn number_of_channels_requires_channel_identification() {
        refused(
            standard().number_of_channels(2).validate(),
            "number-of-channels",
            "enable-channel-identification",
        );
        refused(
            medical().number_of_channels(2).validate(),
            "number-of-channels",
            "enable-channel-identification",
        );
    }

    #[test]
    fn channel_identification_requires_number_of_channels() {
        refused(
            standard().enable_channel_identification(true).validate(),
            "number-of-channels",
            "required",
        );
    }

    #[test]
    fn number_of_channels_must_be_two() {
        for n in [0, 1, 3] {
            refused(
                standard()
                    .enable_channel_identification(true)
                    .number_of_channels(n)
                    .validate(),
                "number-of-channels",
                "exactly 2",
            );
        }
        medical()
            .enable_channel_identification(true)
            .number_of_channels(2)
            .validate()
            .unwrap();
    }

    #[test]
    fn partial_results_stability_requires_stabilization() {
        refused(
            standard()
                .partial_results_stability(PartialResultsStability::Medium)
                .validate(),
            "partial-results-stability",
            "enable-partial-results-stabilization",
        );
        refused(
            call_analytics()
                .partial_results_stability(PartialResultsStability::High)
                .validate(),
            "partial-results-stability",
            "enable-partial-results-stabilization",
        );
    }

    #[test]
    fn content_identification_and_redaction_are_exclusive() {
        let requests: [StartRequest; 2] = [
            standard()
                .content_identification_type(ContentIdentificationType::Pii)
                .content_redaction_type(ContentRedactionType::Pii)
                .into(),
            call_analytics()
                .content_identification_type(ContentIdentificationType::Pii)
                .content_redaction_type(ContentRedactionType::Pii)
                .into(),
        ];
        for request in requests {
            refused(
                request.validate(),
                "content-redaction-type",
                "content-identification-type",
            );
        }
    }

    #[test]
    fn pii_entity_types_require_identification_or_redaction() {
        refused(
            standard().pii_entity_types(["NAME"]).validate(),
            "pii-entity-types",
            "needs",
        );
        standard()
            .content_identification_type(ContentIdentificationType::Pii)
            .pii_entity_types(["ALL"])
            .validate()
            .unwrap();
    }

    #[test]
    fn pii_entity_types_must_be_upper_case_names() {
        let base = standard().content_redaction_type(ContentRedactionType::Pii);
        refused(
            base.clone().pii_entity_types(["name"]).validate(),
            "pii-entity-types",
            "upper-case",
        );
        refused(
            base.clone().pii_entity_types(["NAME,SSN"]).validate(),
            "pii-entity-types",
            "upper-case",
        );
        let long: Vec<String> = (0..40).map(|_| "CREDIT_DEBIT_NUMBER".to_owned()).collect();
        refused(
            base.pii_entity_types(long).validate(),
            "pii-entity-types",
            "at most 300",
        );
    }

    #[test]
    fn session_id_must_be_a_uuid() {
        refused(
            standard().session_id("abc").validate(),
            "session-id",
            "UUID",
        );
        refused(medical().session_id("abc").validate(), "session-id", "UUID");
        refused(
            call_analytics().session_id("abc").validate(),
            "session-id",
            "UUID",
        );
    }

    #[test]
    fn session_resume_window_is_at_least_one() {
        refused(
            standard().session_resume_window(0).validate(),
            "session-resume-window",
            "at least 1",
        );
    }

    #[test]
    fn call_analytics_configuration_is_validated_with_the_request() {
        let bad =
            call_analytics().configuration(super::super::model::ConfigurationEvent::new(vec![
                ChannelDefinition::new(0, ParticipantRole::Agent),
            ]));
        refused(bad.validate(), "ChannelDefinitions", "2");
        let good = call_analytics().configuration(
            super::super::model::ConfigurationEvent::new(two_channels()).post_call_analytics(
                PostCallAnalyticsSettings::new(
                    "s3://bucket/prefix/",
                    "arn:aws:iam::123456789012:role/r",
                ),
            ),
        );
        good.validate().unwrap();
    }

    // --- query strings -----------------------------------------------------------------

    /// The query as the URL carries it (before percent-encoding).
    fn wire(query: Vec<(&'static str, String)>) -> String {
        let pairs: Vec<String> = query
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        pairs.join("&")
    }

    #[test]
    fn standard_query_uses_wire_names_and_forms() {
        let request = identify()
            .preferred_language("en-US")
            .enable_partial_results_stabilization(true)
            .partial_results_stability(PartialResultsStability::High)
            .show_speaker_label(false)
            .session_id(UUID);
        assert_eq!(
            wire(request.query()),
            format!(
                "sample-rate=16000&media-encoding=pcm&session-id={UUID}\
                 &enable-partial-results-stabilization=true&partial-results-stability=high\
                 &identify-language=true&language-options=en-US,es-US&preferred-language=en-US"
            )
        );
    }

    #[test]
    fn every_parameter_is_sent_in_api_order() {
        // Set in no particular order; sent in the order of each operation's API reference.
        let standard: StartRequest = StartStreamTranscription::new(MediaEncoding::Flac, 44_100)
            .transcript_format(TranscriptFormat::Written)
            .session_resume_window(30)
            .vocabulary_filter_names(["f1", "f2"])
            .vocabulary_names(["v1", "v2"])
            .identify_multiple_languages(true)
            .preferred_language("en-US")
            .language_options(["en-US", "es-US"])
            .identify_language(true)
            .language_model_name("lm")
            .pii_entity_types(["NAME", "SSN"])
            .content_redaction_type(ContentRedactionType::Pii)
            .content_identification_type(ContentIdentificationType::Pii)
            .partial_results_stability(PartialResultsStability::Low)
            .enable_partial_results_stabilization(true)
            .number_of_channels(2)
            .enable_channel_identification(true)
            .show_speaker_label(true)
            .vocabulary_filter_method(VocabularyFilterMethod::Mask)
            .vocabulary_filter_name("f")
            .session_id(UUID)
            .vocabulary_name("v")
            .language_code("en-US")
            .into();
        let medical: StartRequest = medical()
            .vocabulary_name("v")
            .show_speaker_label(true)
            .session_id(UUID)
            .content_identification_type(MedicalContentIdentificationType::Phi)
            .enable_channel_identification(true)
            .number_of_channels(2)
            .into();
        let call_analytics: StartRequest =
            StartCallAnalyticsStreamTranscription::new(MediaEncoding::Pcm, 8_000)
                .partial_results_stability(PartialResultsStability::Medium)
                .vocabulary_name("v")
                .preferred_language("en-US")
                .identify_language(true)
                .session_id(UUID)
                .vocabulary_filter_method(VocabularyFilterMethod::Tag)
                .enable_partial_results_stabilization(true)
                .vocabulary_filter_names(["f1", "f2"])
                .vocabulary_filter_name("f")
                .language_options(["en-US", "es-US"])
                .content_redaction_type(ContentRedactionType::Pii)
                .pii_entity_types(["ALL"])
                .language_code("en-US")
                .vocabulary_names(["v1", "v2"])
                .content_identification_type(ContentIdentificationType::Pii)
                .language_model_name("lm")
                .into();
        let expected = [
            (
                standard,
                format!(
                    "language-code=en-US&sample-rate=44100&media-encoding=flac&vocabulary-name=v\
                     &session-id={UUID}&vocabulary-filter-name=f&vocabulary-filter-method=mask\
                     &show-speaker-label=true&enable-channel-identification=true\
                     &number-of-channels=2&enable-partial-results-stabilization=true\
                     &partial-results-stability=low&content-identification-type=PII\
                     &content-redaction-type=PII&pii-entity-types=NAME,SSN&language-model-name=lm\
                     &identify-language=true&language-options=en-US,es-US&preferred-language=en-US\
                     &identify-multiple-languages=true&vocabulary-names=v1,v2\
                     &vocabulary-filter-names=f1,f2&session-resume-window=30&transcript-format=written"
                ),
            ),
            (
                medical,
                format!(
                    "language-code=en-US&sample-rate=16000&media-encoding=pcm&vocabulary-name=v\
                     &specialty=PRIMARYCARE&type=CONVERSATION&show-speaker-label=true\
                     &session-id={UUID}&enable-channel-identification=true&number-of-channels=2\
                     &content-identification-type=PHI"
                ),
            ),
            (
                call_analytics,
                format!(
                    "language-code=en-US&sample-rate=8000&media-encoding=pcm&vocabulary-name=v\
                     &session-id={UUID}&vocabulary-filter-name=f&vocabulary-filter-method=tag\
                     &language-model-name=lm&identify-language=true&language-options=en-US,es-US\
                     &preferred-language=en-US&vocabulary-names=v1,v2&vocabulary-filter-names=f1,f2\
                     &enable-partial-results-stabilization=true&partial-results-stability=medium\
                     &content-identification-type=PII&content-redaction-type=PII&pii-entity-types=ALL"
                ),
            ),
        ];
        for (request, query) in expected {
            assert_eq!(wire(request.query()), query, "{:?}", request.kind());
        }
    }

    #[test]
    fn medical_query_has_specialty_and_type() {
        let request = medical()
            .content_identification_type(MedicalContentIdentificationType::Phi)
            .enable_channel_identification(true)
            .number_of_channels(2);
        assert_eq!(
            wire(request.query()),
            "language-code=en-US&sample-rate=16000&media-encoding=pcm&specialty=PRIMARYCARE\
             &type=CONVERSATION&enable-channel-identification=true&number-of-channels=2\
             &content-identification-type=PHI"
        );
    }

    #[test]
    fn call_analytics_query_and_paths() {
        let q = call_analytics()
            .content_redaction_type(ContentRedactionType::Pii)
            .pii_entity_types(["NAME", "SSN"])
            .query();
        assert!(q.contains(&("pii-entity-types", "NAME,SSN".to_owned())));
        assert!(q.contains(&("content-redaction-type", "PII".to_owned())));
        let request: StartRequest = call_analytics().into();
        assert_eq!(
            request.path(),
            "/call-analytics-stream-transcription-websocket"
        );
        assert_eq!(
            StartRequest::from(standard()).path(),
            "/stream-transcription-websocket"
        );
        assert_eq!(
            StartRequest::from(medical()).path(),
            "/medical-stream-transcription-websocket"
        );
        assert_eq!(request.media_encoding(), MediaEncoding::Pcm);
        assert_eq!(request.sample_rate(), 8_000);
    }

    #[test]
    fn session_id_is_generated_only_when_absent() {
        let mut request: StartRequest = standard().into();
        assert_eq!(request.session_id(), None);
        assert_eq!(request.ensure_session_id(|| UUID.to_owned()), UUID);
        assert!(request.query().contains(&("session-id", UUID.to_owned())));
        let mut given: StartRequest = standard()
            .session_id("11111111-2222-4333-8444-555555555555")
            .into();
        assert_eq!(
            given.ensure_session_id(|| UUID.to_owned()),
            "11111111-2222-4333-8444-555555555555"
        );
    }

    #[test]
    fn wire_enums_print_their_wire_form() {
        assert_eq!(MediaEncoding::OggOpus.to_string(), "ogg-opus");
        assert_eq!(MediaEncoding::Flac.as_str(), "flac");
        assert_eq!(VocabularyFilterMethod::Remove.as_str(), "remove");
        assert_eq!(PartialResultsStability::Medium.as_str(), "medium");
        assert_eq!(ContentIdentificationType::Pii.as_str(), "PII");
        assert_eq!(Specialty::Oncology.as_str(), "ONCOLOGY");
        assert_eq!(Specialty::Radiology.as_str(), "RADIOLOGY");
        assert_eq!(Specialty::Neurology.as_str(), "NEUROLOGY");
        assert_eq!(MedicalType::Dictation.as_str(), "DICTATION");
        assert_eq!(TranscriptFormat::Spoken.as_str(), "spoken");
    }
}
