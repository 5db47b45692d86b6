//! The app built by `toolbelt-app` over a fresh database, in-process, and a terse request
//! helper.

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use toolbelt_control::ControlConfig;
use toolbelt_store::Store;
use toolbelt_testkit::db::TestDb;
use tower::ServiceExt;

pub const ADMIN: &str = "tbu_test-bootstrap-admin-token";

pub struct App {
    pub router: Router,
    pub store: Store,
    /// What the build reported (the first start's one-time login, when there was one).
    pub app: toolbelt_app::App,
    #[allow(dead_code)] // keeps the database (its directory) alive
    pub db: TestDb,
    /// The data dir: the control key and the vault's key file.
    #[allow(dead_code)] // kept alive with the app
    pub data: tempfile::TempDir,
}

pub struct Res {
    pub status: StatusCode,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Res {
    /// The problem `type` slug (`not-found`), or "" for non-problem bodies.
    pub fn problem(&self) -> &str {
        self.body["type"]
            .as_str()
            .and_then(|t| t.strip_prefix("urn:toolbelt:problem:"))
            .unwrap_or("")
    }

    pub fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["field"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl App {
    pub async fn new(db: TestDb) -> App {
        Self::with_config(db, ControlConfig::default()).await
    }

    pub async fn with_config(db: TestDb, config: ControlConfig) -> App {
        let data = tempfile::tempdir().unwrap();
        Self::build(db, data, Some(ADMIN), config).await
    }

    /// `toolbelt up`'s app over `db` with its data in `data`, as the binary builds it.
    pub async fn build(
        db: TestDb,
        data: tempfile::TempDir,
        bootstrap_token: Option<&str>,
        control: ControlConfig,
    ) -> App {
        Self::build_with(db, data, bootstrap_token, control, |_| {}).await
    }

    /// [`App::new`] with options changed by `f` (chat's allow-lists and budgets).
    #[allow(dead_code)]
    pub async fn with_options(db: TestDb, f: impl FnOnce(&mut toolbelt_app::Options)) -> App {
        let data = tempfile::tempdir().unwrap();
        Self::build_with(db, data, Some(ADMIN), ControlConfig::default(), f).await
    }

    async fn build_with(
        db: TestDb,
        data: tempfile::TempDir,
        bootstrap_token: Option<&str>,
        control: ControlConfig,
        f: impl FnOnce(&mut toolbelt_app::Options),
    ) -> App {
        let mut o = toolbelt_app::Options::new(data.path());
        o.database_url = Some(db.url.clone());
        o.local_toolbox = true;
        o.bootstrap_token = bootstrap_token.map(Into::into);
        o.control = control;
        f(&mut o);
        let app = toolbelt_app::build(o).await.unwrap();
        App {
            router: app.router(),
            store: app.store().clone(),
            app,
            db,
            data,
        }
    }

    pub async fn raw(&self, req: Request<Body>) -> Res {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Res {
            status,
            body,
            headers,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Res {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        };
        self.raw(req.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Res {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Res {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Res {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// POSTs and insists on success, returning the body.
    pub async fn ok(&self, path: &str, token: &str, body: Value) -> Value {
        let r = self.post(path, token, body).await;
        assert!(
            r.status.is_success(),
            "POST {path}: {} {}",
            r.status,
            r.body
        );
        r.body
    }

    /// Creates a member and returns (user id, API token).
    pub async fn member(&self, email: &str) -> (String, String) {
        let v = self
            .ok(
                "/api/v1/users",
                ADMIN,
                serde_json::json!({ "email": email, "role": "member" }),
            )
            .await;
        (
            v["user"]["id"].as_str().unwrap().into(),
            v["token"]["token"].as_str().unwrap().into(),
        )
    }

    pub async fn audit_count(&self) -> i64 {
        let mut c = self.store.conn().await.unwrap();
        toolbelt_store::audit::count(&mut c).await.unwrap()
    }
}
