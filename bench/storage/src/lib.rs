//! Workload pieces for the storage benchmarks: a seeded generator, a scrambled Zipf sampler
//! (YCSB's), key and value encoding, and a small latency/throughput formatter.
//!
//! Keys are 16 bytes (`index LE u64 ++ splitmix64(index) LE u64`) and values 100 bytes, as the
//! issue asks. Zipf keys are scrambled so hot keys are spread over the key space instead of
//! clustering at small indices.

/// Key size of every benchmark.
pub const KEY_BYTES: usize = 16;
/// Value size of every benchmark.
pub const VALUE_BYTES: usize = 100;

/// splitmix64: a bijective 64-bit mixer.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A seeded xorshift generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Self(mix(seed) | 1)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Scrambled Zipfian over `0..n` with exponent `theta` (Gray et al., as in YCSB).
#[derive(Debug, Clone)]
pub struct Zipf {
    n: u64,
    theta: f64,
    alpha: f64,
    zeta_n: f64,
    eta: f64,
}

impl Zipf {
    /// A sampler over `0..n`; `theta` = 0.99 is YCSB's default skew.
    pub fn new(n: u64, theta: f64) -> Self {
        assert!(n >= 2);
        let zeta = |m: u64| (1..=m).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
        let zeta_n = zeta(n);
        let zeta_2 = zeta(2);
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta_2 / zeta_n);
        Self {
            n,
            theta,
            alpha,
            zeta_n,
            eta,
        }
    }

    /// One sample in `0..n`.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        let u = rng.unit();
        let uz = u * self.zeta_n;
        let rank = if uz < 1.0 {
            0
        } else if uz < 1.0 + 0.5f64.powf(self.theta) {
            1
        } else {
            ((self.n as f64) * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64
        };
        mix(rank.min(self.n - 1)) % self.n
    }
}

/// The 16-byte key of record `i`.
pub fn key(i: u64) -> [u8; KEY_BYTES] {
    let mut k = [0u8; KEY_BYTES];
    k[..8].copy_from_slice(&i.to_le_bytes());
    k[8..].copy_from_slice(&mix(i).to_le_bytes());
    k
}

/// A 100-byte value derived from `seed`.
pub fn value(seed: u64) -> [u8; VALUE_BYTES] {
    let mut v = [0u8; VALUE_BYTES];
    for (i, chunk) in v.chunks_mut(8).enumerate() {
        let word = mix(seed ^ i as u64).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    v
}

/// Operations per second, in millions.
pub fn mops(ops: u64, elapsed: std::time::Duration) -> f64 {
    ops as f64 / elapsed.as_secs_f64() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_is_skewed_and_in_range() {
        let z = Zipf::new(1000, 0.99);
        let mut rng = Rng::new(1);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[z.sample(&mut rng) as usize] += 1;
        }
        counts.sort_unstable();
        let top: u32 = counts.iter().rev().take(10).sum();
        assert!(top > 25_000, "top 10 keys got {top} of 100000");
    }
}
