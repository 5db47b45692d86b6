//! A party in the middle of the DTMA channel, for `dtma_channel`: an HTTP proxy (plain, or
//! TLS with a certificate of its own) that forwards every request to its upstream and can
//! rewrite what comes back — heartbeat replies (the desired set), replayed heartbeat
//! replies, secret deliveries — keeping the signature header, as an attacker holding a TLS
//! position would. It records every request it forwarded.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use toolbelt_model::signed_reply::SIGNATURE_HEADER;

/// What the proxy does to replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Forwards as is.
    Pass = 0,
    /// Every desired server in heartbeat replies is turned `stopped`.
    AlterHeartbeat = 1,
    /// Heartbeat replies are replaced by the first one it saw (signature included).
    ReplayHeartbeat = 2,
    /// Every secret value in deliveries is replaced.
    AlterSecrets = 3,
}

struct Shared {
    upstream: Mutex<String>,
    http: reqwest::Client,
    mode: AtomicU8,
    /// Requests forwarded: `METHOD /path`.
    seen: Mutex<Vec<String>>,
    /// The first heartbeat reply: body and signature.
    first_beat: Mutex<Option<(Vec<u8>, String)>>,
    /// Replies it changed.
    pub changed: AtomicUsize,
}

pub struct Mitm {
    pub url: String,
    shared: Arc<Shared>,
    _task: tokio::task::JoinHandle<()>,
}

impl Mitm {
    /// A plain HTTP proxy in front of `upstream`.
    pub async fn plain(upstream: &str) -> Mitm {
        Self::start(upstream, None, toolbelt_net::http::client()).await
    }

    /// A TLS proxy presenting `files` (its own key), reaching `upstream` with `http`.
    pub async fn tls(
        upstream: &str,
        files: &toolbelt_net::tls::TlsFiles,
        http: reqwest::Client,
    ) -> Mitm {
        Self::start(upstream, Some(files), http).await
    }

    async fn start(
        upstream: &str,
        tls: Option<&toolbelt_net::tls::TlsFiles>,
        http: reqwest::Client,
    ) -> Mitm {
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream.trim_end_matches('/').to_string()),
            http,
            mode: AtomicU8::new(Mode::Pass as u8),
            seen: Mutex::default(),
            first_beat: Mutex::default(),
            changed: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (url, task) = match tls {
            None => (
                format!("http://{addr}"),
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                }),
            ),
            Some(files) => {
                let acceptor = toolbelt_net::tls::Acceptor::load(files).unwrap();
                let listener = toolbelt_net::tls::TlsListener::new(
                    listener,
                    acceptor,
                    std::time::Duration::from_secs(3600),
                )
                .unwrap();
                (
                    format!("https://{addr}"),
                    tokio::spawn(async move {
                        let _ = axum::serve(listener, app).await;
                    }),
                )
            }
        };
        Mitm {
            url,
            shared,
            _task: task,
        }
    }

    pub fn set_mode(&self, m: Mode) {
        self.shared.mode.store(m as u8, Ordering::SeqCst);
    }

    /// Where requests go from now on (a restarted control plane).
    pub fn set_upstream(&self, url: &str) {
        *self.shared.upstream.lock().unwrap() = url.trim_end_matches('/').to_string();
    }

    pub fn seen(&self) -> Vec<String> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// How many replies it changed so far.
    pub fn changed(&self) -> usize {
        self.shared.changed.load(Ordering::SeqCst)
    }

    pub fn has_first_beat(&self) -> bool {
        self.shared.first_beat.lock().unwrap().is_some()
    }
}

fn mode(s: &Shared) -> Mode {
    match s.mode.load(Ordering::SeqCst) {
        1 => Mode::AlterHeartbeat,
        2 => Mode::ReplayHeartbeat,
        3 => Mode::AlterSecrets,
        _ => Mode::Pass,
    }
}

async fn forward(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    s.seen
        .lock()
        .unwrap()
        .push(format!("{} {}", parts.method, parts.uri.path()));
    let body = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let upstream = s.upstream.lock().unwrap().clone();
    let mut rb = s
        .http
        .request(parts.method.clone(), format!("{upstream}{path}"))
        .body(body);
    for (k, v) in parts.headers.iter() {
        if k != header::HOST && k != header::CONTENT_LENGTH {
            rb = rb.header(k, v);
        }
    }
    let res = match rb.send().await {
        Ok(r) => r,
        Err(e) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(toolbelt_net::http::describe(&e)))
                .unwrap();
        }
    };
    let status = res.status();
    let mut headers: HeaderMap = res.headers().clone();
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::TRANSFER_ENCODING);
    let mut bytes = res.bytes().await.unwrap_or_default().to_vec();
    let sig = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let ok = status.is_success();
    match (parts.uri.path(), mode(&s)) {
        ("/api/v1/dtma/heartbeat", m) if ok => {
            {
                let mut first = s.first_beat.lock().unwrap();
                if first.is_none() {
                    *first = Some((bytes.clone(), sig));
                }
            }
            if m == Mode::AlterHeartbeat {
                let mut v: Value = serde_json::from_slice(&bytes).unwrap();
                for d in v["desired"].as_array_mut().into_iter().flatten() {
                    d["desired"] = "stopped".into();
                }
                bytes = serde_json::to_vec(&v).unwrap();
                s.changed.fetch_add(1, Ordering::SeqCst);
            }
            if m == Mode::ReplayHeartbeat {
                let (old, old_sig) = s.first_beat.lock().unwrap().clone().unwrap();
                bytes = old;
                headers.insert(SIGNATURE_HEADER, old_sig.parse().unwrap());
                s.changed.fetch_add(1, Ordering::SeqCst);
            }
        }
        ("/api/v1/dtma/secrets", Mode::AlterSecrets) if ok => {
            let mut v: Value = serde_json::from_slice(&bytes).unwrap();
            for (_, val) in v["secrets"].as_object_mut().into_iter().flatten() {
                *val = "attacker-chosen".into();
            }
            bytes = serde_json::to_vec(&v).unwrap();
            s.changed.fetch_add(1, Ordering::SeqCst);
        }
        _ => {}
    }
    let mut r = Response::builder().status(status);
    *r.headers_mut().unwrap() = headers;
    r.body(Body::from(bytes)).unwrap()
}
