//! A stdio server's stdout, as the DTMA's mux reads it: lines that survive junk
//! ([`TolerantLines`]), each one a JSON-RPC message of a kind the mux routes
//! ([`classify`]).
//!
//! `FramedRead` ends its stream after any decoder error, so a plain `LinesCodec` turns one
//! over-long or non-UTF-8 line into what looks like the server exiting. This codec yields
//! such a line as junk and keeps reading; only an I/O error ends the stream.

use bytes::BytesMut;
use serde_json::Value;
use tokio_util::codec::{Decoder, LinesCodec, LinesCodecError};

/// A line, or why a line could not be read.
pub type Line = Result<String, Junk>;

/// A line that was skipped rather than read.
#[derive(Debug, thiserror::Error)]
pub enum Junk {
    #[error("a line over the length limit")]
    TooLong,
    #[error("{0}")]
    Unreadable(std::io::Error),
}

pub struct TolerantLines(LinesCodec);

impl TolerantLines {
    pub fn new(max_line: usize) -> TolerantLines {
        TolerantLines(LinesCodec::new_with_max_length(max_line))
    }
}

/// `LinesCodec` has consumed the bad line (or is discarding the rest of an over-long
/// one) when it reports these, so reading on is safe.
fn tolerate(r: Result<Option<String>, LinesCodecError>) -> std::io::Result<Option<Line>> {
    match r {
        Ok(l) => Ok(l.map(Ok)),
        Err(LinesCodecError::MaxLineLengthExceeded) => Ok(Some(Err(Junk::TooLong))),
        Err(LinesCodecError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
            Ok(Some(Err(Junk::Unreadable(e))))
        }
        Err(LinesCodecError::Io(e)) => Err(e),
    }
}

impl Decoder for TolerantLines {
    type Item = Line;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> std::io::Result<Option<Line>> {
        tolerate(self.0.decode(buf))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> std::io::Result<Option<Line>> {
        tolerate(self.0.decode_eof(buf))
    }
}

/// One line of a server's stdout, by what the mux does with it.
#[derive(Debug, PartialEq)]
pub enum Message {
    /// Whitespace only: skipped silently.
    Blank,
    /// Not JSON, not a JSON-RPC message, or a response to an id the DTMA never sends
    /// (its own are integers): logged as junk.
    Junk,
    /// A response to the DTMA's request `id`.
    Response { id: i64, msg: Value },
    /// A server → client request (sampling, elicitation, roots).
    Request { id: Value, msg: Value },
    /// `notifications/progress`, with its token when that is a string (the DTMA's own
    /// tokens are).
    Progress { token: Option<String>, msg: Value },
    /// Any other notification, relayed as the line it came as.
    Notification,
}

/// What a line from a server's stdout is.
pub fn classify(line: &str) -> Message {
    if line.trim().is_empty() {
        return Message::Blank;
    }
    let Ok(msg) = serde_json::from_str::<Value>(line) else {
        return Message::Junk;
    };
    let has_method = msg.get("method").is_some();
    match (has_method, msg.get("id").cloned()) {
        (false, Some(id)) => match id.as_i64() {
            Some(id) => Message::Response { id, msg },
            None => Message::Junk,
        },
        (true, Some(id)) => Message::Request { id, msg },
        (true, None) if msg["method"] == "notifications/progress" => Message::Progress {
            token: msg["params"]["progressToken"].as_str().map(str::to_string),
            msg,
        },
        (true, None) => Message::Notification,
        (false, None) => Message::Junk,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classified_as_the_mux_routes_them() {
        assert_eq!(classify("  \r"), Message::Blank);
        assert_eq!(classify("listening on stdio"), Message::Junk);
        assert_eq!(classify("[1]"), Message::Junk);
        assert_eq!(classify(r#"{"id":"a","result":{}}"#), Message::Junk);
        assert!(matches!(
            classify(r#"{"jsonrpc":"2.0","id":7,"result":{}}"#),
            Message::Response { id: 7, .. }
        ));
        assert!(matches!(
            classify(r#"{"jsonrpc":"2.0","id":"s","method":"roots/list"}"#),
            Message::Request { .. }
        ));
        let p = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"tbp-1"}}"#;
        assert!(matches!(classify(p), Message::Progress { token: Some(t), .. } if t == "tbp-1"));
        let p = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":7}"#;
        assert!(matches!(classify(p), Message::Progress { token: None, .. }));
        let n = r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#;
        assert_eq!(classify(n), Message::Notification);
    }
}
