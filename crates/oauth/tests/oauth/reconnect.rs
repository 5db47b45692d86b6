//! Re-authorizing a connection: new tokens on the same connection (its grants hold), only
//! by its owner; one revoked while its owner was at the provider is not brought back.

use crate::{authorize, connect, replica, setup};
use toolbelt_model::oauth::ConnectionStatus;
use toolbelt_model::{Role, Scope};
use toolbelt_oauth::OAuthError;
use toolbelt_store::{oauth as rows, users};
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(
    a_reconnect_puts_new_tokens_on_the_same_connection,
    only_the_owner_reconnects_and_a_revoked_connection_is_not_revived
);

async fn audited(s: &crate::Setup, action: &str, target: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = $1 AND target_id = $2")
        .bind(action)
        .bind(target)
        .fetch_one(s.store.pool())
        .await
        .unwrap()
}

async fn a_reconnect_puts_new_tokens_on_the_same_connection(db: TestDb) {
    let (s, vault) = setup(&db, 300).await;
    let oauth = replica(&s.store, &vault);
    let first = connect(&oauth, &s).await;
    let (_, old_token) = oauth.owner_token(&s.user, "local", "test").await.unwrap();
    {
        let mut c = s.store.conn().await.unwrap();
        rows::mark_needs_reauth(&mut c, &first.id, "invalid_grant")
            .await
            .unwrap();
    }
    let mut rolled = oauth.subscribe_refreshed();

    let flow = oauth
        .create_reconnect_flow(&s.user, &first.id, None, Some("alice".into()))
        .await
        .unwrap();
    assert_eq!(
        flow.scopes, first.scopes,
        "scopes default to the connection's"
    );
    let again = authorize(&oauth, &s.user, &flow.flow_id).await.unwrap();

    assert_eq!(
        again.id, first.id,
        "the same connection, so its grants hold"
    );
    assert_eq!(again.status, ConnectionStatus::Active);
    assert_eq!(again.last_error, None);
    assert_eq!(
        again.token_secret_id, first.token_secret_id,
        "a new version of its secret"
    );
    let (id, new_token) = oauth.owner_token(&s.user, "local", "test").await.unwrap();
    assert_eq!(id, first.id);
    assert_ne!(new_token, old_token, "the new grant's token is served");
    let scope = Scope {
        user_id: s.user.clone(),
        role: Role::Member,
    };
    assert_eq!(
        oauth
            .list_connections(&scope, 10, None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        audited(&s, "connection.reconnect", first.id.as_str()).await,
        1
    );
    assert_eq!(
        rolled.try_recv().ok(),
        Some(first.id.clone()),
        "servers roll onto it"
    );
}

async fn only_the_owner_reconnects_and_a_revoked_connection_is_not_revived(db: TestDb) {
    let (s, vault) = setup(&db, 300).await;
    let oauth = replica(&s.store, &vault);
    let first = connect(&oauth, &s).await;
    let bob = {
        let mut c = s.store.conn().await.unwrap();
        users::create(&mut c, "bob@example.com", Role::Member, None)
            .await
            .unwrap()
    };
    let theirs = oauth
        .create_reconnect_flow(&bob.id, &first.id, None, None)
        .await;
    assert!(matches!(theirs, Err(OAuthError::NotFound(_))), "{theirs:?}");

    let flow = oauth
        .create_reconnect_flow(
            &s.user,
            &first.id,
            Some(vec!["read".into()]),
            Some("alice".into()),
        )
        .await
        .unwrap();
    let scope = Scope {
        user_id: s.user.clone(),
        role: Role::Member,
    };
    oauth.revoke(&scope, first.id.as_str()).await.unwrap();
    let fresh = authorize(&oauth, &s.user, &flow.flow_id).await.unwrap();
    assert_ne!(
        fresh.id, first.id,
        "a revoked connection (and its grants) stays revoked"
    );
    assert_eq!(fresh.status, ConnectionStatus::Active);
    assert_eq!(
        audited(&s, "connection.reconnect", first.id.as_str()).await,
        0
    );
    assert_eq!(audited(&s, "connection.create", fresh.id.as_str()).await, 1);
}
