//! The admin page (users, OAuth providers, vault keys) and the Marketplace's admin forms:
//! members are refused (403) on every admin page and post and nothing changes; a bad
//! email is 422 at its field and creates nothing; roles change and users are deleted
//! behind their question; keys rotate with the report shown; catalog entries are added
//! from YAML (errors at the spec's field) and deprecated.

use super::browser::{Browser, PASSWORD, catalog_fx, member};
use crate::support::{ADMIN, App};
use http::StatusCode;
use serde_json::json;
use toolbelt_testkit::db::TestDb;

/// The bootstrap admin signed in through the form (it gets a password first).
pub async fn admin_browser(app: &App) -> Browser<'_> {
    let me = app.get("/api/v1/me", ADMIN).await;
    let email = me.body["email"].as_str().unwrap().to_string();
    let r = app
        .call(
            http::Method::PUT,
            "/api/v1/me/password",
            Some(ADMIN),
            Some(json!({ "new_password": PASSWORD })),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let mut b = Browser::new(app);
    b.sign_in(&email, PASSWORD).await;
    b
}

async fn user_count(app: &App) -> usize {
    let v = app.get("/api/v1/users?limit=500", ADMIN).await;
    v.body["items"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_refused_on_every_admin_page_and_post_and_nothing_changes() {
    let app = App::new(TestDb::sqlite().await).await;
    catalog_fx(&app).await;
    let (ann_id, _) = member(&app, "ann@example.com").await;
    let admin_id = app.get("/api/v1/me", ADMIN).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    let home = b.get("/").await;
    assert!(
        !home.has(r#"id="nav-admin""#) && !home.has(r#"id="nav-tool-changes""#),
        "members are not offered the admin pages"
    );
    assert!(!home.has(r#"id="count-tool-changes""#));
    let market = b.get("/marketplace").await;
    assert!(!market.has(r#"id="catalog-create""#));
    assert!(
        !b.get("/marketplace/fx")
            .await
            .has(r#"id="entry-deprecate""#)
    );

    let kek = app.get("/api/v1/vault/keys", ADMIN).await.body["keys"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (users, audit) = (user_count(&app).await, app.audit_count().await);
    for path in [
        "/admin".to_string(),
        "/tool-changes".into(),
        format!("/admin/users/{ann_id}/delete"),
        format!("/admin/users/{admin_id}/delete"),
        "/marketplace/fx/edit".into(),
        format!("/admin/vault/keys/{kek}/delete"),
    ] {
        let p = b.get(&path).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "GET {path}: {}", p.html);
    }
    b.get("/").await;
    let spec = "slug: sneaky\ntransport: stdio\nsource: {type: image, image: x}\n";
    let fx_edit =
        "slug: fx\ndescription: defaced\ntransport: stdio\nsource: {type: image, image: x}\n";
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/admin/users".into(),
            vec![("email", "mallory@example.com"), ("role", "admin")],
        ),
        (
            format!("/admin/users/{ann_id}/role"),
            vec![("role", "admin")],
        ),
        (
            format!("/admin/users/{admin_id}/role"),
            vec![("role", "member")],
        ),
        (format!("/admin/users/{admin_id}/delete"), vec![]),
        (
            "/admin/providers".into(),
            vec![("name", "gh"), ("kind", "github"), ("client_id", "x")],
        ),
        ("/admin/vault/rotate".into(), vec![("new_key", "on")]),
        ("/marketplace".into(), vec![("spec", spec)]),
        ("/marketplace/fx/deprecate".into(), vec![]),
        ("/marketplace/fx/edit".into(), vec![("spec", fx_edit)]),
        (format!("/admin/vault/keys/{kek}/delete"), vec![]),
        ("/tool-changes/tch_nope/approve".into(), vec![]),
    ];
    for (path, fields) in &posts {
        let p = b.post(path, fields).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "POST {path}: {}", p.html);
    }
    assert_eq!(user_count(&app).await, users, "no user created or deleted");
    assert_eq!(app.audit_count().await, audit, "nothing audited");
    let me = app.get(&format!("/api/v1/users/{ann_id}"), ADMIN).await;
    assert_eq!(me.body["role"], "member");
    let fx = app.get("/api/v1/catalog/fx", ADMIN).await;
    assert_eq!(fx.body["status"], "available", "{}", fx.body);
    assert_eq!(fx.body["description"], "", "not edited: {}", fx.body);
    assert_eq!(app.get("/api/v1/catalog/sneaky", ADMIN).await.status, 404);
    let keys = app.get("/api/v1/vault/keys", ADMIN).await;
    assert_eq!(
        keys.body["keys"].as_array().unwrap().len(),
        1,
        "no key added"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_creates_users_with_field_errors_changes_roles_and_deletes_behind_the_question() {
    let app = App::new(TestDb::sqlite().await).await;
    let mut b = admin_browser(&app).await;
    let page = b.get("/admin").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.has(r#"id="nav-admin""#) && page.has(r#"aria-current="page">Admin"#));
    assert!(page.has(r#"id="user-create""#) && page.has(r#"id="vault-keys""#));

    let (users, audit) = (user_count(&app).await, app.audit_count().await);
    let bad = b
        .post(
            "/admin/users",
            &[
                ("email", "not-an-email"),
                ("role", "member"),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.has(r#"id="user-email-error""#), "{}", bad.html);
    assert!(bad.has(r#"aria-describedby="user-email-error""#));
    assert!(
        bad.has(r#"value="not-an-email""#),
        "the posted value is kept"
    );
    let bad_role = b
        .post(
            "/admin/users",
            &[("email", "x@example.com"), ("role", "root")],
        )
        .await;
    assert_eq!(bad_role.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_role.has(r#"id="user-role-error""#), "{}", bad_role.html);
    assert_eq!(user_count(&app).await, users, "nothing created");
    assert_eq!(app.audit_count().await, audit, "nothing audited");

    let made = b
        .post(
            "/admin/users",
            &[
                ("email", "Cat@Example.com"),
                ("role", "member"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.html);
    assert!(
        made.has(r#"id="user-token">tbu_"#),
        "token shown once: {}",
        made.html
    );
    assert!(made.has(r#"id="user-cat-example-com""#));
    assert!(
        !b.get("/admin").await.has(r#"id="user-token""#),
        "only once"
    );
    // The new member signs in with the password the admin gave.
    let mut cat = Browser::new(&app);
    cat.sign_in("cat@example.com", PASSWORD).await;

    let cat_id = app.get("/api/v1/users/cat@example.com", ADMIN).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    b.get("/admin").await;
    let role = b
        .post(&format!("/admin/users/{cat_id}/role"), &[("role", "admin")])
        .await;
    assert_eq!(role.status, StatusCode::SEE_OTHER, "{}", role.html);
    let api = app.get(&format!("/api/v1/users/{cat_id}"), ADMIN).await;
    assert_eq!(api.body["role"], "admin");
    assert!(
        cat.get("/admin").await.status == StatusCode::OK,
        "an admin now"
    );
    assert!(
        b.get("/admin")
            .await
            .has(r#"id="user-role-cat-example-com">admin"#),
        "the list shows the role"
    );

    let question = b.get(&format!("/admin/users/{cat_id}/delete")).await;
    assert_eq!(question.status, StatusCode::OK);
    assert!(question.has(r#"id="confirm-delete""#) && question.has("cat@example.com"));
    let gone = b.post(&format!("/admin/users/{cat_id}/delete"), &[]).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "{}", gone.html);
    assert_eq!(
        app.get(&format!("/api/v1/users/{cat_id}"), ADMIN)
            .await
            .status,
        404
    );
    assert_eq!(
        cat.get("/").await.status,
        StatusCode::SEE_OTHER,
        "signed out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_vault_keys_shows_the_report_and_moves_every_secret() {
    let app = App::new(TestDb::sqlite().await).await;
    let s = app
        .post(
            "/api/v1/secrets",
            ADMIN,
            json!({ "name": "some-key", "value": "v" }),
        )
        .await;
    assert!(s.status.is_success(), "{}", s.body);
    let before = app.get("/api/v1/vault/keys", ADMIN).await.body;
    let old = before["keys"][0]["id"].as_str().unwrap().to_string();
    let mut b = admin_browser(&app).await;
    let page = b.get("/admin").await;
    assert!(page.has(&format!(r#"id="kek-{old}""#)), "{}", page.html);
    let r = b.post("/admin/vault/rotate", &[("new_key", "on")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert!(r.has(r#"id="rotation""#), "{}", r.html);
    assert!(r.has(r#"id="rotation-rewrapped">1<"#), "{}", r.html);
    assert!(r.has(r#"id="rotation-remaining">0"#));
    let after = app.get("/api/v1/vault/keys", ADMIN).await.body;
    let keys = after["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{after}");
    let current = keys.iter().find(|k| k["current"] == true).unwrap();
    assert_ne!(current["id"], old.as_str(), "a fresh key is current");
    assert_eq!(current["secrets"], 1);
    assert!(r.has(&format!(
        r#"id="rotation-kek">{}<"#,
        current["id"].as_str().unwrap()
    )));
    let secret = app.get("/api/v1/secrets/some-key", ADMIN).await;
    assert!(
        secret.status.is_success(),
        "still readable: {}",
        secret.body
    );

    // The old key, wrapping nothing now, may be deleted behind a question; the current
    // one is not offered, and posting it anyway is the service's 409 in the vault section.
    let current = current["id"].as_str().unwrap().to_string();
    let page = b.get("/admin").await;
    assert!(
        page.has(&format!(r#"id="kek-delete-{old}""#)),
        "{}",
        page.html
    );
    assert!(!page.has(&format!(r#"id="kek-delete-{current}""#)));
    let refused = b
        .post(&format!("/admin/vault/keys/{current}/delete"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.html);
    assert!(refused.has(r#"id="vault-error""#) && refused.has("is the current key"));
    let unknown = b.get("/admin/vault/keys/nope/delete").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let ask = b.get(&format!("/admin/vault/keys/{old}/delete")).await;
    assert!(ask.has(r#"id="confirm-delete""#), "{}", ask.html);
    let gone = b
        .post(&format!("/admin/vault/keys/{old}/delete"), &[])
        .await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "{}", gone.html);
    let keys = app.get("/api/v1/vault/keys", ADMIN).await.body;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1, "{keys}");
    assert_eq!(keys["keys"][0]["id"], current.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_adds_and_deletes_providers_with_errors_at_their_fields() {
    let app = App::new(TestDb::sqlite().await).await;
    let mut b = admin_browser(&app).await;
    assert!(b.get("/admin").await.has(r#"id="providers-empty""#));
    let bad = b
        .post(
            "/admin/providers",
            &[("name", "gh"), ("kind", "github"), ("client_id", " ")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.has(r#"id="provider-client-id-error""#), "{}", bad.html);
    assert!(bad.has(r#"id="provider-name" name="name" value="gh""#));
    let made = b
        .post(
            "/admin/providers",
            &[
                ("name", "gh"),
                ("kind", "github"),
                ("client_id", "client-1"),
                ("client_secret", "s3cret"),
                ("default_scopes", "repo read:user"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.html);
    let page = b.get("/admin").await;
    assert!(page.has(r#"id="provider-gh""#), "{}", page.html);
    assert!(page.has("repo read:user") && !page.has("s3cret"));
    let list = app.get("/api/v1/providers", ADMIN).await.body;
    let id = list[0]["id"].as_str().unwrap().to_string();
    assert!(
        b.get(&format!("/admin/providers/{id}/delete"))
            .await
            .has(r#"id="confirm-delete""#)
    );
    let gone = b.post(&format!("/admin/providers/{id}/delete"), &[]).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "{}", gone.html);
    assert!(
        app.get("/api/v1/providers", ADMIN)
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_adds_a_catalog_entry_from_yaml_and_deprecates_it() {
    let app = App::new(TestDb::sqlite().await).await;
    let mut b = admin_browser(&app).await;
    let list = b.get("/marketplace").await;
    assert!(list.has(r#"id="catalog-create""#) && list.has(r#"id="catalog-spec""#));
    let audit = app.audit_count().await;
    let broken = b.post("/marketplace", &[("spec", "slug: [")]).await;
    assert_eq!(
        broken.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        broken.html
    );
    assert!(broken.has(r#"id="catalog-error-spec""#), "{}", broken.html);
    assert!(broken.has("slug: ["), "the text is kept");
    let bad_slug = "slug: Not A Slug\ntransport: stdio\nsource: {type: image, image: w}\n";
    let invalid = b.post("/marketplace", &[("spec", bad_slug)]).await;
    assert_eq!(
        invalid.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        invalid.html
    );
    assert!(
        invalid.has(r#"id="catalog-error-slug""#),
        "{}",
        invalid.html
    );
    assert_eq!(app.audit_count().await, audit, "nothing created");

    let yaml = "slug: weather\ndisplay_name: Weather\ndescription: forecasts\ntransport: stdio\nsource:\n  type: image\n  image: weather:1\n";
    let made = b.post("/marketplace", &[("spec", yaml)]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.html);
    assert!(
        made.location
            .as_deref()
            .unwrap()
            .starts_with("/marketplace/weather?done=")
    );
    let entry = b.get("/marketplace/weather").await;
    assert!(entry.has(r#"id="entry-deprecate""#), "{}", entry.html);
    // Edited as YAML: the page shows the spec; a rename is refused at `slug`, a good edit
    // saved.
    let edit = b.get("/marketplace/weather/edit").await;
    assert_eq!(edit.status, StatusCode::OK, "{}", edit.html);
    assert!(
        edit.has("slug: weather") && edit.has("forecasts"),
        "{}",
        edit.html
    );
    let renamed = yaml.replace("slug: weather", "slug: climate");
    let r = b
        .post("/marketplace/weather/edit", &[("spec", &renamed)])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(
        r.has(r#"id="catalog-error-slug""#) && r.has("slug: climate"),
        "{}",
        r.html
    );
    let better = yaml.replace("forecasts", "forecasts, hourly");
    let r = b
        .post("/marketplace/weather/edit", &[("spec", &better)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let api = app.get("/api/v1/catalog/weather", ADMIN).await;
    assert_eq!(api.body["description"], "forecasts, hourly", "{}", api.body);
    assert_eq!(app.get("/api/v1/catalog/climate", ADMIN).await.status, 404);
    let entry = b.get("/marketplace/weather").await;
    assert!(entry.has("forecasts, hourly") && entry.has(r#"id="entry-edit""#));
    let dep = b.post("/marketplace/weather/deprecate", &[]).await;
    assert_eq!(dep.status, StatusCode::SEE_OTHER, "{}", dep.html);
    let api = app.get("/api/v1/catalog/weather", ADMIN).await;
    assert_eq!(api.body["status"], "deprecated", "{}", api.body);
    let entry = b.get("/marketplace/weather").await;
    assert!(!entry.has(r#"id="entry-deprecate""#) && entry.has("deprecated"));
    assert!(!b.get("/marketplace").await.has(r#"id="entry-weather""#));
    assert!(
        b.get("/marketplace?status=deprecated")
            .await
            .has(r#"id="entry-weather""#)
    );
}
