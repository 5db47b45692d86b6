//! The Process runtime: stdio servers as child processes, for hosts without Docker.
//!
//! Each child runs in its own process group (killed as a group), with a cleared
//! environment, rlimits, and `PR_SET_PDEATHSIG` so it dies with the DTMA; after a DTMA
//! restart it is started again (processes cannot be re-adopted, their pipes are gone).
//! Its memory limit holds on resident memory where this host gives the DTMA a memory
//! cgroup ([`cgroup`]); its stderr is read in bounded lines into a bounded log.

pub mod cgroup;

use super::{Instance, Launch, Runtime, RuntimeError, Stats, StdioPipes};
use crate::bridge::lines::TolerantLines;
use crate::logs::LogRing;
use async_trait::async_trait;
use bytes::Bytes;
use cgroup::{Cgroup, Cgroups};
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::{Child, Command};
use toolbelt_model::ServerId;
use toolbelt_model::catalog::CatalogSource;
use toolbelt_model::toolbox::ToolboxKind;

struct Entry {
    inst: Instance,
    child: Child,
    logs: Arc<LogRing>,
    /// Becomes true when the child's stderr reaches EOF (every line is in `logs`).
    stderr_done: tokio::sync::watch::Receiver<bool>,
    cgroup: Option<Cgroup>,
}

/// The longest stderr line kept; longer ones are dropped with a note (a newline-free
/// stream never grows the DTMA's memory).
pub const STDERR_LINE_MAX: usize = 8 * 1024;

pub struct ProcessRuntime {
    children: Mutex<HashMap<ServerId, Entry>>,
    cgroups: Option<Cgroups>,
}

impl Default for ProcessRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessRuntime {
    pub fn new() -> ProcessRuntime {
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
        }
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

/// Sets limits in the child between fork and exec. Only async-signal-safe calls.
fn limit(memory_mb: u32, cgroup_procs: Option<&std::ffi::CString>) -> std::io::Result<()> {
    if let Some(procs) = cgroup_procs {
        cgroup::join(procs)?;
    }
    unsafe {
        // Die with the DTMA instead of lingering with a dead pipe.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let set = |res, v: u64| {
            let r = libc::rlimit {
                rlim_cur: v,
                rlim_max: v,
            };
            libc::setrlimit(res, &r)
        };
        set(libc::RLIMIT_CORE, 0);
        set(libc::RLIMIT_NOFILE, 4096);
        // Heap and private writable mappings: what grows when a server leaks memory.
        set(libc::RLIMIT_DATA, u64::from(memory_mb) * 1024 * 1024);
    }
    Ok(())
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
        let Some((program, args)) = argv.split_first() else {
            return Err(RuntimeError::Refused(
                "the catalog entry has an empty command".into(),
            ));
        };
        // Request fields never reach a shell: the program and its arguments go to execve.
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
            )
            .env("HOME", std::env::temp_dir())
            .env("LANG", "C.UTF-8")
            .envs(&s.env)
            .envs(&launch.secret_env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        if let Some(dir) = &launch.secrets_dir {
            cmd.env("TOOLBELT_SECRETS_DIR", dir);
        }
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
            cmd.pre_exec(move || limit(mem, procs.as_ref()));
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                if let Some(cg) = &cgroup {
                    cg.remove();
                }
                return Err(RuntimeError::Refused(format!(
                    "cannot start {program}: {e}"
                )));
            }
        };
        let pid = child.id().unwrap_or_default();
        let logs = Arc::new(LogRing::new(500));
        let (done_tx, stderr_done) = tokio::sync::watch::channel(false);
        if let Some(err) = child.stderr.take() {
            let logs = logs.clone();
            tokio::spawn(async move {
                let mut lines =
                    tokio_util::codec::FramedRead::new(err, TolerantLines::new(STDERR_LINE_MAX));
                while let Some(Ok(l)) = lines.next().await {
                    match l {
                        Ok(l) => logs.push(l),
                        Err(why) => logs.push(format!("[stderr: {why}, dropped]")),
                    }
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
            },
        );
        Ok((inst, Some(pipes)))
    }

    fn stdio_closes_with_server(&self) -> bool {
        true
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
        let status = tokio::fs::read_to_string(format!("/proc/{}/status", inst.handle))
            .await
            .map_err(|_| RuntimeError::NotFound)?;
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        Ok(Stats {
            cpu_percent: None,
            memory_bytes: usage.or(field("VmRSS:").map(|kb| kb * 1024)),
            memory_limit_bytes: limit,
            pids: field("Threads:"),
        })
    }
}
