//! The browser harness checks what it says it checks: a clean page passes; a script
//! error, a missing favicon, an unlabelled input and a control Tab cannot reach each
//! fail the test naming the page; JavaScript off means scripts do not run. Served by a
//! small page server here, so these hold whatever the dashboard serves.

use axum::response::Html;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use toolbelt_e2e::browser::{Browser, Options};

const ICON: &str = "<link rel=icon href='data:,'>";

fn page(head: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=en><head><title>t</title>{head}</head><body>{body}</body></html>"
    ))
}

/// Serves the fixture pages on loopback; their base URL.
async fn pages() -> String {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/good",
            get(|| async {
                page(
                    ICON,
                    "<form><label for=q>Search</label><input id=q name=q>\
                     <label>Kind <select name=k><option>a</option></select></label>\
                     <button type=submit>Go</button></form><a href='/good'>Again</a>\
                     <input type=hidden name=csrf value=x>\
                     <script>document.title = 'scripted'</script>",
                )
            }),
        )
        .route(
            "/script-error",
            get(|| async { page(ICON, "<script>no_such_function()</script>") }),
        )
        .route("/no-favicon", get(|| async { page("", "<p>hi</p>") }))
        .route(
            "/unlabelled",
            get(|| async { page(ICON, "<input name=q><button>Go</button>") }),
        )
        .route(
            "/tab-trap",
            get(|| async {
                page(
                    ICON,
                    "<input aria-label=trap onkeydown=\"if (event.key === 'Tab') event.preventDefault()\">\
                     <button>Unreachable</button>",
                )
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    url
}

/// Runs `f` on a fresh browser at `base` and returns its panic message, if any.
async fn failure_of<F, Fut>(base: &str, f: F) -> Option<String>
where
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = ()>,
{
    let b = Browser::open(base).await;
    let r = AssertUnwindSafe(f(b)).catch_unwind().await;
    r.err().map(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_checks_catch_console_errors_labels_and_tab_traps() {
    let base = pages().await;

    let b = Browser::open(&base).await;
    b.goto("/good").await.checked().await;
    assert_eq!(b.js("return document.title").await, "scripted");
    b.mark().await.still_marked().await;
    b.close().await;

    let err = failure_of(&base, |b| async move {
        b.goto("/script-error").await;
        b.close().await;
    })
    .await
    .expect("a script error fails the page");
    assert!(
        err.contains("/script-error") && err.contains("no_such_function"),
        "{err}"
    );

    let err = failure_of(&base, |b| async move {
        b.goto("/no-favicon").await;
        b.close().await;
    })
    .await
    .expect("a missing favicon fails the page");
    assert!(err.contains("favicon") || err.contains("404"), "{err}");

    let err = failure_of(&base, |b| async move {
        b.goto("/unlabelled").await.accessible().await;
        b.close().await;
    })
    .await
    .expect("an unlabelled input fails the page");
    assert!(
        err.contains("without a label") && err.contains("name=\"q\""),
        "{err}"
    );

    let err = failure_of(&base, |b| async move {
        b.goto("/tab-trap").await.accessible().await;
        b.close().await;
    })
    .await
    .expect("a control Tab cannot reach fails the page");
    assert!(
        err.contains("Tab does not reach") && err.contains("Unreachable"),
        "{err}"
    );

    let err = failure_of(&base, |b| async move {
        b.goto("/good").await.mark().await;
        b.goto("/good").await.still_marked().await;
        b.close().await;
    })
    .await
    .expect("a reload drops the marker");
    assert!(err.contains("reloaded"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_without_javascript_runs_no_script() {
    let base = pages().await;
    let b = Browser::with(
        &base,
        Options {
            no_javascript: true,
        },
    )
    .await;
    b.goto("/good").await;
    assert_eq!(
        b.js("return document.title").await,
        "t",
        "the page's script did not run"
    );
    b.checked().await;
    b.close().await;
}
