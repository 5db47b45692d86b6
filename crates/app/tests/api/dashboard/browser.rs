//! A browser without JavaScript over the in-process app: keeps the session cookie, reads
//! the CSRF token from the last page, posts forms, follows nothing by itself.

use crate::support::{ADMIN, App};
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

pub struct Browser<'a> {
    pub app: &'a App,
    pub cookie: Option<String>,
    /// The CSRF token of the last page that had forms.
    pub csrf: Option<String>,
}

pub struct Page {
    pub status: StatusCode,
    pub html: String,
    pub location: Option<String>,
    pub set_cookie: Option<String>,
}

impl Page {
    pub fn has(&self, s: &str) -> bool {
        self.html.contains(s)
    }
}

/// The value of the first `name="csrf" value="…"` on a page.
fn csrf_of(html: &str) -> Option<String> {
    let at = html.find(r#"name="csrf" value=""#)? + r#"name="csrf" value=""#.len();
    let end = html[at..].find('"')?;
    Some(html[at..at + end].to_string())
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a App) -> Browser<'a> {
        Browser {
            app,
            cookie: None,
            csrf: None,
        }
    }

    async fn send(&mut self, req: http::request::Builder, body: Body) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header(header::COOKIE, c),
            None => req,
        };
        let res = self
            .app
            .router
            .clone()
            .oneshot(
                req.header(header::HOST, "toolbelt.test")
                    .body(body)
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = res.status();
        let location = res
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_string());
        let set_cookie = res
            .headers()
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_string());
        if let Some(c) = &set_cookie {
            let pair = c.split(';').next().unwrap().to_string();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let html = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(t) = csrf_of(&html) {
            self.csrf = Some(t);
        }
        Page {
            status,
            html,
            location,
            set_cookie,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Request::get(path), Body::empty()).await
    }

    /// Posts a form as the page's own form would: with the page's CSRF token.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        let csrf = self.csrf.clone();
        if let Some(t) = &csrf {
            all.push(("csrf", t));
        }
        self.post_raw(path, &all).await
    }

    /// Posts exactly these fields (no CSRF token unless given).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let req =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(req, Body::from(body)).await
    }

    /// Signs in with the password form and lands on the overview.
    pub async fn sign_in(&mut self, email: &str, password: &str) {
        let p = self
            .post_raw(
                "/login",
                &[("email", email), ("password", password), ("next", "/")],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "sign in: {}", p.html);
        assert!(self.cookie.is_some(), "a session cookie was set");
        let home = self.get("/").await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.html);
    }
}

pub const PASSWORD: &str = "correct horse battery";

/// A member with a password and an API token: (user id, API token).
pub async fn member(app: &App, email: &str) -> (String, String) {
    let v = app
        .ok(
            "/api/v1/users",
            ADMIN,
            json!({ "email": email, "role": "member", "password": PASSWORD }),
        )
        .await;
    (
        v["user"]["id"].as_str().unwrap().into(),
        v["token"]["token"].as_str().unwrap().into(),
    )
}

/// A member's toolbox with one server on it, through the REST API: (toolbox id, server id).
pub async fn deployed(app: &App, token: &str, prefix: &str) -> (String, String) {
    let tb = app
        .ok(
            "/api/v1/toolboxes",
            token,
            json!({ "name": format!("{prefix}-box") }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let srv = app
        .ok(
            "/api/v1/servers",
            token,
            json!({ "name": format!("{prefix}-srv"), "catalog": "fx", "toolbox": tb }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    (tb, srv)
}

/// The catalog entry `fx` (an image entry without config or secrets).
pub async fn catalog_fx(app: &App) {
    app.ok(
        "/api/v1/catalog",
        ADMIN,
        json!({ "slug": "fx", "source": {"type": "image", "image": "fx"}, "transport": "stdio" }),
    )
    .await;
}
