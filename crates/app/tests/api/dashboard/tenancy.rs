//! A member never sees another member's things: their ids in a URL are 404, as in the API,
//! and a post to one changes nothing.

use super::browser::{Browser, PASSWORD, catalog_fx, deployed, member};
use crate::support::App;
use http::StatusCode;
use toolbelt_testkit::db::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_members_server_is_not_found() {
    let app = App::new(TestDb::sqlite().await).await;
    catalog_fx(&app).await;
    let (_, ann) = member(&app, "ann@example.com").await;
    let (_, bob) = member(&app, "bob@example.com").await;
    let (_, bob_srv) = deployed(&app, &bob, "bob").await;
    deployed(&app, &ann, "ann").await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    for path in [
        format!("/servers/{bob_srv}"),
        format!("/servers/{bob_srv}/delete"),
        "/servers/bob-srv".into(),
    ] {
        let p = b.get(&path).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "GET {path}: {}", p.html);
        assert!(!p.has("bob-box"), "the page tells nothing about it");
    }
    for action in ["stop", "restart", "delete"] {
        let p = b.post(&format!("/servers/{bob_srv}/{action}"), &[]).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{action}: {}", p.html);
    }
    let list = b.get("/servers").await;
    assert!(list.has("ann-srv") && !list.has("bob-srv"), "{}", list.html);
    let home = b.get("/").await;
    assert!(!home.has("bob-box"));
    let s = app.get(&format!("/api/v1/servers/{bob_srv}"), &bob).await;
    assert_eq!(s.body["desired"], "running", "bob's server is untouched");
}
