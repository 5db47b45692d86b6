//! The body of a POST to `/mcp`, read once: a JSON-RPC message the fast path serves
//! itself (`tools/call`, `tools/list`), a cancellation it must see, or anything else —
//! which rmcp serves, from the same bytes. Bad input gets the errors of the table before
//! rmcp sees it. [`decode`] is the fuzzing entry point: it takes any bytes and never
//! panics.

use rmcp::model::{
    CallToolRequestParams, ClientJsonRpcMessage, ClientNotification, ClientRequest, GetMeta,
    JsonRpcMessage, RequestId, RequestMetaObject,
};
use toolbelt_model::rpc::ErrorKind;

/// Why a body is refused before rmcp sees it (the gateway answers with [`Self::kind`]'s
/// code).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("Parse error: {0}")]
    Parse(#[source] serde_json::Error),
    #[error("Invalid Request: {0}")]
    InvalidRequest(&'static str),
}

impl DecodeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            DecodeError::Parse(_) => ErrorKind::ParseError,
            DecodeError::InvalidRequest(_) => ErrorKind::InvalidRequest,
        }
    }
}

/// What a POST body is.
#[derive(Debug)]
pub enum Decoded {
    /// `tools/call`, typed as rmcp would have typed it (its `_meta` apart, as rmcp keeps
    /// it).
    Call {
        id: RequestId,
        params: CallToolRequestParams,
        meta: RequestMetaObject,
    },
    /// `tools/list` with its cursor.
    List {
        id: RequestId,
        cursor: Option<String>,
        meta: RequestMetaObject,
    },
    /// `notifications/cancelled` for a request of this session.
    Cancel { request: RequestId },
    /// Any other message (or one rmcp's types do not read): rmcp's to answer.
    Other,
}

/// The request's `_meta` (rmcp keeps it beside the params) with any left in the params.
fn merged(mut meta: RequestMetaObject, params: Option<RequestMetaObject>) -> RequestMetaObject {
    if let Some(p) = params {
        for (k, v) in p.0.0 {
            meta.0.0.entry(k).or_insert(v);
        }
    }
    meta
}

/// One JSON-RPC 2.0 message: a request or notification (`method`), or a response.
fn well_formed(v: &serde_json::Value) -> bool {
    v.get("jsonrpc").and_then(|j| j.as_str()) == Some("2.0")
        && (v.get("method").is_some_and(|m| m.is_string())
            || (v.get("id").is_some() && (v.get("result").is_some() || v.get("error").is_some())))
}

/// Classifies a POST body; the error a malformed one gets (`parse_error`: not JSON;
/// `invalid_request`: JSON, but not one JSON-RPC 2.0 message — batches included).
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    // The common case in one pass: a message rmcp's own types read.
    if let Ok(m) = serde_json::from_slice::<ClientJsonRpcMessage>(bytes) {
        return Ok(match m {
            JsonRpcMessage::Request(r) => {
                let meta = r.request.get_meta().clone();
                match r.request {
                    ClientRequest::CallToolRequest(c) => {
                        let mut params = c.params;
                        let meta = merged(meta, params.meta.take());
                        Decoded::Call {
                            id: r.id,
                            params,
                            meta,
                        }
                    }
                    ClientRequest::ListToolsRequest(l) => {
                        let (cursor, own) = match l.params {
                            Some(p) => (p.cursor, p.meta),
                            None => (None, None),
                        };
                        Decoded::List {
                            id: r.id,
                            cursor,
                            meta: merged(meta, own),
                        }
                    }
                    _ => Decoded::Other,
                }
            }
            JsonRpcMessage::Notification(n) => match n.notification {
                ClientNotification::CancelledNotification(c) => match c.params.request_id {
                    Some(request) => Decoded::Cancel { request },
                    None => Decoded::Other,
                },
                _ => Decoded::Other,
            },
            _ => Decoded::Other,
        });
    }
    // Not rmcp's: malformed (answered here), or well formed but of a shape rmcp has its
    // own answer for (a bad `params`, say), which it gives.
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Err(e) => Err(DecodeError::Parse(e)),
        Ok(v) if !well_formed(&v) => Err(DecodeError::InvalidRequest(
            "not a JSON-RPC 2.0 request, notification or response",
        )),
        Ok(_) => Ok(Decoded::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(bytes: &[u8]) -> Option<i32> {
        decode(bytes).err().map(|e| e.kind().code())
    }

    #[test]
    fn bad_bodies_get_the_table_s_codes_and_good_ones_their_shape() {
        let parse = ErrorKind::ParseError.code();
        let invalid = ErrorKind::InvalidRequest.code();
        assert_eq!(code(b"{not json"), Some(parse));
        assert_eq!(code(b""), Some(parse));
        assert_eq!(code(&[0xff, 0xfe, 0x00]), Some(parse));
        assert_eq!(code(b"[]"), Some(invalid), "a batch is not one message");
        let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}]"#;
        assert_eq!(code(batch), Some(invalid));
        assert_eq!(
            code(br#"{"jsonrpc":"1.0","id":1,"method":"x"}"#),
            Some(invalid)
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":1,"method":7}"#),
            Some(invalid)
        );
        assert_eq!(code(br#"{"jsonrpc":"2.0","id":1}"#), Some(invalid));
        assert_eq!(code(br#""2.0""#), Some(invalid));
        // Well formed but of the wrong types: rmcp's to answer, exactly as before.
        let wrong = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#;
        assert!(matches!(decode(wrong), Ok(Decoded::Other)));
        let call = br#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"hi"}}}"#;
        match decode(call) {
            Ok(Decoded::Call { id, params, .. }) => {
                assert_eq!(id, RequestId::String("a".into()));
                assert_eq!(params.name, "fx__echo");
                assert_eq!(params.arguments.unwrap()["text"], "hi");
            }
            other => panic!("{other:?}"),
        }
        let progress = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"p","_meta":{"progressToken":"t"}}}"#;
        match decode(progress) {
            Ok(Decoded::Call { meta, .. }) => assert!(meta.get_progress_token().is_some()),
            other => panic!("{other:?}"),
        }
        let list = br#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"cursor":"500"}}"#;
        assert!(matches!(decode(list), Ok(Decoded::List { cursor: Some(c), .. }) if c == "500"));
        let cancel =
            br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":4}}"#;
        assert!(matches!(
            decode(cancel),
            Ok(Decoded::Cancel {
                request: RequestId::Number(4)
            })
        ));
        let init = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert!(matches!(decode(init), Ok(Decoded::Other)));
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes() {
        // A cheap stand-in for the fuzz target: every prefix and byte flip of a call.
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"k":[1,{"x":null}]}}}"#;
        for n in 0..=call.len() {
            let _ = decode(&call[..n]);
            let mut flipped = call.to_vec();
            if n < flipped.len() {
                flipped[n] ^= 0x5a;
                let _ = decode(&flipped);
            }
        }
    }
}
