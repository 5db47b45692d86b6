//! The control plane of `toolbelt up` as `toolbelt-app` builds it (the shared `local`
//! toolbox, the seed catalog, the real vault) and three callers: the first admin, Ann and
//! Bob (members).

use serde_json::json;
use toolbelt_control::AppState;
use toolbelt_control::service::{self, Caller, Credential};
use toolbelt_model::catalog::CatalogSpec;
use toolbelt_model::{Role, Scope, TokenId};
use toolbelt_store::users;
use toolbelt_testkit::db::TestDb;

pub struct World {
    pub st: AppState,
    pub admin: Caller,
    pub ann: Caller,
    pub bob: Caller,
    #[allow(dead_code)] // keeps the database (its directory) alive
    db: TestDb,
    #[allow(dead_code)] // the data dir: the control key and the vault's key file
    data: tempfile::TempDir,
}

/// A caller signed in with an API token (the token itself is not looked at by services).
pub fn api_caller(scope: Scope) -> Caller {
    Caller {
        scope,
        credential: Credential::ApiToken(TokenId::generate()),
    }
}

impl World {
    pub async fn new(db: TestDb) -> World {
        let data = tempfile::tempdir().unwrap();
        let mut o = toolbelt_app::Options::new(data.path());
        o.database_url = Some(db.url.clone());
        o.local_toolbox = true;
        let app = toolbelt_app::build(o).await.unwrap();
        let st = app.state().clone();
        let mut c = st.store.conn().await.unwrap();
        let first = users::get_by_email(&mut c, "admin@toolbelt.local")
            .await
            .unwrap()
            .user;
        drop(c);
        let admin = api_caller(Scope {
            user_id: first.id,
            role: Role::Admin,
        });
        let member = |email: &str| {
            let (st, admin) = (st.clone(), admin.clone());
            let email = email.to_string();
            async move {
                let req = serde_json::from_value(json!({ "email": email, "role": "member" }));
                let u = service::users::create(&st, &admin, req.unwrap())
                    .await
                    .unwrap()
                    .user;
                api_caller(Scope {
                    user_id: u.id,
                    role: Role::Member,
                })
            }
        };
        let ann = member("ann@example.com").await;
        let bob = member("bob@example.com").await;
        World {
            st,
            admin,
            ann,
            bob,
            db,
            data,
        }
    }

    /// A catalog entry `cfg`: config needs an integer `port`; secret `TOKEN` is required.
    pub async fn cfg_entry(&self) {
        let spec: CatalogSpec = serde_json::from_value(json!({
            "slug": "cfg", "source": {"type": "image", "image": "cfg"}, "transport": "stdio",
            "config_schema": {"type": "object", "required": ["port"],
                "properties": {"port": {"type": "integer", "minimum": 1}}},
            "secrets": [{"name": "TOKEN", "required": true}],
        }))
        .unwrap();
        service::catalog::create(&self.st, &self.admin, spec)
            .await
            .unwrap();
    }
}

/// A body as the REST API would have parsed it.
pub fn input<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("a well-formed input")
}
