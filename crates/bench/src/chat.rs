//! Chat against the scripted LLM (`tests/python/llm`): what chat itself adds to a turn,
//! apart from the model's and the tools' time, and how late a streamed token reaches the
//! client after the model sent it; then many conversations at once.
//!
//! One `toolbelt up --runtime process` (control plane and the `local` toolbox's DTMA in one
//! process) running the fixture (`fx__echo`), the admin's agent granted it, an OpenAI-kind
//! endpoint at the fixture. The model's time is
//! what the fixture spent on each request (arrival to last byte, `received_ns` ..
//! `finished_ns`); a tool's is the p50 of `fx__echo` called through the gateway directly
//! with an agent token (the path chat's calls take). So a turn of K tool steps is
//! `model + K × tool + chat`, and chat's share is split into its fixed cost per turn (a
//! turn without tools) and what each tool step adds.

use crate::api::Api;
use crate::procs::{self, ADMIN, Launch};
use crate::stats::{fmt, summarize};
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use toolbelt_e2e::chat::Chat;
use toolbelt_e2e::llm::Llm;
use toolbelt_e2e::mcp::Mcp;
use toolbelt_e2e::world::Caller;
use toolbelt_testkit::fixture::static_fixture_bin;
use toolbelt_testkit::proc::free_port;

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

/// The model's time within the requests `from..` of the fixture's record.
fn model_time(requests: &[Value], from: usize) -> Duration {
    let ns: i64 = requests[from..]
        .iter()
        .map(|r| r["finished_ns"].as_i64().unwrap_or(0) - r["received_ns"].as_i64().unwrap_or(0))
        .sum();
    Duration::from_nanos(ns.max(0) as u64)
}

/// A script whose every turn makes `steps` calls of `fx__echo`, one per model reply, then
/// answers (`select: turn`: each conversation walks it, however many run at once).
fn tool_script(steps: usize) -> Value {
    let mut s: Vec<Value> = (0..steps)
        .map(|i| json!({ "tool_calls": [{ "name": "fx__echo", "arguments": { "text": format!("step {i}") } }] }))
        .collect();
    s.push(json!({ "text": "done" }));
    json!({ "steps": s, "select": "turn" })
}

/// One turn timed end to end, with the model's share; fails on an `error` event.
async fn timed_turn(chat: &Chat, llm: &Llm) -> Result<(Duration, Duration)> {
    let before = llm.requests().await.len();
    let start = Instant::now();
    let turn = chat.say("go").await;
    let total = start.elapsed();
    anyhow::ensure!(
        turn.events.last().is_some_and(|e| e.name == "done"),
        "turn failed: {:?}",
        turn.events.last()
    );
    Ok((total, model_time(&llm.requests().await, before)))
}

pub async fn run(turns: usize, steps: usize, concurrent: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let proc = procs::up(&dir.path().join("up"), free_port(), &Launch::default())?;
    procs::healthy(&format!("{}/readyz", proc.url), Duration::from_secs(30)).await?;
    let api = Api::new(&proc.url);
    let source = json!({ "type": "package", "manager": "binary", "package": "fixture-mcp",
        "command": [static_fixture_bin().display().to_string()] });
    api.call(
        "POST",
        "/api/v1/catalog",
        json!({ "slug": "fx", "source": source, "transport": "stdio" }),
    )
    .await?;
    api.server("fx", "fx", "local").await?;
    let token = api.agent("bot").await?;
    api.grant_server("bot", "fx", "local").await?;
    api.wait_running("local", 1, Duration::from_secs(60))
        .await?;

    let admin = Caller::new(&proc.url, ADMIN);
    let llm = Llm::start(tool_script(0)).await;
    admin
        .llm_with(json!({ "name": "scripted", "kind": "openai", "base_url": llm.base_url(), "model": "scripted", "shared": true }))
        .await;
    admin
        .chat_settings_with(
            "bot",
            json!({ "llm": "scripted", "max_steps": steps.max(1) + 1 }),
        )
        .await;

    // The tool's own time, on the path chat's calls take.
    let mut mcp = Mcp::new(&format!("{}/mcp", proc.url), &token);
    mcp.initialize().await;
    let mut tool = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        mcp.tool("fx__echo", json!({ "text": format!("warm {i}") }))
            .await;
        tool.push(t.elapsed());
    }
    let tool_p50 = summarize(tool).p50;

    println!(
        "## Chat (one `toolbelt up --runtime process`, scripted OpenAI-kind LLM, `fx__echo` through the gateway)\n"
    );
    println!("| what | p50 | p99 | n |\n|---|---|---|---|");
    println!(
        "| tool call through the gateway (`fx__echo`) | {} | - | 200 |",
        fmt(tool_p50)
    );
    let mut fixed = Vec::new();
    let mut per_step = Vec::new();
    for k in [0, steps] {
        llm.script(tool_script(k)).await;
        for _ in 0..turns {
            let chat = admin.chat("bot").await;
            let (total, model) = timed_turn(&chat, &llm).await?;
            let tools = tool_p50 * k as u32;
            let chat_own = total.saturating_sub(model + tools);
            if k == 0 {
                fixed.push(chat_own);
            } else {
                per_step.push(chat_own);
            }
        }
    }
    let fixed_p50 = summarize(fixed.clone()).p50;
    let f = summarize(fixed);
    println!(
        "| chat's own time, turn without tools (fixed per turn) | {} | {} | {} |",
        fmt(f.p50),
        fmt(f.p99),
        f.n
    );
    let per: Vec<Duration> = per_step
        .iter()
        .map(|d| d.saturating_sub(fixed_p50) / steps as u32)
        .collect();
    let p = summarize(per);
    println!(
        "| **chat's own time per tool step** (turn of {steps} steps, fixed part removed; target p50 ≤ 2 ms) | {} | {} | {} |",
        fmt(p.p50),
        fmt(p.p99),
        p.n
    );

    // Token forwarding: 200 tokens, 5 ms apart, each event's arrival against the moment
    // the fixture wrote the last token it contains.
    let tokens: Vec<String> = (0..200).map(|i| format!("t{i} ")).collect();
    llm.script(json!([{ "chunks": tokens, "token_delay_ms": 5 }]))
        .await;
    let chat = admin.chat("bot").await;
    let mut live = chat.send("stream").await;
    let mut arrivals: Vec<(usize, i128)> = Vec::new();
    let mut received = 0usize;
    while let Some(ev) = live.next().await {
        if ev.name == "text" {
            received += ev.data["delta"].as_str().unwrap_or_default().len();
            arrivals.push((received, now_ns()));
        }
    }
    let sent = llm.requests().await;
    let times: Vec<i128> = sent.last().context("the stream's request")?["token_times_ns"]
        .as_array()
        .context("token times")?
        .iter()
        .map(|t| t.as_i64().unwrap_or(0) as i128)
        .collect();
    let mut ends = Vec::new();
    let mut sum = 0;
    for t in &tokens {
        sum += t.len();
        ends.push(sum);
    }
    let lat: Vec<Duration> = arrivals
        .iter()
        .filter_map(|(bytes, at)| {
            let last = ends.iter().rposition(|e| e <= bytes)?;
            Some(Duration::from_nanos((at - times.get(last)?).max(0) as u64))
        })
        .collect();
    let l = summarize(lat);
    println!(
        "| **streamed token**: LLM wrote it → client read its `text` event (target ≤ 5 ms) | {} | {} | {} |",
        fmt(l.p50),
        fmt(l.p99),
        l.n
    );

    // Many conversations at once, each one tool step and an answer.
    llm.script(tool_script(1)).await;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrent {
        let admin = admin.clone();
        tasks.push(tokio::spawn(async move {
            let chat = admin.chat("bot").await;
            let t = Instant::now();
            let turn = chat.say("go").await;
            (
                turn.events.last().is_some_and(|e| e.name == "done"),
                t.elapsed(),
            )
        }));
    }
    let mut ok = Vec::new();
    let mut errors = 0;
    for t in tasks {
        match t.await {
            Ok((true, d)) => ok.push(d),
            _ => errors += 1,
        }
    }
    let wall = start.elapsed();
    let c = summarize(ok);
    println!(
        "| {concurrent} concurrent conversations, one tool step each: turn time | {} | {} | {} |",
        fmt(c.p50),
        fmt(c.p99),
        c.n
    );
    println!(
        "\n{concurrent} concurrent conversations on one `toolbelt up`: **{errors} errors** (target 0), all done in {}.",
        fmt(wall)
    );
    Ok(())
}
