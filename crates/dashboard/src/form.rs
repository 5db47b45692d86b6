//! Form posts: `application/x-www-form-urlencoded` bodies as name/value pairs, with the
//! session's CSRF token checked before a handler sees them.

use crate::error::Page;
use crate::session::{CSRF_FIELD, ExpectedCsrf, csrf_matches};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use toolbelt_control::AppState;

/// A form body is small: a deploy form with its config is a few kilobytes.
const FORM_LIMIT: usize = 256 * 1024;

/// The posted fields of a signed-in user's form whose CSRF token matched.
#[derive(Default)]
pub struct Form(pub Vec<(String, String)>);

/// Names only: a form may carry a secret's new value (the deploy form's), which must not
/// reach a log through a `{:?}`.
impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

/// The posted fields of a form that has no session yet (sign in): the Origin check only.
pub struct PublicForm(pub Form);

impl Form {
    /// The first value of `name`, if posted.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order (a group of checkboxes).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of `name`, trimmed; empty when absent.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").trim().to_string()
    }

    /// A checkbox: posted (with any value) or not.
    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A switch posted as a checkbox after a hidden field of the same name whose value is
    /// `off`: `None` when the form did not carry it, else whether any value but `off` came
    /// (the checkbox's). A bare checkbox (no hidden field) reads as on when posted.
    pub fn switch(&self, name: &str) -> Option<bool> {
        let mut values = self.0.iter().filter(|(k, _)| k == name).peekable();
        values.peek()?;
        Some(values.any(|(_, v)| v != "off"))
    }

    /// The fields whose names start with `prefix`, with the prefix removed.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.0
            .iter()
            .filter_map(move |(k, v)| k.strip_prefix(prefix).map(|k| (k, v.as_str())))
    }
}

async fn parse(req: Request) -> Result<Form, Page> {
    let form_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false);
    if !form_type {
        return Err(Page {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "post the form as application/x-www-form-urlencoded".into(),
        });
    }
    let bytes = axum::body::to_bytes(req.into_body(), FORM_LIMIT)
        .await
        .map_err(|_| Page {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: "the form is over the size limit".into(),
        })?;
    Ok(Form(
        form_urlencoded::parse(&bytes)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    ))
}

impl FromRequest<AppState> for Form {
    type Rejection = Page;

    async fn from_request(req: Request, _: &AppState) -> Result<Form, Page> {
        // `Dash` (extracted before the body) leaves the token this session's forms carry;
        // without it there is no session to check against, and the post is refused.
        let Some(ExpectedCsrf(expected)) = req.extensions().get::<ExpectedCsrf>().cloned() else {
            return Err(Page::forbidden("this form needs a signed-in session"));
        };
        let form = parse(req).await?;
        match form.get(CSRF_FIELD) {
            Some(given) if csrf_matches(&expected, given) => Ok(form),
            _ => Err(Page::forbidden(
                "the form's CSRF token is missing or wrong; reload the page and try again",
            )),
        }
    }
}

impl FromRequest<AppState> for PublicForm {
    type Rejection = Page;

    async fn from_request(req: Request, _: &AppState) -> Result<PublicForm, Page> {
        if !toolbelt_control::middleware::same_origin_headers(req.headers()) {
            return Err(Page::forbidden("cross-site request refused"));
        }
        parse(req).await.map(PublicForm)
    }
}
