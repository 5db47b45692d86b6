//! A bounded in-memory log per server (stderr of processes, junk on stdout), with
//! followers. Never written to disk: a server's output may hold sensitive data.

use bytes::Bytes;
use futures::stream::BoxStream;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// The longest line kept (longer ones are cut at a character boundary).
pub const LINE_MAX: usize = 8 * 1024;
/// The most bytes one server's log keeps, whatever its line count.
pub const BYTES_MAX: usize = 256 * 1024;

pub struct LogRing {
    lines: Mutex<VecDeque<String>>,
    bytes: Mutex<usize>,
    cap: usize,
    tx: broadcast::Sender<String>,
}

impl LogRing {
    pub fn new(cap: usize) -> LogRing {
        LogRing {
            lines: Mutex::new(VecDeque::with_capacity(cap.min(64))),
            bytes: Mutex::new(0),
            cap,
            tx: broadcast::channel(256).0,
        }
    }

    /// Keeps the line (cut to [`LINE_MAX`]), dropping the oldest past the line or byte cap.
    pub fn push(&self, line: impl Into<String>) {
        let mut line = line.into();
        if line.len() > LINE_MAX {
            let mut cut = LINE_MAX;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str(" [cut]");
        }
        let mut l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let mut bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        *bytes += line.len();
        while l.len() >= self.cap || (*bytes > BYTES_MAX && !l.is_empty()) {
            match l.pop_front() {
                Some(old) => *bytes -= old.len(),
                None => break,
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_is_bounded_by_lines_and_bytes() {
        let r = LogRing::new(500);
        for i in 0..10_000 {
            r.push(format!("{i} {}", "x".repeat(2000)));
        }
        let kept = r.tail(usize::MAX);
        let bytes: usize = kept.iter().map(String::len).sum();
        assert!(bytes <= BYTES_MAX + LINE_MAX, "{bytes}");
        assert!(kept.last().unwrap().starts_with("9999 "));
        r.push("é".repeat(LINE_MAX));
        let last = r.tail(1).pop().unwrap();
        assert!(last.len() <= LINE_MAX + 6 && last.ends_with(" [cut]"));
        let small = LogRing::new(3);
        for i in 0..10 {
            small.push(i.to_string());
        }
        assert_eq!(small.tail(10), vec!["7", "8", "9"]);
    }
}
