//! Request extractors whose rejections are problem documents naming the field at fault.

use crate::problem::{Kind, Problem};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A JSON request body. Malformed JSON and wrong shapes are 422 with the field named,
/// a body over the limit 413, a non-JSON content type 415.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let json_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let m = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                m == "application/json" || m.ends_with("+json")
            });
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    Kind::PayloadTooLarge,
                    "the request body is over the size limit",
                )
            } else {
                Problem::new(Kind::MalformedJson, r.body_text())
            }
        })?;
        if json_type == Some(false) {
            return Err(Problem::new(
                Kind::UnsupportedMediaType,
                "send the body as application/json",
            ));
        }
        parse_json(&bytes).map(Body)
    }
}

/// Deserialises with the path of the failing field (`secrets[0].name`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if field == "." {
                    "body".to_string()
                } else {
                    field
                };
                Problem::invalid(&field, strip_position(&inner.to_string()))
            }
            _ => Problem::new(
                Kind::MalformedJson,
                format!("the body is not valid JSON: {inner}"),
            ),
        }
    })
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Query parameters; a bad one is 422 naming `query`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded_from_str(q).map(Query)
    }
}

fn serde_urlencoded_from_str<T: DeserializeOwned>(q: &str) -> Result<T, Problem> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{q}")
            .parse()
            .map_err(|_| Problem::invalid("query", "is not a valid query string"))?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|e| Problem::invalid("query", e.body_text()))
}
