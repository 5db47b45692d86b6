//! The store's suite: each test run on SQLite and on PostgreSQL, and one that compares
//! the two migrated schemas.

mod audit_batches;
mod audit_chain;
mod audit_checkpoints;
mod audit_snapshot;
mod basics;
mod live;
mod pins;
mod roles;
mod schema_parity;
mod secrets;
mod tenancy;
mod throttle;

use toolbelt_model::Name;
use toolbelt_store::{Store, StoreOptions};
use toolbelt_testkit::db::TestDb;

pub async fn open(db: &TestDb) -> Store {
    Store::open(&db.url, StoreOptions::default())
        .await
        .expect("store opens")
}

pub fn name(s: &str) -> Name {
    Name::parse("name", s, 64).unwrap()
}
