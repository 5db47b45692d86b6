//! Chat's LLM endpoints end to end: the API key comes from the vault and is never shown,
//! an Azure OpenAI deployment gets its route, `api-version` and `api-key` header, and sealed
//! transcripts survive a vault key rotation and the old key's deletion. The world and the
//! conversation set-up are chat.rs's.

use crate::chat::{chatting, world};
use serde_json::{Value, json};
use toolbelt_e2e::llm::Llm;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_the_endpoint_key_comes_from_the_vault_and_is_never_shown() {
    let w = world().await;
    let key = "sk-canary-7f3a9c21";
    w.as_ann(
        "POST",
        "/api/v1/secrets",
        json!({ "name": "llm-key", "value": key, "kind": "api_key" }),
    )
    .await;
    let llm = Llm::start(json!({ "steps": ["Keyed.", "never"], "api_key": key })).await;
    let made = w.ann.llm_with(json!({ "name": "keyed", "kind": "anthropic", "base_url": llm.base_url(), "api_key_secret": "llm-key", "model": "scripted" })).await;
    w.ann.chat_settings("ann-bot", "keyed").await;
    assert_eq!(w.ann.chat("ann-bot").await.say("hi").await.text(), "Keyed.");
    assert_eq!(llm.refused().await, Vec::<Value>::new());
    for shown in [
        made,
        w.ann.rest.get("/api/v1/llms").await,
        w.ann.rest.get("/api/v1/llms/keyed").await,
    ] {
        assert!(!shown.to_string().contains(key), "{shown}");
    }
    // Without the key the endpoint's refusal is the turn's error, its message passed on.
    // A bare Anthropic host (as Anthropic's SDKs take it) gets `/v1`.
    w.ann
        .llm_with(json!({ "name": "keyless", "kind": "anthropic", "base_url": llm.url, "model": "scripted" }))
        .await;
    w.ann.chat_settings("ann-bot", "keyless").await;
    let err = w.ann.chat("ann-bot").await.say("hi").await.error().clone();
    assert_eq!(err["code"], "llm_error", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("invalid x-api-key"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_an_azure_deployment_gets_its_route_api_version_and_api_key_header() {
    let w = world().await;
    let key = "azure-canary-51c0e7";
    w.as_ann(
        "POST",
        "/api/v1/secrets",
        json!({ "name": "azure-key", "value": key, "kind": "api_key" }),
    )
    .await;
    let llm = Llm::start(json!({ "steps": ["From Azure."], "api_key": key })).await;
    let deployment = format!("{}/openai/deployments/gpt-4o", llm.url);
    // Without its api-version (or with another query) the URL is refused at its field.
    for (base, says) in [
        (deployment.clone(), "needs its api-version"),
        (
            format!("{deployment}?api-version=2024-10-21&x=1"),
            "only query",
        ),
    ] {
        let (status, body) = w
            .ann
            .rest
            .send(
                "POST",
                "/api/v1/llms",
                Some(json!({ "name": "az", "kind": "azure", "base_url": base })),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["errors"][0]["field"], "base_url", "{body}");
        assert!(body.to_string().contains(says), "{body}");
    }
    let (status, body) = w
        .ann
        .rest
        .send(
            "POST",
            "/api/v1/llms",
            Some(json!({ "name": "oa", "kind": "openai",
                         "base_url": format!("{}?api-version=1", llm.base_url()) })),
        )
        .await;
    assert_eq!(status, 422, "an openai URL takes no query: {body}");
    w.ann
        .llm_with(
            json!({ "name": "az", "kind": "azure", "api_key_secret": "azure-key",
            "base_url": format!("{deployment}?api-version=2024-10-21"), "model": "gpt-4o" }),
        )
        .await;
    w.ann.chat_settings("ann-bot", "az").await;
    assert_eq!(
        w.ann.chat("ann-bot").await.say("hi").await.text(),
        "From Azure."
    );
    let sent = llm.requests().await;
    assert_eq!(
        (
            &sent[0]["api"],
            &sent[0]["deployment"],
            &sent[0]["api_version"],
            &sent[0]["headers"]["api-key"],
            &sent[0]["outcome"],
        ),
        (
            &json!("azure"),
            &json!("gpt-4o"),
            &json!("2024-10-21"),
            &json!(key),
            &json!("replied")
        ),
        "{:#}",
        sent[0]
    );
    assert!(sent[0]["headers"].get("authorization").is_none());
}

/// A sealed transcript survives a key rotation and the old key's deletion: rotation
/// re-wraps the turns' data keys, and a key still wrapping a turn cannot be deleted. Before,
/// rotation moved secrets only, the old key showed 0 and could go — and every earlier turn
/// no longer opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_turns_survive_a_vault_rotation_and_the_old_keys_deletion() {
    let w = world().await;
    let (_llm, chat) = chatting(&w, "openai", json!(["Before the rotation."])).await;
    assert_eq!(chat.say("hi").await.text(), "Before the rotation.");
    let keys = w.as_admin("GET", "/api/v1/vault/keys", json!(null)).await;
    let old = keys["keys"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(keys["keys"][0]["records"], 1, "{keys}");
    let report = w
        .as_admin("POST", "/api/v1/vault/rotate", json!({ "new_key": true }))
        .await;
    assert_eq!(report["remaining"], 0, "{report}");
    let keys = report["keys"]["keys"].as_array().unwrap();
    let was = keys.iter().find(|k| k["id"] == old.as_str()).unwrap();
    assert_eq!(
        (&was["secrets"], &was["records"]),
        (&json!(0), &json!(0)),
        "{report}"
    );
    let now = keys.iter().find(|k| k["current"] == true).unwrap();
    assert_eq!(now["records"], 1, "{report}");
    w.as_admin("DELETE", &format!("/api/v1/vault/keys/{old}"), json!(null))
        .await;
    let t = chat.transcript().await;
    assert_eq!(t["turns"][0]["answer"], "Before the rotation.", "{t}");
}
