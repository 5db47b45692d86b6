//! Prefix collisions (issue 13, item 2): one agent sees `mine` on toolbox `alpha`, `mine`
//! on toolbox `own` and a server named `mine-alpha`. Two servers named `mine` get
//! toolbox-qualified prefixes, and `mine` on `alpha` would become `mine-alpha` — the other
//! server's own name. Every tool must still reach exactly its server: each fixture answers
//! `whoami` with its own label, so a call that went to the wrong server shows.

use crate::gw_setup::{WAIT, World};
use serde_json::json;
use toolbelt_e2e::eventually::eventually;
use toolbelt_gateway::GatewayConfig;
use toolbelt_testkit::fixture::fixture_bin;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_prefix_that_is_another_servers_name_never_shadows_it() {
    let w = World::new(GatewayConfig::default()).await;
    let bin = fixture_bin().display().to_string();
    for (slug, label) in [
        ("fixture-mine-alpha", "mine on alpha"),
        ("fixture-named-mine-alpha", "mine-alpha on own"),
    ] {
        w.admin
            .catalog(json!({ "slug": slug, "transport": "stdio",
                "source": { "type": "package", "manager": "binary", "package": "fixture-mcp",
                    "command": [bin, "--label", label] } }))
            .await;
    }
    // `mine` on `own` (unlabelled) is the world's; the two others are added beside it.
    let shared = w
        .admin
        .deploy("mine", "fixture-mine-alpha")
        .on("alpha")
        .await;
    let named = w
        .ann
        .deploy("mine-alpha", "fixture-named-mine-alpha")
        .on("own")
        .await;
    shared.running().await;
    named.running().await;
    for (server, toolbox) in [("mine", "alpha"), ("mine", "own"), ("mine-alpha", "own")] {
        w.ann.grant("ann-bot").server(server, toolbox).await;
    }
    let mut sdk = w.ann_bot.mcp("legacy").await;
    let names = eventually("three whoami tools listed", WAIT, async || {
        let names = sdk.tool_names().await;
        let whoami: Vec<String> = names
            .iter()
            .filter(|n| n.ends_with("__whoami"))
            .cloned()
            .collect();
        if whoami.len() == 3 {
            Ok(names)
        } else {
            Err(names)
        }
    })
    .await;
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(unique, names, "no name is listed twice");

    let mut answered = std::collections::BTreeMap::new();
    for n in names.iter().filter(|n| n.ends_with("__whoami")) {
        let r = sdk.call(n, json!({})).await;
        assert_eq!(r["ok"], true, "{n}: {r}");
        let label = r["structured"]["label"].as_str().unwrap_or("mine on own");
        answered.insert(label.to_string(), n.clone());
    }
    assert_eq!(
        answered.len(),
        3,
        "each server answers under its own name: {answered:?}"
    );
    // The server named `mine-alpha` keeps its name; `mine` on `alpha` gets another.
    assert_eq!(answered["mine-alpha on own"], "mine-alpha__whoami");
    assert_eq!(answered["mine on own"], "mine-own__whoami");
    let made = &answered["mine on alpha"];
    assert!(
        made.starts_with("mine-alpha-") && made.ends_with("__whoami"),
        "{made}"
    );
    sdk.quit().await;
}
