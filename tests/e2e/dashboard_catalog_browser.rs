//! The admin's catalog and vault upkeep in a real browser: a Marketplace entry edited as
//! YAML on its edit page (a renamed slug and text that does not parse are refused at
//! their field, the entry unchanged; a good edit shows on the entry), and an old vault key
//! deleted after a rotation, behind a confirmation page (the current key offers no
//! Delete). Every page passes the labels / Tab / console checks.

use serde_json::json;
use std::time::Duration;
use toolbelt_e2e::browser::Browser;
use toolbelt_e2e::plane::Plane;

/// Replaces `from` by `to` in the edit page's textarea (as a user editing it would).
async fn edit_spec(b: &Browser, from: &str, to: &str) {
    let script = format!(
        "const t = document.getElementById('catalog-edit-spec'); \
         if (!t.value.includes({from:?})) return t.value; \
         t.value = t.value.replace({from:?}, {to:?}); return null;"
    );
    let r = b.js(&script).await;
    assert!(r.is_null(), "{from:?} is not in the spec: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_admin_edits_a_catalog_entry_and_deletes_an_old_vault_key() {
    let plane = Plane::up(Duration::from_millis(300)).await;
    let admin = plane.admin().clone();
    admin
        .rest
        .ok(
            "POST",
            "/api/v1/catalog",
            json!({ "slug": "weather", "display_name": "Weather", "description": "old words",
                    "source": { "type": "image", "image": "weather" }, "transport": "stdio" }),
        )
        .await;
    // A secret, so the rotation moves something off the old key.
    admin
        .rest
        .ok(
            "POST",
            "/api/v1/secrets",
            json!({ "name": "api-key", "value": "v" }),
        )
        .await;
    let b = Browser::open(&plane.url).await;
    b.sign_in(&admin).await;

    // The entry's spec, as YAML, on its edit page.
    b.goto("/marketplace/weather").await;
    b.follow("#entry-edit").await.checked().await;
    assert_eq!(b.path().await, "/marketplace/weather/edit");
    // A slug cannot be renamed: refused at `slug`, nothing changed.
    edit_spec(&b, "slug: weather", "slug: climate").await;
    b.follow_status("#catalog-edit-submit", 422).await;
    b.until_text("#catalog-error-slug", "slugs cannot be renamed")
        .await;
    // Text that is not YAML: refused at `spec`, the text kept for fixing.
    b.fill("#catalog-edit-spec", "slug: [").await;
    b.follow_status("#catalog-edit-submit", 422).await;
    b.until("#catalog-error-spec").await;
    assert_eq!(
        b.js("return document.getElementById('catalog-edit-spec').value;")
            .await,
        "slug: ["
    );
    let unchanged = admin.rest.get("/api/v1/catalog/weather").await;
    assert_eq!(unchanged["description"], "old words", "{unchanged}");
    // A good edit: saved, and the entry shows it.
    b.goto("/marketplace/weather/edit").await;
    edit_spec(&b, "old words", "new words").await;
    b.follow("#catalog-edit-submit").await;
    b.until_text("#notice", "entry weather saved").await;
    assert!(b.path().await.starts_with("/marketplace/weather?done="));
    assert!(b.page_text().await.contains("new words"));
    let saved = admin.rest.get("/api/v1/catalog/weather").await;
    assert_eq!(saved["description"], "new words", "{saved}");

    // The vault: the current key has no Delete; after a rotation the old one does.
    b.goto("/admin").await;
    let old = b
        .js("return document.getElementById('kek-current').closest('tr').id.slice(4);")
        .await
        .as_str()
        .unwrap()
        .to_string();
    assert!(!b.has(&format!("#kek-delete-{old}")).await);
    b.confirm("#vault-rotate-submit", None).await;
    b.until_text("#rotation-remaining", "0").await;
    b.follow(&format!("#kek-delete-{old}"))
        .await
        .checked()
        .await;
    assert!(b.text("h1").await.contains(&old));
    // Cancel keeps it; confirming deletes it.
    b.follow("#cancel-delete").await;
    assert!(b.has(&format!("#kek-{old}")).await);
    b.follow(&format!("#kek-delete-{old}")).await;
    b.follow("#confirm-delete").await;
    b.until_text("#notice", &format!("key {old} deleted")).await;
    assert!(!b.has(&format!("#kek-{old}")).await);
    let keys = admin.rest.get("/api/v1/vault/keys").await;
    assert!(
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["id"] != old.as_str()),
        "{keys}"
    );
    b.checked().await;
    b.close().await;
}
