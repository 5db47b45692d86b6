//! Backoff for repeated attempts (logins): a few free attempts, then each one opens only
//! after a wait that doubles, up to a cap; a key left alone long enough is forgotten.
//!
//! Pure arithmetic over a [`Count`] and the time; the store keeps the counts (so every
//! replica sees the same ones) and applies these rules inside one transaction.

use std::time::Duration;

/// How one kind of key (a client address, an account) is throttled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts allowed before the first wait.
    pub free: u32,
    /// The first wait; each further attempt doubles it.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
    /// A key with no attempt (and no wait running) for this long starts over, and its row
    /// may be deleted.
    pub forget: Duration,
}

/// What is kept per key. `failures` counts attempts not (yet) known to have succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Count {
    pub failures: u32,
    /// No attempt before this time (ms since the epoch); 0 when there is no wait.
    pub blocked_until_ms: i64,
    /// The last counted attempt (ms since the epoch).
    pub updated_ms: i64,
}

impl Backoff {
    /// One more attempt at `now_ms`: the new count, or `Err(until_ms)` while a wait runs
    /// (then nothing is counted). The attempt that uses up the free ones is let through
    /// and starts the first wait, so at most `free` attempts run before any waiting.
    pub fn attempt(&self, c: Count, now_ms: i64) -> Result<Count, i64> {
        if c.blocked_until_ms > now_ms {
            return Err(c.blocked_until_ms);
        }
        let failures = if self.forgotten(c, now_ms) {
            1
        } else {
            c.failures.saturating_add(1)
        };
        Ok(Count {
            failures,
            blocked_until_ms: self.block_end(failures, now_ms),
            updated_ms: now_ms,
        })
    }

    /// An attempt counted by [`Backoff::attempt`] succeeded: it no longer counts, and a
    /// wait it started is lifted. (An account's count is reset instead: see the service.)
    pub fn undo(&self, c: Count) -> Count {
        let failures = c.failures.saturating_sub(1);
        Count {
            failures,
            blocked_until_ms: if failures >= self.free {
                c.blocked_until_ms
            } else {
                0
            },
            updated_ms: c.updated_ms,
        }
    }

    /// Nothing about this count matters any more at `now_ms`.
    pub fn forgotten(&self, c: Count, now_ms: i64) -> bool {
        let last = c.updated_ms.max(c.blocked_until_ms);
        now_ms.saturating_sub(last) >= ms(self.forget)
    }

    /// When the wait after the `failures`-th attempt ends (0: no wait).
    fn block_end(&self, failures: u32, now_ms: i64) -> i64 {
        if failures < self.free.max(1) {
            return 0;
        }
        let doublings = (failures - self.free.max(1)).min(32);
        let wait = ms(self.base)
            .saturating_mul(1i64 << doublings)
            .min(ms(self.max));
        now_ms.saturating_add(wait.max(1))
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        free: 3,
        base: Duration::from_secs(1),
        max: Duration::from_secs(10),
        forget: Duration::from_secs(60),
    };

    #[test]
    fn free_attempts_then_doubling_waits_up_to_the_cap() {
        let mut c = Count::default();
        let mut t = 1_000_000;
        for _ in 0..2 {
            c = B.attempt(c, t).unwrap();
            assert_eq!(c.blocked_until_ms, 0);
        }
        c = B.attempt(c, t).unwrap();
        assert_eq!(c.blocked_until_ms, t + 1000, "the third starts a 1 s wait");
        assert_eq!(
            B.attempt(c, t + 999),
            Err(t + 1000),
            "refused while waiting"
        );
        let mut waits = Vec::new();
        for _ in 0..6 {
            t = c.blocked_until_ms;
            c = B.attempt(c, t).unwrap();
            waits.push(c.blocked_until_ms - t);
        }
        assert_eq!(waits, [2000, 4000, 8000, 10000, 10000, 10000]);
        assert_eq!(c.failures, 9);
    }

    #[test]
    fn a_quiet_key_is_forgotten_counting_from_the_end_of_its_wait() {
        let mut c = Count::default();
        for _ in 0..3 {
            c = B.attempt(c, 0).unwrap();
        }
        assert!(
            !B.forgotten(c, 60_000),
            "60 s after the attempt, but the wait ended at 1 s"
        );
        assert!(B.forgotten(c, 61_000));
        let c = B.attempt(c, 61_000).unwrap();
        assert_eq!((c.failures, c.blocked_until_ms), (1, 0), "starts over");
    }

    #[test]
    fn an_undone_attempt_lifts_the_wait_it_started() {
        let mut c = Count::default();
        for _ in 0..3 {
            c = B.attempt(c, 5).unwrap();
        }
        assert!(c.blocked_until_ms > 0);
        let u = B.undo(c);
        assert_eq!((u.failures, u.blocked_until_ms), (2, 0));
        let c = B.attempt(B.attempt(u, 5).unwrap(), 5);
        assert!(c.is_err(), "the earlier failures still count");
    }

    #[test]
    fn huge_counts_and_settings_do_not_overflow() {
        let b = Backoff {
            free: 0,
            base: Duration::MAX,
            max: Duration::MAX,
            forget: Duration::MAX,
        };
        let c = Count {
            failures: u32::MAX,
            blocked_until_ms: 0,
            updated_ms: i64::MAX - 1,
        };
        let c = b.attempt(c, i64::MAX - 1).unwrap();
        assert_eq!(c.blocked_until_ms, i64::MAX);
        assert!(!b.forgotten(c, i64::MAX));
    }
}
