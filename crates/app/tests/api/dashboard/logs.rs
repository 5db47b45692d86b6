//! The server page's log tail without a toolbox that answers: the page says why and still
//! renders; the stream says why in one `unavailable` event and asks the browser to retry;
//! another member's server has no stream (404).

use super::browser::{Browser, PASSWORD, catalog_fx, deployed, member};
use crate::support::App;
use http::StatusCode;
use toolbelt_testkit::db::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_tail_says_why_it_is_empty_and_is_not_anothers() {
    let app = App::new(TestDb::sqlite().await).await;
    catalog_fx(&app).await;
    let (_, ann) = member(&app, "ann@example.com").await;
    member(&app, "bob@example.com").await;
    let (_, srv) = deployed(&app, &ann, "ann").await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;

    let page = b.get(&format!("/servers/{srv}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.has(r#"id="server-logs-unavailable""#), "{}", page.html);
    assert!(page.has("has no DTMA yet"), "{}", page.html);
    assert!(page.has(&format!(r#"data-log-stream="/servers/{srv}/logs/stream""#)));

    let stream = b.get(&format!("/servers/{srv}/logs/stream")).await;
    assert_eq!(stream.status, StatusCode::OK, "{}", stream.html);
    assert!(
        stream.html.contains("event: unavailable"),
        "{}",
        stream.html
    );
    assert!(stream.html.contains("retry: 5000"), "{}", stream.html);
    assert!(stream.html.contains("has no DTMA yet"));

    let mut bob = Browser::new(&app);
    bob.sign_in("bob@example.com", PASSWORD).await;
    let other = bob.get(&format!("/servers/{srv}/logs/stream")).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.html);
    assert!(
        !other.html.contains("DTMA"),
        "nothing about it: {}",
        other.html
    );
}
