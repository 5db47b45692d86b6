//! A bounded in-memory log per server (stderr of processes, junk on stdout), with
//! followers. Never written to disk: a server's output may hold sensitive data.

use bytes::Bytes;
use futures::stream::BoxStream;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::broadcast;

pub struct LogRing {
    lines: Mutex<VecDeque<String>>,
    cap: usize,
    tx: broadcast::Sender<String>,
}

impl LogRing {
    pub fn new(cap: usize) -> LogRing {
        LogRing {
            lines: Mutex::new(VecDeque::with_capacity(cap.min(64))),
            cap,
            tx: broadcast::channel(256).0,
        }
    }

    pub fn push(&self, line: impl Into<String>) {
        let line = line.into();
        let mut l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if l.len() == self.cap {
            l.pop_front();
        }
        l.push_back(line.clone());
        let _ = self.tx.send(line);
    }

    pub fn tail(&self, n: usize) -> Vec<String> {
        let l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        l.iter().skip(l.len().saturating_sub(n)).cloned().collect()
    }

    /// The last `n` lines, then (when `follow`) every new one.
    pub fn stream(&self, n: usize, follow: bool) -> BoxStream<'static, Bytes> {
        use futures::StreamExt;
        let rx = self.tx.subscribe();
        let head = futures::stream::iter(self.tail(n).into_iter().map(|l| Bytes::from(l + "\n")));
        if !follow {
            return head.boxed();
        }
        let rest = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(l) => return Some((Bytes::from(l + "\n"), rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        head.chain(rest).boxed()
    }
}
