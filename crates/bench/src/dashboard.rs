//! The dashboard at scale (issue 9's budget): every page's render time and HTML size with
//! 1,000 servers, 500 agents and 100,000 audit events on SQLite, the size of all CSS and
//! JavaScript, and what 200 idle dashboards on `/events` cost the server.
//!
//! Times are measured by the client over loopback (what a browser waits for, minus the
//! network), one request at a time after a warm-up. The server is `toolbelt serve` in
//! release mode by `scripts/bench.sh`; data goes in through the REST API, except the audit events, which are
//! appended to the store directly (the API would take minutes to make 100,000).

use crate::procs::ADMIN;
use crate::stats::{cpu_time, fmt, rss_mib, summarize};
use anyhow::{Context, Result};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use toolbelt_e2e::Server;
use toolbelt_model::audit::{ActorKind, AuditAction, NewAuditEvent, Outcome, TargetKind};
use toolbelt_store::{Store, StoreOptions};
use toolbelt_testkit::db::TestDb;

const EMAIL: &str = "bench-admin@example.com";
const PASSWORD: &str = "bench correct horse battery";
const TOOLBOXES: usize = 10;

/// The signed-in browser: a session cookie on a plain client.
struct Session {
    url: String,
    http: reqwest::Client,
    cookie: String,
}

impl Session {
    async fn get(&self, path: &str) -> Result<(u16, Vec<u8>)> {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .header(reqwest::header::COOKIE, &self.cookie)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.bytes().await?.to_vec()))
    }
}

pub async fn run(servers: usize, agents: usize, events: usize, requests: usize) -> Result<()> {
    println!(
        "## dashboard (build: {}; `toolbelt serve` on SQLite; {servers} servers on \
         {TOOLBOXES} toolboxes, {agents} agents, {events} audit events; signed in as an admin, \
         who sees everything)\n",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir()?;
    let env = [
        ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN),
        ("TOOLBELT_DATABASE_URL", db.url.as_str()),
        ("TOOLBELT_LOG", "warn"),
    ];
    let server = Server::serve(&dir.path().join("cp"), &env).await;
    let api = crate::api::Api::new(&server.url);
    let filled = Instant::now();
    let ids = fill_api(&api, servers, agents).await?;
    append_events(&db.url, events).await?;
    println!("(filled in {:.1} s)\n", filled.elapsed().as_secs_f64());

    let s = sign_in(&server.url).await?;
    let pages = [
        ("overview", "/".to_string()),
        ("servers (first page)", "/servers".into()),
        (
            "servers of one toolbox",
            format!("/servers?toolbox={}", ids.toolbox),
        ),
        ("server detail", format!("/servers/{}", ids.server)),
        ("agents", "/agents".into()),
        (
            "agent builder (1,000 servers to grant)",
            format!("/agents/{}", ids.agent),
        ),
        (
            "agent builder, one toolbox open (100 servers)",
            format!("/agents/{}?toolbox={}", ids.agent, ids.toolbox),
        ),
        (
            "agent builder, one server open",
            format!("/agents/{}?server={}", ids.agent, ids.server),
        ),
        ("toolboxes", "/toolboxes".into()),
        (
            "toolbox detail (100 servers)",
            format!("/toolboxes/{}", ids.toolbox),
        ),
        ("marketplace", "/marketplace".into()),
        ("marketplace entry + deploy form", "/marketplace/fx".into()),
        ("approvals", "/approvals".into()),
        ("audit (newest 50)", "/audit".into()),
        (
            "audit, action prefix matching nearly all",
            "/audit?action=tool".into(),
        ),
        (
            "audit, one action (500 of them)",
            "/audit?action=agent.create".into(),
        ),
        ("audit, failures (2 %)", "/audit?outcome=failure".into()),
        (
            "audit, an actor with no events",
            "/audit?actor=nobody".into(),
        ),
        ("connections", "/connections".into()),
        ("trust centre", "/trust".into()),
        ("tool changes", "/tool-changes".into()),
        ("admin", "/admin".into()),
        ("agent chat", format!("/agents/{}/chat", ids.agent)),
    ];
    println!("| page | p50 | p99 | HTML | n |\n|---|---|---|---|---|");
    let mut assets = BTreeSet::new();
    let mut absent = Vec::new();
    for (label, path) in &pages {
        let (status, body) = s.get(path).await?;
        if status == 404 {
            absent.push(*label);
            continue;
        }
        anyhow::ensure!(status == 200, "GET {path}: {status}");
        assets.extend(asset_links(&String::from_utf8_lossy(&body)));
        for _ in 0..20 {
            s.get(path).await?;
        }
        let mut lat = Vec::with_capacity(requests);
        for _ in 0..requests {
            let t = Instant::now();
            let (st, _) = s.get(path).await?;
            lat.push(t.elapsed());
            anyhow::ensure!(st == 200, "GET {path}: {st}");
        }
        let sum = summarize(lat);
        println!(
            "| {label} `{}` | {} | {} | {:.1} KB | {} |",
            short(path),
            fmt(sum.p50),
            fmt(sum.p99),
            body.len() as f64 / 1000.0,
            sum.n
        );
    }
    if !absent.is_empty() {
        println!("\n(not in this build: {})", absent.join(", "));
    }

    let mut total = 0;
    let mut parts = Vec::new();
    for a in &assets {
        let (_, body) = s.get(a).await?;
        total += body.len();
        parts.push(format!(
            "{} {:.1} KB",
            a.split('?').next().unwrap_or(a),
            body.len() as f64 / 1000.0
        ));
    }
    println!(
        "\nall CSS + JS the pages load: {:.1} KB ({})",
        total as f64 / 1000.0,
        parts.join(", ")
    );

    idle_streams(&s, server.child.id(), 200).await?;
    server.stop();
    Ok(())
}

/// A path with ids shortened (`/servers/{id}`), query kept.
fn short(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            let id = seg.len() > 20 && seg.as_bytes().get(3) == Some(&b'_');
            if id { "{id}" } else { seg }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The `/assets/…` stylesheets and scripts a page links (not the favicon).
fn asset_links(html: &str) -> Vec<String> {
    html.split('"')
        .filter(|s| s.starts_with("/assets/") && (s.contains(".css") || s.contains(".js")))
        .map(str::to_string)
        .collect()
}

struct Ids {
    toolbox: String,
    server: String,
    agent: String,
}

async fn fill_api(api: &crate::api::Api, servers: usize, agents: usize) -> Result<Ids> {
    let entry = json!({ "slug": "fx", "source": {"type": "image", "image": "fx"},
        "transport": "stdio", "description": "the fixture" });
    api.call("POST", "/api/v1/catalog", entry).await?;
    let mut toolbox = String::new();
    for t in 0..TOOLBOXES {
        let tb = json!({ "name": format!("box-{t:02}"), "shared": true });
        let v = api.call("POST", "/api/v1/toolboxes", tb).await?;
        if t == 0 {
            toolbox = v["id"].as_str().context("toolbox id")?.to_string();
        }
    }
    let mut server = String::new();
    for i in 0..servers {
        let s = json!({ "name": format!("srv-{i:04}"), "catalog": "fx",
            "toolbox": format!("box-{:02}", i % TOOLBOXES) });
        let v = api.call("POST", "/api/v1/servers", s).await?;
        if i == 0 {
            server = v["id"].as_str().context("server id")?.to_string();
        }
    }
    let mut agent = String::new();
    for i in 0..agents {
        let a = json!({ "name": format!("agent-{i:03}"), "description": "bench" });
        let v = api.call("POST", "/api/v1/agents", a).await?;
        if i == 0 {
            agent = v["agent"]["id"]
                .as_str()
                .or(v["id"].as_str())
                .context("agent id")?
                .to_string();
        }
    }
    // The first agent holds a few grants, so its builder shows a populated tree.
    for i in 0..10 {
        let g = json!({ "agent": "agent-000", "server": format!("srv-{i:04}"),
            "toolbox": format!("box-{:02}", i % TOOLBOXES) });
        api.call("POST", "/api/v1/grants", g).await?;
    }
    let u = json!({ "email": EMAIL, "role": "admin", "password": PASSWORD });
    api.call("POST", "/api/v1/users", u).await?;
    Ok(Ids {
        toolbox,
        server,
        agent,
    })
}

/// `n` audit events (tool calls of the first agent, some failed), in batches.
async fn append_events(url: &str, n: usize) -> Result<()> {
    let store = Store::open(url, StoreOptions::default()).await?;
    let mut left = n;
    while left > 0 {
        let batch = left.min(1000);
        let evs = (0..batch)
            .map(|i| {
                let mut e = NewAuditEvent::new(
                    AuditAction::ToolCall,
                    TargetKind::Tool,
                    Some("srv-0000__echo".into()),
                );
                e.actor_kind = ActorKind::Agent;
                e.actor_id = Some("agent-000".into());
                if i % 50 == 0 {
                    e.outcome = Outcome::Failure;
                }
                e.detail = json!({ "server": "srv-0000", "tool": "echo", "duration_ms": 3 });
                e
            })
            .collect();
        store.append_audit_batch(evs).await?;
        left -= batch;
    }
    store.close().await;
    Ok(())
}

async fn sign_in(url: &str) -> Result<Session> {
    let http = toolbelt_net::http::builder()
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let r = http
        .post(format!("{url}/api/v1/login"))
        .json(&json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "login: {}", r.status());
    let cookie = r
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("toolbelt_session="))
        .and_then(|v| v.split(';').next())
        .context("a session cookie")?
        .to_string();
    Ok(Session {
        url: url.to_string(),
        http,
        cookie,
    })
}

/// CPU of the server over a quiet window, first with no dashboards open, then with `n`
/// open `/events` streams (each its own connection, as browsers' tabs would be).
async fn idle_streams(s: &Session, pid: u32, n: usize) -> Result<()> {
    const WINDOW: Duration = Duration::from_secs(30);
    let cpu_over = |w: Duration| async move {
        let before = cpu_time(pid);
        tokio::time::sleep(w).await;
        (cpu_time(pid) - before).as_secs_f64() / w.as_secs_f64() * 100.0
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let quiet = cpu_over(WINDOW).await;
    let rss_before = rss_mib(pid);
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        // A client per stream: one connection each.
        let http = toolbelt_net::http::builder().build()?;
        let r = http
            .get(format!("{}/events", s.url))
            .header(reqwest::header::COOKIE, &s.cookie)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "/events: {}", r.status());
        streams.push((http, r));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let open = cpu_over(WINDOW).await;
    println!(
        "\n| idle server, {}s window | CPU (% of one core) | RSS |\n|---|---|---|",
        WINDOW.as_secs()
    );
    println!("| no dashboards open | {quiet:.2} % | {rss_before:.1} MiB |");
    println!(
        "| {n} dashboards on `/events` | {open:.2} % | {:.1} MiB |",
        rss_mib(pid)
    );
    drop(streams);
    Ok(())
}
