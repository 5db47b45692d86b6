//! A bounded in-memory log per server (stderr of processes, junk on stdout), with
//! followers. Never written to disk: a server's output may hold sensitive data. Every
//! line is masked by the server's [`Redactor`] before it is kept: no secret value it
//! was given is held here or served from here.
//!
//! [`LogLines`] cuts a byte stream (a pipe, an engine's log stream) into lines for it:
//! values are only masked in complete lines, so a value split across reads is found
//! whole; a line longer than [`LINE_MAX`] is cut and the rest of it dropped, and the last
//! [`PATTERN_MAX`] bytes before the cut are left out too, so a value that straddles the
//! cut is neither shown in part nor able to grow the DTMA's memory.

use crate::redact::{PATTERN_MAX, Redactor};
use bytes::{Buf, Bytes, BytesMut};
use futures::stream::BoxStream;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// The longest line kept (longer ones are cut at a character boundary).
pub const LINE_MAX: usize = 8 * 1024;
/// The most bytes one server's log keeps, whatever its line count.
pub const BYTES_MAX: usize = 256 * 1024;
/// What a cut line ends with.
pub const CUT: &str = " [cut]";

/// A line from [`LogLines`]: whole, or the first [`LINE_MAX`] bytes of a longer one.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    Line(String),
    Cut(String),
}

impl Piece {
    /// The piece as it may be shown: masked, a cut one shortened by [`PATTERN_MAX`] (any
    /// value straddling the cut began in that stretch) and marked.
    pub fn render(&self, r: &Redactor) -> String {
        match self {
            Piece::Line(l) => r.mask(l),
            Piece::Cut(l) => r.mask_prefix(l, l.len().saturating_sub(PATTERN_MAX)) + CUT,
        }
    }
}

/// Lines of at most `max` bytes from a byte stream (lossy UTF-8, `\r\n` or `\n`).
pub struct LogLines {
    max: usize,
    /// Bytes of the buffer already searched for a newline.
    scanned: usize,
    /// The rest of a cut line is being skipped.
    discarding: bool,
}

impl LogLines {
    pub fn new(max: usize) -> LogLines {
        LogLines {
            max,
            scanned: 0,
            discarding: false,
        }
    }
}

impl LogLines {
    /// Where a line longer than `max` is cut: at a character boundary when it is UTF-8.
    fn boundary(&self, line: &[u8]) -> usize {
        let mut cut = self.max;
        while cut > self.max.saturating_sub(3) && line[cut] & 0xC0 == 0x80 {
            cut -= 1;
        }
        cut
    }
}

fn text(mut b: &[u8]) -> String {
    if let Some(rest) = b.strip_suffix(b"\n") {
        b = rest.strip_suffix(b"\r").unwrap_or(rest);
    }
    String::from_utf8_lossy(b).into_owned()
}

impl tokio_util::codec::Decoder for LogLines {
    type Item = Piece;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> std::io::Result<Option<Piece>> {
        loop {
            match buf[self.scanned..].iter().position(|b| *b == b'\n') {
                Some(nl) => {
                    let line = buf.split_to(self.scanned + nl + 1);
                    self.scanned = 0;
                    if std::mem::take(&mut self.discarding) {
                        continue;
                    }
                    // A long line that came in one read is cut like one that did not.
                    if line.len() > self.max + 1 {
                        return Ok(Some(Piece::Cut(text(&line[..self.boundary(&line)]))));
                    }
                    return Ok(Some(Piece::Line(text(&line))));
                }
                None if self.discarding => {
                    buf.advance(buf.len());
                    self.scanned = 0;
                    return Ok(None);
                }
                None if buf.len() > self.max => {
                    let head = buf.split_to(self.boundary(buf));
                    buf.advance(buf.len());
                    self.scanned = 0;
                    self.discarding = true;
                    return Ok(Some(Piece::Cut(text(&head))));
                }
                None => {
                    self.scanned = buf.len();
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> std::io::Result<Option<Piece>> {
        if let Some(p) = self.decode(buf)? {
            return Ok(Some(p));
        }
        self.scanned = 0;
        if buf.is_empty() || std::mem::take(&mut self.discarding) {
            buf.advance(buf.len());
            return Ok(None);
        }
        let rest = buf.split_to(buf.len());
        Ok(Some(Piece::Line(text(&rest))))
    }
}

/// A byte stream of log lines, re-cut into lines and masked by `r` (the engine's own
/// log, which the DTMA does not keep). Room is left for lines a [`LogRing`] has cut
/// already, so they pass unchanged.
pub fn masked(stream: BoxStream<'static, Bytes>, r: Arc<Redactor>) -> BoxStream<'static, Bytes> {
    use futures::StreamExt;
    let reader = tokio_util::io::StreamReader::new(stream.map(Ok::<_, std::io::Error>));
    tokio_util::codec::FramedRead::new(reader, LogLines::new(LINE_MAX + CUT.len()))
        .filter_map(move |p| {
            let line = p.ok().map(|p| Bytes::from(p.render(&r) + "\n"));
            async move { line }
        })
        .boxed()
}

pub struct LogRing {
    lines: Mutex<VecDeque<String>>,
    bytes: Mutex<usize>,
    cap: usize,
    tx: broadcast::Sender<String>,
    redactor: Mutex<Arc<Redactor>>,
}

impl LogRing {
    pub fn new(cap: usize) -> LogRing {
        LogRing::with_redactor(cap, Arc::new(Redactor::default()))
    }

    pub fn with_redactor(cap: usize, r: Arc<Redactor>) -> LogRing {
        LogRing {
            lines: Mutex::new(VecDeque::with_capacity(cap.min(64))),
            bytes: Mutex::new(0),
            cap,
            tx: broadcast::channel(256).0,
            redactor: Mutex::new(r),
        }
    }

    /// Masks lines pushed from now on with `r` (a new generation's secrets).
    pub fn set_redactor(&self, r: Arc<Redactor>) {
        *self.redactor.lock().unwrap_or_else(|p| p.into_inner()) = r;
    }

    fn redactor(&self) -> Arc<Redactor> {
        self.redactor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `text` masked as a pushed line would be (for callers that shorten it first).
    pub fn mask(&self, text: &str) -> String {
        self.redactor().mask(text)
    }

    /// Keeps the line, masked and then cut to [`LINE_MAX`], dropping the oldest past the
    /// line or byte cap.
    pub fn push(&self, line: impl Into<String>) {
        let line = self.redactor().mask(&line.into());
        self.keep(line);
    }

    /// Keeps a piece from [`LogLines`].
    pub fn push_piece(&self, piece: &Piece) {
        let line = piece.render(&self.redactor());
        self.keep(line);
    }

    /// Kept as given: cutting a masked line cannot reveal what was masked.
    fn keep(&self, mut line: String) {
        if line.len() > LINE_MAX {
            let mut cut = LINE_MAX;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str(CUT);
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

    const KEY: &str = "sk-live-ABCDEFGH1234";

    fn keyed() -> Arc<Redactor> {
        Arc::new(Redactor::new(
            &[("API_KEY".to_string(), KEY.to_string())].into(),
        ))
    }

    /// Every piece `chunks` decode to, fed one read at a time, then EOF.
    fn decode(chunks: &[&[u8]], max: usize) -> (Vec<Piece>, usize) {
        use tokio_util::codec::Decoder;
        let (mut d, mut buf, mut out, mut peak) = (LogLines::new(max), BytesMut::new(), vec![], 0);
        for c in chunks {
            buf.extend_from_slice(c);
            while let Some(p) = d.decode(&mut buf).unwrap() {
                out.push(p);
            }
            peak = peak.max(buf.len());
        }
        while let Some(p) = d.decode_eof(&mut buf).unwrap() {
            out.push(p);
        }
        (out, peak)
    }

    /// No four bytes in a row of the value.
    fn shows_none_of_the_key(line: &str) -> bool {
        KEY.as_bytes()
            .windows(4)
            .all(|w| !line.contains(std::str::from_utf8(w).unwrap()))
    }

    #[test]
    fn a_value_split_across_reads_is_masked_in_its_line() {
        let ring = LogRing::with_redactor(10, keyed());
        let line = format!("token={KEY} ok\r\nsecond {KEY}\nlast words {KEY}");
        let b = line.as_bytes();
        // Every split point: the value never reaches the ring in part.
        for cut in 1..b.len() {
            let (pieces, _) = decode(&[&b[..cut], &b[cut..]], LINE_MAX);
            for p in &pieces {
                ring.push_piece(p);
            }
            assert_eq!(
                ring.tail(3),
                vec![
                    "token=[secret:API_KEY] ok",
                    "second [secret:API_KEY]",
                    "last words [secret:API_KEY]"
                ],
                "split at {cut}"
            );
        }
        // Lines pushed whole are masked too (the bridge's junk on stdout).
        ring.push(format!("[stdout, not JSON-RPC] {{\"key\":\"{KEY}\"}}"));
        assert_eq!(
            ring.tail(1),
            vec!["[stdout, not JSON-RPC] {\"key\":\"[secret:API_KEY]\"}"]
        );
    }

    #[test]
    fn a_long_line_is_cut_without_showing_a_value_that_straddles_the_cut() {
        let ring = LogRing::with_redactor(10, keyed());
        // The value at every offset around the cut (and the place PATTERN_MAX before it).
        let spots = (LINE_MAX - PATTERN_MAX - KEY.len() - 2..LINE_MAX - PATTERN_MAX + 2)
            .chain(LINE_MAX - KEY.len() - 2..LINE_MAX + 2);
        for at in spots {
            let line = format!(
                "{}{KEY}{}\nafter {KEY}\n",
                "x".repeat(at),
                "y".repeat(3 * LINE_MAX)
            );
            // In small reads, and in one read (the newline already there).
            for size in [1000, line.len()] {
                let reads: Vec<&[u8]> = line.as_bytes().chunks(size).collect();
                let (pieces, peak) = decode(&reads, LINE_MAX);
                assert!(peak <= LINE_MAX + size, "{peak} bytes buffered");
                assert_eq!(pieces.len(), 2, "at {at}");
                assert!(
                    matches!(&pieces[0], Piece::Cut(l) if l.len() == LINE_MAX),
                    "at {at}"
                );
                for p in &pieces {
                    ring.push_piece(p);
                }
                let kept = ring.tail(2);
                assert!(
                    kept[0].ends_with(CUT) && kept[0].len() <= LINE_MAX,
                    "at {at}"
                );
                assert!(shows_none_of_the_key(&kept[0]), "at {at}, reads of {size}");
                assert_eq!(kept[1], "after [secret:API_KEY]");
            }
        }
    }

    #[test]
    fn an_endless_line_keeps_memory_bounded_and_reading_goes_on() {
        // 10 MiB without a newline, in 4 KiB reads.
        let read = vec![b'z'; 4096];
        let mut reads: Vec<&[u8]> = std::iter::repeat_n(&read[..], 2560).collect();
        reads.push(b"\nnext\n");
        let (pieces, peak) = decode(&reads, LINE_MAX);
        assert!(peak <= LINE_MAX, "{peak} bytes buffered");
        assert!(matches!(&pieces[0], Piece::Cut(l) if l.len() == LINE_MAX));
        assert_eq!(pieces[1..], [Piece::Line("next".into())]);
        // The engine's log stream is re-cut and masked the same way.
        let stream = futures::stream::iter(vec![
            Bytes::from(format!("a {}", &KEY[..5])),
            Bytes::from(format!("{}\nb\n", &KEY[5..])),
        ]);
        let out: Vec<Bytes> = futures::executor::block_on(futures::StreamExt::collect(masked(
            Box::pin(stream),
            keyed(),
        )));
        assert_eq!(
            out,
            vec![Bytes::from("a [secret:API_KEY]\n"), Bytes::from("b\n")]
        );
    }
}
