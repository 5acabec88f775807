//! The command line: `transcribe FILE`, `liveness FILE`, `serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::audio::Encoding;

/// The example credentials AWS documents (accepted by `serve` unless told otherwise).
pub const EXAMPLE_ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
pub const EXAMPLE_SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

#[derive(Debug, Parser)]
#[command(
    name = "stream_file",
    version,
    about = "Stream an audio file to Amazon Transcribe Streaming, or a video file to Rekognition Face Liveness, \
             over a SigV4-presigned WebSocket (or to a local emulator of both).",
    after_help = "Against AWS, credentials come from the standard chain: environment, profile, SSO, web identity, \
                  container, instance.\n\
                  Exit codes: 0 done, 1 service, signature or connection error, 2 bad usage or unreadable input, \
                  130 interrupted (Ctrl-C; the stream is ended cleanly first).\n\n\
                  Example: stream_file transcribe --emulator fixtures/audio/hello.wav"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Transcribe an audio file (WAV, FLAC, Ogg Vorbis, MP3; FLAC and Ogg Opus also as they are).
    Transcribe(TranscribeArgs),
    /// Run a Face Liveness session with a video file (WebM).
    Liveness(LivenessArgs),
    /// Run the emulator of both services as a standalone server until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
}

/// Where to connect, as whom, and on which clock (shared by `transcribe` and `liveness`).
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// AWS region.
    #[arg(long, default_value = "us-east-1", value_name = "REGION")]
    pub region: String,

    /// Endpoint URL instead of the regional AWS one (wss:// or https://; ws:// or http:// only to a loopback
    /// address such as a local `serve`).
    #[arg(long, value_name = "URL", conflicts_with = "emulator")]
    pub endpoint: Option<String>,

    /// Starting offset of this host's clock in milliseconds, added to the system time (like the JS SDK's
    /// systemClockOffset); the server's answers correct it.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub clock_offset_ms: i64,

    /// Start an emulator of the service in this process and stream to it with its credentials.
    #[arg(long)]
    pub emulator: bool,

    /// The in-process emulator's clock relative to this host's, in milliseconds (with --emulator).
    #[arg(
        long,
        value_name = "MS",
        allow_negative_numbers = true,
        requires = "emulator"
    )]
    pub emulator_clock_offset_ms: Option<i64>,

    /// The secret the in-process emulator accepts (with --emulator; default: the one this client signs with).
    /// A different one shows how a signature mismatch is diagnosed.
    #[arg(
        long,
        value_name = "KEY",
        requires = "emulator",
        hide_default_value = true
    )]
    pub emulator_secret_access_key: Option<String>,

    /// Send as fast as the server takes instead of in real time (for emulators and short clips).
    #[arg(long)]
    pub fast: bool,

    /// Print one JSON object per line on stdout for every event, and no progress bar.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TranscribeArgs {
    /// The audio file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    #[command(flatten)]
    pub connect: ConnectArgs,

    /// Language of the audio (default en-US unless --identify-language).
    #[arg(long, value_name = "CODE", conflicts_with = "identify_language")]
    pub language_code: Option<String>,

    /// Let the service identify the language among --language-options.
    #[arg(long, requires = "language_options")]
    pub identify_language: bool,

    /// Candidate languages for --identify-language, comma-separated (e.g. en-US,de-DE).
    #[arg(long, value_name = "CODES", requires = "identify_language")]
    pub language_options: Option<String>,

    /// Preferred language among --language-options.
    #[arg(long, value_name = "CODE", requires = "identify_language")]
    pub preferred_language: Option<String>,

    /// Sample rate to announce and send, in Hz (PCM: the file is resampled to it; default 16000. FLAC, Ogg
    /// Opus: taken from the file).
    #[arg(long, value_name = "HZ")]
    pub sample_rate: Option<u32>,

    /// What to send: decoded PCM, or the file itself when it is FLAC or Ogg Opus.
    #[arg(long, value_enum, default_value_t = Encoding::Pcm, value_name = "ENCODING")]
    pub media_encoding: Encoding,

    /// Label speakers (spk_0, spk_1, ...) in the results.
    #[arg(long)]
    pub show_speaker_label: bool,

    /// Stabilise partial results at this level.
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub partial_results_stability: Option<Stability>,

    /// Use Amazon Transcribe Medical.
    #[arg(long, conflicts_with_all = ["call_analytics", "identify_language"])]
    pub medical: bool,

    /// Medical specialty (with --medical).
    #[arg(long, value_enum, ignore_case = true, requires = "medical", default_value_t = SpecialtyArg::PrimaryCare)]
    pub specialty: SpecialtyArg,

    /// Medical transcription type (with --medical).
    #[arg(long = "type", value_enum, ignore_case = true, requires = "medical", default_value_t = MedicalTypeArg::Conversation)]
    pub medical_type: MedicalTypeArg,

    /// Use Call Analytics (the stream starts with a ConfigurationEvent: channel 0 is the agent).
    #[arg(long, conflicts_with = "identify_language")]
    pub call_analytics: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Stability {
    Low,
    Medium,
    High,
}

/// `specialty` of Transcribe Medical.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SpecialtyArg {
    #[value(name = "PRIMARYCARE")]
    PrimaryCare,
    #[value(name = "CARDIOLOGY")]
    Cardiology,
    #[value(name = "NEUROLOGY")]
    Neurology,
    #[value(name = "ONCOLOGY")]
    Oncology,
    #[value(name = "RADIOLOGY")]
    Radiology,
    #[value(name = "UROLOGY")]
    Urology,
}

/// `type` of Transcribe Medical.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MedicalTypeArg {
    #[value(name = "CONVERSATION")]
    Conversation,
    #[value(name = "DICTATION")]
    Dictation,
}

#[derive(Debug, Args)]
pub struct LivenessArgs {
    /// The video file (WebM).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    #[command(flatten)]
    pub connect: ConnectArgs,

    /// The session id from CreateFaceLivenessSession (required against AWS; default: a new random id, which
    /// only an emulator accepts).
    #[arg(long, value_name = "UUID")]
    pub session_id: Option<String>,

    /// Challenge versions to offer.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "FaceMovementAndLightChallenge_1.0.0,FaceMovementChallenge_1.0.0"
    )]
    pub challenge_versions: String,

    /// Video width in pixels (default: from the file).
    #[arg(long, value_name = "PX")]
    pub video_width: Option<u32>,

    /// Video height in pixels (default: from the file).
    #[arg(long, value_name = "PX")]
    pub video_height: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub addr: SocketAddr,

    /// The emulator's clock relative to this host's, in milliseconds (to show skew correction).
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub clock_offset_ms: i64,

    /// Access key id the emulator accepts.
    #[arg(long, value_name = "ID", default_value = EXAMPLE_ACCESS_KEY_ID)]
    pub access_key_id: String,

    /// Secret access key the emulator accepts (default: AWS's documented example key).
    #[arg(long, value_name = "KEY", default_value = EXAMPLE_SECRET_ACCESS_KEY, hide_default_value = true)]
    pub secret_access_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("stream_file").chain(args.iter().copied()))
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn readme_command_parses() {
        let cli = parse(&["transcribe", "--emulator", "fixtures/audio/hello.wav"]).unwrap();
        let Command::Transcribe(t) = cli.command else {
            panic!("not transcribe")
        };
        assert!(t.connect.emulator);
        assert_eq!(t.connect.region, "us-east-1");
        assert_eq!(t.media_encoding, Encoding::Pcm);
        assert_eq!(t.sample_rate, None);
        assert_eq!(t.file, PathBuf::from("fixtures/audio/hello.wav"));
    }

    #[test]
    fn negative_offsets_and_options_parse() {
        let cli = parse(&[
            "transcribe",
            "--emulator",
            "--emulator-clock-offset-ms",
            "-3600000",
            "--clock-offset-ms",
            "-5",
            "--media-encoding",
            "ogg-opus",
            "--partial-results-stability",
            "high",
            "--identify-language",
            "--language-options",
            "en-US,de-DE",
            "x.ogg",
        ])
        .unwrap();
        let Command::Transcribe(t) = cli.command else {
            panic!("not transcribe")
        };
        assert_eq!(t.connect.emulator_clock_offset_ms, Some(-3_600_000));
        assert_eq!(t.connect.clock_offset_ms, -5);
        assert_eq!(t.media_encoding, Encoding::OggOpus);
        assert_eq!(t.partial_results_stability, Some(Stability::High));
    }

    #[test]
    fn conflicting_options_are_usage_errors() {
        for args in [
            &[
                "transcribe",
                "--language-code",
                "en-US",
                "--identify-language",
                "--language-options",
                "x",
                "f",
            ][..],
            &["transcribe", "--identify-language", "f"][..],
            &["transcribe", "--emulator-clock-offset-ms", "5", "f"][..],
            &[
                "transcribe",
                "--emulator",
                "--endpoint",
                "ws://127.0.0.1:1",
                "f",
            ][..],
            &["transcribe", "--medical", "--call-analytics", "f"][..],
            &["transcribe", "--specialty", "CARDIOLOGY", "f"][..],
            &["transcribe", "--medical", "--specialty", "DENTISTRY", "f"][..],
            &["transcribe"][..],
            &["serve", "--addr", "nowhere"][..],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn serve_defaults_to_the_example_keys_on_loopback() {
        let cli = parse(&["serve"]).unwrap();
        let Command::Serve(s) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(s.addr.to_string(), "127.0.0.1:0");
        assert_eq!(s.access_key_id, EXAMPLE_ACCESS_KEY_ID);
        assert_eq!(s.secret_access_key, EXAMPLE_SECRET_ACCESS_KEY);
        assert_eq!(s.clock_offset_ms, 0);
    }
}
