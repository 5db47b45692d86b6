//! The CSS, JavaScript and icon, embedded in the binary (`include_str!`) and served with
//! long cache lifetimes under URLs that carry a hash of their content, so a new build is
//! fetched at once and an unchanged one never again.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

const CSS: &str = include_str!("../assets/app.css");
const JS: &str = include_str!("../assets/app.js");
const CHAT_JS: &str = include_str!("../assets/chat.js");
const FAVICON: &str = include_str!("../assets/favicon.svg");

/// The first 12 hex digits of the SHA-256 of all the files.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut h = Sha256::new();
    for f in [CSS, JS, CHAT_JS, FAVICON] {
        h.update(f.as_bytes());
    }
    h.finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
});

/// The URL of an asset (`app.css`, `app.js`, `chat.js`, `favicon.svg`) for templates.
pub fn url(file: &str) -> String {
    format!("/assets/{file}?v={}", *VERSION)
}

fn asset(file: &str) -> Option<(&'static str, &'static str)> {
    match file {
        "app.css" => Some((CSS, "text/css; charset=utf-8")),
        "app.js" => Some((JS, "text/javascript; charset=utf-8")),
        "chat.js" => Some((CHAT_JS, "text/javascript; charset=utf-8")),
        "favicon.svg" => Some((FAVICON, "image/svg+xml")),
        _ => None,
    }
}

fn respond(body: &'static str, mime: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

pub async fn serve(Path(file): Path<String>) -> Response {
    match asset(&file) {
        Some((body, mime)) => respond(body, mime),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// Browsers ask for `/favicon.ico` on their own; it is the same SVG.
pub async fn favicon() -> Response {
    respond(FAVICON, "image/svg+xml")
}

/// Total size of the CSS and JavaScript (the budget: ≤ 60 KB).
#[cfg(test)]
pub fn script_and_style_bytes() -> usize {
    CSS.len() + JS.len() + CHAT_JS.len()
}

#[cfg(test)]
mod tests {
    #[test]
    fn css_and_js_stay_within_their_budget() {
        assert!(super::script_and_style_bytes() <= 60 * 1024);
        assert!(super::url("app.css").starts_with("/assets/app.css?v="));
    }
}
