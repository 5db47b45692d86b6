//! Error pages: a service's refusal rendered for a person. The status comes from the one
//! table the REST API uses (`toolbelt_control::problem`), so "not yours" is 404 here too.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use toolbelt_control::problem::Problem;
use toolbelt_control::service::ServiceError;

/// A page that says what went wrong, with a way back.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub message: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
}

impl Page {
    pub fn forbidden(why: &str) -> Page {
        Page {
            status: StatusCode::FORBIDDEN,
            message: why.into(),
        }
    }

    pub fn unavailable(why: &str) -> Page {
        Page {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: why.into(),
        }
    }

    pub fn not_found(what: &str) -> Page {
        Page {
            status: StatusCode::NOT_FOUND,
            message: format!("{what} not found"),
        }
    }

    pub fn internal() -> Page {
        Page {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "the page failed to render; the error is in the server's log".into(),
        }
    }
}

impl From<ServiceError> for Page {
    fn from(e: ServiceError) -> Page {
        let message = e.to_string();
        let status = Problem::from(e).status();
        Page { status, message }
    }
}

impl From<askama::Error> for Page {
    fn from(e: askama::Error) -> Page {
        tracing::error!(error = %e, "a dashboard template failed");
        Page::internal()
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = ErrorPage {
            status: self.status.as_u16(),
            title,
            message: &self.message,
        }
        .render()
        .unwrap_or_else(|_| self.message.clone());
        (self.status, crate::view::no_store(), Html(body)).into_response()
    }
}

/// What a dashboard handler returns.
pub type PageResult<T = Response> = Result<T, Page>;
