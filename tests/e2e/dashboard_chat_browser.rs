//! The chat page in a real browser (issue 10): Ann chats with her agent through the scripted
//! LLM (`tests/python/llm`, real OpenAI wire). The answer streams into the page without a
//! reload (the window marker stays), a tool call and its result show as they happen, a call
//! held by `ask` shows "waiting for approval" inline and her click on Approve lets the turn
//! finish with the tool's result in the answer; the gateway audited both calls under the
//! agent with `via: chat`. Stop hangs up on a running turn, which cancels it and stores
//! nothing. Without JavaScript a held call answers the page with Approve/Deny form posts
//! and the turn goes on from each decision. Element ids: `crates/dashboard/README.md`.

use crate::gw_setup::{WAIT, World};
use serde_json::{Value, json};
use std::time::Duration;
use toolbelt_e2e::browser::{Browser, Options};
use toolbelt_e2e::eventually::{eventually, when};
use toolbelt_e2e::llm::{self, Llm};
use toolbelt_gateway::GatewayConfig;
use toolbelt_gateway::ssrf::AllowList;

/// The gateway world with the LLM's loopback address allowed; Ann's agent granted
/// alpha/tools, `add` on ask, chatting through the scripted LLM.
async fn world(script: Value) -> (World, Llm) {
    let gateway = GatewayConfig {
        ssrf_allow: AllowList::parse("127.0.0.1/32").unwrap(),
        ask_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let w = World::with(gateway, |_| {}).await;
    w.ann.grant("ann-bot").server("tools", "alpha").await;
    w.as_ann("POST", "/api/v1/grants", json!({ "agent": "ann-bot", "server": "tools", "toolbox": "alpha", "tool": "add", "rule": "ask" })).await;
    let llm = Llm::start(script).await;
    w.ann.llm("openai", "openai", &llm.base_url()).await;
    w.ann.chat_settings("ann-bot", "openai").await;
    (w, llm)
}

/// Ann's audit events matching `query`, oldest first, details parsed.
async fn audit(w: &World, query: &str) -> Vec<Value> {
    let v = w
        .as_ann(
            "GET",
            &format!("/api/v1/audit?{query}&limit=100"),
            Value::Null,
        )
        .await;
    let mut items = v["items"].as_array().unwrap().clone();
    items.reverse();
    for e in &mut items {
        if let Some(d) = e["detail"].as_str() {
            e["detail"] = serde_json::from_str(d).unwrap_or(Value::Null);
        }
    }
    items
}

/// The live turn's state (`running`, `done`, `error`, `stopped`) is `state`.
fn live_state(state: &str) -> String {
    format!(
        "var t = document.getElementById('chat-live'); return !!t && t.getAttribute('data-state') === '{state}';"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_chat_streams_a_turn_with_a_tool_call_and_an_approval_given_in_the_page() {
    let (w, llm) = world(json!([
        llm::call("tools__echo", json!({ "text": "hi" })),
        llm::call("tools__add", json!({ "a": 40, "b": 2 })),
        "The echo said hi, and 40 plus 2 is 42."
    ]))
    .await;
    let agent = w.ann.rest.get("/api/v1/agents/ann-bot").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = Browser::open(&w.plane.url).await;
    b.sign_in(&w.ann)
        .await
        .goto(&format!("/agents/{agent}"))
        .await;
    b.follow("#agent-chat").await;
    b.until("#chats-empty").await.checked().await.mark().await;

    b.fill("#chat-text", "Echo hi, then add 40 and 2.").await;
    b.click("#chat-send").await;
    // The first call and its result arrive while the turn runs; the second waits for Ann.
    let steps = b
        .until_text("#chat-live-steps", "waiting for approval: tools__add")
        .await;
    assert!(
        steps.contains("→ tools__echo({\"text\":\"hi\"})"),
        "{steps}"
    );
    assert!(steps.contains("← hi"), "{steps}");
    assert!(steps.contains(r#"tools__add({"a":40,"b":2})"#), "{steps}");
    assert_eq!(
        llm.requests().await.len(),
        2,
        "the model waits with the turn"
    );
    b.until_text("#chat-live-status", "waiting for your approval")
        .await;
    b.still_marked().await;

    let approve = b
        .js("return document.querySelector('[id^=chat-approve-]').id;")
        .await;
    b.click(&format!("#{}", approve.as_str().unwrap())).await;
    b.until_js("the turn to finish", &live_state("done")).await;
    b.still_marked().await;
    let steps = b.text("#chat-live-steps").await;
    assert!(steps.contains("approved: tools__add"), "{steps}");
    assert!(steps.contains("← 42"), "the tool's result: {steps}");
    assert_eq!(
        b.text("#chat-live-answer").await,
        "The echo said hi, and 40 plus 2 is 42."
    );
    let deltas = b
        .attr("#chat-live-answer", "data-deltas")
        .await
        .unwrap_or_default();
    assert!(
        deltas.parse::<u32>().unwrap() > 1,
        "streamed in pieces, not at once: {deltas}"
    );
    // The page now names the conversation it made, and lists it.
    let chat = b
        .js("return document.getElementById('chat-id').value;")
        .await;
    let chat = chat.as_str().unwrap().to_string();
    assert!(chat.starts_with("cht_"), "{chat}");
    b.until(&format!("#chat-{chat}")).await;
    assert!(b.url().await.ends_with(&format!("?chat={chat}")));
    b.screenshot("chat").await;
    assert_eq!(llm.refused().await, Vec::<Value>::new());

    // The gateway audited both calls under the agent, as a chat turn's.
    let calls = audit(&w, "agent=ann-bot&action=tool.call").await;
    let mut tools: Vec<&str> = calls
        .iter()
        .map(|e| e["detail"]["tool"].as_str().unwrap())
        .collect();
    tools.sort();
    assert_eq!(tools, ["tools__add", "tools__echo"], "{calls:#?}");
    for e in &calls {
        assert_eq!(
            (e["detail"]["via"].as_str(), e["detail"]["chat"].as_str()),
            (Some("chat"), Some(chat.as_str())),
            "{e}"
        );
    }
    // Stored: a reload shows the turn from the transcript.
    b.goto(&format!("/agents/{agent}/chat?chat={chat}")).await;
    b.until_text("#turn-0", "40 plus 2 is 42").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_chat_stop_cancels_the_running_turn_and_stores_nothing() {
    let (w, llm) = world(json!([
        llm::call("tools__sleep", json!({ "ms": 60000 })),
        "never said"
    ]))
    .await;
    let agent = w.ann.rest.get("/api/v1/agents/ann-bot").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = Browser::open(&w.plane.url).await;
    b.sign_in(&w.ann)
        .await
        .goto(&format!("/agents/{agent}/chat"))
        .await;
    b.until("#chat-form").await.mark().await;
    b.fill("#chat-text", "Sleep a minute.").await;
    b.click("#chat-send").await;
    b.until_text("#chat-live-steps", "→ tools__sleep").await;
    b.click("#chat-stop").await;
    b.until_js("the turn to stop", &live_state("stopped")).await;
    b.still_marked().await;
    let turns = eventually("the cancelled turn audited", WAIT, async || {
        let t = audit(&w, "action=chat.turn").await;
        when(t.clone(), t.len() == 1)
    })
    .await;
    assert_eq!(turns[0]["outcome"], "failure", "{:#}", turns[0]);
    let chat = b
        .js("return document.getElementById('chat-id').value;")
        .await;
    let chat = chat.as_str().unwrap().to_string();
    let t = w
        .as_ann("GET", &format!("/api/v1/chats/{chat}"), Value::Null)
        .await;
    assert_eq!(t["turns"], json!([]), "nothing stored: {t}");
    assert_eq!(
        llm.requests().await.len(),
        1,
        "the model was not asked again"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_chat_without_javascript_approves_and_denies_inline_with_form_posts() {
    let (w, llm) = world(json!([
        llm::call("tools__add", json!({ "a": 40, "b": 2 })),
        llm::call("tools__add", json!({ "a": 1, "b": 1 })),
        "40 plus 2 is 42; the second sum was denied."
    ]))
    .await;
    let agent = w.ann.rest.get("/api/v1/agents/ann-bot").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = Browser::with(
        &w.plane.url,
        Options {
            no_javascript: true,
        },
    )
    .await;
    b.sign_in(&w.ann)
        .await
        .goto(&format!("/agents/{agent}/chat"))
        .await;
    b.fill("#chat-text", "Add 40 and 2, then 1 and 1.").await;
    // The held call answers the post: the turn so far and the decision's form.
    b.follow_status("#chat-send", 202).await;
    let waiting = b.text("#chat-waiting").await;
    assert_eq!(
        waiting,
        r#"waiting for approval: tools__add({"a":40,"b":2})"#
    );
    let first = b
        .attr("#chat-decide [name=approval]", "value")
        .await
        .unwrap();
    b.checked().await;
    b.follow_status(&format!("#chat-approve-{first}"), 202)
        .await;
    let parked = b.text("#chat-parked").await;
    assert!(
        parked.contains(r#"approved: tools__add({"a":40,"b":2})"#) && parked.contains("← 42"),
        "{parked}"
    );
    let second = b
        .attr("#chat-decide [name=approval]", "value")
        .await
        .unwrap();
    assert_ne!(first, second);
    b.follow(&format!("#chat-deny-{second}")).await;
    // The turn went on from the denial to its end: the stored transcript.
    let turn = b.until_text("#turn-0", "the second sum was denied").await;
    assert!(turn.contains("← 42"), "{turn}");
    let chat = b.attr("#chat-id", "value").await.unwrap();
    let t = w
        .as_ann("GET", &format!("/api/v1/chats/{chat}"), Value::Null)
        .await;
    let calls = t["turns"][0]["tool_calls"].as_array().unwrap();
    assert_eq!(
        (calls.len(), &calls[0]["is_error"], &calls[1]["is_error"]),
        (2, &json!(false), &json!(true)),
        "the model was told of the denial: {t}"
    );
    for action in ["approval.approve", "approval.deny"] {
        let decided = audit(&w, &format!("action={action}")).await;
        assert_eq!(decided.len(), 1, "{action}: {decided:#?}");
    }
    assert_eq!(llm.refused().await, Vec::<Value>::new());
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_agent_page_sets_search_mode_an_always_visible_tool_and_a_toolset() {
    let (w, _llm) = world(json!([])).await;
    let agent = w.ann.rest.get("/api/v1/agents/ann-bot").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = Browser::open(&w.plane.url).await;
    b.sign_in(&w.ann)
        .await
        .goto(&format!("/agents/{agent}"))
        .await;
    b.until("#always-tools__echo").await;
    b.select("#discovery-mode", "search").await;
    b.click("#always-tools__echo").await;
    b.follow("#save-discovery").await;
    b.until_text("#notice", "discovery: search, 1 always visible")
        .await;
    let a = w.ann.rest.get("/api/v1/agents/ann-bot").await;
    assert_eq!(a["discovery"], "search", "{a}");

    b.fill("#toolset-name", "triage").await;
    b.click("#toolset-tool-tools__add").await;
    b.follow("#toolset-create-submit").await;
    b.until("#toolset-triage").await.checked().await;
    let sets = w.ann.rest.get("/api/v1/agents/ann-bot/toolsets").await;
    assert_eq!(
        (sets[0]["path"].as_str(), &sets[0]["tools"]),
        (Some("/mcp/toolsets/triage"), &json!(["tools__add"])),
        "{sets}"
    );
    // A toolset without tools: the error at the field, nothing made.
    b.fill("#toolset-name", "empty").await;
    b.follow_status("#toolset-create-submit", 422).await;
    b.until("#toolset-tools-error").await;
    assert_eq!(
        w.ann
            .rest
            .get("/api/v1/agents/ann-bot/toolsets")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    b.close().await;
}
