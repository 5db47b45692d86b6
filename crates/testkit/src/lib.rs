//! Helpers for Toolbelt's tests: a fresh database on each backend, the built binary,
//! free ports, bounded waiting, the fixture MCP server, and a round-robin proxy in front of
//! control-plane replicas.

pub mod db;
pub mod fixture;
pub mod proc;
pub mod proxy;
pub mod toolcorpus;

/// Runs each named `async fn name(db: TestDb)` once on SQLite and once on PostgreSQL,
/// as `sqlite::name` and `postgres::name` (the test script counts them per backend).
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::db::TestDb::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::db::TestDb::postgres().await).await
                }
            )*
        }
    };
}
