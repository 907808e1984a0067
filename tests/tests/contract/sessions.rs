//! The contract of the `sessions` table, run against both backends by the macro in `main.rs`.

use crate::{now, put_session, session};
use chrono::Duration as Span;
use gatehouse::tables::users::UserId;
use gatehouse_tests::TestEnv;

pub async fn sessions_are_found_by_the_hash_of_their_id_and_deleted(env: TestEnv) {
    let uid = UserId::generate();
    let (id, rec) = session(&env, Some(&uid), Span::minutes(120));
    put_session(&env, &rec).await;
    assert_eq!(env.stores.sessions.find(&id.key()).await.unwrap(), Some(rec));
    assert!(env.stores.sessions.delete(&id.key()).await.unwrap());
    assert_eq!(env.stores.sessions.find(&id.key()).await.unwrap(), None);
    assert!(!env.stores.sessions.delete(&id.key()).await.unwrap());
}

pub async fn an_expired_session_is_invisible_though_still_stored(env: TestEnv) {
    let uid = UserId::generate();
    let (id, rec) = session(&env, Some(&uid), Span::minutes(120));
    put_session(&env, &rec).await;
    env.clock.advance(Span::minutes(121));
    assert_eq!(env.stores.sessions.find(&id.key()).await.unwrap(), None);
    assert!(env.stores.sessions.list_for_user(&uid).await.unwrap().is_empty());
    assert!(!env.stores.sessions.touch(&id.key(), now(&env), now(&env) + Span::minutes(120), now(&env)).await.unwrap());
    // Still stored: deleting finds it.
    assert!(env.stores.sessions.delete(&id.key()).await.unwrap());
}

pub async fn touching_a_session_writes_only_when_its_activity_is_stale(env: TestEnv) {
    let (id, rec) = session(&env, Some(&UserId::generate()), Span::minutes(120));
    put_session(&env, &rec).await;
    env.clock.advance(Span::seconds(30));
    let t = now(&env);
    assert!(!env.stores.sessions.touch(&id.key(), t, t + Span::minutes(120), t - Span::seconds(60)).await.unwrap());
    env.clock.advance(Span::seconds(31));
    let t = now(&env);
    assert!(env.stores.sessions.touch(&id.key(), t, t + Span::minutes(120), t - Span::seconds(60)).await.unwrap());
    let got = env.stores.sessions.find(&id.key()).await.unwrap().unwrap();
    assert_eq!(got.last_activity, t);
    assert_eq!(got.expires_at, t + Span::minutes(120));
}

pub async fn deleting_a_users_other_sessions_keeps_exactly_the_current_one(env: TestEnv) {
    let uid = UserId::generate();
    let other_user = UserId::generate();
    let (current, rec) = session(&env, Some(&uid), Span::minutes(120));
    put_session(&env, &rec).await;
    for _ in 0..4 {
        put_session(&env, &session(&env, Some(&uid), Span::minutes(120)).1).await;
    }
    let (theirs, rec) = session(&env, Some(&other_user), Span::minutes(120));
    put_session(&env, &rec).await;
    assert_eq!(env.stores.sessions.list_for_user(&uid).await.unwrap().len(), 5);
    assert_eq!(env.stores.sessions.delete_for_user(&uid, Some(&current.key())).await.unwrap(), 4);
    let left = env.stores.sessions.list_for_user(&uid).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].key, current.key());
    assert!(env.stores.sessions.find(&theirs.key()).await.unwrap().is_some());
}

pub async fn marking_a_session_verified_persists_and_skips_expired_ones(env: TestEnv) {
    let uid = UserId::generate();
    let (id, rec) = session(&env, Some(&uid), Span::minutes(120));
    let (gone, old) = session(&env, Some(&uid), Span::minutes(1));
    put_session(&env, &rec).await;
    put_session(&env, &old).await;
    env.clock.advance(Span::minutes(2));
    assert!(env.stores.sessions.mark_verified(&id.key()).await.unwrap());
    assert!(!env.stores.sessions.mark_verified(&gone.key()).await.unwrap(), "an expired session is not revived");
    let got = env.stores.sessions.find(&id.key()).await.unwrap().unwrap();
    assert_eq!(got, gatehouse::tables::sessions::SessionRecord { email_verified: Some(true), ..rec });
    // A session from before sessions carried the flag reads back as unknown, not as unverified.
    let (legacy_id, legacy) = session(&env, Some(&uid), Span::minutes(120));
    let legacy = gatehouse::tables::sessions::SessionRecord { email_verified: None, ..legacy };
    put_session(&env, &legacy).await;
    assert_eq!(env.stores.sessions.find(&legacy_id.key()).await.unwrap().unwrap().email_verified, None);
}
