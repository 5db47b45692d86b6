//! Watching bridged stdio servers: their tool count kept fresh, reconcile woken when
//! their stdio closes, and a periodic ping whose result is the reported health.

use crate::bridge::mux::Upstream;
use crate::supervisor::Supervisor;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use toolbelt_model::ServerId;
use toolbelt_model::dtma::Health;

impl Supervisor {
    /// Keeps the tool count fresh and wakes reconcile when the server's stdio closes.
    pub(super) fn watch(self: &Arc<Self>, id: ServerId, up: Arc<Upstream>) {
        let s = self.clone();
        tokio::spawn(async move {
            let mut rx = up.subscribe();
            loop {
                tokio::select! {
                    _ = up.closed() => break,
                    msg = rx.recv() => match msg {
                        Ok(line) if line.contains("notifications/tools/list_changed") => {
                            let tools = up.request("tools/list", json!({}), Duration::from_secs(10)).await;
                            let n = tools.pointer("/result/tools").and_then(Value::as_array).map(|a| a.len() as u32);
                            if let Some(d) = s.lock().get_mut(&id).and_then(|m| m.discovery.as_mut()) {
                                d.tool_count = n;
                            }
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => break,
                    }
                }
            }
            s.wake.notify_one();
        });
    }

    /// Pings every bridged stdio server; the result is the health in status reports.
    pub(super) async fn health_loop(self: Arc<Self>, stop: CancellationToken) {
        let every = std::env::var("TOOLBELT_HEALTH_INTERVAL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.cancelled() => return,
            }
            let ups: Vec<(ServerId, Arc<Upstream>)> = self
                .lock()
                .iter()
                .filter_map(|(id, m)| m.upstream.clone().map(|u| (id.clone(), u)))
                .collect();
            for (id, up) in ups {
                let r = up.request("ping", json!({}), Duration::from_secs(5)).await;
                let h = if r.get("result").is_some() {
                    Health::Ok
                } else {
                    Health::Failing
                };
                if let Some(m) = self.lock().get_mut(&id) {
                    m.health = h;
                }
            }
        }
    }
}
