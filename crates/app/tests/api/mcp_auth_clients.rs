//! Who an MCP client can be, in-process on both backends: a client metadata document on a
//! private, loopback or metadata address (or a URL the draft forbids) is refused with the
//! reason shown to the user, and nothing is stored; and the consent page can create the
//! agent the client acts as — a bad name re-renders the page with the error next to the
//! field and creates nothing, a good one creates the user's agent and the tokens act as it.

use crate::mcp_auth::{REDIRECT, VERIFIER, form, get, mcp, metadata, query_of, s256};
use crate::mcp_auth_hardening::{consenting, detail};
use crate::support::App;
use sqlx::Row;
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(
    metadata_documents_on_private_addresses_are_refused,
    the_consent_page_creates_the_agent
);

async fn clients(app: &App) -> i64 {
    let mut c = app.store.conn().await.unwrap();
    sqlx::query("SELECT COUNT(*) AS n FROM mcp_clients")
        .fetch_one(&mut *c)
        .await
        .unwrap()
        .get::<i64, _>("n")
}

fn authorize_as(client_id: &str, resource: &str) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("state", "st-d"),
            ("code_challenge", &s256(VERIFIER)),
            ("code_challenge_method", "S256"),
            ("resource", resource),
        ])
        .finish();
    format!("/oauth2/authorize?{q}")
}

async fn metadata_documents_on_private_addresses_are_refused(db: TestDb) {
    let app = App::new(db).await;
    let (_, asm) = metadata(&app).await;
    assert_eq!(asm["client_id_metadata_document_supported"], true);
    let resource = format!("{}/mcp", asm["issuer"].as_str().unwrap());
    for (client_id, says) in [
        (
            "https://10.0.0.7/client.json",
            "refused to connect to 10.0.0.7: a private address",
        ),
        ("https://192.168.1.20/mcp/client.json", "a private address"),
        (
            "https://169.254.169.254/latest/meta-data",
            "a cloud metadata address",
        ),
        ("https://[::1]:8443/client.json", "a loopback address"),
        // A name is checked where it resolves.
        ("https://localhost:1/client.json", "a loopback address"),
        ("https://app.example/", "must have a path"),
        ("https://app.example/a/../client.json", "plain form"),
    ] {
        let r = get(&app, &authorize_as(client_id, &resource), None).await;
        // Shown to the user, never sent to the redirect URI the document was to vouch for.
        assert_eq!(r.status, 401, "{client_id}: {}", r.text);
        assert!(r.location().is_empty(), "{client_id}: {}", r.location());
        assert!(
            r.text.contains("data-error=\"invalid_client\"")
                && r.text.contains("client metadata document")
                && r.text.contains(says),
            "{client_id}: {}",
            r.text
        );
    }
    // A plain-http URL is not a document id: an unknown client like any other.
    let r = get(
        &app,
        &authorize_as("http://10.0.0.7/client.json", &resource),
        None,
    )
    .await;
    assert!(r.text.contains("unknown client_id"), "{}", r.text);
    assert_eq!(clients(&app).await, 0, "nothing stored by a refusal");
}

async fn the_consent_page_creates_the_agent(db: TestDb) {
    let app = App::new(db).await;
    let c = consenting(&app).await;
    let post = |extra: &[(&str, &str)]| {
        let mut f = c.fields.clone();
        f.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let app = &app;
        let cookie = c.cookie.clone();
        async move {
            let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            form(app, "/oauth2/consent", &refs, Some(&cookie)).await
        }
    };
    let agents = async || -> Vec<String> {
        app.get("/api/v1/agents", &c.ann).await.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect()
    };
    // The page offers a new agent beside Ann's one.
    let page = get(
        &app,
        &format!(
            "/oauth2/consent?{}",
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(c.fields.iter().filter(|(k, _)| k != "csrf"))
                .finish()
        ),
        Some(&c.cookie),
    )
    .await;
    assert!(
        page.text.contains("id=\"agent-new\"") && page.text.contains("for=\"new-agent-name\""),
        "{}",
        page.text
    );
    for (name, status) in [("", 422), ("not a name!", 422), ("ann-bot", 409)] {
        let r = post(&[
            ("agent", "new"),
            ("new_agent_name", name),
            ("decision", "approve"),
        ])
        .await;
        assert_eq!(r.status.as_u16(), status, "{name:?}: {}", r.text);
        assert!(r.location().is_empty(), "{name:?}: no code");
        // The consent page again, the name kept, the error beside the field (or, for a
        // refusal naming no field, above it).
        assert!(r.text.contains("id=\"consent-form\""), "{}", r.text);
        assert!(
            r.text.contains(&format!(
                "id=\"new-agent-name\" name=\"new_agent_name\" value=\"{name}\""
            )),
            "{}",
            r.text
        );
        let error_id = if status == 422 {
            "id=\"new-agent-name-error\""
        } else {
            "id=\"consent-new-error\""
        };
        assert!(r.text.contains(error_id), "{name:?}: {}", r.text);
    }
    assert_eq!(
        agents().await,
        vec!["ann-bot".to_string()],
        "nothing created"
    );
    // Refusing with "new" chosen creates nothing either.
    let no = post(&[
        ("agent", "new"),
        ("new_agent_name", "never-made"),
        ("decision", "deny"),
    ])
    .await;
    assert_eq!(query_of(&no.location())["error"], "access_denied");
    assert_eq!(agents().await.len(), 1);

    let yes = post(&[
        ("agent", "new"),
        ("new_agent_name", "cursor-bot"),
        ("decision", "approve"),
    ])
    .await;
    assert!(yes.location().starts_with(REDIRECT), "{}", yes.text);
    let mut names = agents().await;
    names.sort();
    assert_eq!(names, vec!["ann-bot".to_string(), "cursor-bot".to_string()]);
    let t = c.exchange(&app, &query_of(&yes.location())["code"]).await;
    assert_eq!(t.status, 200, "{}", t.text);
    let access = t.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(mcp(&app, Some(&access)).await.status, 200);
    // The tokens act as the new agent; it has no token of its own left to leak.
    let me = app
        .get("/api/v1/agents/cursor-bot/tokens", &c.ann)
        .await
        .body;
    let live: Vec<_> = me
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["revoked_at"].is_null())
        .collect();
    assert!(live.is_empty(), "{me}");
    let consent = app
        .get(
            &format!(
                "/api/v1/audit?action=mcp_client.consent&target={}",
                c.client_id
            ),
            &c.ann,
        )
        .await
        .body;
    let approved: Vec<_> = consent["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(detail)
        .filter(|d| d["approved"] == true)
        .collect();
    assert_eq!(approved[0]["agent_name"], "cursor-bot", "{consent}");
}
