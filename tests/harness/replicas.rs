//! The two-replica world: two `toolbelt serve` processes on one PostgreSQL database (a new
//! one in the test cluster) behind one URL — a round-robin proxy — sharing the control
//! key (`TOOLBELT_CONTROL_KEY_FILE`) and the vault key (`TOOLBELT_VAULT_KEY`), as a
//! production deployment runs them. Changes whose state is shared across replicas (live
//! updates, approvals, rate limits) add their case to `tests/e2e/replicas.rs`.

use crate::rest::Rest;
use crate::{DtmaProc, Server};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use toolbelt_testkit::db::TestDb;
use toolbelt_testkit::fixture::fixture_bin;
use toolbelt_testkit::proxy::RoundRobin;

pub const ADMIN: &str = "tbu_replicas-admin-token-0000";

pub struct Replicas {
    /// The one URL: new connections alternate between the replicas.
    pub proxy: RoundRobin,
    pub replicas: Vec<Server>,
    pub db: TestDb,
    pub dir: tempfile::TempDir,
}

impl Replicas {
    /// Two replicas (the first bootstraps the database, then the second starts on it).
    pub async fn start() -> Replicas {
        Self::start_with(&[]).await
    }

    /// Two replicas with more settings (`TOOLBELT_…` variables) for both.
    pub async fn start_with(extra: &[(&str, &str)]) -> Replicas {
        let db = TestDb::postgres().await;
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("control.key");
        let vault_key = hex::encode(Sha256::digest(
            toolbelt_model::ids::AgentId::generate().to_string(),
        ));
        let env = [
            ("TOOLBELT_DATABASE_URL", db.url.clone()),
            ("TOOLBELT_CONTROL_KEY_FILE", key_file.display().to_string()),
            ("TOOLBELT_VAULT_KEY", vault_key),
            ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN.to_string()),
            ("TOOLBELT_HEARTBEAT_MS", "300".to_string()),
        ];
        let env: Vec<(&str, &str)> = env
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain(extra.iter().copied())
            .collect();
        let mut replicas = Vec::new();
        for i in 0..2 {
            replicas.push(Server::serve(&dir.path().join(format!("replica-{i}")), &env).await);
        }
        let backends = replicas
            .iter()
            .map(|r| r.url.trim_start_matches("http://").parse().unwrap())
            .collect();
        Replicas {
            proxy: RoundRobin::start(backends).await,
            replicas,
            db,
            dir,
        }
    }

    /// The one URL.
    pub fn url(&self) -> String {
        self.proxy.url()
    }

    /// The admin behind the one URL, on a new connection per request (so consecutive
    /// requests reach different replicas).
    pub fn admin(&self) -> Rest {
        Rest::new(&self.url(), ADMIN).fresh_connections()
    }

    /// The admin at replica `i` only.
    pub fn admin_at(&self, i: usize) -> Rest {
        Rest::new(&self.replicas[i].url, ADMIN)
    }

    /// A shared toolbox `name` and its DTMA (process runtime, this build's `fixture-mcp`
    /// on its PATH), joined through the one URL.
    pub async fn toolbox(&self, name: &str) -> DtmaProc {
        let admin = self.admin_at(0);
        admin
            .post("/api/v1/toolboxes", json!({ "name": name, "shared": true }))
            .await;
        let join = admin
            .post(&format!("/api/v1/toolboxes/{name}/join-token"), json!({}))
            .await["token"]
            .as_str()
            .unwrap()
            .to_string();
        let path = format!(
            "{}:{}",
            fixture_bin().parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        DtmaProc::start(
            &self.url(),
            Some(&join),
            &self.dir.path().join(name),
            "process",
            &[("PATH", &path)],
        )
        .await
    }

    /// The replicas that served a connection whose first request line starts with
    /// `request` (`"POST /api/v1/dtma/heartbeat"`).
    pub fn served(&self, request: &str) -> BTreeSet<usize> {
        self.proxy
            .served()
            .into_iter()
            .filter(|s| s.first_line.starts_with(request))
            .map(|s| s.backend)
            .collect()
    }
}
