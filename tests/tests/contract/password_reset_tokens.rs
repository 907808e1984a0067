//! The contract of the `password_reset_tokens` table, run against both backends by the macro in `main.rs`.

use crate::now;
use chrono::Duration as Span;
use gatehouse::Email;
use gatehouse::tables::password_reset_tokens::{PlainResetToken, ResetRecord};
use gatehouse_tests::TestEnv;

fn reset(env: &TestEnv, email: &str) -> (PlainResetToken, ResetRecord) {
    let token = PlainResetToken::generate();
    let rec = ResetRecord {
        email: Email::parse(email).unwrap(),
        token_hash: token.hash(),
        created_at: now(env),
        expires_at: now(env) + Span::minutes(60),
    };
    (token, rec)
}

pub async fn a_reset_token_is_throttled_then_replaced(env: TestEnv) {
    let (_, first) = reset(&env, "Ann@example.com");
    let throttle = Span::seconds(60);
    assert!(env.stores.password_reset_tokens.put_unless_throttled(&first, now(&env) - throttle).await.unwrap());
    env.clock.advance(Span::seconds(30));
    let (_, second) = reset(&env, "ann@example.com");
    assert!(!env.stores.password_reset_tokens.put_unless_throttled(&second, now(&env) - throttle).await.unwrap());
    env.clock.advance(Span::seconds(31));
    let (_, third) = reset(&env, "ann@example.com");
    assert!(env.stores.password_reset_tokens.put_unless_throttled(&third, now(&env) - throttle).await.unwrap());
    let found =
        env.stores.password_reset_tokens.find(&Email::parse("ANN@example.com").unwrap()).await.unwrap().unwrap();
    assert_eq!(found.token_hash, third.token_hash);
}

pub async fn a_retried_write_of_the_same_token_is_not_taken_for_a_throttled_second_request(env: TestEnv) {
    let (_, first) = reset(&env, "ann@example.com");
    let throttle = Span::seconds(60);
    assert!(env.stores.password_reset_tokens.put_unless_throttled(&first, now(&env) - throttle).await.unwrap());
    env.clock.advance(Span::seconds(5));
    // The same write again (its answer was lost; the SDK or the job retried it).
    let again = ResetRecord { created_at: now(&env), ..first.clone() };
    assert!(env.stores.password_reset_tokens.put_unless_throttled(&again, now(&env) - throttle).await.unwrap());
    let (_, other) = reset(&env, "ann@example.com");
    assert!(
        !env.stores.password_reset_tokens.put_unless_throttled(&other, now(&env) - throttle).await.unwrap(),
        "another token is"
    );
    let found = env.stores.password_reset_tokens.find(&first.email).await.unwrap().unwrap();
    assert_eq!(found.token_hash, first.token_hash);
}

pub async fn a_reset_token_is_consumed_once_and_only_by_its_own_hash(env: TestEnv) {
    let (token, rec) = reset(&env, "ann@example.com");
    env.stores.password_reset_tokens.put_unless_throttled(&rec, now(&env) - Span::seconds(60)).await.unwrap();
    let email = Email::parse("ann@example.com").unwrap();
    assert!(
        env.stores
            .password_reset_tokens
            .consume(&email, &PlainResetToken::generate().hash(), now(&env), 0)
            .await
            .unwrap()
            .is_none()
    );
    assert!(env.stores.password_reset_tokens.consume(&email, &token.hash(), now(&env), 0).await.unwrap().is_some());
    assert!(env.stores.password_reset_tokens.consume(&email, &token.hash(), now(&env), 0).await.unwrap().is_none());
    assert_eq!(env.stores.password_reset_tokens.find(&email).await.unwrap(), None);
    // Spent, it is still there as spent, and when: what recognises the reset's own retry.
    let spent = env.stores.password_reset_tokens.find_spent(&email).await.unwrap().expect("the spent token");
    assert_eq!((spent.token_hash, spent.spent_at, spent.version), (token.hash(), now(&env), 0));
    // Until it expires.
    env.clock.advance(Span::minutes(61));
    assert_eq!(env.stores.password_reset_tokens.find_spent(&email).await.unwrap(), None);
}

pub async fn an_expired_reset_token_is_neither_found_nor_consumed(env: TestEnv) {
    let (token, rec) = reset(&env, "ann@example.com");
    env.stores.password_reset_tokens.put_unless_throttled(&rec, now(&env)).await.unwrap();
    env.clock.advance(Span::minutes(61));
    let email = Email::parse("ann@example.com").unwrap();
    assert_eq!(env.stores.password_reset_tokens.find(&email).await.unwrap(), None);
    assert!(env.stores.password_reset_tokens.consume(&email, &token.hash(), now(&env), 0).await.unwrap().is_none());
    // An expired token does not throttle a new one.
    let (_, fresh) = reset(&env, "ann@example.com");
    assert!(
        env.stores.password_reset_tokens.put_unless_throttled(&fresh, now(&env) - Span::seconds(60)).await.unwrap()
    );
}

pub async fn ten_concurrent_consumptions_of_one_reset_token_succeed_once(env: TestEnv) {
    let (token, rec) = reset(&env, "ann@example.com");
    env.stores.password_reset_tokens.put_unless_throttled(&rec, now(&env)).await.unwrap();
    let email = Email::parse("ann@example.com").unwrap();
    let t = now(&env);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (store, email, hash) = (env.stores.password_reset_tokens.clone(), email.clone(), token.hash());
            tokio::spawn(async move { store.consume(&email, &hash, t, 0).await.unwrap() })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap().is_some());
    }
    assert_eq!(wins, 1);
}

pub async fn a_spent_token_given_back_works_once_more_and_never_throttles_a_new_link(env: TestEnv) {
    let (token, rec) = reset(&env, "ann@example.com");
    let email = Email::parse("ann@example.com").unwrap();
    let throttle = Span::seconds(60);
    assert!(env.stores.password_reset_tokens.put_unless_throttled(&rec, now(&env) - throttle).await.unwrap());
    let first =
        env.stores.password_reset_tokens.consume(&email, &token.hash(), now(&env), 0).await.unwrap().expect("spent");
    assert_eq!(env.stores.password_reset_tokens.find(&email).await.unwrap(), None, "spent: not found");
    // The reset that spent it could not change the password: it gives the token back.
    env.stores.password_reset_tokens.restore(&email, &first).await.unwrap();
    assert_eq!(
        env.stores.password_reset_tokens.find(&email).await.unwrap().map(|r| r.token_hash),
        Some(rec.token_hash.clone())
    );
    let second = env.stores.password_reset_tokens.consume(&email, &token.hash(), now(&env), 0).await.unwrap();
    let second = second.expect("the retry spends it");
    assert!(
        env.stores.password_reset_tokens.consume(&email, &token.hash(), now(&env), 0).await.unwrap().is_none(),
        "and only once"
    );
    // The first spend's give-back landing again, late (after the retry spent the token and
    // changed the password), gives nothing back: the token carries the retry's mark.
    env.stores.password_reset_tokens.restore(&email, &first).await.unwrap();
    assert_eq!(env.stores.password_reset_tokens.find(&email).await.unwrap(), None, "a late give-back does nothing");
    assert!(env.stores.password_reset_tokens.find_spent(&email).await.unwrap().is_some());
    let _ = second;
    // A spent token does not hold off a new link, even within the throttle window.
    let (_, fresh) = reset(&env, "ann@example.com");
    assert!(env.stores.password_reset_tokens.put_unless_throttled(&fresh, now(&env) - throttle).await.unwrap());
}
