//! An instance that exited or never became usable: its exit code and log tail are read,
//! it is removed, and its [`History`](super::history::History) decides whether it is
//! started again after a backoff or left in `error_runtime`.

use super::history::{Verdict, failure_report};
use crate::runtime::{Instance, RuntimeError};
use crate::supervisor::Supervisor;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use toolbelt_model::ServerId;
use toolbelt_model::dtma::Health;
use toolbelt_model::server::ServerStatus;

/// Log lines kept in a failure's report.
const TAIL_LINES: usize = 20;

impl Supervisor {
    /// An instance's log as the API serves it: the runtime's (an engine's own log, which
    /// the DTMA does not keep, or a process's ring, masked already) re-cut into lines and
    /// masked with the server's secret values; it starts by naming any value too short
    /// to be masked.
    pub async fn logs(
        &self,
        inst: &Instance,
        tail: usize,
        follow: bool,
    ) -> Result<BoxStream<'static, Bytes>, RuntimeError> {
        let r = self.redactor(&inst.server_id).await;
        let stream = self.runtime.logs(inst, tail, follow).await?;
        let notes: Vec<Bytes> = r
            .unmasked()
            .iter()
            .map(|n| Bytes::from(crate::redact::unmasked_note(n) + "\n"))
            .collect();
        Ok(futures::stream::iter(notes)
            .chain(crate::logs::masked(stream, r))
            .boxed())
    }

    pub(super) async fn crashed(self: &Arc<Self>, id: &ServerId, inst: Instance) {
        let inst = if inst.running {
            self.settle(inst).await
        } else {
            inst
        };
        self.failed_instance(id, inst, None).await
    }

    /// Gives an instance that is going down a moment to report its exit code.
    pub(super) async fn settle(&self, inst: Instance) -> Instance {
        for _ in 0..10 {
            if let Ok(list) = self.runtime.list().await
                && let Some(i) = list.into_iter().find(|i| i.handle == inst.handle)
                && !i.running
            {
                return i;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        inst
    }

    /// Counted, logged, removed, and restarted with backoff — or, after a crash loop,
    /// left in `error_runtime`.
    pub(super) async fn failed_instance(
        self: &Arc<Self>,
        id: &ServerId,
        inst: Instance,
        reason: Option<String>,
    ) {
        let tail = self.log_tail(&inst, TAIL_LINES).await;
        // A handshake error may quote the server's own reply.
        let reason = reason.map(|r| self.masked(id, r));
        let _ = self.runtime.remove(&inst).await;
        let name = {
            let mut map = self.lock();
            let Some(m) = map.get_mut(id) else { return };
            let verdict = m.history.crashed(&inst.handle, Instant::now());
            m.instance = None;
            m.upstream = None;
            m.health = Health::Failing;
            m.status = match verdict {
                Verdict::GiveUp { .. } => ServerStatus::ErrorRuntime,
                Verdict::Retry { .. } => ServerStatus::Deploying,
            };
            m.last_error = Some(failure_report(
                verdict,
                inst.exit_code,
                reason.as_deref(),
                &tail,
            ));
            m.spec.name.clone()
        };
        self.set_bridge(&name, None);
        tracing::warn!(server = %name, exit = ?inst.exit_code, "server exited");
    }

    /// The instance's last log lines (the runtime's, else what the bridge kept), masked.
    async fn log_tail(&self, inst: &Instance, n: usize) -> String {
        let mut out = Vec::new();
        if let Ok(mut s) = self.logs(inst, n, false).await {
            let collect = async {
                while let Some(b) = s.next().await {
                    out.extend_from_slice(&b);
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(5), collect).await;
        }
        let text = String::from_utf8_lossy(&out).trim_end().to_string();
        if text.is_empty()
            && let Some(m) = self.lock().get(&inst.server_id)
        {
            return m.logs.tail(n).join("\n");
        }
        text
    }
}
