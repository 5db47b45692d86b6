//! A DTMA's `advertise_url` is an address the control plane calls and whose answers it
//! relays (deploys, logs, stats, tool calls), so a member who can join a toolbox must not
//! be able to point it at the cloud's metadata service or a private host. Refused at join
//! (the join token stays unused) and at every heartbeat (the stored address stays), and a
//! name that resolves to a refused address is refused when the control plane connects.

use serde_json::{Value, json};
use std::time::Duration;
use toolbelt_dtma::DtmaOptions;
use toolbelt_e2e::plane::Plane;
use toolbelt_model::toolbox::ToolboxKind;
use toolbelt_testkit::fixture::fixture_bin;

/// What an attacker would report: the metadata service in each spelling a URL parser
/// accepts, a private host, IPv6 forms tunnelling to IPv4, and a crafted query/fragment.
const REFUSED: &[&str] = &[
    "http://169.254.169.254/latest/meta-data/?",
    "http://169.254.169.254",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:a9fe:a9fe::]/",
    "http://10.0.0.7:7700",
    "http://127.0.0.1:7700/?x=",
    "http://127.0.0.1:7700/#",
    "http://user:pw@127.0.0.1:7700",
];

async fn post(url: &str, bearer: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = toolbelt_net::http::client().post(url).json(&body);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn field_of(v: &Value) -> &str {
    v["errors"][0]["field"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metadata_private_and_crafted_advertise_urls_are_refused_at_join_and_heartbeat() {
    let plane = Plane::start(Duration::from_millis(300)).await;
    let (_, join) = plane.toolbox("evil").await;
    let join_url = format!("{}/api/v1/dtma/join", plane.url);
    for bad in REFUSED {
        let (s, v) = post(
            &join_url,
            None,
            json!({ "join_token": join,
            "advertise_url": bad, "runtime": "process", "version": "x" }),
        )
        .await;
        assert_eq!((s, field_of(&v)), (422, "advertise_url"), "{bad}: {v}");
    }

    // The token was not spent on the refused attempts: a DTMA on loopback joins with it.
    let dir = tempfile::tempdir().unwrap();
    let mut opts = DtmaOptions::new(&plane.url, dir.path().join("dtma"));
    opts.join_token = Some(join);
    opts.runtime = Some(ToolboxKind::Process);
    let dtma = toolbelt_dtma::start(opts).await.unwrap();
    let tb = plane
        .wait_toolbox("evil", "active", Duration::from_secs(20))
        .await;
    let good = format!("http://{}", dtma.addr);
    assert_eq!(tb["dtma_url"], good.as_str(), "{tb}");

    // A heartbeat cannot move it there later: refused, and the stored address is kept.
    let cred: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("dtma/credential.json")).unwrap())
            .unwrap();
    let cred = cred["credential"].as_str().unwrap();
    let beat_url = format!("{}/api/v1/dtma/heartbeat", plane.url);
    for bad in REFUSED {
        let report = json!({ "version": "test", "advertise_url": bad,
            "runtime": { "kind": "process", "available": true, "detail": null },
            "system": { "cpu_percent": 0.0, "load1": 0.0, "mem_used_bytes": 0,
                "mem_total_bytes": 0, "disk_used_bytes": 0, "disk_total_bytes": 0,
                "dtma_rss_bytes": 0 },
            "servers": [] });
        let (s, v) = post(&beat_url, Some(cred), report).await;
        assert_eq!((s, field_of(&v)), (422, "advertise_url"), "{bad}: {v}");
    }
    let (_, tb) = plane.api("GET", "/api/v1/toolboxes/evil", None).await;
    assert_eq!(tb["dtma_url"], good.as_str(), "{tb}");
}

/// With loopback not on the allow-list, a DTMA advertising `localhost` passes the URL
/// check (a name, not an address) but the control plane's client refuses it when the name
/// resolves: its logs and stats are not fetched, and the error names the guard.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dtma_name_resolving_to_a_refused_address_is_not_called() {
    let allow = toolbelt_net::ssrf::AllowList::parse("10.0.0.0/8").unwrap();
    let plane = Plane::start_with(Duration::from_millis(300), |o| {
        o.outbound.dtma = toolbelt_net::dtma_address::DtmaAddresses::allowing(allow);
    })
    .await;
    let (_, join) = plane.toolbox("named").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = DtmaOptions::new(&plane.url, dir.path().join("dtma"));
    opts.join_token = Some(join);
    opts.runtime = Some(ToolboxKind::Process);
    opts.listen = format!("127.0.0.1:{port}").parse().unwrap();
    opts.advertise_url = Some(format!("http://localhost:{port}"));
    let _dtma = toolbelt_dtma::start(opts).await.unwrap();
    plane
        .wait_toolbox("named", "active", Duration::from_secs(20))
        .await;

    let fx = fixture_bin().display().to_string();
    plane
        .catalog(
            json!({ "slug": "fx", "source": { "type": "package", "manager": "binary",
            "package": "fixture-mcp", "command": [fx] }, "transport": "stdio" }),
        )
        .await;
    plane
        .ok(
            "POST",
            "/api/v1/servers",
            json!({ "name": "fx", "catalog": "fx", "toolbox": "named" }),
        )
        .await;
    // The DTMA pulls its desired set itself (its own heartbeat), so the server runs…
    plane
        .wait_server("fx", "named", "running", Duration::from_secs(30), |v| {
            v["status"] == "running"
        })
        .await;
    // …but nothing the control plane would fetch from it is fetched.
    for path in ["logs", "stats"] {
        let (s, v) = plane
            .api(
                "GET",
                &format!("/api/v1/servers/fx/{path}?toolbox=named"),
                None,
            )
            .await;
        let detail = v["detail"].as_str().unwrap_or("");
        assert_eq!(s, 503, "{path}: {v}");
        assert!(detail.contains("refused to connect to"), "{path}: {v}");
    }
}
