//! The largest reply the gateway takes from an upstream (`max_reply_bytes`): a server
//! answering with gigabytes must not grow the gateway's memory. A reply over the limit
//! is not read further; the request fails with `reply_too_large` (the same error on the
//! direct path and through rmcp's client, whose own hard limit is 16 MiB).

use axum::body::Bytes;
use futures::{Stream, StreamExt};
use rmcp::ErrorData;
use rmcp::model::ErrorCode;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use toolbelt_model::rpc::ErrorKind;

/// The default limit: rmcp's own for JSON replies and SSE events.
pub const DEFAULT_MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// What the agent is told (its code is `reply_too_large` of the table).
pub fn too_large(limit: usize) -> ErrorData {
    ErrorData::new(
        ErrorCode(ErrorKind::ReplyTooLarge.code()),
        format!("the server's reply is over the gateway's limit of {limit} bytes"),
        Some(json!({ "limit_bytes": limit })),
    )
}

/// The body of a plain reply, read up to `limit` bytes; `Err(too_large)` beyond.
pub async fn body(
    res: reqwest::Response,
    limit: usize,
) -> Result<Result<Bytes, ErrorData>, reqwest::Error> {
    if res.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(Err(too_large(limit)));
    }
    let mut stream = res.bytes_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if buf.len() + chunk.len() > limit {
            return Ok(Err(too_large(limit)));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Ok(Bytes::from(buf)))
}

/// A streamed reply cut off after `limit` bytes in all; `tripped` tells why it ended.
pub fn bounded<S, E>(
    stream: S,
    limit: usize,
    tripped: Arc<AtomicBool>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    let mut total = 0usize;
    stream.map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        total = total.saturating_add(chunk.len());
        if total > limit {
            tripped.store(true, Ordering::Release);
            return Err(std::io::Error::other("reply over the limit"));
        }
        Ok(chunk)
    })
}

/// The length of `v` as JSON, counted without building the text.
pub fn json_len(v: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stream_over_the_limit_is_cut_and_says_so() {
        let chunks = (0..3).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 600])));
        let tripped = Arc::new(AtomicBool::new(false));
        let out: Vec<_> = bounded(futures::stream::iter(chunks), 1000, tripped.clone())
            .collect()
            .await;
        assert!(out[0].is_ok() && out[1].is_err(), "{out:?}");
        assert!(tripped.load(Ordering::Acquire));
        assert_eq!(json_len(&json!({ "a": "bc" })), 10);
        assert_eq!(too_large(5).code.0, ErrorKind::ReplyTooLarge.code());
    }
}
