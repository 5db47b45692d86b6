//! The gateway, side by side: an `echo` tool called directly on an rmcp upstream
//! (the fixture over Streamable HTTP, legacy sessions, JSON replies) and through
//! Toolbelt — a remote server (gateway only), a stdio server through the DTMA, an HTTP
//! server through the DTMA (Docker) — plus the remote route on gateways with `--fsync`
//! and on PostgreSQL, and any other MCP gateway put in the same run against the same
//! upstream (`PEER_GATEWAY_URL`, `PEER_TOOL`, `PEER_TOKEN`). Interleaved repetitions at
//! c=1 and c=32; then, in [`crate::gateway_scale`], 50 servers × 20 tools.
//!
//! Gateways (`toolbelt serve`) and DTMAs (`toolbelt dtma`) are separate processes, so
//! their CPU and memory are told apart.

use crate::api::Api;
use crate::loadgen::{Route, interleave};
use crate::procs::{self, Launch, Proc};
use crate::rpc;
use crate::stats::{fmt, rss_mib};
use anyhow::{Context, Result};
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use toolbelt_testkit::fixture::{fixture_image, static_fixture_bin};
use toolbelt_testkit::proc::free_port;

/// Sessions per route: the c=32 runs use all of them, the c=1 runs the first.
const WIDE: usize = 32;

/// One gateway process and its API.
pub struct Gateway {
    pub proc: Proc,
    pub api: Api,
    pub port: u16,
}

pub async fn gateway(data: &Path, how: &Launch, limit: Duration) -> Result<Gateway> {
    let port = free_port();
    let proc = procs::serve(data, port, how)?;
    let http = procs::client_for(how)?;
    procs::healthy_with(&http, &format!("{}/readyz", proc.url), limit).await?;
    let api = Api::with_client(&proc.url, http);
    Ok(Gateway { proc, api, port })
}

/// A gateway's agent, granted the remote server `rfx` (the upstream at `up`).
async fn remote_world(gw: &Gateway, up: &str) -> Result<String> {
    gw.api.remote("far", "rfx", up).await?;
    let token = gw.api.agent("caller").await?;
    gw.api.grant_server("caller", "rfx", "far").await?;
    gw.api
        .wait_running("far", 1, Duration::from_secs(30))
        .await?;
    Ok(token)
}

/// A fresh database on the PostgreSQL server of `TOOLBELT_TEST_POSTGRES_URL`.
async fn postgres_db() -> Result<Option<String>> {
    use sqlx::Connection;
    let Ok(admin) = std::env::var("TOOLBELT_TEST_POSTGRES_URL") else {
        return Ok(None);
    };
    let name = format!("tbbench_{}", std::process::id());
    let mut c = sqlx::PgConnection::connect(&admin).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&mut c)
    .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await?;
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    Ok(Some(format!("{base}/{name}")))
}

fn docker_answers() -> bool {
    std::process::Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub async fn run(calls: usize, lists: usize, quick: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let up_port = match std::env::var("BENCH_UPSTREAM_PORT") {
        Ok(p) => p.parse().context("BENCH_UPSTREAM_PORT")?,
        Err(_) => free_port(),
    };
    let upstream = procs::upstream(up_port, dir.path()).await?;
    let up_url = format!("{}/mcp", upstream.url);
    let limit = Duration::from_secs(30);

    // The default gateway: SQLite (WAL, group commit), a remote server, a stdio server
    // through a process-runtime DTMA, an HTTP server through a Docker DTMA.
    let gw = gateway(&dir.path().join("cp"), &Launch::default(), limit).await?;
    let fx = static_fixture_bin().display().to_string();
    for (slug, command) in [
        ("fx", vec![fx.clone()]),
        ("fx20", vec![fx, "--tools".into(), "20".into()]),
    ] {
        let source = json!({ "type": "package", "manager": "binary", "package": "fixture-mcp", "command": command });
        let entry = json!({ "slug": slug, "source": source, "transport": "stdio" });
        gw.api.call("POST", "/api/v1/catalog", entry).await?;
    }
    let token = remote_world(&gw, &up_url).await?;
    let (_, stdio_dtma) = gw
        .api
        .toolbox("calls", dir.path(), "process", &Launch::default())
        .await?;
    gw.api.server("fx", "fx", "calls").await?;
    gw.api.grant_server("caller", "fx", "calls").await?;
    // The same stdio route through a DTMA serving TLS, its key pinned at join.
    let ca = toolbelt_e2e::tls::TestCa::new("bench DTMA");
    let (cert, key, ca_file) = (
        ca.cert.display().to_string(),
        ca.key.display().to_string(),
        ca.ca.display().to_string(),
    );
    let sealed = Launch::default()
        .env("TOOLBELT_TLS_CERT", &cert)
        .env("TOOLBELT_TLS_KEY", &key)
        .env("TOOLBELT_CA_FILE", &ca_file);
    let tls_dtma = if quick {
        None
    } else {
        let (_, d) = gw
            .api
            .toolbox("sealed", dir.path(), "process", &sealed)
            .await?;
        gw.api.server("sfx", "fx", "sealed").await?;
        gw.api.grant_server("caller", "sfx", "sealed").await?;
        Some(d)
    };
    let docker = if !quick && docker_answers() {
        let image = fixture_image().await;
        let entry = json!({ "slug": "hfx", "source": { "type": "image", "image": image,
            "args": ["--http", "0.0.0.0:8080", "--json"] }, "transport": "streamable_http", "port": 8080 });
        gw.api.call("POST", "/api/v1/catalog", entry).await?;
        let (_, d) = gw
            .api
            .toolbox("boxed", dir.path(), "docker", &Launch::default())
            .await?;
        gw.api.server("hfx", "hfx", "boxed").await?;
        gw.api.grant_server("caller", "hfx", "boxed").await?;
        Some(d)
    } else {
        None
    };
    gw.api
        .wait_running("calls", 1, Duration::from_secs(60))
        .await?;
    if tls_dtma.is_some() {
        gw.api
            .wait_running("sealed", 1, Duration::from_secs(60))
            .await?;
    }
    if docker.is_some() {
        gw.api
            .wait_running("boxed", 1, Duration::from_secs(120))
            .await?;
    }

    // The same remote route with traces exported (OTLP/HTTP to a local sink): what
    // tracing costs a call.
    let (sink_url, sink) = crate::otlp_sink::start().await?;
    let traced = gateway(
        &dir.path().join("traced"),
        &Launch::default().env("TOOLBELT_OTLP_ENDPOINT", &sink_url),
        limit,
    )
    .await?;
    let traced_token = remote_world(&traced, &up_url).await?;
    // The same remote route with every audit batch under the chain lock (BEGIN, read the
    // head, insert, COMMIT): what the linked one-INSERT batch buys.
    let locked = gateway(
        &dir.path().join("locked"),
        &Launch::default().env("TOOLBELT_GATEWAY_AUDIT", "locked"),
        limit,
    )
    .await?;
    let locked_token = remote_world(&locked, &up_url).await?;
    // The same remote route on a gateway that fsyncs every commit, and on PostgreSQL.
    let fsync = if quick {
        None
    } else {
        let g = gateway(
            &dir.path().join("fsync"),
            &Launch::default().arg("--fsync"),
            limit,
        )
        .await?;
        let t = remote_world(&g, &up_url).await?;
        Some((g, t))
    };
    // The same remote route on a gateway serving HTTPS (the bench DTMA's test CA): what
    // inbound TLS adds to a call once the connection is open.
    let https = if quick {
        None
    } else {
        let g = gateway(&dir.path().join("https"), &sealed, limit).await?;
        let t = remote_world(&g, &up_url).await?;
        Some((g, t))
    };
    let pg = match postgres_db().await? {
        Some(url) if !quick => {
            let how = Launch::default().env("TOOLBELT_DATABASE_URL", &url);
            let g = gateway(&dir.path().join("pg"), &how, limit).await?;
            let t = remote_world(&g, &up_url).await?;
            Some((g, t))
        }
        _ => None,
    };
    print_config(&gw, &stdio_dtma, pg.is_some(), docker.is_some(), &up_url);

    let result = async {
        let mcp = format!("{}/mcp", gw.proc.url);
        let g = gw.proc.pid();
        let mut routes = vec![
            Route::open("direct: loadgen → upstream", "echo", &up_url, "-", vec![], WIDE).await?,
            Route::open("Toolbelt remote: → gateway → upstream", "rfx__echo", &mcp, &token, vec![g], WIDE).await?,
            Route::open("Toolbelt DTMA stdio: → gateway → DTMA → fixture (stdio)", "fx__echo", &mcp, &token, vec![g, stdio_dtma.pid()], WIDE).await?,
        ];
        if let Some(d) = &tls_dtma {
            routes.push(Route::open("Toolbelt DTMA stdio over TLS (pinned key): → gateway → DTMA → fixture", "sfx__echo", &mcp, &token, vec![g, d.pid()], WIDE).await?);
        }
        if let Some(d) = &docker {
            routes.push(Route::open("Toolbelt DTMA HTTP: → gateway → DTMA → fixture container (HTTP)", "hfx__echo", &mcp, &token, vec![g, d.pid()], WIDE).await?);
        }
        let locked_mcp = format!("{}/mcp", locked.proc.url);
        routes.push(Route::open("Toolbelt remote, audit batches under the chain lock", "rfx__echo", &locked_mcp, &locked_token, vec![locked.proc.pid()], WIDE).await?);
        let traced_mcp = format!("{}/mcp", traced.proc.url);
        routes.push(Route::open("Toolbelt remote, OTLP traces on (local sink)", "rfx__echo", &traced_mcp, &traced_token, vec![traced.proc.pid()], WIDE).await?);
        if let Some((h, t)) = &https {
            let tls_mcp = format!("{}/mcp", h.proc.url);
            let trusting = || rpc::https(ca.ca.as_path()).expect("the test CA loads");
            routes.push(Route::open_via(trusting, "Toolbelt remote over HTTPS: → gateway (TLS) → upstream", "rfx__echo", &tls_mcp, t, vec![h.proc.pid()], WIDE).await?);
        }
        if let Some((f, t)) = &fsync {
            let fs_mcp = format!("{}/mcp", f.proc.url);
            routes.push(Route::open("Toolbelt remote, `--fsync`", "rfx__echo", &fs_mcp, t, vec![f.proc.pid()], WIDE).await?);
        }
        if let Some((p, t)) = &pg {
            let pg_mcp = format!("{}/mcp", p.proc.url);
            routes.push(Route::open("Toolbelt remote, PostgreSQL", "rfx__echo", &pg_mcp, t, vec![p.proc.pid()], WIDE).await?);
        }
        if let Ok(peer) = std::env::var("PEER_GATEWAY_URL") {
            let tool = std::env::var("PEER_TOOL").unwrap_or_else(|_| "echo".into());
            let tok = std::env::var("PEER_TOKEN").unwrap_or_else(|_| "-".into());
            let pids = std::env::var("PEER_PID").ok().and_then(|p| p.parse().ok()).into_iter().collect();
            routes.push(Route::open(format!("peer gateway {peer} ({tool})"), &tool, &peer, &tok, pids, WIDE).await?);
        }
        println!("| route | c | calls/s | share of direct | p50 | added p50 | p99 | added p99 | CPU per call (gateway + DTMA) | context switches per call | n |\n|---|---|---|---|---|---|---|---|---|---|---|");
        let mut tls_added = vec![];
        for (c, per, total) in [(1, 250, calls), (WIDE, 40, calls * 4)] {
            interleave(&mut routes, c, per, total / (c * per)).await?;
            let base = routes[0].result();
            let find = |prefix: &str| routes.iter().find(|r| r.label.starts_with(prefix)).map(|r| r.result());
            for (what, plain, sealed) in [("inbound (client → gateway)", "Toolbelt remote:", "Toolbelt remote over HTTPS"), ("DTMA channel (gateway → DTMA)", "Toolbelt DTMA stdio:", "Toolbelt DTMA stdio over TLS")] {
                if let (Some(a), Some(b)) = (find(plain), find(sealed)) {
                    tls_added.push(format!("- TLS on the {what}, c={c}: {} p50", diff(b.lat.p50, a.lat.p50)));
                }
            }
            if let (Some(a), Some(b)) = (find("Toolbelt remote:"), find("Toolbelt remote, audit batches under")) {
                tls_added.push(format!(
                    "- audit batches under the chain lock instead of one linked INSERT (remote route), c={c}: {} p50, {:+.0} µs CPU and {:+.1} context switches per call",
                    diff(b.lat.p50, a.lat.p50),
                    b.cpu_us - a.cpu_us,
                    b.switches - a.switches
                ));
            }
            if let (Some(a), Some(b)) = (find("Toolbelt remote:"), find("Toolbelt remote, OTLP")) {
                tls_added.push(format!(
                    "- OTLP traces on (remote route), c={c}: {} p50, {:+.0} µs CPU per call",
                    diff(b.lat.p50, a.lat.p50),
                    b.cpu_us - a.cpu_us
                ));
            }
            for r in &routes {
                let m = r.result();
                let (cpu, sw) = if r.label.starts_with("direct") { ("–".to_string(), "–".to_string()) } else { (format!("{:.0} µs", m.cpu_us), format!("{:.1}", m.switches)) };
                println!(
                    "| {} | {c} | {:.0} | {:.2} | {} | {} | {} | {} | {cpu} | {sw} | {} |",
                    r.label, m.rate, m.rate / base.rate, fmt(m.lat.p50), diff(m.lat.p50, base.lat.p50),
                    fmt(m.lat.p99), diff(m.lat.p99, base.lat.p99), m.lat.n
                );
            }
        }
        println!(
            "\n(throughput: the median repetition; latency: percentiles over every call of every repetition; CPU: utime+stime from /proc/PID/stat of the gateway and DTMA processes over the route's repetitions ÷ its calls, 10 ms ticks; context switches: of every thread of those processes, /proc/PID/task/*/status, ÷ calls)\n"
        );
        let exports = sink.exports.load(std::sync::atomic::Ordering::Relaxed);
        let bytes = sink.bytes.load(std::sync::atomic::Ordering::Relaxed);
        tls_added.push(format!("- (the OTLP sink received {exports} exports, {bytes} bytes)"));
        println!("What TLS, tracing and the audit path add per call once connections are open (the row's p50 − its plain twin's):\n{}\n", tls_added.join("\n"));
        println!("| process | RSS after the calls |\n|---|---|");
        println!("| gateway (SQLite) | {:.1} MiB |", rss_mib(gw.proc.pid()));
        println!("| gateway (OTLP traces on) | {:.1} MiB |", rss_mib(traced.proc.pid()));
        if let Some((h, _)) = &https {
            println!("| gateway (HTTPS) | {:.1} MiB |", rss_mib(h.proc.pid()));
        }
        if let Some((f, _)) = &fsync {
            println!("| gateway (`--fsync`) | {:.1} MiB |", rss_mib(f.proc.pid()));
        }
        if let Some((p, _)) = &pg {
            println!("| gateway (PostgreSQL) | {:.1} MiB |", rss_mib(p.proc.pid()));
        }
        println!("| DTMA, process runtime, 1 server | {:.1} MiB |", rss_mib(stdio_dtma.pid()));
        if let Some(d) = &docker {
            println!("| DTMA, Docker runtime, 1 server | {:.1} MiB |", rss_mib(d.pid()));
        }
        println!();
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if let Err(e) = result {
        eprintln!("gateway log, last lines:\n{}", gw.proc.tail(40));
        return Err(e);
    }
    drop((fsync, https, pg, docker, upstream, tls_dtma, traced, locked));
    if quick {
        return Ok(());
    }
    let result = crate::gateway_scale::run(gw, dir.path(), lists).await;
    drop(stdio_dtma);
    result
}

/// `a − b`, signed.
pub fn diff(a: Duration, b: Duration) -> String {
    if a >= b {
        format!("+{}", fmt(a - b))
    } else {
        format!("−{}", fmt(b - a))
    }
}

fn print_config(gw: &Gateway, dtma: &Proc, pg: bool, docker: bool, up: &str) {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "## gateway (build: {profile}; toolbelt binary {})\n",
        toolbelt_testkit::proc::toolbelt_bin().display()
    );
    println!(
        "- upstream: fixture-mcp `--http --json` at {up}: rmcp, Streamable HTTP, legacy sessions ({}), one-message replies as JSON",
        rpc::PROTOCOL
    );
    println!(
        "- loadgen: one keep-alive connection and one MCP session per concurrent client (reqwest, TCP_NODELAY)"
    );
    println!(
        "- gateway = `toolbelt serve` (pid {}; control plane + gateway: its CPU includes heartbeats and the registry's 1 s refresh); DTMA = `toolbelt dtma` (pid {})",
        gw.proc.pid(),
        dtma.pid()
    );
    println!(
        "- audit: one event per call, durable before the reply, group commit; SQLite WAL synchronous=NORMAL (survives a process crash; `--fsync` row: synchronous=FULL, survives power loss)"
    );
    println!(
        "- PostgreSQL row: {}",
        if pg {
            "the server of TOOLBELT_TEST_POSTGRES_URL (scripts/postgres.sh's throwaway cluster runs with fsync=off)"
        } else {
            "skipped (TOOLBELT_TEST_POSTGRES_URL unset)"
        }
    );
    println!(
        "- DTMA HTTP row: {}",
        if docker {
            "the same fixture binary in a FROM-scratch container, reached over the toolbox's bridge network"
        } else {
            "skipped (no Docker engine)"
        }
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "- machine: {} cores shared by loadgen, gateways, DTMAs and upstreams; load average before the run: {}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}
