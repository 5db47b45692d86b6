//! Chat over the REST API, against a scripted LLM on loopback: endpoint rules, a streamed
//! turn stored sealed and audited, a cut stream storing nothing, tenancy of conversations.

use crate::support::{ADMIN, App};
use axum::routing::post;
use http::Method;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(
    llm_endpoints_follow_the_rules,
    a_turn_streams_is_stored_sealed_and_audited_and_stays_its_owners,
    a_stream_cut_midway_fails_the_turn_and_stores_nothing
);

/// An OpenAI-style endpoint answering each request with the next scripted SSE body.
pub(crate) async fn scripted_llm(replies: Vec<String>) -> String {
    let q = Arc::new(Mutex::new(VecDeque::from(replies)));
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let q = q.clone();
            async move {
                let body = q.lock().unwrap().pop_front().unwrap_or_default();
                ([("content-type", "text/event-stream")], body)
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}/v1")
}

pub(crate) fn text_reply(parts: &[&str]) -> String {
    let mut s = String::new();
    for p in parts {
        s.push_str(&format!(
            "data: {}\n\n",
            json!({ "choices": [{ "index": 0, "delta": { "content": p } }] })
        ));
    }
    s.push_str("data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    s.push_str(
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":4}}\n\n",
    );
    s.push_str("data: [DONE]\n\n");
    s
}

async fn app(db: TestDb) -> App {
    App::with_options(db, |o| {
        o.gateway.ssrf_allow = toolbelt_net::ssrf::AllowList::parse("127.0.0.1/32").unwrap();
    })
    .await
}

/// The SSE body of a turn as (event, data) pairs.
fn events(body: &Value) -> Vec<(String, Value)> {
    let text = body.as_str().unwrap_or_default();
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut name = None;
        let mut data = None;
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = Some(n.to_string());
            }
            if let Some(d) = line.strip_prefix("data: ") {
                data = serde_json::from_str(d).ok();
            }
        }
        if let (Some(n), Some(d)) = (name, data) {
            out.push((n, d));
        }
    }
    out
}

/// An audit item's detail (a JSON text in the listing).
fn detail(item: &Value) -> Value {
    serde_json::from_str(item["detail"].as_str().unwrap_or("null")).unwrap()
}

/// A member with an agent whose chat settings point at `base`.
async fn ann_with_agent(app: &App, base: &str) -> String {
    let (_, ann) = app.member("ann@example.com").await;
    app.ok("/api/v1/agents", &ann, json!({ "name": "ann-bot" }))
        .await;
    app.ok(
        "/api/v1/llms",
        &ann,
        json!({ "name": "fake", "kind": "openai", "base_url": base, "model": "gpt-test" }),
    )
    .await;
    let r = app
        .call(
            Method::PUT,
            "/api/v1/agents/ann-bot/chat",
            Some(&ann),
            Some(json!({ "llm": "fake", "system": "be brief", "max_steps": 3 })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["llm"], "fake");
    ann
}

async fn llm_endpoints_follow_the_rules(db: TestDb) {
    let app = app(db).await;
    let (_, ann) = app.member("ann@example.com").await;
    let add = |body: Value| {
        let (app, ann) = (&app, ann.clone());
        async move { app.post("/api/v1/llms", &ann, body).await }
    };
    // Private and metadata addresses: refused unless allow-listed.
    for url in ["http://169.254.169.254/v1", "https://10.1.2.3/v1"] {
        let r = add(json!({ "name": "x", "kind": "openai", "base_url": url, "model": "m" })).await;
        assert_eq!(r.status, 422, "{url}: {}", r.body);
        assert_eq!(r.fields(), vec!["base_url"]);
        assert!(
            r.body.to_string().contains("TOOLBELT_SSRF_ALLOW"),
            "{}",
            r.body
        );
    }
    let r = add(json!({ "name": "x", "kind": "gemini", "base_url": "https://a.example/v1" })).await;
    assert_eq!(r.fields(), vec!["kind"]);
    let r =
        add(json!({ "name": "x", "kind": "openai", "base_url": "https://u:p@a.example/v1" })).await;
    assert_eq!(r.fields(), vec!["base_url"]);
    let r = add(
        json!({ "name": "x", "kind": "openai", "base_url": "https://a.example/v1",
                        "api_key_secret": "nope" }),
    )
    .await;
    assert_eq!(r.fields(), vec!["api_key_secret"]);
    // Members add their own, not shared ones.
    let r = add(
        json!({ "name": "x", "kind": "openai", "base_url": "https://a.example/v1",
                        "shared": true }),
    )
    .await;
    assert_eq!(r.status, 403);
    // A key by reference; the value is never in a reply.
    let s = app
        .post(
            "/api/v1/secrets",
            &ann,
            json!({ "name": "openai-key", "value": "sk-very-secret" }),
        )
        .await;
    assert!(s.status.is_success(), "{}", s.body);
    let r = add(
        json!({ "name": "mine", "kind": "anthropic", "base_url": "https://api.anthropic.example",
                        "api_key_secret": "openai-key", "model": "claude-x" }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["base_url"], "https://api.anthropic.example/v1");
    assert_eq!(r.body["max_tools"], 128);
    let shared = app
        .post(
            "/api/v1/llms",
            ADMIN,
            json!({ "name": "team", "kind": "openai", "base_url": "https://a.example/v1", "shared": true }),
        )
        .await;
    assert_eq!(shared.status, 201, "{}", shared.body);
    let list = app.get("/api/v1/llms", &ann).await;
    assert!(!list.body.to_string().contains("sk-very-secret"));
    let names: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["mine", "team"]);
    // Bob sees the shared one only, and cannot delete it.
    let (_, bob) = app.member("bob@example.com").await;
    let list = app.get("/api/v1/llms", &bob).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert_eq!(app.delete("/api/v1/llms/team", &bob).await.status, 403);
    assert_eq!(app.get("/api/v1/llms/mine", &bob).await.status, 404);
    assert_eq!(app.delete("/api/v1/llms/mine", &ann).await.status, 200);
}

async fn a_turn_streams_is_stored_sealed_and_audited_and_stays_its_owners(db: TestDb) {
    let app = app(db).await;
    let base = scripted_llm(vec![
        text_reply(&["Hello ", "there."]),
        text_reply(&["Again."]),
    ])
    .await;
    let ann = ann_with_agent(&app, &base).await;
    let chat = app
        .ok("/api/v1/chats", &ann, json!({ "agent": "ann-bot" }))
        .await;
    let id = chat["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/api/v1/chats/{id}/messages"),
            &ann,
            json!({ "text": "hi" }),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/event-stream");
    let ev = events(&r.body);
    let texts: String = ev
        .iter()
        .filter(|(n, _)| n == "text")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(texts, "Hello there.");
    let (last, data) = ev.last().unwrap();
    assert_eq!(last, "done", "{ev:?}");
    assert_eq!(
        data["usage"],
        json!({ "input_tokens": 11, "output_tokens": 4 })
    );
    // A second turn resumes the conversation.
    let r = app
        .post(
            &format!("/api/v1/chats/{id}/messages"),
            &ann,
            json!({ "text": "more" }),
        )
        .await;
    assert_eq!(events(&r.body).last().unwrap().0, "done");
    let t = app.get(&format!("/api/v1/chats/{id}"), &ann).await;
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(t.body["agent"], "ann-bot");
    assert_eq!(t.body["turns"][0]["user"], "hi");
    assert_eq!(t.body["turns"][0]["answer"], "Hello there.");
    assert_eq!(t.body["turns"][0]["tool_calls"], json!([]));
    assert_eq!(t.body["turns"][1]["answer"], "Again.");
    // Sealed at rest: the database holds no plaintext of the turn.
    {
        use sqlx::Row;
        let mut c = app.store.conn().await.unwrap();
        let rows = sqlx::query("SELECT ciphertext FROM chat_turns")
            .fetch_all(&mut *c)
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        for r in rows {
            let ct: Vec<u8> = r.try_get("ciphertext").unwrap();
            assert!(!String::from_utf8_lossy(&ct).contains("Hello"));
        }
        // The turn's credential is gone.
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM tokens WHERE chat_id IS NOT NULL")
            .fetch_one(&mut *c)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        assert_eq!(n, 0);
    }
    // Audited with model and usage.
    let a = app.get("/api/v1/audit?action=chat.turn", &ann).await;
    let items = a.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", a.body);
    let detail = detail(&items[0]);
    assert_eq!(detail["model"], "gpt-test");
    assert_eq!(detail["input_tokens"], 11);
    assert_eq!(items[0]["outcome"], "success");
    // Bob (and the admin) cannot read, post to or delete Ann's chat.
    let (_, bob) = app.member("bob@example.com").await;
    for who in [bob.as_str(), ADMIN] {
        assert_eq!(
            app.get(&format!("/api/v1/chats/{id}"), who).await.status,
            404
        );
        let r = app
            .post(
                &format!("/api/v1/chats/{id}/messages"),
                who,
                json!({ "text": "x" }),
            )
            .await;
        assert_eq!(r.status, 404);
        assert_eq!(
            app.delete(&format!("/api/v1/chats/{id}"), who).await.status,
            404
        );
        assert_eq!(app.get("/api/v1/chats", who).await.body, json!([]));
    }
    // Nor start one with her agent.
    let ann_agent = app.get("/api/v1/agents", ADMIN).await.body["items"][0]["id"].clone();
    let r = app
        .post("/api/v1/chats", ADMIN, json!({ "agent": ann_agent }))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(app.get("/api/v1/chats", &ann).await.body[0]["turns"], 2);
    assert_eq!(
        app.delete(&format!("/api/v1/chats/{id}"), &ann)
            .await
            .status,
        200
    );
}

async fn a_stream_cut_midway_fails_the_turn_and_stores_nothing(db: TestDb) {
    let app = app(db).await;
    let full = text_reply(&["Half ", "an answer"]);
    let cut = full[..full.find("finish_reason").unwrap() - 40].to_string();
    let base = scripted_llm(vec![cut]).await;
    let ann = ann_with_agent(&app, &base).await;
    let chat = app
        .ok("/api/v1/chats", &ann, json!({ "agent": "ann-bot" }))
        .await;
    let id = chat["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/api/v1/chats/{id}/messages"),
            &ann,
            json!({ "text": "hi" }),
        )
        .await;
    let ev = events(&r.body);
    let (last, data) = ev.last().unwrap();
    assert_eq!(last, "error", "{ev:?}");
    assert_eq!(data["code"], "llm_cut");
    let t = app.get(&format!("/api/v1/chats/{id}"), &ann).await;
    assert_eq!(t.body["turns"], json!([]));
    let a = app.get("/api/v1/audit?action=chat.turn", &ann).await;
    assert_eq!(a.body["items"][0]["outcome"], "failure");
    assert_eq!(detail(&a.body["items"][0])["error_kind"], "llm_cut");
    // No settings: refused before anything streams.
    app.ok("/api/v1/agents", &ann, json!({ "name": "plain-bot" }))
        .await;
    let c2 = app
        .ok("/api/v1/chats", &ann, json!({ "agent": "plain-bot" }))
        .await;
    let r = app
        .post(
            &format!("/api/v1/chats/{}/messages", c2["id"].as_str().unwrap()),
            &ann,
            json!({ "text": "hi" }),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = app
        .post(
            &format!("/api/v1/chats/{id}/messages"),
            &ann,
            json!({ "text": "  " }),
        )
        .await;
    assert_eq!(r.fields(), vec!["text"]);
}
