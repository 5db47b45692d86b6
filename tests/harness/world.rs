//! Domain handles: a scenario says what its users do and the handles speak REST
//! ([`Rest`]) and wait ([`eventually`]) underneath —
//!
//! ```ignore
//! let ann = admin.member("ann@example.com").await;
//! let own = ann.toolbox("own").await;                 // `admin.toolbox("alpha").shared()`
//! ann.deploy("mine", "fixture").on(&own.name).await.running().await;
//! let bot = ann.agent("ann-bot").await;
//! ann.grant(&bot.name).toolbox(&own.name).await;
//! let mut mcp = bot.mcp("legacy").await;
//! ```

use crate::eventually::WAIT;
use crate::rest::Rest;
use crate::sdk::Sdk;
use serde_json::{Value, json};
use std::future::{Future, IntoFuture};
use std::pin::Pin;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Someone calling the API: the admin or a member.
#[derive(Clone)]
pub struct Caller {
    pub rest: Rest,
}

impl Caller {
    pub fn new(url: &str, token: &str) -> Caller {
        Caller {
            rest: Rest::new(url, token),
        }
    }

    pub fn token(&self) -> &str {
        &self.rest.token
    }

    /// This caller's email (their account, as `/api/v1/me` says).
    pub async fn email(&self) -> String {
        let me = self.rest.get("/api/v1/me").await;
        me["email"].as_str().unwrap().into()
    }

    /// The gateway's MCP endpoint at this caller's URL.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.rest.url)
    }

    /// A new member (made by this caller, an admin), calling as themselves.
    pub async fn member(&self, email: &str) -> Caller {
        let made = self
            .rest
            .post("/api/v1/users", json!({ "email": email, "role": "member" }))
            .await;
        Caller::new(&self.rest.url, made["token"]["token"].as_str().unwrap())
    }

    /// A catalog entry (the API's JSON form).
    pub async fn catalog(&self, entry: Value) -> Value {
        self.rest.post("/api/v1/catalog", entry).await
    }

    /// Creates a toolbox (private unless `.shared()`); await it.
    pub fn toolbox<'a>(&'a self, name: &str) -> NewToolbox<'a> {
        NewToolbox {
            caller: self,
            name: name.into(),
            shared: false,
        }
    }

    /// Deploys `catalog` as server `name` `.on(toolbox)`; await it.
    pub fn deploy<'a>(&'a self, name: &str, catalog: &str) -> NewServer<'a> {
        NewServer {
            caller: self,
            body: json!({ "name": name, "catalog": catalog }),
        }
    }

    /// A server this caller can see, by name and toolbox (name or id).
    pub fn server(&self, name: &str, toolbox: &str) -> ServerRef {
        ServerRef {
            rest: self.rest.clone(),
            name: name.into(),
            toolbox: toolbox.into(),
        }
    }

    /// A new agent of this caller's, with its first token.
    pub async fn agent(&self, name: &str) -> Bot {
        let made = self
            .rest
            .post("/api/v1/agents", json!({ "name": name }))
            .await;
        Bot {
            name: name.into(),
            token: made["token"]["token"].as_str().unwrap().into(),
            mcp_url: self.mcp_url(),
        }
    }

    /// Grants `agent` a whole `.toolbox(…)` or one `.server(…, toolbox)`; await it.
    pub fn grant<'a>(&'a self, agent: &str) -> NewGrant<'a> {
        NewGrant {
            caller: self,
            body: json!({ "agent": agent }),
        }
    }
}

pub struct NewToolbox<'a> {
    caller: &'a Caller,
    name: String,
    shared: bool,
}

impl NewToolbox<'_> {
    /// Visible to every member (admins only).
    pub fn shared(mut self) -> Self {
        self.shared = true;
        self
    }
}

impl<'a> IntoFuture for NewToolbox<'a> {
    type Output = Toolbox;
    type IntoFuture = Boxed<'a, Toolbox>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let rest = self.caller.rest.clone();
            let made = rest
                .post(
                    "/api/v1/toolboxes",
                    json!({ "name": self.name, "shared": self.shared }),
                )
                .await;
            Toolbox {
                id: made["id"].as_str().unwrap().into(),
                name: self.name,
                rest,
            }
        })
    }
}

/// A toolbox as its creator sees it.
pub struct Toolbox {
    pub name: String,
    pub id: String,
    rest: Rest,
}

impl Toolbox {
    /// A one-time token for its DTMA to join with.
    pub async fn join_token(&self) -> String {
        let j = self
            .rest
            .post(
                &format!("/api/v1/toolboxes/{}/join-token", self.name),
                json!({}),
            )
            .await;
        j["token"].as_str().unwrap().into()
    }

    /// Waits until its status is `status`; its JSON.
    pub async fn until(&self, status: &str) -> Value {
        let path = format!("/api/v1/toolboxes/{}", self.name);
        let what = format!("toolbox {} {status}", self.name);
        self.rest
            .until(&path, &what, WAIT, |v| v["status"] == status)
            .await
    }
}

pub struct NewServer<'a> {
    caller: &'a Caller,
    body: Value,
}

impl NewServer<'_> {
    /// The toolbox (name or id) it runs on.
    pub fn on(mut self, toolbox: &str) -> Self {
        self.body["toolbox"] = toolbox.into();
        self
    }

    /// Any other field of the deploy request (`env`, `secrets`, `connection`…).
    pub fn with(mut self, field: &str, value: Value) -> Self {
        self.body[field] = value;
        self
    }
}

impl<'a> IntoFuture for NewServer<'a> {
    type Output = ServerRef;
    type IntoFuture = Boxed<'a, ServerRef>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let made = self.caller.rest.post("/api/v1/servers", self.body).await;
            let toolbox = made["toolbox_id"]
                .as_str()
                .or(made["toolbox"].as_str())
                .unwrap_or_default();
            self.caller.server(made["name"].as_str().unwrap(), toolbox)
        })
    }
}

/// A deployed server, read through its owner's eyes.
pub struct ServerRef {
    pub name: String,
    pub toolbox: String,
    rest: Rest,
}

impl ServerRef {
    fn path(&self) -> String {
        format!("/api/v1/servers/{}?toolbox={}", self.name, self.toolbox)
    }

    pub async fn get(&self) -> Value {
        self.rest.get(&self.path()).await
    }

    /// Waits until the server's JSON satisfies `pred`; on timeout shows the last seen.
    pub async fn until(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let what = format!("{}/{}: {what}", self.toolbox, self.name);
        self.rest.until(&self.path(), &what, WAIT, pred).await
    }

    pub async fn running(&self) -> Value {
        self.until("running", |v| v["status"] == "running").await
    }

    /// Its id (what the dashboard's URLs name).
    pub async fn id(&self) -> String {
        self.get().await["id"].as_str().unwrap().into()
    }

    /// `start`, `stop` or `restart`, through the API.
    pub async fn act(&self, action: &str) -> Value {
        let path = format!(
            "/api/v1/servers/{}/{action}?toolbox={}",
            self.name, self.toolbox
        );
        self.rest.post(&path, json!({})).await
    }
}

pub struct NewGrant<'a> {
    caller: &'a Caller,
    body: Value,
}

impl NewGrant<'_> {
    pub fn toolbox(mut self, toolbox: &str) -> Self {
        self.body["toolbox"] = toolbox.into();
        self
    }

    pub fn server(mut self, server: &str, toolbox: &str) -> Self {
        self.body["server"] = server.into();
        self.toolbox(toolbox)
    }
}

impl<'a> IntoFuture for NewGrant<'a> {
    type Output = Value;
    type IntoFuture = Boxed<'a, Value>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.caller.rest.post("/api/v1/grants", self.body).await })
    }
}

/// An agent and one of its tokens.
#[derive(Clone)]
pub struct Bot {
    pub name: String,
    pub token: String,
    pub mcp_url: String,
}

impl Bot {
    /// A session through the official Python SDK; `era` is `legacy` or `2026-07-28`.
    pub async fn mcp(&self, era: &str) -> Sdk {
        Sdk::connect(&self.mcp_url, &self.token, era).await
    }
}
