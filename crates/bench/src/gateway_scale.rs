//! The gateway at scale: 50 servers × 20 tools (fixture `--tools 20`) on their own
//! toolbox and DTMA; cold discovery after deploying them and after a gateway restart,
//! `tools/list` of the 1000 tools from the cache, and the gateway's memory once 100
//! agents (each granted the toolbox) have a session open and have listed.

use crate::gateway::Gateway;
use crate::procs::{self, Launch, healthy};
use crate::rpc::{self, Rpc};
use crate::stats::{fmt, rss_mib, summarize};
use anyhow::Result;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

const SERVERS: usize = 50;
const TOOLS: usize = SERVERS * 20;
const AGENTS: usize = 100;

/// Lists until `n` tools show; polled every 5 ms.
async fn wait_listed(agent: &Rpc, n: usize, limit: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let (seen, _) = agent.list_tools().await?;
        if seen >= n {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < limit,
            "{seen} of {n} tools listed after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn run(gw: Gateway, dir: &Path, lists: usize) -> Result<()> {
    let Gateway {
        proc: gw,
        api,
        port,
    } = gw;
    let api = &api;
    let rss_calls = rss_mib(gw.pid());
    let (_, dtma) = api
        .toolbox("wide", dir, "process", &Launch::default())
        .await?;
    // Agents and grants first: their API calls are not part of anything timed.
    let mut tokens = Vec::with_capacity(AGENTS);
    for i in 0..AGENTS {
        let name = format!("wide-{i}");
        tokens.push(api.agent(&name).await?);
        let grant = json!({ "agent": name, "toolbox": "wide" });
        api.call("POST", "/api/v1/grants", grant).await?;
    }

    // Cold discovery after a deploy: the gateway hears of the servers through the
    // store (refreshed every second) and discovers them in parallel.
    let t = Instant::now();
    for i in 0..SERVERS {
        let s = json!({ "name": format!("s{i:02}"), "catalog": "fx20", "toolbox": "wide" });
        api.call("POST", "/api/v1/servers", s).await?;
    }
    api.wait_running("wide", SERVERS, Duration::from_secs(120))
        .await?;
    let running = t.elapsed();
    let http = rpc::http();
    let mcp = format!("{}/mcp", gw.url);
    let first = Rpc::connect(&http, &mcp, &tokens[0]).await?;
    wait_listed(&first, TOOLS, Duration::from_secs(60)).await?;
    let deployed = t.elapsed();
    drop(first);

    // Cold discovery after a restart: 50 servers already running, a gateway that knows
    // nothing of them yet.
    gw.stop();
    let t = Instant::now();
    let gw = procs::serve(&dir.join("cp"), port, &Launch::default())?;
    healthy(&format!("{}/readyz", gw.url), Duration::from_secs(30)).await?;
    let up = t.elapsed();
    let agent = Rpc::connect(&http, &mcp, &tokens[0]).await?;
    wait_listed(&agent, TOOLS, Duration::from_secs(60)).await?;
    let restarted = t.elapsed();

    // Cached listing: every page of it, one agent, one session.
    let mut pages = 0;
    for _ in 0..20 {
        pages = agent.list_tools().await?.1;
    }
    let mut lat = Vec::with_capacity(lists);
    for _ in 0..lists {
        let t = Instant::now();
        agent.list_tools().await?;
        lat.push(t.elapsed());
    }
    let cached = summarize(lat);
    // The client's own share: parsing one page of the reply into JSON values.
    let page = agent.raw("tools/list", &json!({})).await?;
    let t = Instant::now();
    for _ in 0..20 {
        serde_json::from_slice::<serde_json::Value>(&page)?;
    }
    let parse = t.elapsed() / 20;
    let rss_one = rss_mib(gw.pid());

    // 99 more agents, one session each; each first listing builds that agent's view.
    let mut sessions = vec![agent];
    let mut firsts = Vec::with_capacity(AGENTS);
    for token in &tokens[1..] {
        let s = Rpc::connect(&http, &mcp, token).await?;
        let t = Instant::now();
        let (n, _) = s.list_tools().await?;
        firsts.push(t.elapsed());
        anyhow::ensure!(n == TOOLS, "an agent listed {n} tools, not {TOOLS}");
        sessions.push(s);
    }
    let firsts = summarize(firsts);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_all, rss_dtma) = (rss_mib(gw.pid()), rss_mib(dtma.pid()));
    // To tell what a session costs from what an agent (its view) costs: 100 more
    // sessions of an agent whose view already exists.
    for _ in 0..AGENTS {
        let s = Rpc::connect(&http, &mcp, &tokens[0]).await?;
        s.list_tools().await?;
        sessions.push(s);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_more = rss_mib(gw.pid());

    println!(
        "| {SERVERS} servers × 20 tools, one toolbox, each agent granted it | value |\n|---|---|"
    );
    println!(
        "| deploy: {SERVERS} servers created → all reported `running` (heartbeat 1 s) | {} |",
        fmt(running)
    );
    println!(
        "| cold discovery after deploy: all `running` → an agent's `tools/list` shows all {TOOLS} (store refreshed every 1 s) | {} |",
        fmt(deployed - running)
    );
    println!(
        "| cold discovery after a gateway restart: ready → all {TOOLS} listed (servers already running) | {} |",
        fmt(restarted - up)
    );
    println!("| gateway restart: process start → ready | {} |", fmt(up));
    println!(
        "| `tools/list`, {TOOLS} tools cached, one session, every page ({pages} of ≤500): p50 / p99 (n = {}) | {} / {} |",
        cached.n,
        fmt(cached.p50),
        fmt(cached.p99)
    );
    println!(
        "| (a client's full JSON parse of one such page, {} KiB, for scale: the loadgen only counts the tools) | {} |",
        page.len() / 1024,
        fmt(parse)
    );
    println!(
        "| `tools/list`, an agent's first listing (its view built), {} agents: p50 / p99 | {} / {} |",
        firsts.n,
        fmt(firsts.p50),
        fmt(firsts.p99)
    );
    println!(
        "| gateway RSS after the call benchmark (1 server, before the restart) | {rss_calls:.1} MiB |"
    );
    println!(
        "| gateway RSS, restarted, {SERVERS} servers discovered, 1 agent session | {rss_one:.1} MiB |"
    );
    println!(
        "| gateway RSS, {SERVERS} servers, {AGENTS} agents with a session open and listed | {rss_all:.1} MiB |"
    );
    println!(
        "| gateway RSS, … plus {AGENTS} more sessions of one of those agents (each listed once) | {rss_more:.1} MiB |"
    );
    println!(
        "| DTMA RSS with {SERVERS} servers (their processes not included) | {rss_dtma:.1} MiB |"
    );
    drop(sessions);
    gw.stop();
    drop(dtma);
    Ok(())
}
