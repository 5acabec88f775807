//! Audio input for `transcribe`: decode a file to 16-bit little-endian mono PCM at the chosen
//! rate (symphonia decodes, rubato resamples), or send a FLAC / Ogg-Opus file through
//! unchanged; either way cut into ~100 ms chunks that say how much audio they carry.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::fail::Fail;
use crate::output::fmt_time;

/// Audio carried by one chunk (the service takes at most one second per chunk).
pub const CHUNK: Duration = Duration::from_millis(100);
/// The sample rates Amazon Transcribe Streaming takes.
pub const RATES: std::ops::RangeInclusive<u32> = 8_000..=48_000;

/// What goes on the wire (`media-encoding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// Decode the file and send 16-bit little-endian mono PCM.
    Pcm,
    /// Send a FLAC file as it is.
    Flac,
    /// Send an Ogg Opus file as it is.
    OggOpus,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Pcm => "pcm",
            Encoding::Flac => "flac",
            Encoding::OggOpus => "ogg-opus",
        }
    }
}

/// One piece of the stream.
#[derive(Debug)]
pub struct Chunk {
    pub bytes: Vec<u8>,
    /// How much audio these bytes hold (for pacing and the progress bar).
    pub audio: Duration,
}

/// An opened audio file, ready to be read chunk by chunk.
pub struct AudioSource {
    reader: Reader,
    /// The `sample-rate` to announce.
    pub sample_rate: u32,
    pub encoding: Encoding,
    /// Total audio, when the file says.
    pub duration: Option<Duration>,
    /// What the file is and what is sent, in words.
    pub description: String,
}

enum Reader {
    Decode(Box<PcmDecoder>),
    Bytes(ByteChunks),
}

impl AudioSource {
    /// Opens `path` for sending as `encoding`. `sample_rate` is the user's choice: for PCM the
    /// output rate (default 16 kHz), for pass-through it must match the file.
    pub fn open(
        path: &Path,
        encoding: Encoding,
        sample_rate: Option<u32>,
    ) -> Result<AudioSource, Fail> {
        if let Some(rate) = sample_rate {
            check_rate(rate)?;
        }
        match encoding {
            Encoding::Pcm => {
                let rate = sample_rate.unwrap_or(16_000);
                // Decode the whole file once first, so that corrupt or truncated audio is found
                // before anything is dialled (memory stays constant: nothing is kept).
                let mut check = PcmDecoder::open(path, None)?;
                let decoded = check.scan()?;
                let mut decoder = PcmDecoder::open(path, Some(rate))?;
                decoder.duration = Some(Duration::from_secs_f64(
                    decoded as f64 / f64::from(decoder.source_rate),
                ));
                let description = format!(
                    "{} ({} Hz, {} channel{}) sent as 16-bit mono PCM at {} Hz{}",
                    decoder.codec_name,
                    decoder.source_rate,
                    decoder.channels,
                    if decoder.channels == 1 { "" } else { "s" },
                    rate,
                    if decoder.source_rate != rate {
                        " (resampled)"
                    } else {
                        ""
                    },
                );
                Ok(AudioSource {
                    duration: decoder.duration,
                    reader: Reader::Decode(Box::new(decoder)),
                    sample_rate: rate,
                    encoding,
                    description,
                })
            }
            Encoding::Flac => {
                let bytes = read_file(path)?;
                let info = flac_info(&bytes).map_err(|why| {
                    Fail::input(format!(
                        "{}: not a FLAC file ({why}); --media-encoding flac sends a FLAC file as it is, \
                         leave it out to decode the file and send PCM",
                        path.display()
                    ))
                })?;
                if info.channels != 1 {
                    return Err(Fail::input(format!(
                        "{}: FLAC with {} channels; Amazon Transcribe takes mono FLAC here, \
                         leave out --media-encoding to downmix it to PCM",
                        path.display(),
                        info.channels
                    )));
                }
                if let Some(rate) = sample_rate.filter(|r| *r != info.sample_rate) {
                    return Err(Fail::input(format!(
                        "{}: the FLAC file is {} Hz but --sample-rate is {rate}; a file sent as it is cannot be \
                         resampled: leave out --sample-rate, or leave out --media-encoding to send PCM",
                        path.display(),
                        info.sample_rate
                    )));
                }
                check_rate(info.sample_rate)?;
                // Decode it once to find corruption now rather than in the middle of the stream:
                // every frame must decode, and all the samples STREAMINFO announces must be there.
                let mut check = PcmDecoder::open(path, None)?;
                check.strict = true;
                let decoded = check.scan()?;
                if info.total_samples > 0 && decoded != info.total_samples {
                    return Err(Fail::input(format!(
                        "{}: corrupt FLAC: {} of the {} samples STREAMINFO announces could be decoded",
                        path.display(),
                        decoded,
                        info.total_samples
                    )));
                }
                let duration = info.duration();
                Ok(AudioSource {
                    description: format!(
                        "FLAC ({} Hz, mono, {}-bit) sent as it is",
                        info.sample_rate, info.bits_per_sample
                    ),
                    reader: Reader::Bytes(ByteChunks::new(bytes, duration)),
                    sample_rate: info.sample_rate,
                    encoding,
                    duration,
                })
            }
            Encoding::OggOpus => {
                let bytes = read_file(path)?;
                let info = ogg_opus_info(&bytes).map_err(|why| {
                    Fail::input(format!(
                        "{}: not a usable Ogg Opus file ({why}); --media-encoding ogg-opus sends an Ogg Opus \
                         file as it is, leave it out to decode the file and send PCM",
                        path.display()
                    ))
                })?;
                let rate = sample_rate.unwrap_or(if RATES.contains(&info.input_rate) {
                    info.input_rate
                } else {
                    48_000
                });
                let duration = info.duration();
                Ok(AudioSource {
                    description: format!(
                        "Ogg Opus ({} channel{}, {} s) sent as it is at sample-rate {rate}",
                        info.channels,
                        if info.channels == 1 { "" } else { "s" },
                        duration
                            .map(|d| format!("{:.2}", d.as_secs_f64()))
                            .unwrap_or_else(|| "?".into()),
                    ),
                    reader: Reader::Bytes(ByteChunks::new(bytes, duration)),
                    sample_rate: rate,
                    encoding,
                    duration,
                })
            }
        }
    }

    /// The next chunk, or `None` at the end of the file.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, Fail> {
        match &mut self.reader {
            Reader::Decode(d) => d.next_chunk(),
            Reader::Bytes(b) => Ok(b.next()),
        }
    }
}

fn check_rate(rate: u32) -> Result<(), Fail> {
    if RATES.contains(&rate) {
        Ok(())
    } else {
        Err(Fail::input(format!(
            "sample rate {rate} Hz is outside what Amazon Transcribe takes ({} to {} Hz)",
            RATES.start(),
            RATES.end()
        )))
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, Fail> {
    std::fs::read(path)
        .map_err(|e| Fail::input(format!("cannot read {}: {}", path.display(), io_words(&e))))
}

/// An I/O error in plain words (without Rust's `(os error 2)` suffix).
pub fn io_words(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => "it is a directory".into(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_owned(),
                None => text,
            }
        }
    }
}

/// Decodes any supported file to mono `i16` PCM at `target_rate` (or at the file's own rate).
struct PcmDecoder {
    file: String,
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    codec_name: &'static str,
    source_rate: u32,
    channels: usize,
    duration: Option<Duration>,
    /// Frames the container announces.
    num_frames: Option<u64>,
    resampler: Option<Resample>,
    /// Scratch: one packet's samples, interleaved.
    interleaved: Vec<f32>,
    /// Scratch: one packet's samples, downmixed.
    mono: Vec<f32>,
    /// Mono samples at the output rate, not yet cut into chunks.
    pending: Vec<f32>,
    chunk_frames: usize,
    out_rate: u32,
    /// Source frames decoded so far (for error positions).
    frames_decoded: u64,
    packets_decoded: u64,
    bad_packets_in_a_row: u32,
    /// Any packet that fails to decode is corruption (for files sent as they are).
    strict: bool,
    eof: bool,
}

/// Packets that fail to decode are skipped (as players do); this many in a row is corruption.
const MAX_BAD_PACKETS_IN_A_ROW: u32 = 8;

impl PcmDecoder {
    fn open(path: &Path, target_rate: Option<u32>) -> Result<PcmDecoder, Fail> {
        let shown = path.display().to_string();
        let file = File::open(path)
            .map_err(|e| Fail::input(format!("cannot open {shown}: {}", io_words(&e))))?;
        if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(Fail::input(format!(
                "cannot open {shown}: it is a directory"
            )));
        }
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let format = symphonia::default::get_probe()
            .probe(&hint, mss, FormatOptions::default(), MetadataOptions::default())
            .map_err(|e| {
                Fail::input(format!(
                    "{shown}: not a supported audio file (WAV, FLAC, Ogg Vorbis, Ogg Opus, MP3): {}",
                    sym_words(&e)
                ))
            })?;
        let track = format
            .default_track(TrackType::Audio)
            .ok_or_else(|| Fail::input(format!("{shown}: the file has no audio track")))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| {
                Fail::input(format!(
                    "{shown}: the audio track has no usable codec parameters"
                ))
            })?
            .clone();
        if params.codec == CODEC_ID_OPUS {
            return Err(Fail::input(format!(
                "{shown}: Ogg Opus cannot be decoded here; send it as it is with --media-encoding ogg-opus"
            )));
        }
        let track_id = track.id;
        let source_rate = params.sample_rate.filter(|r| *r > 0).ok_or_else(|| {
            Fail::input(format!("{shown}: the file does not say its sample rate"))
        })?;
        let channels = params
            .channels
            .as_ref()
            .map(|c| c.count())
            .unwrap_or(1)
            .max(1);
        let num_frames = track.num_frames.filter(|n| *n > 0);
        let duration =
            num_frames.map(|n| Duration::from_secs_f64(n as f64 / f64::from(source_rate)));
        let codec_name = codec_name(&params.codec, path);
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
            .map_err(|e| {
                Fail::input(format!(
                    "{shown}: unsupported audio codec: {}",
                    sym_words(&e)
                ))
            })?;
        let out_rate = target_rate.unwrap_or(source_rate);
        let resampler = if out_rate != source_rate {
            Some(Resample::new(source_rate, out_rate).map_err(|e| {
                Fail::input(format!(
                    "{shown}: cannot resample {source_rate} Hz to {out_rate} Hz: {e}"
                ))
            })?)
        } else {
            None
        };
        Ok(PcmDecoder {
            file: shown,
            format,
            decoder,
            track_id,
            codec_name,
            source_rate,
            channels,
            duration,
            num_frames,
            resampler,
            interleaved: Vec::new(),
            mono: Vec::new(),
            pending: Vec::new(),
            chunk_frames: frames_per_chunk(out_rate),
            out_rate,
            frames_decoded: 0,
            packets_decoded: 0,
            bad_packets_in_a_row: 0,
            strict: false,
            eof: false,
        })
    }

    /// Decodes the whole file and discards the samples: the number of frames decoded, or the
    /// corruption found. A file that decodes to clearly less than its header announces is
    /// truncated or has lost sync.
    fn scan(&mut self) -> Result<u64, Fail> {
        while !self.eof {
            self.decode_more()?;
            self.pending.clear();
        }
        if let Some(expected) = self.num_frames {
            // Allow a packet or 0.5 % for encoder delay and padding bookkeeping.
            let slack = (expected / 200).max(4_608);
            if self.frames_decoded + slack < expected {
                let rate = f64::from(self.source_rate);
                return Err(Fail::input(format!(
                    "{}: corrupt or truncated audio: only {} of the {} the file announces could be decoded",
                    self.file,
                    fmt_time(self.frames_decoded as f64 / rate),
                    fmt_time(expected as f64 / rate)
                )));
            }
        }
        Ok(self.frames_decoded)
    }

    fn position(&self) -> String {
        fmt_time(self.frames_decoded as f64 / f64::from(self.source_rate))
    }

    fn corrupt(&self, why: impl std::fmt::Display) -> Fail {
        Fail::input(format!(
            "{}: corrupt audio near {}: {why}",
            self.file,
            self.position()
        ))
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>, Fail> {
        while self.pending.len() < self.chunk_frames && !self.eof {
            self.decode_more()?;
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        let take = self.pending.len().min(self.chunk_frames);
        let mut bytes = Vec::with_capacity(take * 2);
        for sample in self.pending.drain(..take) {
            bytes.extend_from_slice(&to_i16(sample).to_le_bytes());
        }
        Ok(Some(Chunk {
            bytes,
            audio: Duration::from_secs_f64(take as f64 / f64::from(self.out_rate)),
        }))
    }

    /// Decodes one packet into `pending` (or finishes the stream).
    fn decode_more(&mut self) -> Result<(), Fail> {
        let packet = match self.format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) | Err(SymError::ResetRequired) => return self.finish(),
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return self.finish()
            }
            Err(e) => return Err(self.corrupt(sym_words(&e))),
        };
        if packet.track_id != self.track_id {
            return Ok(());
        }
        match self.decoder.decode(&packet) {
            Ok(buffer) => {
                self.bad_packets_in_a_row = 0;
                self.packets_decoded += 1;
                let frames = buffer.frames();
                let channels = buffer.spec().channels().count().max(1);
                buffer.copy_to_vec_interleaved(&mut self.interleaved);
                self.frames_decoded += frames as u64;
                self.mono.clear();
                downmix_into(&self.interleaved, channels, &mut self.mono);
                match &mut self.resampler {
                    Some(r) => r.push(&self.mono, &mut self.pending).map_err(|e| {
                        Fail::input(format!("{}: resampling failed: {e}", self.file))
                    })?,
                    None => self.pending.extend_from_slice(&self.mono),
                }
                Ok(())
            }
            Err(SymError::DecodeError(why)) => {
                self.bad_packets_in_a_row += 1;
                if self.strict {
                    Err(self.corrupt(format!("a frame failed to decode ({why})")))
                } else if self.bad_packets_in_a_row >= MAX_BAD_PACKETS_IN_A_ROW {
                    Err(self.corrupt(format!(
                        "{MAX_BAD_PACKETS_IN_A_ROW} packets in a row failed to decode ({why})"
                    )))
                } else {
                    Ok(())
                }
            }
            Err(e) => Err(self.corrupt(sym_words(&e))),
        }
    }

    fn finish(&mut self) -> Result<(), Fail> {
        self.eof = true;
        if self.packets_decoded == 0 {
            return Err(Fail::input(format!(
                "{}: corrupt audio: no packet could be decoded",
                self.file
            )));
        }
        if let Some(r) = &mut self.resampler {
            r.finish(&mut self.pending)
                .map_err(|e| Fail::input(format!("{}: resampling failed: {e}", self.file)))?;
        }
        Ok(())
    }
}

fn codec_name(codec: &symphonia::core::codecs::audio::AudioCodecId, path: &Path) -> &'static str {
    use symphonia::core::codecs::audio::well_known::*;
    match *codec {
        CODEC_ID_FLAC => "FLAC",
        CODEC_ID_VORBIS => "Vorbis",
        CODEC_ID_MP3 | CODEC_ID_MP2 | CODEC_ID_MP1 => "MP3",
        _ => match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("wav") | Some("wave") => "WAV",
            _ => "PCM",
        },
    }
}

/// A symphonia error in plain words.
fn sym_words(e: &SymError) -> String {
    match e {
        SymError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the file ends too early".into()
        }
        SymError::IoError(io) => io_words(io),
        SymError::Unsupported(what) => format!("unsupported ({what})"),
        other => other.to_string(),
    }
}

fn frames_per_chunk(rate: u32) -> usize {
    (u128::from(rate) * CHUNK.as_millis() / 1000) as usize
}

/// Averages interleaved channels into one.
pub fn downmix_into(interleaved: &[f32], channels: usize, out: &mut Vec<f32>) {
    if channels <= 1 {
        out.extend_from_slice(interleaved);
        return;
    }
    let scale = 1.0 / channels as f32;
    out.extend(
        interleaved
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f32>() * scale),
    );
}

/// A float sample in [-1, 1) to 16 bits; exact for samples that came from 16 bits.
pub fn to_i16(sample: f32) -> i16 {
    (sample * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Streaming resampler around rubato's synchronous FFT resampler: takes any number of input
/// frames, gives output frames with the resampler's delay trimmed, and flushes at the end so
/// the output is exactly `ceil(input × ratio)` frames long.
struct Resample {
    inner: Fft<f32>,
    input: Vec<f32>,
    output: Vec<f32>,
    zeros: Vec<f32>,
    in_total: u64,
    out_total: u64,
    delay_left: usize,
    ratio: f64,
}

impl Resample {
    fn new(from: u32, to: u32) -> Result<Resample, String> {
        let inner = Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Input)
            .map_err(|e| e.to_string())?;
        let max_in = inner.input_frames_max();
        let max_out = inner.output_frames_max();
        Ok(Resample {
            delay_left: inner.output_delay(),
            ratio: f64::from(to) / f64::from(from),
            inner,
            input: Vec::new(),
            output: vec![0.0; max_out],
            zeros: vec![0.0; max_in],
            in_total: 0,
            out_total: 0,
        })
    }

    fn push(&mut self, mono: &[f32], out: &mut Vec<f32>) -> Result<(), String> {
        self.input.extend_from_slice(mono);
        self.in_total += mono.len() as u64;
        loop {
            let need = self.inner.input_frames_next();
            if self.input.len() < need {
                return Ok(());
            }
            let produced = self.run(need, None)?;
            self.input.drain(..need);
            self.emit(produced, out, u64::MAX);
        }
    }

    fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), String> {
        let expected = (self.in_total as f64 * self.ratio).ceil() as u64;
        if !self.input.is_empty() {
            let have = self.input.len();
            let need = self.inner.input_frames_next();
            self.input.resize(need.max(have), 0.0);
            let produced = self.run(need, Some(have))?;
            self.input.clear();
            self.emit(produced, out, expected);
        }
        // Pump silence through until the delayed tail is out.
        let mut guard = 0;
        while self.out_total < expected {
            let need = self.inner.input_frames_next();
            self.input.clear();
            self.input.extend_from_slice(&self.zeros[..need]);
            let produced = self.run(need, Some(0))?;
            self.input.clear();
            self.emit(produced, out, expected);
            guard += 1;
            if guard > 64 {
                return Err("the resampler produced no output".into());
            }
        }
        Ok(())
    }

    fn run(&mut self, need: usize, partial: Option<usize>) -> Result<usize, String> {
        let input =
            InterleavedSlice::new(&self.input[..need], 1, need).map_err(|e| e.to_string())?;
        let frames_out = self.output.len();
        let mut output = InterleavedSlice::new_mut(&mut self.output[..], 1, frames_out)
            .map_err(|e| e.to_string())?;
        let indexing = partial.map(|n| Indexing::new().partial_len(n));
        let (_, produced) = self
            .inner
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(|e| e.to_string())?;
        Ok(produced)
    }

    fn emit(&mut self, produced: usize, out: &mut Vec<f32>, limit: u64) {
        let skip = self.delay_left.min(produced);
        self.delay_left -= skip;
        let room = limit
            .saturating_sub(self.out_total)
            .min((produced - skip) as u64) as usize;
        out.extend_from_slice(&self.output[skip..skip + room]);
        self.out_total += room as u64;
    }
}

/// A file sent as it is, cut into pieces of about [`CHUNK`] of audio each (byte counts
/// proportional to the duration; 4 KiB pieces counted as [`CHUNK`] when the duration is unknown).
struct ByteChunks {
    bytes: Vec<u8>,
    at: usize,
    chunk_bytes: usize,
    duration: Option<Duration>,
}

impl ByteChunks {
    fn new(bytes: Vec<u8>, duration: Option<Duration>) -> ByteChunks {
        let chunk_bytes = match duration {
            Some(d) if !d.is_zero() => {
                let per = bytes.len() as f64 * CHUNK.as_secs_f64() / d.as_secs_f64();
                (per.ceil() as usize).max(1)
            }
            _ => 4096,
        };
        ByteChunks {
            bytes,
            at: 0,
            chunk_bytes,
            duration,
        }
    }

    fn next(&mut self) -> Option<Chunk> {
        if self.at >= self.bytes.len() {
            return None;
        }
        let end = (self.at + self.chunk_bytes).min(self.bytes.len());
        let piece = self.bytes[self.at..end].to_vec();
        self.at = end;
        let audio = match self.duration {
            Some(d) if !self.bytes.is_empty() => {
                d.mul_f64(piece.len() as f64 / self.bytes.len() as f64)
            }
            _ => CHUNK,
        };
        Some(Chunk {
            bytes: piece,
            audio,
        })
    }
}

/// What the FLAC STREAMINFO block says.
#[derive(Debug, PartialEq, Eq)]
pub struct FlacInfo {
    pub sample_rate: u32,
    pub channels: u8,
    pub bits_per_sample: u8,
    pub total_samples: u64,
}

impl FlacInfo {
    pub fn duration(&self) -> Option<Duration> {
        (self.total_samples > 0 && self.sample_rate > 0).then(|| {
            Duration::from_secs_f64(self.total_samples as f64 / f64::from(self.sample_rate))
        })
    }
}

/// Reads the `fLaC` marker and the STREAMINFO block.
pub fn flac_info(bytes: &[u8]) -> Result<FlacInfo, String> {
    if bytes.len() < 4 || &bytes[..4] != b"fLaC" {
        return Err("no fLaC marker at the start".into());
    }
    let header = bytes.get(4..8).ok_or("the file ends in the header")?;
    let block_type = header[0] & 0x7f;
    let length = u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize;
    if block_type != 0 || length < 34 {
        return Err("the first metadata block is not STREAMINFO".into());
    }
    let info = bytes.get(8..8 + 34).ok_or("the file ends in STREAMINFO")?;
    let packed = u64::from_be_bytes(info[10..18].try_into().map_err(|_| "short STREAMINFO")?);
    let sample_rate = (packed >> 44) as u32;
    let channels = ((packed >> 41) & 0x7) as u8 + 1;
    let bits_per_sample = ((packed >> 36) & 0x1f) as u8 + 1;
    let total_samples = packed & 0xf_ffff_ffff;
    if sample_rate == 0 {
        return Err("STREAMINFO gives a sample rate of 0".into());
    }
    Ok(FlacInfo {
        sample_rate,
        channels,
        bits_per_sample,
        total_samples,
    })
}

/// What the Ogg pages and the OpusHead packet say.
#[derive(Debug, PartialEq, Eq)]
pub struct OggOpusInfo {
    pub channels: u8,
    pub pre_skip: u16,
    /// The rate of the audio before encoding (informational; Opus decodes at 48 kHz).
    pub input_rate: u32,
    /// The last page's granule position (48 kHz samples, pre-skip included).
    pub last_granule: u64,
    pub pages: usize,
}

impl OggOpusInfo {
    pub fn duration(&self) -> Option<Duration> {
        let samples = self.last_granule.checked_sub(u64::from(self.pre_skip))?;
        (samples > 0).then(|| Duration::from_secs_f64(samples as f64 / 48_000.0))
    }
}

/// Walks every Ogg page (capture pattern, CRC), checks the first packet is `OpusHead`, and
/// returns the header fields and the final granule position.
pub fn ogg_opus_info(bytes: &[u8]) -> Result<OggOpusInfo, String> {
    let mut at = 0;
    let mut pages = 0;
    let mut head: Option<(u8, u16, u32)> = None;
    let mut last_granule = 0u64;
    let mut serial: Option<u32> = None;
    while at < bytes.len() {
        let page = bytes.get(at..).unwrap_or_default();
        if page.len() < 27 || &page[..4] != b"OggS" {
            return Err(if pages == 0 {
                "no Ogg page at the start".into()
            } else {
                format!("damaged Ogg page at byte {at}")
            });
        }
        let segments = page[26] as usize;
        let table = page
            .get(27..27 + segments)
            .ok_or_else(|| format!("Ogg page at byte {at} is cut short"))?;
        let body_len: usize = table.iter().map(|&b| b as usize).sum();
        let total = 27 + segments + body_len;
        let whole = page
            .get(..total)
            .ok_or_else(|| format!("Ogg page at byte {at} is cut short"))?;
        let stored = u32::from_le_bytes([whole[22], whole[23], whole[24], whole[25]]);
        if ogg_crc(whole) != stored {
            return Err(format!("Ogg page at byte {at} fails its checksum"));
        }
        let page_serial = u32::from_le_bytes([whole[14], whole[15], whole[16], whole[17]]);
        if *serial.get_or_insert(page_serial) == page_serial {
            let granule = u64::from_le_bytes(whole[6..14].try_into().map_err(|_| "bad granule")?);
            if granule != u64::MAX {
                last_granule = granule;
            }
            if head.is_none() {
                let body = &whole[27 + segments..];
                if body.len() < 19 || &body[..8] != b"OpusHead" {
                    return Err("the first packet is not OpusHead (is it Ogg Vorbis? leave out --media-encoding)".into());
                }
                let channels = body[9];
                let pre_skip = u16::from_le_bytes([body[10], body[11]]);
                let input_rate = u32::from_le_bytes([body[12], body[13], body[14], body[15]]);
                head = Some((channels, pre_skip, input_rate));
            }
        }
        pages += 1;
        at += total;
    }
    let (channels, pre_skip, input_rate) = head.ok_or("the file is empty")?;
    Ok(OggOpusInfo {
        channels,
        pre_skip,
        input_rate,
        last_granule,
        pages,
    })
}

/// The Ogg page checksum: CRC-32, polynomial 0x04C11DB7, not reflected, initial value 0, with
/// the checksum field counted as zero.
fn ogg_crc(page: &[u8]) -> u32 {
    let mut crc = 0u32;
    for (i, &byte) in page.iter().enumerate() {
        let byte = if (22..26).contains(&i) { 0 } else { byte };
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name)
    }

    fn drain(source: &mut AudioSource) -> (Vec<u8>, Vec<Chunk>) {
        let mut all = Vec::new();
        let mut chunks = Vec::new();
        while let Some(chunk) = source.next_chunk().expect("decodes") {
            all.extend_from_slice(&chunk.bytes);
            chunks.push(chunk);
        }
        (all, chunks)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// sha256 of the 107 267 decoded samples of hello.wav / hello.flac (fixtures/audio/README.md).
    const HELLO_PCM_SHA256: &str =
        "98b4badd8909ec617c71d1583bdae925ef022e0bcfffe195ef492cc75fe1a4e8";

    #[test]
    fn wav_at_its_own_rate_is_bit_exact_in_100ms_chunks() {
        let mut source =
            AudioSource::open(&fixture("audio/hello.wav"), Encoding::Pcm, None).unwrap();
        assert_eq!(source.sample_rate, 16_000);
        let duration = source.duration.unwrap().as_secs_f64();
        assert!((duration - 6.704188).abs() < 1e-3, "{duration}");
        let (pcm, chunks) = drain(&mut source);
        assert_eq!(pcm.len(), 107_267 * 2);
        assert_eq!(hex(&Sha256::digest(&pcm)), HELLO_PCM_SHA256);
        assert!(chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c.bytes.len() == 3200 && c.audio == CHUNK));
        let last = chunks.last().unwrap();
        assert_eq!(last.bytes.len(), (107_267 % 1600) * 2);
    }

    #[test]
    fn flac_decodes_to_the_same_samples_as_wav() {
        let mut source =
            AudioSource::open(&fixture("audio/hello.flac"), Encoding::Pcm, Some(16_000)).unwrap();
        let (pcm, _) = drain(&mut source);
        assert_eq!(hex(&Sha256::digest(&pcm)), HELLO_PCM_SHA256);
    }

    #[test]
    fn mp3_decodes_gapless_to_the_right_length() {
        let mut source =
            AudioSource::open(&fixture("audio/hello.mp3"), Encoding::Pcm, None).unwrap();
        let (pcm, _) = drain(&mut source);
        let samples = pcm.len() / 2;
        // 107 267 samples after the encoder delay and padding are trimmed; allow a frame of slack.
        assert!(
            (samples as i64 - 107_267).abs() <= 1152,
            "{samples} samples"
        );
    }

    #[test]
    fn resamples_and_downmixes_44k_stereo_to_16k_mono() {
        let mut source =
            AudioSource::open(&fixture("audio/hello_44k_stereo.wav"), Encoding::Pcm, None).unwrap();
        assert!(
            source.description.contains("resampled"),
            "{}",
            source.description
        );
        let (pcm, _) = drain(&mut source);
        // 74 970 frames at 44.1 kHz is 1.7 s: 27 200 frames at 16 kHz.
        assert_eq!(pcm.len() / 2, 27_200);
        // Same first sentence as hello.wav, so the level over the first 1.6 s should match closely.
        let ours: Vec<i16> = pcm
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        let mut reference =
            AudioSource::open(&fixture("audio/hello.wav"), Encoding::Pcm, None).unwrap();
        let (wav, _) = drain(&mut reference);
        let theirs: Vec<i16> = wav
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        let n = 25_600;
        let rms = |s: &[i16]| {
            (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
        };
        let (a, b) = (rms(&ours[..n]), rms(&theirs[..n]));
        assert!((a / b - 1.0).abs() < 0.05, "rms {a} vs {b}");
        // And aligned in time: the correlation at lag 0 is high.
        let dot: f64 = ours[..n]
            .iter()
            .zip(&theirs[..n])
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        let corr = dot / (a * b * n as f64);
        assert!(corr > 0.9, "correlation {corr}");
    }

    #[test]
    fn resampling_to_another_rate_gives_the_expected_length() {
        let mut source =
            AudioSource::open(&fixture("audio/hello.wav"), Encoding::Pcm, Some(8_000)).unwrap();
        let (pcm, chunks) = drain(&mut source);
        assert_eq!(pcm.len() / 2, 53_634); // ceil(107 267 / 2)
        assert_eq!(chunks[0].bytes.len(), 1600);
    }

    #[test]
    fn ogg_opus_cannot_be_decoded_to_pcm_and_says_what_to_do() {
        let err = AudioSource::open(&fixture("audio/hello.ogg"), Encoding::Pcm, None)
            .err()
            .unwrap();
        assert!(
            err.message.contains("--media-encoding ogg-opus"),
            "{}",
            err.message
        );
        assert_eq!(err.code(), 2);
    }

    #[test]
    fn flac_passes_through_unchanged() {
        let path = fixture("audio/hello.flac");
        let mut source = AudioSource::open(&path, Encoding::Flac, None).unwrap();
        assert_eq!(source.sample_rate, 16_000);
        let (bytes, chunks) = drain(&mut source);
        assert_eq!(bytes, std::fs::read(&path).unwrap());
        assert!(
            chunks.len() >= 60 && chunks.len() <= 70,
            "{} chunks",
            chunks.len()
        );
        let total: Duration = chunks.iter().map(|c| c.audio).sum();
        assert!((total.as_secs_f64() - 6.704188).abs() < 1e-3);
        let err = AudioSource::open(&path, Encoding::Flac, Some(8_000))
            .err()
            .unwrap();
        assert!(
            err.message.contains("cannot be resampled"),
            "{}",
            err.message
        );
    }

    #[test]
    fn truncated_and_garbled_files_are_refused_before_streaming() {
        let dir = std::env::temp_dir().join(format!("stream_file_cut_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let wav = std::fs::read(fixture("audio/hello.wav")).unwrap();
        let cut = dir.join("cut.wav");
        std::fs::write(&cut, &wav[..100_000]).unwrap();
        let mut mp3 = std::fs::read(fixture("audio/hello.mp3")).unwrap();
        for (i, b) in mp3[5_000..20_000].iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
        let garbled = dir.join("garbled.mp3");
        std::fs::write(&garbled, &mp3).unwrap();
        for path in [cut, garbled] {
            let err = AudioSource::open(&path, Encoding::Pcm, None).err().unwrap();
            assert_eq!(err.code(), 2);
            assert!(
                err.message.contains("corrupt or truncated"),
                "{}",
                err.message
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn damaged_flac_is_refused_before_streaming() {
        let mut bytes = std::fs::read(fixture("audio/hello.flac")).unwrap();
        let n = bytes.len();
        bytes[n / 3..n / 3 + 4096].fill(0xAA);
        let dir = std::env::temp_dir().join(format!("stream_file_flac_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("damaged.flac");
        std::fs::write(&path, &bytes).unwrap();
        let err = AudioSource::open(&path, Encoding::Flac, None)
            .err()
            .unwrap();
        assert_eq!(err.code(), 2);
        assert!(err.message.contains("corrupt"), "{}", err.message);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ogg_opus_passes_through_with_its_granule_duration() {
        let path = fixture("audio/hello.ogg");
        let bytes = std::fs::read(&path).unwrap();
        let info = ogg_opus_info(&bytes).unwrap();
        assert_eq!(info.pre_skip, 312);
        assert_eq!(info.input_rate, 16_000);
        assert_eq!(info.channels, 1);
        assert_eq!(info.last_granule, 321_801 + 312);
        let mut source = AudioSource::open(&path, Encoding::OggOpus, None).unwrap();
        assert_eq!(source.sample_rate, 16_000);
        assert!((source.duration.unwrap().as_secs_f64() - 6.704188).abs() < 1e-3);
        let (sent, _) = drain(&mut source);
        assert_eq!(sent, bytes);
    }

    #[test]
    fn damaged_ogg_is_refused() {
        let mut bytes = std::fs::read(fixture("audio/hello.ogg")).unwrap();
        let n = bytes.len();
        bytes[n / 2] ^= 0x55;
        let err = ogg_opus_info(&bytes).unwrap_err();
        assert!(err.contains("checksum") || err.contains("damaged"), "{err}");
        assert!(ogg_opus_info(b"RIFF....WAVE").is_err());
    }

    #[test]
    fn wrong_pass_through_format_is_refused() {
        let err = AudioSource::open(&fixture("audio/hello.wav"), Encoding::Flac, None)
            .err()
            .unwrap();
        assert!(err.message.contains("not a FLAC file"), "{}", err.message);
        let err = AudioSource::open(&fixture("audio/hello.flac"), Encoding::OggOpus, None)
            .err()
            .unwrap();
        assert!(
            err.message.contains("not a usable Ogg Opus file"),
            "{}",
            err.message
        );
    }

    #[test]
    fn bad_inputs_give_one_clear_line() {
        let dir = std::env::temp_dir().join(format!("stream_file_audio_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = dir.join("notes.wav");
        std::fs::write(&text, "this is a text file, not audio\n".repeat(20)).unwrap();
        // A WAV header followed by too little data.
        let wav = std::fs::read(fixture("audio/hello.wav")).unwrap();
        let cut = dir.join("cut.wav");
        std::fs::write(&cut, &wav[..40]).unwrap();
        let cases = [
            (text.clone(), None, "not a supported audio file"),
            (dir.join("missing.wav"), None, "no such file"),
            (cut.clone(), None, "cut.wav"),
            (fixture("audio/hello.wav"), Some(96_000), "outside"),
        ];
        for (path, rate, says) in cases {
            let err = AudioSource::open(&path, Encoding::Pcm, rate)
                .and_then(|mut s| s.next_chunk())
                .err()
                .unwrap_or_else(|| panic!("{} should fail", path.display()));
            assert!(err.message.contains(says), "{}", err.message);
            assert_eq!(err.code(), 2);
            assert_eq!(err.to_string().lines().count(), 1);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn flac_streaminfo_is_read() {
        let info = flac_info(&std::fs::read(fixture("audio/hello.flac")).unwrap()).unwrap();
        assert_eq!(
            info,
            FlacInfo {
                sample_rate: 16_000,
                channels: 1,
                bits_per_sample: 16,
                total_samples: 107_267
            }
        );
    }

    #[test]
    fn sample_conversion_round_trips_16_bit() {
        for x in [i16::MIN, -1, 0, 1, 12_345, i16::MAX] {
            assert_eq!(to_i16(f32::from(x) / 32768.0), x);
        }
        assert_eq!(to_i16(2.0), i16::MAX);
        let mut out = Vec::new();
        downmix_into(&[0.5, -0.5, 1.0, 0.0], 2, &mut out);
        assert_eq!(out, vec![0.0, 0.5]);
    }
}
