//! Network faults between the control plane and a toolbox on another host (issue 13, "In
//! CI"): the DTMA runs in its own network namespace, reached over a veth pair. A partition
//! makes the toolbox `unresponsive` and its tools fail at once (the unreachable code, not a
//! call timeout); healing brings it back with its server still the same process and every
//! call audited; on a link losing 5 % of its packets each way, calls still succeed.

use serde_json::{Value, json};
use std::time::Duration;
use toolbelt_e2e::eventually::eventually;
use toolbelt_e2e::netns::Netns;
use toolbelt_e2e::world::Caller;
use toolbelt_e2e::{DtmaProc, Server};
use toolbelt_testkit::fixture::fixture_bin;

const ADMIN: &str = "tbu_net-faults-admin-0000000";
const WAIT: Duration = Duration::from_secs(60);

fn echoed(r: &Value, text: &str) -> bool {
    r["ok"] == true && r["is_error"] == false && r["text"].as_str().unwrap_or("").contains(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_toolbox_fails_fast_comes_back_whole_and_a_lossy_link_still_serves() {
    let net = Netns::create();
    let dir = tempfile::tempdir().unwrap();
    let allow = format!("{},127.0.0.0/8", net.cidr());
    let cp = Server::serve_at(
        &net.host_ip,
        &dir.path().join("cp"),
        &[
            ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN),
            ("TOOLBELT_HEARTBEAT_MS", "1000"),
            ("TOOLBELT_DTMA_ALLOW", &allow),
        ],
    )
    .await;
    let admin = Caller::new(&cp.url, ADMIN);
    let far = admin.toolbox("far").shared().await;
    let join = far.join_token().await;
    let _dtma = DtmaProc::start_in(
        &net,
        &cp.url,
        Some(&join),
        &dir.path().join("far"),
        "process",
        &[],
    )
    .await;
    far.until("active").await;
    admin
        .catalog(
            json!({ "slug": "fx", "transport": "stdio", "source": { "type": "package",
            "manager": "binary", "package": "fixture-mcp",
            "command": [fixture_bin().display().to_string()] } }),
        )
        .await;
    let server = admin.deploy("tools", "fx").on("far").await;
    let before = server.running().await;
    let bot = admin.agent("bot").await;
    admin.grant(&bot.name).server("tools", "far").await;
    let mut sdk = bot.mcp("legacy").await;
    let mut calls = 0;
    for i in 0..5 {
        calls += 1;
        let r = sdk
            .call("tools__echo", json!({ "text": format!("plain {i}") }))
            .await;
        assert!(echoed(&r, &format!("plain {i}")), "{r}");
    }

    // Cut: no packet crosses. The toolbox goes unresponsive and the gateway says so at once.
    net.partition();
    far.until("unresponsive").await;
    let r = eventually("the gateway to refuse at once", WAIT, async || {
        calls += 1;
        let r = sdk.call("tools__echo", json!({ "text": "cut" })).await;
        (r["code"] == -32005).then_some(r)
    })
    .await;
    assert!(
        r["message"].as_str().unwrap().contains("unresponsive"),
        "{r}"
    );

    // Healed: the same server process answers again; nothing was restarted.
    net.heal();
    far.until("active").await;
    let after = server.running().await;
    assert_eq!(
        after["instance"], before["instance"],
        "the server kept running through the partition"
    );
    eventually("calls to succeed again", WAIT, async || {
        calls += 1;
        let r = sdk.call("tools__echo", json!({ "text": "back" })).await;
        echoed(&r, "back")
    })
    .await;

    // A lossy link (5 % of packets each way): TCP retransmits, every call succeeds.
    net.lossy(0.05);
    for i in 0..40 {
        calls += 1;
        let r = sdk
            .call("tools__echo", json!({ "text": format!("lossy {i}") }))
            .await;
        assert!(
            echoed(&r, &format!("lossy {i}")),
            "call {i} on a lossy link: {r}"
        );
    }
    assert!(
        net.dropped() > 0,
        "the link lost packets while the calls went through"
    );
    net.heal();

    // Every call is in the audit log, and the chain verifies.
    let audited = eventually("every call audited", WAIT, async || {
        let v = admin
            .rest
            .get("/api/v1/audit?agent=bot&action=tool.call&limit=500")
            .await;
        let n = v["items"].as_array().map_or(0, Vec::len);
        if n == calls {
            Ok(n)
        } else {
            Err(format!("{n} of {calls}"))
        }
    })
    .await;
    assert_eq!(audited, calls);
    let verify = admin.rest.get("/api/v1/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
    sdk.quit().await;
    cp.stop();
}
