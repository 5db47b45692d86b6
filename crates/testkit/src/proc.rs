//! Processes under test: the built `toolbelt` binary, free ports, bounded waits.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The `toolbelt` binary of this build (next to the test executable's `deps/` dir).
pub fn toolbelt_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TOOLBELT_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("toolbelt");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first (cargo build)",
        bin.display()
    );
    bin
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `f` until it returns Some or `limit` passes; panics with `what` on timeout.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
