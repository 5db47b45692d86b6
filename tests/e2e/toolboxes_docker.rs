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
use toolbelt_e2e::{DtmaProc, Server, docker_cleanup};
use toolbelt_testkit::fixture::{fixture_bin, fixture_image};

const ADMIN: &str = "tbu_toolboxes-admin-0000000";
const WAIT: Duration = Duration::from_secs(60);

struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }

    async fn wait(&self, path: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let start = std::time::Instant::now();
        let mut last = Value::Null;
        while start.elapsed() < WAIT {
            let v: Value = self
                .http
                .get(format!("{}{path}", self.url))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if pred(&v) {
                return v;
            }
            last = v;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}; last: {last:#}");
    }
}

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
    let api = Api {
        http: toolbelt_net::http::client(),
        url: cp.url.clone(),
    };
    let mut joins = Vec::new();
    for name in ["alpha", "beta"] {
        api.call(
            "POST",
            "/api/v1/toolboxes",
            Some(json!({ "name": name, "shared": true })),
        )
        .await;
        joins.push(
            api.call(
                "POST",
                &format!("/api/v1/toolboxes/{name}/join-token"),
                Some(json!({})),
            )
            .await["token"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let alpha_id = api.call("GET", "/api/v1/toolboxes/alpha", None).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    struct Clean(String);
    impl Drop for Clean {
        fn drop(&mut self) {
            docker_cleanup(&self.0);
        }
    }
    let _c = Clean(alpha_id.clone());
    let alpha_dir: PathBuf = dir.path().join("alpha");
    let a = DtmaProc::start(&cp.url, Some(&joins[0]), &alpha_dir, "docker", &[]).await;
    let _b = DtmaProc::start(
        &cp.url,
        Some(&joins[1]),
        &dir.path().join("beta"),
        "process",
        &[],
    )
    .await;
    api.call("POST", "/api/v1/catalog", Some(json!({ "slug": "fx-img", "source": { "type": "image", "image": image }, "transport": "stdio" }))).await;
    api.call("POST", "/api/v1/catalog", Some(json!({ "slug": "fx-proc", "source": { "type": "package", "manager": "binary", "package": "fixture-mcp",
        "command": [fixture_bin().display().to_string()] }, "transport": "stdio" }))).await;
    // The same server name on both toolboxes: names are unique per toolbox only.
    api.call(
        "POST",
        "/api/v1/servers",
        Some(json!({ "name": "tools", "catalog": "fx-img", "toolbox": "alpha" })),
    )
    .await;
    api.call(
        "POST",
        "/api/v1/servers",
        Some(json!({ "name": "tools", "catalog": "fx-proc", "toolbox": "beta" })),
    )
    .await;
    let s1 = api
        .wait(
            "/api/v1/servers/tools?toolbox=alpha",
            "alpha/tools running",
            |v| v["status"] == "running",
        )
        .await;
    api.wait(
        "/api/v1/servers/tools?toolbox=beta",
        "beta/tools running",
        |v| v["status"] == "running",
    )
    .await;
    let alpha = api.call("GET", "/api/v1/toolboxes/alpha", None).await;
    assert_eq!(
        (
            alpha["kind"].as_str(),
            alpha["report"]["runtime"]["available"].as_bool()
        ),
        (Some("docker"), Some(true))
    );
    assert!(
        alpha["report"]["system"]["mem_total_bytes"]
            .as_u64()
            .unwrap()
            > 0
    );

    a.kill9();
    api.wait("/api/v1/toolboxes/alpha", "alpha unresponsive", |v| {
        v["status"] == "unresponsive"
    })
    .await;
    api.wait(
        "/api/v1/servers/tools?toolbox=alpha",
        "alpha/tools unresponsive",
        |v| v["status"] == "unresponsive",
    )
    .await;
    let beta = api.call("GET", "/api/v1/toolboxes/beta", None).await;
    assert_eq!(beta["status"], "active", "the other toolbox is unaffected");

    let a = DtmaProc::start(&cp.url, None, &alpha_dir, "docker", &[]).await;
    api.wait("/api/v1/toolboxes/alpha", "alpha active again", |v| {
        v["status"] == "active"
    })
    .await;
    let back = api
        .wait(
            "/api/v1/servers/tools?toolbox=alpha",
            "alpha/tools running again",
            |v| v["status"] == "running" && v["health"] == "ok",
        )
        .await;
    assert_eq!(
        back["instance"]["container_id"], s1["instance"]["container_id"],
        "the container survived its DTMA"
    );
    let events = api.call("GET", "/api/v1/audit?action=toolbox", None).await;
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
