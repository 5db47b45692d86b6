//! `toolbelt stdio`: an MCP server on stdin/stdout that forwards every message to the
//! gateway's Streamable HTTP endpoint with the agent's token — for clients that only
//! speak stdio (Claude Desktop and friends). A transport bridge: messages pass as they
//! are; each request runs concurrently, so a slow tool never holds up the rest.

use anyhow::{Context, Result};
use futures::StreamExt;
use serde_json::Value;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::{Mutex, mpsc};
use toolbelt_model::rpc::ErrorKind;

struct Bridge {
    http: reqwest::Client,
    url: String,
    token: String,
    session: Mutex<Option<String>>,
    out: mpsc::UnboundedSender<String>,
}

impl Bridge {
    async fn post(&self, line: String) -> Result<()> {
        let mut req = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(s) = self.session.lock().await.as_ref() {
            req = req.header("mcp-session-id", s);
        }
        let msg: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        let res = match req.body(line).send().await {
            Ok(r) => r,
            Err(e) => {
                // A request is answered even so: the client must not wait for ever.
                if msg.get("id").is_some() {
                    let message = format!("cannot reach the gateway: {e}");
                    self.emit(
                        ErrorKind::UpstreamUnreachable
                            .reply(&msg["id"], &message, None)
                            .to_string(),
                    );
                }
                return Err(e).context("cannot reach the gateway");
            }
        };
        if let Some(s) = res
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            *self.session.lock().await = Some(s.to_string());
        }
        let sse = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let status = res.status();
        if sse {
            self.pump(res).await;
        } else {
            let body = res.text().await.unwrap_or_default();
            if !body.trim().is_empty() {
                self.emit(body.trim().to_string());
            } else if !status.is_success() && msg.get("id").is_some() {
                // An HTTP failure without a JSON-RPC body still answers the request.
                let message = format!("gateway answered HTTP {status}");
                let err = ErrorKind::UpstreamFailed.reply(&msg["id"], &message, None);
                self.emit(err.to_string());
            }
        }
        Ok(())
    }

    /// Forwards each `data:` of an SSE stream as one line.
    async fn pump(&self, res: reqwest::Response) {
        let mut stream = res.bytes_stream();
        let mut buf = Vec::new();
        while let Some(Ok(chunk)) = stream.next().await {
            buf.extend_from_slice(&chunk);
            while let Some(pos) = buf.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = buf.drain(..pos + 2).collect();
                let text = String::from_utf8_lossy(&event);
                let data: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:").map(|d| d.trim_start()))
                    .collect();
                let data = data.join("\n");
                if !data.trim().is_empty() {
                    self.emit(data);
                }
            }
        }
    }

    fn emit(&self, line: String) {
        let _ = self.out.send(line);
    }

    /// The standalone stream of server notifications, once there is a session.
    async fn listen(self: Arc<Self>) {
        let Some(s) = self.session.lock().await.clone() else {
            return;
        };
        let req = self
            .http
            .get(&self.url)
            .bearer_auth(&self.token)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", s);
        if let Ok(res) = req.send().await
            && res.status().is_success()
        {
            self.pump(res).await;
        }
    }
}

pub async fn run(url: Option<String>) -> Result<()> {
    let token = std::env::var("TOOLBELT_AGENT_TOKEN")
        .context("set TOOLBELT_AGENT_TOKEN to the agent's token")?;
    let (base, _) = super::config::resolve(url, None)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let http = super::client::outbound()?.builder().build()?;
    let bridge = Arc::new(Bridge {
        http,
        url: format!("{}/mcp", base.trim_end_matches('/')),
        token,
        session: Mutex::new(None),
        out: tx,
    });
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = rx.recv().await {
            if stdout.write_all(line.as_bytes()).await.is_err()
                || stdout.write_all(b"\n").await.is_err()
                || stdout.flush().await.is_err()
            {
                break;
            }
        }
    });
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut listening = false;
    let mut tasks = Vec::new();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let is_initialized = line.contains("notifications/initialized");
        let b = bridge.clone();
        if line.contains("\"initialize\"") {
            // The handshake must finish (and give us the session) before anything else.
            if let Err(e) = b.post(line).await {
                eprintln!("toolbelt stdio: {e:#}");
            }
            continue;
        }
        tasks.push(tokio::spawn(async move {
            if let Err(e) = b.post(line).await {
                eprintln!("toolbelt stdio: {e:#}");
            }
        }));
        if is_initialized && !listening {
            listening = true;
            tokio::spawn(bridge.clone().listen());
        }
        tasks.retain(|t| !t.is_finished());
    }
    for t in tasks {
        let _ = t.await;
    }
    if let Some(s) = bridge.session.lock().await.clone() {
        let _ = bridge
            .http
            .delete(&bridge.url)
            .bearer_auth(&bridge.token)
            .header("mcp-session-id", s)
            .send()
            .await;
    }
    drop(bridge);
    let _ = writer.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridge_to(url: String) -> (Bridge, mpsc::UnboundedReceiver<String>) {
        let (out, rx) = mpsc::unbounded_channel();
        let b = Bridge {
            http: toolbelt_net::http::client(),
            url,
            token: "tba_x".into(),
            session: Mutex::new(None),
            out,
        };
        (b, rx)
    }

    #[tokio::test]
    async fn an_unreachable_gateway_still_answers_the_request() {
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (b, mut rx) = bridge_to(format!("http://127.0.0.1:{port}/mcp"));
        let req = r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;
        assert!(b.post(req.into()).await.is_err());
        let reply: Value = serde_json::from_str(&rx.try_recv().expect("an answer")).unwrap();
        assert_eq!(reply["id"], 7);
        assert_eq!(
            reply["error"]["code"],
            ErrorKind::UpstreamUnreachable.code()
        );
        // A notification has nobody waiting for an answer.
        let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert!(b.post(note.into()).await.is_err());
        assert!(rx.try_recv().is_err());
    }
}
