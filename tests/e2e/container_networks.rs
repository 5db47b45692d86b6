//! Container networks against the real engine: two streamable-HTTP servers on one toolbox
//! each sit on a network of their own (internal, inter-container traffic off), so neither
//! reaches the other's address from inside its container, while the DTMA reaches both and
//! agents call both through the gateway. A server's network goes with its last container,
//! and what a killed DTMA left behind is swept when it starts again.

use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;
use toolbelt_dtma::{Dtma, DtmaOptions};
use toolbelt_e2e::docker_inspect;
use toolbelt_e2e::eventually::eventually;
use toolbelt_e2e::mcp::Mcp;
use toolbelt_e2e::plane::Plane;
use toolbelt_model::toolbox::ToolboxKind;
use toolbelt_testkit::fixture::fixture_image;

const WAIT: Duration = Duration::from_secs(60);

struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        toolbelt_e2e::docker_cleanup(&self.0);
    }
}

async fn dtma(plane: &Plane, dir: &std::path::Path, join: Option<String>) -> Dtma {
    let mut opts = DtmaOptions::new(&plane.url, dir.join("dtma"));
    opts.join_token = join;
    opts.runtime = Some(ToolboxKind::Docker);
    opts.reconcile_interval = Duration::from_millis(250);
    toolbelt_dtma::start(opts).await.unwrap()
}

/// The networks labelled as this toolbox's, by name.
fn networks_of(toolbox: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["network", "ls", "--format", "{{.Name}}", "--filter"])
        .arg(format!("label=toolbelt.toolbox={toolbox}"))
        .output()
        .unwrap();
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// The one network a running container is on, and its address there.
fn network_of(container: &str) -> (String, String) {
    let c = docker_inspect(container);
    let nets = c["NetworkSettings"]["Networks"]
        .as_object()
        .unwrap()
        .clone();
    assert_eq!(nets.len(), 1, "on exactly one network: {nets:?}");
    let (name, e) = nets.into_iter().next().unwrap();
    (name, e["IPAddress"].as_str().unwrap().to_string())
}

fn connects(v: &Value) -> Vec<bool> {
    v["result"]["structuredContent"]["connect"]
        .as_array()
        .unwrap_or_else(|| panic!("no connect report: {v}"))
        .iter()
        .map(|t| t["ok"].as_bool().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_containers_cannot_reach_each_other_and_their_networks_do_not_leak() {
    let image = fixture_image().await;
    let plane = Plane::start(Duration::from_millis(300)).await;
    let (tbx, join) = plane.toolbox("nets").await;
    let _c = Cleanup(tbx.clone());
    let dir = tempfile::tempdir().unwrap();
    let d = dtma(&plane, dir.path(), Some(join)).await;
    plane.catalog(json!({ "slug": "fx-http", "source": { "type": "image", "image": image,
        "args": ["--http", "0.0.0.0:8080", "--json"] }, "transport": "streamable_http", "port": 8080 })).await;
    let mut ids = Vec::new();
    for name in ["one", "two"] {
        plane
            .ok(
                "POST",
                "/api/v1/servers",
                json!({ "name": name, "catalog": "fx-http", "toolbox": "nets" }),
            )
            .await;
        let s = plane
            .wait_server(name, "nets", "running", WAIT, |v| v["status"] == "running")
            .await;
        ids.push((
            s["id"].as_str().unwrap().to_string(),
            s["instance"]["container_id"].as_str().unwrap().to_string(),
        ));
    }
    let (net1, ip1) = network_of(&ids[0].1);
    let (net2, ip2) = network_of(&ids[1].1);
    assert_ne!(net1, net2, "each server has a network of its own");
    for (net, (srv, _)) in [(&net1, &ids[0]), (&net2, &ids[1])] {
        let n = docker_inspect(net);
        assert_eq!(n["Internal"], true, "no route out without egress: {n}");
        assert_eq!(
            n["Options"]["com.docker.network.bridge.enable_icc"],
            "false"
        );
        assert_eq!(n["Labels"]["toolbelt.server"], srv.as_str());
        assert_eq!(
            n["Containers"].as_object().map(|c| c.len()),
            Some(1),
            "no other container on it: {}",
            n["Containers"]
        );
    }

    // From inside each container, the other's address does not answer (its own does, so
    // the probe works); the DTMA's host reaches both.
    let token = plane.sign(&tbx);
    for (me, mine, theirs) in [("one", &ip1, &ip2), ("two", &ip2, &ip1)] {
        let mut m = Mcp::new(&format!("http://{}/mcp/{me}", d.addr), &token);
        m.initialize().await;
        let tried = m
            .tool(
                "escape",
                json!({ "read": [], "write": [],
                    "connect": [format!("{theirs}:8080"), format!("{mine}:8080")] }),
            )
            .await;
        assert_eq!(
            connects(&tried),
            vec![false, true],
            "{me} reached the other server's address: {tried}"
        );
    }
    for ip in [&ip1, &ip2] {
        tokio::net::TcpStream::connect(format!("{ip}:8080"))
            .await
            .unwrap_or_else(|e| panic!("the host does not reach {ip}: {e}"));
    }

    // Both answer an agent through the gateway.
    let admin = plane.admin();
    let bot = admin.agent("net-bot").await;
    admin.grant(&bot.name).toolbox("nets").await;
    let mut gw = Mcp::new(&plane.mcp_url(), &bot.token);
    gw.initialize().await;
    for name in ["one", "two"] {
        let r = gw
            .tool(&format!("{name}__echo"), json!({ "text": name }))
            .await;
        assert_eq!(
            r["result"]["content"][0]["text"], name,
            "{name} through the gateway: {r}"
        );
    }

    // A stopped server's network goes with its container; the other's stays.
    admin.server("one", "nets").act("stop").await;
    eventually("one's network removed", WAIT, || async {
        let nets = networks_of(&tbx);
        (!nets.contains(&net1) && nets.contains(&net2))
            .then_some(())
            .ok_or(nets)
    })
    .await;

    // A killed DTMA leaves networks behind; started again it sweeps those of servers
    // without a container (and an old toolbox-wide network nobody uses), keeping the live
    // one's.
    d.shutdown().await;
    let stale = format!("toolbelt-{tbx}-srv_01stale");
    let legacy = format!("toolbelt-{tbx}");
    for (name, server) in [(&stale, Some("srv_01stale")), (&legacy, None)] {
        let mut cmd = Command::new("docker");
        cmd.args(["network", "create", "--internal"])
            .args(["--label", "toolbelt.managed=true"])
            .args(["--label", &format!("toolbelt.toolbox={tbx}")]);
        if let Some(s) = server {
            cmd.args(["--label", &format!("toolbelt.server={s}")]);
        }
        assert!(cmd.arg(name).output().unwrap().status.success());
    }
    let d = dtma(&plane, dir.path(), None).await;
    eventually("stale networks swept", WAIT, || async {
        let nets = networks_of(&tbx);
        (nets == vec![net2.clone()]).then_some(()).ok_or(nets)
    })
    .await;
    let two = plane
        .wait_server("two", "nets", "two re-adopted", WAIT, |v| {
            v["status"] == "running"
        })
        .await;
    assert_eq!(two["instance"]["container_id"], ids[1].1.as_str());
    let mut gw = Mcp::new(&plane.mcp_url(), &bot.token);
    gw.initialize().await;
    let r = gw.tool("two__echo", json!({ "text": "again" })).await;
    assert_eq!(r["result"]["content"][0]["text"], "again", "{r}");

    plane
        .ok(
            "DELETE",
            &format!("/api/v1/servers/{}", ids[1].0),
            json!({}),
        )
        .await;
    eventually("every network removed", WAIT, || async {
        let nets = networks_of(&tbx);
        nets.is_empty().then_some(()).ok_or(nets)
    })
    .await;
    d.shutdown().await;
}
