//! The signing floor: the bare primitives a signed 3,200-byte audio frame cannot do without,
//! with nothing else around them. Shared by the signing benchmark (`benches/sign.rs`) and the
//! load generator (`examples/load.rs`), which measures it in the same run as the load so the
//! two figures come from the same machine state.
//!
//! One floor frame: SHA-256 of the inner message, SHA-256 of the 15-byte `:date` header,
//! HMAC-SHA256 with a pre-keyed key over a real-length (279-byte) string-to-sign, CRC-32 of the
//! 8-byte prelude and CRC-32 of the whole frame (header block + inner message, read in place,
//! nothing copied). It is computed with two backends (sha2, ring); the floor is the faster.

use std::hint::black_box;
use std::time::Instant;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sigv4_ws::proto::sigv4::encode_date_header;

const SEED: &str = "3bda071a1cf6a5d4c3a3a6a572bc5d6b685c567428447c32ecbd5a08f6619b94";
/// 2024-08-20T23:01:44.567Z.
const DATE_MILLIS: i64 = 1_724_194_904_567;

/// Inputs of the floor, prepared outside the timed loop.
pub struct Floor {
    /// A string-to-sign of the real length (279 bytes here); the digests are not written into
    /// it, since the floor is the primitives alone.
    pub string_to_sign: Vec<u8>,
    pub date_header: [u8; 15],
    /// Prelude (12 bytes) and envelope headers (67 bytes), as in a real frame.
    header_block: [u8; 79],
    pub sha2_key: Hmac<Sha256>,
    pub ring_key: ring::hmac::Key,
}

impl Floor {
    /// The floor for an inner message of `inner_len` bytes, keyed with `signing_key`.
    pub fn new(inner_len: usize, signing_key: &[u8; 32]) -> Floor {
        let scope = "20240820/us-west-2/transcribe/aws4_request";
        let string_to_sign =
            format!("AWS4-HMAC-SHA256-PAYLOAD\n20240820T230144Z\n{scope}\n{SEED}\n{SEED}\n{SEED}")
                .into_bytes();
        debug_assert_eq!(string_to_sign.len(), 279);
        let mut header_block = [0u8; 79];
        let total = u32::try_from(inner_len + 83).unwrap_or(u32::MAX);
        header_block[0..4].copy_from_slice(&total.to_be_bytes());
        header_block[4..8].copy_from_slice(&67u32.to_be_bytes());
        header_block[12..27].copy_from_slice(&encode_date_header(DATE_MILLIS));
        header_block[27] = 16;
        header_block[28..44].copy_from_slice(b":chunk-signature");
        header_block[44] = 6;
        header_block[45..47].copy_from_slice(&32u16.to_be_bytes());
        Floor {
            string_to_sign,
            date_header: encode_date_header(DATE_MILLIS),
            header_block,
            sha2_key: <Hmac<Sha256> as Mac>::new_from_slice(signing_key)
                .expect("HMAC takes any key"),
            ring_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, signing_key),
        }
    }

    /// One floor frame with the sha2 crate (SHA-NI when the CPU has it).
    pub fn run_sha2(&self, inner: &[u8]) -> u32 {
        let payload_hash = Sha256::digest(inner);
        let date_hash = Sha256::digest(self.date_header);
        let mut mac = self.sha2_key.clone();
        mac.update(&self.string_to_sign);
        let signature = mac.finalize().into_bytes();
        black_box((&payload_hash, &date_hash, &signature));
        self.crcs(inner)
    }

    /// One floor frame with ring.
    pub fn run_ring(&self, inner: &[u8]) -> u32 {
        let payload_hash = ring::digest::digest(&ring::digest::SHA256, inner);
        let date_hash = ring::digest::digest(&ring::digest::SHA256, &self.date_header);
        let signature = ring::hmac::sign(&self.ring_key, &self.string_to_sign);
        black_box((&payload_hash, &date_hash, &signature));
        self.crcs(inner)
    }

    fn crcs(&self, inner: &[u8]) -> u32 {
        let prelude_crc = crc32fast::hash(&self.header_block[..8]);
        let mut frame_crc = crc32fast::Hasher::new();
        frame_crc.update(&self.header_block);
        frame_crc.update(inner);
        prelude_crc ^ frame_crc.finalize()
    }

    /// The floor per frame in microseconds, timed directly: the fastest of `rounds` rounds of
    /// `iterations` frames, for each backend, and the faster backend. For a quick figure next
    /// to a measurement taken in the same process (the benchmark's criterion figures are the
    /// careful ones).
    #[allow(dead_code)] // used by the load generator, not by the criterion benchmark
    pub fn measure_micros(&self, inner: &[u8], rounds: usize, iterations: usize) -> f64 {
        let time = |run: &dyn Fn() -> u32| -> f64 {
            let mut best = f64::INFINITY;
            for _ in 0..rounds.max(1) {
                let start = Instant::now();
                for _ in 0..iterations.max(1) {
                    black_box(run());
                }
                let per = start.elapsed().as_secs_f64() * 1e6 / iterations.max(1) as f64;
                best = best.min(per);
            }
            best
        };
        let sha2 = time(&|| self.run_sha2(black_box(inner)));
        let ring = time(&|| self.run_ring(black_box(inner)));
        sha2.min(ring)
    }
}
