//! Resource limits of the process runtime that hold: a server flooding stderr (in long
//! lines, or with no newline at all) leaves the DTMA's memory bounded, and its memory
//! limit holds on resident memory (a memory cgroup), not only on `RLIMIT_DATA`, which a
//! shared mapping escapes.

use serde_json::{Value, json};
use std::time::Duration;
use toolbelt_e2e::DtmaProc;
use toolbelt_e2e::mcp::Mcp;
use toolbelt_e2e::plane::Plane;
use toolbelt_testkit::fixture::fixture_bin;

const WAIT: Duration = Duration::from_secs(30);

fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

struct World {
    plane: Plane,
    dtma: DtmaProc,
    tbx: String,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new(limits: Value) -> World {
        let plane = Plane::start(Duration::from_millis(300)).await;
        let (tbx, join) = plane.toolbox("limits").await;
        let dir = tempfile::tempdir().unwrap();
        let dtma = DtmaProc::start(
            &plane.url,
            Some(&join),
            &dir.path().join("dtma"),
            "process",
            &[("TOOLBELT_LOG", "info")],
        )
        .await;
        plane
            .catalog(
                json!({ "slug": "fx", "source": { "type": "package", "manager": "binary",
            "package": "fixture-mcp", "command": [fixture_bin().display().to_string()] },
            "transport": "stdio", "limits": limits }),
            )
            .await;
        plane
            .ok(
                "POST",
                "/api/v1/servers",
                json!({ "name": "fx", "catalog": "fx", "toolbox": "limits" }),
            )
            .await;
        plane
            .wait_server("fx", "limits", "fx running", WAIT, |v| {
                v["status"] == "running"
            })
            .await;
        World {
            plane,
            dtma,
            tbx,
            _dir: dir,
        }
    }

    async fn mcp(&self) -> Mcp {
        let mut m = Mcp::new(
            &format!("http://{}/mcp/fx", self.dtma.addr),
            &self.plane.sign(&self.tbx),
        );
        m.initialize().await;
        m
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_log_flood_and_a_newline_free_stderr_leave_the_dtma_memory_bounded() {
    let w = World::new(json!({ "memory_mb": 256, "cpus": 1.0, "pids": 64 })).await;
    let pid = w.dtma.child.id();
    let before = status_kb(pid, "VmHWM:");
    let m = w.mcp().await;
    for (what, line_kb) in [("newline-free", 0), ("256 KiB lines", 256)] {
        let r = m
            .tool("stderr_flood", json!({ "mb": 200, "line_kb": line_kb }))
            .await;
        assert_eq!(
            r["result"]["content"][0]["text"], "wrote 200 MB to stderr",
            "{what}: {r}"
        );
        let peak = status_kb(pid, "VmHWM:");
        println!(
            "DTMA peak RSS after 200 MB of {what} stderr: {} MiB (before: {} MiB)",
            peak / 1024,
            before / 1024
        );
        assert!(
            peak < before + 64 * 1024,
            "{what}: the DTMA's peak RSS grew from {before} kB to {peak} kB"
        );
    }
    // The log still answers, with what the server said last.
    let (s, logs) = w
        .plane
        .api("GET", "/api/v1/servers/fx/logs?toolbox=limits&tail=5", None)
        .await;
    assert_eq!(s, 200, "{logs}");
    let text = logs.as_str().unwrap();
    assert!(text.len() < 64 * 1024, "{} bytes of log tail", text.len());
    assert!(
        text.contains("[cut]") || text.contains("dropped"),
        "{text:.300}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_memory_limit_holds_on_resident_memory_not_only_on_the_data_segment() {
    let w = World::new(json!({ "memory_mb": 64, "cpus": 1.0, "pids": 64 })).await;
    let m = w.mcp().await;
    let st: Value = toolbelt_net::http::client()
        .get(format!("http://{}/v1/servers/fx/stats", w.dtma.addr))
        .bearer_auth(w.plane.sign(&w.tbx))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["memory_limit_bytes"], 64 << 20, "{st}");
    // A shared mapping is not in RLIMIT_DATA: only a cgroup stops it.
    let r = m.tool("alloc_shared", json!({ "mb": 200 })).await;
    assert_eq!(
        r["error"]["code"], -32007,
        "the server was killed at its limit, not left holding 200 MB: {r}"
    );
    let back = w
        .plane
        .wait_server("fx", "limits", "fx restarted", WAIT, |v| {
            v["status"] == "running" && v["restart_count"] == 1
        })
        .await;
    assert_eq!(back["health"], "ok");
}
