//! Browser test 1, continued (issue 9): an admin's server page shows charts with the data
//! of the calls just made — drawn (SVG polylines with points) and summarised (the numbers
//! match the calls) — and they fill in without a reload (the `window` marker survives);
//! its log tail shows the last lines at once and new ones live, bounded in the page.

use serde_json::json;
use std::time::Duration;
use toolbelt_e2e::browser::Browser;
use toolbelt_e2e::plane::Plane;
use toolbelt_testkit::fixture::fixture_bin;

/// `toolbelt up` without Docker (the `local` toolbox on the process runtime), the fixture
/// server in the catalog, metrics written every 200 ms instead of every 10 s.
async fn plane() -> Plane {
    let plane = Plane::start_with(Duration::from_millis(300), |o| {
        o.local_toolbox = true;
        o.runtime = Some(toolbelt_model::toolbox::ToolboxKind::Process);
        o.metrics.flush_every = Duration::from_millis(200);
    })
    .await;
    let command = [fixture_bin().display().to_string()];
    plane
        .admin()
        .catalog(json!({ "slug": "fixture", "transport": "stdio",
            "source": { "type": "package", "manager": "binary", "package": "fixture-mcp", "command": command } }))
        .await;
    plane
}

/// The number of points in the chart's data lines: polylines and lone-minute dots in the
/// line colours (axes and grid are polylines too, in greys).
const POINTS: &str = "const svg = document.getElementById(arguments[0]); if (!svg) return -1; \
    const data = ['#1F4E79', '#C45911']; let n = 0; \
    svg.querySelectorAll('polyline').forEach(p => { \
      if (!data.includes((p.getAttribute('stroke') || '').toUpperCase())) return; \
      n += p.getAttribute('points').trim().split(/\\s+/).length; }); \
    return n + svg.querySelectorAll('circle').length;";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_server_page_charts_the_calls_made_without_reload() {
    let plane = plane().await;
    let admin = plane.admin().clone();
    let tools = admin.deploy("tools", "fixture").on("local").await;
    tools.running().await;
    let id = tools.id().await;
    let bot = admin.agent("charted").await;
    admin.grant("charted").server("tools", "local").await;

    let b = Browser::open(&plane.url).await;
    b.sign_in(&admin)
        .await
        .goto(&format!("/servers/{id}"))
        .await;
    b.until_text("#chart-calls-empty", "through /mcp").await;
    b.mark().await;

    // Four calls and one that fails, through the gateway as an agent makes them.
    let mut sdk = bot.mcp("legacy").await;
    for i in 0..4 {
        let r = sdk
            .call("tools__echo", json!({ "text": format!("hi {i}") }))
            .await;
        assert_eq!(r["structured"]["text"], format!("hi {i}"), "{r}");
    }
    sdk.call("tools__fail", json!({ "mode": "rpc" })).await;
    sdk.quit().await;

    // The charts appear by themselves, with the numbers of those calls.
    let calls = b.until_text("#chart-calls-summary", "5 calls").await;
    assert!(calls.starts_with("5 calls in the last hour"), "{calls}");
    let errors = b.text("#chart-errors-summary").await;
    assert!(
        errors.starts_with("1 error in 5 calls (20.0 %)"),
        "{errors}"
    );
    b.still_marked().await;
    for chart in ["chart-calls", "chart-errors", "chart-latency"] {
        let points = b
            .js(&POINTS.replace("arguments[0]", &format!("'{chart}'")))
            .await;
        assert!(
            points.as_i64().unwrap_or(0) >= 1,
            "{chart} draws its data: {points}"
        );
        let label = b.attr(&format!("#{chart}"), "aria-labelledby").await;
        assert_eq!(label, Some(format!("{chart}-title {chart}-desc")));
    }
    // Calls per minute: one point per minute of the hour (a minute without calls is 0).
    let calls_points = b.js(&POINTS.replace("arguments[0]", "'chart-calls'")).await;
    assert!(calls_points.as_i64().unwrap() >= 60, "{calls_points}");
    assert!(
        b.has("#chart-memory").await || b.has("#chart-memory-empty").await,
        "a memory chart, or its empty state"
    );
    b.screenshot("server-charts").await;

    // Another range is a plain link; the numbers are the same calls.
    b.follow("#range-24h").await;
    assert_eq!(
        b.attr("#range-24h", "aria-current").await.as_deref(),
        Some("page")
    );
    let day = b.text("#chart-calls-summary").await;
    assert!(day.starts_with("5 calls in the last 24 hours"), "{day}");
    b.checked().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_server_page_tails_its_log_live_and_bounded() {
    let plane = plane().await;
    let admin = plane.admin().clone();
    let tools = admin.deploy("tools", "fixture").on("local").await;
    tools.running().await;
    let id = tools.id().await;
    let bot = admin.agent("logger").await;
    admin.grant("logger").server("tools", "local").await;

    let b = Browser::open(&plane.url).await;
    b.sign_in(&admin)
        .await
        .goto(&format!("/servers/{id}"))
        .await;
    // In the page as rendered (no script needed): the fixture's first words on stderr.
    b.until_text("#server-logs", "fixture-mcp ready").await;
    b.until("#server-logs[data-log-state=following]").await;
    b.mark().await;

    // 1 MiB of stderr in 1 KiB lines: far more than the page keeps.
    let mut sdk = bot.mcp("legacy").await;
    let r = sdk
        .call("tools__stderr_flood", json!({ "mb": 1, "line_kb": 1 }))
        .await;
    sdk.quit().await;
    assert!(format!("{r}").contains("wrote 1 MB"), "{r}");
    b.until_js(
        "the new lines to arrive, the oldest dropped past 200",
        "const lines = document.querySelectorAll('#server-logs .log-line'); \
         return lines.length === 200 && lines[199].textContent.length === 1024 \
             && /^e+$/.test(lines[199].textContent) \
             && ![...lines].some(l => l.textContent.includes('fixture-mcp ready'));",
    )
    .await;
    b.still_marked().await;
    b.checked().await;
    b.close().await;
}
