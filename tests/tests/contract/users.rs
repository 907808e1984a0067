//! The contract of the `users` table, run against both backends by the macro in `main.rs`.

use crate::{now, user};
use chrono::Duration as Span;
use gatehouse::password::PasswordHash;
use gatehouse::users::{CredentialChange, DisplayName, UserId};
use gatehouse::{Email, StoreError};
use gatehouse_tests::TestEnv;

pub async fn users_are_found_by_id_and_by_email_in_any_case(env: TestEnv) {
    let u = user(&env, "Ann.Lee@Example.com");
    env.stores.users.create(&u).await.unwrap();
    assert_eq!(env.stores.users.find(&u.id).await.unwrap().as_ref(), Some(&u));
    let by_email = env.stores.users.find_by_email(&Email::parse("ann.lee@EXAMPLE.com").unwrap()).await.unwrap();
    assert_eq!(by_email, Some(u));
    assert_eq!(env.stores.users.find(&UserId::generate()).await.unwrap(), None);
    assert_eq!(env.stores.users.find_by_email(&Email::parse("nobody@example.com").unwrap()).await.unwrap(), None);
}

pub async fn users_with_the_same_email_in_another_case_conflict(env: TestEnv) {
    env.stores.users.create(&user(&env, "ann@example.com")).await.unwrap();
    let err = env.stores.users.create(&user(&env, "ANN@example.com")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

pub async fn twenty_concurrent_registrations_of_one_email_let_exactly_one_succeed(env: TestEnv) {
    let users = env.stores.users.clone();
    let attempts: Vec<_> = (0..20)
        .map(|i| {
            let u = user(&env, if i % 2 == 0 { "race@example.com" } else { "RACE@Example.COM" });
            let users = users.clone();
            tokio::spawn(async move { users.create(&u).await })
        })
        .collect();
    let mut ok = 0;
    for a in attempts {
        match a.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(ok, 1);
}

pub async fn users_password_and_verification_updates_persist(env: TestEnv) {
    let u = user(&env, "ann@example.com");
    env.stores.users.create(&u).await.unwrap();
    env.clock.advance(Span::seconds(5));
    let new_hash = PasswordHash::from_stored("$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3".into());
    let change = CredentialChange { password: Some(&new_hash), ..CredentialChange::default() };
    assert_eq!(env.stores.users.change_credentials(&u.id, 0, change, now(&env)).await.unwrap(), Some(0));
    let other = Email::parse("someone-else@example.com").unwrap();
    assert!(
        !env.stores.users.mark_email_verified(&u.id, &other, now(&env)).await.unwrap(),
        "a link for an address the user no longer has verifies nothing"
    );
    assert_eq!(env.stores.users.find(&u.id).await.unwrap().unwrap().email_verified_at, None);
    assert!(env.stores.users.mark_email_verified(&u.id, &u.email, now(&env)).await.unwrap());
    let first = now(&env);
    env.clock.advance(Span::seconds(5));
    assert!(
        !env.stores.users.mark_email_verified(&u.id, &u.email, now(&env)).await.unwrap(),
        "verification is set once"
    );
    assert!(!env.stores.users.mark_email_verified(&UserId::generate(), &u.email, now(&env)).await.unwrap());
    let got = env.stores.users.find(&u.id).await.unwrap().unwrap();
    assert_eq!(got.password_hash, new_hash);
    assert_eq!(got.email_verified_at, Some(first));
    assert_eq!(got.updated_at, first);
    assert_eq!(env.stores.users.change_credentials(&UserId::generate(), 0, change, now(&env)).await.unwrap(), None);
}

pub async fn the_display_name_changes_and_nothing_else(env: TestEnv) {
    let u = user(&env, "ann@example.com");
    env.stores.users.create(&u).await.unwrap();
    env.clock.advance(Span::seconds(5));
    let name = DisplayName::parse("Ann B. Lee").unwrap();
    let returned = env.stores.users.update_name(&u.id, &name, now(&env)).await.unwrap().expect("the user as written");
    let got = env.stores.users.find(&u.id).await.unwrap().unwrap();
    assert_eq!(returned, got, "what it returns is what is stored");
    assert_eq!(got.name, "Ann B. Lee");
    assert_eq!(got.updated_at, now(&env));
    assert_eq!((got.email, got.password_hash, got.credentials_version), (u.email.clone(), u.password_hash, 0));
    assert_eq!(env.stores.users.find_by_email(&u.email).await.unwrap().map(|f| f.name), Some("Ann B. Lee".into()));
    assert_eq!(env.stores.users.update_name(&UserId::generate(), &name, now(&env)).await.unwrap(), None);
    assert!(env.stores.users.find(&UserId::generate()).await.unwrap().is_none(), "no user made by updating");
}

pub async fn deleting_a_user_frees_its_email(env: TestEnv) {
    let u = user(&env, "ann@example.com");
    env.stores.users.create(&u).await.unwrap();
    assert!(env.stores.users.delete(&u.id).await.unwrap());
    assert!(!env.stores.users.delete(&u.id).await.unwrap());
    assert_eq!(env.stores.users.find_by_email(&u.email).await.unwrap(), None);
    env.stores.users.create(&user(&env, "ann@example.com")).await.unwrap();
}
