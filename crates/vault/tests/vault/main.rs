//! The vault's suite. Tests that touch a database run on SQLite and on PostgreSQL.

mod basics;
mod dump;
mod keyfile;
mod records;
mod rotation;
mod tamper;
mod tenancy;

use std::sync::Arc;
use toolbelt_model::user::User;
use toolbelt_model::{Name, Role, Scope};
use toolbelt_store::{Store, StoreOptions, users};
use toolbelt_testkit::db::TestDb;
use toolbelt_vault::{KeyProvider, KeyRing, Vault};

pub async fn store(db: &TestDb) -> Store {
    Store::open(&db.url, StoreOptions::default())
        .await
        .expect("store opens")
}

/// A vault over a fresh store with an in-memory key ring.
pub async fn vault(db: &TestDb) -> Vault {
    vault_with(store(db).await, Arc::new(KeyRing::generate().unwrap())).await
}

pub async fn vault_with(store: Store, keys: Arc<dyn KeyProvider>) -> Vault {
    Vault::open(store, keys).await.expect("vault opens")
}

pub fn name(s: &str) -> Name {
    Name::parse("name", s, 64).unwrap()
}

pub fn scope(u: &User) -> Scope {
    Scope {
        user_id: u.id.clone(),
        role: u.role,
    }
}

pub async fn user(s: &Store, email: &str, role: Role) -> Scope {
    let mut c = s.conn().await.unwrap();
    scope(&users::create(&mut c, email, role, None).await.unwrap())
}

/// Runs raw SQL against the vault's database (for tampering, as an attacker with database
/// access would).
pub async fn sql(s: &Store, q: &str) {
    sqlx::query(sqlx::AssertSqlSafe(q.to_string()))
        .execute(s.pool())
        .await
        .expect(q);
}
