//! One test per rule a handler used to hold, at the service level: the error variant and
//! message a form or a chat would show.

use crate::support::{World, api_caller, input};
use serde_json::json;
use toolbelt_control::service::servers::Change;
use toolbelt_control::service::{
    Caller, Credential, ServiceError, agents, approvals, audit, catalog, grants, oauth, servers,
    session, tokens, toolboxes, tools, users, vault,
};
use toolbelt_model::gateway::ApprovalStatus;
use toolbelt_model::token::TokenDigest;
use toolbelt_store::tokens as token_rows;
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(
    a_member_cannot_deploy_on_or_change_a_shared_toolbox,
    another_members_things_are_not_found,
    grants_reach_only_what_the_agents_owner_can_use,
    invalid_input_names_every_field,
    admin_only_services_refuse_members,
    browser_steps_need_a_dashboard_session,
    logout_ends_only_a_dashboard_session,
    an_approval_is_decided_once_by_its_owner,
);

fn forbidden(e: ServiceError) -> String {
    match e {
        ServiceError::Forbidden(m) => m,
        other => panic!("expected forbidden, got {other:?}"),
    }
}

async fn a_member_cannot_deploy_on_or_change_a_shared_toolbox(db: TestDb) {
    let w = World::new(db).await;
    let deploy = |toolbox: &str| {
        input::<servers::CreateServer>(
            json!({ "name": "t", "catalog": "time", "toolbox": toolbox }),
        )
    };
    let e = servers::create(&w.st, &w.ann, deploy("local"))
        .await
        .unwrap_err();
    assert_eq!(
        forbidden(e),
        "members deploy only on their own toolboxes; shared toolboxes are for admins"
    );
    toolboxes::create(&w.st, &w.ann, input(json!({ "name": "mine" })))
        .await
        .unwrap();
    servers::create(&w.st, &w.ann, deploy("mine"))
        .await
        .unwrap();
    let shared = servers::create(&w.st, &w.admin, deploy("local"))
        .await
        .unwrap();
    // She sees the shared server, but may not change it; nor delete the shared toolbox.
    let e = servers::change(&w.st, &w.ann, shared.id.as_str(), None, Change::Stop)
        .await
        .unwrap_err();
    assert_eq!(forbidden(e), "only admins may change shared servers");
    let e = toolboxes::delete(&w.st, &w.ann, "local").await.unwrap_err();
    assert_eq!(forbidden(e), "only admins may delete shared toolboxes");
    let e = toolboxes::create(&w.st, &w.ann, input(json!({ "name": "s", "shared": true })))
        .await
        .unwrap_err();
    assert_eq!(forbidden(e), "only admins may create shared toolboxes");
    servers::change(&w.st, &w.admin, shared.id.as_str(), None, Change::Stop)
        .await
        .unwrap();
}

async fn another_members_things_are_not_found(db: TestDb) {
    let w = World::new(db).await;
    let bot = agents::create(&w.st, &w.bob, input(json!({ "name": "bobbot" })))
        .await
        .unwrap()
        .agent;
    let tb = toolboxes::create(&w.st, &w.bob, input(json!({ "name": "bobs" })))
        .await
        .unwrap();
    let srv = servers::create(
        &w.st,
        &w.bob,
        input(json!({ "name": "b", "catalog": "time", "toolbox": "bobs" })),
    )
    .await
    .unwrap();
    let not_found = |e: ServiceError, what: String| {
        assert_eq!(e, ServiceError::NotFound(format!("{what} not found")));
    };
    let id = bot.id.to_string();
    not_found(
        agents::get(&w.st, &w.ann, &id).await.unwrap_err(),
        format!("agent {id}"),
    );
    not_found(
        agents::get(&w.st, &w.ann, "bobbot").await.unwrap_err(),
        "agent bobbot".into(),
    );
    not_found(
        agents::revoke_all(&w.st, &w.ann, &id).await.unwrap_err(),
        format!("agent {id}"),
    );
    let tid = tb.id.to_string();
    not_found(
        toolboxes::delete(&w.st, &w.ann, &tid).await.unwrap_err(),
        format!("toolbox {tid}"),
    );
    let sid = srv.id.to_string();
    not_found(
        servers::change(&w.st, &w.ann, &sid, None, Change::Stop)
            .await
            .unwrap_err(),
        format!("server {sid}"),
    );
    let uid = w.bob.id().to_string();
    not_found(
        users::get(&w.st, &w.ann, &uid).await.unwrap_err(),
        format!("user {uid}"),
    );
    // As a grant's agent, another member's agent is a field error, not a leak.
    let e = grants::create(
        &w.st,
        &w.ann,
        input(json!({ "agent": id, "toolbox": "local" })),
    )
    .await
    .unwrap_err();
    assert_eq!(field_names(&e), ["agent"]);
    // An admin sees them all.
    agents::get(&w.st, &w.admin, &id).await.unwrap();
    users::get(&w.st, &w.admin, &uid).await.unwrap();
}

fn field_names(e: &ServiceError) -> Vec<&str> {
    assert!(matches!(e, ServiceError::Invalid(_)), "{e:?}");
    e.fields().iter().map(|f| f.field.as_str()).collect()
}

async fn grants_reach_only_what_the_agents_owner_can_use(db: TestDb) {
    let w = World::new(db).await;
    agents::create(&w.st, &w.ann, input(json!({ "name": "annbot" })))
        .await
        .unwrap();
    let bot = agents::get(&w.st, &w.ann, "annbot").await.unwrap();
    let bobs = toolboxes::create(&w.st, &w.bob, input(json!({ "name": "bobs" })))
        .await
        .unwrap();
    // The admin sees Bob's toolbox, but Ann's agent may not get it.
    let e = grants::create(
        &w.st,
        &w.admin,
        input(json!({ "agent": bot.id, "toolbox": bobs.id })),
    )
    .await
    .unwrap_err();
    assert_eq!(field_names(&e), ["toolbox"]);
    assert_eq!(
        e.fields()[0].message,
        format!("no toolbox {} the agent's owner can use", bobs.id)
    );
    let bad = [
        (
            json!({ "agent": "annbot", "toolbox": "local", "rule": "deny" }),
            "rule",
        ),
        (json!({ "agent": "annbot", "tool": "x" }), "server"),
        (json!({ "agent": "annbot" }), "toolbox"),
        (
            json!({ "agent": "annbot", "connection": "con_x", "tool": "t" }),
            "connection",
        ),
    ];
    for (body, field) in bad {
        let e = grants::create(&w.st, &w.ann, input(body.clone()))
            .await
            .unwrap_err();
        assert_eq!(field_names(&e), [field], "{body}");
    }
    grants::create(
        &w.st,
        &w.ann,
        input(json!({ "agent": "annbot", "toolbox": "local" })),
    )
    .await
    .unwrap();
}

async fn invalid_input_names_every_field(db: TestDb) {
    let w = World::new(db).await;
    w.cfg_entry().await;
    let e = servers::create(
        &w.st,
        &w.admin,
        input(json!({ "name": "c", "catalog": "cfg", "toolbox": "local",
            "config": { "port": 0 }, "secrets": { "NOPE": "x" } })),
    )
    .await
    .unwrap_err();
    let mut fields = field_names(&e);
    fields.sort();
    assert_eq!(fields, ["config.port", "secrets.NOPE", "secrets.TOKEN"]);
    let e = toolboxes::create(
        &w.st,
        &w.ann,
        input(json!({ "name": "d", "kind": "docker" })),
    )
    .await
    .unwrap_err();
    assert_eq!(field_names(&e), ["kind"]);
    let e = toolboxes::create(&w.st, &w.ann, input(json!({ "name": "no spaces" })))
        .await
        .unwrap_err();
    assert_eq!(field_names(&e), ["name"]);
    let e = tokens::issue(
        &w.st,
        &w.ann,
        input(json!({ "label": "x", "expires_in_days": 0 })),
    )
    .await
    .unwrap_err();
    assert_eq!(field_names(&e), ["expires_in_days"]);
}

async fn admin_only_services_refuse_members(db: TestDb) {
    let w = World::new(db).await;
    let spec = || {
        input(
            json!({ "slug": "x", "source": {"type": "image", "image": "x"}, "transport": "stdio" }),
        )
    };
    let (st, ann, admin) = (&w.st, &w.ann, &w.admin);
    assert_eq!(
        forbidden(catalog::create(st, ann, spec()).await.unwrap_err()),
        "only admins may write the catalog"
    );
    assert_eq!(
        forbidden(tools::changes(st, ann, false).await.unwrap_err()),
        "only admins may review tool changes"
    );
    assert_eq!(
        forbidden(audit::verify(st, ann).await.unwrap_err()),
        "only admins may verify the audit chain"
    );
    assert_eq!(
        forbidden(vault::keys(st, ann).await.unwrap_err()),
        "only admins manage the vault's keys"
    );
    let page = Default::default();
    assert_eq!(
        forbidden(users::list(st, ann, &page).await.unwrap_err()),
        "only admins may list users"
    );
    catalog::create(st, admin, spec()).await.unwrap();
    tools::changes(st, admin, false).await.unwrap();
    assert!(audit::verify(st, admin).await.unwrap().ok);
    users::list(st, admin, &page).await.unwrap();
    // Admins, too, may not delete themselves.
    let e = users::delete(st, admin, admin.id().as_str())
        .await
        .unwrap_err();
    assert_eq!(e, ServiceError::conflict("you cannot delete yourself"));
}

async fn browser_steps_need_a_dashboard_session(db: TestDb) {
    let w = World::new(db).await;
    let e = oauth::begin_in_browser(&w.st, &w.ann, "nope", Default::default())
        .await
        .unwrap_err();
    assert!(matches!(e, ServiceError::Unauthenticated(_)), "{e:?}");
    let in_browser = Caller {
        scope: w.ann.scope.clone(),
        credential: Credential::Session(w.ann.token_id().clone()),
    };
    // Past the session rule, the flow itself answers: there is no such provider.
    let e = oauth::begin_in_browser(&w.st, &in_browser, "nope", Default::default())
        .await
        .unwrap_err();
    assert_eq!(e, ServiceError::invalid("provider", "no provider nope"));
}

async fn logout_ends_only_a_dashboard_session(db: TestDb) {
    let w = World::new(db).await;
    let password = "correct horse battery";
    let cy = users::create(
        &w.st,
        &w.admin,
        input(json!({ "email": "cy@example.com", "role": "member", "password": password })),
    )
    .await
    .unwrap()
    .user;
    let wrong = session::login(
        &w.st,
        None,
        input(json!({ "email": "cy@example.com", "password": "not the password" })),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(wrong, ServiceError::Unauthenticated(_)),
        "{wrong:?}"
    );
    // A CLI login (an API token) and a dashboard login (a session), each logged out.
    let mut ended = Vec::new();
    for api in [true, false] {
        let mut body = json!({ "email": "cy@example.com", "password": password });
        if api {
            body["api_token_label"] = json!("cli");
        }
        let secret = session::login(&w.st, None, input(body))
            .await
            .unwrap()
            .secret;
        let digest = TokenDigest::of(&secret);
        let mut c = w.st.store.conn().await.unwrap();
        let id = token_rows::find(&mut c, &digest).await.unwrap().unwrap().id;
        drop(c);
        let credential = if api {
            Credential::ApiToken(id)
        } else {
            Credential::Session(id)
        };
        let caller = Caller {
            credential,
            ..api_caller(toolbelt_model::Scope {
                user_id: cy.id.clone(),
                role: cy.role,
            })
        };
        session::logout(&w.st, &caller).await.unwrap();
        let mut c = w.st.store.conn().await.unwrap();
        let row = token_rows::find(&mut c, &digest).await.unwrap().unwrap();
        ended.push(row.revoked_at.is_some());
    }
    assert_eq!(
        ended,
        [false, true],
        "logout revokes the session, not an API token"
    );
}

async fn an_approval_is_decided_once_by_its_owner(db: TestDb) {
    let w = World::new(db).await;
    let bot = agents::create(&w.st, &w.ann, input(json!({ "name": "annbot" })))
        .await
        .unwrap()
        .agent;
    toolboxes::create(&w.st, &w.ann, input(json!({ "name": "mine" })))
        .await
        .unwrap();
    let srv = servers::create(
        &w.st,
        &w.ann,
        input(json!({ "name": "t", "catalog": "time", "toolbox": "mine" })),
    )
    .await
    .unwrap();
    let mut c = w.st.store.conn().await.unwrap();
    let held = toolbelt_store::approvals::create(
        &mut c,
        &bot.id,
        w.ann.id(),
        &srv.id,
        "get_time",
        &json!({}),
        60_000,
    )
    .await
    .unwrap();
    drop(c);
    let id = held.id.to_string();
    let nf = ServiceError::not_found(format!("approval {id}"));
    let e = approvals::decide(&w.st, &w.bob, &id, approvals::Decision::Approve).await;
    assert_eq!(e.unwrap_err(), nf);
    let e = approvals::decide(&w.st, &w.ann, "apr_nonsense", approvals::Decision::Deny).await;
    assert_eq!(
        e.unwrap_err(),
        ServiceError::not_found("approval apr_nonsense")
    );
    let a = approvals::decide(&w.st, &w.ann, &id, approvals::Decision::Approve)
        .await
        .unwrap();
    assert_eq!(a.status, ApprovalStatus::Approved);
    let again = approvals::decide(&w.st, &w.ann, &id, approvals::Decision::Deny).await;
    assert!(matches!(again, Err(ServiceError::Conflict(_))), "{again:?}");
}
