//! Retry policy as data: exponential backoff with a cap, or an explicit list of
//! delays; a maximum number of attempts; a maximum age; jitter.
//!
//! Attempts count consecutive failures *without progress*: an attempt that committed
//! bytes resets the count, so a long download over a flaky link never runs out of
//! attempts while it keeps moving. A server's `Retry-After` replaces the computed
//! delay, clamped to `maxDelay`.

use super::error::TaskError;
use serde::{Deserialize, Serialize};

/// Longest delay or age accepted in a policy: 30 days, in ms.
pub const MAX_POLICY_MS: f64 = 30.0 * 24.0 * 3600.0 * 1000.0;
/// Most attempts a policy may allow.
pub const MAX_ATTEMPTS: u32 = 1000;

/// When and how often to retry. Field names as pages give them (`maxAttempts`…).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetryPolicy {
    /// Failed attempts in a row (without progress) before the task fails.
    pub max_attempts: u32,
    /// First delay, ms (exponential backoff doubles it each time).
    pub base_delay: f64,
    /// Largest delay, ms (also the clamp for a server's `Retry-After`).
    pub max_delay: f64,
    /// Explicit delays, ms, used instead of exponential backoff; the last repeats.
    pub delays: Option<Vec<f64>>,
    /// No retry once the task is older than this, ms since its creation.
    pub max_age: Option<f64>,
    /// Jitter as a fraction of the delay (0.2 = ±20%).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: 1_000.0,
            max_delay: 60_000.0,
            delays: None,
            max_age: None,
            jitter: 0.2,
        }
    }
}

fn ms_ok(v: f64) -> bool {
    v.is_finite() && (0.0..=MAX_POLICY_MS).contains(&v)
}

impl RetryPolicy {
    /// Check every field; an error names the first bad one.
    pub fn validate(&self) -> Result<(), TaskError> {
        let bad = |what: &str| Err(TaskError::invalid(format!("retry.{what}")));
        if self.max_attempts > MAX_ATTEMPTS {
            return bad("maxAttempts must be at most 1000");
        }
        if !ms_ok(self.base_delay) || !ms_ok(self.max_delay) {
            return bad("baseDelay and maxDelay must be numbers of ms from 0 to 30 days");
        }
        if self.base_delay > self.max_delay {
            return bad("baseDelay must not exceed maxDelay");
        }
        if let Some(d) = &self.delays {
            if d.is_empty() || d.len() > 100 || !d.iter().all(|&x| ms_ok(x)) {
                return bad("delays must be 1 to 100 numbers of ms from 0 to 30 days");
            }
        }
        if self.max_age.is_some_and(|a| !ms_ok(a)) {
            return bad("maxAge must be a number of ms from 0 to 30 days");
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return bad("jitter must be between 0 and 1");
        }
        Ok(())
    }

    /// The delay before attempt number `attempts + 1` of a task of age `age_ms`,
    /// given a uniform random `u` in [0, 1) and the server's `Retry-After` if it sent
    /// one; `None` when out of attempts or too old.
    pub fn delay_ms(
        &self,
        attempts: u32,
        age_ms: f64,
        retry_after_ms: Option<f64>,
        u: f64,
    ) -> Option<f64> {
        if attempts >= self.max_attempts || self.max_age.is_some_and(|a| age_ms >= a) {
            return None;
        }
        let base = match (retry_after_ms, &self.delays) {
            (Some(ms), _) => ms.min(self.max_delay),
            (None, Some(d)) => d
                .get(attempts as usize)
                .or(d.last())
                .copied()
                .unwrap_or(0.0),
            (None, None) => {
                (self.base_delay * 2f64.powi(attempts.min(30) as i32)).min(self.max_delay)
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
        let d: Vec<_> = (0..8)
            .map(|a| p.delay_ms(a, 0.0, None, 0.5).unwrap())
            .collect();
        assert_eq!(d, vec![1e3, 2e3, 4e3, 8e3, 16e3, 32e3, 60e3, 60e3]);
        assert_eq!(p.delay_ms(8, 0.0, None, 0.5), None);
    }

    #[test]
    fn explicit_delays_repeat_their_last() {
        let p = RetryPolicy {
            delays: Some(vec![10.0, 50.0]),
            jitter: 0.0,
            max_attempts: 4,
            ..Default::default()
        };
        let d: Vec<_> = (0..5).map(|a| p.delay_ms(a, 0.0, None, 0.5)).collect();
        assert_eq!(
            d,
            vec![Some(10.0), Some(50.0), Some(50.0), Some(50.0), None]
        );
    }

    #[test]
    fn max_age_ends_retries() {
        let p = RetryPolicy {
            max_age: Some(1_000.0),
            ..Default::default()
        };
        assert!(p.delay_ms(0, 999.0, None, 0.5).is_some());
        assert_eq!(p.delay_ms(0, 1_000.0, None, 0.5), None);
    }

    #[test]
    fn retry_after_is_clamped_and_jittered() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay_ms(0, 0.0, Some(3_600_000.0), 0.5), Some(60_000.0));
        let lo = p.delay_ms(0, 0.0, Some(10_000.0), 0.0).unwrap();
        let hi = p.delay_ms(0, 0.0, Some(10_000.0), 0.999_999).unwrap();
        assert!(
            (8_000.0..=8_001.0).contains(&lo) && (11_999.0..=12_000.0).contains(&hi),
            "{lo} {hi}"
        );
    }

    #[test]
    fn policies_validate() {
        assert!(RetryPolicy::default().validate().is_ok());
        let bad = [
            RetryPolicy {
                max_attempts: 1001,
                ..Default::default()
            },
            RetryPolicy {
                base_delay: f64::NAN,
                ..Default::default()
            },
            RetryPolicy {
                base_delay: -1.0,
                ..Default::default()
            },
            RetryPolicy {
                max_delay: f64::INFINITY,
                ..Default::default()
            },
            RetryPolicy {
                base_delay: 10.0,
                max_delay: 5.0,
                ..Default::default()
            },
            RetryPolicy {
                delays: Some(vec![]),
                ..Default::default()
            },
            RetryPolicy {
                delays: Some(vec![1.0, -2.0]),
                ..Default::default()
            },
            RetryPolicy {
                max_age: Some(f64::NAN),
                ..Default::default()
            },
            RetryPolicy {
                jitter: 1.5,
                ..Default::default()
            },
        ];
        for p in bad {
            assert!(p.validate().is_err(), "{p:?}");
        }
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
