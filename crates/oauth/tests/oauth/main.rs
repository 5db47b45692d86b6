//! The OAuth crate against the Authlib fixture, on SQLite and on PostgreSQL: the code flow
//! driven without a browser, and refresh leases across two replicas.

mod leases;
mod reconnect;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use toolbelt_model::Role;
use toolbelt_model::oauth::{Connection, ProviderKind};
use toolbelt_model::{Scope, UserId};
use toolbelt_oauth::{Callback, NewProvider, OAuth, OAuthConfig};
use toolbelt_store::{Store, StoreOptions, users};
use toolbelt_testkit::db::TestDb;
use toolbelt_vault::{KeyRing, Vault};

/// Where Toolbelt would be; the tests play the browser and never call it.
pub const PUBLIC: &str = "http://127.0.0.1:9";

/// The authorization server fixture; stops when dropped.
pub struct AuthServer {
    pub url: String,
    _child: tokio::process::Child,
}

pub async fn auth_server(access_ttl: u32) -> AuthServer {
    let python = std::env::var("TOOLBELT_TEST_PYTHON")
        .expect("TOOLBELT_TEST_PYTHON: a Python with Authlib (scripts/test.sh makes one)");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/oauth/server.py");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .args([
            "--port",
            "0",
            "--exit-on-stdin-eof",
            "--quiet",
            "--access-ttl",
        ])
        .arg(access_ttl.to_string())
        .args(["--redirect-uri", &format!("{PUBLIC}/oauth/local/callback")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("READY in time")
        .unwrap()
        .expect("READY");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    AuthServer {
        url: line
            .strip_prefix("READY ")
            .expect("READY <url>")
            .to_string(),
        _child: child,
    }
}

impl AuthServer {
    pub async fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        toolbelt_net::http::client()
            .get(format!("{}/_test/events?type={kind}", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

pub struct Setup {
    pub store: Store,
    pub user: UserId,
    pub auth: AuthServer,
}

/// A store, a vault with an in-memory key, the fixture, and a `local` provider on it.
pub async fn setup(db: &TestDb, access_ttl: u32) -> (Setup, Vault) {
    let store = Store::open(&db.url, StoreOptions::default()).await.unwrap();
    let vault = Vault::open(store.clone(), Arc::new(KeyRing::generate().unwrap()))
        .await
        .unwrap();
    let (admin, user) = {
        let mut c = store.conn().await.unwrap();
        let a = users::create(&mut c, "admin@example.com", Role::Admin, None)
            .await
            .unwrap();
        let u = users::create(&mut c, "alice@example.com", Role::Member, None)
            .await
            .unwrap();
        (a, u)
    };
    let auth = auth_server(access_ttl).await;
    let oauth = replica(&store, &vault);
    oauth
        .create_provider(
            &Scope {
                user_id: admin.id,
                role: Role::Admin,
            },
            NewProvider {
                name: "local".into(),
                kind: ProviderKind::Custom,
                issuer: Some(auth.url.clone()),
                authorization_endpoint: None,
                token_endpoint: None,
                revocation_endpoint: None,
                client_id: "toolbelt-test".into(),
                client_secret: Some("toolbelt-test-secret".into()),
                default_scopes: Some(vec!["read".into()]),
            },
        )
        .await
        .expect("the provider is discovered");
    (
        Setup {
            store,
            user: user.id,
            auth,
        },
        vault,
    )
}

/// One control-plane replica's OAuth service over the shared store.
pub fn replica(store: &Store, vault: &Vault) -> OAuth {
    OAuth::new(
        store.clone(),
        vault.clone(),
        OAuthConfig {
            public_url: PUBLIC.into(),
            ..OAuthConfig::default()
        },
    )
}

/// The whole code flow, with this test as the browser.
pub async fn connect(oauth: &OAuth, s: &Setup) -> Connection {
    let flow = oauth
        .create_flow(&s.user, "local", None, Some("alice".into()))
        .await
        .unwrap();
    authorize(oauth, &s.user, &flow.flow_id)
        .await
        .expect("the flow completes")
}

/// A created flow's browser part: the start step, the provider's consent (the fixture
/// grants at once) and the callback, in one session.
pub async fn authorize(
    oauth: &OAuth,
    user: &UserId,
    flow: &toolbelt_model::FlowId,
) -> Result<Connection, toolbelt_oauth::OAuthError> {
    let url = oauth.begin("local", flow, user, "session-1").await?;
    let http = toolbelt_net::http::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http.get(&url).send().await.unwrap();
    let loc = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
    oauth
        .complete(
            "local",
            Callback {
                code: q.get("code").cloned(),
                state: q.get("state").cloned(),
                ..Default::default()
            },
            Some("session-1"),
        )
        .await
}
