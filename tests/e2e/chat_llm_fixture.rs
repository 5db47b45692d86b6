//! The scripted LLM the chat tests drive (`tests/python/llm`) speaks the real wire: the
//! official `openai` and `anthropic` Python SDKs consume its plain and streamed replies, tool
//! calls included, and its faults fail them as a real outage would. And the harness handle
//! scripts it and reads back what was sent.

use serde_json::{Value, json};
use toolbelt_e2e::eventually::{WAIT, eventually, when};
use toolbelt_e2e::llm::{self, Llm};
use toolbelt_e2e::mcp::sse_messages;
use toolbelt_e2e::sdk::python;

#[tokio::test]
async fn the_official_openai_and_anthropic_sdks_consume_the_scripted_llm() {
    let out = tokio::process::Command::new(python())
        .arg(llm::fixture_dir().join("selftest.py"))
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Every group ran: the SDK checks of both protocols each left their PASS lines.
    for api in ["openai:", "anthropic:", "select=turn", "azure:"] {
        let passed = stdout
            .lines()
            .filter(|l| l.starts_with(&format!("PASS {api}")))
            .count();
        assert!(passed >= 1, "no passing {api} checks:\n{stdout}");
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[tokio::test]
async fn the_harness_scripts_the_llm_and_reads_back_what_it_was_sent() {
    let llm = Llm::start(json!([
        llm::calls(&[
            ("a__echo", json!({ "text": "x" })),
            ("b__add", json!({ "a": 1 }))
        ]),
        llm::text("all done"),
    ]))
    .await;
    let http = toolbelt_net::http::client();
    let tools = json!([{ "type": "function", "function": { "name": "a__echo",
        "parameters": { "type": "object" } } }]);
    let sse = http
        .post(format!("{}/chat/completions", llm.base_url()))
        .json(&json!({ "model": "m", "stream": true, "tools": tools,
            "messages": [{ "role": "user", "content": "go" }] }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let chunks = sse_messages(&sse);
    let names: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["name"].as_str())
        .collect();
    assert_eq!(names, ["a__echo", "b__add"], "{sse}");
    assert!(sse.trim_end().ends_with("data: [DONE]"), "{sse}");

    // The second step answers the tool results; an answer to no call is refused as the real
    // API refuses it, and recorded as such.
    let plain = |messages: Value| {
        http.post(format!("{}/messages", llm.base_url()))
            .header("anthropic-version", "2023-06-01")
            .json(&json!({ "model": "m", "max_tokens": 50, "messages": messages }))
            .send()
    };
    let bad = plain(json!([{ "role": "user", "content": [
        { "type": "tool_result", "tool_use_id": "toolu_nope", "content": "x" }] }]))
    .await
    .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let ok: Value = plain(json!([{ "role": "user", "content": "go" }]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok["content"][0]["text"], "all done", "{ok}");

    // The fixture records a reply's outcome once it has written it, so the client can hold
    // the answer a moment before the record says `replied`.
    let seen = eventually("the three requests recorded", WAIT, async || {
        let seen = llm.requests().await;
        let outcomes: Vec<String> = seen
            .iter()
            .map(|r| r["outcome"].as_str().unwrap_or("").to_string())
            .collect();
        when(seen, outcomes == ["replied", "invalid", "replied"])
    })
    .await;
    assert_eq!(llm::offered_tools(&seen[0]), ["a__echo"]);
    assert_eq!(llm.refused().await.len(), 1);
    assert_eq!(
        llm::tool_results(&seen[1]),
        [("toolu_nope".to_string(), "x".to_string())]
    );
}
