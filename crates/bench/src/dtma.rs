//! The DTMA: deploy time (API call → the server answers MCP) for the FROM-scratch fixture
//! image, 20 concurrent deploys, the bridge's added latency against calling the same
//! server directly over stdio, and the DTMA's idle memory and CPU with 20 servers.

use crate::stats::{cpu_time, fmt, rss_mib, summarize};
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use toolbelt_e2e::mcp::Mcp;
use toolbelt_e2e::{DtmaProc, Server, docker_cleanup};
use toolbelt_testkit::fixture::{fixture_image, static_fixture_bin};

const ADMIN: &str = "tbu_bench-admin-token-00000000";

struct Plane {
    server: Server,
    http: reqwest::Client,
}

impl Plane {
    async fn call(&self, method: &str, path: &str, body: Value) -> Result<Value> {
        let r = self
            .http
            .request(method.parse()?, format!("{}{path}", self.server.url))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{method} {path}: {status} {v}");
        Ok(v)
    }

    async fn toolbox(
        &self,
        name: &str,
        runtime: &str,
        dir: &std::path::Path,
    ) -> Result<(String, DtmaProc)> {
        let t = self
            .call(
                "POST",
                "/api/v1/toolboxes",
                json!({ "name": name, "shared": true }),
            )
            .await?;
        let j = self
            .call(
                "POST",
                &format!("/api/v1/toolboxes/{name}/join-token"),
                json!({}),
            )
            .await?;
        let d = DtmaProc::start(
            &self.server.url,
            j["token"].as_str(),
            &dir.join(name),
            runtime,
            &[("TOOLBELT_LOG", "warn")],
        )
        .await;
        Ok((t["id"].as_str().context("id")?.to_string(), d))
    }
}

/// Polls `initialize` until the server answers it.
async fn answers(url: &str, token: &str, limit: Duration) -> Result<()> {
    let start = Instant::now();
    let body = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "bench", "version": "1" } } }).to_string();
    let m = Mcp::new(url, token);
    loop {
        let (status, _, text) = m.post_raw(body.clone(), "application/json").await;
        if status == 200 && text.contains("\"result\"") {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < limit,
            "{url} did not answer within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The same fixture binary spoken to directly over its stdio: the baseline.
struct Direct {
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    _child: tokio::process::Child,
    next: i64,
}

impl Direct {
    async fn start() -> Result<Direct> {
        let mut child = tokio::process::Command::new(static_fixture_bin())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().context("stdin")?;
        let lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let mut d = Direct {
            stdin,
            lines,
            _child: child,
            next: 1,
        };
        d.call("initialize", json!({ "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "bench", "version": "1" } })).await?;
        d.stdin
            .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
            .await?;
        Ok(d)
    }

    async fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        self.next += 1;
        let id = self.next;
        let mut line =
            json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await?;
        loop {
            let l = self
                .lines
                .next_line()
                .await?
                .context("the fixture exited")?;
            let v: Value = serde_json::from_str(&l)?;
            if v["id"] == id {
                return Ok(v);
            }
        }
    }
}

pub async fn run(calls: usize) -> Result<()> {
    println!(
        "## DTMA (build: release; Docker runtime for the scratch fixture image, Process runtime for the stdio baseline)\n"
    );
    let image = fixture_image().await;
    let dir = tempfile::tempdir()?;
    let server = Server::serve(
        &dir.path().join("cp"),
        &[
            ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN),
            ("TOOLBELT_HEARTBEAT_MS", "1000"),
            ("TOOLBELT_LOG", "warn"),
        ],
    )
    .await;
    let p = Plane {
        server,
        http: toolbelt_net::http::builder().tcp_nodelay(true).build()?,
    };
    let key = p.server.control_key();
    let (tbx, dock) = p.toolbox("dock", "docker", dir.path()).await?;
    let (ptbx, procs) = p.toolbox("procs", "process", dir.path()).await?;
    let sign = |t: &str| key.sign(t, chrono_now(), 3600);
    p.call("POST", "/api/v1/catalog", json!({ "slug": "fx-img", "source": { "type": "image", "image": image }, "transport": "stdio" })).await?;
    p.call("POST", "/api/v1/catalog", json!({ "slug": "fx-proc", "source": { "type": "package", "manager": "binary", "package": "fixture-mcp",
        "command": [static_fixture_bin().display().to_string()] }, "transport": "stdio" })).await?;

    // Deploy latency, one at a time.
    let mut deploys = Vec::new();
    for i in 0..10 {
        let t = Instant::now();
        p.call(
            "POST",
            "/api/v1/servers",
            json!({ "name": format!("d{i}"), "catalog": "fx-img", "toolbox": "dock" }),
        )
        .await?;
        answers(
            &format!("http://{}/mcp/d{i}", dock.addr),
            &sign(&tbx),
            Duration::from_secs(60),
        )
        .await?;
        deploys.push(t.elapsed());
        p.call(
            "DELETE",
            &format!("/api/v1/servers/d{i}?toolbox=dock"),
            json!(null),
        )
        .await?;
    }
    let d = summarize(deploys);
    println!("| measure | p50 | p99 | n |\n|---|---|---|---|");
    println!(
        "| deploy: API call → container answers `initialize` (scratch fixture image) | {} | {} | {} |",
        fmt(d.p50),
        fmt(d.p99),
        d.n
    );

    // Twenty at once.
    let t = Instant::now();
    futures::future::try_join_all((0..20).map(|i| {
        p.call(
            "POST",
            "/api/v1/servers",
            json!({ "name": format!("c{i}"), "catalog": "fx-img", "toolbox": "dock" }),
        )
    }))
    .await?;
    let each = futures::future::try_join_all((0..20).map(|i| {
        let (addr, tok) = (dock.addr.clone(), sign(&tbx));
        async move {
            answers(
                &format!("http://{addr}/mcp/c{i}"),
                &tok,
                Duration::from_secs(120),
            )
            .await?;
            Ok::<_, anyhow::Error>(t.elapsed())
        }
    }))
    .await?;
    let all = t.elapsed();
    let c = summarize(each);
    println!(
        "| 20 concurrent deploys on one toolbox: each answering | {} | {} | {} |",
        fmt(c.p50),
        fmt(c.p99),
        c.n
    );
    println!(
        "| 20 concurrent deploys: all answering | {} | | 1 |",
        fmt(all)
    );

    // The DTMA at rest with 20 servers.
    let pid = dock.child.id();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (cpu0, t0) = (cpu_time(pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let cpu = (cpu_time(pid) - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64() * 100.0;
    println!(
        "\nDTMA with 20 servers, idle for 10 s (heartbeat every 1 s, reconcile every 1 s, health pings every 10 s): RSS {:.1} MiB, CPU {cpu:.2} % of one core\n",
        rss_mib(pid)
    );

    // Bridge overhead: the same echo, directly over stdio and through the DTMA.
    p.call(
        "POST",
        "/api/v1/servers",
        json!({ "name": "p0", "catalog": "fx-proc", "toolbox": "procs" }),
    )
    .await?;
    answers(
        &format!("http://{}/mcp/p0", procs.addr),
        &sign(&ptbx),
        Duration::from_secs(60),
    )
    .await?;
    let mut direct = Direct::start().await?;
    let mut bridged_proc = Mcp::new(&format!("http://{}/mcp/p0", procs.addr), &sign(&ptbx));
    bridged_proc.initialize().await;
    let mut bridged_dock = Mcp::new(&format!("http://{}/mcp/c0", dock.addr), &sign(&tbx));
    bridged_dock.initialize().await;
    let args = json!({ "name": "echo", "arguments": { "text": "benchmark" } });
    for _ in 0..200 {
        direct.call("tools/call", args.clone()).await?;
        bridged_proc.request("tools/call", args.clone()).await;
        bridged_dock.request("tools/call", args.clone()).await;
    }
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..calls {
        let t = Instant::now();
        direct.call("tools/call", args.clone()).await?;
        a.push(t.elapsed());
        let t = Instant::now();
        bridged_proc.request("tools/call", args.clone()).await;
        b.push(t.elapsed());
        let t = Instant::now();
        bridged_dock.request("tools/call", args.clone()).await;
        c.push(t.elapsed());
    }
    let (a, b, c) = (summarize(a), summarize(b), summarize(c));
    println!(
        "| `tools/call echo`, concurrency 1, interleaved | p50 | p99 | added p50 over direct | n |\n|---|---|---|---|---|"
    );
    println!(
        "| direct: the fixture's stdio, no HTTP | {} | {} | | {} |",
        fmt(a.p50),
        fmt(a.p99),
        a.n
    );
    println!(
        "| through the DTMA bridge (HTTP → process stdio) | {} | {} | {} | {} |",
        fmt(b.p50),
        fmt(b.p99),
        fmt(b.p50.saturating_sub(a.p50)),
        b.n
    );
    println!(
        "| through the DTMA bridge (HTTP → docker attach) | {} | {} | {} | {} |",
        fmt(c.p50),
        fmt(c.p99),
        fmt(c.p50.saturating_sub(a.p50)),
        c.n
    );
    println!(
        "\n(the bridged path includes the client's own HTTP request/response; the direct one has none)"
    );
    drop((dock, procs));
    docker_cleanup(&tbx);
    p.server.stop();
    Ok(())
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
