//! Tenancy and roles as a matrix: every caller × every resource × every verb, each cell
//! with its exact expected status, on both databases.

use crate::support::{ADMIN, App};
use http::Method;
use serde_json::{Value, json};
use toolbelt_model::token::{self, TokenKind};
use toolbelt_store::tokens::{self, Subject};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(every_caller_every_resource_every_verb);

/// The callers, in the order of each cell's expectations.
pub const CALLERS: [&str; 7] = [
    "admin",
    "member",
    "other member",
    "agent token",
    "revoked token",
    "expired token",
    "no token",
];

/// Ann's world: the member who owns things; Bob is the other member.
pub struct World {
    pub tokens: [Option<String>; 7],
    ann_box: String,
    ann_srv: String,
    shared_srv: String,
    pub ann_bot: String,
    ann_grant: String,
    pub ann_id: String,
}

pub async fn world(app: &App) -> World {
    let (ann_id, ann) = app.member("ann@example.com").await;
    let (_, bob) = app.member("bob@example.com").await;
    let bot = app
        .ok("/api/v1/agents", &ann, json!({ "name": "ann-bot" }))
        .await;
    let revoked = app
        .ok("/api/v1/me/tokens", &ann, json!({ "label": "old" }))
        .await;
    let r = app
        .delete(
            &format!(
                "/api/v1/me/tokens/{}",
                revoked["info"]["id"].as_str().unwrap()
            ),
            &ann,
        )
        .await;
    assert_eq!(r.status, 200);
    // An expired token can only be made in the store: the API refuses past expiry dates.
    let expired = token::issue(TokenKind::Api);
    let mut c = app.store.conn().await.unwrap();
    let uid = toolbelt_model::UserId::from_db(ann_id.clone());
    tokens::insert(
        &mut c,
        TokenKind::Api,
        &expired.digest,
        &Subject::User(uid),
        "expired",
        Some(toolbelt_model::now() - chrono::TimeDelta::seconds(1)),
    )
    .await
    .unwrap();
    drop(c);

    let ann_box = app
        .ok("/api/v1/toolboxes", &ann, json!({ "name": "ann-box" }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.ok(
        "/api/v1/toolboxes",
        ADMIN,
        json!({ "name": "shared", "shared": true }),
    )
    .await;
    app.ok(
        "/api/v1/catalog",
        ADMIN,
        json!({ "slug": "fx", "source": {"type": "image", "image": "fx"}, "transport": "stdio" }),
    )
    .await;
    let ann_srv = app
        .ok(
            "/api/v1/servers",
            &ann,
            json!({ "name": "ann-srv", "catalog": "fx", "toolbox": ann_box }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shared_srv = app
        .ok(
            "/api/v1/servers",
            ADMIN,
            json!({ "name": "shared-srv", "catalog": "fx", "toolbox": "shared" }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ann_bot = bot["agent"]["id"].as_str().unwrap().to_string();
    let ann_grant = app
        .ok(
            "/api/v1/grants",
            &ann,
            json!({ "agent": ann_bot, "server": ann_srv }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    World {
        tokens: [
            Some(ADMIN.into()),
            Some(ann.clone()),
            Some(bob),
            Some(bot["token"]["token"].as_str().unwrap().into()),
            Some(revoked["token"].as_str().unwrap().into()),
            Some(expired.secret.clone()),
            None,
        ],
        ann_box,
        ann_srv,
        shared_srv,
        ann_bot,
        ann_grant,
        ann_id,
    }
}

/// One verb on one resource. `prepare` makes what the cell needs (fresh victims for
/// destructive verbs, so every caller meets the same situation).
#[derive(Debug, Clone, Copy)]
enum Op {
    UsersList,
    UserCreate,
    UserGetAnn,
    UserDelete,
    ToolboxList,
    ToolboxGetAnn,
    ToolboxGetShared,
    ToolboxCreate,
    ToolboxCreateShared,
    ToolboxUpdateAnn,
    ToolboxUpdateShared,
    ToolboxDeleteAnn,
    ToolboxDeleteShared,
    JoinTokenAnn,
    JoinTokenShared,
    CatalogList,
    CatalogGet,
    CatalogCreate,
    CatalogUpdate,
    CatalogDeprecate,
    CatalogDelete,
    ServerList,
    ServerGetAnn,
    ServerGetShared,
    ServerCreateAnn,
    ServerCreateShared,
    ServerStopAnn,
    ServerStopShared,
    ServerRestartAnn,
    ServerUpdateImageAnn,
    ServerUpdateImageShared,
    ServerDeleteAnn,
    AgentList,
    AgentGetAnn,
    AgentCreate,
    AgentDeleteAnn,
    AgentTokensList,
    AgentTokenIssue,
    AgentTokenRevoke,
    AgentTokensRevokeAll,
    GrantList,
    GrantGetAnn,
    GrantCreateAnn,
    GrantUpdateAnn,
    GrantDeleteAnn,
    AuditList,
    AuditVerify,
    Me,
    MeTokenCreate,
    MeTokensList,
    Logout,
}

pub struct Req(pub Method, pub String, pub Option<Value>);

pub fn get(p: impl Into<String>) -> Req {
    Req(Method::GET, p.into(), None)
}

pub fn post(p: impl Into<String>, b: Value) -> Req {
    Req(Method::POST, p.into(), Some(b))
}

pub fn del(p: impl Into<String>) -> Req {
    Req(Method::DELETE, p.into(), None)
}

pub async fn id_of(app: &App, path: &str, token: &str, body: Value) -> String {
    app.ok(path, token, body).await["id"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_default()
}

/// A matrix row's verb: makes the request a cell sends.
pub trait Cell: Copy + std::fmt::Debug {
    async fn prepare(self, app: &App, w: &World, n: usize) -> Req;
}

impl Cell for Op {
    async fn prepare(self, app: &App, w: &World, n: usize) -> Req {
        let ann = w.tokens[1].as_deref().unwrap();
        match self {
            Op::UsersList => get("/api/v1/users"),
            Op::UserCreate => post(
                "/api/v1/users",
                json!({ "email": format!("new{n}@example.com"), "role": "member" }),
            ),
            Op::UserGetAnn => get(format!("/api/v1/users/{}", w.ann_id)),
            Op::UserDelete => {
                let (id, _) = app.member(&format!("victim{n}@example.com")).await;
                del(format!("/api/v1/users/{id}"))
            }
            Op::ToolboxList => get("/api/v1/toolboxes"),
            Op::ToolboxGetAnn => get(format!("/api/v1/toolboxes/{}", w.ann_box)),
            Op::ToolboxGetShared => get("/api/v1/toolboxes/shared"),
            Op::ToolboxCreate => post("/api/v1/toolboxes", json!({ "name": format!("box{n}") })),
            Op::ToolboxCreateShared => post(
                "/api/v1/toolboxes",
                json!({ "name": format!("sbox{n}"), "shared": true }),
            ),
            Op::ToolboxUpdateAnn => Req(
                Method::PATCH,
                format!("/api/v1/toolboxes/{}", w.ann_box),
                Some(json!({ "allowed_registries": [] })),
            ),
            Op::ToolboxUpdateShared => Req(
                Method::PATCH,
                "/api/v1/toolboxes/shared".into(),
                Some(json!({ "allowed_registries": [] })),
            ),
            Op::ToolboxDeleteAnn => {
                let id = id_of(
                    app,
                    "/api/v1/toolboxes",
                    ann,
                    json!({ "name": format!("empty{n}") }),
                )
                .await;
                del(format!("/api/v1/toolboxes/{id}"))
            }
            Op::ToolboxDeleteShared => {
                let id = id_of(
                    app,
                    "/api/v1/toolboxes",
                    ADMIN,
                    json!({ "name": format!("sempty{n}"), "shared": true }),
                )
                .await;
                del(format!("/api/v1/toolboxes/{id}"))
            }
            Op::JoinTokenAnn => post(
                format!("/api/v1/toolboxes/{}/join-token", w.ann_box),
                json!({}),
            ),
            Op::JoinTokenShared => post("/api/v1/toolboxes/shared/join-token", json!({})),
            Op::CatalogList => get("/api/v1/catalog"),
            Op::CatalogGet => get("/api/v1/catalog/fx"),
            Op::CatalogCreate => post(
                "/api/v1/catalog",
                json!({ "slug": format!("c{n}"), "source": {"type": "image", "image": "x"}, "transport": "stdio" }),
            ),
            Op::CatalogUpdate => Req(
                Method::PUT,
                "/api/v1/catalog/fx".into(),
                Some(
                    json!({ "slug": "fx", "description": format!("v{n}"), "source": {"type": "image", "image": "fx"}, "transport": "stdio" }),
                ),
            ),
            Op::CatalogDeprecate | Op::CatalogDelete => {
                app.ok("/api/v1/catalog", ADMIN, json!({ "slug": format!("gone{n}"), "source": {"type": "image", "image": "x"}, "transport": "stdio" })).await;
                match self {
                    Op::CatalogDeprecate => {
                        post(format!("/api/v1/catalog/gone{n}/deprecate"), json!({}))
                    }
                    _ => del(format!("/api/v1/catalog/gone{n}")),
                }
            }
            Op::ServerList => get("/api/v1/servers"),
            Op::ServerGetAnn => get(format!("/api/v1/servers/{}", w.ann_srv)),
            Op::ServerGetShared => get(format!("/api/v1/servers/{}", w.shared_srv)),
            Op::ServerCreateAnn => post(
                "/api/v1/servers",
                json!({ "name": format!("s{n}"), "catalog": "fx", "toolbox": w.ann_box }),
            ),
            Op::ServerCreateShared => post(
                "/api/v1/servers",
                json!({ "name": format!("s{n}"), "catalog": "fx", "toolbox": "shared" }),
            ),
            Op::ServerStopAnn => post(format!("/api/v1/servers/{}/stop", w.ann_srv), json!({})),
            Op::ServerStopShared => {
                post(format!("/api/v1/servers/{}/stop", w.shared_srv), json!({}))
            }
            Op::ServerRestartAnn => {
                post(format!("/api/v1/servers/{}/restart", w.ann_srv), json!({}))
            }
            Op::ServerUpdateImageAnn => post(
                format!("/api/v1/servers/{}/update-image", w.ann_srv),
                json!({}),
            ),
            Op::ServerUpdateImageShared => post(
                format!("/api/v1/servers/{}/update-image", w.shared_srv),
                json!({}),
            ),
            Op::ServerDeleteAnn => {
                let id = id_of(
                    app,
                    "/api/v1/servers",
                    ann,
                    json!({ "name": format!("doomed{n}"), "catalog": "fx", "toolbox": w.ann_box }),
                )
                .await;
                del(format!("/api/v1/servers/{id}"))
            }
            Op::AgentList => get("/api/v1/agents"),
            Op::AgentGetAnn => get(format!("/api/v1/agents/{}", w.ann_bot)),
            Op::AgentCreate => post("/api/v1/agents", json!({ "name": format!("bot{n}") })),
            Op::AgentDeleteAnn => {
                let v = app
                    .ok(
                        "/api/v1/agents",
                        ann,
                        json!({ "name": format!("doomed{n}") }),
                    )
                    .await;
                del(format!(
                    "/api/v1/agents/{}",
                    v["agent"]["id"].as_str().unwrap()
                ))
            }
            Op::AgentTokensList => get(format!("/api/v1/agents/{}/tokens", w.ann_bot)),
            Op::AgentTokenIssue => post(
                format!("/api/v1/agents/{}/tokens", w.ann_bot),
                json!({ "label": format!("t{n}") }),
            ),
            Op::AgentTokenRevoke => {
                let v = app
                    .ok(
                        &format!("/api/v1/agents/{}/tokens", w.ann_bot),
                        ann,
                        json!({}),
                    )
                    .await;
                del(format!(
                    "/api/v1/agents/{}/tokens/{}",
                    w.ann_bot,
                    v["info"]["id"].as_str().unwrap()
                ))
            }
            Op::AgentTokensRevokeAll => {
                let v = app
                    .ok("/api/v1/agents", ann, json!({ "name": format!("tk{n}") }))
                    .await;
                del(format!(
                    "/api/v1/agents/{}/tokens",
                    v["agent"]["id"].as_str().unwrap()
                ))
            }
            Op::GrantList => get("/api/v1/grants"),
            Op::GrantGetAnn => get(format!("/api/v1/grants/{}", w.ann_grant)),
            Op::GrantCreateAnn => post(
                "/api/v1/grants",
                json!({ "agent": w.ann_bot, "server": w.ann_srv, "tool": format!("tool{n}"), "rule": "ask" }),
            ),
            Op::GrantUpdateAnn => Req(
                Method::PATCH,
                format!("/api/v1/grants/{}", w.ann_grant),
                Some(json!({ "active": n.is_multiple_of(2) })),
            ),
            Op::GrantDeleteAnn => {
                let id = id_of(
                    app,
                    "/api/v1/grants",
                    ann,
                    json!({ "agent": w.ann_bot, "server": w.ann_srv, "tool": format!("gone{n}") }),
                )
                .await;
                del(format!("/api/v1/grants/{id}"))
            }
            Op::AuditList => get("/api/v1/audit"),
            Op::AuditVerify => get("/api/v1/audit/verify"),
            Op::Me => get("/api/v1/me"),
            Op::MeTokenCreate => post("/api/v1/me/tokens", json!({ "label": format!("l{n}") })),
            Op::MeTokensList => get("/api/v1/me/tokens"),
            Op::Logout => post("/api/v1/logout", json!({})),
        }
    }
}

/// (op, admin, member who owns it, other member). Agent tokens get 403; revoked,
/// expired and missing tokens 401 — for every cell.
const CELLS: &[(Op, u16, u16, u16)] = &[
    (Op::UsersList, 200, 403, 403),
    (Op::UserCreate, 201, 403, 403),
    (Op::UserGetAnn, 200, 200, 404),
    (Op::UserDelete, 200, 403, 403),
    (Op::ToolboxList, 200, 200, 200),
    (Op::ToolboxGetAnn, 200, 200, 404),
    (Op::ToolboxGetShared, 200, 200, 200),
    (Op::ToolboxCreate, 201, 201, 201),
    (Op::ToolboxCreateShared, 201, 403, 403),
    (Op::ToolboxUpdateAnn, 200, 200, 404),
    (Op::ToolboxUpdateShared, 200, 403, 403),
    (Op::ToolboxDeleteAnn, 200, 200, 404),
    (Op::ToolboxDeleteShared, 200, 403, 403),
    (Op::JoinTokenAnn, 201, 201, 404),
    (Op::JoinTokenShared, 201, 403, 403),
    (Op::CatalogList, 200, 200, 200),
    (Op::CatalogGet, 200, 200, 200),
    (Op::CatalogCreate, 201, 403, 403),
    (Op::CatalogUpdate, 200, 403, 403),
    (Op::CatalogDeprecate, 200, 403, 403),
    (Op::CatalogDelete, 200, 403, 403),
    (Op::ServerList, 200, 200, 200),
    (Op::ServerGetAnn, 200, 200, 404),
    (Op::ServerGetShared, 200, 200, 200),
    (Op::ServerCreateAnn, 201, 201, 422),
    (Op::ServerCreateShared, 201, 403, 403),
    (Op::ServerStopAnn, 200, 200, 404),
    (Op::ServerStopShared, 200, 403, 403),
    (Op::ServerRestartAnn, 200, 200, 404),
    // Allowed, then the toolbox is asked: these have no DTMA (503 after authorization).
    (Op::ServerUpdateImageAnn, 503, 503, 404),
    (Op::ServerUpdateImageShared, 503, 403, 403),
    (Op::ServerDeleteAnn, 200, 200, 404),
    (Op::AgentList, 200, 200, 200),
    (Op::AgentGetAnn, 200, 200, 404),
    (Op::AgentCreate, 201, 201, 201),
    (Op::AgentDeleteAnn, 200, 200, 404),
    (Op::AgentTokensList, 200, 200, 404),
    (Op::AgentTokenIssue, 201, 201, 404),
    (Op::AgentTokenRevoke, 200, 200, 404),
    (Op::AgentTokensRevokeAll, 200, 200, 404),
    (Op::GrantList, 200, 200, 200),
    (Op::GrantGetAnn, 200, 200, 404),
    (Op::GrantCreateAnn, 201, 201, 422),
    (Op::GrantUpdateAnn, 200, 200, 404),
    (Op::GrantDeleteAnn, 200, 200, 404),
    (Op::AuditList, 200, 200, 200),
    (Op::AuditVerify, 200, 403, 403),
    (Op::Me, 200, 200, 200),
    (Op::MeTokenCreate, 201, 201, 201),
    (Op::MeTokensList, 200, 200, 200),
    (Op::Logout, 204, 204, 204),
];

async fn every_caller_every_resource_every_verb(db: TestDb) {
    let app = App::new(db).await;
    let w = world(&app).await;
    run(&app, &w, CELLS).await;
}

/// Runs every cell of `cells` for every caller and insists on each expected status.
/// Agent tokens get 403; revoked, expired and missing tokens 401 — for every cell.
pub async fn run<O: Cell>(app: &App, w: &World, cells: &[(O, u16, u16, u16)]) {
    let mut wrong = Vec::new();
    let mut n = 0;
    for &(op, admin, member, other) in cells {
        let expected = [admin, member, other, 403, 401, 401, 401];
        for (i, want) in expected.into_iter().enumerate() {
            n += 1;
            let Req(method, path, body) = op.prepare(app, w, n).await;
            let r = app
                .call(method.clone(), &path, w.tokens[i].as_deref(), body)
                .await;
            if r.status.as_u16() != want {
                wrong.push(format!(
                    "{op:?} as {}: {method} {path} → {} (want {want}) {}",
                    CALLERS[i],
                    r.status.as_u16(),
                    r.body
                ));
            }
            // A 401 always says how to authenticate.
            if want == 401
                && r.headers
                    .get("www-authenticate")
                    .map(|v| v.to_str().unwrap())
                    != Some("Bearer")
            {
                wrong.push(format!(
                    "{op:?} as {}: 401 without WWW-Authenticate: Bearer",
                    CALLERS[i]
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {n} cells wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // Every cell above ran; the matrix is as large as it claims.
    assert_eq!(n, cells.len() * CALLERS.len());
}
