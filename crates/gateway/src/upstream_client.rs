//! The HTTP client of upstream sessions: reqwest, plus one repair. A server (or a toolbox
//! answering for one) may reply to a request with an error that carries no `id`; rmcp
//! cannot match such an error to the call and drops it, so the call would wait for its
//! timeout. Here the error gets the id of the request it answers.

use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage, RequestId, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
};
use sse_stream::Sse;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct UpstreamClient(pub reqwest::Client);

type PostResult = Result<StreamableHttpPostResponse, StreamableHttpError<reqwest::Error>>;

fn request_id(m: &ClientJsonRpcMessage) -> Option<RequestId> {
    match m {
        JsonRpcMessage::Request(r) => Some(r.id.clone()),
        _ => None,
    }
}

/// An id-less error in a JSON reply to a request is that request's error.
fn matched(r: PostResult, id: Option<RequestId>) -> PostResult {
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
        let r = self
            .0
            .post_message(uri, message, session_id, auth_header, custom_headers)
            .await;
        matched(r, id)
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
        let r = self
            .0
            .post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await;
        matched(r, id)
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<reqwest::Error>> {
        self.0
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
        self.0
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
        self.0
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
