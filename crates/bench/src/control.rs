//! The control plane: cold start of `toolbelt up` to ready, idle memory, and list
//! latency over 10,000 rows on SQLite and PostgreSQL.

use crate::stats::{fmt, rss_mib, summarize};
use anyhow::{Context, Result};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use toolbelt_e2e::Server;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::name::Name;
use toolbelt_model::{Role, Scope};
use toolbelt_store::{Store, StoreOptions, agents, users};
use toolbelt_testkit::db::TestDb;
use toolbelt_testkit::proc::{free_port, toolbelt_bin};

const ADMIN: &str = "tbu_bench-admin-token-00000000";

/// Time from spawn to the first 200 on /readyz.
async fn start_once(data_dir: &std::path::Path) -> Result<(Duration, std::process::Child, String)> {
    let port = free_port();
    let started = Instant::now();
    let child = Command::new(toolbelt_bin())
        .args([
            "up",
            "--runtime",
            "process",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir)
        .env("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN)
        .env("TOOLBELT_LOG", "warn")
        .env_remove("TOOLBELT_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let url = format!("http://127.0.0.1:{port}");
    let http = toolbelt_net::http::client();
    loop {
        if let Ok(r) = http.get(format!("{url}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok((started.elapsed(), child, url));
        }
        if started.elapsed() > Duration::from_secs(30) {
            anyhow::bail!("toolbelt up did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn stop(mut c: std::process::Child) {
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    let _ = c.wait();
}

pub async fn run(rounds: usize, requests: usize) -> Result<()> {
    println!(
        "## control plane (build: release; `toolbelt up --runtime process`, SQLite default)\n"
    );
    let (mut first, mut again) = (Vec::new(), Vec::new());
    let mut idle_rss = 0.0;
    for i in 0..rounds {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let (t, c, _) = start_once(&data).await?;
        first.push(t);
        if i == 0 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            idle_rss = rss_mib(c.id());
        }
        stop(c);
        let (t, c, _) = start_once(&data).await?;
        again.push(t);
        stop(c);
    }
    let (f, a) = (summarize(first), summarize(again));
    println!("| measure | p50 | p99 | n |\n|---|---|---|---|");
    println!(
        "| cold start to ready (first start: migrations, seed, local toolbox join) | {} | {} | {} |",
        fmt(f.p50),
        fmt(f.p99),
        f.n
    );
    println!(
        "| start to ready (existing data dir) | {} | {} | {} |",
        fmt(a.p50),
        fmt(a.p99),
        a.n
    );
    println!(
        "\nidle RSS of `toolbelt up` (control plane + in-process DTMA, 3 s after ready): {idle_rss:.1} MiB\n"
    );

    println!("| list call, 10,000 rows | backend | p50 | p99 | n |\n|---|---|---|---|---|");
    for backend in ["sqlite", "postgres"] {
        let db = if backend == "sqlite" {
            TestDb::sqlite().await
        } else {
            TestDb::postgres().await
        };
        let dir = tempfile::tempdir()?;
        let server = Server::serve(
            &dir.path().join("cp"),
            &[
                ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN),
                ("TOOLBELT_DATABASE_URL", &db.url),
                ("TOOLBELT_LOG", "warn"),
            ],
        )
        .await;
        fill(&db.url, 10_000).await?;
        let http = toolbelt_net::http::builder().tcp_nodelay(true).build()?;
        let get = |p: String| {
            let http = http.clone();
            let url = format!("{}{p}", server.url);
            async move {
                http.get(url)
                    .bearer_auth(ADMIN)
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await
            }
        };
        let middle = {
            let page: serde_json::Value =
                serde_json::from_slice(&get("/api/v1/agents?limit=1000".into()).await?)?;
            let mut cursor = page["next_cursor"]
                .as_str()
                .context("a cursor")?
                .to_string();
            for _ in 0..4 {
                let p: serde_json::Value = serde_json::from_slice(
                    &get(format!("/api/v1/agents?limit=1000&cursor={cursor}")).await?,
                )?;
                cursor = p["next_cursor"].as_str().context("a cursor")?.to_string();
            }
            cursor
        };
        for (label, path) in [
            (
                "GET /api/v1/agents (first page of 100)",
                "/api/v1/agents".to_string(),
            ),
            (
                "GET /api/v1/agents (page at row 5,000)",
                format!("/api/v1/agents?cursor={middle}"),
            ),
            (
                "GET /api/v1/audit (newest 100 of 10,000+ events)",
                "/api/v1/audit".to_string(),
            ),
        ] {
            for _ in 0..50 {
                get(path.clone()).await?;
            }
            let mut lat = Vec::with_capacity(requests);
            for _ in 0..requests {
                let t = Instant::now();
                get(path.clone()).await?;
                lat.push(t.elapsed());
            }
            let s = summarize(lat);
            println!(
                "| {label} | {backend} | {} | {} | {} |",
                fmt(s.p50),
                fmt(s.p99),
                s.n
            );
        }
        server.stop();
    }
    Ok(())
}

/// 10,000 agents (and their audit events) for the admin, written straight to the store.
async fn fill(url: &str, n: usize) -> Result<()> {
    let store = Store::open(url, StoreOptions::default()).await?;
    let mut c = store.conn().await?;
    let admin = users::get_by_email(&mut c, "admin@toolbelt.local")
        .await?
        .user;
    drop(c);
    let _ = Scope {
        user_id: admin.id.clone(),
        role: Role::Admin,
    };
    for chunk in 0..(n / 500) {
        let mut tx = store.begin_audited().await?;
        for i in 0..500 {
            let name = Name::parse("name", &format!("agent-{}", chunk * 500 + i), 64)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            agents::create(&mut tx, &admin.id, &name, "bench").await?;
        }
        tx.commit(toolbelt_model::audit::NewAuditEvent::new(
            AuditAction::AgentCreate,
            TargetKind::Agent,
            None,
        ))
        .await?;
    }
    // And a long audit chain to list from.
    for _ in 0..n {
        store
            .begin_audited()
            .await?
            .commit(toolbelt_model::audit::NewAuditEvent::new(
                AuditAction::ToolCall,
                TargetKind::Tool,
                None,
            ))
            .await?;
    }
    store.close().await;
    Ok(())
}
