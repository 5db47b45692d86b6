//! Everything an agent does through the gateway is audited, not only tool calls: each
//! `prompts/get`, `resources/read` and `completion/complete` (through the official
//! Python SDK) leaves one event naming the agent, the server, the target and the
//! outcome, for refusals and failures too.

use crate::gw_setup::World;
use serde_json::{Value, json};
use toolbelt_gateway::GatewayConfig;

/// Ann's agent's events of `action`, oldest first, with their detail parsed.
async fn events(w: &World, action: &str) -> Vec<Value> {
    let v = w
        .as_ann(
            "GET",
            &format!("/api/v1/audit?agent=ann-bot&action={action}&limit=100"),
            Value::Null,
        )
        .await;
    let mut items: Vec<Value> = v["items"].as_array().unwrap().clone();
    items.reverse();
    for e in &mut items {
        e["detail"] = serde_json::from_str(e["detail"].as_str().unwrap()).unwrap();
    }
    items
}

fn ends(e: &Value, outcome: &str, server: Option<&str>) {
    assert_eq!(e["actor_kind"], "agent", "{e}");
    assert!(e["actor_id"].as_str().unwrap().starts_with("agt_"), "{e}");
    assert_eq!(e["outcome"], outcome, "{e}");
    assert_eq!(e["detail"]["server_name"].as_str(), server, "{e}");
    if outcome != "success" {
        assert!(e["detail"]["error"].is_string(), "why it failed: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prompts_resources_and_completions_are_audited_like_tool_calls() {
    let w = World::new(GatewayConfig::default()).await;
    w.ann.grant("ann-bot").server("tools", "alpha").await;
    let mut ann = w.ann_bot.mcp("legacy").await;
    let ok = ann
        .send(json!({ "op": "get_prompt", "name": "tools__greet", "args": { "name": "Ann" } }))
        .await;
    assert_eq!(ok["ok"], true, "{ok}");
    let unknown = ann
        .send(json!({ "op": "get_prompt", "name": "tools__nope", "args": {} }))
        .await;
    assert_eq!(unknown["code"], -32602, "{unknown}");
    // The fixture refuses a greeting without a name: the upstream's own error.
    let failed = ann
        .send(json!({ "op": "get_prompt", "name": "tools__greet", "args": {} }))
        .await;
    assert_eq!(failed["ok"], false, "{failed}");
    let read = ann
        .send(json!({ "op": "read_resource", "uri": "fixture://hello" }))
        .await;
    assert_eq!(read["contents"][0]["text"], "hello", "{read}");
    let unowned = ann
        .send(json!({ "op": "read_resource", "uri": "nowhere://x" }))
        .await;
    assert_eq!(unowned["ok"], false, "{unowned}");
    let c = ann
        .send(
            json!({ "op": "complete", "ref": { "type": "ref/prompt", "name": "tools__greet" },
        "argument": { "name": "name", "value": "A" } }),
        )
        .await;
    assert_eq!(c["ok"], true, "{c}");
    let c = ann
        .send(
            json!({ "op": "complete", "ref": { "type": "ref/prompt", "name": "tools__nope" },
        "argument": { "name": "name", "value": "A" } }),
        )
        .await;
    assert_eq!(c["ok"], false, "{c}");
    ann.quit().await;

    let server = w
        .as_admin("GET", "/api/v1/servers?toolbox=alpha", Value::Null)
        .await;
    let server_id = server["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "tools")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let prompts = events(&w, "prompt.get").await;
    assert_eq!(prompts.len(), 3, "{prompts:?}");
    ends(&prompts[0], "success", Some("tools"));
    assert_eq!(prompts[0]["target_kind"], "prompt");
    assert_eq!(prompts[0]["target_id"], format!("{server_id}/greet"));
    assert_eq!(prompts[0]["detail"]["prompt"], "tools__greet");
    ends(&prompts[1], "denied", None);
    assert_eq!(prompts[1]["detail"]["prompt"], "tools__nope");
    ends(&prompts[2], "failure", Some("tools"));

    let reads = events(&w, "resource.read").await;
    assert_eq!(reads.len(), 2, "{reads:?}");
    ends(&reads[0], "success", Some("tools"));
    assert_eq!(reads[0]["target_kind"], "resource");
    assert_eq!(
        reads[0]["target_id"],
        format!("{server_id}/fixture://hello")
    );
    ends(&reads[1], "denied", None);
    assert_eq!(reads[1]["detail"]["uri"], "nowhere://x");

    let completions = events(&w, "completion.complete").await;
    assert_eq!(completions.len(), 2, "{completions:?}");
    ends(&completions[0], "success", Some("tools"));
    assert_eq!(completions[0]["target_id"], format!("{server_id}/greet"));
    assert_eq!(completions[0]["detail"]["argument"], "name");
    ends(&completions[1], "denied", None);
}
