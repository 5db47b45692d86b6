//! Bounded memory: an upstream reply over `max_reply_bytes` is not taken in; the call
//! fails with `reply_too_large` (-32008, `data.limit_bytes`), on the direct path and
//! through rmcp's client alike, and is audited as a failure. Smaller replies pass.

use crate::gw_setup::World;
use serde_json::{Value, json};
use toolbelt_gateway::GatewayConfig;

async fn refuses_big_replies(direct_upstream: bool) {
    let w = World::new(GatewayConfig {
        max_reply_bytes: 64 * 1024,
        direct_upstream,
        ..GatewayConfig::default()
    })
    .await;
    w.ann.grant("ann-bot").server("tools", "alpha").await;
    let mut ann = w.ann_bot.mcp("legacy").await;
    let small = ann
        .call("tools__echo", json!({ "text": "x".repeat(1000) }))
        .await;
    assert_eq!(small["ok"], true, "{small}");
    // Echo answers the text twice (content and structured): ~200 KiB.
    let big = ann
        .call("tools__echo", json!({ "text": "x".repeat(100 * 1024) }))
        .await;
    assert_eq!(big["code"], -32008, "{big}");
    assert_eq!(big["data"]["limit_bytes"], 64 * 1024, "{big}");
    assert!(
        big["message"]
            .as_str()
            .unwrap()
            .contains("over the gateway's limit"),
        "{big}"
    );
    let after = ann
        .call("tools__echo", json!({ "text": "still fine" }))
        .await;
    assert_eq!(after["text"], "still fine", "the session survives: {after}");
    ann.quit().await;
    let failures = w
        .as_ann(
            "GET",
            "/api/v1/audit?agent=ann-bot&action=tool.call&outcome=failure",
            Value::Null,
        )
        .await;
    let items = failures["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{failures}");
    assert!(
        items[0]["detail"].as_str().unwrap().contains("-32008"),
        "{failures}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upstream_reply_over_the_limit_fails_the_call_direct_path() {
    refuses_big_replies(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upstream_reply_over_the_limit_fails_the_call_through_rmcp() {
    refuses_big_replies(false).await;
}
