//! PostgreSQL restarted in the middle of a load (issue 13, "In CI"): `toolbelt up` on a
//! private cluster ([`Cluster`]), agents calling a tool without pause, and the cluster
//! stopped (`pg_ctl stop -m fast`, which ends every session) and started again. While it
//! is down every call ends with a clear "unavailable" answer — HTTP 503, never a hang, a
//! 500 or an answer that was not audited; once it is back calls succeed again without
//! restarting toolbelt. Every call answered with success has exactly one audit event
//! (each call's arguments are unique and audited), and the chain verifies.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use toolbelt_e2e::Server;
use toolbelt_e2e::eventually::eventually;
use toolbelt_e2e::mcp::Mcp;
use toolbelt_e2e::pg_cluster::Cluster;
use toolbelt_e2e::world::Caller;
use toolbelt_testkit::fixture::fixture_bin;

const ADMIN: &str = "tbu_pg-restart-admin-000000";
const AGENTS: usize = 3;
const WAIT: Duration = Duration::from_secs(90);

/// How one call ended, as the agent saw it.
#[derive(Debug, Clone)]
enum Ended {
    Ok,
    /// HTTP 503 with `Retry-After`, the JSON-RPC error `unavailable` saying why.
    Unavailable(String),
    /// Anything else: an error inside a 200 (the database's outage included), a 500.
    Other(String),
}

/// One tool call on the agent's session; `text` is unique to the call.
async fn call(mcp: &Mcp, id: u64, text: &str) -> Ended {
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": "fx__echo", "arguments": { "text": text } } });
    let (status, headers, body) = mcp
        .post_raw(body.to_string(), "application/json, text/event-stream")
        .await;
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    if status == 503 {
        let retry = headers.get("retry-after").and_then(|v| v.to_str().ok());
        let error = &v["error"];
        return if retry.is_some_and(|r| r.parse::<u64>().is_ok_and(|s| s >= 1))
            && error["code"] == -32603
            && error["message"]
                .as_str()
                .is_some_and(|m| m.contains("the database is unavailable; try again"))
            && error["data"]["retry_after_ms"].as_u64().is_some()
        {
            Ended::Unavailable(body)
        } else {
            Ended::Other(format!("503 (Retry-After {retry:?}) {body}"))
        };
    }
    if status == 200
        && (v["result"]["structuredContent"]["text"] == text
            || v["result"]["content"][0]["text"]
                .as_str()
                .is_some_and(|t| t.contains(text)))
    {
        return Ended::Ok;
    }
    Ended::Other(format!("{status} {body}"))
}

/// Every `tool.call` event's audited text.
async fn audited_texts(admin: &Caller) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/v1/audit?action=tool.call&limit=1000".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = admin.rest.get(&path).await;
        for e in page["items"].as_array().unwrap() {
            let detail: Value = serde_json::from_str(e["detail"].as_str().unwrap()).unwrap();
            if let Some(t) = detail["arguments"]["text"].as_str() {
                out.push(t.to_string());
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_restart_mid_load_answers_503_and_loses_no_audit_event() {
    let pg = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url();
    let server = Server::up(
        &dir.path().join("data"),
        &[
            ("TOOLBELT_DATABASE_URL", &url),
            ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN),
            ("TOOLBELT_RUNTIME", "process"),
            ("TOOLBELT_HEARTBEAT_MS", "300"),
        ],
    )
    .await;
    let admin = Caller::new(&server.url, ADMIN);
    let command = [fixture_bin().display().to_string()];
    admin
        .catalog(json!({ "slug": "fx", "audit_arguments": true, "transport": "stdio",
            "source": { "type": "package", "manager": "binary", "package": "fixture-mcp", "command": command } }))
        .await;
    admin.deploy("fx", "fx").on("local").await.running().await;
    let mut agents = Vec::new();
    for i in 0..AGENTS {
        let bot = admin.agent(&format!("bot-{i}")).await;
        admin.grant(&bot.name).server("fx", "local").await;
        let mut mcp = Mcp::new(&admin.mcp_url(), &bot.token);
        mcp.initialize().await;
        // The grant reaches the gateway's view a moment later.
        eventually("the agent to see its tool", WAIT, async || {
            match call(&mcp, 0, &format!("warm-{i}")).await {
                Ended::Ok => Ok(()),
                e => Err(format!("{e:?}")),
            }
        })
        .await;
        agents.push(mcp);
    }

    // The load: each agent calls in a loop until told to stop; every ending is kept.
    let stop = Arc::new(AtomicBool::new(false));
    let log: Arc<Mutex<BTreeMap<String, Ended>>> = Arc::default();
    let mut tasks = Vec::new();
    for (a, mcp) in agents.into_iter().enumerate() {
        let (stop, log) = (stop.clone(), log.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) {
                n += 1;
                let text = format!("a{a}-{n}");
                let ended = call(&mcp, n, &text).await;
                log.lock().await.insert(text, ended);
            }
        }));
    }
    let count = |f: fn(&Ended) -> bool| {
        let log = log.clone();
        async move { log.lock().await.values().filter(|e| f(e)).count() }
    };
    eventually("calls to succeed before the restart", WAIT, async || {
        (count(|e| matches!(e, Ended::Ok)).await >= 30).then_some(())
    })
    .await;

    pg.stop();
    let before = count(|e| matches!(e, Ended::Unavailable(_))).await;
    eventually(
        "calls to be refused while PostgreSQL is down",
        WAIT,
        async || {
            (count(|e| matches!(e, Ended::Unavailable(_))).await >= before + AGENTS).then_some(())
        },
    )
    .await;
    // REST answers the same way while the database is down.
    let (status, body) = admin.rest.send("GET", "/api/v1/agents", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["retry_after"], 1, "{body}");
    pg.start_again();

    // Back without restarting toolbelt: more successes than before, then a few more.
    let ok_at_start = count(|e| matches!(e, Ended::Ok)).await;
    eventually(
        "calls to succeed again after the restart",
        WAIT,
        async || (count(|e| matches!(e, Ended::Ok)).await >= ok_at_start + 30).then_some(()),
    )
    .await;
    stop.store(true, Ordering::Release);
    for t in tasks {
        t.await.unwrap();
    }

    let log = log.lock().await.clone();
    let other: Vec<_> = log
        .iter()
        .filter(|(_, e)| matches!(e, Ended::Other(_)))
        .collect();
    let unclear: Vec<(&String, &str)> = other
        .iter()
        .map(|(t, e)| match e {
            Ended::Other(why) => (*t, why.as_str()),
            _ => (*t, ""),
        })
        .collect();
    assert!(
        unclear.is_empty(),
        "calls that ended unclearly: {unclear:?}"
    );
    let ok: Vec<&String> = log
        .iter()
        .filter(|(_, e)| matches!(e, Ended::Ok))
        .map(|(t, _)| t)
        .collect();
    let refused: Vec<&str> = log
        .values()
        .filter_map(|e| match e {
            Ended::Unavailable(why) => Some(why.as_str()),
            _ => None,
        })
        .collect();
    eprintln!(
        "{} calls: {} succeeded, {} refused as unavailable (first: {:?})",
        log.len(),
        ok.len(),
        refused.len(),
        refused.first()
    );
    // Exactly one event per successful call; a refused call may have one (its tool ran
    // and the outcome was committed just as the connection died) but never two.
    let mut events: BTreeMap<String, usize> = BTreeMap::new();
    for t in audited_texts(&admin).await {
        *events.entry(t).or_default() += 1;
    }
    for t in &ok {
        assert_eq!(events.get(*t), Some(&1), "events of successful call {t}");
    }
    let twice: Vec<_> = events.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "calls audited twice: {twice:?}");
    let verify = admin.rest.get("/api/v1/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
    server.stop();
}
