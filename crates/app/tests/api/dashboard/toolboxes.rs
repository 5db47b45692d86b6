//! Toolboxes: create, the join command with its one-time token, delete; roles and
//! tenancy as the API's.

use super::browser::{Browser, PASSWORD, member};
use crate::support::App;
use http::StatusCode;
use toolbelt_testkit::db::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toolboxes_are_created_joined_and_deleted_and_others_are_not_found() {
    let app = App::new(TestDb::sqlite().await).await;
    let (_, ann) = member(&app, "ann@example.com").await;
    member(&app, "bob@example.com").await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    let list = b.get("/toolboxes").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        !list.has(r#"id="toolbox-shared""#),
        "members are not offered shared toolboxes"
    );
    let bad = b.post("/toolboxes", &[("name", "has space")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.has(r#"id="toolbox-name-error""#), "{}", bad.html);
    let shared = b
        .post("/toolboxes", &[("name", "sneaky"), ("shared", "on")])
        .await;
    assert_eq!(shared.status, StatusCode::FORBIDDEN, "{}", shared.html);
    assert!(shared.has(r#"id="toolbox-create-error""#));
    let made = b.post("/toolboxes", &[("name", "laptop")]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.html);
    let page = made
        .location
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let detail = b.get(&page).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.html);
    assert!(detail.has(r#"id="toolbox-servers-empty""#));
    let join = b.post(&format!("{page}/join-token"), &[]).await;
    assert_eq!(join.status, StatusCode::OK, "{}", join.html);
    assert!(
        join.has("toolbelt dtma --server http://toolbelt.test --join-token tbj_"),
        "{}",
        join.html
    );
    assert!(join.has(r#"id="copy-join-command""#));
    let api = app.get("/api/v1/toolboxes", &ann).await;
    assert!(
        api.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "laptop")
    );

    let mut bob = Browser::new(&app);
    bob.sign_in("bob@example.com", PASSWORD).await;
    assert_eq!(bob.get(&page).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        bob.get(&format!("{page}/delete")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        bob.post(&format!("{page}/join-token"), &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        bob.post(&format!("{page}/delete"), &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(!bob.get("/toolboxes").await.has("laptop"));

    assert_eq!(
        b.get(&format!("{page}/delete")).await.status,
        StatusCode::OK
    );
    let gone = b.post(&format!("{page}/delete"), &[]).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "{}", gone.html);
    assert_eq!(b.get(&page).await.status, StatusCode::NOT_FOUND);
}
