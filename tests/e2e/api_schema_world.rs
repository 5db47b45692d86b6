//! The data the API property tests run against, and each operation's seed: a request that
//! should succeed on it (`tests/python/api_schema/hooks.py` sends it first). Things an
//! operation destroys or changes for good (a deleted user, a revoked token, a demoted
//! role) are made for that operation alone, so no run takes away what another operation
//! or the member's run needs.

use serde_json::{Map, Value, json};
use std::path::Path;
use toolbelt_e2e::world::Caller;
use toolbelt_e2e::{DtmaProc, Server};
use toolbelt_testkit::fixture::fixture_bin;

const ADMIN: &str = "tbu_api-schema-admin-00000000";
const PASSWORD: &str = "correct horse battery staple";

/// Per operation label ("GET /api/v1/agents/{agent}"): `path`, `query` and `body`.
pub struct Seeds {
    pub token: String,
    pub ops: Map<String, Value>,
}

impl Seeds {
    fn new(token: &str) -> Seeds {
        Seeds {
            token: token.to_string(),
            ops: Map::new(),
        }
    }

    fn add(&mut self, op: &str, seed: Value) -> &mut Self {
        self.ops.insert(op.to_string(), seed);
        self
    }
}

pub struct World {
    pub server: Server,
    _dtma: DtmaProc,
    pub admin: Caller,
    pub admin_seeds: Seeds,
    pub member_seeds: Seeds,
}

#[track_caller]
fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {v}"))
        .to_string()
}

impl World {
    /// Operations only admins may use: a member's run must never see them succeed.
    pub const ADMINS_ONLY: &'static [&'static str] = &[
        "GET /api/v1/users",
        "POST /api/v1/users",
        "GET /api/v1/users/{user}",
        "PATCH /api/v1/users/{user}",
        "DELETE /api/v1/users/{user}",
        "POST /api/v1/catalog",
        "PUT /api/v1/catalog/{slug}",
        "DELETE /api/v1/catalog/{slug}",
        "POST /api/v1/catalog/{slug}/deprecate",
        "GET /api/v1/vault/keys",
        "POST /api/v1/vault/rotate",
        "DELETE /api/v1/vault/keys/{kek}",
        "POST /api/v1/providers",
        "DELETE /api/v1/providers/{provider}",
        "GET /api/v1/tools/changes",
        "POST /api/v1/tools/changes/{id}/approve",
        "POST /api/v1/tools/changes/{id}/reject",
        "POST /api/v1/audit/checkpoints",
        "GET /api/v1/audit/public-key",
        "GET /api/v1/audit/verify",
        // The DTMA channel answers toolbox credentials, never a user's.
        "POST /api/v1/dtma/join",
        "POST /api/v1/dtma/heartbeat",
        "POST /api/v1/dtma/secrets",
    ];

    /// Operations the seeds do not make succeed yet (see the README's known gaps): they
    /// need a pending tool change or approval, a completed OAuth connection, a DTMA's
    /// credential, an LLM that answers, or an agent whose tools were discovered.
    pub const UNSEEDED: &'static [&'static str] = &[
        "DELETE /api/v1/connections/{connection}",
        "DELETE /api/v1/grants/{grant}",
        "GET /api/v1/connections/{connection}",
        "GET /oauth/{provider}/callback",
        "GET /oauth/{provider}/start",
        "POST /api/v1/approvals/{id}/approve",
        "POST /api/v1/approvals/{id}/deny",
        "POST /api/v1/audit/verify",
        "POST /api/v1/chats/{chat}/messages",
        "POST /api/v1/connections/{connection}/reconnect",
        "POST /api/v1/connections/{connection}/refresh",
        "POST /api/v1/dtma/heartbeat",
        "POST /api/v1/dtma/join",
        "POST /api/v1/dtma/secrets",
        // The world's toolboxes run processes, not images (image_pins covers it).
        "POST /api/v1/servers/{server}/update-image",
        "POST /api/v1/tools/changes/{id}/approve",
        "POST /api/v1/tools/changes/{id}/reject",
    ];

    pub async fn start(dir: &Path) -> World {
        let checkpoints = dir.join("checkpoints.jsonl").display().to_string();
        let server = Server::up(
            &dir.join("data"),
            &[
                ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN),
                ("TOOLBELT_RUNTIME", "process"),
                ("TOOLBELT_HEARTBEAT_MS", "300"),
                // The runs log in hundreds of times from one address.
                ("TOOLBELT_LOGIN_LIMIT_ADDRESS", "1000000"),
                ("TOOLBELT_LOGIN_LIMIT_ACCOUNT", "1000000"),
                ("TOOLBELT_AUDIT_CHECKPOINT_FILE", &checkpoints),
            ],
        )
        .await;
        let admin = Caller::new(&server.url, ADMIN);
        let command = [fixture_bin().display().to_string()];
        let entry = |slug: &str| {
            json!({ "slug": slug, "transport": "stdio",
                "source": { "type": "package", "manager": "binary", "package": "fixture-mcp", "command": command } })
        };
        for slug in ["fx", "doomed-entry", "old-entry"] {
            admin.catalog(entry(slug)).await;
        }
        let fx = admin.deploy("fx", "fx").on("local").await.id().await;
        admin.server("fx", "local").running().await;
        let member = admin.member("member@example.com").await;
        let login_user =
            json!({ "email": "login@example.com", "role": "member", "password": PASSWORD });
        admin.rest.post("/api/v1/users", login_user).await;
        let victim = |email: &str| json!({ "email": email, "role": "member" });
        let doomed_user = admin
            .rest
            .post("/api/v1/users", victim("doomed@example.com"))
            .await;
        let demoted = admin
            .rest
            .post("/api/v1/users", victim("demoted@example.com"))
            .await;

        let mut a = Seeds::new(ADMIN);
        let mut m = Seeds::new(member.token());
        a.add(
            "GET /api/v1/users/{user}",
            json!({ "path": { "user": "member@example.com" } }),
        )
        .add(
            "DELETE /api/v1/users/{user}",
            json!({ "path": { "user": id(&doomed_user["user"]) } }),
        )
        .add(
            "PATCH /api/v1/users/{user}",
            json!({ "path": { "user": id(&demoted["user"]) }, "body": { "role": "member" } }),
        )
        .add(
            "POST /api/v1/users",
            json!({ "body": { "email": "made@example.com", "role": "member" } }),
        );
        for s in [&mut a, &mut m] {
            s.add(
                "POST /api/v1/login",
                json!({ "body": { "email": "login@example.com", "password": PASSWORD } }),
            );
        }
        // Catalog.
        a.add(
            "GET /api/v1/catalog/{slug}",
            json!({ "path": { "slug": "fx" } }),
        )
        .add(
            "PUT /api/v1/catalog/{slug}",
            json!({ "path": { "slug": "fx" }, "body": entry("fx") }),
        )
        .add(
            "DELETE /api/v1/catalog/{slug}",
            json!({ "path": { "slug": "doomed-entry" } }),
        )
        .add(
            "POST /api/v1/catalog/{slug}/deprecate",
            json!({ "path": { "slug": "old-entry" }, "body": {} }),
        )
        .add(
            "POST /api/v1/catalog",
            json!({ "body": entry("made-entry") }),
        );
        m.add(
            "GET /api/v1/catalog/{slug}",
            json!({ "path": { "slug": "fx" } }),
        );

        // The member's own toolbox, with a DTMA, and a server running on it.
        member
            .rest
            .post("/api/v1/toolboxes", json!({ "name": "m-box" }))
            .await;
        let join = member
            .rest
            .post("/api/v1/toolboxes/m-box/join-token", json!({}))
            .await;
        let path = format!(
            "{}:{}",
            fixture_bin().parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let dtma = DtmaProc::start(
            &server.url,
            Some(join["token"].as_str().unwrap()),
            &dir.join("m-dtma"),
            "process",
            &[("PATH", &path)],
        )
        .await;
        let m_srv = member.deploy("m-srv", "fx").on("m-box").await.id().await;
        member.server("m-srv", "m-box").running().await;

        // Each caller's own things: toolbox, server, agent, secret, token…
        Self::own("a", &mut a, &admin, (&fx, "local", "fx__echo")).await;
        Self::own("m", &mut m, &member, (&m_srv, "m-box", "m-srv__echo")).await;
        Self::admin_only(&mut a, &admin).await;
        // Providers are everyone's to read and connect with; a flow is its starter's.
        let flow = member
            .rest
            .post("/api/v1/connections", json!({ "provider": "prov" }))
            .await;
        m.add(
            "GET /api/v1/providers/{provider}",
            json!({ "path": { "provider": "prov" } }),
        )
        .add(
            "POST /api/v1/connections",
            json!({ "body": { "provider": "prov" } }),
        )
        .add(
            "GET /api/v1/connections/flows/{flow}",
            json!({ "path": { "flow": flow["flow_id"].as_str().unwrap() } }),
        );
        World {
            server,
            _dtma: dtma,
            admin,
            admin_seeds: a,
            member_seeds: m,
        }
    }

    /// What every caller makes for themselves, and the seeds that use it.
    /// `running`: a server the caller may use that runs (id, toolbox, one of its tools).
    async fn own(who: &str, s: &mut Seeds, c: &Caller, running: (&str, &str, &str)) {
        let (srv, srv_box, tool) = running;
        let rest = &c.rest;
        for op in ["logs", "stats"] {
            s.add(
                &format!("GET /api/v1/servers/{{server}}/{op}"),
                json!({ "path": { "server": srv } }),
            );
        }
        s.add(
            "GET /api/v1/servers/{server}",
            json!({ "path": { "server": srv } }),
        );
        if who == "a" {
            rest.post("/api/v1/toolboxes", json!({ "name": format!("{who}-box") }))
                .await;
        }
        rest.post(
            "/api/v1/toolboxes",
            json!({ "name": format!("{who}-doomed-box") }),
        )
        .await;
        s.add(
            "GET /api/v1/toolboxes/{toolbox}",
            json!({ "path": { "toolbox": format!("{who}-box") } }),
        )
        .add(
            "PATCH /api/v1/toolboxes/{toolbox}",
            json!({ "path": { "toolbox": format!("{who}-box") },
                "body": { "allowed_registries": ["ghcr.io"] } }),
        )
        .add(
            "DELETE /api/v1/toolboxes/{toolbox}",
            json!({ "path": { "toolbox": format!("{who}-doomed-box") } }),
        )
        .add(
            "POST /api/v1/toolboxes/{toolbox}/join-token",
            json!({ "path": { "toolbox": format!("{who}-box") }, "body": {} }),
        )
        .add(
            "POST /api/v1/toolboxes",
            json!({ "body": { "name": format!("{who}-made-box") } }),
        );
        // Servers on the caller's own toolbox (the admin's never run: nothing joined it).
        let idle = |name: &str| json!({ "name": format!("{who}-{name}"), "catalog": "fx", "toolbox": format!("{who}-box") });
        let own_server = id(&rest.post("/api/v1/servers", idle("idle")).await);
        let doomed_server = id(&rest.post("/api/v1/servers", idle("doomed-srv")).await);
        for op in ["start", "stop", "restart"] {
            s.add(
                &format!("POST /api/v1/servers/{{server}}/{op}"),
                json!({ "path": { "server": own_server } }),
            );
        }
        s.add("POST /api/v1/servers", json!({ "body": idle("made-srv") }))
            .add(
                "DELETE /api/v1/servers/{server}",
                json!({ "path": { "server": doomed_server } }),
            );

        let bot = format!("{who}-bot");
        c.agent(&bot).await;
        c.agent(&format!("{who}-doomed-bot")).await;
        let tokens = rest
            .post(
                &format!("/api/v1/agents/{bot}/tokens"),
                json!({ "label": "doomed" }),
            )
            .await;
        let grant = rest
            .post(
                "/api/v1/grants",
                json!({ "agent": bot, "toolbox": format!("{who}-box") }),
            )
            .await;
        let doomed_grant = rest
            .post(
                "/api/v1/grants",
                json!({ "agent": format!("{who}-doomed-bot"), "toolbox": format!("{who}-box") }),
            )
            .await;
        rest.post(
            "/api/v1/grants",
            json!({ "agent": bot, "server": srv, "toolbox": srv_box }),
        )
        .await;
        let agent = json!({ "agent": bot });
        s.add("GET /api/v1/agents/{agent}", json!({ "path": agent }))
            .add(
                "PATCH /api/v1/agents/{agent}",
                json!({ "path": agent, "body": { "discovery": "all" } }),
            )
            .add(
                "DELETE /api/v1/agents/{agent}",
                json!({ "path": { "agent": format!("{who}-doomed-bot") } }),
            )
            .add(
                "GET /api/v1/agents/{agent}/tokens",
                json!({ "path": agent }),
            )
            .add(
                "POST /api/v1/agents/{agent}/tokens",
                json!({ "path": agent, "body": { "label": "more" } }),
            )
            .add(
                "DELETE /api/v1/agents/{agent}/tokens",
                json!({ "path": agent }),
            )
            .add(
                "DELETE /api/v1/agents/{agent}/tokens/{token_id}",
                json!({ "path": { "agent": bot, "token_id": id(&tokens["info"]) } }),
            )
            .add(
                "GET /api/v1/agents/{agent}/toolsets",
                json!({ "path": agent }),
            )
            .add(
                "GET /api/v1/agents/{agent}/find-tools",
                json!({ "path": agent, "query": { "q": "echo" } }),
            )
            .add(
                "POST /api/v1/agents",
                json!({ "body": { "name": format!("{who}-made-bot") } }),
            );
        s.add("GET /api/v1/grants/{grant}", json!({ "path": { "grant": id(&grant) } }))
            .add("PATCH /api/v1/grants/{grant}", json!({ "path": { "grant": id(&grant) }, "body": { "active": true } }))
            .add("DELETE /api/v1/grants/{grant}", json!({ "path": { "grant": id(&doomed_grant) } }))
            .add("POST /api/v1/grants",
                json!({ "body": { "agent": format!("{who}-bot-2"), "server": srv, "toolbox": srv_box } }));
        c.agent(&format!("{who}-bot-2")).await;

        // Toolsets of the agent's tools (its grant on the running server lists `tool`).
        let set = |name: &str| json!({ "name": format!("{who}-{name}"), "tools": [tool] });
        rest.post(&format!("/api/v1/agents/{bot}/toolsets"), set("doomed-set"))
            .await;
        s.add(
            "POST /api/v1/agents/{agent}/toolsets",
            json!({ "path": agent, "body": set("made-set") }),
        )
        .add(
            "DELETE /api/v1/agents/{agent}/toolsets/{toolset}",
            json!({ "path": { "agent": bot, "toolset": format!("{who}-doomed-set") } }),
        );

        // Chat: the caller's own LLM endpoints (a name that need not resolve: nothing here
        // calls it), the agent pointed at one, and conversations.
        let llm = |name: &str| {
            json!({ "name": format!("{who}-{name}"), "kind": "openai",
                "base_url": "https://llm.example.com/v1", "model": "m" })
        };
        for name in ["llm", "doomed-llm"] {
            rest.post("/api/v1/llms", llm(name)).await;
        }
        let settings = json!({ "llm": format!("{who}-llm") });
        rest.ok(
            "PUT",
            &format!("/api/v1/agents/{bot}/chat"),
            settings.clone(),
        )
        .await;
        let chat = rest.post("/api/v1/chats", json!({ "agent": bot })).await;
        let doomed_chat = rest.post("/api/v1/chats", json!({ "agent": bot })).await;
        s.add("POST /api/v1/llms", json!({ "body": llm("made-llm") }))
            .add(
                "GET /api/v1/llms/{llm}",
                json!({ "path": { "llm": format!("{who}-llm") } }),
            )
            .add(
                "DELETE /api/v1/llms/{llm}",
                json!({ "path": { "llm": format!("{who}-doomed-llm") } }),
            )
            .add(
                "PUT /api/v1/agents/{agent}/chat",
                json!({ "path": agent, "body": settings }),
            )
            .add("GET /api/v1/agents/{agent}/chat", json!({ "path": agent }))
            .add("POST /api/v1/chats", json!({ "body": { "agent": bot } }))
            .add(
                "GET /api/v1/chats/{chat}",
                json!({ "path": { "chat": id(&chat) } }),
            )
            .add(
                "DELETE /api/v1/chats/{chat}",
                json!({ "path": { "chat": id(&doomed_chat) } }),
            );

        for name in ["secret", "doomed-secret"] {
            rest.post(
                "/api/v1/secrets",
                json!({ "name": format!("{who}-{name}"), "value": "v" }),
            )
            .await;
        }
        s.add(
            "GET /api/v1/secrets/{secret}",
            json!({ "path": { "secret": format!("{who}-secret") } }),
        )
        .add(
            "PUT /api/v1/secrets/{secret}",
            json!({ "path": { "secret": format!("{who}-secret") }, "body": { "value": "w" } }),
        )
        .add(
            "DELETE /api/v1/secrets/{secret}",
            json!({ "path": { "secret": format!("{who}-doomed-secret") } }),
        )
        .add(
            "POST /api/v1/secrets",
            json!({ "body": { "name": format!("{who}-made-secret"), "value": "v" } }),
        );

        let mine = rest
            .post("/api/v1/me/tokens", json!({ "label": "doomed" }))
            .await;
        s.add(
            "DELETE /api/v1/me/tokens/{token_id}",
            json!({ "path": { "token_id": id(&mine["info"]) } }),
        )
        .add(
            "POST /api/v1/me/tokens",
            json!({ "body": { "label": "more" } }),
        )
        .add(
            "PUT /api/v1/me/password",
            json!({ "body": { "new_password": format!("{PASSWORD} {who}") } }),
        );
        s.add(
            "POST /api/v1/audit/verify",
            json!({ "body": { "checkpoints": [] } }),
        );
    }

    /// Providers, the vault, tool changes, the DTMA channel: the admin's.
    async fn admin_only(a: &mut Seeds, admin: &Caller) {
        let rest = &admin.rest;
        let provider = |name: &str| {
            json!({ "name": name, "kind": "custom", "client_id": "toolbelt",
                "authorization_endpoint": "https://auth.example.com/authorize",
                "token_endpoint": "https://auth.example.com/token" })
        };
        rest.post("/api/v1/providers", provider("prov")).await;
        rest.post("/api/v1/providers", provider("doomed-prov"))
            .await;
        let flow = rest
            .post("/api/v1/connections", json!({ "provider": "prov" }))
            .await;
        a.add(
            "GET /api/v1/providers/{provider}",
            json!({ "path": { "provider": "prov" } }),
        )
        .add(
            "DELETE /api/v1/providers/{provider}",
            json!({ "path": { "provider": "doomed-prov" } }),
        )
        .add(
            "POST /api/v1/providers",
            json!({ "body": provider("made-prov") }),
        )
        .add(
            "POST /api/v1/connections",
            json!({ "body": { "provider": "prov" } }),
        )
        .add(
            "GET /api/v1/connections/flows/{flow}",
            json!({ "path": { "flow": flow["flow_id"].as_str().unwrap() } }),
        );

        // Rotating once leaves the first key encrypting nothing: it may be deleted.
        let keys = rest.get("/api/v1/vault/keys").await;
        rest.post("/api/v1/vault/rotate", json!({})).await;
        let first = &keys["keys"][0];
        a.add(
            "DELETE /api/v1/vault/keys/{kek}",
            json!({ "path": { "kek": id(first) } }),
        )
        .add("POST /api/v1/vault/rotate", json!({ "body": {} }));
    }
}
