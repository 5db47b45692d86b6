//! An in-memory [`Runtime`] for tests. Each instance's stdio is a `tokio::io::duplex`
//! served by a tiny MCP server task; instances can be made to crash, exit, hang, fail to
//! be created, lose their pipes or disappear. It runs on tokio's clock, so tests use a
//! paused one. `docker()` behaves like the Docker runtime (instances outlive a DTMA and
//! can be re-attached), `process()` like the Process runtime (they cannot).

use super::{Instance, Launch, Runtime, RuntimeError, Stats, StdioPipes};
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use toolbelt_model::catalog::Transport;
use toolbelt_model::toolbox::ToolboxKind;

/// How the next instances of a server behave once started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Answers `initialize`, `tools/list`, `ping` and `tools/call` (echo).
    Serve,
    /// Exits with this code right after starting, logging "crashing on start".
    Crash(i64),
    /// Reads requests and never answers.
    Hang,
}

/// A create the runtime will refuse.
#[derive(Debug, Clone)]
pub enum Refuse {
    Refused(String),
    Unavailable(String),
}

/// One create, as the runtime saw it.
#[derive(Debug, Clone)]
pub struct Created {
    pub name: String,
    pub generation: i64,
    pub handle: String,
    pub at: Instant,
    pub secrets_dir: Option<PathBuf>,
    pub secret_env: BTreeMap<String, String>,
}

struct Fake {
    inst: Instance,
    logs: Vec<String>,
    /// Ends the server task, closing its pipes.
    stop: CancellationToken,
}

#[derive(Default)]
struct State {
    next_pid: u64,
    instances: BTreeMap<String, Fake>,
    starts: HashMap<String, Start>,
    refusals: HashMap<String, VecDeque<Refuse>>,
    unavailable: Option<String>,
    remove_delay: Duration,
    created: Vec<Created>,
    /// Every create asked for, refused or not: (server, when).
    attempts: Vec<(String, Instant)>,
    removed: Vec<String>,
    attaches: usize,
}

pub struct FakeRuntime {
    kind: ToolboxKind,
    state: Mutex<State>,
}

impl FakeRuntime {
    pub fn docker() -> FakeRuntime {
        FakeRuntime::of(ToolboxKind::Docker)
    }

    pub fn process() -> FakeRuntime {
        FakeRuntime::of(ToolboxKind::Process)
    }

    fn of(kind: ToolboxKind) -> FakeRuntime {
        FakeRuntime {
            kind,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How the next instances of `server` behave.
    pub fn behave(&self, server: &str, start: Start) {
        self.state().starts.insert(server.to_string(), start);
    }

    /// The next create of `server` fails so.
    pub fn refuse_next(&self, server: &str, why: Refuse) {
        self.state()
            .refusals
            .entry(server.to_string())
            .or_default()
            .push_back(why);
    }

    /// The engine stops answering (`Some`) or comes back (`None`).
    pub fn set_unavailable(&self, why: Option<&str>) {
        self.state().unavailable = why.map(str::to_string);
    }

    /// Removing an instance takes this long (a container's stop timeout).
    pub fn set_remove_delay(&self, d: Duration) {
        self.state().remove_delay = d;
    }

    /// The running instance of `server` exits with `code` after logging `last_words`.
    pub fn exit(&self, server: &str, code: i64, last_words: &str) {
        let mut st = self.state();
        let f = st
            .instances
            .values_mut()
            .find(|f| f.inst.name == server && f.inst.running)
            .unwrap_or_else(|| panic!("no running instance of {server}"));
        f.logs.push(last_words.to_string());
        f.inst.running = false;
        f.inst.exit_code = Some(code);
        f.stop.cancel();
    }

    /// The instance of `server` disappears (removed behind the DTMA's back).
    pub fn vanish(&self, server: &str) {
        let mut st = self.state();
        st.instances.retain(|_, f| {
            let keep = f.inst.name != server;
            if !keep {
                f.stop.cancel();
            }
            keep
        });
    }

    /// The instance's stdio drops but it keeps running (an engine restart cut the
    /// attach stream).
    pub fn cut_pipes(&self, server: &str) {
        for f in self.state().instances.values() {
            if f.inst.name == server {
                f.stop.cancel();
            }
        }
    }

    pub fn created(&self) -> Vec<Created> {
        self.state().created.clone()
    }

    /// When each create of `server` was asked for, refused or not.
    pub fn attempts(&self, server: &str) -> Vec<Instant> {
        self.state()
            .attempts
            .iter()
            .filter(|(n, _)| n == server)
            .map(|(_, t)| *t)
            .collect()
    }

    pub fn removed(&self) -> Vec<String> {
        self.state().removed.clone()
    }

    pub fn attaches(&self) -> usize {
        self.state().attaches
    }

    /// Handles of the instances there now, running or not.
    pub fn handles(&self) -> Vec<String> {
        self.state().instances.keys().cloned().collect()
    }

    fn check_available(&self) -> Result<(), RuntimeError> {
        match &self.state().unavailable {
            Some(why) => Err(RuntimeError::Unavailable(why.clone())),
            None => Ok(()),
        }
    }
}

/// The DTMA's end of a fresh duplex and the server task on the other end.
fn pipes(start: Start, stop: CancellationToken) -> StdioPipes {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    match start {
        Start::Serve => {
            tokio::spawn(serve(theirs, false, stop));
        }
        Start::Hang => {
            tokio::spawn(serve(theirs, true, stop));
        }
        // Exited already: its end of the pipes is closed.
        Start::Crash(_) => drop(theirs),
    }
    let (stdout, stdin) = tokio::io::split(ours);
    StdioPipes {
        stdout: Box::new(stdout),
        stdin: Box::new(stdin),
    }
}

/// A minimal MCP server on one line-delimited JSON-RPC stream.
async fn serve(io: DuplexStream, hang: bool, stop: CancellationToken) {
    let (r, mut w) = tokio::io::split(io);
    let mut lines = tokio::io::BufReader::new(r).lines();
    loop {
        let line = tokio::select! {
            _ = stop.cancelled() => return,
            l = lines.next_line() => match l {
                Ok(Some(l)) => l,
                _ => return,
            },
        };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let (Some(id), Some(method)) = (msg.get("id"), msg["method"].as_str()) else {
            continue;
        };
        if hang {
            continue;
        }
        let result = match method {
            "initialize" => json!({
                "protocolVersion": "2025-11-25",
                "capabilities": { "tools": { "listChanged": true } },
                "serverInfo": { "name": "fake-mcp", "version": "1" }
            }),
            "tools/list" => json!({ "tools": [
                { "name": "echo", "inputSchema": { "type": "object" } },
                { "name": "add", "inputSchema": { "type": "object" } }
            ] }),
            "tools/call" => {
                json!({ "content": [{ "type": "text", "text": msg["params"]["arguments"]["text"] }] })
            }
            _ => json!({}),
        };
        let mut out = json!({ "jsonrpc": "2.0", "id": id, "result": result }).to_string();
        out.push('\n');
        if w.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[async_trait]
impl Runtime for FakeRuntime {
    fn kind(&self) -> ToolboxKind {
        self.kind
    }

    async fn check(&self) -> Result<(), RuntimeError> {
        self.check_available()
    }

    async fn list(&self) -> Result<Vec<Instance>, RuntimeError> {
        self.check_available()?;
        Ok(self
            .state()
            .instances
            .values()
            .map(|f| f.inst.clone())
            .collect())
    }

    async fn create(
        &self,
        launch: Launch<'_>,
    ) -> Result<(Instance, Option<StdioPipes>), RuntimeError> {
        self.check_available()?;
        let s = launch.server;
        let mut st = self.state();
        st.attempts.push((s.name.clone(), Instant::now()));
        match st.refusals.get_mut(&s.name).and_then(VecDeque::pop_front) {
            Some(Refuse::Refused(why)) => return Err(RuntimeError::Refused(why)),
            Some(Refuse::Unavailable(why)) => return Err(RuntimeError::Unavailable(why)),
            None => {}
        }
        let start = st.starts.get(&s.name).copied().unwrap_or(Start::Serve);
        st.next_pid += 1;
        let handle = format!("fake-{}", st.next_pid);
        let inst = Instance {
            server_id: s.id.clone(),
            name: s.name.clone(),
            generation: s.generation,
            handle: handle.clone(),
            running: true,
            started_at: Some(chrono::Utc::now()),
            exit_code: None,
            image_digest: None,
            endpoint: match (s.transport, s.port) {
                (Transport::Stdio, _) | (_, None) => None,
                (_, Some(port)) => Some(format!("http://{handle}:{port}")),
            },
        };
        let stop = CancellationToken::new();
        let mut kept = inst.clone();
        let mut logs = vec![format!("{} starting", s.name)];
        if let Start::Crash(code) = start {
            logs.push("crashing on start".into());
            kept.running = false;
            kept.exit_code = Some(code);
        }
        st.instances.insert(
            handle.clone(),
            Fake {
                inst: kept,
                logs,
                stop: stop.clone(),
            },
        );
        st.created.push(Created {
            name: s.name.clone(),
            generation: s.generation,
            handle,
            at: Instant::now(),
            secrets_dir: launch.secrets_dir.clone(),
            secret_env: launch.secret_env.clone(),
        });
        let stdio = (s.transport == Transport::Stdio).then(|| pipes(start, stop));
        Ok((inst, stdio))
    }

    fn stdio_closes_with_server(&self) -> bool {
        self.kind == ToolboxKind::Process
    }

    async fn attach(&self, inst: &Instance) -> Result<StdioPipes, RuntimeError> {
        self.check_available()?;
        if self.kind == ToolboxKind::Process {
            return Err(RuntimeError::Refused(
                "a process's pipes cannot be re-attached".into(),
            ));
        }
        let mut st = self.state();
        st.attaches += 1;
        let start = st.starts.get(&inst.name).copied().unwrap_or(Start::Serve);
        let f = st
            .instances
            .get_mut(&inst.handle)
            .ok_or(RuntimeError::NotFound)?;
        // A container has one stdin: the old attach is gone with the old DTMA.
        f.stop.cancel();
        f.stop = CancellationToken::new();
        Ok(pipes(start, f.stop.clone()))
    }

    async fn remove(&self, inst: &Instance) -> Result<(), RuntimeError> {
        self.check_available()?;
        let delay = self.state().remove_delay;
        tokio::time::sleep(delay).await;
        let mut st = self.state();
        if let Some(f) = st.instances.remove(&inst.handle) {
            f.stop.cancel();
            st.removed.push(inst.handle.clone());
        }
        Ok(())
    }

    async fn logs(
        &self,
        inst: &Instance,
        tail: usize,
        _follow: bool,
    ) -> Result<BoxStream<'static, Bytes>, RuntimeError> {
        let st = self.state();
        let f = st
            .instances
            .get(&inst.handle)
            .ok_or(RuntimeError::NotFound)?;
        let lines: Vec<Bytes> = f
            .logs
            .iter()
            .skip(f.logs.len().saturating_sub(tail))
            .map(|l| Bytes::from(format!("{l}\n")))
            .collect();
        Ok(Box::pin(futures::stream::iter(lines)))
    }

    async fn stats(&self, _inst: &Instance) -> Result<Stats, RuntimeError> {
        Ok(Stats::default())
    }
}
