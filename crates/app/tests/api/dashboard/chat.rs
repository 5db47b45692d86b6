//! The chat page (`/agents/{id}/chat`, issue 10) without JavaScript, against a scripted
//! OpenAI-style LLM on loopback: a message runs the turn and lands on the stored transcript,
//! a failed turn shows its error and stores nothing, the streaming endpoint answers the
//! API's events, conversations are deleted behind a question — and only the agent's owner
//! gets any of it (404 for another member). Also the agent page's discovery controls
//! (issue 15): the mode as the API reads it back, refusals at their fields.

use super::browser::{Browser, PASSWORD, member};
use crate::chat::{scripted_llm, text_reply};
use crate::support::App;
use http::{Method, StatusCode};
use serde_json::json;
use toolbelt_testkit::db::TestDb;

async fn app() -> App {
    App::with_options(TestDb::sqlite().await, |o| {
        o.gateway.ssrf_allow = toolbelt_net::ssrf::AllowList::parse("127.0.0.1/32").unwrap();
    })
    .await
}

/// `who`'s agent `bot` chatting through an endpoint at `base`: the agent's id.
async fn agent_on(app: &App, who: &str, base: &str) -> String {
    let id = app
        .ok("/api/v1/agents", who, json!({ "name": "bot" }))
        .await["agent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.ok(
        "/api/v1/llms",
        who,
        json!({ "name": "fake", "kind": "openai", "base_url": base, "model": "gpt-test" }),
    )
    .await;
    let r = app
        .call(
            Method::PUT,
            "/api/v1/agents/bot/chat",
            Some(who),
            Some(json!({ "llm": "fake" })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    id
}

/// The chat id in a redirect to `…?chat=cht_…`.
fn chat_of(location: &str) -> String {
    let at = location.find("chat=").expect("a chat in the URL") + "chat=".len();
    location[at..].split('&').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_without_javascript_runs_the_turn_and_lands_on_the_stored_transcript() {
    let app = app().await;
    let (_, ann) = member(&app, "ann@example.com").await;
    let full = text_reply(&["Half ", "an answer"]);
    let cut = full[..full.find("finish_reason").unwrap() - 40].to_string();
    let base = scripted_llm(vec![
        text_reply(&["Hello ", "Ann."]),
        cut,
        text_reply(&["Streamed ", "too."]),
    ])
    .await;
    let id = agent_on(&app, &ann, &base).await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    let page = format!("/agents/{id}/chat");
    let agent = b.get(&format!("/agents/{id}")).await;
    assert!(agent.has(&format!(r#"href="{page}" id="agent-chat""#)));
    let empty = b.get(&page).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.html);
    assert!(empty.has(r#"id="chat-settings""#) && empty.has(r#"id="chats-empty""#));
    assert!(empty.has(r#"id="chat-form""#) && empty.has(r#"id="chat-text""#));

    // An empty message: the field's error, and no conversation made.
    let blank = b.post(&page, &[("chat", ""), ("text", "  ")]).await;
    assert_eq!(blank.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(blank.has(r#"id="chat-text-error""#), "{}", blank.html);
    assert_eq!(app.get("/api/v1/chats", &ann).await.body, json!([]));

    // A message: the turn runs within the post, then back to its stored transcript.
    let sent = b.post(&page, &[("chat", ""), ("text", "hi there")]).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.html);
    let at = sent.location.unwrap();
    let chat = chat_of(&at);
    assert!(at.starts_with(&format!("{page}?chat={chat}")), "{at}");
    let shown = b.get(&at).await;
    assert!(shown.has(r#"id="turn-0""#), "{}", shown.html);
    assert!(shown.has("hi there") && shown.has("Hello Ann."));
    assert!(shown.has(&format!(r#"id="chat-{chat}""#)));
    let t = app.get(&format!("/api/v1/chats/{chat}"), &ann).await;
    assert_eq!(t.body["turns"][0]["user"], "hi there", "{}", t.body);
    assert_eq!(t.body["turns"][0]["answer"], "Hello Ann.");

    // A cut stream: the error on the page, the text kept, nothing stored.
    let failed = b
        .post(&page, &[("chat", chat.as_str()), ("text", "and then?")])
        .await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY, "{}", failed.html);
    assert!(failed.has(r#"id="chat-error""#) && failed.has("llm_cut"));
    assert!(failed.has(">and then?</textarea>"), "the message is kept");
    let t = app.get(&format!("/api/v1/chats/{chat}"), &ann).await;
    assert_eq!(t.body["turns"].as_array().unwrap().len(), 1, "{}", t.body);

    // The JavaScript form's endpoint: the API's events, on the same conversation.
    let streamed = b
        .post(
            &format!("{page}/stream"),
            &[("chat", chat.as_str()), ("text", "stream it")],
        )
        .await;
    assert_eq!(streamed.status, StatusCode::OK, "{}", streamed.html);
    assert!(
        streamed.has("event: text\ndata: {\"delta\":\"Streamed \"}"),
        "{}",
        streamed.html
    );
    assert!(streamed.has("event: done\n"), "{}", streamed.html);
    let t = app.get(&format!("/api/v1/chats/{chat}"), &ann).await;
    assert_eq!(t.body["turns"][1]["answer"], "Streamed too.", "{}", t.body);
    // Without the form's CSRF token it is refused, and nothing runs.
    let forged = b
        .post_raw(
            &format!("{page}/stream"),
            &[("chat", chat.as_str()), ("text", "x")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // Deleted behind a question.
    b.get(&at).await;
    let q = b.get(&format!("{page}/{chat}/delete")).await;
    assert!(q.has(r#"id="confirm-delete""#), "{}", q.html);
    let gone = b.post(&format!("{page}/{chat}/delete"), &[]).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "{}", gone.html);
    assert_eq!(app.get("/api/v1/chats", &ann).await.body, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_settings_says_so_and_makes_no_conversation() {
    let app = app().await;
    let (_, ann) = member(&app, "ann@example.com").await;
    let id = app
        .ok("/api/v1/agents", &ann, json!({ "name": "bot" }))
        .await["agent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    let page = format!("/agents/{id}/chat");
    assert!(b.get(&page).await.has(r#"id="chat-no-settings""#));
    let r = b.post(&page, &[("chat", ""), ("text", "hello")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.html);
    assert!(r.has(r#"id="chat-refused""#));
    assert_eq!(app.get("/api/v1/chats", &ann).await.body, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_members_agent_and_conversation_are_404_on_the_chat_page() {
    let app = app().await;
    let (_, ann) = member(&app, "ann@example.com").await;
    let (_, bob) = member(&app, "bob@example.com").await;
    let base = scripted_llm(vec![text_reply(&["never"])]).await;
    let anns = agent_on(&app, &ann, &base).await;
    let bobs = agent_on(&app, &bob, &base).await;
    let chat = app
        .ok("/api/v1/chats", &ann, json!({ "agent": "bot" }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut b = Browser::new(&app);
    b.sign_in("bob@example.com", PASSWORD).await;
    b.get(&format!("/agents/{bobs}/chat")).await;
    let ann_page = format!("/agents/{anns}/chat");
    for p in [
        b.get(&ann_page).await,
        b.get(&format!("{ann_page}?chat={chat}")).await,
        b.get(&format!("{ann_page}/{chat}/delete")).await,
        // Ann's conversation under Bob's own agent.
        b.get(&format!("/agents/{bobs}/chat?chat={chat}")).await,
    ] {
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{}", p.html);
    }
    b.get(&format!("/agents/{bobs}/chat")).await;
    for (path, chat_field) in [
        (ann_page.clone(), ""),
        (format!("{ann_page}/stream"), ""),
        (format!("/agents/{bobs}/chat"), chat.as_str()),
        (format!("/agents/{bobs}/chat/stream"), chat.as_str()),
    ] {
        let p = b.post(&path, &[("chat", chat_field), ("text", "hi")]).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{path}: {}", p.html);
    }
    let p = b.post(&format!("{ann_page}/{chat}/delete"), &[]).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    let t = app.get(&format!("/api/v1/chats/{chat}"), &ann).await;
    assert_eq!(
        t.body["turns"],
        json!([]),
        "Ann's conversation is untouched"
    );
    assert_eq!(
        app.get("/api/v1/chats", &bob).await.body,
        json!([]),
        "nothing made for Bob"
    );
}

/// Choosing always-visible tools and making toolsets need tools a running server lists
/// (the browser scenario `dashboard_chat_browser` does it); here: the mode, and refusals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_page_sets_the_discovery_mode_and_shows_refusals_at_their_fields() {
    let app = app().await;
    let (_, ann) = member(&app, "ann@example.com").await;
    member(&app, "bob@example.com").await;
    let id = app
        .ok("/api/v1/agents", &ann, json!({ "name": "bot" }))
        .await["agent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    let page = format!("/agents/{id}");
    let detail = b.get(&page).await;
    assert!(detail.has(r#"id="discovery-mode""#) && detail.has(r#"id="toolsets-empty""#));
    assert!(
        detail.has(r#"<option value="all" selected>"#),
        "{}",
        detail.html
    );

    // Search mode: the API reads it back, the page shows it.
    let set = b
        .post(&format!("{page}/discovery"), &[("discovery", "search")])
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.html);
    let a = app.get(&format!("/api/v1/agents/{id}"), &ann).await;
    assert_eq!(a.body["discovery"], "search", "{}", a.body);
    let shown = b.get(&page).await;
    assert!(shown.has(r#"<option value="search" selected>"#));

    // Refusals next to their fields, nothing changed.
    let bad = b
        .post(&format!("{page}/discovery"), &[("discovery", "some")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.has(r#"id="discovery-mode-error""#), "{}", bad.html);
    let bad = b
        .post(
            &format!("{page}/discovery"),
            &[("discovery", "all"), ("always_visible", "nope__x")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.has(r#"id="always-visible-error""#), "{}", bad.html);
    let a = app.get(&format!("/api/v1/agents/{id}"), &ann).await;
    assert_eq!(a.body["discovery"], "search", "unchanged: {}", a.body);
    let bad = b
        .post(
            &format!("{page}/toolsets"),
            &[("name", "not a name!"), ("tools", "x__y")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.has(r#"id="toolset-name-error""#), "{}", bad.html);
    for tools in [&[("tools", "nope__x")][..], &[]] {
        let mut fields = vec![("name", "triage")];
        fields.extend_from_slice(tools);
        let bad = b.post(&format!("{page}/toolsets"), &fields).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad.has(r#"id="toolset-tools-error""#), "{}", bad.html);
    }
    let none = app
        .get(&format!("/api/v1/agents/{id}/toolsets"), &ann)
        .await;
    assert_eq!(none.body, json!([]));

    // Another member's agent: 404 on every form, nothing changed.
    let mut other = Browser::new(&app);
    other.sign_in("bob@example.com", PASSWORD).await;
    for (path, fields) in [
        (format!("{page}/discovery"), vec![("discovery", "all")]),
        (
            format!("{page}/toolsets"),
            vec![("name", "x"), ("tools", "a__b")],
        ),
        (format!("{page}/toolsets/triage/delete"), vec![]),
    ] {
        let r = other.post(&path, &fields).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.html);
    }
    let a = app.get(&format!("/api/v1/agents/{id}"), &ann).await;
    assert_eq!(a.body["discovery"], "search");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_saves_the_agents_settings_and_shows_refusals_at_their_fields() {
    let app = app().await;
    let (_, ann) = member(&app, "ann@example.com").await;
    member(&app, "bob@example.com").await;
    let id = app
        .ok("/api/v1/agents", &ann, json!({ "name": "bot" }))
        .await["agent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let llm = json!({ "name": "fake", "kind": "openai", "base_url": "http://127.0.0.1:9/v1" });
    app.ok("/api/v1/llms", &ann, llm).await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com", PASSWORD).await;
    let page = format!("/agents/{id}/chat");
    let empty = b.get(&page).await;
    assert!(
        empty.has(r#"<details id="chat-settings-box" open>"#)
            && empty.has(r#"id="chat-settings-form""#),
        "{}",
        empty.html
    );
    assert!(
        empty.has(r#"<option value="fake">fake (openai)</option>"#),
        "{}",
        empty.html
    );

    // Refusals at their fields (the form's own parsing and the service's), values kept.
    let save = format!("{page}/settings");
    let form = |llm: &'static str, t: &'static str, steps: &'static str| {
        vec![
            ("chat", ""),
            ("llm", llm),
            ("model", "gpt-x"),
            ("system", "Be brief."),
            ("temperature", t),
            ("max_steps", steps),
        ]
    };
    for (fields, error) in [
        (form("fake", "hot", "4"), "chat-temperature-error"),
        (form("fake", "3", "4"), "chat-temperature-error"),
        (form("fake", "0.3", "500"), "chat-max-steps-error"),
        (form("nope", "0.3", "4"), "chat-llm-error"),
        (form("", "0.3", "4"), "chat-llm-error"),
    ] {
        let r = b.post(&save, &fields).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{error}: {}",
            r.html
        );
        assert!(r.has(&format!(r#"id="{error}""#)), "{error}: {}", r.html);
        assert!(
            r.has(r#"value="gpt-x""#) && r.has(">Be brief.</textarea>"),
            "{}",
            r.html
        );
    }
    // An endpoint without a default model needs one: the model field says so.
    let r = b
        .post(&save, &[("llm", "fake"), ("model", ""), ("max_steps", "4")])
        .await;
    assert!(r.has(r#"id="chat-model-error""#), "{}", r.html);
    let none = app.get("/api/v1/agents/bot/chat", &ann).await;
    assert_eq!(none.status, 404, "nothing saved: {}", none.body);

    // Saved through the same service as the API, which reads it back.
    let ok = b.post(&save, &form("fake", "0.3", "4")).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.html);
    let s = app.get("/api/v1/agents/bot/chat", &ann).await.body;
    assert_eq!(
        (
            &s["llm"],
            &s["model"],
            &s["system"],
            &s["temperature"],
            &s["max_steps"]
        ),
        (
            &json!("fake"),
            &json!("gpt-x"),
            &json!("Be brief."),
            &json!(0.3),
            &json!(4)
        ),
        "{s}"
    );
    let shown = b.get(ok.location.as_deref().unwrap()).await;
    assert!(shown.has("model gpt-x on endpoint fake") && shown.has("chat settings saved"));
    assert!(
        shown.has(r#"<details id="chat-settings-box">"#),
        "folded once saved"
    );
    assert!(shown.has(r#"<option value="fake" selected>"#) && shown.has(r#"value="0.3""#));

    // Another member: 404, nothing changed.
    let mut other = Browser::new(&app);
    other.sign_in("bob@example.com", PASSWORD).await;
    other.get("/agents").await;
    let r = other.post(&save, &form("fake", "1", "9")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.html);
    let s = app.get("/api/v1/agents/bot/chat", &ann).await.body;
    assert_eq!(s["max_steps"], 4, "{s}");
}
