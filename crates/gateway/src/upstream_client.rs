//! The HTTP client of upstream sessions: reqwest, plus one repair and one record. A
//! server (or a toolbox answering for one) may reply to a request with an error that
//! carries no `id`; rmcp cannot match such an error to the call and drops it, so the call
//! would wait for its timeout. Here the error gets the id of the request it answers. And
//! the session's wire details (URL, session id, headers) are kept, so `tools/call` can be
//! posted on the caller's own task ([`crate::upstream_call`]) within rmcp's session.

use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage, RequestId, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
};
use sse_stream::Sse;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How the session's messages are posted: what rmcp's transport sent last.
#[derive(Debug, Clone)]
pub struct Wire {
    pub uri: Arc<str>,
    pub session_id: Option<Arc<str>>,
    pub auth_header: Option<String>,
    pub headers: HashMap<HeaderName, HeaderValue>,
}

/// The session's [`Wire`], once its handshake is done.
pub type WireCell = Arc<Mutex<Option<Arc<Wire>>>>;

#[derive(Clone)]
pub struct UpstreamClient {
    pub http: reqwest::Client,
    pub wire: WireCell,
    /// Replies larger than this answer their request with `reply_too_large`.
    pub max_reply: usize,
}

impl UpstreamClient {
    fn record(
        &self,
        message: &ClientJsonRpcMessage,
        uri: &Arc<str>,
        session_id: &Option<Arc<str>>,
        auth_header: &Option<String>,
        headers: &HashMap<HeaderName, HeaderValue>,
    ) {
        // After `initialize` every message carries the session and the negotiated
        // protocol version; `initialize` itself carries neither.
        if matches!(message, JsonRpcMessage::Request(r) if matches!(r.request, rmcp::model::ClientRequest::InitializeRequest(_)))
        {
            return;
        }
        let mut w = self.wire.lock().unwrap_or_else(|p| p.into_inner());
        let same = w.as_ref().is_some_and(|w| {
            &w.uri == uri
                && &w.session_id == session_id
                && &w.auth_header == auth_header
                && &w.headers == headers
        });
        if !same {
            *w = Some(Arc::new(Wire {
                uri: uri.clone(),
                session_id: session_id.clone(),
                auth_header: auth_header.clone(),
                headers: headers.clone(),
            }));
        }
    }
}

type PostResult = Result<StreamableHttpPostResponse, StreamableHttpError<reqwest::Error>>;

fn request_id(m: &ClientJsonRpcMessage) -> Option<RequestId> {
    match m {
        JsonRpcMessage::Request(r) => Some(r.id.clone()),
        _ => None,
    }
}

/// A JSON reply to a request over the limit becomes that request's `reply_too_large`
/// (rmcp read it within its own 16 MiB bound; the gateway keeps less when told to).
fn capped(r: PostResult, id: Option<RequestId>, limit: usize) -> PostResult {
    match (r, id) {
        (Ok(StreamableHttpPostResponse::Json(m, sid)), Some(id))
            if crate::reply_cap::json_len(&m) > limit =>
        {
            Ok(StreamableHttpPostResponse::Json(
                ServerJsonRpcMessage::error(crate::reply_cap::too_large(limit), Some(id)),
                sid,
            ))
        }
        (r, _) => r,
    }
}

/// An id-less error in a JSON reply to a request is that request's error.
pub(crate) fn matched(r: PostResult, id: Option<RequestId>) -> PostResult {
    match (r, id) {
        (Ok(StreamableHttpPostResponse::Json(JsonRpcMessage::Error(mut e), sid)), Some(id))
            if e.id.is_none() =>
        {
            e.id = Some(id);
            Ok(StreamableHttpPostResponse::Json(
                ServerJsonRpcMessage::Error(e),
                sid,
            ))
        }
        (r, _) => r,
    }
}

impl StreamableHttpClient for UpstreamClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> PostResult {
        let id = request_id(&message);
        self.record(&message, &uri, &session_id, &auth_header, &custom_headers);
        let r = self
            .http
            .post_message(uri, message, session_id, auth_header, custom_headers)
            .await;
        capped(matched(r, id.clone()), id, self.max_reply)
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> PostResult {
        let id = request_id(&message);
        self.record(&message, &uri, &session_id, &auth_header, &custom_headers);
        let r = self
            .http
            .post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await;
        capped(matched(r, id.clone()), id, self.max_reply)
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<reqwest::Error>> {
        self.http
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<reqwest::Error>>
    {
        self.http
            .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<reqwest::Error>>
    {
        self.http
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(v: serde_json::Value) -> PostResult {
        Ok(StreamableHttpPostResponse::Json(
            serde_json::from_value(v).unwrap(),
            None,
        ))
    }

    fn id_of(r: PostResult) -> Option<serde_json::Value> {
        match r {
            Ok(StreamableHttpPostResponse::Json(m, _)) => {
                serde_json::to_value(m).unwrap().get("id").cloned()
            }
            _ => panic!("not a JSON reply"),
        }
    }

    #[test]
    fn an_id_less_error_gets_the_id_of_the_request_it_answers() {
        let req: ClientJsonRpcMessage = serde_json::from_value(json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": { "name": "x" }
        }))
        .unwrap();
        let code = toolbelt_model::rpc::ErrorKind::UpstreamUnreachable.code();
        let err = json!({ "jsonrpc": "2.0", "error": { "code": code, "message": "not running" } });
        assert_eq!(
            id_of(matched(reply(err.clone()), request_id(&req))),
            Some(json!(7))
        );
        // An error that has an id keeps it; a notification has no id to give.
        let own = json!({ "jsonrpc": "2.0", "id": 3, "error": { "code": code, "message": "x" } });
        assert_eq!(id_of(matched(reply(own), request_id(&req))), Some(json!(3)));
        let note: ClientJsonRpcMessage = serde_json::from_value(json!({
            "jsonrpc": "2.0", "method": "notifications/initialized"
        }))
        .unwrap();
        assert_eq!(id_of(matched(reply(err), request_id(&note))), None);
    }
}
