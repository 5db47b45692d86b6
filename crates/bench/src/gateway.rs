//! The gateway: `tools/call` through client → gateway → DTMA → fixture against the same
//! client → fixture directly (and → DTMA bridge → fixture, to split the two hops), in
//! interleaved batches at concurrency 1 and 32, with CPU per call of the gateway and the
//! DTMA; then, in [`crate::gateway_scale`], 50 servers × 20 tools: discovery, cached
//! `tools/list`, and memory with 100 agent sessions.
//!
//! The gateway (`toolbelt serve`) and the DTMA (`toolbelt dtma`, process runtime) run as
//! separate processes so their CPU and memory are told apart.

use crate::rpc::{self, Rpc};
use crate::stats::{cpu_time, fmt, summarize};
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use toolbelt_e2e::{DtmaProc, Server};
use toolbelt_testkit::fixture::static_fixture_bin;
use toolbelt_testkit::proc::{free_port, toolbelt_bin};

pub const ADMIN: &str = "tbu_bench-admin-token-00000000";

/// The control plane's REST API, as the admin.
pub struct Api {
    pub url: String,
    http: reqwest::Client,
}

impl Api {
    pub async fn call(&self, method: &str, path: &str, body: Value) -> Result<Value> {
        let mut req = self
            .http
            .request(method.parse()?, format!("{}{path}", self.url))
            .bearer_auth(ADMIN);
        if !body.is_null() {
            req = req.json(&body);
        }
        let r = req.send().await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{method} {path}: {status} {v}");
        Ok(v)
    }

    /// A shared toolbox and its DTMA process (process runtime); the toolbox id.
    pub async fn toolbox(&self, name: &str, dir: &Path) -> Result<(String, DtmaProc)> {
        let t = self
            .call(
                "POST",
                "/api/v1/toolboxes",
                json!({ "name": name, "shared": true }),
            )
            .await?;
        let path = format!("/api/v1/toolboxes/{name}/join-token");
        let j = self.call("POST", &path, json!({})).await?;
        let env = [("TOOLBELT_LOG", "info")];
        let d = DtmaProc::start(
            &self.url,
            j["token"].as_str(),
            &dir.join(name),
            "process",
            &env,
        )
        .await;
        Ok((t["id"].as_str().context("toolbox id")?.to_string(), d))
    }

    /// A new agent of the admin's; its token.
    pub async fn agent(&self, name: &str) -> Result<String> {
        let a = self
            .call("POST", "/api/v1/agents", json!({ "name": name }))
            .await?;
        Ok(a["token"]["token"]
            .as_str()
            .context("agent token")?
            .to_string())
    }

    /// Waits until `n` servers on `toolbox` report `running`.
    pub async fn wait_running(&self, toolbox: &str, n: usize, limit: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let page = self
                .call(
                    "GET",
                    &format!("/api/v1/servers?toolbox={toolbox}&limit=200"),
                    Value::Null,
                )
                .await?;
            let items = page["items"].as_array().context("a page of servers")?;
            if items.iter().filter(|s| s["status"] == "running").count() >= n {
                return Ok(());
            }
            anyhow::ensure!(
                start.elapsed() < limit,
                "{toolbox}: {n} servers not running in {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `toolbelt serve` on a given port (a restart must keep it: the DTMAs know the URL).
pub fn serve_at(data: &Path, port: u16) -> Result<Server> {
    std::fs::create_dir_all(data)?;
    let log = data.with_extension("log");
    let out = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&log)?;
    let child = Command::new(toolbelt_bin())
        .args(["serve", "--data-dir"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env_remove("TOOLBELT_DATABASE_URL")
        .env("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN)
        .env("TOOLBELT_HEARTBEAT_MS", "1000")
        .env("TOOLBELT_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()?;
    Ok(Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        data_dir: data.to_path_buf(),
        log,
    })
}

/// Polls `/readyz` every 5 ms (finer than the harness's 50 ms, for timing restarts).
pub async fn ready(url: &str, limit: Duration) -> Result<()> {
    let (http, start) = (reqwest::Client::new(), Instant::now());
    loop {
        if let Ok(r) = http.get(format!("{url}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(start.elapsed() < limit, "{url} not ready within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One way to the fixture's `echo`, with its sessions (one per concurrent client) and
/// what its batches added up to.
struct Route {
    label: &'static str,
    /// The `tools/call` params: `echo` upstream, `fx__echo` at the gateway.
    args: Arc<Value>,
    clients: Vec<Arc<Rpc>>,
    lat: Vec<Duration>,
    wall: Duration,
    /// CPU of the gateway and of the DTMA process during this route's batches.
    cpu: [Duration; 2],
}

impl Route {
    async fn open(label: &'static str, tool: &str, url: &str, token: &str) -> Result<Route> {
        let http = rpc::http();
        let mut clients = Vec::with_capacity(WIDE);
        for _ in 0..WIDE {
            clients.push(Arc::new(Rpc::connect(&http, url, token).await?));
        }
        let args = Arc::new(json!({ "name": tool, "arguments": { "text": "benchmark" } }));
        Ok(Route {
            label,
            args,
            clients,
            lat: vec![],
            wall: Duration::ZERO,
            cpu: [Duration::ZERO; 2],
        })
    }

    fn reset(&mut self) {
        (self.lat, self.wall, self.cpu) = (vec![], Duration::ZERO, [Duration::ZERO; 2]);
    }

    /// `per` calls on each of `c` sessions at once, each session in its own task.
    async fn batch(&mut self, c: usize, per: usize, pids: [u32; 2], keep: bool) -> Result<()> {
        let cpu0 = pids.map(cpu_time);
        let t = Instant::now();
        let tasks: Vec<_> = self.clients[..c]
            .iter()
            .map(|rpc| {
                let (rpc, args) = (rpc.clone(), self.args.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(per);
                    for _ in 0..per {
                        let t = Instant::now();
                        rpc.call_tool(&args).await?;
                        lat.push(t.elapsed());
                    }
                    Ok::<_, anyhow::Error>(lat)
                })
            })
            .collect();
        let mut lat = Vec::with_capacity(c * per);
        for t in tasks {
            lat.extend(t.await??);
        }
        if keep {
            self.wall += t.elapsed();
            self.lat.extend(lat);
            for (i, p) in pids.into_iter().enumerate() {
                self.cpu[i] += cpu_time(p).saturating_sub(cpu0[i]);
            }
        }
        Ok(())
    }
}

/// Sessions per route: the c=32 runs use all of them, the c=1 runs the first.
const WIDE: usize = 32;

pub async fn run(calls: usize, lists: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let gw = serve_at(&dir.path().join("cp"), port)?;
    ready(&gw.url, Duration::from_secs(30)).await?;
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let api = Api {
        url: gw.url.clone(),
        http,
    };
    let fx = static_fixture_bin().display().to_string();
    for (slug, command) in [
        ("fx", vec![fx.clone()]),
        ("fx20", vec![fx, "--tools".into(), "20".into()]),
    ] {
        let source = json!({ "type": "package", "manager": "binary", "package": "fixture-mcp", "command": command });
        let entry = json!({ "slug": slug, "source": source, "transport": "stdio" });
        api.call("POST", "/api/v1/catalog", entry).await?;
    }
    let (tbx, dtma) = api.toolbox("calls", dir.path()).await?;
    let server = json!({ "name": "fx", "catalog": "fx", "toolbox": "calls" });
    api.call("POST", "/api/v1/servers", server).await?;
    let token = api.agent("caller").await?;
    let grant = json!({ "agent": "caller", "server": "fx", "toolbox": "calls" });
    api.call("POST", "/api/v1/grants", grant).await?;
    api.wait_running("calls", 1, Duration::from_secs(60))
        .await?;

    // The baseline: the same fixture binary over its own Streamable HTTP, same client.
    let fport = free_port();
    let _direct = tokio::process::Command::new(static_fixture_bin())
        .args(["--http", &format!("127.0.0.1:{fport}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let direct_url = format!("http://127.0.0.1:{fport}/mcp");
    let start = Instant::now();
    while Rpc::connect(&rpc::http(), &direct_url, "-").await.is_err() {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(10),
            "the fixture never served HTTP"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let signed = gw.control_key().sign(&tbx, now.as_secs() as i64, 3600);
    let pids = [gw.child.id(), dtma.child.id()];
    print_config(pids);

    // On a failure, the gateway's log says why (it lives in a temporary dir).
    let table = async {
        let mut routes = [
            Route::open("direct: client → fixture (HTTP)", "echo", &direct_url, "-").await?,
            Route::open(
                "DTMA bridge: client → DTMA → fixture (stdio)",
                "echo",
                &format!("http://{}/mcp/fx", dtma.addr),
                &signed,
            )
            .await?,
            Route::open(
                "gateway: client → gateway → DTMA → fixture (stdio)",
                "fx__echo",
                &format!("{}/mcp", gw.url),
                &token,
            )
            .await?,
        ];
        println!(
            "| `tools/call echo`, interleaved batches | concurrency | calls/s | p50 | p99 | n |\n|---|---|---|---|---|---|"
        );
        let mut added = Vec::new();
        for (c, per, total) in [(1, 250, calls), (WIDE, 40, calls * 4)] {
            for r in &mut routes {
                r.reset();
                r.batch(c, per, pids, false).await?; // warm-up: pools, caches, page faults
            }
            // Batches alternate, and the order rotates, so noise lands on every route alike.
            for round in 0..(total / (c * per)).max(1) {
                for i in 0..routes.len() {
                    routes[(round + i) % routes.len()]
                        .batch(c, per, pids, true)
                        .await?;
                }
            }
            let mut s = Vec::new();
            for r in &routes {
                let sum = summarize(r.lat.clone());
                let rate = sum.n as f64 / r.wall.as_secs_f64();
                println!(
                    "| {} | {c} | {rate:.0} | {} | {} | {} |",
                    r.label,
                    fmt(sum.p50),
                    fmt(sum.p99),
                    sum.n
                );
                s.push((
                    sum,
                    rate,
                    r.cpu.map(|t| t.as_secs_f64() * 1e6 / r.lat.len() as f64),
                ));
            }
            added.push((c, s));
        }
        println!(
            "\n| concurrency | added p50 (gateway − direct) | added p99 | gateway hop alone, p50 (gateway − bridge) | throughput gateway ÷ direct | gateway process CPU per call | DTMA process CPU per call (gateway route) | DTMA CPU per call (bridge route) |\n|---|---|---|---|---|---|---|---|"
        );
        for (c, s) in &added {
            let (d, b, g) = (&s[0], &s[1], &s[2]);
            println!(
                "| {c} | {} | {} | {} | {:.0} % | {:.0} µs | {:.0} µs | {:.0} µs |",
                diff(g.0.p50, d.0.p50),
                diff(g.0.p99, d.0.p99),
                diff(g.0.p50, b.0.p50),
                g.1 / d.1 * 100.0,
                g.2[0],
                g.2[1],
                b.2[1]
            );
        }
        println!(
            "\n(CPU: utime+stime from /proc/PID/stat over that route's batches ÷ its calls, 10 ms ticks; every route's figures include the client's own HTTP request and response)\n"
        );
        drop(routes);
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if let Err(e) = table {
        let log = std::fs::read_to_string(&gw.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        eprintln!(
            "gateway log, last lines:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
        return Err(e);
    }
    let result = crate::gateway_scale::run(gw, &api, dir.path(), port, lists).await;
    drop(dtma);
    result
}

/// `a − b`, signed.
fn diff(a: Duration, b: Duration) -> String {
    if a >= b {
        fmt(a - b)
    } else {
        format!("−{}", fmt(b - a))
    }
}

fn print_config(pids: [u32; 2]) {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "## gateway (build: {profile}; toolbelt binary {})\n",
        toolbelt_bin().display()
    );
    println!(
        "- transports: agent → gateway Streamable HTTP (`/mcp`); gateway → DTMA Streamable HTTP (`/mcp/{{server}}`, one pooled upstream session per server); DTMA → server stdio (process runtime: the fixture is a child process of the DTMA)"
    );
    println!(
        "- protocol era: legacy sessions, {} (`initialize` + `Mcp-Session-Id`), on every hop",
        rpc::PROTOCOL
    );
    println!(
        "- audit: one event per call, committed before the result returns; group commit (one writer, up to 256 events per transaction)"
    );
    println!(
        "- database: SQLite, the default (WAL, synchronous=NORMAL: a committed event survives a process crash; `--fsync` syncs every commit for power loss)"
    );
    println!(
        "- replies: the gateway and the DTMA answer `application/json`; the fixture's own HTTP (the direct route) answers a one-event SSE stream (rmcp legacy sessions)"
    );
    println!(
        "- processes: gateway = `toolbelt serve` (pid {}; control plane + gateway, so its CPU includes heartbeats and the registry's 1 s refresh), DTMA = `toolbelt dtma --runtime process` (pid {}): separate processes, separate CPU figures; fixture-mcp static release build",
        pids[0], pids[1]
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "- machine: {} cores, shared by client, gateway, DTMA and fixture; load average before the run: {}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}
