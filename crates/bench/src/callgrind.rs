//! Instructions per `tools/call`, counted by callgrind: stable on a noisy machine where
//! timings are not. The gateway and the DTMA run under `valgrind --tool=callgrind` with
//! collection zeroed before and dumped after `calls` calls at c=1; an idle window of the
//! same length is counted too and subtracted (heartbeats, the registry's refresh).

use crate::gateway::gateway;
use crate::procs::{self, Launch, Proc};
use crate::rpc::{self, Rpc};
use anyhow::{Context, Result};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use toolbelt_testkit::fixture::static_fixture_bin;
use toolbelt_testkit::proc::free_port;

fn control(args: &[&str]) -> Result<()> {
    let out = std::process::Command::new("callgrind_control")
        .args(args)
        .output()
        .context("callgrind_control (install valgrind)")?;
    anyhow::ensure!(out.status.success(), "callgrind_control {args:?} failed");
    Ok(())
}

/// The instructions a process executed since its counters were last zeroed.
fn dump(dir: &Path, p: &Proc) -> Result<u64> {
    let pid = p.pid().to_string();
    let before: Vec<_> = files(dir, &pid)?;
    control(&["--dump", &pid])?;
    let start = Instant::now();
    loop {
        let now = files(dir, &pid)?;
        if let Some(f) = now.iter().find(|f| !before.contains(f)) {
            // The file is complete once its totals line is in.
            let text = std::fs::read_to_string(f)?;
            if let Some(n) = text
                .lines()
                .find_map(|l| l.strip_prefix("totals: ").or(l.strip_prefix("summary: ")))
            {
                return Ok(n.split_whitespace().next().unwrap_or("0").parse()?);
            }
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(60),
            "no callgrind dump"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn files(dir: &Path, pid: &str) -> Result<Vec<std::path::PathBuf>> {
    Ok(std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(&format!(".{pid}")))
        })
        .collect())
}

/// Instructions per call of each of `procs` during `calls` calls on `rpc`, minus an idle
/// window as long.
async fn per_call(
    dir: &Path,
    procs: &[&Proc],
    rpc: &Rpc,
    tool: &str,
    calls: usize,
) -> Result<Vec<f64>> {
    let args = json!({ "name": tool, "arguments": { "text": "benchmark" } });
    for _ in 0..50 {
        rpc.call_tool(&args).await?;
    }
    for p in procs {
        control(&["--zero", &p.pid().to_string()])?;
    }
    let t = Instant::now();
    for _ in 0..calls {
        rpc.call_tool(&args).await?;
    }
    let took = t.elapsed();
    let mut busy = Vec::new();
    for p in procs {
        busy.push(dump(dir, p)?);
    }
    for p in procs {
        control(&["--zero", &p.pid().to_string()])?;
    }
    tokio::time::sleep(took).await;
    let mut out = Vec::new();
    for (p, b) in procs.iter().zip(busy) {
        out.push(b.saturating_sub(dump(dir, p)?) as f64 / calls as f64);
    }
    Ok(out)
}

pub async fn run(calls: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    // BENCH_CALLGRIND_DIR keeps the dumps (for callgrind_annotate).
    let cg = std::env::var_os("BENCH_CALLGRIND_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("callgrind"));
    std::fs::create_dir_all(&cg)?;
    let wrap = |name: &str| Launch {
        wrap: vec![
            "valgrind".into(),
            "--tool=callgrind".into(),
            "--quiet".into(),
            format!("--callgrind-out-file={}/{name}.%p", cg.display()),
        ],
        ..Launch::default()
    };
    let upstream = procs::upstream(free_port(), dir.path()).await?;
    let up_url = format!("{}/mcp", upstream.url);
    let gw = gateway(
        &dir.path().join("cp"),
        &wrap("gateway"),
        Duration::from_secs(300),
    )
    .await?;
    gw.api.remote("far", "rfx", &up_url).await?;
    let token = gw.api.agent("caller").await?;
    gw.api.grant_server("caller", "rfx", "far").await?;
    let fx = static_fixture_bin().display().to_string();
    let source = json!({ "type": "package", "manager": "binary", "package": "fixture-mcp", "command": [fx] });
    let entry = json!({ "slug": "fx", "source": source, "transport": "stdio" });
    gw.api.call("POST", "/api/v1/catalog", entry).await?;
    let (_, dtma) = gw
        .api
        .toolbox("calls", dir.path(), "process", &wrap("dtma"))
        .await?;
    gw.api.server("fx", "fx", "calls").await?;
    gw.api.grant_server("caller", "fx", "calls").await?;
    gw.api
        .wait_running("far", 1, Duration::from_secs(120))
        .await?;
    gw.api
        .wait_running("calls", 1, Duration::from_secs(300))
        .await?;
    let mcp = format!("{}/mcp", gw.proc.url);
    let agent = Rpc::connect(&rpc::http(), &mcp, &token).await?;
    let remote = per_call(&cg, &[&gw.proc], &agent, "rfx__echo", calls).await?[0];
    let stdio = per_call(&cg, &[&gw.proc, &dtma], &agent, "fx__echo", calls).await?;
    let (gw_stdio, dtma_stdio) = (stdio[0], stdio[1]);
    println!(
        "## gateway instructions per call (callgrind, {calls} calls at c=1, idle window subtracted)\n"
    );
    println!("| route | gateway | DTMA | total |\n|---|---|---|---|");
    println!(
        "| remote: gateway → upstream | {:.0} | – | {:.0} |",
        remote, remote
    );
    println!(
        "| DTMA stdio: gateway → DTMA → fixture | {:.0} | {:.0} | {:.0} |",
        gw_stdio,
        dtma_stdio,
        gw_stdio + dtma_stdio
    );
    drop((dtma, upstream));
    Ok(())
}
