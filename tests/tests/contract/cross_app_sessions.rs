//! The contract of the `cross_app_sessions` table (handoffs and the sessions they open), run against
//! both backends by the macro in `main.rs`.

use crate::{now, put_handoff};
use chrono::Duration as Span;
use gatehouse::tables::cross_app_sessions::{CrossAppSession, Handoff, HandoffToken};
use gatehouse::tables::sessions::SessionId;
use gatehouse::tables::users::UserId;
use gatehouse_tests::TestEnv;

fn handoff(env: &TestEnv, user: &UserId) -> (HandoffToken, Handoff) {
    let token = HandoffToken::generate();
    let h = Handoff {
        token_hash: token.hash(),
        user_id: user.clone(),
        source_app: "main".into(),
        target_app: "billing".into(),
        ip_address: Some("198.51.100.4".into()),
        user_agent: Some("Firefox".into()),
        created_at: now(env),
        expires_at: now(env) + Span::minutes(2),
        used_at: None,
        credentials_version: 0,
        parent: None,
        abilities: Some(gatehouse::tables::personal_access_tokens::Abilities::new(vec!["reports:read".into()])),
        not_after: Some(now(env) + Span::minutes(30)),
    };
    (token, h)
}

pub async fn two_racing_exchanges_of_one_handoff_token_let_one_through(env: TestEnv) {
    let uid = UserId::generate();
    let (token, h) = handoff(&env, &uid);
    put_handoff(&env, &h).await;
    let t = now(&env);
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (store, hash) = (env.stores.cross_app_sessions.clone(), token.hash());
            tokio::spawn(async move { store.consume_handoff(&hash, "billing", t).await.unwrap() })
        })
        .collect();
    let mut got = Vec::new();
    for task in tasks {
        got.extend(task.await.unwrap());
    }
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].user_id, uid);
    assert_eq!(got[0].used_at, Some(t));
}

pub async fn a_handoff_for_another_app_or_expired_is_refused(env: TestEnv) {
    let uid = UserId::generate();
    let (token, h) = handoff(&env, &uid);
    put_handoff(&env, &h).await;
    assert_eq!(env.stores.cross_app_sessions.consume_handoff(&token.hash(), "admin", now(&env)).await.unwrap(), None);
    env.clock.advance(Span::minutes(3));
    assert_eq!(env.stores.cross_app_sessions.consume_handoff(&token.hash(), "billing", now(&env)).await.unwrap(), None);
}

/// A live audit record of `user`'s, opened now from 198.51.100.4 with Firefox.
fn audit_record(env: &TestEnv, user: &UserId) -> CrossAppSession {
    CrossAppSession {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user.clone(),
        source_app: "main".into(),
        target_app: "billing".into(),
        session_key: SessionId::generate().key(),
        ip_address: Some("198.51.100.4".into()),
        user_agent: Some("Firefox".into()),
        created_at: now(env),
        revoked_at: None,
        revoked_reason: None,
        expires_at: Some(now(env) + Span::days(90)),
    }
}

pub async fn cross_app_sessions_are_audited_and_revoked_only_by_their_user(env: TestEnv) {
    let uid = UserId::generate();
    let rec = audit_record(&env, &uid);
    env.stores.cross_app_sessions.record_session(&rec).await.unwrap();
    assert_eq!(env.stores.cross_app_sessions.list_for_user(&uid).await.unwrap(), vec![rec.clone()]);
    let stranger = UserId::generate();
    assert_eq!(
        env.stores.cross_app_sessions.revoke_session(&rec.id, &stranger, now(&env), "test").await.unwrap(),
        None
    );
    let revoked =
        env.stores.cross_app_sessions.revoke_session(&rec.id, &uid, now(&env), "logout").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(now(&env)));
    assert_eq!(revoked.revoked_reason.as_deref(), Some("logout"));
    assert_eq!(env.stores.cross_app_sessions.revoke_session(&rec.id, &uid, now(&env), "again").await.unwrap(), None);
    assert_eq!(env.stores.cross_app_sessions.find_session(&rec.id).await.unwrap().unwrap().revoked_at, Some(now(&env)));
}

pub async fn a_deleted_users_audit_records_keep_only_a_pseudonym(env: TestEnv) {
    let (uid, other) = (UserId::generate(), UserId::generate());
    let record = |user: &UserId| CrossAppSession {
        revoked_at: Some(now(&env)),
        revoked_reason: Some("account_deleted".into()),
        ..audit_record(&env, user)
    };
    // One of Ann's records is past its retention but not yet removed by TTL: it names her too.
    let expired = CrossAppSession { expires_at: Some(now(&env) - Span::seconds(1)), ..record(&uid) };
    let (mine, theirs) = ([record(&uid), record(&uid), expired], record(&other));
    for r in mine.iter().chain([&theirs]) {
        env.stores.cross_app_sessions.record_session(r).await.unwrap();
    }
    // What names the records for the deletion (DynamoDB: the credentials register's audit
    // entries) is no credential: no revocation lists or removes it.
    assert!(env.stores.credentials.list(&uid).await.unwrap().is_empty(), "an audit record is no credential");
    let everything = gatehouse::tables::credentials::Revocation::Everything;
    gatehouse::services::revocation::revoke(&env.stores, &uid, everything, "account_deleted").await.unwrap();
    assert_eq!(env.stores.cross_app_sessions.pseudonymize(&uid, "deleted#tag").await.unwrap(), 3);
    if env.is_aws() {
        let named: Vec<String> = gatehouse_tests::scan_items(&env, Some("credentials"))
            .await
            .into_iter()
            .filter(|i| i.contains(uid.as_str()))
            .collect();
        assert!(named.is_empty(), "the register's entries went with the names: {named:#?}");
    }
    // (The expired one reads as absent; the count above says it was rewritten.)
    for r in &mine[..2] {
        let got = env.stores.cross_app_sessions.find_session(&r.id).await.unwrap().unwrap();
        assert_eq!(got.user_id.as_str(), "deleted#tag");
        assert_eq!((got.ip_address, got.user_agent), (None, None));
        assert_eq!((got.target_app.as_str(), got.revoked_reason.as_deref()), ("billing", Some("account_deleted")));
    }
    assert!(env.stores.cross_app_sessions.list_for_user(&uid).await.unwrap().is_empty());
    assert_eq!(
        env.stores.cross_app_sessions.find_session(&theirs.id).await.unwrap().unwrap(),
        theirs,
        "others' untouched"
    );
    assert_eq!(env.stores.cross_app_sessions.pseudonymize(&uid, "deleted#tag").await.unwrap(), 0);
}
