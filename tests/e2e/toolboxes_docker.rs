//! Several toolboxes: a control plane process and two DTMA processes (Docker and
//! Process runtimes). One goes silent and becomes `unresponsive`; it comes back `active`
//! with its servers intact. A Docker engine that stops answering leaves the DTMA up,
//! reporting the runtime unavailable, and it recovers when the engine returns.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};
use toolbelt_e2e::eventually::eventually;
use toolbelt_e2e::mcp::Mcp;
use toolbelt_e2e::plane::Plane;
use toolbelt_e2e::world::Caller;
use toolbelt_e2e::{DtmaProc, Server, docker_cleanup};
use toolbelt_testkit::fixture::{fixture_bin, fixture_image};

const ADMIN: &str = "tbu_toolboxes-admin-0000000";
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_toolbox_goes_unresponsive_and_comes_back_with_its_servers() {
    let image = fixture_image().await;
    let dir = tempfile::tempdir().unwrap();
    let cp = Server::serve(
        &dir.path().join("cp"),
        &[
            ("TOOLBELT_BOOTSTRAP_TOKEN", ADMIN),
            ("TOOLBELT_HEARTBEAT_MS", "300"),
        ],
    )
    .await;
    let admin = Caller::new(&cp.url, ADMIN);
    let alpha = admin.toolbox("alpha").shared().await;
    let beta = admin.toolbox("beta").shared().await;
    struct Clean(String);
    impl Drop for Clean {
        fn drop(&mut self) {
            docker_cleanup(&self.0);
        }
    }
    let _c = Clean(alpha.id.clone());
    let alpha_dir: PathBuf = dir.path().join("alpha");
    let a = DtmaProc::start(
        &cp.url,
        Some(&alpha.join_token().await),
        &alpha_dir,
        "docker",
        &[],
    )
    .await;
    let beta_dir = dir.path().join("beta");
    let _b = DtmaProc::start(
        &cp.url,
        Some(&beta.join_token().await),
        &beta_dir,
        "process",
        &[],
    )
    .await;
    admin.catalog(json!({ "slug": "fx-img", "source": { "type": "image", "image": image }, "transport": "stdio" })).await;
    admin.catalog(json!({ "slug": "fx-proc", "source": { "type": "package", "manager": "binary", "package": "fixture-mcp",
        "command": [fixture_bin().display().to_string()] }, "transport": "stdio" })).await;
    // The same server name on both toolboxes: names are unique per toolbox only.
    let on_alpha = admin.deploy("tools", "fx-img").on("alpha").await;
    let on_beta = admin.deploy("tools", "fx-proc").on("beta").await;
    let s1 = on_alpha.running().await;
    on_beta.running().await;
    let seen = admin.rest.get("/api/v1/toolboxes/alpha").await;
    assert_eq!(
        (
            seen["kind"].as_str(),
            seen["report"]["runtime"]["available"].as_bool()
        ),
        (Some("docker"), Some(true))
    );
    assert!(
        seen["report"]["system"]["mem_total_bytes"]
            .as_u64()
            .unwrap()
            > 0
    );

    a.kill9();
    alpha.until("unresponsive").await;
    on_alpha
        .until("unresponsive", |v| v["status"] == "unresponsive")
        .await;
    let seen = admin.rest.get("/api/v1/toolboxes/beta").await;
    assert_eq!(seen["status"], "active", "the other toolbox is unaffected");

    let a = DtmaProc::start(&cp.url, None, &alpha_dir, "docker", &[]).await;
    alpha.until("active").await;
    let back = on_alpha
        .until("running again", |v| {
            v["status"] == "running" && v["health"] == "ok"
        })
        .await;
    assert_eq!(
        back["instance"]["container_id"], s1["instance"]["container_id"],
        "the container survived its DTMA"
    );
    let events = admin.rest.get("/api/v1/audit?action=toolbox").await;
    let actions: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"toolbox.unresponsive")
            && actions.contains(&"toolbox.active")
            && actions.contains(&"toolbox.join"),
        "{actions:?}"
    );
    drop(a);
    cp.stop();
}

/// A Unix socket that forwards to the Docker engine, and can be cut and restored.
struct EngineProxy {
    path: PathBuf,
    task: Option<tokio::task::JoinHandle<()>>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl EngineProxy {
    fn start(path: PathBuf) -> EngineProxy {
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let c = conns.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let h = tokio::spawn(async move {
                    if let Ok(mut up) = UnixStream::connect("/var/run/docker.sock").await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut up).await;
                    }
                });
                c.lock().unwrap().push(h);
            }
        });
        EngineProxy {
            path,
            task: Some(task),
            conns,
        }
    }

    /// The engine "goes away": no listener, every open connection cut.
    fn cut(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dtma_outlives_an_engine_outage_and_recovers() {
    let image = fixture_image().await;
    let plane = Plane::start(Duration::from_millis(300)).await;
    let (tbx, join) = plane.toolbox("flaky").await;
    struct Clean(String);
    impl Drop for Clean {
        fn drop(&mut self) {
            docker_cleanup(&self.0);
        }
    }
    let _c = Clean(tbx.clone());
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("docker.sock");
    let mut proxy = EngineProxy::start(sock.clone());
    let host = format!("unix://{}", sock.display());
    let dtma = DtmaProc::start(
        &plane.url,
        Some(&join),
        &dir.path().join("dtma"),
        "docker",
        &[("DOCKER_HOST", &host)],
    )
    .await;
    plane.catalog(json!({ "slug": "fx", "source": { "type": "image", "image": image }, "transport": "stdio" })).await;
    plane
        .ok(
            "POST",
            "/api/v1/servers",
            json!({ "name": "fx", "catalog": "fx", "toolbox": "flaky" }),
        )
        .await;
    let srv = plane
        .wait_server("fx", "flaky", "fx running", WAIT, |v| {
            v["status"] == "running"
        })
        .await;

    proxy.cut();
    let http = toolbelt_net::http::client();
    let status_url = format!("http://{}/v1/status", dtma.addr);
    let token = plane.sign(&tbx);
    let down = eventually("the runtime reported unavailable", WAIT, || {
        let (http, url, token) = (http.clone(), status_url.clone(), token.clone());
        async move {
            let v: Value = http
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (v["runtime"]["available"] == false).then_some(v)
        }
    })
    .await;
    assert!(down["runtime"]["detail"].as_str().is_some(), "{down}");
    assert_eq!(
        http.get(format!("http://{}/healthz", dtma.addr))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "the DTMA stays up"
    );
    eventually("the control plane sees the outage", WAIT, || async {
        let (_, v) = plane.api("GET", "/api/v1/toolboxes/flaky", None).await;
        (v["report"]["runtime"]["available"] == false).then_some(())
    })
    .await;

    let _proxy = EngineProxy::start(sock.clone());
    eventually("the control plane sees the engine back", WAIT, || async {
        let (_, v) = plane.api("GET", "/api/v1/toolboxes/flaky", None).await;
        (v["report"]["runtime"]["available"] == true).then_some(())
    })
    .await;
    let back = plane
        .wait_server("fx", "flaky", "fx answering again", WAIT, |v| {
            v["status"] == "running" && v["health"] == "ok"
        })
        .await;
    assert_eq!(
        back["instance"]["container_id"], srv["instance"]["container_id"],
        "the container kept running through the outage"
    );
    let mut m = Mcp::new(&format!("http://{}/mcp/fx", dtma.addr), &token);
    m.initialize().await;
    let echo = m.tool("echo", json!({ "text": "recovered" })).await;
    assert_eq!(echo["result"]["content"][0]["text"], "recovered");
}
