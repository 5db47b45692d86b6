//! Tool calls on `/metrics`: calls made through the gateway with the official Python SDK
//! show up as counters per agent, server, tool and outcome and as latency histograms per
//! server and tool, parsed from the text exposition as Prometheus would; only an admin or
//! the scrape token sees them.

use crate::gw_setup::World;
use serde_json::json;
use std::collections::BTreeMap;
use toolbelt_gateway::GatewayConfig;
use toolbelt_model::token::TokenDigest;

const SCRAPE_TOKEN: &str = "e2e-scrape-token-0123456789";

/// One sample line of the text format: its name, labels and value.
#[derive(Debug)]
struct Line {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of an exposition (comments skipped); panics on a line Prometheus would
/// refuse, so a malformed exposition fails the test.
fn parse(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    for l in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("{l}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {l}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{l}"));
                let mut labels = BTreeMap::new();
                // Our label values hold no quotes or commas (names are slugs).
                for kv in body.split(',').filter(|kv| !kv.is_empty()) {
                    let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("{l}"));
                    let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                    labels.insert(k.to_string(), v.unwrap_or_else(|| panic!("{l}")).into());
                }
                (name.to_string(), labels)
            }
        };
        out.push(Line {
            name,
            labels,
            value,
        });
    }
    out
}

/// The value of the one sample named `name` whose labels include `want`; 0 when none.
fn value(lines: &[Line], name: &str, want: &[(&str, &str)]) -> f64 {
    let hits: Vec<_> = lines
        .iter()
        .filter(|l| l.name == name)
        .filter(|l| {
            want.iter()
                .all(|(k, v)| l.labels.get(*k).map(String::as_str) == Some(v))
        })
        .collect();
    assert!(hits.len() <= 1, "{name} {want:?} is ambiguous: {hits:?}");
    hits.first().map_or(0.0, |l| l.value)
}

async fn scrape(w: &World, token: &str) -> Vec<Line> {
    let (status, body) = w
        .admin
        .rest
        .as_token(token)
        .send("GET", "/metrics", None)
        .await;
    assert_eq!(status, 200, "{body}");
    parse(body.as_str().expect("a text body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tool_calls_are_counted_and_timed_per_agent_server_and_tool() {
    let w = World::with(GatewayConfig::default(), |o| {
        o.control.metrics_token = Some(TokenDigest::of(SCRAPE_TOKEN));
    })
    .await;
    w.ann.grant("ann-bot").server("tools", "alpha").await;
    let mut sdk = w.ann_bot.mcp("legacy").await;
    for i in 0..3 {
        let r = sdk
            .call("tools__echo", json!({ "text": format!("hi {i}") }))
            .await;
        assert_eq!(r["ok"], true, "{r}");
    }
    let r = sdk.call("tools__fail", json!({ "mode": "tool" })).await;
    assert_eq!(r["is_error"], true, "{r}");
    let r = sdk.call("tools__sleep", json!({ "ms": 60 })).await;
    assert_eq!(r["ok"], true, "{r}");
    // Reaches no tool: not a server's call, in no series.
    let r = sdk.call("tools__nope", json!({})).await;
    assert_eq!(r["ok"], false, "{r}");
    sdk.quit().await;

    let agent_id = w.ann_bot_id().await;
    let m = scrape(&w, SCRAPE_TOKEN).await;
    let calls = "toolbelt_tool_calls_total";
    let of = |tool: &'static str, outcome: &'static str| {
        [
            ("agent", "ann-bot"),
            ("agent_id", agent_id.as_str()),
            ("toolbox", "alpha"),
            ("server", "tools"),
            ("tool", tool),
            ("outcome", outcome),
        ]
    };
    assert_eq!(value(&m, calls, &of("echo", "success")), 3.0);
    assert_eq!(value(&m, calls, &of("fail", "failure")), 1.0);
    assert_eq!(value(&m, calls, &of("fail", "success")), 0.0);
    assert_eq!(value(&m, calls, &of("sleep", "success")), 1.0);
    let total: f64 = m.iter().filter(|l| l.name == calls).map(|l| l.value).sum();
    assert_eq!(total, 5.0, "the unknown tool is in no series");

    let h = "toolbelt_tool_call_duration_seconds";
    let tool = |t: &'static str| [("toolbox", "alpha"), ("server", "tools"), ("tool", t)];
    assert_eq!(value(&m, &format!("{h}_count"), &tool("echo")), 3.0);
    let bucket = |t: &'static str, le: &'static str| {
        let [a, b, c] = tool(t);
        value(&m, &format!("{h}_bucket"), &[a, b, c, ("le", le)])
    };
    assert_eq!(bucket("echo", "+Inf"), 3.0);
    // Buckets are cumulative.
    let edges = ["0.0001", "0.001", "0.01", "0.1", "1.0", "10.0", "+Inf"];
    for pair in edges.windows(2) {
        assert!(
            bucket("echo", pair[0]) <= bucket("echo", pair[1]),
            "{pair:?}"
        );
    }
    // The 60 ms sleep is in no bucket up to 50 ms, and in every one from 100 ms on unless
    // the machine stalled for a while.
    assert_eq!(bucket("sleep", "0.05"), 0.0, "60 ms is over 50 ms");
    assert_eq!(bucket("sleep", "+Inf"), 1.0);
    let sum = value(&m, &format!("{h}_sum"), &tool("sleep"));
    assert!(sum >= 0.06, "the sleep's latency: {sum} s");

    // Labels name agents and servers: only an admin or the scrape token sees them; the
    // process's own metrics stay open.
    let admin = scrape(&w, w.admin.token()).await;
    assert_eq!(value(&admin, calls, &of("echo", "success")), 3.0);
    for token in [w.ann.token(), "wrong-token", ""] {
        let m = scrape(&w, token).await;
        assert!(
            m.iter().all(|l| !l.name.starts_with("toolbelt_tool_call")),
            "{token:?} sees no tool calls"
        );
        assert!(m.iter().any(|l| l.name == "toolbelt_http_requests_total"));
    }
}

impl World {
    async fn ann_bot_id(&self) -> String {
        let a = self.ann.rest.get("/api/v1/agents/ann-bot").await;
        a["id"].as_str().unwrap().to_string()
    }
}
