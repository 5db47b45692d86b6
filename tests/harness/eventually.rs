//! The one way tests wait: poll a check until it holds, and on timeout show the state the
//! check saw last, so a failure says where things stood rather than only that time ran out.

use serde_json::Value;
use std::time::{Duration, Instant};

/// How long end-to-end waits allow by default (generous: CI shares two cores).
pub const WAIT: Duration = Duration::from_secs(60);

/// Polls `check` until its outcome says done and returns the value. A check answers
/// `Result<T, S>` (`Err(state)`: not yet, and what to show on timeout), `Option<T>`
/// or `bool`; after `limit` this panics naming `what` and showing the last state.
/// `check` is an async closure (`async || …`, or `|| async …`), which may borrow
/// mutably what it polls.
pub async fn eventually<T, O: Outcome<T>>(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> O,
) -> T {
    let start = Instant::now();
    loop {
        match check().await.outcome() {
            Ok(v) => return v,
            Err(last) if start.elapsed() > limit => {
                panic!("timed out after {limit:?} waiting for {what}; last seen:\n{last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// What one poll of a check says: done (with its value) or the state shown if time runs out.
pub trait Outcome<T> {
    fn outcome(self) -> Result<T, String>;
}

impl<T, S: Shown> Outcome<T> for Result<T, S> {
    fn outcome(self) -> Result<T, String> {
        self.map_err(|s| s.shown())
    }
}

impl<T> Outcome<T> for Option<T> {
    fn outcome(self) -> Result<T, String> {
        self.ok_or_else(|| "(nothing)".into())
    }
}

impl Outcome<()> for bool {
    fn outcome(self) -> Result<(), String> {
        if self { Ok(()) } else { Err("false".into()) }
    }
}

/// `Ok(v)` when `ok`, else `Err(v)`: the usual last line of a check.
pub fn when<T>(v: T, ok: bool) -> Result<T, T> {
    if ok { Ok(v) } else { Err(v) }
}

/// What a timed-out wait prints of the last state it saw.
pub trait Shown {
    fn shown(&self) -> String;
}

impl Shown for Value {
    fn shown(&self) -> String {
        format!("{self:#}")
    }
}

impl Shown for String {
    fn shown(&self) -> String {
        self.clone()
    }
}

impl Shown for &str {
    fn shown(&self) -> String {
        self.to_string()
    }
}

impl Shown for () {
    fn shown(&self) -> String {
        "(nothing)".into()
    }
}

impl<T: std::fmt::Debug> Shown for Vec<T> {
    fn shown(&self) -> String {
        format!("{self:#?}")
    }
}

impl<A: Shown, B: Shown> Shown for (A, B) {
    fn shown(&self) -> String {
        format!("{}\n{}", self.0.shown(), self.1.shown())
    }
}
