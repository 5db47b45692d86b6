//! A server's log on its page: the last [`LINES`] lines when the page renders (readable
//! without JavaScript), and `GET /servers/{id}/logs/stream`, an SSE stream of new lines
//! that `app.js` appends — keeping the last [`LINES`] in the page too. Both come from the
//! toolbox's DTMA through `service::server_runtime::logs` (tenancy and the toolbox's
//! address checks are the service's); the stream follows the DTMA's own follow mode, no
//! polling.
//!
//! Lines pass [`redact`] first: a Toolbelt credential a server happens to print (a
//! `tbu_…`/`tba_…` token, a `Bearer …` header) is masked. Secret values the server was
//! given are not known here: the DTMA masks them before it serves a line (`[secret:NAME]`;
//! see the README, "Secret values in server logs").

use crate::error::{Page, PageResult};
use crate::session::Dash;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::StreamExt;
use std::convert::Infallible;
use std::time::Duration;
use toolbelt_control::AppState;
use toolbelt_control::service::server_runtime::{self, LogsRequest};
use toolbelt_control::service::{self, ServiceError};

/// Lines kept: in the page as rendered and, with JavaScript, in the page as it grows.
pub const LINES: usize = 200;
/// How long a page waits for the toolbox's log before rendering without it.
const WAIT: Duration = Duration::from_secs(2);
/// The longest line shown (the DTMA cuts at 8 KiB already; this bounds a page).
const LINE_MAX: usize = 2000;

/// The log as the server page shows it.
pub struct LogTail {
    pub lines: Vec<String>,
    /// Why there are no lines to show (no DTMA, not running, no answer in time).
    pub unavailable: Option<String>,
}

const TOKEN_PREFIXES: [&str; 6] = ["tbu_", "tbs_", "tba_", "tbd_", "tbj_", "tbl_"];

/// A log line with Toolbelt tokens and bearer credentials masked, cut to [`LINE_MAX`].
pub fn redact(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(LINE_MAX));
    let mut rest = line;
    while !rest.is_empty() {
        let lower = rest.to_ascii_lowercase();
        let hit = TOKEN_PREFIXES
            .iter()
            .filter_map(|p| lower.find(p).map(|i| (i, p.len())))
            .chain(lower.find("bearer ").map(|i| (i, "bearer ".len())))
            .min();
        let Some((at, len)) = hit else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..at + len]);
        let tail = &rest[at + len..];
        let secret = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.~+/=".contains(c)))
            .unwrap_or(tail.len());
        if secret > 0 {
            out.push_str("[redacted]");
        }
        rest = &tail[secret..];
    }
    if out.len() > LINE_MAX {
        let mut cut = LINE_MAX;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str(" [cut]");
    }
    out
}

/// The last [`LINES`] lines of the server's log, or why there are none.
pub async fn tail(st: &AppState, d: &Dash, server: &str) -> LogTail {
    let req = LogsRequest {
        tail: Some(LINES),
        follow: false,
    };
    let read = async {
        let mut body = server_runtime::logs(st, &d.caller, server, None, req).await?;
        let mut buf = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|_| ServiceError::unavailable("the toolbox's log was cut off"))?;
            buf.extend_from_slice(&chunk);
        }
        Ok::<_, ServiceError>(buf)
    };
    match tokio::time::timeout(WAIT, read).await {
        Ok(Ok(buf)) => {
            let text = String::from_utf8_lossy(&buf);
            let mut lines: Vec<String> = text.lines().map(redact).collect();
            let extra = lines.len().saturating_sub(LINES);
            lines.drain(..extra);
            LogTail {
                lines,
                unavailable: None,
            }
        }
        Ok(Err(e)) => LogTail {
            lines: Vec::new(),
            unavailable: Some(e.to_string()),
        },
        Err(_) => LogTail {
            lines: Vec::new(),
            unavailable: Some("the toolbox did not send the log in time".into()),
        },
    }
}

/// Complete lines out of the DTMA's chunks (a line split across chunks is joined).
fn lines<B, E, S>(body: S) -> impl futures::Stream<Item = String>
where
    B: AsRef<[u8]>,
    S: futures::Stream<Item = Result<B, E>> + Unpin,
{
    futures::stream::unfold(
        (body, Vec::<u8>::new(), false),
        |(mut body, mut buf, mut ended)| async move {
            loop {
                if let Some(i) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=i).collect();
                    let text = String::from_utf8_lossy(&line[..i]).into_owned();
                    return Some((text, (body, buf, ended)));
                }
                if ended {
                    return None;
                }
                match body.next().await {
                    Some(Ok(chunk)) => {
                        buf.extend_from_slice(chunk.as_ref());
                        // A "line" without an end that outgrows any real line is sent as is.
                        if buf.len() > 64 * 1024 {
                            let text = String::from_utf8_lossy(&buf).into_owned();
                            buf.clear();
                            return Some((text, (body, buf, ended)));
                        }
                    }
                    Some(Err(_)) | None => {
                        ended = true;
                        if !buf.is_empty() {
                            buf.push(b'\n');
                        }
                    }
                }
            }
        },
    )
}

/// `GET /servers/{id}/logs/stream`: new log lines as SSE `data:` messages. Another
/// member's server is 404 (no stream). When the toolbox cannot give the log now, one
/// `unavailable` event says why and the stream ends; the browser retries in 5 s (the
/// `retry` field), so a server that starts later is followed then.
pub async fn stream(State(st): State<AppState>, d: Dash, Path(id): Path<String>) -> PageResult {
    let req = LogsRequest {
        tail: Some(0),
        follow: true,
    };
    let retry = Duration::from_secs(5);
    match service::server_runtime::logs(&st, &d.caller, &id, None, req).await {
        Ok(body) => {
            let events = lines(body).map(|l| {
                let data = redact(&l).replace('\r', "");
                Ok::<_, Infallible>(SseEvent::default().data(data))
            });
            let head = futures::stream::once(async move {
                Ok::<_, Infallible>(SseEvent::default().retry(retry).comment("following"))
            });
            Ok(Sse::new(head.chain(events))
                .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
                .into_response())
        }
        Err(e @ ServiceError::NotFound(_)) => Err(Page::from(e)),
        Err(e) => {
            let why = SseEvent::default()
                .retry(retry)
                .event("unavailable")
                .data(e.to_string().replace(['\r', '\n'], " "));
            let once = futures::stream::once(async move { Ok::<_, Infallible>(why) });
            Ok(Sse::new(once).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_bearer_credentials_are_masked() {
        assert_eq!(
            redact("using tba_0123abcd and Authorization: Bearer eyJhbGci.x-y"),
            "using tba_[redacted] and Authorization: Bearer [redacted]"
        );
        assert_eq!(redact("TBU_ABC!"), "TBU_[redacted]!");
        assert_eq!(redact("plain line"), "plain line");
        let long = "é".repeat(LINE_MAX);
        assert!(redact(&long).ends_with(" [cut]"));
    }

    #[tokio::test]
    async fn lines_are_joined_across_chunks_and_the_last_one_kept() {
        let chunks: Vec<Result<&[u8], ()>> =
            vec![Ok(&b"one\ntw"[..]), Ok(&b"o\n"[..]), Ok(&b"three"[..])];
        let body = futures::stream::iter(chunks);
        let got: Vec<String> = lines(body).collect().await;
        assert_eq!(got, ["one", "two", "three"]);
    }
}
