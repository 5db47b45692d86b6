//! The server page's Update image form: offered to admins only (like Deploy), and posted
//! through the same service as the API — a malformed digest is refused naming it, and a
//! toolbox without a DTMA answers why; the pin stays where it was.

use super::admin::admin_browser;
use super::browser::{Browser, PASSWORD, catalog_fx, deployed, member};
use crate::support::{ADMIN, App};
use http::StatusCode;
use toolbelt_model::ServerId;
use toolbelt_testkit::db::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_update_image_form_is_for_admins_and_goes_through_the_service() {
    let app = App::new(TestDb::sqlite().await).await;
    catalog_fx(&app).await;
    let (_, ann) = member(&app, "ann@example.com").await;
    let (_, srv) = deployed(&app, &ann, "ann").await;
    let pin = format!("sha256:{}", "a".repeat(64));
    let mut c = app.store.conn().await.unwrap();
    let id = ServerId::parse(&srv).unwrap();
    assert!(
        toolbelt_store::servers::pin_image(&mut c, &id, &pin)
            .await
            .unwrap()
    );
    drop(c);

    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    let page = b.get(&format!("/servers/{srv}")).await;
    assert!(page.has(&pin), "the pin is shown: {}", page.html);
    assert!(
        !page.has(r#"id="server-update-image""#),
        "members are not offered it"
    );

    let mut admin = admin_browser(&app).await;
    let page = admin.get(&format!("/servers/{srv}")).await;
    assert!(page.has(r#"id="server-update-image""#), "{}", page.html);
    let action = format!("/servers/{srv}/update-image");
    let bad = admin.post(&action, &[("digest", "sha256:nothex")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.has("64 lowercase hex"), "{}", bad.html);
    admin.get(&format!("/servers/{srv}")).await;
    let no_dtma = admin.post(&action, &[("digest", "")]).await;
    assert_eq!(
        no_dtma.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        no_dtma.html
    );
    assert!(no_dtma.has("has no DTMA yet"), "{}", no_dtma.html);
    let s = app.get(&format!("/api/v1/servers/{srv}"), ADMIN).await;
    assert_eq!(s.body["image_digest"], pin.as_str());
}
