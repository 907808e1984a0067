//! The contract of the `oauth_auth_codes` table, run against both backends by the macro in
//! `main.rs`.

use crate::now;
use chrono::Duration as Span;
use gatehouse::StoreError;
use gatehouse::tables::oauth_auth_codes::{AuthCode, AuthCodeRecord, CodeSpend};
use gatehouse::tables::oauth_clients::ClientId;
use gatehouse::tables::oauth_refresh_tokens::new_family_id;
use gatehouse::tables::users::UserId;
use gatehouse_tests::TestEnv;

/// A code for `web-app`, living 60 seconds.
fn code(env: &TestEnv) -> (AuthCode, AuthCodeRecord) {
    let code = AuthCode::generate();
    let rec = AuthCodeRecord {
        code_hash: code.hash(),
        client_id: ClientId::parse("web-app").unwrap(),
        user_id: UserId::generate(),
        redirect_uri: "https://web-app.example.com/callback".into(),
        scopes: vec!["openid".into(), "profile".into()],
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        credentials_version: 3,
        family_id: new_family_id(),
        session_id: None,
        auth_time: now(env) - Span::minutes(2),
        amr: vec!["pwd".into(), "otp".into()],
        created_at: now(env),
        expires_at: now(env) + Span::seconds(60),
    };
    (code, rec)
}

pub async fn an_auth_code_is_spent_once_then_recognised_as_replayed(env: TestEnv) {
    let store = &env.stores.oauth_auth_codes;
    let (code, rec) = code(&env);
    store.put(&rec).await.unwrap();
    // The same write again is a retry; another code with that hash is a conflict.
    store.put(&rec).await.unwrap();
    let other = AuthCodeRecord { nonce: None, ..rec.clone() };
    assert!(matches!(store.put(&other).await, Err(StoreError::Conflict(_))));
    // A code with no nonce and no session round-trips too.
    let (_, bare) = code_without_extras(&env);
    store.put(&bare).await.unwrap();

    assert_eq!(store.spend(&code.hash(), now(&env)).await.unwrap(), CodeSpend::Spent(rec.clone()));
    assert_eq!(store.spend(&code.hash(), now(&env)).await.unwrap(), CodeSpend::Replayed(rec.clone()));
    env.clock.advance(Span::seconds(30));
    assert_eq!(store.spend(&code.hash(), now(&env)).await.unwrap(), CodeSpend::Replayed(rec.clone()), "kept");
    assert!(matches!(store.put(&rec).await, Err(StoreError::Conflict(_))), "spent, it is no retry any more");
    assert_eq!(store.spend(&AuthCode::generate().hash(), now(&env)).await.unwrap(), CodeSpend::Unknown);
    assert_eq!(store.spend(&bare.code_hash, now(&env)).await.unwrap(), CodeSpend::Spent(bare));
}

fn code_without_extras(env: &TestEnv) -> (AuthCode, AuthCodeRecord) {
    let (code, rec) = code(env);
    (code, AuthCodeRecord { nonce: None, session_id: None, amr: vec![], scopes: vec![], ..rec })
}

pub async fn an_expired_auth_code_is_unknown_spent_or_not(env: TestEnv) {
    let store = &env.stores.oauth_auth_codes;
    let (fresh, fresh_rec) = code(&env);
    let (spent, spent_rec) = code(&env);
    store.put(&fresh_rec).await.unwrap();
    store.put(&spent_rec).await.unwrap();
    assert!(matches!(store.spend(&spent.hash(), now(&env)).await.unwrap(), CodeSpend::Spent(_)));
    env.clock.advance(Span::seconds(61));
    assert_eq!(store.spend(&fresh.hash(), now(&env)).await.unwrap(), CodeSpend::Unknown);
    assert_eq!(store.spend(&spent.hash(), now(&env)).await.unwrap(), CodeSpend::Unknown);
    // Expired, its hash is free again (TTL deletes it late).
    let again = AuthCodeRecord { created_at: now(&env), expires_at: now(&env) + Span::seconds(60), ..fresh_rec };
    store.put(&again).await.unwrap();
    assert_eq!(store.spend(&fresh.hash(), now(&env)).await.unwrap(), CodeSpend::Spent(again));
}

pub async fn eight_concurrent_spends_of_one_auth_code_let_exactly_one_through(env: TestEnv) {
    let (code, rec) = code(&env);
    env.stores.oauth_auth_codes.put(&rec).await.unwrap();
    let t = now(&env);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, hash) = (env.stores.oauth_auth_codes.clone(), code.hash());
            tokio::spawn(async move { store.spend(&hash, t).await.unwrap() })
        })
        .collect();
    let (mut spent, mut replayed) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            CodeSpend::Spent(r) => {
                assert_eq!(r, rec);
                spent += 1;
            }
            CodeSpend::Replayed(r) => {
                assert_eq!(r, rec);
                replayed += 1;
            }
            CodeSpend::Unknown => panic!("a live code is never unknown"),
        }
    }
    assert_eq!((spent, replayed), (1, 7));
}
