//! Shared code of the `sigv4-ws` fuzz targets.
//!
//! * [`codec`]: frame builders (correct CRCs around arbitrary bytes), an independent reference
//!   header parser, and [`codec::check_decode`], the decoder invariants every codec target runs.
//! * [`chain`]: a signed chain made with the crate's own `EventSigner` for a verified upgrade,
//!   mutations of it, and the oracle of the chain and upgrade verifiers.
//! * [`skew`]: the skew-evidence parsers and their oracles.
//!
//! Every check panics on a violated invariant, so libFuzzer reports it as a crash.

pub mod chain;
pub mod codec;
pub mod skew;

/// A small deterministic PRNG (xorshift64*), seeded from the input, so that a crash reproduces
/// from the input alone.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeds from any bytes (a zero seed is replaced).
    pub fn from_bytes(bytes: &[u8]) -> Rng {
        let seed = u64::from(crc32fast::hash(bytes)) << 32 | bytes.len() as u64;
        Rng(seed | 1)
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}
