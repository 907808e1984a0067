//! The contract of the `oauth_access_tokens` table, run against both backends by the macro in
//! `main.rs`.

use crate::now;
use chrono::Duration as Span;
use gatehouse::StoreError;
use gatehouse::tables::oauth_access_tokens::AccessTokenRecord;
use gatehouse::tables::oauth_clients::ClientId;
use gatehouse::tables::oauth_refresh_tokens::new_family_id;
use gatehouse::tables::users::UserId;
use gatehouse_tests::TestEnv;

/// An access token's record living 15 minutes: a user's, from a grant, or the client's own.
fn record(env: &TestEnv, for_user: bool) -> AccessTokenRecord {
    AccessTokenRecord {
        jti: uuid::Uuid::new_v4().simple().to_string(),
        client_id: ClientId::parse("web-app").unwrap(),
        user_id: for_user.then(UserId::generate),
        scopes: if for_user { vec!["openid".into(), "tokens:read".into()] } else { vec![] },
        family_id: for_user.then(new_family_id),
        created_at: now(env),
        expires_at: now(env) + Span::minutes(15),
    }
}

pub async fn access_tokens_are_put_once_found_and_deleted(env: TestEnv) {
    let store = &env.stores.oauth_access_tokens;
    let (users, clients) = (record(&env, true), record(&env, false));
    store.put(&users).await.unwrap();
    store.put(&clients).await.unwrap();
    // The same write again is a retry; another record with that jti is a conflict.
    store.put(&users).await.unwrap();
    let other = AccessTokenRecord { scopes: vec!["openid".into()], ..users.clone() };
    assert!(matches!(store.put(&other).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.find(&users.jti).await.unwrap().as_ref(), Some(&users));
    assert_eq!(store.find(&clients.jti).await.unwrap().as_ref(), Some(&clients));
    assert_eq!(store.find("0123456789abcdef0123456789abcdef").await.unwrap(), None);
    store.delete(&users.jti).await.unwrap();
    assert_eq!(store.find(&users.jti).await.unwrap(), None);
    store.delete(&users.jti).await.unwrap();
    assert_eq!(store.find(&clients.jti).await.unwrap().as_ref(), Some(&clients), "the other one stays");
}

pub async fn an_expired_access_token_is_invisible_though_still_stored(env: TestEnv) {
    let store = &env.stores.oauth_access_tokens;
    let rec = record(&env, true);
    store.put(&rec).await.unwrap();
    env.clock.advance(Span::minutes(15));
    assert_eq!(store.find(&rec.jti).await.unwrap(), None, "expired at its very second");
    if env.is_aws() {
        let items = gatehouse_tests::scan_items(&env, Some("oauth_access_tokens")).await;
        assert!(items.iter().any(|i| i.contains(&rec.jti)), "still stored until TTL deletes it");
    }
    // Its jti is free again.
    let again = AccessTokenRecord { created_at: now(&env), expires_at: now(&env) + Span::minutes(15), ..rec };
    store.put(&again).await.unwrap();
    assert_eq!(store.find(&again.jti).await.unwrap(), Some(again));
}
