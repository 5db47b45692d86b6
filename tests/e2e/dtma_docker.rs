//! The DTMA with the Docker runtime against the real engine: hardening proven from
//! `docker inspect` on an image that asks for root and sets no limits, secrets as files
//! and nowhere else (a value the server prints is masked in its log), re-adoption after `kill -9`, failures that end in `error_runtime`.

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use toolbelt_dtma::DtmaOptions;
use toolbelt_e2e::eventually::eventually;
use toolbelt_e2e::mcp::Mcp;
use toolbelt_e2e::plane::Plane;
use toolbelt_e2e::{DtmaProc, containers_of, docker_cleanup, docker_inspect};
use toolbelt_model::toolbox::ToolboxKind;
use toolbelt_testkit::fixture::fixture_image;

const WAIT: Duration = Duration::from_secs(60);

fn text(v: &Value) -> String {
    v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Removes the toolbox's containers even when the test fails.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        docker_cleanup(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn containers_carry_every_hardening_default_and_answer_through_the_bridge() {
    let image = fixture_image().await;
    let plane = Plane::start(Duration::from_millis(300)).await;
    let (tbx, join) = plane.toolbox("dock").await;
    let _c = Cleanup(tbx.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut opts = DtmaOptions::new(&plane.url, dir.path().join("dtma"));
    opts.join_token = Some(join);
    opts.runtime = Some(ToolboxKind::Docker);
    opts.reconcile_interval = Duration::from_millis(250);
    let dtma = toolbelt_dtma::start(opts).await.unwrap();
    plane.catalog(json!({ "slug": "fx", "source": { "type": "image", "image": image }, "transport": "stdio",
        "limits": { "memory_mb": 64, "cpus": 0.5, "pids": 32 } })).await;
    plane
        .ok(
            "POST",
            "/api/v1/servers",
            json!({ "name": "fx", "catalog": "fx", "toolbox": "dock" }),
        )
        .await;
    let srv = plane
        .wait_server("fx", "dock", "fx running", WAIT, |v| {
            v["status"] == "running"
        })
        .await;
    let id = srv["instance"]["container_id"]
        .as_str()
        .unwrap()
        .to_string();

    let c = docker_inspect(&id);
    let h = &c["HostConfig"];
    assert_eq!(h["CapDrop"], json!(["ALL"]), "capabilities");
    assert!(h["CapAdd"].is_null() || h["CapAdd"] == json!([]));
    assert_eq!(h["SecurityOpt"], json!(["no-new-privileges:true"]));
    assert_eq!(h["ReadonlyRootfs"], true);
    assert!(h["Tmpfs"]["/tmp"].as_str().unwrap().contains("noexec"));
    assert_eq!(c["Config"]["User"], "65534:65534", "not the image's root");
    assert_eq!(h["PidsLimit"], 32);
    assert_eq!(h["Memory"], 64 * 1024 * 1024);
    assert_eq!(
        h["MemorySwap"],
        64 * 1024 * 1024,
        "no swap beyond the limit"
    );
    assert_eq!(h["NanoCpus"], 500_000_000);
    assert_eq!(h["Privileged"], false);
    assert_eq!(
        h["NetworkMode"], "none",
        "a stdio server without egress has no network at all"
    );
    assert!(
        h["PortBindings"].as_object().is_none_or(|p| p.is_empty()),
        "no published ports"
    );
    assert_eq!(h["PublishAllPorts"], false);
    assert_eq!(
        (
            &h["LogConfig"]["Config"]["max-size"],
            &h["LogConfig"]["Config"]["max-file"]
        ),
        (&json!("10m"), &json!("3")),
        "the engine rotates the container's log"
    );
    assert!(
        h["Binds"].is_null() || h["Binds"] == json!([]),
        "no host binds"
    );
    assert!(
        c["Mounts"].as_array().unwrap().is_empty(),
        "no mounts without secrets: {}",
        c["Mounts"]
    );
    assert!(h["Devices"].is_null() || h["Devices"] == json!([]));
    assert_eq!(
        (
            c["Config"]["OpenStdin"].as_bool(),
            c["Config"]["StdinOnce"].as_bool(),
            c["Config"]["Tty"].as_bool()
        ),
        (Some(true), Some(false), Some(false))
    );
    let labels = &c["Config"]["Labels"];
    assert_eq!(labels["toolbelt.managed"], "true");
    assert_eq!(labels["toolbelt.toolbox"], tbx.as_str());
    assert_eq!(labels["toolbelt.server"], srv["id"]);
    // From inside, nothing answers: not a listener on the host at the engine's default
    // bridge (reachable from a container on that network), not the metadata address.
    let bridge = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "docker0"])
        .output()
        .unwrap();
    let bridge = String::from_utf8_lossy(&bridge.stdout);
    let gateway = bridge
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("docker0 has no address: {bridge}"));
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let host = format!("{gateway}:{}", listener.local_addr().unwrap().port());

    let mut m = Mcp::new(&format!("http://{}/mcp/fx", dtma.addr), &plane.sign(&tbx));
    m.initialize().await;
    let who = m.tool("whoami", json!({})).await;
    assert_eq!(who["result"]["structuredContent"]["uid"], 65534, "{who}");
    let tried = m
        .tool(
            "escape",
            json!({ "read": [], "write": [], "connect": [host, "169.254.169.254:80"] }),
        )
        .await;
    let tried = &tried["result"]["structuredContent"]["connect"];
    assert_eq!(tried.as_array().map(Vec::len), Some(2), "{tried}");
    for t in tried.as_array().unwrap() {
        assert_eq!(t["ok"], false, "reached from a network-less container: {t}");
    }
    drop(listener);
    let ro = m
        .tool("write_file", json!({ "path": "/etc/owned", "text": "x" }))
        .await;
    assert!(text(&ro).to_lowercase().contains("read-only"), "{ro}");
    let tmp = m
        .tool("write_file", json!({ "path": "/tmp/ok", "text": "x" }))
        .await;
    assert_ne!(tmp["result"]["isError"], true, "{tmp}");
    let forked = m.tool("fork", json!({ "n": 100 })).await;
    let spawned = forked["result"]["structuredContent"]["spawned"]
        .as_u64()
        .unwrap();
    assert!(spawned < 32, "the pids limit stops a fork bomb: {forked}");
    // Over the memory limit the engine kills it; the caller gets a clean error, the server comes back.
    let boom = m.tool("alloc", json!({ "mb": 200 })).await;
    assert_eq!(boom["error"]["code"], -32007, "{boom}");
    let back = plane
        .wait_server("fx", "dock", "fx back after OOM", WAIT, |v| {
            v["status"] == "running" && v["restart_count"] == 1
        })
        .await;
    assert!(back["last_error"].is_null() || back["status"] == "running");
    dtma.shutdown().await;
}

/// Captures this test process's log (the in-process control plane's) at debug level.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_secret_reaches_the_container_as_a_file_and_nowhere_else() {
    let logs = LogBuf::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("debug,hyper=info,sqlx=info")
        .with_writer(move || writer.clone())
        .init();
    let image = fixture_image().await;
    let canary = format!("canary-{}", toolbelt_model::ids::AgentId::generate());
    let plane = Plane::start(Duration::from_millis(300)).await;
    let (tbx, join) = plane.toolbox("sec").await;
    let _c = Cleanup(tbx.clone());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dtma");
    let dtma = DtmaProc::start(&plane.url, Some(&join), &data, "docker", &[]).await;
    // It prints the value too (stderr, the engine's log): the DTMA serves it masked.
    plane.catalog(json!({ "slug": "fx-secret", "source": { "type": "image", "image": image, "args": ["--print-secret", "API_KEY"] }, "transport": "stdio",
        "secrets": [{ "name": "API_KEY", "delivery": "file" }] })).await;
    // Sealed in the vault through the API, as the shared `team-key`; the vault opens it at
    // deploy.
    plane
        .ok(
            "POST",
            "/api/v1/secrets",
            json!({ "name": "team-key", "value": canary, "kind": "api_key", "shared": true }),
        )
        .await;
    plane.ok("POST", "/api/v1/servers", json!({ "name": "keyed", "catalog": "fx-secret", "toolbox": "sec", "secrets": { "API_KEY": "team-key" } })).await;
    let srv = plane
        .wait_server("keyed", "sec", "keyed running", WAIT, |v| {
            v["status"] == "running"
        })
        .await;
    let cid = srv["instance"]["container_id"]
        .as_str()
        .unwrap()
        .to_string();
    let token = plane.sign(&tbx);
    let mut m = Mcp::new(&format!("http://{}/mcp/keyed", dtma.addr), &token);
    m.initialize().await;
    assert_eq!(
        text(
            &m.tool("read_file", json!({ "path": "/run/secrets/API_KEY" }))
                .await
        ),
        canary
    );
    let env = m.tool("env", json!({ "name": "API_KEY" })).await;
    assert_eq!(
        env["result"]["structuredContent"]["set"], false,
        "file delivery puts nothing in env"
    );

    let inspect = docker_inspect(&cid);
    let mount = &inspect["Mounts"][0];
    assert_eq!(
        (mount["Destination"].as_str(), mount["RW"].as_bool()),
        (Some("/run/secrets"), Some(false)),
        "the one read-only bind"
    );
    let source = mount["Source"].as_str().unwrap().to_string();
    assert!(
        source.starts_with("/dev/shm/"),
        "secrets live on a tmpfs: {source}"
    );
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(format!("{source}/API_KEY")).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o400, 65534));

    // After a kill -9 the DTMA holds no secrets; recreating the server fetches them again.
    dtma.kill9();
    let dtma = DtmaProc::start(&plane.url, None, &data, "docker", &[]).await;
    plane.wait_toolbox("sec", "active", WAIT).await;
    plane
        .ok(
            "POST",
            "/api/v1/servers/keyed/restart?toolbox=sec",
            json!({}),
        )
        .await;
    let srv = plane
        .wait_server("keyed", "sec", "keyed recreated", WAIT, |v| {
            v["status"] == "running" && v["instance"]["container_id"] != json!(cid)
        })
        .await;
    let mut m = Mcp::new(&format!("http://{}/mcp/keyed", dtma.addr), &token);
    m.initialize().await;
    assert_eq!(
        text(
            &m.tool("read_file", json!({ "path": "/run/secrets/API_KEY" }))
                .await
        ),
        canary
    );
    let delivered = plane
        .api("GET", "/api/v1/audit?action=secret.deliver", None)
        .await
        .1;
    assert!(
        delivered["items"].as_array().unwrap().len() >= 2,
        "every delivery is audited: {delivered}"
    );

    let http = toolbelt_net::http::client();
    let control_log = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    let hay = [
        (
            "docker inspect",
            docker_inspect(srv["instance"]["container_id"].as_str().unwrap()).to_string(),
        ),
        ("the DTMA's log", dtma.log_text()),
        ("the control plane's log", control_log.clone()),
        (
            "the control plane's server API",
            plane
                .api("GET", "/api/v1/servers/keyed?toolbox=sec", None)
                .await
                .1
                .to_string(),
        ),
        (
            "the audit log",
            plane
                .api("GET", "/api/v1/audit?limit=1000", None)
                .await
                .1
                .to_string(),
        ),
        (
            "the DTMA's server list",
            http.get(format!("http://{}/v1/servers", dtma.addr))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        ),
        (
            "the server's log",
            http.get(format!(
                "http://{}/v1/servers/keyed/logs?tail=1000",
                dtma.addr
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        ),
    ];
    assert!(
        hay[1].1.contains("DEBUG") && control_log.contains("DEBUG"),
        "both sides logged at debug level"
    );
    for (what, text) in &hay {
        assert!(!text.contains(&canary), "the canary leaked into {what}");
    }
    assert!(
        hay[6]
            .1
            .contains("split secret API_KEY=[secret:API_KEY] (two writes)"),
        "the printed value is masked in the server's log: {:.2000}",
        hay[6].1
    );
    plane
        .ok("DELETE", "/api/v1/servers/keyed?toolbox=sec", json!(null))
        .await;
    eventually("the secret files removed", WAIT, || {
        let source = source.clone();
        async move { (!std::path::Path::new(&source).exists()).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dtma_killed_with_sigkill_re_adopts_its_containers_without_restarting_them() {
    let image = fixture_image().await;
    let plane = Plane::start(Duration::from_millis(300)).await;
    let (tbx, join) = plane.toolbox("adopt").await;
    let _c = Cleanup(tbx.clone());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dtma");
    let dtma = DtmaProc::start(&plane.url, Some(&join), &data, "docker", &[]).await;
    plane.catalog(json!({ "slug": "fx", "source": { "type": "image", "image": image }, "transport": "stdio" })).await;
    plane
        .ok(
            "POST",
            "/api/v1/servers",
            json!({ "name": "fx", "catalog": "fx", "toolbox": "adopt" }),
        )
        .await;
    let srv = plane
        .wait_server("fx", "adopt", "fx running", WAIT, |v| {
            v["status"] == "running"
        })
        .await;
    let sid = srv["id"].as_str().unwrap().to_string();
    let before = docker_inspect(srv["instance"]["container_id"].as_str().unwrap());
    let mut m = Mcp::new(&format!("http://{}/mcp/fx", dtma.addr), &plane.sign(&tbx));
    m.initialize().await;
    m.tool("change_tools", json!({ "mode": "add" })).await;

    dtma.kill9();
    plane.wait_toolbox("adopt", "unresponsive", WAIT).await;
    let dtma = DtmaProc::start(&plane.url, None, &data, "docker", &[]).await;
    plane.wait_toolbox("adopt", "active", WAIT).await;
    let srv = plane
        .wait_server("fx", "adopt", "fx re-adopted", WAIT, |v| {
            v["status"] == "running" && v["health"] == "ok"
        })
        .await;
    let after = docker_inspect(srv["instance"]["container_id"].as_str().unwrap());
    assert_eq!(after["Id"], before["Id"], "the same container");
    assert_eq!(
        after["State"]["StartedAt"], before["State"]["StartedAt"],
        "not restarted"
    );
    assert_eq!(containers_of(&sid).len(), 1, "no duplicate");
    assert_eq!(srv["restart_count"], 0);
    let mut m = Mcp::new(&format!("http://{}/mcp/fx", dtma.addr), &plane.sign(&tbx));
    m.initialize().await;
    assert_eq!(
        text(&m.tool("echo", json!({ "text": "re-attached" })).await),
        "re-attached"
    );
    let tools = m.request("tools/list", json!({})).await;
    assert!(
        tools["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "extra"),
        "the same process, with its state: {tools}"
    );
    assert!(dtma.log_text().contains("re-adopted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_image_and_a_crash_loop_end_in_error_runtime_with_reasons() {
    let image = fixture_image().await;
    let plane = Plane::start(Duration::from_millis(300)).await;
    let (tbx, join) = plane.toolbox("bad").await;
    let _c = Cleanup(tbx.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut opts = DtmaOptions::new(&plane.url, dir.path().join("dtma"));
    opts.join_token = Some(join);
    opts.runtime = Some(ToolboxKind::Docker);
    opts.reconcile_interval = Duration::from_millis(250);
    let dtma = toolbelt_dtma::start(opts).await.unwrap();
    plane.catalog(json!({ "slug": "ghost", "source": { "type": "image", "image": "toolbelt-test/no-such-image:1" }, "transport": "stdio" })).await;
    plane.catalog(json!({ "slug": "crashy", "source": { "type": "image", "image": image, "args": ["--crash-on-start", "9"] }, "transport": "stdio" })).await;
    plane
        .ok(
            "POST",
            "/api/v1/servers",
            json!({ "name": "ghost", "catalog": "ghost", "toolbox": "bad" }),
        )
        .await;
    plane
        .ok(
            "POST",
            "/api/v1/servers",
            json!({ "name": "crashy", "catalog": "crashy", "toolbox": "bad" }),
        )
        .await;
    let g = plane
        .wait_server("ghost", "bad", "ghost in error_runtime", WAIT, |v| {
            v["status"] == "error_runtime"
        })
        .await;
    let err = g["last_error"].as_str().unwrap();
    assert!(
        err.contains("toolbelt-test/no-such-image:1") && err.contains("could not be pulled"),
        "{err}"
    );
    let c = plane
        .wait_server(
            "crashy",
            "bad",
            "crashy gave up",
            Duration::from_secs(90),
            |v| {
                v["status"] == "error_runtime"
                    && v["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("crashed 5 times"))
            },
        )
        .await;
    let err = c["last_error"].as_str().unwrap();
    assert!(
        err.contains("last exit code 9") && err.contains("crashing on start"),
        "the engine's log tail is kept: {err}"
    );
    dtma.shutdown().await;
}
