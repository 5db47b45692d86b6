//! Pieces shared by the API handlers: paging parameters and error documentation.

use crate::problem::Problem;
use crate::service::Paging;
use serde::Deserialize;
use utoipa::{IntoParams, IntoResponses};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size (1-1000, default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl From<ListQuery> for Paging {
    fn from(q: ListQuery) -> Paging {
        Paging {
            limit: q.limit,
            cursor: q.cursor,
        }
    }
}

/// Errors every authenticated route can answer with.
#[allow(dead_code)]
#[derive(IntoResponses)]
pub enum CommonErrors {
    /// Missing, invalid, expired or revoked token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(#[to_schema] Problem),
    /// Authenticated, but the role or token kind may not do this.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such thing, or not yours (never told apart).
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// Invalid input; `errors` names each field.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}

/// Errors of the login route.
#[allow(dead_code)]
#[derive(IntoResponses)]
pub enum LoginErrors {
    /// Too many attempts from this address or at this account (`too-many-attempts`);
    /// `Retry-After` (and `retry_after`) say when to try again.
    #[response(status = 429, content_type = "application/problem+json")]
    TooManyAttempts(#[to_schema] Problem),
    /// Password hashing is saturated (`busy`, with `Retry-After`), or the database is down.
    #[response(status = 503, content_type = "application/problem+json")]
    Busy(Problem),
}

/// Errors of routes that write.
#[allow(dead_code)]
#[derive(IntoResponses)]
pub enum WriteErrors {
    /// Duplicate name, or the change would break something that depends on it.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(#[to_schema] Problem),
    /// Body over the size limit.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// Body not sent as application/json.
    #[response(status = 415, content_type = "application/problem+json")]
    MediaType(Problem),
}

/// Errors of routes that ask the server's toolbox first.
#[allow(dead_code)]
#[derive(IntoResponses)]
pub enum ToolboxErrors {
    /// The toolbox's DTMA has not joined, is unresponsive or did not answer.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(#[to_schema] Problem),
}
