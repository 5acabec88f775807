//! Transcribe events, both directions, as serde models over [`Message`]s (sans-IO).
//!
//! Outgoing: [`audio_event`] (raw audio bytes, not JSON) and [`ConfigurationEvent`] (JSON,
//! Call Analytics). Incoming: [`TranscribeEvent::from_message`] turns a server message into a
//! [`TranscriptEvent`] (standard and medical), [`UtteranceEvent`] or [`CategoryEvent`]
//! (Call Analytics), keeps unknown event types as [`TranscribeEvent::Unknown`], and reports
//! exception messages as [`EventError::Exception`].
//!
//! Field names are AWS's JSON names; every field is optional on input (missing ones take their
//! default) and unknown fields are ignored, so new service fields never break decoding.
//!
//! ```
//! use sigv4_ws::services::transcribe::model::{audio_event, TranscribeEvent};
//! use sigv4_ws::proto::codec::{HeaderValue, Message, EVENT_TYPE, MESSAGE_TYPE};
//!
//! let out = audio_event(vec![0u8; 3_200]);
//! assert_eq!(out.header_str(EVENT_TYPE), Some("AudioEvent"));
//!
//! let json = r#"{"Transcript":{"Results":[{"ResultId":"r1","IsPartial":false,
//!     "Alternatives":[{"Transcript":"hello"}]}]}}"#;
//! let incoming = Message::new(json.as_bytes().to_vec())
//!     .with_header(EVENT_TYPE, HeaderValue::from("TranscriptEvent"))
//!     .with_header(MESSAGE_TYPE, HeaderValue::from("event"));
//! match TranscribeEvent::from_message(&incoming)? {
//!     TranscribeEvent::Transcript(event) => {
//!         assert_eq!(event.transcript.results[0].alternatives[0].transcript.as_deref(), Some("hello"));
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok::<(), sigv4_ws::services::transcribe::model::EventError>(())
//! ```

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::proto::codec::{HeaderValue, Message, CONTENT_TYPE, EVENT_TYPE, MESSAGE_TYPE};
pub use crate::services::EventError;
use crate::services::{event_type, parse_event as parse, ValidationError};

/// `:event-type` of audio.
pub const AUDIO_EVENT: &str = "AudioEvent";
/// `:event-type` of the Call Analytics configuration.
pub const CONFIGURATION_EVENT: &str = "ConfigurationEvent";
/// `:event-type` of transcripts (standard and medical).
pub const TRANSCRIPT_EVENT: &str = "TranscriptEvent";
/// `:event-type` of Call Analytics utterances.
pub const UTTERANCE_EVENT: &str = "UtteranceEvent";
/// `:event-type` of Call Analytics category matches.
pub const CATEGORY_EVENT: &str = "CategoryEvent";

/// An `AudioEvent`: headers `:event-type` `AudioEvent`, `:message-type` `event`,
/// `:content-type` `application/octet-stream` (the JavaScript SDK's order); the payload is the
/// audio bytes themselves. An empty payload is the end-of-stream marker.
pub fn audio_event(chunk: impl Into<Bytes>) -> Message {
    event_message(AUDIO_EVENT, "application/octet-stream", chunk.into())
}

fn event_message(event_type: &str, content_type: &str, payload: Bytes) -> Message {
    Message::new(payload)
        .with_header(EVENT_TYPE, HeaderValue::from(event_type))
        .with_header(MESSAGE_TYPE, HeaderValue::from("event"))
        .with_header(CONTENT_TYPE, HeaderValue::from(content_type))
}

open_enum! {
    /// `ParticipantRole` of a Call Analytics channel or utterance.
    ParticipantRole {
        /// The agent.
        Agent => "AGENT",
        /// The customer.
        Customer => "CUSTOMER",
    }
}

open_enum! {
    /// `Type` of an item.
    ItemType {
        /// A word.
        Pronunciation => "pronunciation",
        /// A punctuation mark.
        Punctuation => "punctuation",
    }
}

open_enum! {
    /// `Sentiment` of a Call Analytics utterance.
    Sentiment {
        /// Positive.
        Positive => "POSITIVE",
        /// Negative.
        Negative => "NEGATIVE",
        /// Mixed.
        Mixed => "MIXED",
        /// Neutral.
        Neutral => "NEUTRAL",
    }
}

open_enum! {
    /// `ContentRedactionOutput` of post-call analytics.
    ContentRedactionOutput {
        /// Only the redacted transcript.
        Redacted => "redacted",
        /// Both transcripts.
        RedactedAndUnredacted => "redacted_and_unredacted",
    }
}

// ---------------------------------------------------------------------------------------
// Outgoing: ConfigurationEvent
// ---------------------------------------------------------------------------------------

/// Which participant is on which channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChannelDefinition {
    /// The channel, 0 or 1.
    pub channel_id: u32,
    /// Who speaks on it.
    pub participant_role: ParticipantRole,
}

impl ChannelDefinition {
    /// Channel `channel_id` carries `role`.
    pub fn new(channel_id: u32, role: ParticipantRole) -> Self {
        ChannelDefinition {
            channel_id,
            participant_role: role,
        }
    }
}

/// Where and how post-call analytics are written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PostCallAnalyticsSettings {
    /// `s3://bucket/prefix/` for the output.
    pub output_location: String,
    /// ARN of the IAM role Transcribe assumes to write it.
    pub data_access_role_arn: String,
    /// Redacted output only, or both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_redaction_output: Option<ContentRedactionOutput>,
    /// KMS key for the output.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "OutputEncryptionKMSKeyId"
    )]
    pub output_encryption_kms_key_id: Option<String>,
}

impl PostCallAnalyticsSettings {
    /// Output to `output_location` (`s3://…`) using the role `data_access_role_arn`.
    pub fn new(
        output_location: impl Into<String>,
        data_access_role_arn: impl Into<String>,
    ) -> Self {
        PostCallAnalyticsSettings {
            output_location: output_location.into(),
            data_access_role_arn: data_access_role_arn.into(),
            content_redaction_output: None,
            output_encryption_kms_key_id: None,
        }
    }
}

/// The Call Analytics `ConfigurationEvent`: channel roles and post-call analytics. When used it
/// must be the first event of the stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigurationEvent {
    /// Exactly two definitions, channels 0 and 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channel_definitions: Vec<ChannelDefinition>,
    /// Post-call analytics, if wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_call_analytics_settings: Option<PostCallAnalyticsSettings>,
}

impl ConfigurationEvent {
    /// A configuration with these channel definitions.
    pub fn new(channel_definitions: Vec<ChannelDefinition>) -> Self {
        ConfigurationEvent {
            channel_definitions,
            post_call_analytics_settings: None,
        }
    }

    /// Adds post-call analytics settings.
    pub fn post_call_analytics(mut self, settings: PostCallAnalyticsSettings) -> Self {
        self.post_call_analytics_settings = Some(settings);
        self
    }

    /// Checks the event: two channel definitions for channels 0 and 1 (when any are given),
    /// an `s3://` output location and an IAM role ARN (when post-call analytics are set).
    pub fn validate(&self) -> Result<(), ValidationError> {
        let defs = &self.channel_definitions;
        if !defs.is_empty() {
            if defs.len() != 2 {
                return Err(ValidationError::new(
                    "ChannelDefinitions",
                    format!(
                        "{} definitions given; give exactly 2, for channels 0 and 1",
                        defs.len()
                    ),
                ));
            }
            if let Some(bad) = defs.iter().find(|d| d.channel_id > 1) {
                return Err(ValidationError::new(
                    "ChannelDefinitions",
                    format!(
                        "channel {} does not exist; channels are 0 and 1",
                        bad.channel_id
                    ),
                ));
            }
            if defs[0].channel_id == defs[1].channel_id {
                return Err(ValidationError::new(
                    "ChannelDefinitions",
                    format!(
                        "channel {} is defined twice; define channels 0 and 1",
                        defs[0].channel_id
                    ),
                ));
            }
        }
        if let Some(settings) = &self.post_call_analytics_settings {
            if !settings.output_location.starts_with("s3://") || settings.output_location.len() <= 5
            {
                return Err(ValidationError::new(
                    "OutputLocation",
                    "must be an S3 URI such as s3://bucket/prefix/",
                ));
            }
            if !settings.data_access_role_arn.starts_with("arn:")
                || !settings.data_access_role_arn.contains(":role/")
            {
                return Err(ValidationError::new(
                    "DataAccessRoleArn",
                    "must be an IAM role ARN such as arn:aws:iam::123456789012:role/name",
                ));
            }
        }
        Ok(())
    }

    /// The event as a message: headers `ConfigurationEvent` / `event` / `application/json`,
    /// JSON payload.
    pub fn to_message(&self) -> Message {
        // Serializing plain structs of strings and integers to JSON cannot fail.
        let payload = serde_json::to_vec(self).unwrap_or_default();
        event_message(
            CONFIGURATION_EVENT,
            "application/json",
            Bytes::from(payload),
        )
    }
}

// ---------------------------------------------------------------------------------------
// Incoming: TranscriptEvent (standard and medical)
// ---------------------------------------------------------------------------------------

/// A `TranscriptEvent`: `{"Transcript":{"Results":[...]}}`. Medical transcription uses the same
/// event with fewer fields (no `Stable`, `LanguageCode`, `VocabularyFilterMatch`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TranscriptEvent {
    /// The transcript.
    pub transcript: Transcript,
}

/// The results of a [`TranscriptEvent`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Transcript {
    /// One or more results (segments).
    pub results: Vec<TranscriptResult>,
}

/// One result (segment) of a transcript, partial or final.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TranscriptResult {
    /// Identifies the segment; partial results of one segment share it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_id: Option<String>,
    /// Start, in seconds from the start of the stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<f64>,
    /// End, in seconds from the start of the stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    /// Whether more results for this segment will follow.
    pub is_partial: bool,
    /// Possible transcriptions, best first.
    pub alternatives: Vec<Alternative>,
    /// The channel (`ch_0`, `ch_1`) with channel identification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    /// The language, with language identification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
    /// Scores of the candidate languages, with language identification.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub language_identification: Vec<LanguageWithScore>,
}

/// One possible transcription of a result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Alternative {
    /// The text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
    /// Words and punctuation with timings.
    pub items: Vec<Item>,
    /// Identified entities (PII, or medical PHI).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<Entity>,
}

/// A word or punctuation mark.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Item {
    /// Start, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<f64>,
    /// End, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    /// Word or punctuation.
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub item_type: Option<ItemType>,
    /// The text of the item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Whether it matched the vocabulary filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vocabulary_filter_match: Option<bool>,
    /// Speaker label (`spk_0`, …) with speaker labelling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    /// Confidence, 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// With partial-results stabilization: whether this item will no longer change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable: Option<bool>,
}

/// An identified entity (PII, or PHI for medical).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Entity {
    /// Start, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<f64>,
    /// End, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    /// Category (`PII`, `PHI`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Entity type (`NAME`, `SSN`, …).
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    /// The text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Confidence, 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

/// A language and its score.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LanguageWithScore {
    /// The language code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
    /// Its score, 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

// ---------------------------------------------------------------------------------------
// Incoming: Call Analytics
// ---------------------------------------------------------------------------------------

/// A Call Analytics `UtteranceEvent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UtteranceEvent {
    /// Identifies the utterance; partial results of one utterance share it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utterance_id: Option<String>,
    /// Whether more results for this utterance will follow.
    pub is_partial: bool,
    /// Who spoke.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant_role: Option<ParticipantRole>,
    /// Start, in milliseconds from the start of the stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub begin_offset_millis: Option<i64>,
    /// End, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_offset_millis: Option<i64>,
    /// The text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
    /// Words and punctuation.
    pub items: Vec<CallAnalyticsItem>,
    /// Identified entities.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<CallAnalyticsEntity>,
    /// Sentiment (final utterances).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<Sentiment>,
    /// Issues detected in the utterance.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub issues_detected: Vec<IssueDetected>,
    /// The language, with language identification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
    /// Scores of the candidate languages.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub language_identification: Vec<LanguageWithScore>,
}

/// A word or punctuation mark of a Call Analytics utterance (offsets in milliseconds).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CallAnalyticsItem {
    /// Start, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub begin_offset_millis: Option<i64>,
    /// End, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_offset_millis: Option<i64>,
    /// Word or punctuation.
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub item_type: Option<ItemType>,
    /// The text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Confidence, 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Whether it matched the vocabulary filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vocabulary_filter_match: Option<bool>,
    /// Whether this item will no longer change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable: Option<bool>,
}

/// An entity of a Call Analytics utterance (offsets in milliseconds).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CallAnalyticsEntity {
    /// Start, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub begin_offset_millis: Option<i64>,
    /// End, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_offset_millis: Option<i64>,
    /// Category (`PII`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Entity type.
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    /// The text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Confidence, 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

/// An issue detected in an utterance: where it is in the transcript text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IssueDetected {
    /// Character offsets in the utterance's transcript.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub character_offsets: Option<CharacterOffsets>,
}

/// Character offsets into a transcript.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CharacterOffsets {
    /// First character.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub begin: Option<i64>,
    /// One past the last character.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
}

/// A Call Analytics `CategoryEvent`: categories whose rules matched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CategoryEvent {
    /// Names of the matched categories.
    pub matched_categories: Vec<String>,
    /// Per matched phrase, where it matched.
    pub matched_details: BTreeMap<String, PointsOfInterest>,
}

/// Where a category matched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PointsOfInterest {
    /// The time ranges.
    pub timestamp_ranges: Vec<TimestampRange>,
}

/// A time range in milliseconds from the start of the stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TimestampRange {
    /// Start, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub begin_offset_millis: Option<i64>,
    /// End, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_offset_millis: Option<i64>,
}

// ---------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------

/// An event from Transcribe.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum TranscribeEvent {
    /// Transcription results (standard and medical).
    Transcript(TranscriptEvent),
    /// A Call Analytics utterance.
    Utterance(UtteranceEvent),
    /// Call Analytics category matches.
    Category(CategoryEvent),
    /// An event type this version does not know, kept as is.
    Unknown {
        /// Its `:event-type`.
        event_type: String,
        /// Its payload.
        payload: Bytes,
    },
}

impl TranscribeEvent {
    /// Decodes a server message.
    pub fn from_message(message: &Message) -> Result<TranscribeEvent, EventError> {
        let event_type = event_type(message)?;
        let payload = message.payload();
        Ok(match event_type {
            TRANSCRIPT_EVENT => TranscribeEvent::Transcript(parse(event_type, payload)?),
            UTTERANCE_EVENT => TranscribeEvent::Utterance(parse(event_type, payload)?),
            CATEGORY_EVENT => TranscribeEvent::Category(parse(event_type, payload)?),
            other => TranscribeEvent::Unknown {
                event_type: other.to_owned(),
                payload: payload.clone(),
            },
        })
    }

    /// The event as a server message (for emulators and tests). `Unknown` keeps its payload.
    pub fn to_message(&self) -> Message {
        let (event_type, json) = match self {
            TranscribeEvent::Transcript(e) => (TRANSCRIPT_EVENT, serde_json::to_vec(e)),
            TranscribeEvent::Utterance(e) => (UTTERANCE_EVENT, serde_json::to_vec(e)),
            TranscribeEvent::Category(e) => (CATEGORY_EVENT, serde_json::to_vec(e)),
            TranscribeEvent::Unknown {
                event_type,
                payload,
            } => return event_message(event_type, "application/json", payload.clone()),
        };
        // Non-finite floats are the only way these models fail to serialize; they become null.
        event_message(
            event_type,
            "application/json",
            Bytes::from(json.unwrap_or_default()),
        )
    }

    /// Whether this is a final (non-partial) result: a transcript with results, all final (the
    /// service also sends transcripts with no results at all), a final utterance, or a
    /// category event.
    pub fn is_final(&self) -> bool {
        match self {
            TranscribeEvent::Transcript(e) => {
                !e.transcript.results.is_empty()
                    && e.transcript.results.iter().all(|r| !r.is_partial)
            }
            TranscribeEvent::Utterance(e) => !e.is_partial,
            TranscribeEvent::Category(_) => true,
            TranscribeEvent::Unknown { .. } => false,
        }
    }
}

impl TranscriptEvent {
    /// The best transcript of each final result, in order.
    pub fn final_transcripts(&self) -> impl Iterator<Item = &str> + '_ {
        self.transcript
            .results
            .iter()
            .filter(|r| !r.is_partial)
            .filter_map(|r| r.alternatives.first()?.transcript.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::codec::{ERROR_CODE, ERROR_MESSAGE, EXCEPTION_TYPE};

    const STANDARD: &str = r#"{
      "Transcript": {
        "Results": [{
          "ResultId": "b3a6f4d2-0c1e-4f7a-9b8d-2e5c7a1f3d90",
          "StartTime": 0.12,
          "EndTime": 1.85,
          "IsPartial": false,
          "ChannelId": "ch_0",
          "LanguageCode": "en-US",
          "LanguageIdentification": [
            {"LanguageCode": "en-US", "Score": 0.93},
            {"LanguageCode": "es-US", "Score": 0.07}
          ],
          "Alternatives": [{
            "Transcript": "Hello, John.",
            "Items": [
              {"StartTime": 0.12, "EndTime": 0.6, "Type": "pronunciation", "Content": "Hello",
               "VocabularyFilterMatch": false, "Speaker": "spk_0", "Confidence": 0.99, "Stable": true},
              {"StartTime": 0.6, "EndTime": 0.6, "Type": "punctuation", "Content": ",",
               "VocabularyFilterMatch": false, "Speaker": "spk_0", "Confidence": 0.0, "Stable": true},
              {"StartTime": 0.7, "EndTime": 1.8, "Type": "pronunciation", "Content": "John",
               "VocabularyFilterMatch": false, "Speaker": "spk_0", "Confidence": 0.97, "Stable": false}
            ],
            "Entities": [
              {"StartTime": 0.7, "EndTime": 1.8, "Category": "PII", "Type": "NAME", "Content": "John", "Confidence": 0.91}
            ]
          }]
        }]
      }
    }"#;

    const MEDICAL: &str = r#"{
      "Transcript": {
        "Results": [{
          "ResultId": "m-1", "StartTime": 3.0, "EndTime": 4.5, "IsPartial": true, "ChannelId": "ch_1",
          "Alternatives": [{
            "Transcript": "take aspirin",
            "Items": [
              {"StartTime": 3.0, "EndTime": 3.4, "Type": "pronunciation", "Content": "take", "Confidence": 0.8, "Speaker": "0"},
              {"StartTime": 3.5, "EndTime": 4.5, "Type": "pronunciation", "Content": "aspirin", "Confidence": 0.95, "Speaker": "0"}
            ],
            "Entities": [
              {"StartTime": 3.5, "EndTime": 4.5, "Category": "PHI", "Content": "aspirin", "Confidence": 0.7}
            ]
          }]
        }]
      }
    }"#;

    const UTTERANCE: &str = r#"{
      "UtteranceId": "u-42", "IsPartial": false, "ParticipantRole": "CUSTOMER",
      "BeginOffsetMillis": 1200, "EndOffsetMillis": 3400,
      "Transcript": "I am not happy.",
      "Items": [
        {"BeginOffsetMillis": 1200, "EndOffsetMillis": 1300, "Type": "pronunciation", "Content": "I",
         "Confidence": 0.99, "VocabularyFilterMatch": false, "Stable": true}
      ],
      "Entities": [
        {"BeginOffsetMillis": 1200, "EndOffsetMillis": 1300, "Category": "PII", "Type": "NAME", "Content": "I", "Confidence": 0.5}
      ],
      "Sentiment": "NEGATIVE",
      "IssuesDetected": [{"CharacterOffsets": {"Begin": 0, "End": 15}}],
      "LanguageCode": "en-US",
      "LanguageIdentification": [{"LanguageCode": "en-US", "Score": 1.0}]
    }"#;

    const CATEGORY: &str = r#"{
      "MatchedCategories": ["unhappy-customer"],
      "MatchedDetails": {
        "not happy": {"TimestampRanges": [{"BeginOffsetMillis": 1200, "EndOffsetMillis": 3400}]}
      }
    }"#;

    fn server_event(event_type: &str, json: &str) -> Message {
        Message::new(json.as_bytes().to_vec())
            .with_header(EVENT_TYPE, HeaderValue::from(event_type))
            .with_header(CONTENT_TYPE, HeaderValue::from("application/json"))
            .with_header(MESSAGE_TYPE, HeaderValue::from("event"))
    }

    fn round_trip<T>(json: &str)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
    {
        let parsed: T = serde_json::from_str(json).unwrap();
        let again: serde_json::Value = serde_json::to_value(&parsed).unwrap();
        let original: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(again, original, "serializing loses or invents fields");
        let back: T = serde_json::from_value(again).unwrap();
        assert_eq!(back, parsed);
    }

    #[test]
    fn standard_transcript_round_trips() {
        round_trip::<TranscriptEvent>(STANDARD);
        let event: TranscriptEvent = serde_json::from_str(STANDARD).unwrap();
        let result = &event.transcript.results[0];
        assert_eq!(result.channel_id.as_deref(), Some("ch_0"));
        assert!(!result.is_partial);
        assert_eq!(result.language_identification[1].score, Some(0.07));
        let items = &result.alternatives[0].items;
        assert_eq!(items[1].item_type, Some(ItemType::Punctuation));
        assert_eq!(items[2].stable, Some(false));
        assert_eq!(
            result.alternatives[0].entities[0].entity_type.as_deref(),
            Some("NAME")
        );
        assert_eq!(
            event.final_transcripts().collect::<Vec<_>>(),
            vec!["Hello, John."]
        );
    }

    #[test]
    fn medical_transcript_round_trips() {
        round_trip::<TranscriptEvent>(MEDICAL);
        let event: TranscriptEvent = serde_json::from_str(MEDICAL).unwrap();
        let result = &event.transcript.results[0];
        assert!(result.is_partial);
        assert_eq!(result.language_code, None);
        assert_eq!(result.alternatives[0].items[0].stable, None);
        assert_eq!(
            result.alternatives[0].entities[0].category.as_deref(),
            Some("PHI")
        );
        assert_eq!(event.final_transcripts().count(), 0);
    }

    #[test]
    fn utterance_round_trips() {
        round_trip::<UtteranceEvent>(UTTERANCE);
        let u: UtteranceEvent = serde_json::from_str(UTTERANCE).unwrap();
        assert_eq!(u.participant_role, Some(ParticipantRole::Customer));
        assert_eq!(u.sentiment, Some(Sentiment::Negative));
        assert_eq!(
            u.issues_detected[0]
                .character_offsets
                .as_ref()
                .and_then(|c| c.end),
            Some(15)
        );
        assert_eq!(u.items[0].begin_offset_millis, Some(1200));
    }

    #[test]
    fn category_round_trips() {
        round_trip::<CategoryEvent>(CATEGORY);
        let c: CategoryEvent = serde_json::from_str(CATEGORY).unwrap();
        assert_eq!(
            c.matched_details["not happy"].timestamp_ranges[0].end_offset_millis,
            Some(3400)
        );
    }

    #[test]
    fn configuration_round_trips() {
        let json = r#"{"ChannelDefinitions":[{"ChannelId":0,"ParticipantRole":"AGENT"},{"ChannelId":1,"ParticipantRole":"CUSTOMER"}],
            "PostCallAnalyticsSettings":{"OutputLocation":"s3://b/p/","DataAccessRoleArn":"arn:aws:iam::1:role/r",
            "ContentRedactionOutput":"redacted_and_unredacted","OutputEncryptionKMSKeyId":"k"}}"#;
        round_trip::<ConfigurationEvent>(json);
        let c: ConfigurationEvent = serde_json::from_str(json).unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.post_call_analytics_settings
                .as_ref()
                .and_then(|s| s.content_redaction_output.clone()),
            Some(ContentRedactionOutput::RedactedAndUnredacted)
        );
        let m = c.to_message();
        assert_eq!(m.header_str(EVENT_TYPE), Some("ConfigurationEvent"));
        assert_eq!(m.header_str(MESSAGE_TYPE), Some("event"));
        assert_eq!(m.header_str(CONTENT_TYPE), Some("application/json"));
        let back: ConfigurationEvent = serde_json::from_slice(m.payload()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn missing_and_unknown_fields_are_tolerated() {
        let event: TranscriptEvent = serde_json::from_str(
            r#"{"Transcript":{"Results":[{"NewField":1,"Alternatives":[{}]}]},"Extra":true}"#,
        )
        .unwrap();
        assert_eq!(event.transcript.results[0].result_id, None);
        assert!(!event.transcript.results[0].is_partial);
        let empty: TranscriptEvent = serde_json::from_str("{}").unwrap();
        assert!(empty.transcript.results.is_empty());
        let odd: UtteranceEvent = serde_json::from_str(r#"{"ParticipantRole":"SUPERVISOR","Sentiment":"CONFUSED","Items":[{"Type":"filler"}]}"#).unwrap();
        assert_eq!(
            odd.participant_role,
            Some(ParticipantRole::Other("SUPERVISOR".into()))
        );
        assert_eq!(
            odd.sentiment.as_ref().map(Sentiment::as_str),
            Some("CONFUSED")
        );
        assert_eq!(
            odd.items[0].item_type,
            Some(ItemType::Other("filler".into()))
        );
    }

    #[test]
    fn audio_events_carry_raw_bytes_and_the_three_headers() {
        let m = audio_event(vec![1u8, 2, 3]);
        let names: Vec<&str> = m.headers().iter().map(|h| h.name()).collect();
        assert_eq!(names, vec![":event-type", ":message-type", ":content-type"]);
        assert_eq!(m.header_str(EVENT_TYPE), Some("AudioEvent"));
        assert_eq!(m.header_str(MESSAGE_TYPE), Some("event"));
        assert_eq!(m.header_str(CONTENT_TYPE), Some("application/octet-stream"));
        assert_eq!(m.payload().as_ref(), &[1, 2, 3]);
        assert!(audio_event(Bytes::new()).payload().is_empty());
    }

    #[test]
    fn messages_decode_to_typed_events() {
        let t = TranscribeEvent::from_message(&server_event("TranscriptEvent", STANDARD)).unwrap();
        assert!(matches!(&t, TranscribeEvent::Transcript(_)));
        assert!(t.is_final());
        let u = TranscribeEvent::from_message(&server_event("UtteranceEvent", UTTERANCE)).unwrap();
        assert!(
            matches!(&u, TranscribeEvent::Utterance(e) if e.utterance_id.as_deref() == Some("u-42"))
        );
        let c = TranscribeEvent::from_message(&server_event("CategoryEvent", CATEGORY)).unwrap();
        assert!(
            matches!(&c, TranscribeEvent::Category(e) if e.matched_categories == ["unhappy-customer"])
        );
        let m = TranscribeEvent::from_message(&server_event("TranscriptEvent", MEDICAL)).unwrap();
        assert!(!m.is_final());
        let empty = TranscribeEvent::from_message(&server_event(
            "TranscriptEvent",
            r#"{"Transcript":{"Results":[]}}"#,
        ))
        .unwrap();
        assert!(
            !empty.is_final(),
            "an empty transcript is not a final result"
        );
        for event in [t, u, c, m] {
            assert_eq!(
                TranscribeEvent::from_message(&event.to_message()).unwrap(),
                event
            );
        }
    }

    #[test]
    fn unknown_event_types_are_kept() {
        let e = TranscribeEvent::from_message(&server_event("FutureEvent", r#"{"x":1}"#)).unwrap();
        match &e {
            TranscribeEvent::Unknown {
                event_type,
                payload,
            } => {
                assert_eq!(event_type, "FutureEvent");
                assert_eq!(payload.as_ref(), br#"{"x":1}"#);
            }
            other => panic!("{other:?}"),
        }
        assert!(!e.is_final());
        assert_eq!(TranscribeEvent::from_message(&e.to_message()).unwrap(), e);
    }

    #[test]
    fn malformed_events_are_errors_not_panics() {
        let bad = TranscribeEvent::from_message(&server_event("TranscriptEvent", "{not json"))
            .unwrap_err();
        assert!(
            matches!(&bad, EventError::Malformed { event_type, .. } if event_type == "TranscriptEvent")
        );
        assert!(bad.to_string().contains("TranscriptEvent"));
        let wrong_type = TranscribeEvent::from_message(&server_event(
            "UtteranceEvent",
            r#"{"IsPartial":"yes"}"#,
        ))
        .unwrap_err();
        assert!(matches!(wrong_type, EventError::Malformed { .. }));
        let no_type =
            Message::new(&b"{}"[..]).with_header(MESSAGE_TYPE, HeaderValue::from("event"));
        assert!(matches!(
            TranscribeEvent::from_message(&no_type),
            Err(EventError::Malformed { event_type, .. }) if event_type.is_empty()
        ));
    }

    #[test]
    fn exceptions_are_reported_with_type_and_message() {
        let m = Message::new(&br#"{"Message":"Your request timed out because no new audio was received for 15 seconds."}"#[..])
            .with_header(EXCEPTION_TYPE, HeaderValue::from("BadRequestException"))
            .with_header(MESSAGE_TYPE, HeaderValue::from("exception"));
        let e = TranscribeEvent::from_message(&m).unwrap_err();
        assert_eq!(
            e,
            EventError::Exception {
                exception_type: "BadRequestException".into(),
                message: "Your request timed out because no new audio was received for 15 seconds."
                    .into()
            }
        );
        let err = Message::new(Bytes::new())
            .with_header(MESSAGE_TYPE, HeaderValue::from("error"))
            .with_header(ERROR_CODE, HeaderValue::from("InternalError"))
            .with_header(ERROR_MESSAGE, HeaderValue::from("boom"));
        assert_eq!(
            TranscribeEvent::from_message(&err).unwrap_err(),
            EventError::Exception {
                exception_type: "InternalError".into(),
                message: "boom".into()
            }
        );
    }

    #[test]
    fn configuration_validation_rules() {
        let agent = ChannelDefinition::new(0, ParticipantRole::Agent);
        let customer = ChannelDefinition::new(1, ParticipantRole::Customer);
        ConfigurationEvent::default().validate().unwrap();
        let one = ConfigurationEvent::new(vec![agent.clone()])
            .validate()
            .unwrap_err();
        assert_eq!(one.field, "ChannelDefinitions");
        let three = ConfigurationEvent::new(vec![agent.clone(), customer.clone(), agent.clone()])
            .validate()
            .unwrap_err();
        assert!(three.reason.contains("3 definitions"));
        let channel_two = ConfigurationEvent::new(vec![
            agent.clone(),
            ChannelDefinition::new(2, ParticipantRole::Customer),
        ])
        .validate()
        .unwrap_err();
        assert!(channel_two.reason.contains("channel 2"));
        let twice = ConfigurationEvent::new(vec![
            agent.clone(),
            ChannelDefinition::new(0, ParticipantRole::Customer),
        ])
        .validate()
        .unwrap_err();
        assert!(twice.reason.contains("twice"));
        let bad_location = ConfigurationEvent::new(vec![agent.clone(), customer.clone()])
            .post_call_analytics(PostCallAnalyticsSettings::new(
                "https://b/",
                "arn:aws:iam::1:role/r",
            ))
            .validate()
            .unwrap_err();
        assert_eq!(bad_location.field, "OutputLocation");
        let bad_role = ConfigurationEvent::new(vec![agent, customer])
            .post_call_analytics(PostCallAnalyticsSettings::new("s3://b/", "my-role"))
            .validate()
            .unwrap_err();
        assert_eq!(bad_role.field, "DataAccessRoleArn");
    }
}
