//! Token buckets per agent and per (agent, tool). A refused call is told when to retry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("bad rate {0:?}: want RATE or RATE:BURST calls per second")]
    Rate(String),
    #[error("bad burst in {0:?}")]
    Burst(String),
    #[error("bad rate {0:?}: the rate must be positive and the burst at least 1")]
    OutOfRange(String),
}

impl Rate {
    /// `"RATE"` or `"RATE:BURST"` calls per second (burst defaults to twice the rate).
    pub fn parse(s: &str) -> Result<Rate, RateError> {
        let (r, b) = match s.split_once(':') {
            Some((r, b)) => (r, Some(b)),
            None => (s, None),
        };
        let per_second: f64 = r
            .trim()
            .parse()
            .map_err(|_| RateError::Rate(s.to_string()))?;
        let burst: f64 = match b {
            Some(b) => b
                .trim()
                .parse()
                .map_err(|_| RateError::Burst(s.to_string()))?,
            None => per_second * 2.0,
        };
        if !(per_second > 0.0 && burst >= 1.0) {
            return Err(RateError::OutOfRange(s.to_string()));
        }
        Ok(Rate { per_second, burst })
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct Limiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    pub fn new(rate: Rate) -> Limiter {
        Limiter {
            rate,
            buckets: Mutex::default(),
        }
    }

    /// Takes one token for `key`, or says how long until one is available.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, b| now.duration_since(b.at) < Duration::from_secs(600));
        }
        let b = map.entry(key.to_string()).or_insert(Bucket {
            tokens: self.rate.burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * self.rate.per_second)
            .min(self.rate.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - b.tokens) / self.rate.per_second,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusal_with_a_retry_time() {
        let l = Limiter::new(Rate::parse("2:3").unwrap());
        for _ in 0..3 {
            assert!(l.take("a").is_ok());
        }
        let wait = l.take("a").unwrap_err();
        assert!(
            wait > Duration::from_millis(100) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert!(l.take("b").is_ok(), "buckets are per key");
        assert_eq!(Rate::parse("0"), Err(RateError::OutOfRange("0".into())));
        assert_eq!(Rate::parse("x"), Err(RateError::Rate("x".into())));
        assert_eq!(Rate::parse("1:y"), Err(RateError::Burst("1:y".into())));
    }
}
