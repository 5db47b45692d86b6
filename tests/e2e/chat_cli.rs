//! `toolbelt chat` end to end: the real CLI, an agent with a granted fixture server on a
//! toolbox, the scripted LLM on loopback (allowed by the SSRF allow-list). One turn calls a
//! tool through the gateway as the agent; the transcript (`-o json`) and the audit log
//! (the agent's `tool.call`, marked `via: chat`) show it.

use crate::gw_setup::World;
use serde_json::json;
use toolbelt_e2e::Cli;
use toolbelt_e2e::llm::{self, Llm};
use toolbelt_gateway::GatewayConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_chats_and_the_tool_call_goes_through_the_gateway_as_the_agent() {
    let w = World::new(GatewayConfig {
        ssrf_allow: toolbelt_net::ssrf::AllowList::parse("127.0.0.1/32").unwrap(),
        ..GatewayConfig::default()
    })
    .await;
    w.ann.grant("ann-bot").server("tools", "alpha").await;
    let model = Llm::start(json!([
        llm::call("tools__echo", json!({ "text": "hi from the tool" })),
        llm::text("The tool said hi."),
    ]))
    .await;
    let config = tempfile::tempdir().unwrap();
    let url = w.plane.url.clone();
    let token = w.ann.token().to_string();
    let base = model.base_url();
    let cfg = config.path().join("config.json");
    let ran = tokio::task::spawn_blocking(move || {
        let cli = Cli {
            url: &url,
            token: Some(&token),
            config: cfg,
        };
        cli.ok(&[
            "llm",
            "add",
            "fake",
            "--kind",
            "openai",
            "--base-url",
            &base,
            "--model",
            "m",
        ]);
        cli.ok(&[
            "agent",
            "update",
            "ann-bot",
            "--llm",
            "fake",
            "--max-steps",
            "3",
        ]);
        // Bad input is a usage error or the server's field error, nothing half-set.
        let bad = cli.run(&["agent", "update", "ann-bot", "--max-steps", "0"]);
        assert_eq!(bad.code, 1, "{}", bad.stderr);
        assert!(bad.stderr.contains("max_steps"), "{}", bad.stderr);
        cli.ok(&["chat", "ann-bot", "-m", "say hi", "-o", "json"])
    })
    .await
    .unwrap();
    let t = ran.json();
    assert_eq!(t["agent"], "ann-bot");
    let turn = &t["turns"][0];
    assert_eq!(turn["user"], "say hi");
    assert_eq!(turn["answer"], "The tool said hi.");
    let call = &turn["tool_calls"][0];
    assert_eq!(call["name"], "tools__echo");
    assert_eq!(call["is_error"], false, "{call}");
    assert!(
        call["text"].as_str().unwrap().contains("hi from the tool"),
        "{call}"
    );
    assert!(ran.stderr.contains("chat cht_"), "{}", ran.stderr);
    // The model got the tool's result back, and nothing it was sent was refused.
    assert!(
        model.refused().await.is_empty(),
        "{:?}",
        model.refused().await
    );
    // The gateway audited the call under the agent, as a chat turn.
    let a = w
        .ann
        .rest
        .get("/api/v1/audit?agent=ann-bot&action=tool.call")
        .await;
    let item = &a["items"][0];
    assert_eq!(item["actor_kind"], "agent", "{a}");
    assert_eq!(item["outcome"], "success");
    let detail: serde_json::Value =
        serde_json::from_str(item["detail"].as_str().unwrap_or("{}")).unwrap();
    assert_eq!(detail["via"], "chat", "{detail}");
    assert!(detail["chat"].as_str().unwrap().starts_with("cht_"));
}
