//! Video input for `liveness`: a WebM (Matroska) file cut into pieces of about one second each,
//! as Amplify's recorder sends them. The byte split is proportional to the container's
//! duration; the picture size comes from the video track.

use std::path::Path;
use std::time::Duration;

use crate::audio::io_words;
use crate::fail::Fail;

/// Video per `VideoEvent`.
pub const SLICE: Duration = Duration::from_secs(1);
/// Bytes per piece when the file does not state its duration.
const FALLBACK_SLICE_BYTES: usize = 32 * 1024;
/// The service's limit on a whole session's video.
pub const MAX_VIDEO_BYTES: usize = 10 * 1024 * 1024;

/// What the container says about itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WebmInfo {
    pub doc_type: String,
    pub duration: Option<Duration>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// A video file, read whole (the service takes at most 10 MB), and its pieces.
#[derive(Debug)]
pub struct VideoFile {
    pub bytes: Vec<u8>,
    pub info: WebmInfo,
    slice_bytes: usize,
}

/// One piece of video and the span of the recording it covers.
#[derive(Debug, PartialEq, Eq)]
pub struct Slice<'a> {
    pub bytes: &'a [u8],
    pub video: Duration,
}

impl VideoFile {
    pub fn open(path: &Path) -> Result<VideoFile, Fail> {
        let bytes = std::fs::read(path).map_err(|e| {
            Fail::input(format!("cannot read {}: {}", path.display(), io_words(&e)))
        })?;
        let info = webm_info(&bytes).map_err(|why| {
            Fail::input(format!(
                "{}: not a WebM video ({why}); Face Liveness takes WebM as browsers record it",
                path.display()
            ))
        })?;
        if bytes.len() > MAX_VIDEO_BYTES {
            return Err(Fail::input(format!(
                "{}: {} bytes of video, more than the 10 MB a Face Liveness session takes",
                path.display(),
                bytes.len()
            )));
        }
        let slice_bytes = match info.duration {
            Some(d) if !d.is_zero() => {
                ((bytes.len() as f64 * SLICE.as_secs_f64() / d.as_secs_f64()).ceil() as usize)
                    .max(1)
            }
            _ => FALLBACK_SLICE_BYTES,
        };
        Ok(VideoFile {
            bytes,
            info,
            slice_bytes,
        })
    }

    /// The pieces in order.
    pub fn slices(&self) -> impl Iterator<Item = Slice<'_>> + '_ {
        let total = self.bytes.len();
        let duration = self.info.duration;
        self.bytes.chunks(self.slice_bytes).map(move |bytes| Slice {
            bytes,
            video: match duration {
                Some(d) => d.mul_f64(bytes.len() as f64 / total as f64),
                None => SLICE,
            },
        })
    }
}

// EBML element IDs (with their length marker bits, as written).
const EBML: u32 = 0x1A45_DFA3;
const DOC_TYPE: u32 = 0x4282;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const VIDEO: u32 = 0xE0;
const PIXEL_WIDTH: u32 = 0xB0;
const PIXEL_HEIGHT: u32 = 0xBA;
const CLUSTER: u32 = 0x1F43_B675;

/// Reads the EBML header's DocType, the Segment's Info (duration) and the first video track's
/// picture size. Stops at the first Cluster.
pub fn webm_info(bytes: &[u8]) -> Result<WebmInfo, String> {
    let mut reader = Ebml { bytes, at: 0 };
    let (id, size) = reader.header().ok_or("the file is empty or too short")?;
    if id != EBML {
        return Err("no EBML header at the start".into());
    }
    let header_end = reader.end_of(size).ok_or("the EBML header is cut short")?;
    let mut info = WebmInfo::default();
    while reader.at < header_end {
        let (id, size) = reader.header().ok_or("damaged EBML header")?;
        let end = reader.end_of(size).ok_or("damaged EBML header")?;
        if id == DOC_TYPE {
            info.doc_type = String::from_utf8_lossy(&bytes[reader.at..end])
                .trim_end_matches('\0')
                .to_owned();
        }
        reader.at = end;
    }
    if !matches!(info.doc_type.as_str(), "webm" | "matroska") {
        return Err(format!("EBML document type {:?}", info.doc_type));
    }
    let (id, size) = reader.header().ok_or("no Segment after the EBML header")?;
    if id != SEGMENT {
        return Err("no Segment after the EBML header".into());
    }
    let segment_end = reader.end_of(size).unwrap_or(bytes.len());
    let mut scale = 1_000_000u64;
    let mut raw_duration: Option<f64> = None;
    while reader.at < segment_end {
        let Some((id, size)) = reader.header() else {
            break;
        };
        if id == CLUSTER {
            break;
        }
        let Some(end) = reader.end_of(size) else {
            break;
        };
        match id {
            INFO => {
                let mut inner = Ebml {
                    bytes: &bytes[..end],
                    at: reader.at,
                };
                while let Some((id, size)) = inner.header() {
                    let Some(e) = inner.end_of(size) else { break };
                    let data = &bytes[inner.at..e];
                    match id {
                        TIMESTAMP_SCALE => {
                            scale = read_uint(data).filter(|s| *s > 0).unwrap_or(scale)
                        }
                        DURATION => raw_duration = read_float(data),
                        _ => {}
                    }
                    inner.at = e;
                }
            }
            TRACKS => read_picture_size(&bytes[..end], reader.at, &mut info),
            _ => {}
        }
        reader.at = end;
    }
    info.duration = raw_duration
        .map(|ticks| ticks * scale as f64 / 1e9)
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 86_400.0)
        .map(Duration::from_secs_f64);
    Ok(info)
}

fn read_picture_size(bytes: &[u8], start: usize, info: &mut WebmInfo) {
    let mut tracks = Ebml { bytes, at: start };
    while let Some((id, size)) = tracks.header() {
        let Some(end) = tracks.end_of(size) else {
            return;
        };
        if id == TRACK_ENTRY {
            let mut entry = Ebml {
                bytes: &bytes[..end],
                at: tracks.at,
            };
            while let Some((id, size)) = entry.header() {
                let Some(e) = entry.end_of(size) else { break };
                if id == VIDEO {
                    let mut video = Ebml {
                        bytes: &bytes[..e],
                        at: entry.at,
                    };
                    while let Some((id, size)) = video.header() {
                        let Some(v) = video.end_of(size) else { break };
                        let value =
                            read_uint(&bytes[video.at..v]).and_then(|x| u32::try_from(x).ok());
                        match id {
                            PIXEL_WIDTH => info.width = value,
                            PIXEL_HEIGHT => info.height = value,
                            _ => {}
                        }
                        video.at = v;
                    }
                    if info.width.is_some() && info.height.is_some() {
                        return;
                    }
                }
                entry.at = e;
            }
        }
        tracks.at = end;
    }
}

struct Ebml<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Ebml<'_> {
    /// Reads an element ID and size; `None` for the size means "unknown" (all ones).
    fn header(&mut self) -> Option<(u32, Option<u64>)> {
        let (id, id_len) = vint(self.bytes.get(self.at..)?, true)?;
        let (size, size_len) = vint(self.bytes.get(self.at + id_len..)?, false)?;
        if id_len > 4 {
            return None;
        }
        let unknown = size == (1u64 << (7 * size_len)) - 1;
        self.at += id_len + size_len;
        Some((id as u32, (!unknown).then_some(size)))
    }

    /// Where an element of this size that starts here ends (unknown size: the end of the data).
    fn end_of(&self, size: Option<u64>) -> Option<usize> {
        match size {
            None => Some(self.bytes.len()),
            Some(size) => {
                let end = self.at.checked_add(usize::try_from(size).ok()?)?;
                (end <= self.bytes.len()).then_some(end)
            }
        }
    }
}

/// An EBML variable-length integer: its value (with the marker bit kept for IDs) and length.
fn vint(bytes: &[u8], keep_marker: bool) -> Option<(u64, usize)> {
    let first = *bytes.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || bytes.len() < len {
        return None;
    }
    let mut value = if keep_marker {
        u64::from(first)
    } else {
        u64::from(first) & ((1u64 << (8 - len)) - 1)
    };
    for &b in &bytes[1..len] {
        value = (value << 8) | u64::from(b);
    }
    Some((value, len))
}

fn read_uint(data: &[u8]) -> Option<u64> {
    (data.len() <= 8).then(|| data.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)))
}

fn read_float(data: &[u8]) -> Option<f64> {
    match data.len() {
        4 => Some(f64::from(f32::from_be_bytes(data.try_into().ok()?))),
        8 => Some(f64::from_be_bytes(data.try_into().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn face() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/video/face.webm")
    }

    #[test]
    fn reads_the_fixture_header() {
        let info = webm_info(&std::fs::read(face()).unwrap()).unwrap();
        assert_eq!(info.doc_type, "webm");
        assert_eq!(info.width, Some(320));
        assert_eq!(info.height, Some(240));
        let d = info.duration.unwrap().as_secs_f64();
        assert!((d - 3.0).abs() < 1e-6, "{d}");
    }

    #[test]
    fn cuts_one_second_pieces_that_cover_the_file() {
        let video = VideoFile::open(&face()).unwrap();
        let slices: Vec<_> = video.slices().collect();
        assert_eq!(slices.len(), 3);
        let joined: Vec<u8> = slices
            .iter()
            .flat_map(|s| s.bytes.iter().copied())
            .collect();
        assert_eq!(joined, video.bytes);
        let total: Duration = slices.iter().map(|s| s.video).sum();
        assert!((total.as_secs_f64() - 3.0).abs() < 1e-6);
    }

    #[test]
    fn refuses_what_is_not_webm() {
        assert!(webm_info(b"").is_err());
        assert!(webm_info(b"RIFF\0\0\0\0WAVEfmt ").is_err());
        let wav = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/audio/hello.wav");
        let err = VideoFile::open(&wav).unwrap_err();
        assert_eq!(err.code(), 2);
        assert!(err.message.contains("not a WebM video"), "{}", err.message);
        // A cut-off file still parses as far as it goes, without panicking.
        let bytes = std::fs::read(face()).unwrap();
        for n in [4, 20, 40, 100, 300] {
            let _ = webm_info(&bytes[..n]);
        }
    }

    #[test]
    fn vints() {
        assert_eq!(vint(&[0x81], false), Some((1, 1)));
        assert_eq!(vint(&[0x40, 0x02], false), Some((2, 2)));
        assert_eq!(
            vint(&[0x1A, 0x45, 0xDF, 0xA3], true),
            Some((0x1A45_DFA3, 4))
        );
        assert_eq!(vint(&[0x00], false), None);
    }
}
