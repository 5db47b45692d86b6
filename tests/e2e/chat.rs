//! Chat end to end (issue 10): Ann's agent converses with the scripted LLM
//! (`tests/python/llm`, on the real OpenAI and Anthropic wire) and calls its granted tools
//! through the gateway as the agent — one call, parallel calls on two toolboxes, a tool
//! error the model recovers from, a denied and an unknown tool the model is told about, an
//! `ask` approved mid-turn, a cancelled turn (the running call is cancelled), malformed model
//! output failing the turn with nothing stored, an image result reaching the model as each
//! API takes images, the daily token budget stopping a runaway
//! loop, a turn past its timeout; other members never see her conversations, and the audit
//! log shows every tool call of a turn under the agent. Endpoints, their keys and key
//! rotation: chat_endpoints.rs.

use crate::gw_setup::{WAIT, World};
use serde_json::{Value, json};
use std::time::Duration;
use toolbelt_e2e::chat::Chat;
use toolbelt_e2e::eventually::{eventually, when};
use toolbelt_e2e::llm::{self, Llm};
use toolbelt_gateway::GatewayConfig;
use toolbelt_gateway::ssrf::AllowList;

/// The gateway world, the LLM's loopback address allowed, Ann's agent granted alpha/tools.
pub(crate) async fn world() -> World {
    world_with(|_| {}).await
}

/// [`world`] with other app options set by `tweak`.
async fn world_with(tweak: impl FnOnce(&mut toolbelt_app::Options)) -> World {
    let gateway = GatewayConfig {
        ssrf_allow: AllowList::parse("127.0.0.1/32").unwrap(),
        ask_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let w = World::with(gateway, tweak).await;
    w.ann.grant("ann-bot").server("tools", "alpha").await;
    w
}

/// A scripted LLM speaking `kind`, Ann's endpoint for it (named after the kind) set as her
/// agent's, and a new conversation with the agent.
pub(crate) async fn chatting(w: &World, kind: &str, script: Value) -> (Llm, Chat) {
    let llm = Llm::start(script).await;
    w.ann.llm(kind, kind, &llm.base_url()).await;
    w.ann.chat_settings("ann-bot", kind).await;
    (llm, w.ann.chat("ann-bot").await)
}

/// Ann's agent's audit events of `action`, oldest first, details parsed.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_one_tool_call_goes_through_the_gateway_on_both_wire_protocols() {
    let w = world().await;
    for kind in ["openai", "anthropic"] {
        let (llm, chat) = chatting(
            &w,
            kind,
            json!([
            { "tool_calls": [{ "name": "tools__echo", "arguments": { "text": "hi" } }],
              "usage": { "input_tokens": 5, "output_tokens": 2 } },
            { "text": "It said hi.", "usage": { "input_tokens": 9, "output_tokens": 3 } }]),
        )
        .await;
        let turn = chat.say("echo hi").await;
        assert_eq!(
            turn.done()["usage"],
            json!({ "input_tokens": 14, "output_tokens": 5 })
        );
        assert_eq!(turn.text(), "It said hi.", "{kind}");
        let (call, result) = (turn.of("tool_call")[0], turn.of("tool_result")[0]);
        assert_eq!(
            (call["name"].as_str(), &call["arguments"]),
            (Some("tools__echo"), &json!({ "text": "hi" }))
        );
        assert!(
            result["is_error"] == false && result["text"].as_str().unwrap().contains("hi"),
            "{result}"
        );
        let sent = llm.requests().await;
        assert!(
            llm::offered_tools(&sent[0]).contains(&"tools__echo".to_string()),
            "{kind}"
        );
        assert!(
            llm::tool_results(&sent[1])[0].1.contains("hi"),
            "{:#}",
            sent[1]
        );
        assert_eq!(
            llm.refused().await,
            Vec::<Value>::new(),
            "{kind}: the real API would refuse these"
        );
        let t = chat.transcript().await;
        assert_eq!(
            (
                t["turns"][0]["user"].as_str(),
                t["turns"][0]["answer"].as_str()
            ),
            (Some("echo hi"), Some("It said hi.")),
            "{t}"
        );
        assert_eq!(t["turns"][0]["tool_calls"][0]["name"], "tools__echo", "{t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_an_image_result_reaches_the_model_natively_on_both_wire_protocols() {
    let w = world().await;
    for kind in ["openai", "anthropic"] {
        let script = json!([
            llm::call("tools__image", json!({})),
            "A pixel.",
            "Still a pixel."
        ]);
        let (llm, chat) = chatting(&w, kind, script).await;
        assert_eq!(chat.say("show me").await.text(), "A pixel.");
        chat.say("again").await.done();
        let sent = llm.requests().await;
        assert_eq!(llm.refused().await, Vec::<Value>::new(), "{kind}");
        let text = &llm::tool_results(&sent[1])[0].1;
        for part in [
            "a 1x1 PNG",
            "[image image/png, 70 bytes: attached]",
            "[resource fixture://note]\nthe note beside the picture",
        ] {
            assert!(text.contains(part), "{kind}: {text}");
        }
        // Anthropic: inside the tool_result; OpenAI: a user message right after the tool one.
        let want = match kind {
            "anthropic" => json!({ "in": "tool_result", "tool_use_id": "toolu_0_0" }),
            _ => json!({ "in": "image_url", "role": "user" }),
        };
        // The resumed conversation (its history unsealed) carries the image again.
        for r in &sent[1..] {
            let images = r["images"].as_array().unwrap();
            assert_eq!(images.len(), 1, "{kind}: {:#}", r["images"]);
            assert_eq!(
                (&images[0]["media_type"], &images[0]["bytes"]),
                (&json!("image/png"), &json!(70))
            );
            for (k, v) in want.as_object().unwrap() {
                assert_eq!(&images[0][k], v, "{kind}: {images:?}");
            }
            if kind == "openai" {
                let at = images[0]["message"].as_u64().unwrap() as usize;
                assert_eq!(r["body"]["messages"][at - 1]["role"], "tool", "{kind}");
            }
        }
        let t = chat.transcript().await;
        let shown = t["turns"][0]["tool_calls"][0]["text"].as_str().unwrap();
        assert!(shown.contains("70 bytes: attached"), "{t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_parallel_calls_reach_two_toolboxes_and_each_is_audited_under_the_agent() {
    let w = world().await;
    w.ann.grant("ann-bot").server("mine", "own").await;
    let (llm, chat) = chatting(
        &w,
        "openai",
        json!([
            llm::calls(&[
                ("tools__echo", json!({ "text": "from alpha" })),
                ("mine__echo", json!({ "text": "from own" }))
            ]),
            "Both answered."
        ]),
    )
    .await;
    let turn = chat.say("ask both").await;
    turn.done();
    let mut results: Vec<String> = llm::tool_results(&llm.requests().await[1])
        .into_iter()
        .map(|r| r.1)
        .collect();
    results.sort();
    assert!(
        results[0].contains("from alpha") && results[1].contains("from own"),
        "{results:?}"
    );
    let calls = audit(&w, "agent=ann-bot&action=tool.call").await;
    let mut servers: Vec<&str> = calls
        .iter()
        .map(|e| e["detail"]["server_name"].as_str().unwrap())
        .collect();
    servers.sort();
    assert_eq!(servers, ["mine", "tools"], "{calls:#?}");
    for e in &calls {
        assert_eq!(
            (e["actor_kind"].as_str(), e["outcome"].as_str()),
            (Some("agent"), Some("success")),
            "{e}"
        );
        assert_eq!(
            (e["detail"]["via"].as_str(), e["detail"]["chat"].as_str()),
            (Some("chat"), Some(chat.id.as_str())),
            "{e}"
        );
    }
    let turns = audit(&w, "action=chat.turn").await;
    assert_eq!(turns.len(), 1, "{turns:#?}");
    assert_eq!(
        (
            turns[0]["outcome"].as_str(),
            turns[0]["detail"]["tool_calls"].as_u64()
        ),
        (Some("success"), Some(2)),
        "{:#}",
        turns[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_the_model_is_told_of_a_tool_error_a_denied_and_an_unknown_tool_and_goes_on() {
    let w = world().await;
    w.as_ann("POST", "/api/v1/grants", json!({ "agent": "ann-bot", "server": "tools", "toolbox": "alpha", "tool": "add", "rule": "deny" })).await;
    let (llm, chat) = chatting(
        &w,
        "anthropic",
        json!([
            llm::call("tools__fail", json!({ "mode": "tool" })),
            llm::call("tools__add", json!({ "a": 1, "b": 2 })),
            llm::call("nope__missing", json!({})),
            "I could not do it."
        ]),
    )
    .await;
    let turn = chat.say("try everything").await;
    turn.done();
    let results = turn.of("tool_result");
    assert_eq!(results.len(), 3, "{turn:#?}");
    assert!(
        results.iter().all(|r| r["is_error"] == true),
        "{results:#?}"
    );
    assert!(
        results[0]["text"]
            .as_str()
            .unwrap()
            .contains("failed on purpose"),
        "{}",
        results[0]
    );
    let sent = llm.requests().await;
    assert!(
        !llm::offered_tools(&sent[0]).contains(&"tools__add".to_string()),
        "a denied tool is not offered"
    );
    // Each error went back as the tool's result (is_error set on Anthropic's block).
    let last = &sent[3]["body"]["messages"];
    let errors = last
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["type"] == "tool_result" && b["is_error"] == true)
        .count();
    assert_eq!(errors, 3, "{last:#}");
    assert_eq!(llm.refused().await, Vec::<Value>::new());
    assert_eq!(
        chat.transcript().await["turns"][0]["answer"],
        "I could not do it."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_an_ask_rule_holds_the_call_until_the_owner_approves_mid_turn() {
    let w = world().await;
    w.as_ann("POST", "/api/v1/grants", json!({ "agent": "ann-bot", "server": "tools", "toolbox": "alpha", "tool": "add", "rule": "ask" })).await;
    let (llm, chat) = chatting(
        &w,
        "openai",
        json!([
            llm::call("tools__add", json!({ "a": 40, "b": 2 })),
            "It is 42."
        ]),
    )
    .await;
    let mut live = chat.send("add 40 and 2").await;
    let asked = live.until("approval_required").await;
    assert_eq!(
        (asked["tool"].as_str(), &asked["arguments"]),
        (Some("tools__add"), &json!({ "a": 40, "b": 2 })),
        "{asked}"
    );
    assert_eq!(
        llm.requests().await.len(),
        1,
        "the model waits with the turn"
    );
    let id = asked["approval_id"].as_str().unwrap();
    w.as_ann(
        "POST",
        &format!("/api/v1/approvals/{id}/approve"),
        json!({}),
    )
    .await;
    let turn = live.finish().await;
    turn.done();
    assert!(
        turn.of("tool_result")[0]["text"]
            .as_str()
            .unwrap()
            .contains("42"),
        "{turn:#?}"
    );
    assert_eq!(turn.text(), "It is 42.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_a_cancelled_turn_cancels_the_running_tool_call_and_stores_nothing() {
    let w = world().await;
    let (llm, chat) = chatting(
        &w,
        "openai",
        json!([
            llm::call("tools__sleep", json!({ "ms": 60000 })),
            "never said"
        ]),
    )
    .await;
    let mut live = chat.send("sleep a minute").await;
    live.until("tool_call").await;
    // Let the call reach the server before hanging up (cancelling earlier is simpler).
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(live);
    let logs = "/api/v1/servers/tools/logs?toolbox=alpha";
    eventually(
        "the sleep to be cancelled by MCP cancellation",
        WAIT,
        async || {
            let (_, text) = w.admin.rest.send("GET", logs, None).await;
            when(
                text.clone(),
                text.as_str()
                    .unwrap_or_default()
                    .contains("sleep cancelled"),
            )
        },
    )
    .await;
    let turns = eventually("the turn's failure audited", WAIT, async || {
        let t = audit(&w, "action=chat.turn").await;
        when(t.clone(), t.len() == 1)
    })
    .await;
    assert_eq!(turns[0]["outcome"], "failure", "{:#}", turns[0]);
    assert_eq!(chat.transcript().await["turns"], json!([]));
    assert_eq!(
        llm.requests().await.len(),
        1,
        "the model was not asked again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_malformed_model_output_fails_the_turn_clearly_and_stores_nothing() {
    let w = world().await;
    for kind in ["openai", "anthropic"] {
        let (llm, chat) = chatting(
            &w,
            kind,
            json!([
            { "tool_calls": [{ "name": "tools__echo", "arguments_raw": "{\"text\": \"hi" }] },
            { "text": "one two three four five six seven", "fault": "cut" },
            { "fault": "http_error", "status": 400, "message": "the model fell over" },
            { "fault": "garbage" },
            "Fine now."]),
        )
        .await;
        for code in ["llm_malformed", "llm_cut", "llm_error", "llm_malformed"] {
            let err = chat.say("hello").await.error().clone();
            assert_eq!(err["code"], code, "{kind}: {err}");
            assert!(
                !err["message"].as_str().unwrap_or_default().is_empty(),
                "{err}"
            );
        }
        assert_eq!(
            chat.transcript().await["turns"],
            json!([]),
            "{kind}: nothing half-stored"
        );
        assert_eq!(chat.say("hello").await.text(), "Fine now.");
        let t = chat.transcript().await;
        assert_eq!(
            (
                t["turns"].as_array().unwrap().len(),
                t["turns"][0]["tool_calls"].as_array().unwrap().len()
            ),
            (1, 0),
            "{t}"
        );
        assert_eq!(llm.refused().await, Vec::<Value>::new());
    }
    assert_eq!(
        audit(&w, "agent=ann-bot&action=tool.call").await.len(),
        0,
        "bad arguments never reach a tool"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_other_members_and_admins_never_see_or_drive_anns_conversations() {
    let w = world().await;
    let (_llm, chat) = chatting(&w, "openai", json!(["Private answer."])).await;
    chat.say("my secret question").await.done();
    let path = format!("/api/v1/chats/{}", chat.id);
    for who in [&w.bob, &w.admin] {
        assert_eq!(who.rest.send("GET", &path, None).await.0, 404);
        assert_eq!(who.rest.send("DELETE", &path, None).await.0, 404);
        let (s, _) = who
            .rest
            .send(
                "POST",
                &format!("{path}/messages"),
                Some(json!({ "text": "hi" })),
            )
            .await;
        assert_eq!(s, 404);
        let list = who.rest.get("/api/v1/chats").await;
        assert!(!list.to_string().contains(&chat.id), "{list}");
    }
    let (s, _) = w
        .bob
        .rest
        .send("POST", "/api/v1/chats", Some(json!({ "agent": "ann-bot" })))
        .await;
    assert_eq!(s, 404, "Bob cannot chat as Ann's agent");
    assert_eq!(
        chat.transcript().await["turns"][0]["user"],
        "my secret question"
    );
    w.ann.rest.delete(&path).await;
    assert_eq!(w.ann.rest.send("GET", &path, None).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_max_steps_stops_a_model_that_keeps_calling_tools() {
    let w = world().await;
    let echo = llm::call("tools__echo", json!({ "text": "again" }));
    let (llm, chat) = chatting(&w, "openai", json!([echo, echo, echo, "never said"])).await;
    w.ann
        .chat_settings_with("ann-bot", json!({ "llm": "openai", "max_steps": 2 }))
        .await;
    let err = chat.say("loop").await.error().clone();
    assert_eq!(err["code"], "max_steps", "{err}");
    assert_eq!(chat.transcript().await["turns"], json!([]));
    assert_eq!(
        audit(&w, "agent=ann-bot&action=tool.call").await.len(),
        2,
        "two rounds ran, no third"
    );
    assert!(llm.requests().await.len() <= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_more_tools_than_the_endpoint_takes_is_said_first_and_never_truncated_silently() {
    let w = world().await;
    let fixture = toolbelt_testkit::fixture::fixture_bin()
        .display()
        .to_string();
    w.admin
        .catalog(
            json!({ "slug": "wide", "transport": "stdio", "source": { "type": "package",
        "manager": "binary", "package": "fixture-mcp", "command": [fixture, "--tools", "140"] } }),
        )
        .await;
    w.ann.deploy("wide", "wide").on("own").await.running().await;
    w.ann.grant("ann-bot").server("wide", "own").await;
    let (llm, chat) = chatting(&w, "openai", json!(["Plenty."])).await;
    let turn = chat.say("what can you do").await;
    turn.done();
    assert_eq!(
        (
            turn.events[0].name.as_str(),
            turn.events[0].data["code"].as_str()
        ),
        ("notice", Some("tool_search")),
        "{turn:#?}"
    );
    let offered = llm::offered_tools(&llm.requests().await[0]);
    assert!(
        !offered.is_empty() && offered.len() <= 128,
        "{} tools offered",
        offered.len()
    );
    assert_eq!(llm.refused().await, Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_hanging_up_mid_answer_closes_the_llm_stream_and_stores_nothing() {
    let w = world().await;
    let slow = json!([{ "text": "a b c d e f g h i j k l m n o p", "token_delay_ms": 300 }]);
    let (llm, chat) = chatting(&w, "anthropic", slow).await;
    let mut live = chat.send("talk slowly").await;
    live.until("text").await;
    drop(live);
    eventually("the LLM stream to be closed", WAIT, async || {
        let r = llm.requests().await;
        when(r[0]["outcome"].clone(), r[0]["outcome"] == "disconnected")
    })
    .await;
    assert_eq!(chat.transcript().await["turns"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_the_daily_token_budget_stops_a_runaway_loop_per_user() {
    let w = world_with(|o| o.chat.daily_tokens = 100).await;
    let costly = json!({ "tool_calls": [{ "name": "tools__echo", "arguments": { "text": "x" } }],
        "usage": { "input_tokens": 50, "output_tokens": 10 } });
    let (llm, chat) = chatting(&w, "openai", json!([costly, costly, costly])).await;
    let err = chat.say("loop forever").await.error().clone();
    assert_eq!(err["code"], "budget_exhausted", "{err}");
    assert!(err["message"].as_str().unwrap().contains("100"), "{err}");
    assert_eq!(
        llm.requests().await.len(),
        2,
        "stopped before the third call"
    );
    assert_eq!(chat.transcript().await["turns"], json!([]));
    // Spent for today: the next turn is refused before the model is asked.
    assert_eq!(chat.say("again").await.error()["code"], "budget_exhausted");
    assert_eq!(llm.requests().await.len(), 2);
    // The budget is Ann's: Bob's own endpoint and agent still answer.
    let bob_llm = Llm::start(json!(["Bob's answer."])).await;
    w.bob.llm("mine", "openai", &bob_llm.base_url()).await;
    w.bob.chat_settings("bob-bot", "mine").await;
    assert_eq!(
        w.bob.chat("bob-bot").await.say("hi").await.text(),
        "Bob's answer."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_a_turn_past_its_timeout_fails_hangs_up_on_the_llm_and_stores_nothing() {
    let w = world_with(|o| o.chat.turn_timeout = Duration::from_secs(2)).await;
    let (llm, chat) = chatting(&w, "openai", json!([{ "fault": "hang", "hold_ms": 60000 }])).await;
    let err = chat.say("think hard").await.error().clone();
    assert_eq!(err["code"], "turn_timeout", "{err}");
    eventually("the LLM request to be hung up", WAIT, async || {
        let r = llm.requests().await;
        when(r[0]["outcome"].clone(), r[0]["outcome"] == "disconnected")
    })
    .await;
    assert_eq!(chat.transcript().await["turns"], json!([]));
}
