//! `/api/v1/llms`, `/api/v1/agents/{agent}/chat`, `/api/v1/chats…`: handlers over
//! [`crate::service`]. The app merges [`router`] into the control plane's OpenAPI router,
//! so these routes pass its middleware (caller, failed-write audit, metrics) and are in
//! `/api/v1/openapi.json`.

use crate::Chat;
use crate::events::ChatEvent;
use crate::service::chats::CreateChat;
use crate::service::llms::CreateLlm;
use crate::service::run::{PostMessage, TurnStream};
use crate::service::settings::PutSettings;
use crate::service::{chats, llms, run, settings};
use axum::body::Body;
use axum::extract::{Extension, Path};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use bytes::Bytes;
use std::time::Duration;
use toolbelt_control::AppState;
use toolbelt_control::api::common::{CommonErrors, WriteErrors};
use toolbelt_control::auth::SignedIn;
use toolbelt_control::extract::Body as JsonBody;
use toolbelt_control::problem::ApiResult;
use toolbelt_model::chat::{Chat as ChatInfo, ChatSettings, Llm, Transcript};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Chat's routes, documented; `chat` is handed to the handlers as an extension.
pub fn router(chat: Chat) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_llms, create_llm))
        .routes(routes!(get_llm, delete_llm))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(list_chats, create_chat))
        .routes(routes!(get_chat, delete_chat))
        .routes(routes!(post_message))
        .layer(Extension(chat))
}

/// A plain router of the same routes, for callers that need no OpenAPI document.
pub fn plain(chat: Chat) -> Router<AppState> {
    router(chat).split_for_parts().0
}

/// LLM endpoints: shared ones and your own (admins: all).
#[utoipa::path(get, path = "/api/v1/llms", tag = "chat",
    responses((status = 200, body = Vec<Llm>), CommonErrors))]
pub async fn list_llms(
    Extension(chat): Extension<Chat>,
    SignedIn(caller): SignedIn,
) -> ApiResult<Json<Vec<Llm>>> {
    Ok(Json(llms::list(&chat, &caller).await?))
}

/// Adds an LLM endpoint (shared: admins).
#[utoipa::path(post, path = "/api/v1/llms", tag = "chat", request_body = CreateLlm,
    responses((status = 201, body = Llm), CommonErrors, WriteErrors))]
pub async fn create_llm(
    Extension(chat): Extension<Chat>,
    SignedIn(caller): SignedIn,
    JsonBody(req): JsonBody<CreateLlm>,
) -> ApiResult<(StatusCode, Json<Llm>)> {
    Ok((
        StatusCode::CREATED,
        Json(llms::create(&chat, &caller, req).await?),
    ))
}

/// One LLM endpoint, by id or name.
#[utoipa::path(get, path = "/api/v1/llms/{llm}", tag = "chat",
    params(("llm" = String, Path, description = "Endpoint id or name")),
    responses((status = 200, body = Llm), CommonErrors))]
pub async fn get_llm(
    Extension(chat): Extension<Chat>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<Llm>> {
    Ok(Json(llms::get(&chat, &caller, &r).await?))
}

/// Deletes an LLM endpoint and the agent settings that use it.
#[utoipa::path(delete, path = "/api/v1/llms/{llm}", tag = "chat",
    params(("llm" = String, Path, description = "Endpoint id or name")),
    responses((status = 200, body = Llm), CommonErrors, WriteErrors))]
pub async fn delete_llm(
    Extension(chat): Extension<Chat>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<Llm>> {
    Ok(Json(llms::delete(&chat, &caller, &r).await?))
}

/// The agent's chat settings.
#[utoipa::path(get, path = "/api/v1/agents/{agent}/chat", tag = "chat",
    params(("agent" = String, Path, description = "Agent id or name")),
    responses((status = 200, body = ChatSettings), CommonErrors))]
pub async fn get_settings(
    Extension(chat): Extension<Chat>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<ChatSettings>> {
    Ok(Json(settings::get(&chat, &caller, &r).await?))
}

/// Sets the agent's chat settings: endpoint, model, system prompt, temperature, max steps.
#[utoipa::path(put, path = "/api/v1/agents/{agent}/chat", tag = "chat", request_body = PutSettings,
    params(("agent" = String, Path, description = "Agent id or name")),
    responses((status = 200, body = ChatSettings), CommonErrors, WriteErrors))]
pub async fn put_settings(
    Extension(chat): Extension<Chat>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    JsonBody(req): JsonBody<PutSettings>,
) -> ApiResult<Json<ChatSettings>> {
    Ok(Json(settings::put(&chat, &caller, &r, req).await?))
}

/// Your conversations, newest first.
#[utoipa::path(get, path = "/api/v1/chats", tag = "chat",
    responses((status = 200, body = Vec<ChatInfo>), CommonErrors))]
pub async fn list_chats(
    Extension(chat): Extension<Chat>,
    SignedIn(caller): SignedIn,
) -> ApiResult<Json<Vec<ChatInfo>>> {
    Ok(Json(chats::list(&chat, &caller).await?))
}

/// Starts a conversation with one of your agents.
#[utoipa::path(post, path = "/api/v1/chats", tag = "chat", request_body = CreateChat,
    responses((status = 201, body = ChatInfo), CommonErrors, WriteErrors))]
pub async fn create_chat(
    Extension(chat): Extension<Chat>,
    SignedIn(caller): SignedIn,
    JsonBody(req): JsonBody<CreateChat>,
) -> ApiResult<(StatusCode, Json<ChatInfo>)> {
    Ok((
        StatusCode::CREATED,
        Json(chats::create(&chat, &caller, req).await?),
    ))
}

/// The conversation's transcript.
#[utoipa::path(get, path = "/api/v1/chats/{chat}", tag = "chat",
    params(("chat" = String, Path, description = "Chat id")),
    responses((status = 200, body = Transcript), CommonErrors))]
pub async fn get_chat(
    Extension(chat): Extension<Chat>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<Transcript>> {
    Ok(Json(chats::transcript(&chat, &caller, &r).await?))
}

/// Deletes the conversation with its turns.
#[utoipa::path(delete, path = "/api/v1/chats/{chat}", tag = "chat",
    params(("chat" = String, Path, description = "Chat id")),
    responses((status = 200, body = ChatInfo), CommonErrors, WriteErrors))]
pub async fn delete_chat(
    Extension(chat): Extension<Chat>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<ChatInfo>> {
    Ok(Json(chats::delete(&chat, &caller, &r).await?))
}

/// One turn: the answer streamed as server-sent events — `notice`, `text {delta}`,
/// `tool_call {id, name, arguments}`, `approval_required {approval_id, tool, arguments}`,
/// `tool_result {id, is_error, text}`, then `done {chat_id, usage}` or `error {code,
/// message}`. Closing the stream cancels the turn.
#[utoipa::path(post, path = "/api/v1/chats/{chat}/messages", tag = "chat", request_body = PostMessage,
    params(("chat" = String, Path, description = "Chat id")),
    responses((status = 200, content_type = "text/event-stream", body = String,
        description = "The turn's events"), CommonErrors, WriteErrors))]
pub async fn post_message(
    Extension(chat): Extension<Chat>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    JsonBody(req): JsonBody<PostMessage>,
) -> ApiResult<Response> {
    let turn = run::post_message(&chat, &caller, &r, req).await?;
    Ok(event_stream(turn))
}

/// A running turn as a `text/event-stream` reply (the API's and the dashboard's): closing
/// the connection drops the stream, which cancels the turn.
pub fn event_stream(turn: TurnStream) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(sse(turn)),
    )
        .into_response()
}

fn frame(e: &ChatEvent) -> Bytes {
    Bytes::from(format!("event: {}\ndata: {}\n\n", e.name(), e.data()))
}

/// The turn's events as SSE frames, with a comment every 15 s so proxies keep the stream
/// open while a tool runs or an approval waits. Dropping it cancels the turn.
fn sse(turn: TurnStream) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    futures::stream::unfold(Some(turn), |state| async move {
        let mut t = state?;
        match tokio::time::timeout(Duration::from_secs(15), t.events.recv()).await {
            Err(_) => Some((Ok(Bytes::from_static(b": keep-alive\n\n")), Some(t))),
            Ok(None) => None,
            Ok(Some(e)) => {
                let bytes = frame(&e);
                Some((Ok(bytes), (!e.is_final()).then_some(t)))
            }
        }
    })
}
