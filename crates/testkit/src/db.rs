//! Throwaway databases. SQLite: a file in a temporary directory. PostgreSQL: a new
//! database on the server named by `TOOLBELT_TEST_POSTGRES_URL` — which must be set: the
//! PostgreSQL tests fail without it, they never skip (`scripts/test.sh` starts a server).

use rand::RngExt;
use sqlx::Connection;

pub const POSTGRES_ENV: &str = "TOOLBELT_TEST_POSTGRES_URL";

pub struct TestDb {
    pub url: String,
    pub backend: &'static str,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("toolbelt.db").display());
        TestDb {
            url,
            backend: "sqlite",
            _dir: Some(dir),
        }
    }

    pub async fn postgres() -> TestDb {
        let admin = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
            panic!(
                "{POSTGRES_ENV} is not set. The PostgreSQL half of the suite needs a server; \
                 ./scripts/test.sh installs and starts a throwaway one."
            )
        });
        let name = format!("tbt_{:016x}", rand::rng().random::<u64>());
        let mut c = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {POSTGRES_ENV}: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .expect("CREATE DATABASE");
        let _ = c.close().await;
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        TestDb {
            url: format!("{base}/{name}"),
            backend: "postgres",
            _dir: None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.backend == "postgres"
    }
}
