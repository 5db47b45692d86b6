//! What every page's template shares: the layout's data ([`Chrome`]), field errors for
//! forms ([`Errors`]), and small formatting helpers the templates call.

use crate::session::Dash;
use axum::http::{HeaderName, HeaderValue, header};
use toolbelt_model::FieldError;

/// The layout's data: who is signed in, the CSRF token for the forms (the sign-out
/// button's too), and which nav item is current.
pub struct Chrome {
    pub email: String,
    pub admin: bool,
    pub csrf: String,
    pub nav: &'static str,
    /// A one-line notice after a redirect (`?done=…`), e.g. "server started".
    pub notice: Option<String>,
}

impl Chrome {
    pub fn new(d: &Dash, nav: &'static str) -> Chrome {
        Chrome {
            email: d.user.email.clone(),
            admin: d.is_admin(),
            csrf: d.csrf.clone(),
            nav,
            notice: None,
        }
    }

    pub fn with_notice(mut self, n: Option<String>) -> Chrome {
        self.notice = n
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(200).collect());
        self
    }

    /// `aria-current="page"` for the current nav item.
    pub fn current(&self, item: &str) -> &'static str {
        if self.nav == item { "page" } else { "false" }
    }
}

/// Field errors of a rejected form, looked up by the form's field names (the service's
/// `errors[].field`: `name`, `config.port`, `secrets.API_KEY`).
#[derive(Default)]
pub struct Errors {
    pub fields: Vec<FieldError>,
    /// The refusal when it names no field (a conflict, a forbidden role).
    pub general: Option<String>,
}

impl Errors {
    pub fn from_service(e: &toolbelt_control::service::ServiceError) -> Errors {
        let fields = e.fields().to_vec();
        let general = fields.is_empty().then(|| e.to_string());
        Errors { fields, general }
    }

    /// The message for `field`, if it is at fault.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }
}

/// "12 s ago", "3 min ago", "5 h ago", "2 d ago".
pub fn ago(t: &chrono::DateTime<chrono::Utc>) -> String {
    let s = (chrono::Utc::now() - *t).num_seconds().max(0);
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86400),
    }
}

/// A timestamp as people read it, in UTC.
pub fn when(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The CSS class of a status badge: good, bad, wait or off.
pub fn tone(status: &str) -> &'static str {
    match status {
        "running" | "active" | "approved" | "success" => "good",
        "error_runtime" | "unresponsive" | "denied" | "failure" | "expired" => "bad",
        "stopped" | "deleted" => "off",
        _ => "wait",
    }
}

/// Pages are per user and change all the time: never cached.
pub fn no_store() -> [(HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}
