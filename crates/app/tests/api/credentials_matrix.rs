//! The tenancy matrix for the vault and OAuth: secrets, keys, providers, connections and
//! connection grants, every caller × every verb, on both databases.

use crate::matrix::{Cell, Req, World, del, get, id_of, post, run, world};
use crate::support::{ADMIN, App};
use http::Method;
use serde_json::json;
use toolbelt_model::{ConnectionId, ProviderId, UserId};
use toolbelt_store::oauth::{self as rows, NewConnection};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(every_caller_every_credential_every_verb);

#[derive(Debug, Clone, Copy)]
enum Op {
    SecretList,
    SecretGetAnn,
    SecretCreate,
    SecretCreateShared,
    SecretUpdateAnn,
    SecretDeleteAnn,
    VaultKeys,
    VaultRotate,
    ProviderList,
    ProviderGet,
    ProviderCreate,
    ProviderDelete,
    ConnectionList,
    ConnectionStart,
    ConnectionGetAnn,
    ConnectionRevokeAnn,
    ConnectionReconnectAnn,
    GrantConnectionAnn,
}

fn ann(w: &World) -> &str {
    w.tokens[1].as_deref().unwrap()
}

/// A connection of Ann's to the `prov` provider (written to the store: the flow itself is
/// tested against a real authorization server elsewhere).
async fn ann_connection(app: &App, w: &World, n: usize) -> String {
    let secret = id_of(
        app,
        "/api/v1/secrets",
        ann(w),
        json!({ "name": format!("con-tokens-{n}"), "value": "{}" }),
    )
    .await;
    let mut c = app.store.conn().await.unwrap();
    let p = rows::get_provider(&mut c, "prov").await.unwrap();
    let id = ConnectionId::generate();
    rows::insert_connection(
        &mut c,
        NewConnection {
            id: &id,
            owner_id: &UserId::from_db(w.ann_id.clone()),
            provider_id: &ProviderId::from_db(p.id.to_string()),
            scopes: &["read".to_string()],
            token_secret_id: &secret,
            has_refresh: false,
            expires_at: None,
            next_refresh_at: None,
        },
    )
    .await
    .unwrap();
    id.to_string()
}

fn provider(name: &str) -> serde_json::Value {
    json!({
        "name": name, "kind": "custom", "client_id": "cid", "client_secret": "shh",
        "authorization_endpoint": "http://127.0.0.1:9/authorize",
        "token_endpoint": "http://127.0.0.1:9/token",
    })
}

impl Cell for Op {
    async fn prepare(self, app: &App, w: &World, n: usize) -> Req {
        match self {
            Op::SecretList => get("/api/v1/secrets"),
            // By id: names resolve in the caller's own namespace.
            Op::SecretGetAnn => {
                let r = app.get("/api/v1/secrets/ann-secret", ann(w)).await;
                get(format!(
                    "/api/v1/secrets/{}",
                    r.body["id"].as_str().unwrap()
                ))
            }
            Op::SecretCreate => post(
                "/api/v1/secrets",
                json!({ "name": format!("s{n}"), "value": "v" }),
            ),
            Op::SecretCreateShared => post(
                "/api/v1/secrets",
                json!({ "name": format!("shared{n}"), "value": "v", "shared": true }),
            ),
            Op::SecretUpdateAnn => {
                let id = id_of(
                    app,
                    "/api/v1/secrets",
                    ann(w),
                    json!({ "name": format!("u{n}"), "value": "v" }),
                )
                .await;
                Req(
                    Method::PUT,
                    format!("/api/v1/secrets/{id}"),
                    Some(json!({ "value": "w" })),
                )
            }
            Op::SecretDeleteAnn => {
                let id = id_of(
                    app,
                    "/api/v1/secrets",
                    ann(w),
                    json!({ "name": format!("d{n}"), "value": "v" }),
                )
                .await;
                del(format!("/api/v1/secrets/{id}"))
            }
            Op::VaultKeys => get("/api/v1/vault/keys"),
            Op::VaultRotate => post("/api/v1/vault/rotate", json!({ "new_key": false })),
            Op::ProviderList => get("/api/v1/providers"),
            Op::ProviderGet => get("/api/v1/providers/prov"),
            Op::ProviderCreate => post("/api/v1/providers", provider(&format!("p{n}"))),
            Op::ProviderDelete => {
                app.ok("/api/v1/providers", ADMIN, provider(&format!("gone{n}")))
                    .await;
                del(format!("/api/v1/providers/gone{n}"))
            }
            Op::ConnectionList => get("/api/v1/connections"),
            Op::ConnectionStart => post("/api/v1/connections", json!({ "provider": "prov" })),
            Op::ConnectionGetAnn => get(format!(
                "/api/v1/connections/{}",
                ann_connection(app, w, n).await
            )),
            Op::ConnectionRevokeAnn => del(format!(
                "/api/v1/connections/{}",
                ann_connection(app, w, n).await
            )),
            Op::ConnectionReconnectAnn => post(
                format!(
                    "/api/v1/connections/{}/reconnect",
                    ann_connection(app, w, n).await
                ),
                json!({}),
            ),
            Op::GrantConnectionAnn => post(
                "/api/v1/grants",
                json!({ "agent": w.ann_bot, "connection": ann_connection(app, w, n).await }),
            ),
        }
    }
}

/// (op, admin, Ann who owns it, Bob). Admins read members' secrets' metadata but never
/// change their values; nobody but Ann's own agents may be granted Ann's connection.
const CELLS: &[(Op, u16, u16, u16)] = &[
    (Op::SecretList, 200, 200, 200),
    (Op::SecretGetAnn, 200, 200, 404),
    (Op::SecretCreate, 201, 201, 201),
    (Op::SecretCreateShared, 201, 403, 403),
    (Op::SecretUpdateAnn, 403, 200, 404),
    (Op::SecretDeleteAnn, 200, 200, 404),
    (Op::VaultKeys, 200, 403, 403),
    (Op::VaultRotate, 200, 403, 403),
    (Op::ProviderList, 200, 200, 200),
    (Op::ProviderGet, 200, 200, 200),
    (Op::ProviderCreate, 201, 403, 403),
    (Op::ProviderDelete, 200, 403, 403),
    (Op::ConnectionList, 200, 200, 200),
    (Op::ConnectionStart, 201, 201, 201),
    (Op::ConnectionGetAnn, 200, 200, 404),
    (Op::ConnectionRevokeAnn, 200, 200, 404),
    // Only the owner signs in as the owner: an admin sees the connection but cannot.
    (Op::ConnectionReconnectAnn, 403, 201, 404),
    (Op::GrantConnectionAnn, 201, 201, 422),
];

async fn every_caller_every_credential_every_verb(db: TestDb) {
    let app = App::new(db).await;
    let w = world(&app).await;
    app.ok(
        "/api/v1/secrets",
        ann(&w),
        json!({ "name": "ann-secret", "value": "v" }),
    )
    .await;
    app.ok("/api/v1/providers", ADMIN, provider("prov")).await;
    run(&app, &w, CELLS).await;

    // Members see only their own secrets and connections in lists.
    let bob = w.tokens[2].as_deref().unwrap();
    for path in ["/api/v1/secrets", "/api/v1/connections"] {
        let r = app.get(path, bob).await;
        let items = r.body["items"].as_array().unwrap();
        assert!(
            items.iter().all(|i| i["owner_id"] != w.ann_id.as_str()),
            "{path}: {}",
            r.body
        );
    }
    // No value ever comes back, for anyone.
    let r = app.get("/api/v1/secrets", ADMIN).await;
    assert!(
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s.get("value").is_none())
    );
}
