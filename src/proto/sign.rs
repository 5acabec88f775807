//! Chained per-event signing: inner message in, signed envelope out.
//!
//! Each outgoing event becomes the payload of an envelope whose headers are `:date`
//! (timestamp, milliseconds kept) and `:chunk-signature` (32 raw bytes). The signature is an
//! HMAC over a six-line string-to-sign (protocol.md 3.2) whose fourth line is the previous
//! signature, seeded with the presigned URL's `X-Amz-Signature`. Time is read from the same
//! [`Clock`] as the presigner, at the moment [`EventSigner::sign`] is called.
//!
//! Cost per frame: two SHA-256 passes (the `:date` header and the payload), one HMAC with a
//! cached key (the string-to-sign's first three lines pre-absorbed once a second), two CRC-32s,
//! one copy of the payload, and no heap allocation beyond the output buffer
//! (`tests/sign_no_alloc.rs`). `benches/sign.rs` measures it against the bare primitives.

use std::fmt;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use bytes::{BufMut, Bytes, BytesMut};
use hmac::Mac;
// Hashing backend, chosen by measurement (benches/sign.rs, groups `backend/*`, one run on an
// AMD EPYC with SHA-NI, per-sample minimum). sha2 0.10 takes its SHA-NI path by runtime
// detection with default features (no `asm` feature needed; perf puts 88% of a 32 KB frame in
// `sha2::sha256::x86::digest_blocks`). SHA-256 of a 3,288-byte inner message: sha2 1.84 µs vs
// ring 1.90 µs; of 32,088 bytes: 17.7 µs vs 17.6 µs (equal); pre-keyed HMAC over the 279-byte
// string-to-sign: sha2 241 ns vs ring 327 ns; SHA-256 of the 15-byte `:date` header: 60 ns vs
// 93 ns; whole floor at 3,200 bytes of audio: 2.25 µs with sha2 vs 2.41 µs with ring. So sha2,
// and no ring dependency. CRC-32: crc32fast (its VPCLMULQDQ path here), 99 ns per 3,288 bytes.
use sha2::{Digest, Sha256};

use super::clock::Clock;
use super::sigv4::{
    derive_signing_key, encode_date_header, epoch_millis, hex32, keyed_hmac, HmacSha256, UtcTime,
    EVENT_ALGORITHM,
};

/// Largest inner message the signer wraps: 16 MiB, the common event-stream payload limit.
pub const MAX_SIGNED_PAYLOAD: usize = 16 * 1024 * 1024;

/// Length of the envelope's header block: `:date` (15 bytes) + `:chunk-signature` (52 bytes).
const ENVELOPE_HEADERS_LEN: usize = 15 + 52;
/// Prelude (12) + headers + trailer (4): the envelope's size without payload.
pub const ENVELOPE_OVERHEAD: usize = 12 + ENVELOPE_HEADERS_LEN + 4;

const CHUNK_SIGNATURE_HEADER: &[u8] = b":chunk-signature";

/// Payload bytes hashed then copied per step in `sign_at`. Interleaving the copy with SHA-256
/// took a 32,000-byte-audio frame from 1.04x to 1.02x of the floor (bench `sign`); chunks of
/// 512 to 16,384 bytes measured the same. (Also checksumming each chunk and combining CRCs
/// was slower: `crc32fast::Hasher::combine` costs ~200 ns.)
const PASS_CHUNK: usize = 4096;

/// Why an event could not be signed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// `finish` was already called: the chain is closed.
    #[error("the signature chain is finished: the end frame was already signed; open a new session to send more")]
    Finished,
    /// The inner message is larger than an envelope may carry.
    #[error(
        "the message is {len} bytes, more than the {max}-byte limit of a signed event; split it"
    )]
    PayloadTooLarge {
        /// Size of the inner message.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The clock reads a time before 1970.
    #[error("the clock reads a time before 1970; check the host clock and the clock offset")]
    TimeOutOfRange,
}

/// Signs the events of one stream, in order, each chained on the previous signature.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use aws_credential_types::Credentials;
/// use sigv4_ws::{Clock, EventSigner, ManualTime};
///
/// let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None, "example");
/// let clock = Clock::new(ManualTime::new(UNIX_EPOCH + Duration::from_secs(1_724_194_904)));
/// let seed = "3bda071a1cf6a5d4c3a3a6a572bc5d6b685c567428447c32ecbd5a08f6619b94";
/// let mut signer = EventSigner::new(creds, "us-east-1", "rekognition", seed, clock);
/// let frame = signer.sign(b"an encoded inner message").unwrap();
/// assert_eq!(frame.len(), 83 + 24);
/// let end = signer.finish().unwrap();
/// assert_eq!(end.len(), 83);
/// assert!(signer.sign(b"too late").is_err());
/// ```
pub struct EventSigner {
    secret_access_key: Credentials,
    region: String,
    service: String,
    clock: Clock,
    /// Hex of the previous signature (the seed before the first event).
    prior: PriorSignature,
    /// Signing key for one UTC day, already keyed into an HMAC so only the message is hashed per frame.
    day_key: Option<(u64, HmacSha256)>,
    /// The day key with the string-to-sign's first three lines (which change once a second)
    /// already absorbed, for the epoch second it was built for.
    second_prefix: Option<(u64, HmacSha256)>,
    /// `/region/service/aws4_request`, built once.
    scope_tail: String,
    finished: bool,
}

enum PriorSignature {
    Seed(String),
    Chained([u8; 64]),
}

impl PriorSignature {
    fn as_bytes(&self) -> &[u8] {
        match self {
            PriorSignature::Seed(s) => s.as_bytes(),
            PriorSignature::Chained(hex) => hex,
        }
    }
}

impl EventSigner {
    /// A signer whose chain starts at `seed_signature` (the presigned URL's hex `X-Amz-Signature`).
    ///
    /// `credentials`, `region` and `service` must be those the URL was presigned with; the
    /// credentials are pinned for the whole stream.
    pub fn new(
        credentials: Credentials,
        region: impl Into<String>,
        service: impl Into<String>,
        seed_signature: &str,
        clock: Clock,
    ) -> EventSigner {
        let region = region.into();
        let service = service.into();
        let scope_tail = format!("/{region}/{service}/aws4_request");
        EventSigner {
            secret_access_key: credentials,
            region,
            service,
            clock,
            prior: PriorSignature::Seed(seed_signature.to_owned()),
            day_key: None,
            second_prefix: None,
            scope_tail,
            finished: false,
        }
    }

    /// The clock this signer reads (the same one the URL was presigned with).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Whether the end frame has been signed.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Wraps one encoded inner message in a signed envelope, at the clock's time now.
    pub fn sign(&mut self, inner_message: &[u8]) -> Result<Bytes, SignError> {
        let mut out = BytesMut::with_capacity(ENVELOPE_OVERHEAD + inner_message.len());
        self.sign_into(inner_message, &mut out)?;
        Ok(out.freeze())
    }

    /// Like [`EventSigner::sign`], appending the envelope to `dst` (no other allocation).
    /// On error `dst` is unchanged and the chain has not advanced.
    pub fn sign_into(&mut self, inner_message: &[u8], dst: &mut BytesMut) -> Result<(), SignError> {
        let now = self.clock.now();
        self.sign_at(inner_message, now, dst)
    }

    /// Signs the empty end-of-stream frame and closes the chain.
    pub fn finish(&mut self) -> Result<Bytes, SignError> {
        let mut out = BytesMut::with_capacity(ENVELOPE_OVERHEAD);
        self.finish_into(&mut out)?;
        Ok(out.freeze())
    }

    /// Like [`EventSigner::finish`], appending the end frame to `dst`.
    pub fn finish_into(&mut self, dst: &mut BytesMut) -> Result<(), SignError> {
        let now = self.clock.now();
        self.sign_at(&[], now, dst)?;
        self.finished = true;
        Ok(())
    }

    /// Signs `payload` as of `time` (sans-IO form for tests and vectors; the chain advances).
    pub fn sign_at(
        &mut self,
        payload: &[u8],
        time: SystemTime,
        dst: &mut BytesMut,
    ) -> Result<(), SignError> {
        if self.finished {
            return Err(SignError::Finished);
        }
        if payload.len() > MAX_SIGNED_PAYLOAD {
            return Err(SignError::PayloadTooLarge {
                len: payload.len(),
                max: MAX_SIGNED_PAYLOAD,
            });
        }
        let millis = epoch_millis(time).ok_or(SignError::TimeOutOfRange)?;
        let secs = millis.div_euclid(1000) as u64;
        let date_header = encode_date_header(millis);
        // Nothing below fails: from here on `dst` is written and the chain advances.

        // Everything before the signature is known now, so the envelope is written first and the
        // payload is copied in chunks as it is hashed: the copy then runs in the shadow of the
        // SHA-256 rounds' latency chain instead of after it. The signature is filled in last,
        // then one CRC pass covers the frame (it is in L1/L2 by then).
        let total = ENVELOPE_OVERHEAD + payload.len();
        dst.reserve(total);
        let start = dst.len();
        // Both fit in u32: the payload is capped at 16 MiB above.
        dst.put_u32(total as u32);
        dst.put_u32(ENVELOPE_HEADERS_LEN as u32);
        let prelude_crc = crc32fast::hash(&dst[start..start + 8]);
        dst.put_u32(prelude_crc);
        dst.put_slice(&date_header);
        dst.put_u8(CHUNK_SIGNATURE_HEADER.len() as u8);
        dst.put_slice(CHUNK_SIGNATURE_HEADER);
        dst.put_u8(6);
        dst.put_u16(32);
        let signature_at = dst.len();
        dst.put_bytes(0, 32);
        let mut payload_sha = Sha256::new();
        for chunk in payload.chunks(PASS_CHUNK) {
            payload_sha.update(chunk);
            dst.put_slice(chunk);
        }
        let signature = self.signature(secs, &date_header, &payload_sha.finalize().into());
        dst[signature_at..signature_at + 32].copy_from_slice(&signature);
        let message_crc = crc32fast::hash(&dst[start..]);
        dst.put_u32(message_crc);

        self.prior = PriorSignature::Chained(hex32(&signature));
        Ok(())
    }

    /// HMAC of the string-to-sign (protocol.md 3.2): lines 1-3 come pre-absorbed from
    /// [`EventSigner::second_hmac`], lines 4-6 are hashed here.
    fn signature(
        &mut self,
        secs: u64,
        date_header: &[u8; 15],
        payload_hash: &[u8; 32],
    ) -> [u8; 32] {
        let mut tail = [b'\n'; 1 + 64 + 1 + 64];
        tail[1..65].copy_from_slice(&hex32(&Sha256::digest(date_header).into()));
        tail[66..].copy_from_slice(&hex32(payload_hash));
        let mut mac = self.second_hmac(secs).clone();
        mac.update(self.prior.as_bytes());
        mac.update(&tail);
        mac.finalize().into_bytes().into()
    }

    /// The day key with `AWS4-HMAC-SHA256-PAYLOAD\n<amz date>\n<scope>\n` absorbed, rebuilt
    /// when the second changes (a stream of 100 ms frames reuses it nine times in ten).
    fn second_hmac(&mut self, secs: u64) -> &HmacSha256 {
        let stale = !matches!(&self.second_prefix, Some((cached, _)) if *cached == secs);
        if stale {
            let amz_date = UtcTime::from_epoch_seconds(secs).amz_date_bytes();
            let mut mac = self.day_hmac(secs / 86_400, &amz_date[..8]).clone();
            mac.update(EVENT_ALGORITHM.as_bytes());
            mac.update(b"\n");
            mac.update(&amz_date);
            mac.update(b"\n");
            mac.update(&amz_date[..8]);
            mac.update(self.scope_tail.as_bytes());
            mac.update(b"\n");
            self.second_prefix = Some((secs, mac));
        }
        match &self.second_prefix {
            Some((_, mac)) => mac,
            None => unreachable!("the second's prefix was just set"),
        }
    }

    fn day_hmac(&mut self, day: u64, date: &[u8]) -> &HmacSha256 {
        let stale = !matches!(&self.day_key, Some((cached, _)) if *cached == day);
        if stale {
            let date = std::str::from_utf8(date).unwrap_or_default();
            let key = derive_signing_key(
                self.secret_access_key.secret_access_key(),
                date,
                &self.region,
                &self.service,
            );
            self.day_key = Some((day, keyed_hmac(&key)));
        }
        match &self.day_key {
            Some((_, mac)) => mac,
            None => unreachable!("the day key was just set"),
        }
    }
}

impl fmt::Debug for EventSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSigner")
            .field("region", &self.region)
            .field("service", &self.service)
            .field("clock", &self.clock)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::clock::ManualTime;
    use std::time::{Duration, UNIX_EPOCH};

    fn creds() -> Credentials {
        Credentials::new(
            "ANOTREAL",
            "notrealrnrELgWzOk3IfjzDKtFBhDby",
            Some("notarealsessiontoken".into()),
            None,
            "test",
        )
    }

    const SEED: &str = "3bda071a1cf6a5d4c3a3a6a572bc5d6b685c567428447c32ecbd5a08f6619b94";
    const INNER: &str = "0000006c000000585c509ce30d3a6d6573736167652d747970650700056576656e740b3a6576656e742d7479706507000a417564696f4576656e740d3a636f6e74656e742d747970650700186170706c69636174696f6e2f6f637465742d73747265616d0001020371e2c8d0";

    fn unhex(s: &str) -> Vec<u8> {
        crate::proto::sigv4::decode_hex(s).unwrap()
    }

    #[test]
    fn protocol_md_chained_vector() {
        let time = ManualTime::new(UNIX_EPOCH + Duration::from_millis(1_724_194_904_567));
        let mut signer = EventSigner::new(
            creds(),
            "us-west-2",
            "transcribe",
            SEED,
            Clock::new(time.clone()),
        );
        let frame = signer.sign(&unhex(INNER)).unwrap();
        let mut expected = unhex("000000bf0000004318605086053a646174650800000191720659f7103a6368756e6b2d7369676e617475726506002042a0aafa1dc0e13966b12b2013ce404a8d292ba15444794525e7542a914e861b");
        expected.extend(unhex(INNER));
        expected.extend(unhex("c224870f"));
        assert_eq!(frame.as_ref(), expected.as_slice());

        time.set(UNIX_EPOCH + Duration::from_millis(1_724_194_905_000));
        let end = signer.finish().unwrap();
        assert_eq!(end.as_ref(), unhex("0000005300000043f5447a58053a64617465080000019172065ba8103a6368756e6b2d7369676e6174757265060020a64c7320d6bd4d4fff788e81fbe9da41828c4fb6b31cc536af489c6e4c5fe395b47e65a8").as_slice());
        assert_eq!(signer.sign(b"x"), Err(SignError::Finished));
    }

    #[test]
    fn protocol_md_simple_payload_vector() {
        let clock = Clock::new(ManualTime::new(
            UNIX_EPOCH + Duration::from_millis(1_724_194_904_567),
        ));
        let mut signer = EventSigner::new(creds(), "us-west-2", "transcribe", SEED, clock);
        let frame = signer.sign(b"hello").unwrap();
        assert_eq!(
            &frame[47..79],
            unhex("6d67feeb4ba69ebe4981b7f02c20ac99f3e71ce51d89d8db175244e5f4fe859b").as_slice()
        );
    }

    #[test]
    fn scope_follows_each_event_date_across_midnight() {
        let time = ManualTime::new(UNIX_EPOCH + Duration::from_secs(1_724_198_399)); // 23:59:59
        let mut signer = EventSigner::new(
            creds(),
            "us-west-2",
            "transcribe",
            SEED,
            Clock::new(time.clone()),
        );
        signer.sign(b"a").unwrap();
        time.advance(Duration::from_secs(1));
        signer.sign(b"b").unwrap();
        assert_eq!(
            signer.day_key.as_ref().map(|(d, _)| *d),
            Some(1_724_198_400 / 86_400)
        );
    }

    #[test]
    fn failed_sign_leaves_dst_and_chain_alone() {
        let clock = Clock::new(ManualTime::new(UNIX_EPOCH - Duration::from_secs(5)));
        let mut signer = EventSigner::new(creds(), "r", "s", SEED, clock);
        let mut dst = BytesMut::new();
        assert_eq!(
            signer.sign_into(b"x", &mut dst),
            Err(SignError::TimeOutOfRange)
        );
        assert!(dst.is_empty());
        assert!(matches!(signer.prior, PriorSignature::Seed(_)));
    }

    /// The chunked hash-and-copy pass against a reference built from the SigV4 helpers and the
    /// codec's encoder, for payloads around and across `PASS_CHUNK` and across a second.
    #[test]
    fn chunked_pass_matches_reference_encoding() {
        use crate::proto::codec::{HeaderValue, Message};
        use crate::proto::sigv4::{
            derive_signing_key, event_string_to_sign, hex_lower, hmac_sha256,
        };

        let creds = creds();
        let mut millis = 1_724_194_904_567u64;
        let time = ManualTime::new(UNIX_EPOCH + Duration::from_millis(millis));
        let mut signer = EventSigner::new(
            creds.clone(),
            "us-west-2",
            "transcribe",
            SEED,
            Clock::new(time.clone()),
        );
        let mut prior = SEED.to_owned();
        let mut dst = BytesMut::new();
        for len in [
            0,
            1,
            PASS_CHUNK - 1,
            PASS_CHUNK,
            PASS_CHUNK + 1,
            3 * PASS_CHUNK + 7,
            65_624,
        ] {
            // Not periodic, so a chunk copied to the wrong place shows.
            let payload: Vec<u8> = (0..len as u64)
                .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
                .collect();
            let at = UNIX_EPOCH + Duration::from_millis(millis);
            time.set(at);
            dst.clear();
            signer.sign_into(&payload, &mut dst).unwrap();

            let date_header = encode_date_header(millis as i64);
            let sts = event_string_to_sign(
                at,
                "us-west-2",
                "transcribe",
                &prior,
                &date_header,
                &payload,
            )
            .unwrap();
            let date = &crate::proto::sigv4::format_amz_date(at).unwrap()[..8];
            let key =
                derive_signing_key(creds.secret_access_key(), date, "us-west-2", "transcribe");
            let signature = hmac_sha256(&key, sts.as_bytes());
            let expected = Message::new(payload.clone())
                .with_header(":date", HeaderValue::Timestamp(millis as i64))
                .with_header(
                    ":chunk-signature",
                    HeaderValue::ByteArray(signature.to_vec().into()),
                )
                .encode()
                .unwrap();
            // Compared as a whole, reported briefly (the frames run to 64 KiB).
            assert!(
                dst.as_ref() == expected.as_ref(),
                "payload of {len} bytes: frames differ"
            );
            prior = hex_lower(&signature);
            millis += 350;
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let signer = EventSigner::new(creds(), "r", "s", SEED, Clock::system());
        let shown = format!("{signer:?}");
        assert!(!shown.contains("notreal"));
        assert!(!shown.contains(SEED));
    }
}
