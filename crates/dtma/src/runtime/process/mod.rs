//! The Process runtime: stdio servers as child processes, for hosts without Docker.
//!
//! Each child runs in a sandbox ([`sandbox`]: bubblewrap, else a user of its own, else
//! nothing — and then only if an admin allowed it), in its own process group (killed as
//! a group), with an environment of exactly what its entry declares, rlimits, and
//! `PR_SET_PDEATHSIG` so it dies with the DTMA; after a DTMA restart it is started again
//! (processes cannot be re-adopted, their pipes are gone). Its memory limit holds on
//! resident memory where this host gives the DTMA a memory cgroup ([`cgroup`]); its
//! stderr is read in bounded lines, its secret values masked, into a bounded log.

pub mod cgroup;
pub mod sandbox;
mod spawn;

use super::{Instance, Launch, Runtime, RuntimeError, Stats, StdioPipes};
use crate::logs::{LINE_MAX, LogLines, LogRing};
use async_trait::async_trait;
use bytes::Bytes;
use cgroup::{Cgroup, Cgroups};
use futures::StreamExt;
use futures::stream::BoxStream;
pub use sandbox::SandboxConfig;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::Child;
use toolbelt_model::ServerId;
use toolbelt_model::catalog::CatalogSource;
use toolbelt_model::dtma::{DesiredServer, Isolation};
use toolbelt_model::toolbox::ToolboxKind;

struct Entry {
    inst: Instance,
    child: Child,
    logs: Arc<LogRing>,
    /// Becomes true when the child's stderr reaches EOF (every line is in `logs`).
    stderr_done: tokio::sync::watch::Receiver<bool>,
    cgroup: Option<Cgroup>,
    /// The working directory of a server run as a user of its own (removed with it).
    scratch: Option<PathBuf>,
}

pub struct ProcessRuntime {
    children: Mutex<HashMap<ServerId, Entry>>,
    cgroups: Option<Cgroups>,
    sandbox: SandboxConfig,
    /// The uid each server runs as when the DTMA is root (stable for the DTMA's life, so
    /// a server's secret files and its process agree).
    uids: Mutex<HashMap<ServerId, u32>>,
}

impl ProcessRuntime {
    pub fn new(sandbox: SandboxConfig) -> ProcessRuntime {
        match sandbox.isolation {
            Isolation::None if sandbox.allow_unsandboxed => tracing::warn!(
                "process runtime: isolation {}; servers run unsandboxed (TOOLBELT_ALLOW_UNSANDBOXED)",
                sandbox.detail
            ),
            Isolation::None => tracing::warn!(
                "process runtime: isolation {}; servers are refused until bubblewrap is installed or TOOLBELT_ALLOW_UNSANDBOXED=1",
                sandbox.detail
            ),
            _ => tracing::info!("process runtime: isolation {}", sandbox.detail),
        }
        let cgroups = Cgroups::detect();
        match &cgroups {
            Some(c) => tracing::info!("process runtime: memory limits by {}", c.describe()),
            None => tracing::warn!(
                "process runtime: no memory cgroup this DTMA may use; memory limits are RLIMIT_DATA only"
            ),
        }
        ProcessRuntime {
            children: Mutex::new(HashMap::new()),
            cgroups,
            sandbox,
            uids: Mutex::new(HashMap::new()),
        }
    }

    /// The uid a server runs as: its own when the DTMA is root and sandboxes, else none
    /// (it runs as the DTMA's user, inside bubblewrap or not at all isolated).
    fn server_uid(&self, id: &ServerId) -> Option<u32> {
        if !sandbox::is_root() || self.sandbox.isolation == Isolation::None {
            return None;
        }
        let mut uids = self.uids.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = uids.get(id) {
            return Some(*u);
        }
        // FNV-1a of the id, probed past uids other servers hold.
        let mut h: u32 = 0x811c_9dc5;
        for b in id.as_str().bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        let mut slot = h % (sandbox::UID_SPAN - 1);
        while uids.values().any(|u| *u == sandbox::UID_BASE + slot) {
            slot = (slot + 1) % (sandbox::UID_SPAN - 1);
        }
        uids.insert(id.clone(), sandbox::UID_BASE + slot);
        Some(sandbox::UID_BASE + slot)
    }

    /// How memory limits are enforced here.
    pub fn memory_limit(&self) -> String {
        match &self.cgroups {
            Some(c) => c.describe(),
            None => "RLIMIT_DATA only (no memory cgroup)".into(),
        }
    }

    fn logs_of(&self, id: &ServerId) -> Option<(Arc<LogRing>, tokio::sync::watch::Receiver<bool>)> {
        self.children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|e| (e.logs.clone(), e.stderr_done.clone()))
    }
}

#[async_trait]
impl Runtime for ProcessRuntime {
    fn kind(&self) -> ToolboxKind {
        ToolboxKind::Process
    }

    async fn check(&self) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Instance>, RuntimeError> {
        let mut map = self.children.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::with_capacity(map.len());
        for e in map.values_mut() {
            if e.inst.running
                && let Ok(Some(status)) = e.child.try_wait()
            {
                e.inst.running = false;
                e.inst.exit_code = Some(status.code().map(i64::from).unwrap_or(-1));
            }
            out.push(e.inst.clone());
        }
        Ok(out)
    }

    async fn create(
        &self,
        launch: Launch<'_>,
    ) -> Result<(Instance, Option<StdioPipes>), RuntimeError> {
        let s = launch.server;
        let argv = match &s.source {
            CatalogSource::Package { command, .. } => command.clone(),
            CatalogSource::Image { image, .. } => {
                return Err(RuntimeError::Refused(format!(
                    "this toolbox runs processes, not container images ({image}); use a Docker toolbox"
                )));
            }
            CatalogSource::Remote { .. } => {
                return Err(RuntimeError::Refused(
                    "remote servers run on a remote toolbox".into(),
                ));
            }
        };
        let Some(program) = argv.first().cloned() else {
            return Err(RuntimeError::Refused(
                "the catalog entry has an empty command".into(),
            ));
        };
        if self.sandbox.isolation == Isolation::None && !self.sandbox.allow_unsandboxed {
            return Err(RuntimeError::Refused(format!(
                "this toolbox cannot sandbox servers (isolation {}): install bubblewrap \
                 (Debian package bubblewrap), or let servers run unsandboxed with \
                 TOOLBELT_ALLOW_UNSANDBOXED=1 on the DTMA",
                self.sandbox.detail
            )));
        }
        let uid = self.server_uid(&s.id);
        // Request fields never reach a shell: the program and its arguments go to execve.
        let spawn::Prepared {
            mut cmd,
            scratch,
            setuid,
        } = spawn::prepare(&self.sandbox, &launch, &argv, uid)?;
        let mem = s.limits.memory_mb;
        let cgroup = match &self.cgroups {
            Some(c) => {
                let name = format!("toolbelt-{}-g{}", s.id, s.generation);
                let bytes = u64::from(mem) * 1024 * 1024;
                Some(c.create(&name, bytes).map_err(|e| {
                    RuntimeError::Refused(format!("cannot make the memory cgroup {name}: {e}"))
                })?)
            }
            None => None,
        };
        let procs = cgroup.as_ref().map(Cgroup::procs);
        unsafe {
            cmd.pre_exec(move || spawn::limit(mem, procs.as_ref(), setuid));
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                if let Some(cg) = &cgroup {
                    cg.remove();
                }
                if let Some(d) = &scratch {
                    let _ = std::fs::remove_dir_all(d);
                }
                return Err(RuntimeError::Refused(format!(
                    "cannot start {program}: {e}"
                )));
            }
        };
        let pid = child.id().unwrap_or_default();
        let logs = Arc::new(LogRing::with_redactor(500, launch.redactor.clone()));
        let (done_tx, stderr_done) = tokio::sync::watch::channel(false);
        if let Some(err) = child.stderr.take() {
            let logs = logs.clone();
            tokio::spawn(async move {
                // Cut into lines of at most LINE_MAX (a newline-free stream never grows the
                // DTMA's memory), each masked before the ring keeps it.
                let mut lines = tokio_util::codec::FramedRead::new(err, LogLines::new(LINE_MAX));
                while let Some(Ok(piece)) = lines.next().await {
                    logs.push_piece(&piece);
                }
                let _ = done_tx.send(true);
            });
        }
        let pipes = StdioPipes {
            stdout: Box::new(
                child
                    .stdout
                    .take()
                    .ok_or_else(|| RuntimeError::Refused("no stdout".into()))?,
            ),
            stdin: Box::new(
                child
                    .stdin
                    .take()
                    .ok_or_else(|| RuntimeError::Refused("no stdin".into()))?,
            ),
        };
        let inst = Instance {
            server_id: s.id.clone(),
            name: s.name.clone(),
            generation: s.generation,
            handle: pid.to_string(),
            running: true,
            started_at: Some(chrono::Utc::now()),
            exit_code: None,
            image_digest: None,
            endpoint: None,
        };
        let mut map = self.children.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(
            s.id.clone(),
            Entry {
                inst: inst.clone(),
                child,
                logs,
                stderr_done,
                cgroup,
                scratch,
            },
        );
        Ok((inst, Some(pipes)))
    }

    fn stdio_closes_with_server(&self) -> bool {
        true
    }

    fn isolation(&self) -> Option<(Isolation, bool)> {
        Some((self.sandbox.isolation, self.sandbox.allow_unsandboxed))
    }

    fn secrets_owner(&self, server: &DesiredServer) -> Option<u32> {
        self.server_uid(&server.id)
    }

    async fn attach(&self, _inst: &Instance) -> Result<StdioPipes, RuntimeError> {
        Err(RuntimeError::Refused(
            "a process's pipes cannot be re-attached; it is restarted instead".into(),
        ))
    }

    async fn remove(&self, inst: &Instance) -> Result<(), RuntimeError> {
        let entry = self
            .children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&inst.server_id);
        let Some(mut e) = entry else { return Ok(()) };
        if let Some(pid) = e.child.id() {
            // The whole group: a server's own children go with it.
            unsafe { libc::killpg(pid as i32, libc::SIGTERM) };
            if tokio::time::timeout(Duration::from_secs(3), e.child.wait())
                .await
                .is_err()
            {
                unsafe { libc::killpg(pid as i32, libc::SIGKILL) };
                let _ = e.child.wait().await;
            }
        }
        if let Some(cg) = e.cgroup.take() {
            // Its last processes may take a moment to leave the cgroup.
            for _ in 0..50 {
                cg.remove();
                if !cg.dir().exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if let Some(d) = e.scratch.take() {
            let _ = tokio::fs::remove_dir_all(d).await;
        }
        Ok(())
    }

    async fn logs(
        &self,
        inst: &Instance,
        tail: usize,
        follow: bool,
    ) -> Result<BoxStream<'static, Bytes>, RuntimeError> {
        let (logs, mut done) = self
            .logs_of(&inst.server_id)
            .ok_or(RuntimeError::NotFound)?;
        if !follow && !inst.running {
            // An exited process's last words may still be in its stderr pipe.
            let _ = tokio::time::timeout(Duration::from_secs(1), done.wait_for(|d| *d)).await;
        }
        Ok(logs.stream(tail, follow))
    }

    async fn stats(&self, inst: &Instance) -> Result<Stats, RuntimeError> {
        let (usage, limit) = {
            let map = self.children.lock().unwrap_or_else(|p| p.into_inner());
            let cg = map.get(&inst.server_id).and_then(|e| e.cgroup.as_ref());
            (
                cg.and_then(Cgroup::usage_bytes),
                cg.and_then(Cgroup::limit_bytes),
            )
        };
        let pid: u32 = inst.handle.parse().map_err(|_| RuntimeError::NotFound)?;
        // The whole tree: under bubblewrap the handle is bwrap, the server its descendant.
        let (rss_kb, threads) = tokio::task::spawn_blocking(move || tree_usage(pid))
            .await
            .ok()
            .flatten()
            .ok_or(RuntimeError::NotFound)?;
        Ok(Stats {
            cpu_percent: None,
            memory_bytes: usage.or(Some(rss_kb * 1024)),
            memory_limit_bytes: limit,
            pids: Some(threads),
        })
    }
}

/// Resident kB and threads of `pid` and its descendants (`None`: `pid` is gone).
fn tree_usage(pid: u32) -> Option<(u64, u64)> {
    let field = |status: &str, k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (mut rss, mut threads) = (0, 0);
    let mut todo = vec![pid];
    let mut seen = 0;
    while let Some(p) = todo.pop() {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) else {
            if p == pid {
                return None;
            }
            continue;
        };
        rss += field(&status, "VmRSS:");
        threads += field(&status, "Threads:");
        seen += 1;
        if seen > 4096 {
            break;
        }
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            todo.extend(
                kids.split_whitespace()
                    .filter_map(|k| k.parse::<u32>().ok()),
            );
        }
    }
    Some((rss, threads))
}
