//! One stdio MCP server shared by many HTTP clients: JSON-RPC requests are multiplexed by
//! id (each client's id rewritten to a fresh upstream id and restored on the reply),
//! progress tokens likewise, notifications fanned out. Messages the bridge does not need
//! to understand pass through as JSON values.
//!
//! Failure is explicit: junk on stdout is logged and skipped, a dead server fails every
//! pending call at once, and callers bound their wait (see [`CallHandle::finish`]).

use super::error::BridgeError;
use crate::logs::LogRing;
use crate::runtime::StdioPipes;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{broadcast, mpsc};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use toolbelt_wire::stdio::{self, Message};

/// The largest line accepted from a server's stdout.
const MAX_LINE: usize = 16 * 1024 * 1024;

/// What a caller receives for its request: notifications and server requests to relay,
/// then the final response.
#[derive(Debug)]
pub enum Event {
    Relay(Value),
    Done(Value),
}

struct Pending {
    tx: mpsc::UnboundedSender<Event>,
    client_id: Value,
    session: String,
    progress: Option<(String, Value)>,
}

#[derive(Default)]
struct Table {
    pending: HashMap<i64, Pending>,
    by_client: HashMap<(String, String), i64>,
    progress: HashMap<String, i64>,
}

pub struct Upstream {
    pub name: String,
    out: mpsc::Sender<Bytes>,
    next_id: AtomicI64,
    table: Mutex<Table>,
    notify: broadcast::Sender<Arc<str>>,
    dead: CancellationToken,
    alive: AtomicBool,
    init: RwLock<Option<Value>>,
    pub logs: Arc<LogRing>,
    pub junk_lines: AtomicU64,
}

/// Why the DTMA's own handshake with a server failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("initialize failed: {0}")]
    Refused(Value),
    #[error("initialize returned no result")]
    NoResult,
}

fn id_key(id: &Value) -> String {
    id.to_string()
}

impl Upstream {
    /// Starts the writer and reader for one server's pipes.
    pub fn spawn(name: &str, pipes: StdioPipes, logs: Arc<LogRing>) -> Arc<Upstream> {
        let (out, mut rx) = mpsc::channel::<Bytes>(1024);
        let up = Arc::new(Upstream {
            name: name.to_string(),
            out,
            next_id: AtomicI64::new(1),
            table: Mutex::new(Table::default()),
            notify: broadcast::channel(256).0,
            dead: CancellationToken::new(),
            alive: AtomicBool::new(true),
            init: RwLock::new(None),
            logs,
            junk_lines: AtomicU64::new(0),
        });
        let mut stdin = pipes.stdin;
        let w = up.clone();
        tokio::spawn(async move {
            // Ends with the upstream too (this task's own handle keeps the channel open),
            // dropping stdin: the server sees EOF.
            loop {
                let line = tokio::select! {
                    _ = w.dead.cancelled() => break,
                    line = rx.recv() => line,
                };
                let Some(line) = line else { break };
                if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
                    break;
                }
            }
            drop(stdin);
            w.die("its stdin closed");
        });
        let r = up.clone();
        let stdout = pipes.stdout;
        tokio::spawn(async move {
            let mut lines = FramedRead::new(stdout, stdio::TolerantLines::new(MAX_LINE));
            loop {
                tokio::select! {
                    _ = r.dead.cancelled() => break,
                    next = lines.next() => match next {
                        Some(Ok(Ok(line))) => r.on_line(&line),
                        Some(Ok(Err(why))) => r.on_junk(&format!("unreadable output: {why}")),
                        Some(Err(_)) => break,
                        None => break,
                    }
                }
            }
            r.die("it exited");
        });
        up
    }

    /// Stops using the server's pipes (the instance is being given up).
    pub fn close(&self) {
        self.die("closed by the DTMA");
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    pub async fn closed(&self) {
        self.dead.cancelled().await
    }

    /// Fails every pending call and stops. Idempotent.
    fn die(&self, why: &'static str) {
        if !self.alive.swap(false, Ordering::AcqRel) {
            return;
        }
        self.dead.cancel();
        let pending =
            std::mem::take(&mut self.table.lock().unwrap_or_else(|p| p.into_inner()).pending);
        let e = BridgeError::Stopped {
            server: self.name.clone(),
            why,
        };
        for (_, p) in pending {
            let _ = p.tx.send(Event::Done(e.reply(&p.client_id)));
        }
        tracing::info!(server = %self.name, why, "upstream closed");
    }

    fn on_junk(&self, line: &str) {
        self.junk_lines.fetch_add(1, Ordering::Relaxed);
        // Masked whole, then shortened: a value crossing the 200th char is not half-shown.
        let shown: String = self.logs.mask(line).chars().take(200).collect();
        self.logs.push(format!("[stdout, not JSON-RPC] {shown}"));
    }

    fn on_line(&self, line: &str) {
        match stdio::classify(line) {
            Message::Blank => {}
            Message::Junk => self.on_junk(line),
            // A response to one of ours.
            Message::Response { id: up_id, mut msg } => {
                let p = {
                    let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
                    let p = t.pending.remove(&up_id);
                    if let Some(p) = &p {
                        t.by_client
                            .remove(&(p.session.clone(), id_key(&p.client_id)));
                        if let Some((tok, _)) = &p.progress {
                            t.progress.remove(tok);
                        }
                    }
                    p
                };
                if let Some(p) = p {
                    msg["id"] = p.client_id;
                    let _ = p.tx.send(Event::Done(msg));
                }
            }
            // A server → client request (sampling, elicitation, roots): to the one client
            // with a call in flight, else to listeners; nobody → refuse, never hang.
            Message::Request { id, msg } => {
                let target = {
                    let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
                    let mut clients = t.pending.values().filter(|p| !p.session.starts_with('#'));
                    match (clients.next(), clients.next()) {
                        (Some(p), None) => Some(p.tx.clone()),
                        _ => None,
                    }
                };
                let delivered = match target {
                    Some(tx) => tx.send(Event::Relay(msg)).is_ok(),
                    None => self.notify.send(Arc::from(line)).is_ok(),
                };
                if !delivered {
                    self.send_raw(&BridgeError::NoClientSession.reply(&id));
                }
            }
            // Progress goes to its caller (a string token is one of ours).
            Message::Progress {
                token: Some(tok),
                mut msg,
            } => {
                let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(p) = t.progress.get(&tok).and_then(|id| t.pending.get(id))
                    && let Some((_, orig)) = &p.progress
                {
                    msg["params"]["progressToken"] = orig.clone();
                    let _ = p.tx.send(Event::Relay(msg));
                }
            }
            Message::Progress { token: None, .. } => {}
            // Any other notification: to every listener.
            Message::Notification => {
                let _ = self.notify.send(Arc::from(line));
            }
        }
    }

    fn send_raw(&self, msg: &Value) -> bool {
        let mut line = serde_json::to_vec(msg).expect("a JSON value serialises");
        line.push(b'\n');
        self.out.try_send(Bytes::from(line)).is_ok()
    }

    /// Sends a request for `session` (sessions starting with `#` are the DTMA's own).
    pub fn call(self: &Arc<Self>, mut msg: Value, session: &str) -> CallHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let client_id = msg.get("id").cloned().unwrap_or(Value::Null);
        let up_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        msg["id"] = json!(up_id);
        let progress = match msg.pointer("/params/_meta/progressToken").cloned() {
            Some(orig) => {
                let tok = format!("tbp-{up_id}");
                msg["params"]["_meta"]["progressToken"] = json!(tok);
                Some((tok, orig))
            }
            None => None,
        };
        {
            let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
            // Checked under the lock `die` takes the pending calls with, so a call racing
            // the server's death is failed here instead of waiting for its timeout.
            if !self.is_alive() {
                drop(t);
                let _ = tx.send(Event::Done(
                    BridgeError::NotRunning(self.name.clone()).reply(&client_id),
                ));
                // Not `done`: the reply above is in the channel for `next` to hand out (id
                // 0 is never pending, so dropping the handle cancels nothing).
                return CallHandle {
                    up: self.clone(),
                    up_id: 0,
                    rx,
                    done: false,
                };
            }
            t.by_client
                .insert((session.to_string(), id_key(&client_id)), up_id);
            if let Some((tok, _)) = &progress {
                t.progress.insert(tok.clone(), up_id);
            }
            t.pending.insert(
                up_id,
                Pending {
                    tx: tx.clone(),
                    client_id: client_id.clone(),
                    session: session.to_string(),
                    progress,
                },
            );
        }
        if !self.send_raw(&msg) {
            self.forget(up_id);
            let _ = tx.send(Event::Done(BridgeError::InputBlocked.reply(&client_id)));
        }
        CallHandle {
            up: self.clone(),
            up_id,
            rx,
            done: false,
        }
    }

    fn forget(&self, up_id: i64) -> Option<Pending> {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let p = t.pending.remove(&up_id)?;
        t.by_client
            .remove(&(p.session.clone(), id_key(&p.client_id)));
        if let Some((tok, _)) = &p.progress {
            t.progress.remove(tok);
        }
        Some(p)
    }

    /// Abandons a call: the server is told to cancel it.
    fn abandon(&self, up_id: i64, reason: &str) {
        if self.forget(up_id).is_some() {
            self.send_raw(&json!({
                "jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": { "requestId": up_id, "reason": reason }
            }));
        }
    }

    /// Forwards a client notification; cancellations are mapped to the upstream id.
    pub fn notify_from_client(&self, mut msg: Value, session: &str) {
        if msg["method"] == "notifications/cancelled" {
            let key = (session.to_string(), id_key(&msg["params"]["requestId"]));
            let up_id = self
                .table
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .by_client
                .get(&key)
                .copied();
            match up_id {
                Some(id) => {
                    msg["params"]["requestId"] = json!(id);
                    // The caller's POST ends now; the server's late reply (if any) is dropped.
                    if let Some(p) = self.forget(id) {
                        let _ =
                            p.tx.send(Event::Done(BridgeError::Cancelled.reply(&p.client_id)));
                    }
                }
                None => return,
            }
        }
        self.send_raw(&msg);
    }

    /// A client's answer to a server → client request, forwarded as is.
    pub fn respond_from_client(&self, msg: &Value) {
        self.send_raw(msg);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.notify.subscribe()
    }

    /// The server's `initialize` result, once the handshake is done.
    pub fn init_result(&self) -> Option<Value> {
        self.init.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The DTMA's own handshake with the server; clients are answered from its result.
    pub async fn initialize(self: &Arc<Self>, timeout: Duration) -> Result<Value, InitError> {
        let req = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": { "roots": { "listChanged": true }, "sampling": {}, "elicitation": {} },
                "clientInfo": { "name": "toolbelt-dtma", "version": env!("CARGO_PKG_VERSION") }
            }
        });
        let res = self.call(req, "#dtma").finish(timeout).await;
        if let Some(e) = res.get("error") {
            return Err(InitError::Refused(e.clone()));
        }
        let result = res.get("result").cloned().ok_or(InitError::NoResult)?;
        *self.init.write().unwrap_or_else(|p| p.into_inner()) = Some(result.clone());
        self.send_raw(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        Ok(result)
    }

    /// A request of the DTMA's own (ping, tools/list), bounded by `timeout`.
    pub async fn request(
        self: &Arc<Self>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Value {
        self.call(
            json!({ "jsonrpc": "2.0", "id": 0, "method": method, "params": params }),
            "#dtma",
        )
        .finish(timeout)
        .await
    }
}

/// A call in flight. Dropping it before the reply cancels the call upstream.
pub struct CallHandle {
    up: Arc<Upstream>,
    up_id: i64,
    rx: mpsc::UnboundedReceiver<Event>,
    done: bool,
}

impl CallHandle {
    /// The next event, or a timeout error reply (the call is then cancelled upstream).
    pub async fn next(&mut self, timeout: Duration, client_id: &Value) -> Event {
        if self.done {
            return Event::Done(BridgeError::Finished.reply(client_id));
        }
        match tokio::time::timeout(timeout, self.rx.recv()).await {
            Ok(Some(Event::Done(v))) => {
                self.done = true;
                Event::Done(v)
            }
            Ok(Some(e)) => e,
            Ok(None) => {
                self.done = true;
                Event::Done(BridgeError::Closed.reply(client_id))
            }
            Err(_) => {
                self.done = true;
                self.up.abandon(self.up_id, "timed out at the toolbox");
                Event::Done(
                    BridgeError::Timeout {
                        server: self.up.name.clone(),
                        after: timeout,
                    }
                    .reply(client_id),
                )
            }
        }
    }

    /// Waits for the final reply, dropping relayed messages.
    pub async fn finish(mut self, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Event::Done(v) = self.next(left, &Value::Null).await {
                return v;
            }
        }
    }
}

impl Drop for CallHandle {
    fn drop(&mut self) {
        if !self.done {
            self.up.abandon(self.up_id, "the client went away");
        }
    }
}
