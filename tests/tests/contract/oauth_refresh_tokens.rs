//! The contract of the `oauth_refresh_tokens` table (OAuth grants, issued through the register),
//! run against both backends by the macro in `main.rs`.

use crate::{issue_grant, now, refresh_family};
use chrono::Duration as Span;
use gatehouse::StoreError;
use gatehouse::tables::credential_ref::CredentialRef;
use gatehouse::tables::oauth_clients::ClientId;
use gatehouse::tables::oauth_refresh_tokens::{RefreshFamily, RefreshToken, Rotation, SPENT_REMEMBERED};
use gatehouse::tables::users::{CredentialChange, UserId};
use gatehouse_tests::TestEnv;

fn web_app() -> ClientId {
    ClientId::parse("web-app").unwrap()
}

/// `token` with another generation number: its secret (and hash) unchanged.
fn with_generation(token: &RefreshToken, generation: u32) -> RefreshToken {
    let exposed = token.expose();
    let secret = exposed.rsplit('.').next().unwrap();
    RefreshToken::parse(&format!("{}.{generation}.{secret}", token.family_id)).unwrap()
}

/// Rotates `token` to its successor, which it returns with the family as rotated.
async fn rotate(env: &TestEnv, token: &RefreshToken) -> (RefreshToken, RefreshFamily) {
    let next = RefreshToken::generate(&token.family_id, token.generation + 1);
    match env.stores.oauth_refresh_tokens.rotate(token, &next.hash(), now(env)).await.unwrap() {
        Rotation::Rotated(f) => (next, *f),
        other => panic!("not rotated: {other:?}"),
    }
}

pub async fn a_grant_is_issued_only_under_the_credentials_version_and_only_once(env: TestEnv) {
    let uid = UserId::generate();
    let (_, fam) = refresh_family(&env, &uid, &web_app());
    assert!(issue_grant(&env, 0, &fam).await.unwrap());
    assert_eq!(env.stores.oauth_refresh_tokens.find(&fam.family_id).await.unwrap().as_ref(), Some(&fam));
    let entry = env.stores.credentials.list(&uid).await.unwrap();
    assert_eq!(entry.len(), 1);
    assert_eq!(entry[0].credential, CredentialRef::oauth_grant(&fam.family_id));
    assert_eq!(entry[0].expires_at, Some(fam.expires_at), "the entry lives as long as the family");
    // Its id is taken.
    let again = issue_grant(&env, 0, &fam).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    // Once the version moved, nothing verified against the old one is issued.
    let revoke = CredentialChange { revoke: true, ..CredentialChange::default() };
    assert_eq!(env.stores.users.change_credentials(&uid, 0, revoke, now(&env)).await.unwrap(), Some(1));
    let (_, late) = refresh_family(&env, &uid, &web_app());
    assert!(!issue_grant(&env, 0, &late).await.unwrap());
    assert_eq!(env.stores.oauth_refresh_tokens.find(&late.family_id).await.unwrap(), None, "nothing written");
    assert_eq!(env.stores.credentials.list(&uid).await.unwrap().len(), 1);
    assert!(issue_grant(&env, 1, &late).await.unwrap());
}

pub async fn a_refresh_token_rotates_once_and_its_reuse_is_recognised(env: TestEnv) {
    let store = &env.stores.oauth_refresh_tokens;
    let (first, fam) = refresh_family(&env, &UserId::generate(), &web_app());
    assert!(issue_grant(&env, 0, &fam).await.unwrap());
    let (second, rotated) = rotate(&env, &first).await;
    let want =
        RefreshFamily { generation: 1, current_hash: second.hash(), spent_hashes: vec![first.hash()], ..fam.clone() };
    assert_eq!(rotated, want, "the successor is current, nothing else moved (not the expiry)");
    assert_eq!(store.find(&fam.family_id).await.unwrap(), Some(want.clone()));
    // The spent token again: reuse, and nothing written.
    let next = RefreshToken::generate(&fam.family_id, 2);
    assert_eq!(store.rotate(&first, &next.hash(), now(&env)).await.unwrap(), Rotation::Reused);
    // The current token's secret under a generation it does not have: reuse too.
    assert_eq!(store.rotate(&with_generation(&second, 7), &next.hash(), now(&env)).await.unwrap(), Rotation::Reused);
    // A secret never issued, in the family or in none.
    assert_eq!(
        store.rotate(&RefreshToken::generate(&fam.family_id, 1), &next.hash(), now(&env)).await.unwrap(),
        Rotation::Unknown
    );
    let stranger = RefreshToken::generate(&gatehouse::tables::oauth_refresh_tokens::new_family_id(), 0);
    assert_eq!(store.rotate(&stranger, &next.hash(), now(&env)).await.unwrap(), Rotation::Unknown);
    assert_eq!(store.find(&fam.family_id).await.unwrap(), Some(want), "nothing written");
    // The current one still rotates.
    let (third, rotated) = rotate(&env, &second).await;
    assert_eq!((rotated.generation, rotated.current_hash), (2, third.hash()));
    assert_eq!(rotated.spent_hashes, vec![first.hash(), second.hash()], "oldest first");
    // Deleted (a revocation), every token of it is unknown.
    store.delete(&fam.family_id).await.unwrap();
    store.delete(&fam.family_id).await.unwrap();
    assert_eq!(store.find(&fam.family_id).await.unwrap(), None);
    assert_eq!(store.rotate(&third, &next.hash(), now(&env)).await.unwrap(), Rotation::Unknown);
    assert_eq!(store.rotate(&first, &next.hash(), now(&env)).await.unwrap(), Rotation::Unknown);
}

pub async fn eight_concurrent_rotations_of_one_refresh_token_let_exactly_one_through(env: TestEnv) {
    let (token, fam) = refresh_family(&env, &UserId::generate(), &web_app());
    assert!(issue_grant(&env, 0, &fam).await.unwrap());
    let t = now(&env);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, token) = (env.stores.oauth_refresh_tokens.clone(), token.clone());
            let next = RefreshToken::generate(&token.family_id, 1);
            tokio::spawn(async move { (store.rotate(&token, &next.hash(), t).await.unwrap(), next) })
        })
        .collect();
    let (mut rotated, mut reused) = (Vec::new(), 0);
    for task in tasks {
        match task.await.unwrap() {
            (Rotation::Rotated(f), next) => rotated.push((*f, next)),
            (Rotation::Reused, _) => reused += 1,
            (Rotation::Unknown, _) => panic!("a token of a live family is never unknown"),
        }
    }
    assert_eq!((rotated.len(), reused), (1, 7));
    let (f, next) = rotated.pop().unwrap();
    assert_eq!((f.generation, &f.current_hash), (1, &next.hash()));
    let stored = env.stores.oauth_refresh_tokens.find(&fam.family_id).await.unwrap().unwrap();
    assert_eq!(stored, f, "the winner's successor is the one current");
}

pub async fn an_expired_family_is_invisible_and_rotates_nothing(env: TestEnv) {
    let store = &env.stores.oauth_refresh_tokens;
    let (first, fam) = refresh_family(&env, &UserId::generate(), &web_app());
    let fam = RefreshFamily { expires_at: now(&env) + Span::minutes(10), ..fam };
    assert!(issue_grant(&env, 0, &fam).await.unwrap());
    let (second, _) = rotate(&env, &first).await;
    env.clock.advance(Span::minutes(10));
    assert_eq!(store.find(&fam.family_id).await.unwrap(), None, "expired at its very second");
    let next = RefreshToken::generate(&fam.family_id, 2);
    assert_eq!(store.rotate(&second, &next.hash(), now(&env)).await.unwrap(), Rotation::Unknown);
    assert_eq!(store.rotate(&first, &next.hash(), now(&env)).await.unwrap(), Rotation::Unknown, "not even reuse");
    // Still stored until TTL deletes it: a rotation judged at an earlier instant still finds it.
    let before = now(&env) - Span::seconds(1);
    assert!(matches!(store.rotate(&second, &next.hash(), before).await.unwrap(), Rotation::Rotated(_)));
}

pub async fn a_family_remembers_only_its_last_spent_tokens(env: TestEnv) {
    let (first, fam) = refresh_family(&env, &UserId::generate(), &web_app());
    assert!(issue_grant(&env, 0, &fam).await.unwrap());
    let mut tokens = vec![first];
    let mut last = None;
    for _ in 0..SPENT_REMEMBERED + 2 {
        let (next, f) = rotate(&env, tokens.last().unwrap()).await;
        tokens.push(next);
        last = Some(f);
    }
    let f = last.unwrap();
    let spent: Vec<String> = tokens[..tokens.len() - 1].iter().map(RefreshToken::hash).collect();
    assert_eq!(f.generation as usize, SPENT_REMEMBERED + 2);
    assert_eq!(f.spent_hashes, spent[2..], "the last {SPENT_REMEMBERED}, oldest first");
    assert_eq!(env.stores.oauth_refresh_tokens.find(&fam.family_id).await.unwrap(), Some(f));
    let store = &env.stores.oauth_refresh_tokens;
    let next = RefreshToken::generate(&fam.family_id, 99).hash();
    // Forgotten: no longer recognised as reuse.
    assert_eq!(store.rotate(&tokens[0], &next, now(&env)).await.unwrap(), Rotation::Unknown);
    assert_eq!(store.rotate(&tokens[1], &next, now(&env)).await.unwrap(), Rotation::Unknown);
    // Remembered: reuse, the oldest kept as the newest spent.
    assert_eq!(store.rotate(&tokens[2], &next, now(&env)).await.unwrap(), Rotation::Reused);
    assert_eq!(store.rotate(&tokens[SPENT_REMEMBERED + 1], &next, now(&env)).await.unwrap(), Rotation::Reused);
}

/// DynamoDB only (a proxy loses the answers): a code's spend and a family's rotation whose
/// answers were lost after they landed are not taken, by their own SDK retry, for a replay or a
/// reuse (which would revoke the grant the client is being given).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spend_or_a_rotation_whose_answer_was_lost_is_still_its_own() {
    use gatehouse::tables::oauth_auth_codes::{AuthCode, AuthCodeRecord, CodeSpend};
    use gatehouse_tests::wire::{Fault, faulty_env};
    let (env, faults, _) = faulty_env(7).await;
    let uid = UserId::generate();
    let code = AuthCode::generate();
    let rec = AuthCodeRecord {
        code_hash: code.hash(),
        client_id: web_app(),
        user_id: uid.clone(),
        redirect_uri: "https://web-app.example.com/callback".into(),
        scopes: vec!["openid".into()],
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        nonce: None,
        credentials_version: 0,
        family_id: gatehouse::tables::oauth_refresh_tokens::new_family_id(),
        session_id: None,
        auth_time: now(&env),
        amr: vec!["pwd".into()],
        created_at: now(&env),
        expires_at: now(&env) + Span::seconds(60),
    };
    faults.fail_next("dynamodb:PutItem", Fault::AfterWrite);
    env.stores.oauth_auth_codes.put(&rec).await.expect("a put retried is no conflict");
    faults.fail_next("dynamodb:UpdateItem", Fault::AfterWrite);
    assert_eq!(
        env.stores.oauth_auth_codes.spend(&code.hash(), now(&env)).await.unwrap(),
        CodeSpend::Spent(rec.clone())
    );
    assert_eq!(env.stores.oauth_auth_codes.spend(&code.hash(), now(&env)).await.unwrap(), CodeSpend::Replayed(rec));

    let (first, fam) = refresh_family(&env, &uid, &web_app());
    assert!(issue_grant(&env, 0, &fam).await.unwrap());
    faults.fail_next("dynamodb:UpdateItem", Fault::AfterWrite);
    let (second, rotated) = rotate(&env, &first).await;
    assert_eq!((rotated.generation, rotated.current_hash), (1, second.hash()));
    let next = RefreshToken::generate(&fam.family_id, 2);
    assert_eq!(
        env.stores.oauth_refresh_tokens.rotate(&first, &next.hash(), now(&env)).await.unwrap(),
        Rotation::Reused
    );
    assert_eq!(
        faults.injected().values().sum::<usize>(),
        3,
        "every scripted fault was injected: {:?}",
        faults.injected()
    );
}
