//! The contract of the `credentials` table (the register), run against both backends by the macro in
//! `main.rs`.

use crate::{entry, now, session, user};
use chrono::Duration as Span;
use gatehouse::credentials::{CredentialRef, NewCredential};
use gatehouse::users::{CredentialChange, UserId};
use gatehouse_tests::TestEnv;

pub async fn issuing_is_conditional_on_the_credentials_version(env: TestEnv) {
    let u = user(&env, "ann@example.com");
    env.stores.users.create(&u).await.unwrap();
    let (id, rec) = session(&env, Some(&u.id), Span::minutes(120));
    let e = entry(&u.id, CredentialRef::session(&rec.key), None);
    assert!(env.stores.credentials.issue(0, &e, NewCredential::Session(&rec)).await.unwrap());
    let revoke = CredentialChange { revoke: true, ..CredentialChange::default() };
    // A stale compare-and-swap writes nothing.
    assert_eq!(env.stores.users.change_credentials(&u.id, 7, revoke, now(&env)).await.unwrap(), None);
    assert_eq!(env.stores.users.change_credentials(&u.id, 0, revoke, now(&env)).await.unwrap(), Some(1));
    let (late_id, late) = session(&env, Some(&u.id), Span::minutes(120));
    let e = entry(&u.id, CredentialRef::session(&late.key), None);
    assert!(!env.stores.credentials.issue(0, &e, NewCredential::Session(&late)).await.unwrap());
    assert_eq!(env.stores.sessions.find(&late_id.key()).await.unwrap(), None, "nothing written");
    assert!(env.stores.credentials.issue(1, &e, NewCredential::Session(&late)).await.unwrap());
    assert_eq!(env.stores.sessions.find(&late_id.key()).await.unwrap().unwrap().credentials_version, 0);
    let stranger = entry(&UserId::generate(), CredentialRef::session(&rec.key), None);
    let (_, other) = session(&env, Some(&stranger.user_id), Span::minutes(120));
    assert!(!env.stores.credentials.issue(0, &stranger, NewCredential::Session(&other)).await.unwrap());
    let listed: Vec<_> = env.stores.credentials.list(&u.id).await.unwrap().into_iter().map(|e| e.credential).collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&CredentialRef::session(&id.key())));
    env.stores.credentials.forget(&u.id, &listed).await.unwrap();
    assert!(env.stores.credentials.list(&u.id).await.unwrap().is_empty());
}

pub async fn twenty_concurrent_issues_racing_a_version_change_never_land_after_it(env: TestEnv) {
    let u = user(&env, "race@example.com");
    env.stores.users.create(&u).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (stores, uid) = (env.stores.clone(), u.id.clone());
            let (_, rec) = session(&env, Some(&uid), Span::minutes(120));
            tokio::spawn(async move {
                let e = entry(&uid, CredentialRef::session(&rec.key), None);
                stores.credentials.issue(0, &e, NewCredential::Session(&rec)).await.unwrap()
            })
        })
        .collect();
    let revoke = CredentialChange { revoke: true, ..CredentialChange::default() };
    let mut version = None;
    while version.is_none() {
        version = env.stores.users.change_credentials(&u.id, 0, revoke, now(&env)).await.unwrap();
    }
    let registered_at_change = env.stores.credentials.list(&u.id).await.unwrap().len();
    let mut issued = 0;
    for t in tasks {
        issued += usize::from(t.await.unwrap());
    }
    // Everything issued was issued before the change, so the register read after it saw it.
    assert_eq!(issued, registered_at_change);
}

/// A disabled user gets no credential, even under the version it has now: a password change or
/// logout-other-devices racing `user:disable` (which read the version after it) issues nothing.
pub async fn nothing_is_issued_to_a_disabled_user_under_any_version(env: TestEnv) {
    let u = user(&env, "ann@example.com");
    env.stores.users.create(&u).await.unwrap();
    let disable = CredentialChange { revoke: true, disable: Some(true), ..CredentialChange::default() };
    assert_eq!(env.stores.users.change_credentials(&u.id, 0, disable, now(&env)).await.unwrap(), Some(1));
    // What a racing password change does next: the version moves on again, with the account
    // still disabled.
    let rotate = CredentialChange { revoke: true, ..CredentialChange::default() };
    assert_eq!(env.stores.users.change_credentials(&u.id, 1, rotate, now(&env)).await.unwrap(), Some(2));
    let (id, rec) = session(&env, Some(&u.id), Span::minutes(120));
    let e = entry(&u.id, CredentialRef::session(&rec.key), None);
    assert!(!env.stores.credentials.issue(2, &e, NewCredential::Session(&rec)).await.unwrap());
    assert_eq!(env.stores.sessions.find(&id.key()).await.unwrap(), None, "nothing written");
    let enable = CredentialChange { disable: Some(false), ..CredentialChange::default() };
    assert_eq!(env.stores.users.change_credentials(&u.id, 2, enable, now(&env)).await.unwrap(), Some(2));
    assert!(env.stores.credentials.issue(2, &e, NewCredential::Session(&rec)).await.unwrap());
}
