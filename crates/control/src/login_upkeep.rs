//! The login protections' background work, every failure window: anonymous failures
//! summed up into the audit log ([`crate::failure_ledger`]), and throttle rows nobody has
//! touched for longer than the policy remembers deleted (so the table stays bounded).

use crate::service::login_limits;
use crate::state::AppState;
use std::time::Duration;

pub async fn run(st: AppState) {
    let every = st
        .config
        .login
        .failure_window
        .max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(every).await;
        tick(&st).await;
    }
}

/// One round (also run at shutdown, so a window's summaries are not lost).
pub async fn tick(st: &AppState) {
    match st.failures.flush(&st.store).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(summaries = n, "anonymous failures audited"),
        Err(e) => {
            tracing::warn!(error = %e, "could not audit anonymous failures; kept for the next round")
        }
    }
    if let Err(e) = login_limits::sweep(st).await {
        tracing::warn!(error = %e, "login throttle sweep failed");
    }
}
