//! Retry policy as data: bounded exponential backoff with jitter.
//!
//! Attempts count consecutive failures *without progress*: an attempt that committed
//! bytes resets the count, so a long download over a flaky link never runs out of
//! attempts while it keeps moving.

use serde::{Deserialize, Serialize};

/// When and how often to retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetryPolicy {
    /// Failed attempts in a row (without progress) before the task fails.
    pub max_attempts: u32,
    /// First delay, ms.
    pub base_delay_ms: f64,
    /// Largest delay, ms (also the clamp for a server's `Retry-After`).
    pub max_delay_ms: f64,
    /// Jitter as a fraction of the delay (0.2 = ±20%).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay_ms: 1_000.0,
            max_delay_ms: 60_000.0,
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt number `attempts + 1`, given a uniform random `u` in
    /// [0, 1) and the server's `Retry-After` if it sent one; `None` when out of attempts.
    pub fn delay_ms(&self, attempts: u32, retry_after_ms: Option<f64>, u: f64) -> Option<f64> {
        if attempts >= self.max_attempts {
            return None;
        }
        let base = match retry_after_ms {
            Some(ms) => ms.min(self.max_delay_ms),
            None => {
                (self.base_delay_ms * 2f64.powi(attempts.min(30) as i32)).min(self.max_delay_ms)
            }
        };
        let factor = 1.0 + self.jitter * (2.0 * u - 1.0);
        Some((base * factor).max(0.0))
    }
}

/// A small deterministic generator (SplitMix64) for jitter; seeded by the shell.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seed it.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A uniform number in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_ends() {
        let p = RetryPolicy {
            jitter: 0.0,
            ..Default::default()
        };
        let d: Vec<_> = (0..8).map(|a| p.delay_ms(a, None, 0.5).unwrap()).collect();
        assert_eq!(d, vec![1e3, 2e3, 4e3, 8e3, 16e3, 32e3, 60e3, 60e3]);
        assert_eq!(p.delay_ms(8, None, 0.5), None);
    }

    #[test]
    fn retry_after_is_clamped_and_jittered() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay_ms(0, Some(3_600_000.0), 0.5), Some(60_000.0));
        let lo = p.delay_ms(0, Some(10_000.0), 0.0).unwrap();
        let hi = p.delay_ms(0, Some(10_000.0), 0.999_999).unwrap();
        assert!(
            (8_000.0..=8_001.0).contains(&lo) && (11_999.0..=12_000.0).contains(&hi),
            "{lo} {hi}"
        );
    }

    #[test]
    fn rng_is_uniformish_and_deterministic() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<f64> = (0..1000).map(|_| a.next_f64()).collect();
        assert!(xs.iter().all(|&x| (0.0..1.0).contains(&x)));
        assert_eq!(xs[0], b.next_f64());
        let mean = xs.iter().sum::<f64>() / 1000.0;
        assert!((0.45..0.55).contains(&mean), "{mean}");
    }
}
