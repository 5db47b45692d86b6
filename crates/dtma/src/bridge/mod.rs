//! The MCP bridge: every server on this toolbox at `/mcp/{server}` as Streamable HTTP,
//! whatever its own transport — stdio servers through [`mux::Upstream`], HTTP servers
//! proxied over the toolbox's private network.

pub mod error;
pub mod http;
pub mod mux;
#[cfg(test)]
mod mux_tests;
pub mod proxy;

use mux::Upstream;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone)]
pub enum Target {
    Stdio(Arc<Upstream>),
    /// Base URL of the server's MCP endpoint on the private network.
    Http(String),
}

pub struct Session {
    pub server: String,
    pub last_used: Instant,
}

pub struct Bridges {
    targets: RwLock<HashMap<String, Target>>,
    sessions: Mutex<HashMap<String, Session>>,
    pub http: reqwest::Client,
    /// How long a call may wait for its reply (progress resets nothing: bounded is bounded).
    pub call_timeout: Duration,
}

impl Bridges {
    pub fn new(call_timeout: Duration) -> Bridges {
        // Servers on this host or the toolbox's private network: the platform's roots do.
        let http = toolbelt_net::http::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .expect("an HTTP client builds");
        Bridges {
            targets: RwLock::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            http,
            call_timeout,
        }
    }

    pub fn set(&self, server: &str, target: Target) {
        self.targets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(server.to_string(), target);
    }

    pub fn remove(&self, server: &str) {
        self.targets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(server);
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, s| s.server != server);
    }

    pub fn get(&self, server: &str) -> Option<Target> {
        self.targets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(server)
            .cloned()
    }

    pub fn new_session(&self, server: &str) -> String {
        use rand::Rng;
        let mut b = [0u8; 16];
        rand::rng().fill_bytes(&mut b);
        let id = hex::encode(b);
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        // Idle sessions cost a few bytes each; keep the table from growing without bound.
        if s.len() > 10_000 {
            s.retain(|_, v| v.last_used.elapsed() < Duration::from_secs(3600));
        }
        s.insert(
            id.clone(),
            Session {
                server: server.to_string(),
                last_used: Instant::now(),
            },
        );
        id
    }

    /// True when the session exists and belongs to this server (and marks it used).
    pub fn touch_session(&self, id: &str, server: &str) -> bool {
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match s.get_mut(id) {
            Some(sess) if sess.server == server => {
                sess.last_used = Instant::now();
                true
            }
            _ => false,
        }
    }

    pub fn end_session(&self, id: &str) -> bool {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
            .is_some()
    }
}
