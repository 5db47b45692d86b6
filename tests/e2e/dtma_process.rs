//! The DTMA with the Process runtime: the fixture server and `mcp-server-time` from PyPI
//! as child processes, bridged to Streamable HTTP, supervised, and reported upstream.

use futures::future::join_all;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use toolbelt_dtma::{Dtma, DtmaOptions};
use toolbelt_e2e::mcp::{Mcp, sse_messages};
use toolbelt_e2e::plane::Plane;
use toolbelt_model::toolbox::ToolboxKind;
use toolbelt_testkit::fixture::fixture_bin;

const WAIT: Duration = Duration::from_secs(30);

struct Setup {
    plane: Plane,
    dtma: Dtma,
    toolbox_id: String,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn new(call_timeout: Duration) -> Setup {
        let plane = Plane::start(Duration::from_millis(300)).await;
        let (toolbox_id, join) = plane.toolbox("procs").await;
        let dir = tempfile::tempdir().unwrap();
        let mut opts = DtmaOptions::new(&plane.url, dir.path().join("dtma"));
        opts.join_token = Some(join);
        opts.runtime = Some(ToolboxKind::Process);
        opts.call_timeout = call_timeout;
        opts.reconcile_interval = Duration::from_millis(200);
        let dtma = toolbelt_dtma::start(opts).await.unwrap();
        plane.catalog(json!({ "slug": "fixture", "source": { "type": "package", "manager": "binary", "package": "fixture-mcp",
            "command": [fixture_bin().display().to_string()] }, "transport": "stdio" })).await;
        Setup {
            plane,
            dtma,
            toolbox_id,
            _dir: dir,
        }
    }

    async fn deploy(&self, name: &str, catalog: &str) -> Value {
        self.plane
            .ok(
                "POST",
                "/api/v1/servers",
                json!({ "name": name, "catalog": catalog, "toolbox": "procs" }),
            )
            .await;
        self.plane
            .wait_server(name, "procs", &format!("{name} running"), WAIT, |v| {
                v["status"] == "running"
            })
            .await
    }

    fn mcp(&self, server: &str) -> Mcp {
        Mcp::new(
            &format!("http://{}/mcp/{server}", self.dtma.addr),
            &self.plane.sign(&self.toolbox_id),
        )
    }

    fn dtma_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.dtma.addr)
    }
}

fn text(v: &Value) -> String {
    v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stdio_server_answers_through_the_bridge_and_slow_calls_do_not_block_fast_ones() {
    let s = Setup::new(Duration::from_secs(60)).await;
    let srv = s.deploy("fx", "fixture").await;
    assert_eq!(srv["health"], "ok");
    assert!(
        srv["instance"]["tool_count"].as_u64().unwrap() >= 10,
        "{srv}"
    );

    let mut m = s.mcp("fx");
    let init = m.initialize().await;
    assert_eq!(init["result"]["serverInfo"]["name"], "fixture-mcp");
    let tools = m.request("tools/list", json!({})).await;
    assert!(
        tools["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "echo")
    );
    let echo = m.tool("echo", json!({ "text": "héllo" })).await;
    assert_eq!(text(&echo), "héllo");
    assert_eq!(echo["result"]["structuredContent"]["text"], "héllo");
    let bad = m.tool("add", json!({ "a": 1 })).await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    let proto = m.tool("fail", json!({ "mode": "protocol" })).await;
    assert_eq!(
        proto["error"]["code"], -32000,
        "error codes pass through: {proto}"
    );
    let toolerr = m.tool("fail", json!({ "mode": "tool" })).await;
    assert_eq!(toolerr["result"]["isError"], true);

    // One slow call and many fast ones at once: the fast ones are not queued behind it.
    let start = Instant::now();
    let slow = async {
        (
            m.tool("sleep", json!({ "ms": 1500 })).await,
            start.elapsed(),
        )
    };
    let fast = join_all((0..20).map(|i| {
        let m = &m;
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            (
                m.tool("echo", json!({ "text": format!("fast {i}") })).await,
                start.elapsed(),
            )
        }
    }));
    let ((slow_res, slow_at), fast_res) = tokio::join!(slow, fast);
    assert_eq!(text(&slow_res), "slept 1500 ms");
    for (i, (r, at)) in fast_res.iter().enumerate() {
        assert_eq!(
            text(r),
            format!("fast {i}"),
            "each reply reaches its own caller"
        );
        assert!(
            at < &slow_at,
            "fast call {i} finished at {at:?}, after the slow one at {slow_at:?}"
        );
    }

    // Progress notifications stream back under the caller's own token.
    let body = json!({ "jsonrpc": "2.0", "id": "p-1", "method": "tools/call",
        "params": { "name": "progress", "arguments": { "steps": 3, "delay_ms": 20 }, "_meta": { "progressToken": "mine" } } });
    let (status, headers, body) = m
        .post_raw(body.to_string(), "application/json, text/event-stream")
        .await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let msgs = sse_messages(&body);
    let progress: Vec<_> = msgs
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{body}");
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "mine")
    );
    assert_eq!(msgs.last().unwrap()["id"], "p-1");

    // Junk on stdout is logged and skipped; the server keeps answering.
    let j = m.tool("junk", json!({ "lines": 3 })).await;
    assert_eq!(text(&j), "junked");
    assert_eq!(
        text(&m.tool("echo", json!({ "text": "after junk" })).await),
        "after junk"
    );

    // A client that cancels gets its POST answered at once and the server is told.
    let cancel_id = 777;
    let slow_body = json!({ "jsonrpc": "2.0", "id": cancel_id, "method": "tools/call", "params": { "name": "sleep", "arguments": { "ms": 20000 } } });
    let (pending, _) = tokio::join!(
        m.post_raw(slow_body.to_string(), "application/json"),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            m.post_raw(json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": cancel_id } }).to_string(), "application/json").await
        }
    );
    let v: Value = serde_json::from_str(&pending.2).unwrap();
    assert_eq!(v["error"]["code"], -32800, "{v}");

    // A session id the DTMA never issued is refused.
    let mut stranger = s.mcp("fx");
    stranger.initialize().await;
    let (code, _, _) = Mcp::new(&m.url, &s.plane.sign(&s.toolbox_id))
        .post_raw(
            json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string(),
            "application/json",
        )
        .await;
    assert_eq!(code, 200, "a request without a session is served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crashes_fail_pending_calls_then_restart_and_a_crash_loop_ends_in_error_runtime() {
    let s = Setup::new(Duration::from_secs(60)).await;
    s.deploy("fx", "fixture").await;
    let mut m = s.mcp("fx");
    m.initialize().await;
    let (pending, crashed) = tokio::join!(m.tool("sleep", json!({ "ms": 20000 })), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        m.tool("crash", json!({ "code": 3 })).await
    });
    // Not -32000, the code servers use for their own errors: this is the bridge speaking.
    assert_eq!(
        pending["error"]["code"], -32007,
        "the pending call fails cleanly: {pending}"
    );
    assert_eq!(crashed["error"]["code"], -32007, "{crashed}");
    let back = s
        .plane
        .wait_server("fx", "procs", "fx restarted", WAIT, |v| {
            v["status"] == "running" && v["restart_count"] == 1
        })
        .await;
    assert_eq!(back["health"], "ok");
    let mut m = s.mcp("fx");
    m.initialize().await;
    assert_eq!(
        text(&m.tool("echo", json!({ "text": "again" })).await),
        "again"
    );

    s.plane.catalog(json!({ "slug": "crashy", "source": { "type": "package", "manager": "binary", "package": "fixture-mcp",
        "command": [fixture_bin().display().to_string(), "--crash-on-start", "7"] }, "transport": "stdio" })).await;
    s.plane
        .ok(
            "POST",
            "/api/v1/servers",
            json!({ "name": "loop", "catalog": "crashy", "toolbox": "procs" }),
        )
        .await;
    let v = s
        .plane
        .wait_server(
            "loop",
            "procs",
            "loop in error_runtime",
            Duration::from_secs(60),
            |v| {
                v["status"] == "error_runtime"
                    && v["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("crashed"))
            },
        )
        .await;
    let err = v["last_error"].as_str().unwrap();
    assert!(
        err.contains("crashed 5 times in a row (last exit code 7)"),
        "{err}"
    );
    assert!(
        err.contains("last log lines"),
        "the log tail is kept: {err}"
    );
    assert!(v["restart_count"].as_i64().unwrap() >= 5);
    // A restart request gives it a fresh start (and it crashes again, which is fine).
    let r = s
        .plane
        .ok(
            "POST",
            "/api/v1/servers/loop/restart?toolbox=procs",
            json!({}),
        )
        .await;
    assert_eq!(r["generation"], 2);
    let audit = s
        .plane
        .api("GET", "/api/v1/audit?action=server.error", None)
        .await
        .1;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor_kind"] == "toolbox"),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_call_times_out_and_the_server_keeps_serving() {
    let s = Setup::new(Duration::from_millis(800)).await;
    s.deploy("fx", "fixture").await;
    let mut m = s.mcp("fx");
    m.initialize().await;
    let r = m.tool("sleep", json!({ "ms": 5000 })).await;
    assert_eq!(r["error"]["code"], -32001, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not answer")
    );
    assert_eq!(
        text(&m.tool("echo", json!({ "text": "still here" })).await),
        "still here"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dtma_api_refuses_bad_credentials_names_and_bodies() {
    let s = Setup::new(Duration::from_secs(60)).await;
    let srv = s.deploy("fx", "fixture").await;
    let http = toolbelt_net::http::client();
    assert_eq!(
        http.get(s.dtma_url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let key = toolbelt_model::signed::ControlKey::generate();
    let now = chrono::Utc::now().timestamp();
    let wrong = [
        None,
        Some("garbage".to_string()),
        Some(key.sign(&s.toolbox_id, now, 60)), // another key
        Some(s.plane.sign("tbx_01aaaaaaaaaaaaaaaaaaaaaaaa")), // another toolbox
    ];
    for (i, t) in wrong.iter().enumerate() {
        for path in ["/v1/status", "/v1/servers", "/mcp/fx"] {
            let mut req = http.get(s.dtma_url(path));
            if let Some(t) = t {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 401, "credential {i} on {path}");
            assert_eq!(res.text().await.unwrap(), "", "401 with no detail");
        }
    }
    let tok = s.plane.sign(&s.toolbox_id);
    let st: Value = http
        .get(s.dtma_url("/v1/status"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["runtime"]["kind"], "process");
    assert!(st["system"]["mem_total_bytes"].as_u64().unwrap() > 0);
    assert_eq!(st["servers"][0]["name"], "fx");
    let disc: Value = http
        .get(s.dtma_url("/v1/discovery"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(disc[0]["server_info"]["name"], "fixture-mcp");
    assert_eq!(disc[0]["health"], "ok");
    for (path, want) in [
        ("/v1/servers/nope", 404),
        ("/v1/servers/Bad_Name", 422),
        ("/v1/servers/a%3Brm", 422),
        (&format!("/v1/servers/{}", "x".repeat(40)), 422),
    ] {
        assert_eq!(
            http.get(s.dtma_url(path))
                .bearer_auth(&tok)
                .send()
                .await
                .unwrap()
                .status(),
            want,
            "{path}"
        );
    }
    let stats: Value = http
        .get(s.dtma_url("/v1/servers/fx/stats"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(stats["memory_bytes"].as_u64().unwrap() > 0, "{stats}");
    let mut deploy = json!({ "server": { "id": "srv_01bbbbbbbbbbbbbbbbbbbbbbbb", "name": "fx", "generation": 1, "desired": "running",
        "source": { "type": "package", "manager": "binary", "package": "x", "command": ["x"] }, "transport": "stdio", "port": null } });
    let dup = http
        .post(s.dtma_url("/v1/servers"))
        .bearer_auth(&tok)
        .json(&deploy)
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);
    deploy["server"]["name"] = json!("a;rm -rf");
    assert_eq!(
        http.post(s.dtma_url("/v1/servers"))
            .bearer_auth(&tok)
            .json(&deploy)
            .send()
            .await
            .unwrap()
            .status(),
        422
    );
    let big = "x".repeat(5 * 1024 * 1024);
    let res = http
        .post(s.dtma_url("/v1/servers"))
        .bearer_auth(&tok)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    // Logs through the control plane's API reach the DTMA with a signed token.
    let logs = s
        .plane
        .api("GET", "/api/v1/servers/fx/logs?toolbox=procs&tail=50", None)
        .await;
    assert_eq!(logs.0, 200, "{:?}", logs.1);
    assert!(
        logs.1.as_str().unwrap().contains("fixture-mcp ready"),
        "{:?}",
        logs.1
    );
    assert!(
        srv["instance"]["container_id"]
            .as_str()
            .unwrap()
            .parse::<u32>()
            .is_ok(),
        "a process server's instance id is its pid"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removing_a_server_kills_all_its_processes() {
    let s = Setup::new(Duration::from_secs(60)).await;
    let srv = s.deploy("fx", "fixture").await;
    let pid: u32 = srv["instance"]["container_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut m = s.mcp("fx");
    m.initialize().await;
    let forked = m.tool("fork", json!({ "n": 3 })).await;
    assert_eq!(
        forked["result"]["structuredContent"]["spawned"], 3,
        "{forked}"
    );
    // The processes descending from the instance's: the server and its children (and,
    // in a bubblewrap sandbox, bwrap's own init, its PID namespace's PID 1).
    let group = || -> usize {
        let parent = |p: u32| -> Option<u32> {
            let st = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            // Field 4 of /proc/PID/stat (after the command name) is the parent's pid.
            st.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        };
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|p| {
                let mut at = *p;
                for _ in 0..16 {
                    if at == pid {
                        return true;
                    }
                    match parent(at) {
                        Some(up) if up > 1 => at = up,
                        _ => return false,
                    }
                }
                false
            })
            .count()
    };
    assert!(group() >= 4, "the server and its three children run");
    s.plane
        .ok("DELETE", "/api/v1/servers/fx?toolbox=procs", json!(null))
        .await;
    toolbelt_e2e::eventually::eventually("the server row purged", WAIT, || async {
        (s.plane
            .api("GET", "/api/v1/servers/fx?toolbox=procs", None)
            .await
            .0
            == 404)
            .then_some(())
    })
    .await;
    toolbelt_e2e::eventually::eventually("every process of the server gone", WAIT, || async {
        (group() == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mcp_server_time_from_pypi_answers_the_official_python_sdk_through_the_bridge() {
    let python = std::env::var("TOOLBELT_TEST_PYTHON").expect(
        "TOOLBELT_TEST_PYTHON: a Python with mcp and mcp-server-time (scripts/test.sh makes one)",
    );
    let s = Setup::new(Duration::from_secs(60)).await;
    s.plane.catalog(json!({ "slug": "time-pypi", "source": { "type": "package", "manager": "pypi", "package": "mcp-server-time",
        "command": [python.clone(), "-m", "mcp_server_time", "--local-timezone", "UTC"] }, "transport": "stdio" })).await;
    let v = s.deploy("clock", "time-pypi").await;
    assert_eq!(v["instance"]["tool_count"], 2);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/dtma_time.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(format!("http://{}/mcp/clock", s.dtma.addr))
        .arg(s.plane.key_file())
        .arg(&s.toolbox_id)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["tools"], json!(["convert_time", "get_current_time"]));
    assert_eq!(r["is_error"], false);
    assert!(
        r["text"]
            .as_str()
            .unwrap()
            .contains("\"timezone\": \"UTC\""),
        "{r}"
    );
    assert_eq!(r["bad_is_error"], true);
}
