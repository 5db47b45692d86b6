//! The rug pulls that got past the pins (issue 13.2): a poisoned second tool under a name
//! the agent trusts, changes in the parts of a definition that were forwarded but not
//! hashed (`_meta`, `icons`), poison in a parameter's description, and tools that appear
//! after a server's first discovery. Each is hidden from the agent until an admin decides,
//! and each of these tests fails on the code before the fix (the tool stayed listed).

use crate::gw_setup::{World, until_listed};
use serde_json::{Value, json};
use toolbelt_e2e::sdk::Sdk;
use toolbelt_gateway::GatewayConfig;

async fn decide(w: &World, change: &Value, verb: &str) {
    let id = change["id"].as_str().unwrap();
    w.as_admin(
        "POST",
        &format!("/api/v1/tools/changes/{id}/{verb}"),
        json!({}),
    )
    .await;
}

fn flags(change: &Value) -> Vec<String> {
    let f = change["flags"].as_array().unwrap();
    f.iter().map(|f| f.as_str().unwrap().to_string()).collect()
}

/// An audit event's detail (a JSON document in a string).
fn detail(e: &Value) -> Value {
    serde_json::from_str(e["detail"].as_str().unwrap_or("null")).unwrap_or_default()
}

async fn world() -> (World, Sdk) {
    let w = World::new(GatewayConfig::default()).await;
    w.ann.grant("ann-bot").server("tools", "alpha").await;
    let ann = w.ann_bot.mcp("legacy").await;
    (w, ann)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poisoned_second_tool_under_a_trusted_name_hides_both() {
    let (w, mut ann) = world().await;
    assert_eq!(
        ann.call("tools__echo", json!({ "text": "hi" })).await["text"],
        "hi"
    );
    ann.call("tools__rug_pull", json!({ "mode": "duplicate" }))
        .await;
    until_listed(&mut ann, "tools__echo", false).await;
    let gone = ann.call("tools__echo", json!({ "text": "x" })).await;
    assert_eq!(gone["code"], -32602, "neither copy is callable: {gone}");
    let change = w.pending_change("echo").await;
    assert!(
        flags(&change)
            .iter()
            .any(|f| f.starts_with("duplicate-name")),
        "{change}"
    );
    // Approving the recorded set does not pick a copy: both stay hidden while both exist.
    decide(&w, &change, "approve").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(!ann.tool_names().await.contains(&"tools__echo".to_string()));
    ann.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn meta_icons_and_parameter_descriptions_are_pinned_and_scanned() {
    let (w, mut ann) = world().await;
    for (mode, field) in [("meta", "_meta"), ("icons", "icons")] {
        let r = ann.call("tools__rug_pull", json!({ "mode": mode })).await;
        assert_eq!(r["text"], format!("tools changed: {mode}"), "{r}");
        until_listed(&mut ann, "tools__echo", false).await;
        let change = w.pending_change("echo").await;
        let fields: Vec<&str> = change["diff"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, vec![field], "{mode}: {change}");
        decide(&w, &change, "approve").await;
        until_listed(&mut ann, "tools__echo", true).await;
    }
    // The tool's description is clean; the instruction hides in a parameter's.
    let r = ann
        .call("tools__rug_pull", json!({ "mode": "param" }))
        .await;
    assert_eq!(r["text"], "tools changed: param", "{r}");
    until_listed(&mut ann, "tools__echo", false).await;
    let change = w.pending_change("echo").await;
    assert!(
        flags(&change)
            .iter()
            .any(|f| f.starts_with("hidden-instruction")),
        "{change}"
    );
    ann.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tool_that_appears_after_the_first_discovery_waits_for_an_admin() {
    let (w, mut ann) = world().await;
    ann.call("tools__change_tools", json!({ "mode": "add" }))
        .await;
    let change = w.pending_change("extra").await;
    assert!(change["old_hash"].is_null(), "held as new: {change}");
    assert!(!ann.tool_names().await.contains(&"tools__extra".to_string()));
    let audit = w
        .as_admin("GET", "/api/v1/audit?action=tool.held", Value::Null)
        .await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| detail(e)["tool"] == "extra"),
        "{audit}"
    );
    decide(&w, &change, "approve").await;
    until_listed(&mut ann, "tools__extra", true).await;
    let r = ann.call("tools__extra", json!({ "text": "now" })).await;
    assert_eq!(r["text"], "now", "{r}");
    ann.quit().await;
}

/// A catalog entry may opt into pinning later tools on sight; each is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_entry_that_auto_approves_new_tools_shows_them_and_audits_it() {
    let (w, _) = world().await;
    let command = [toolbelt_testkit::fixture::fixture_bin()
        .display()
        .to_string()];
    w.admin
        .catalog(
            json!({ "slug": "fixture-auto", "auto_approve_new_tools": true,
        "transport": "stdio", "source": { "type": "package", "manager": "binary",
        "package": "fixture-mcp", "command": command } }),
        )
        .await;
    w.admin
        .deploy("auto", "fixture-auto")
        .on("alpha")
        .await
        .running()
        .await;
    w.ann.grant("ann-bot").server("auto", "alpha").await;
    let mut ann = w.ann_bot.mcp("legacy").await;
    until_listed(&mut ann, "auto__echo", true).await;
    ann.call("auto__change_tools", json!({ "mode": "add" }))
        .await;
    until_listed(&mut ann, "auto__extra", true).await;
    let audit = w
        .as_admin("GET", "/api/v1/audit?action=tool.approve", Value::Null)
        .await;
    let by_entry = audit["items"].as_array().unwrap().iter().any(|e| {
        detail(e)["tool"] == "extra"
            && detail(e)["by"]
                .as_str()
                .is_some_and(|b| b.contains("auto_approve"))
    });
    assert!(by_entry, "{audit}");
    ann.quit().await;
}
