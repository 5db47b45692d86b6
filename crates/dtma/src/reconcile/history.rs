//! What a server has been through: restarts, the quick crashes in a row, when it may be
//! started again, and whether reconcile gave up on it. Pure bookkeeping on the tokio
//! clock, so crash loops are tested with a paused clock.

use std::time::Duration;
use tokio::time::Instant;

/// Consecutive quick crashes after which a server is left in `error_runtime`.
pub const CRASH_LOOP_LIMIT: u32 = 5;
/// A run shorter than this counts as a quick crash.
pub const QUICK: Duration = Duration::from_secs(30);
/// How long to wait before trying again when the engine does not answer.
pub const ENGINE_RETRY: Duration = Duration::from_secs(5);
/// The longest wait between two attempts.
pub const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// The wait after `failures` failures in a row: 1 s, 2 s, 4 s … up to [`BACKOFF_CAP`].
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(6)).min(BACKOFF_CAP)
}

#[derive(Debug, Clone)]
pub struct History {
    /// Instances that failed after starting (reported as the restart count).
    pub restarts: i64,
    /// Quick crashes in a row (the crash-loop count).
    pub fast_failures: u32,
    /// Failed starts in a row (their own backoff; they never give up, and a server that
    /// waited for its secrets is not one crash from giving up once it runs).
    pub failed_starts: u32,
    /// No create before this.
    pub next_attempt: Instant,
    /// Gave up after repeated crashes; waits for a new generation or desired state.
    pub gave_up: bool,
    /// The instance running now (its handle) and since when, on the DTMA's clock.
    running: Option<(String, Instant)>,
}

/// What follows an instance's failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Started again once the backoff has passed.
    Retry { at: Instant },
    /// A crash loop: left in `error_runtime` until restarted or redeployed.
    GiveUp { crashes: u32 },
}

impl History {
    pub fn new(now: Instant) -> History {
        History {
            restarts: 0,
            fast_failures: 0,
            failed_starts: 0,
            next_attempt: now,
            gave_up: false,
            running: None,
        }
    }

    /// Whether reconcile may create an instance now.
    pub fn may_start(&self, now: Instant) -> bool {
        !self.gave_up && now >= self.next_attempt
    }

    /// A new generation or desired state: the crash-loop verdict is cleared.
    pub fn fresh_start(&mut self, now: Instant) {
        self.gave_up = false;
        self.fast_failures = 0;
        self.failed_starts = 0;
        self.next_attempt = now;
    }

    /// An instance started by this DTMA is running.
    pub fn started(&mut self, handle: &str, now: Instant) {
        self.failed_starts = 0;
        self.running = Some((handle.to_string(), now));
    }

    /// An instance found running that had run for `ran` already (by the engine's
    /// account): one that outlived a DTMA restart, or whose attach stream dropped. Only
    /// whether it passed [`QUICK`] matters; a run this DTMA saw start is kept as is.
    pub fn adopted(&mut self, handle: &str, ran: Duration, now: Instant) {
        if self.running.as_ref().is_some_and(|(h, _)| h == handle) {
            return;
        }
        let since = now.checked_sub(ran.min(QUICK)).unwrap_or(now);
        self.running = Some((handle.to_string(), since));
    }

    /// A start that failed before the server ran; returns when to try again.
    pub fn start_failed(&mut self, now: Instant) -> Instant {
        self.failed_starts += 1;
        self.next_attempt = now + backoff(self.failed_starts);
        self.next_attempt
    }

    /// The engine did not answer a create: try again soon, counting nothing.
    pub fn engine_unavailable(&mut self, now: Instant) {
        self.next_attempt = now + ENGINE_RETRY;
    }

    /// The instance `handle` exited or never became usable. A run of [`QUICK`] or longer
    /// resets the count; a run of unknown length counts as quick.
    pub fn crashed(&mut self, handle: &str, now: Instant) -> Verdict {
        let quick = match self.running.take() {
            Some((h, since)) if h == handle => now.duration_since(since) < QUICK,
            _ => true,
        };
        self.fast_failures = if quick { self.fast_failures + 1 } else { 1 };
        self.restarts += 1;
        if self.fast_failures >= CRASH_LOOP_LIMIT {
            self.gave_up = true;
            Verdict::GiveUp {
                crashes: self.fast_failures,
            }
        } else {
            self.next_attempt = now + backoff(self.fast_failures);
            Verdict::Retry {
                at: self.next_attempt,
            }
        }
    }

    /// The instance is gone on purpose (stopped, replaced).
    pub fn stopped(&mut self) {
        self.running = None;
    }
}

/// The `last_error` of a failed instance: why, and the last lines it logged.
pub fn failure_report(
    verdict: Verdict,
    exit_code: Option<i64>,
    reason: Option<&str>,
    tail: &str,
) -> String {
    let code = exit_code
        .map(|c| c.to_string())
        .unwrap_or_else(|| "?".into());
    let mut why = match verdict {
        Verdict::GiveUp { crashes } => {
            let mut w = format!(
                "crashed {crashes} times in a row (last exit code {code}); not restarting until it is restarted or redeployed"
            );
            if let Some(r) = reason {
                w = format!("{w}; {r}");
            }
            w
        }
        Verdict::Retry { .. } => reason
            .map(str::to_string)
            .unwrap_or_else(|| format!("exited with code {code}")),
    };
    if !tail.is_empty() {
        why = format!("{why}; last log lines:\n{tail}");
    }
    why
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
