//! The contract of the `oauth_clients` table, run against both backends by the macro in `main.rs`.

use crate::now;
use chrono::Duration as Span;
use gatehouse::StoreError;
use gatehouse::tables::oauth_clients::{ClientId, ClientSecret, GrantType, OAuthClient, PreviousSecret};
use gatehouse_tests::TestEnv;

/// A client named `id`, confidential (with a secret's hash) or public.
fn client(env: &TestEnv, id: &str, confidential: bool) -> OAuthClient {
    OAuthClient {
        id: ClientId::parse(id).unwrap(),
        name: format!("The <{id}> app"),
        secret_hash: confidential.then(|| ClientSecret::generate().hash()),
        previous_secret: None,
        redirect_uris: vec![format!("https://{id}.example.com/callback"), "http://127.0.0.1/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: if confidential { GrantType::ALL.to_vec() } else { vec![GrantType::AuthorizationCode] },
        scopes: vec!["openid".into(), "email".into(), "tokens:read".into()],
        first_party: !confidential,
        revoked: false,
        dynamic: confidential,
        created_at: now(env),
    }
}

pub async fn oauth_clients_are_created_once_found_listed_rotated_and_revoked(env: TestEnv) {
    let store = &env.stores.oauth_clients;
    let (web, spa) = (client(&env, "web-app", true), client(&env, "spa.app", false));
    store.create(&web).await.unwrap();
    store.create(&spa).await.unwrap();
    // The same write again is a retry, not a conflict; another client with the id is one.
    store.create(&web).await.unwrap();
    let taken = store.create(&client(&env, "web-app", false)).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert_eq!(store.find(&web.id).await.unwrap().as_ref(), Some(&web));
    assert_eq!(store.find(&spa.id).await.unwrap().as_ref(), Some(&spa));
    assert_eq!(store.find(&ClientId::generate()).await.unwrap(), None);
    assert_eq!(store.list().await.unwrap(), vec![spa.clone(), web.clone()], "by id");

    // A rotation keeps the previous secret's hash until a set time, or drops it.
    let new = ClientSecret::generate().hash();
    let previous = PreviousSecret { hash: web.secret_hash.clone().unwrap(), until: now(&env) + Span::hours(1) };
    assert!(store.rotate_secret(&web.id, &new, Some(&previous)).await.unwrap());
    let rotated = store.find(&web.id).await.unwrap().unwrap();
    assert_eq!((rotated.secret_hash.as_deref(), rotated.previous_secret.as_ref()), (Some(&*new), Some(&previous)));
    assert_eq!(OAuthClient { secret_hash: web.secret_hash.clone(), previous_secret: None, ..rotated }, web);
    let newer = ClientSecret::generate().hash();
    assert!(store.rotate_secret(&web.id, &newer, None).await.unwrap());
    let rotated = store.find(&web.id).await.unwrap().unwrap();
    assert_eq!((rotated.secret_hash.as_deref(), rotated.previous_secret), (Some(&*newer), None));
    // Not for a public client, nor an absent one: nothing written.
    assert!(!store.rotate_secret(&spa.id, &new, None).await.unwrap());
    assert_eq!(store.find(&spa.id).await.unwrap().unwrap().secret_hash, None);
    assert!(!store.rotate_secret(&ClientId::generate(), &new, None).await.unwrap());

    // Revoked, it is kept (marked) and rotates no more.
    assert!(store.revoke(&web.id).await.unwrap());
    assert!(store.revoke(&web.id).await.unwrap(), "revoking twice is harmless");
    assert!(!store.revoke(&ClientId::generate()).await.unwrap());
    assert!(!store.rotate_secret(&web.id, &new, None).await.unwrap());
    let revoked = store.find(&web.id).await.unwrap().unwrap();
    assert!(revoked.revoked);
    assert_eq!(revoked.secret_hash.as_deref(), Some(&*newer));
    assert_eq!(store.list().await.unwrap().len(), 2);
}
