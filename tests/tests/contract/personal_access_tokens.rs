//! The contract of the `personal_access_tokens` table, run against both backends by the macro in `main.rs`.

use crate::{now, put_token};
use chrono::Duration as Span;
use gatehouse::StoreError;
use gatehouse::tables::personal_access_tokens::{Abilities, PersonalAccessToken, TokenId, TokenSecret, Tokenable};
use gatehouse::tables::users::UserId;
use gatehouse_tests::TestEnv;
use std::time::Duration;

fn token(env: &TestEnv, owner: &Tokenable, expires_in: Option<Span>) -> (TokenSecret, PersonalAccessToken) {
    let secret = TokenSecret::generate("gth_");
    let t = PersonalAccessToken {
        id: TokenId::generate(),
        tokenable: owner.clone(),
        name: "cli".into(),
        token_hash: secret.hash(),
        abilities: Abilities::new(vec!["read".into()]),
        last_used_at: None,
        expires_at: expires_in.map(|d| now(env) + d),
        created_at: now(env),
        updated_at: now(env),
        credentials_version: 0,
        email_verified: Some(false),
    };
    (secret, t)
}

pub async fn a_token_is_found_by_id_and_matches_only_its_secret(env: TestEnv) {
    let owner = Tokenable::user(&UserId::generate());
    let (secret, t) = token(&env, &owner, None);
    assert!(put_token(&env, &t).await.unwrap());
    let got = env.stores.personal_access_tokens.find(&t.id).await.unwrap().unwrap();
    assert_eq!(got, t);
    assert!(got.matches(&secret));
    assert!(!got.matches(&TokenSecret::generate("gth_")));
    assert!(matches!(put_token(&env, &t).await, Err(StoreError::Conflict(_))));
}

pub async fn an_expired_token_is_invisible_though_still_stored(env: TestEnv) {
    let owner = Tokenable::user(&UserId::generate());
    let (_, t) = token(&env, &owner, Some(Span::minutes(10)));
    assert!(put_token(&env, &t).await.unwrap());
    env.clock.advance(Span::minutes(11));
    assert_eq!(env.stores.personal_access_tokens.find(&t.id).await.unwrap(), None);
    assert!(env.stores.personal_access_tokens.list_for(&owner, 10, None).await.unwrap().items.is_empty());
    assert!(!env.stores.personal_access_tokens.touch_last_used(&t.id, now(&env), now(&env)).await.unwrap());
    assert!(!env.stores.personal_access_tokens.extend(&t.id, now(&env) + Span::hours(1)).await.unwrap());
}

pub async fn last_used_is_written_at_most_once_per_interval(env: TestEnv) {
    let owner = Tokenable::user(&UserId::generate());
    let (_, t) = token(&env, &owner, None);
    assert!(put_token(&env, &t).await.unwrap());
    let interval = Span::seconds(60);
    let mut writes = 0;
    for _ in 0..5 {
        writes += usize::from(
            env.stores.personal_access_tokens.touch_last_used(&t.id, now(&env), now(&env) - interval).await.unwrap(),
        );
        env.clock.advance(Span::seconds(10));
    }
    assert_eq!(writes, 1);
    env.clock.advance(Span::seconds(30));
    assert!(env.stores.personal_access_tokens.touch_last_used(&t.id, now(&env), now(&env) - interval).await.unwrap());
    assert_eq!(env.stores.personal_access_tokens.find(&t.id).await.unwrap().unwrap().last_used_at, Some(now(&env)));
}

pub async fn only_the_owner_deletes_a_token(env: TestEnv) {
    let owner = Tokenable::user(&UserId::generate());
    let stranger = Tokenable::user(&UserId::generate());
    let (_, t) = token(&env, &owner, None);
    assert!(put_token(&env, &t).await.unwrap());
    assert!(!env.stores.personal_access_tokens.delete_owned(&t.id, &stranger).await.unwrap());
    assert!(env.stores.personal_access_tokens.find(&t.id).await.unwrap().is_some());
    assert!(env.stores.personal_access_tokens.delete_owned(&t.id, &owner).await.unwrap());
    assert!(!env.stores.personal_access_tokens.delete_owned(&t.id, &owner).await.unwrap());
    assert_eq!(env.stores.personal_access_tokens.find(&t.id).await.unwrap(), None);
}

pub async fn tokens_are_listed_newest_first_a_page_at_a_time(env: TestEnv) {
    let owner = Tokenable::user(&UserId::generate());
    let mut ids = Vec::new();
    for _ in 0..7 {
        let (_, t) = token(&env, &owner, None);
        assert!(put_token(&env, &t).await.unwrap());
        ids.push(t.id);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(put_token(&env, &token(&env, &Tokenable::user(&UserId::generate()), None).1).await.unwrap());
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = env.stores.personal_access_tokens.list_for(&owner, 3, cursor.as_ref()).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.into_iter().map(|t| t.id));
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);
    assert_eq!(env.stores.personal_access_tokens.delete_all_for(&owner).await.unwrap(), 7);
    assert!(env.stores.personal_access_tokens.list_for(&owner, 10, None).await.unwrap().items.is_empty());
}

pub async fn marking_a_token_verified_persists_and_skips_expired_ones(env: TestEnv) {
    let owner = Tokenable::user(&UserId::generate());
    let (_, live) = token(&env, &owner, Some(Span::minutes(10)));
    let (_, short) = token(&env, &owner, Some(Span::minutes(1)));
    assert!(put_token(&env, &live).await.unwrap() && put_token(&env, &short).await.unwrap());
    env.clock.advance(Span::minutes(2));
    assert!(env.stores.personal_access_tokens.mark_verified(&live.id).await.unwrap());
    assert!(
        !env.stores.personal_access_tokens.mark_verified(&short.id).await.unwrap(),
        "an expired token is not revived"
    );
    assert!(!env.stores.personal_access_tokens.mark_verified(&TokenId::generate()).await.unwrap(), "nor one made up");
    let got = env.stores.personal_access_tokens.find(&live.id).await.unwrap().unwrap();
    assert_eq!(got, PersonalAccessToken { email_verified: Some(true), ..live });
}
