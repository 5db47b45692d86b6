//! Prompts and resource templates are pinned and scanned like tools (issue 13.2): a
//! changed one, or one that appears after the server's first discovery, is hidden from the
//! agent (and `prompts/get` on it fails as a call of a held tool does) until an admin
//! approves it through the same tool-changes API, where its `kind` says what it is.
//! Before the fix the changed prompt stayed listed and answered.

use crate::gw_setup::{WAIT, World};
use serde_json::{Value, json};
use toolbelt_e2e::eventually::{eventually, when};
use toolbelt_e2e::sdk::Sdk;
use toolbelt_gateway::GatewayConfig;

const TEMPLATE: &str = "fixture://greeting/{name}";
/// As the agent sees it: qualified with its server's prefix.
const SHOWN: &str = "toolbelt://tools/fixture://greeting/{name}";

async fn prompt_names(ann: &mut Sdk) -> Vec<String> {
    let r = ann.send(json!({ "op": "list_prompts" })).await;
    let p = r["prompts"].as_array().unwrap_or_else(|| panic!("{r}"));
    p.iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

async fn template_uris(ann: &mut Sdk) -> Vec<String> {
    let r = ann.send(json!({ "op": "list_templates" })).await;
    let t = r["templates"].as_array().unwrap_or_else(|| panic!("{r}"));
    t.iter()
        .map(|t| t["uriTemplate"].as_str().unwrap().to_string())
        .collect()
}

async fn until_prompt(ann: &mut Sdk, name: &str, listed: bool) {
    let what = format!("prompt {name} {}", if listed { "listed" } else { "hidden" });
    eventually(&what, WAIT, async || {
        let names = prompt_names(ann).await;
        when(names.clone(), names.contains(&name.to_string()) == listed)
    })
    .await;
}

async fn until_template(ann: &mut Sdk, listed: bool) {
    let what = format!("template {}", if listed { "listed" } else { "hidden" });
    eventually(&what, WAIT, async || {
        let uris = template_uris(ann).await;
        when(uris.clone(), uris.contains(&SHOWN.to_string()) == listed)
    })
    .await;
}

/// The pending change of `kind` named `name` (a template's `uriTemplate`).
async fn pending(w: &World, kind: &str, name: &str) -> Value {
    eventually(
        &format!("a pending {kind} change of {name}"),
        WAIT,
        async || {
            let list = w
                .as_admin("GET", "/api/v1/tools/changes", Value::Null)
                .await;
            let found = list
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["kind"] == kind && c["tool"] == name && c["status"] == "pending");
            found.cloned().ok_or(list)
        },
    )
    .await
}

async fn approve(w: &World, change: &Value) {
    let id = change["id"].as_str().unwrap();
    let r = w
        .as_admin(
            "POST",
            &format!("/api/v1/tools/changes/{id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(r["status"], "approved", "{r}");
}

async fn greet(ann: &mut Sdk, name: &str) -> Value {
    ann.send(json!({ "op": "get_prompt", "name": name, "args": { "name": "Ann" } }))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changed_and_new_prompts_and_templates_are_held_until_approved() {
    let w = World::new(GatewayConfig::default()).await;
    w.ann.grant("ann-bot").server("tools", "alpha").await;
    let mut ann = w.ann_bot.mcp("legacy").await;
    // First discovery: pinned on sight, nothing held.
    assert_eq!(prompt_names(&mut ann).await, vec!["tools__greet"]);
    assert_eq!(template_uris(&mut ann).await, vec![SHOWN]);
    assert_eq!(
        greet(&mut ann, "tools__greet").await["messages"][0]["content"]["text"],
        "Hello, Ann!"
    );

    // The prompt's own description stays clean; the instruction hides in an argument's.
    let r = ann
        .call("tools__rug_pull", json!({ "mode": "prompt_arg" }))
        .await;
    assert_eq!(r["text"], "tools changed: prompt_arg", "{r}");
    until_prompt(&mut ann, "tools__greet", false).await;
    let held = greet(&mut ann, "tools__greet").await;
    assert_eq!(
        held["code"], -32602,
        "a held prompt answers nothing: {held}"
    );
    let change = pending(&w, "prompt", "greet").await;
    let fields: Vec<&str> = change["diff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["arguments"], "{change}");
    assert!(
        change["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().starts_with("hidden-instruction")),
        "the arguments' descriptions are scanned: {change}"
    );
    approve(&w, &change).await;
    until_prompt(&mut ann, "tools__greet", true).await;
    assert_eq!(
        greet(&mut ann, "tools__greet").await["messages"][0]["content"]["text"],
        "Hello, Ann!"
    );

    // A prompt that appears after the first discovery waits for an admin.
    ann.call("tools__rug_pull", json!({ "mode": "prompt_add" }))
        .await;
    let change = pending(&w, "prompt", "farewell").await;
    assert!(change["old_hash"].is_null(), "held as new: {change}");
    assert!(
        !prompt_names(&mut ann)
            .await
            .contains(&"tools__farewell".into())
    );
    approve(&w, &change).await;
    until_prompt(&mut ann, "tools__farewell", true).await;

    // A changed template is held too, and no URI resolves through it meanwhile.
    let uri = "toolbelt://tools/fixture://greeting/Ann";
    let rd = ann.send(json!({ "op": "read_resource", "uri": uri })).await;
    assert_eq!(rd["contents"][0]["text"], "Hello, Ann!", "{rd}");
    ann.call("tools__rug_pull", json!({ "mode": "template" }))
        .await;
    until_template(&mut ann, false).await;
    let rd = ann.send(json!({ "op": "read_resource", "uri": uri })).await;
    assert_eq!(rd["ok"], false, "read through a held template: {rd}");
    let change = pending(&w, "resource_template", TEMPLATE).await;
    approve(&w, &change).await;
    until_template(&mut ann, true).await;
    let rd = ann.send(json!({ "op": "read_resource", "uri": uri })).await;
    assert_eq!(rd["contents"][0]["text"], "Hello, Ann!", "{rd}");

    // Held and approved as tools are, audited under their own target kind.
    for (action, kind) in [
        ("tool.changed", "prompt"),
        ("tool.held", "prompt"),
        ("tool.approve", "prompt"),
        ("tool.changed", "resource"),
    ] {
        let path = format!("/api/v1/audit?action={action}&limit=1000");
        let audit = w.as_admin("GET", &path, Value::Null).await;
        let items = audit["items"].as_array().unwrap();
        assert!(
            items.iter().any(|e| e["target_kind"] == kind),
            "no {action} of a {kind}: {audit}"
        );
    }
    ann.quit().await;
}
