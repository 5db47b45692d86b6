//! A round-robin TCP proxy: one address in front of several backends (control-plane
//! replicas). Each new connection goes to the next backend in turn, so consecutive requests
//! on new connections alternate; a backend that refuses is skipped, as a load balancer's
//! health check would. The proxy records which backend served each connection and the
//! first line the client sent on it (an HTTP request line), and can cut every open
//! connection so that clients reconnect (to the next backend).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One connection the proxy forwarded.
#[derive(Debug, Clone)]
pub struct Served {
    /// Index of the backend, in the order given to [`RoundRobin::start`].
    pub backend: usize,
    /// The first line the client sent (`POST /api/v1/dtma/heartbeat HTTP/1.1`), or as much
    /// of it as came in the first read.
    pub first_line: String,
}

#[derive(Default)]
struct Shared {
    served: Mutex<Vec<Served>>,
    open: Mutex<Vec<JoinHandle<()>>>,
}

pub struct RoundRobin {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl RoundRobin {
    /// Listens on a free loopback port in front of `backends`.
    pub async fn start(backends: Vec<SocketAddr>) -> RoundRobin {
        assert!(!backends.is_empty(), "a proxy needs a backend");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared::default());
        let next = Arc::new(AtomicUsize::new(0));
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let first = next.fetch_add(1, Ordering::Relaxed);
                let (backends, s2) = (backends.clone(), s.clone());
                let conn = tokio::spawn(async move {
                    forward(client, &backends, first, &s2).await;
                });
                let mut open = s.open.lock().unwrap();
                open.retain(|h| !h.is_finished());
                open.push(conn);
            }
        });
        RoundRobin {
            addr,
            shared,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every connection forwarded so far, oldest first.
    pub fn served(&self) -> Vec<Served> {
        self.shared.served.lock().unwrap().clone()
    }

    /// Closes every open connection (both sides); the proxy keeps accepting new ones.
    pub fn cut(&self) {
        for h in self.shared.open.lock().unwrap().drain(..) {
            h.abort();
        }
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn forward(mut client: TcpStream, backends: &[SocketAddr], first: usize, s: &Shared) {
    let _ = client.set_nodelay(true);
    let mut chosen = None;
    for i in 0..backends.len() {
        let b = (first + i) % backends.len();
        if let Ok(up) = TcpStream::connect(backends[b]).await {
            chosen = Some((b, up));
            break;
        }
    }
    let Some((backend, mut up)) = chosen else {
        return;
    };
    let _ = up.set_nodelay(true);
    let mut buf = vec![0u8; 16 * 1024];
    let n = match client.read(&mut buf).await {
        Ok(0) | Err(_) => return,
        Ok(n) => n,
    };
    let text = String::from_utf8_lossy(&buf[..n]);
    s.served.lock().unwrap().push(Served {
        backend,
        first_line: text.lines().next().unwrap_or_default().to_string(),
    });
    if up.write_all(&buf[..n]).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
}
