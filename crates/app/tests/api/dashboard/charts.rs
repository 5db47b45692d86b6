//! Charts on the server and toolbox pages: empty states that say what to do, SVG with the
//! data once the store has rows, the range links, and another member's ids 404 whatever
//! the range.

use super::browser::{Browser, PASSWORD, catalog_fx, deployed, member};
use crate::support::App;
use http::StatusCode;
use toolbelt_model::{ServerId, ToolboxId};
use toolbelt_store::metrics::{self, CallMinute, Subject};
use toolbelt_testkit::db::TestDb;

/// Five calls (one failed) in the current minute on two tools, as the meter's flush
/// writes them; and a CPU/memory sample of the server and of its toolbox.
async fn some_metrics(app: &App, tb: &str, srv: &str) {
    let now = metrics::this_minute();
    let server = ServerId::parse(srv).unwrap();
    let row = |tool: &str, calls, errors, p50_us, p99_us| CallMinute {
        minute: now,
        server_id: server.clone(),
        tool: tool.into(),
        calls,
        errors,
        p50_us,
        p99_us,
    };
    let mut c = app.store.conn().await.unwrap();
    metrics::write_calls(
        &mut c,
        "test-replica",
        &[
            row("echo", 3, 1, 1_000, 2_000),
            row("add", 2, 0, 1_000, 8_000),
        ],
    )
    .await
    .unwrap();
    let s = Subject::Server(server);
    metrics::record_resources(&mut c, now, &s, Some(12.5), Some(48 << 20))
        .await
        .unwrap();
    let t = Subject::Toolbox(ToolboxId::parse(tb).unwrap());
    metrics::record_resources(&mut c, now, &t, Some(40.0), Some(3 << 30))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_charts_show_the_calls_made_and_empty_states_say_what_to_do() {
    let app = App::new(TestDb::sqlite().await).await;
    catalog_fx(&app).await;
    let (_, ann) = member(&app, "ann@example.com").await;
    let (tb, srv) = deployed(&app, &ann, "ann").await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;

    let before = b.get(&format!("/servers/{srv}")).await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(before.has(r#"id="chart-calls-empty""#), "{}", before.html);
    assert!(
        before.has("through /mcp"),
        "the empty state says what to do"
    );
    assert!(before.has(r#"id="chart-cpu-empty""#) && !before.has("<svg"));
    assert!(before.has(r#"id="range-1h" href="?range=1h" aria-current="page""#));

    some_metrics(&app, &tb, &srv).await;
    let after = b.get(&format!("/servers/{srv}")).await;
    for chart in ["calls", "errors", "latency", "cpu", "memory"] {
        assert!(
            after.has(&format!(r#"id="chart-{chart}" class="chart" role="img""#)),
            "{chart}: {}",
            after.html
        );
        assert!(after.has(&format!(r#"<title id="chart-{chart}-title">"#)));
        assert!(after.has(&format!(r#"id="chart-{chart}-summary""#)));
    }
    assert!(after.has("<polyline"), "the calls line is drawn");
    assert!(after.has("5 calls in the last hour; the busiest minute had 5"));
    assert!(after.has("1 error in 5 calls (20.0 %) in the last hour"));
    assert!(after.has("p99 8.0 ms"), "p99 is the slowest tool's");
    assert!(after.has("CPU 12.5 % latest") && after.has("Memory 48.0 MiB latest"));
    eprintln!(
        "server page with five charts: {} bytes of HTML",
        after.html.len()
    );

    let week = b.get(&format!("/servers/{srv}?range=7d")).await;
    assert_eq!(week.status, StatusCode::OK);
    assert!(week.has(r#"id="range-7d" href="?range=7d" aria-current="page""#));
    assert!(week.has("5 calls in the last 7 days"), "{}", week.html);
    eprintln!("the same over 7 days: {} bytes of HTML", week.html.len());
    let odd = b.get(&format!("/servers/{srv}?range=bogus")).await;
    assert!(
        odd.has("5 calls in the last hour"),
        "an unknown range is an hour"
    );

    let toolbox = b.get(&format!("/toolboxes/{tb}?range=24h")).await;
    assert_eq!(toolbox.status, StatusCode::OK);
    assert!(
        toolbox.has(r#"id="chart-cpu" class="chart""#),
        "{}",
        toolbox.html
    );
    assert!(toolbox.has("CPU 40 % latest") && toolbox.has("Memory 3.0 GiB latest"));
    assert!(toolbox.has(r#"id="range-24h" href="?range=24h" aria-current="page""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_members_charts_are_not_found() {
    let app = App::new(TestDb::sqlite().await).await;
    catalog_fx(&app).await;
    let (_, ann) = member(&app, "ann@example.com").await;
    member(&app, "bob@example.com").await;
    let (tb, srv) = deployed(&app, &ann, "ann").await;
    some_metrics(&app, &tb, &srv).await;
    let mut bob = Browser::new(&app);
    bob.sign_in("bob@example.com", PASSWORD).await;
    for path in [
        format!("/servers/{srv}?range=7d"),
        format!("/toolboxes/{tb}?range=1h"),
    ] {
        let p = bob.get(&path).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "GET {path}: {}", p.html);
        assert!(!p.has("<svg") && !p.has("calls in the last"), "{path}");
    }
}
