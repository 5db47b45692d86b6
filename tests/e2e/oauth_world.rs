//! The OAuth end-to-end world: Toolbelt, the Authlib authorization server, the protected
//! MCP server, the users, the agent, and the small helpers the OAuth tests share.

use serde_json::{Value, json};
use toolbelt_e2e::oauth::{self, Browser, CLIENT_ID, CLIENT_SECRET, Fixture};
use toolbelt_e2e::sdk::Sdk;
use toolbelt_e2e::tls::TestCa;
use toolbelt_e2e::{Cli, Server};

pub const ADMIN: &str = "tbu_oauth-flow-admin-token-00";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct World {
    pub dir: tempfile::TempDir,
    pub server: Server,
    pub auth: Fixture,
    pub mcp: Fixture,
    pub alice_token: String,
    pub bob_token: String,
    pub agent_token: String,
    /// The CA of the fixtures' certificates, when they serve HTTPS.
    pub tls: Option<TestCa>,
}

pub async fn api(
    url: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = toolbelt_net::http::client()
        .request(method.parse().unwrap(), format!("{url}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let s = r.status().as_u16();
    let t = r.text().await.unwrap();
    (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

impl World {
    pub fn cli<'a>(&'a self, token: &'a str) -> Cli<'a> {
        Cli {
            url: &self.server.url,
            token: Some(if token == "admin" { ADMIN } else { token }),
            config: self
                .dir
                .path()
                .join(format!("cli-{}.json", &token[..8.min(token.len())])),
        }
    }

    pub async fn alice_api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        api(&self.server.url, &self.alice_token, method, path, body).await
    }

    pub async fn browser(&self, email: &str) -> Browser {
        let b = match &self.tls {
            Some(ca) => Browser::trusting(ca),
            None => Browser::new(),
        };
        Browser::login_with(b, &self.server.url, email, PASSWORD).await
    }

    /// `connection start` in the CLI (not waiting). Returns the flow.
    pub fn start(&self) -> Value {
        self.cli(&self.alice_token)
            .ok(&[
                "connection",
                "start",
                "local",
                "--login-hint",
                "alice",
                "--no-wait",
                "-o",
                "json",
            ])
            .json()
    }

    /// `connection reconnect ID` in the CLI (not waiting). Returns the flow.
    pub fn reconnect(&self, id: &str) -> Value {
        self.cli(&self.alice_token)
            .ok(&[
                "connection",
                "reconnect",
                id,
                "--login-hint",
                "alice",
                "--no-wait",
                "-o",
                "json",
            ])
            .json()
    }

    /// A connection for alice, through the whole flow.
    pub async fn connect(&self) -> String {
        self.complete(&self.start()).await
    }

    /// Alice's browser walks a started flow; answers the connection it ended with.
    pub async fn complete(&self, flow: &Value) -> String {
        let landing = self
            .browser("alice@example.com")
            .await
            .follow(flow["start_url"].as_str().unwrap())
            .await;
        assert_eq!(landing.status, 200, "{landing:?}");
        assert!(landing.body.contains("Connected"), "{landing:?}");
        let (_, s) = self
            .alice_api(
                "GET",
                &format!(
                    "/api/v1/connections/flows/{}",
                    flow["flow_id"].as_str().unwrap()
                ),
                None,
            )
            .await;
        assert_eq!(s["status"], "connected", "{s}");
        s["connection"]["id"].as_str().unwrap().to_string()
    }

    pub async fn connection(&self, id: &str) -> Value {
        let (s, v) = self
            .alice_api("GET", &format!("/api/v1/connections/{id}"), None)
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// The agent's SDK session, once `notes__whoami` is visible.
    pub async fn agent(&self) -> Sdk {
        let mut sdk = Sdk::connect(
            &format!("{}/mcp", self.server.url),
            &self.agent_token,
            "legacy",
        )
        .await;
        eventually("notes__whoami listed", WAIT, async || {
            let names = sdk.tool_names().await;
            when(names.clone(), names.contains(&"notes__whoami".to_string()))
        })
        .await;
        sdk
    }
}

/// Toolbelt (process runtime), the authorization server (tokens live `ttl` s), the
/// protected MCP server, a `local` provider found by RFC 8414 discovery, members alice
/// and bob, alice's remote server `notes` (acts with `local` tokens) and her agent `bot`.
pub async fn world(ttl: u32) -> World {
    world_with(ttl, None).await
}

/// [`world`], with the fixtures served over HTTPS by certificates of `tls` and Toolbelt
/// trusting that CA through `TOOLBELT_CA_FILE`.
pub async fn world_with(ttl: u32, tls: Option<TestCa>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = tls.as_ref().map(|t| t.ca.display().to_string());
    let mut env = vec![
        ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN),
        ("TOOLBELT_RUNTIME", "process"),
        ("TOOLBELT_HEARTBEAT_MS", "300"),
        ("TOOLBELT_SSRF_ALLOW", "127.0.0.1/32"),
        ("TOOLBELT_OAUTH_TICK_MS", "200"),
        ("TOOLBELT_OAUTH_RETRY_MS", "300"),
    ];
    if let Some(f) = &ca_file {
        env.push(("TOOLBELT_CA_FILE", f));
    }
    let server = Server::up(&dir.path().join("data"), &env).await;
    let auth = oauth::authorization_server_with(
        &format!("{}/oauth/local/callback", server.url),
        ttl,
        tls.as_ref(),
    )
    .await;
    let mcp = oauth::protected_mcp_with(&auth, tls.as_ref()).await;
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
    let mut w = World {
        dir,
        server,
        auth,
        mcp,
        alice_token: String::new(),
        bob_token: String::new(),
        agent_token: String::new(),
        tls,
    };
    w.cli("admin").ok(&[
        "provider",
        "add",
        "local",
        "--kind",
        "custom",
        "--issuer",
        &w.auth.url,
        "--client-id",
        CLIENT_ID,
        "--from-file",
        secret_file.to_str().unwrap(),
        "--scope",
        "read",
        "--scope",
        "write",
    ]);
    for (who, slot) in [("alice", 0), ("bob", 1)] {
        let (s, v) = api(&w.server.url, ADMIN, "POST", "/api/v1/users",
            Some(json!({ "email": format!("{who}@example.com"), "role": "member", "password": PASSWORD }))).await;
        assert_eq!(s, 201, "{v}");
        let t = v["token"]["token"].as_str().unwrap().to_string();
        if slot == 0 {
            w.alice_token = t
        } else {
            w.bob_token = t
        }
    }
    let (s, v) = api(
        &w.server.url,
        ADMIN,
        "POST",
        "/api/v1/catalog",
        Some(json!({
            "slug": "notes", "source": { "type": "remote", "url": w.mcp.url },
            "transport": "streamable_http", "oauth": { "provider": "local", "scopes": ["read"] },
        })),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let alice = w.cli(&w.alice_token);
    alice.ok(&["toolbox", "create", "mine", "--kind", "remote"]);
    alice.ok(&[
        "server",
        "create",
        "notes",
        "--catalog",
        "notes",
        "--toolbox",
        "mine",
    ]);
    let token = alice.ok(&["agent", "create", "bot", "-o", "json"]).json()["token"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    alice.ok(&["grant", "create", "--agent", "bot", "--server", "notes"]);
    w.agent_token = token;
    w
}

pub use toolbelt_e2e::eventually::{WAIT, eventually, when};

/// An audit event's detail (stored as its canonical JSON text, which the hash covers).
pub fn detail(e: &Value) -> Value {
    serde_json::from_str(e["detail"].as_str().unwrap_or("{}")).unwrap_or(Value::Null)
}

pub fn whoami(r: &Value) -> Value {
    assert_eq!(r["ok"], true, "{r}");
    serde_json::from_str(r["text"].as_str().unwrap()).unwrap_or_else(|e| panic!("{e}: {r}"))
}

/// Every token the fixture issues is `at_`/`rt_` + 40 alphanumerics (and not the tail of
/// a longer word, like the `cat_…` of a catalog id).
pub fn has_token(bytes: &[u8]) -> bool {
    bytes.windows(44).any(|w| {
        !w[0].is_ascii_alphanumeric()
            && (w[1..].starts_with(b"at_") || w[1..].starts_with(b"rt_"))
            && w[4..].iter().all(u8::is_ascii_alphanumeric)
    })
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The SQLite database as a dump would see it: the file and its write-ahead log.
pub fn database_bytes(w: &World) -> Vec<u8> {
    let data = w.dir.path().join("data");
    let mut all = Vec::new();
    for f in ["toolbelt.db", "toolbelt.db-wal"] {
        if let Ok(b) = std::fs::read(data.join(f)) {
            all.extend(b);
        }
    }
    all
}
