//! The contract every store and the queue must keep, run against both implementations: in
//! memory and DynamoDB/SQS on the emulator. One function per behaviour in `suite`; the macro at
//! the bottom runs each against both backends.

use gatehouse_tests::TestEnv;

mod suite {
    use super::TestEnv;
    use chrono::Duration as Span;
    use gatehouse::cache;
    use gatehouse::cache_locks::{LockOwner, acquire_blocking};
    use gatehouse::credentials::{CredentialEntry, CredentialRef, NewCredential};
    use gatehouse::cross_app_sessions::{CrossAppSession, Handoff, HandoffToken};
    use gatehouse::failed_jobs::FailedJob;
    use gatehouse::job_batches::{Batch, BatchOptions};
    use gatehouse::job_runs::Claim;
    use gatehouse::password::PasswordHash;
    use gatehouse::password_reset_tokens::{PlainResetToken, ResetRecord};
    use gatehouse::personal_access_tokens::{Abilities, PersonalAccessToken, TokenId, TokenSecret, Tokenable};
    use gatehouse::sessions::{SessionId, SessionRecord};
    use gatehouse::users::{CredentialChange, RememberToken, User, UserId};
    use gatehouse::{Clock, Email, StoreError, Timestamp};
    use serde_json::json;
    use std::sync::Arc;
    use std::time::Duration;

    fn now(env: &TestEnv) -> Timestamp {
        env.clock.now()
    }

    fn user(env: &TestEnv, email: &str) -> User {
        User {
            id: UserId::generate(),
            name: "Ann".into(),
            email: Email::parse(email).unwrap(),
            email_verified_at: None,
            password_hash: PasswordHash::from_stored("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            remember_token: Some(RememberToken::generate()),
            created_at: now(env),
            updated_at: now(env),
            credentials_version: 0,
        }
    }

    /// A user with this id (created if it does not exist yet), so credentials can be issued to it.
    async fn ensure_user(env: &TestEnv, id: &UserId) {
        if env.stores.users.find(id).await.unwrap().is_none() {
            let mut u = user(env, &format!("u{}@example.com", uuid::Uuid::new_v4().simple()));
            u.id = id.clone();
            env.stores.users.create(&u).await.unwrap();
        }
    }

    fn entry(user: &UserId, credential: CredentialRef, parent: Option<CredentialRef>) -> CredentialEntry {
        CredentialEntry {
            user_id: user.clone(),
            credential,
            parent,
            cross_app_id: None,
            created_at: chrono::Utc::now(),
            expires_at: None,
        }
    }

    /// Issues a session through the register (the only way one is stored).
    async fn put_session(env: &TestEnv, rec: &SessionRecord) {
        let uid = rec.user_id.clone().expect("test sessions have a user");
        ensure_user(env, &uid).await;
        let e = entry(&uid, CredentialRef::session(&rec.key), None);
        assert!(env.stores.credentials.issue(0, &e, NewCredential::Session(rec)).await.unwrap());
    }

    async fn put_token(env: &TestEnv, t: &PersonalAccessToken) -> Result<bool, StoreError> {
        let uid = UserId::from_stored(t.tokenable.id.clone());
        ensure_user(env, &uid).await;
        env.stores.credentials.issue(0, &entry(&uid, CredentialRef::token(&t.id), None), NewCredential::Token(t)).await
    }

    async fn put_handoff(env: &TestEnv, h: &Handoff) {
        ensure_user(env, &h.user_id).await;
        let e = entry(&h.user_id, CredentialRef::handoff(&h.token_hash), None);
        assert!(env.stores.credentials.issue(0, &e, NewCredential::Handoff(h)).await.unwrap());
    }

    // ---------------------------------------------------------------- users

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
        assert!(env.stores.users.mark_email_verified(&u.id, now(&env)).await.unwrap());
        let got = env.stores.users.find(&u.id).await.unwrap().unwrap();
        assert_eq!(got.password_hash, new_hash);
        assert_eq!(got.remember_token, u.remember_token, "None keeps the remember token");
        assert_eq!(got.email_verified_at, Some(now(&env)));
        assert_eq!(got.updated_at, now(&env));
        assert_eq!(env.stores.users.change_credentials(&UserId::generate(), 0, change, now(&env)).await.unwrap(), None);
    }

    pub async fn deleting_a_user_frees_its_email(env: TestEnv) {
        let u = user(&env, "ann@example.com");
        env.stores.users.create(&u).await.unwrap();
        assert!(env.stores.users.delete(&u.id).await.unwrap());
        assert!(!env.stores.users.delete(&u.id).await.unwrap());
        assert_eq!(env.stores.users.find_by_email(&u.email).await.unwrap(), None);
        env.stores.users.create(&user(&env, "ann@example.com")).await.unwrap();
    }

    // ---------------------------------------------------------------- sessions

    fn session(env: &TestEnv, user: Option<&UserId>, idle: Span) -> (SessionId, SessionRecord) {
        let id = SessionId::generate();
        let rec = SessionRecord {
            key: id.key(),
            user_id: user.cloned(),
            ip_address: Some("203.0.113.9".into()),
            user_agent: Some("curl/8".into()),
            payload: json!({"_token": "csrf"}),
            last_activity: now(env),
            created_at: now(env),
            expires_at: now(env) + idle,
            app: None,
            credentials_version: 0,
            parent: None,
            password_confirmed_at: None,
        };
        (id, rec)
    }

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
        assert!(
            !env.stores.sessions.touch(&id.key(), now(&env), now(&env) + Span::minutes(120), now(&env)).await.unwrap()
        );
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

    // ---------------------------------------------------------------- password resets

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
        assert!(env.stores.resets.put_unless_throttled(&first, now(&env) - throttle).await.unwrap());
        env.clock.advance(Span::seconds(30));
        let (_, second) = reset(&env, "ann@example.com");
        assert!(!env.stores.resets.put_unless_throttled(&second, now(&env) - throttle).await.unwrap());
        env.clock.advance(Span::seconds(31));
        let (_, third) = reset(&env, "ann@example.com");
        assert!(env.stores.resets.put_unless_throttled(&third, now(&env) - throttle).await.unwrap());
        let found = env.stores.resets.find(&Email::parse("ANN@example.com").unwrap()).await.unwrap().unwrap();
        assert_eq!(found.token_hash, third.token_hash);
    }

    pub async fn a_reset_token_is_consumed_once_and_only_by_its_own_hash(env: TestEnv) {
        let (token, rec) = reset(&env, "ann@example.com");
        env.stores.resets.put_unless_throttled(&rec, now(&env) - Span::seconds(60)).await.unwrap();
        let email = Email::parse("ann@example.com").unwrap();
        assert!(!env.stores.resets.consume(&email, &PlainResetToken::generate().hash(), now(&env)).await.unwrap());
        assert!(env.stores.resets.consume(&email, &token.hash(), now(&env)).await.unwrap());
        assert!(!env.stores.resets.consume(&email, &token.hash(), now(&env)).await.unwrap());
        assert_eq!(env.stores.resets.find(&email).await.unwrap(), None);
    }

    pub async fn an_expired_reset_token_is_neither_found_nor_consumed(env: TestEnv) {
        let (token, rec) = reset(&env, "ann@example.com");
        env.stores.resets.put_unless_throttled(&rec, now(&env)).await.unwrap();
        env.clock.advance(Span::minutes(61));
        let email = Email::parse("ann@example.com").unwrap();
        assert_eq!(env.stores.resets.find(&email).await.unwrap(), None);
        assert!(!env.stores.resets.consume(&email, &token.hash(), now(&env)).await.unwrap());
        // An expired token does not throttle a new one.
        let (_, fresh) = reset(&env, "ann@example.com");
        assert!(env.stores.resets.put_unless_throttled(&fresh, now(&env) - Span::seconds(60)).await.unwrap());
    }

    pub async fn ten_concurrent_consumptions_of_one_reset_token_succeed_once(env: TestEnv) {
        let (token, rec) = reset(&env, "ann@example.com");
        env.stores.resets.put_unless_throttled(&rec, now(&env)).await.unwrap();
        let email = Email::parse("ann@example.com").unwrap();
        let t = now(&env);
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (store, email, hash) = (env.stores.resets.clone(), email.clone(), token.hash());
                tokio::spawn(async move { store.consume(&email, &hash, t).await.unwrap() })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1);
    }

    // ---------------------------------------------------------------- personal access tokens

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
        };
        (secret, t)
    }

    pub async fn a_token_is_found_by_id_and_matches_only_its_secret(env: TestEnv) {
        let owner = Tokenable::user(&UserId::generate());
        let (secret, t) = token(&env, &owner, None);
        assert!(put_token(&env, &t).await.unwrap());
        let got = env.stores.tokens.find(&t.id).await.unwrap().unwrap();
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
        assert_eq!(env.stores.tokens.find(&t.id).await.unwrap(), None);
        assert!(env.stores.tokens.list_for(&owner, 10, None).await.unwrap().items.is_empty());
        assert!(!env.stores.tokens.touch_last_used(&t.id, now(&env), now(&env)).await.unwrap());
        assert!(!env.stores.tokens.extend(&t.id, now(&env) + Span::hours(1)).await.unwrap());
    }

    pub async fn last_used_is_written_at_most_once_per_interval(env: TestEnv) {
        let owner = Tokenable::user(&UserId::generate());
        let (_, t) = token(&env, &owner, None);
        assert!(put_token(&env, &t).await.unwrap());
        let interval = Span::seconds(60);
        let mut writes = 0;
        for _ in 0..5 {
            writes +=
                usize::from(env.stores.tokens.touch_last_used(&t.id, now(&env), now(&env) - interval).await.unwrap());
            env.clock.advance(Span::seconds(10));
        }
        assert_eq!(writes, 1);
        env.clock.advance(Span::seconds(30));
        assert!(env.stores.tokens.touch_last_used(&t.id, now(&env), now(&env) - interval).await.unwrap());
        assert_eq!(env.stores.tokens.find(&t.id).await.unwrap().unwrap().last_used_at, Some(now(&env)));
    }

    pub async fn only_the_owner_deletes_a_token(env: TestEnv) {
        let owner = Tokenable::user(&UserId::generate());
        let stranger = Tokenable::user(&UserId::generate());
        let (_, t) = token(&env, &owner, None);
        assert!(put_token(&env, &t).await.unwrap());
        assert!(!env.stores.tokens.delete_owned(&t.id, &stranger).await.unwrap());
        assert!(env.stores.tokens.find(&t.id).await.unwrap().is_some());
        assert!(env.stores.tokens.delete_owned(&t.id, &owner).await.unwrap());
        assert!(!env.stores.tokens.delete_owned(&t.id, &owner).await.unwrap());
        assert_eq!(env.stores.tokens.find(&t.id).await.unwrap(), None);
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
            let page = env.stores.tokens.list_for(&owner, 3, cursor.as_ref()).await.unwrap();
            assert!(page.items.len() <= 3);
            seen.extend(page.items.into_iter().map(|t| t.id));
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        ids.reverse();
        assert_eq!(seen, ids);
        assert_eq!(env.stores.tokens.delete_all_for(&owner).await.unwrap(), 7);
        assert!(env.stores.tokens.list_for(&owner, 10, None).await.unwrap().items.is_empty());
    }

    // ---------------------------------------------------------------- cache

    pub async fn cache_puts_gets_many_and_forgets(env: TestEnv) {
        let c = &env.stores.cache;
        c.put("a", &json!({"x": [1, 2]}), None).await.unwrap();
        c.put("b", &json!(42), Some(now(&env) + Span::minutes(1))).await.unwrap();
        c.put("c", &json!("text"), None).await.unwrap();
        assert_eq!(c.get("a").await.unwrap(), Some(json!({"x": [1, 2]})));
        let keys: Vec<String> = ["c", "missing", "b", "a"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            c.many(&keys).await.unwrap(),
            vec![Some(json!("text")), None, Some(json!(42)), Some(json!({"x": [1, 2]}))]
        );
        assert!(c.forget("a").await.unwrap());
        assert!(!c.forget("a").await.unwrap());
        assert_eq!(c.get("a").await.unwrap(), None);
    }

    pub async fn an_expired_cache_item_is_invisible_to_every_read_and_to_add(env: TestEnv) {
        let c = &env.stores.cache;
        c.put("k", &json!("old"), Some(now(&env) + Span::seconds(10))).await.unwrap();
        assert!(!c.add("k", &json!("new"), None).await.unwrap());
        env.clock.advance(Span::seconds(11));
        assert_eq!(c.get("k").await.unwrap(), None);
        assert_eq!(c.many(&["k".to_owned()]).await.unwrap(), vec![None]);
        assert!(!c.forget("k").await.unwrap(), "forgetting an expired item reports it absent");
        c.put("k", &json!("old"), Some(now(&env) + Span::seconds(10))).await.unwrap();
        env.clock.advance(Span::seconds(11));
        assert!(c.add("k", &json!("new"), None).await.unwrap());
        assert_eq!(c.get("k").await.unwrap(), Some(json!("new")));
    }

    pub async fn cache_counters_increment_and_decrement_atomically(env: TestEnv) {
        let c = env.stores.cache.clone();
        assert_eq!(c.increment("n", 1).await.unwrap(), 1);
        assert_eq!(cache::decrement(c.as_ref(), "n", 3).await.unwrap(), -2);
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.increment("n", 1).await.unwrap() })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(c.get("n").await.unwrap(), Some(json!(18)));
        // A counter that expired starts again from zero, keeping no expiry.
        c.put("m", &json!(5), Some(now(&env) + Span::seconds(5))).await.unwrap();
        env.clock.advance(Span::seconds(6));
        assert_eq!(c.increment("m", 2).await.unwrap(), 2);
        // Incrementing keeps the existing expiry (the rate-limiter pattern: add, then increment).
        assert!(c.add("hits", &json!(0), Some(now(&env) + Span::seconds(60))).await.unwrap());
        assert_eq!(c.increment("hits", 1).await.unwrap(), 1);
        env.clock.advance(Span::seconds(61));
        assert_eq!(c.get("hits").await.unwrap(), None);
    }

    pub async fn a_rate_window_counts_each_of_eighty_concurrent_hits_once(env: TestEnv) {
        let c = env.stores.cache.clone();
        let end = now(&env) + Span::seconds(60);
        let tasks: Vec<_> = (0..80)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.hit("w", end).await.unwrap() })
            })
            .collect();
        let mut counts = Vec::new();
        for t in tasks {
            let (n, window_end) = t.await.unwrap();
            assert_eq!(window_end, end);
            counts.push(n);
        }
        counts.sort();
        assert_eq!(counts, (1..=80).collect::<Vec<i64>>(), "every hit got its own count");
        env.clock.advance(Span::seconds(61));
        let later = now(&env) + Span::seconds(60);
        assert_eq!(c.hit("w", later).await.unwrap(), (1, later), "a new window after the old one ends");
    }

    pub async fn incrementing_a_non_integer_is_a_conflict(env: TestEnv) {
        env.stores.cache.put("s", &json!("text"), None).await.unwrap();
        assert!(matches!(env.stores.cache.increment("s", 1).await, Err(StoreError::Conflict(_))));
        assert!(matches!(env.stores.cache.get("").await, Err(StoreError::Rejected(_))));
    }

    pub async fn remember_computes_once(env: TestEnv) {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for _ in 0..3 {
            let calls = calls.clone();
            let v = cache::remember(env.stores.cache.as_ref(), "r", None, || async move {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, StoreError>(json!({"computed": true}))
            })
            .await
            .unwrap();
            assert_eq!(v, json!({"computed": true}));
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    // ---------------------------------------------------------------- locks

    pub async fn twenty_concurrent_acquisitions_of_one_lock_give_exactly_one_owner(env: TestEnv) {
        let exp = Some(now(&env) + Span::seconds(30));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let locks = env.stores.locks.clone();
                let owner = LockOwner::random();
                tokio::spawn(async move { locks.acquire("report", &owner, exp).await.unwrap().then_some(owner) })
            })
            .collect();
        let mut owners = Vec::new();
        for t in tasks {
            owners.extend(t.await.unwrap());
        }
        assert_eq!(owners.len(), 1);
        assert_eq!(env.stores.locks.owner("report").await.unwrap(), Some(owners[0].clone()));
    }

    pub async fn a_lock_released_by_a_non_owner_stays_held(env: TestEnv) {
        let owner = LockOwner::random();
        let intruder = LockOwner::random();
        assert!(env.stores.locks.acquire("k", &owner, Some(now(&env) + Span::seconds(30))).await.unwrap());
        assert!(!env.stores.locks.release("k", &intruder).await.unwrap());
        assert_eq!(env.stores.locks.owner("k").await.unwrap(), Some(owner.clone()));
        assert!(!env.stores.locks.acquire("k", &intruder, None).await.unwrap());
        assert!(env.stores.locks.release("k", &owner).await.unwrap());
        assert!(env.stores.locks.acquire("k", &intruder, None).await.unwrap());
    }

    pub async fn an_expired_lock_can_be_taken_but_not_refreshed(env: TestEnv) {
        let first = LockOwner::random();
        let second = LockOwner::random();
        assert!(env.stores.locks.acquire("k", &first, Some(now(&env) + Span::seconds(10))).await.unwrap());
        assert!(env.stores.locks.refresh("k", &first, Some(now(&env) + Span::seconds(20))).await.unwrap());
        env.clock.advance(Span::seconds(15));
        assert!(!env.stores.locks.acquire("k", &second, None).await.unwrap(), "refreshed, so still held");
        env.clock.advance(Span::seconds(6));
        assert_eq!(env.stores.locks.owner("k").await.unwrap(), None);
        assert!(!env.stores.locks.refresh("k", &first, Some(now(&env) + Span::seconds(20))).await.unwrap());
        assert!(env.stores.locks.acquire("k", &second, Some(now(&env) + Span::seconds(10))).await.unwrap());
        assert!(!env.stores.locks.release("k", &first).await.unwrap());
        env.stores.locks.force_release("k").await.unwrap();
        assert_eq!(env.stores.locks.owner("k").await.unwrap(), None);
    }

    pub async fn a_blocking_acquire_waits_for_the_release(env: TestEnv) {
        let holder = LockOwner::random();
        assert!(env.stores.locks.acquire("b", &holder, None).await.unwrap());
        let waiter = LockOwner::random();
        let short = acquire_blocking(
            env.stores.locks.as_ref(),
            "b",
            &waiter,
            None,
            Duration::from_millis(150),
            Duration::from_millis(50),
        );
        assert!(!short.await.unwrap());
        let locks = env.stores.locks.clone();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            locks.release("b", &holder).await.unwrap()
        });
        let got = acquire_blocking(
            env.stores.locks.as_ref(),
            "b",
            &waiter,
            None,
            Duration::from_secs(5),
            Duration::from_millis(50),
        )
        .await;
        assert!(got.unwrap());
        assert!(release.await.unwrap());
    }

    // ---------------------------------------------------------------- batches

    fn batch(env: &TestEnv, total: u64, allow_failures: bool) -> Batch {
        Batch {
            id: uuid::Uuid::new_v4().to_string(),
            name: "import".into(),
            total_jobs: total,
            pending_jobs: total,
            failed_jobs: 0,
            failed_job_ids: vec![],
            options: BatchOptions { allow_failures, finally: vec![json!({"job": "notify"})], ..Default::default() },
            cancelled_at: None,
            created_at: now(env),
            finished_at: None,
            expires_at: Some(now(env) + Span::days(30)),
        }
    }

    pub async fn a_job_counted_twice_against_a_batch_decrements_pending_once(env: TestEnv) {
        let b = batch(&env, 3, false);
        env.stores.batches.create(&b).await.unwrap();
        let first = env.stores.batches.record_success(&b.id, "job-1").await.unwrap().unwrap();
        assert!(first.newly_counted);
        assert_eq!(first.batch.pending_jobs, 2);
        let again = env.stores.batches.record_success(&b.id, "job-1").await.unwrap().unwrap();
        assert!(!again.newly_counted);
        assert_eq!(again.batch.pending_jobs, 2);
        assert_eq!(env.stores.batches.record_success("no-such-batch", "job-1").await.unwrap(), None);
    }

    pub async fn a_batch_records_failures_and_finishes_exactly_once(env: TestEnv) {
        let b = batch(&env, 10, true);
        env.stores.batches.create(&b).await.unwrap();
        let tasks: Vec<_> = (0..10)
            .flat_map(|i| [i, i]) // every job delivered twice
            .map(|i| {
                let store = env.stores.batches.clone();
                let id = b.id.clone();
                tokio::spawn(async move {
                    let job = format!("job-{i}");
                    if i < 3 { store.record_failure(&id, &job).await } else { store.record_success(&id, &job).await }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap().unwrap();
        }
        let got = env.stores.batches.find(&b.id).await.unwrap().unwrap();
        assert_eq!((got.total_jobs, got.pending_jobs, got.failed_jobs), (10, 0, 3));
        let mut failed = got.failed_job_ids.clone();
        failed.sort();
        assert_eq!(failed, vec!["job-0", "job-1", "job-2"]);
        assert!(got.all_jobs_done());
        let finishers: Vec<_> = (0..5)
            .map(|_| {
                let store = env.stores.batches.clone();
                let (id, t) = (b.id.clone(), now(&env));
                tokio::spawn(async move { store.mark_finished(&id, t).await.unwrap() })
            })
            .collect();
        let mut finished = 0;
        for f in finishers {
            finished += usize::from(f.await.unwrap());
        }
        assert_eq!(finished, 1);
        assert_eq!(env.stores.batches.find(&b.id).await.unwrap().unwrap().finished_at, Some(now(&env)));
        assert_eq!(got.options.finally, vec![json!({"job": "notify"})]);
    }

    pub async fn a_batch_with_pending_jobs_does_not_finish_and_cancels_once(env: TestEnv) {
        let b = batch(&env, 2, false);
        env.stores.batches.create(&b).await.unwrap();
        env.stores.batches.record_success(&b.id, "j1").await.unwrap();
        assert!(!env.stores.batches.mark_finished(&b.id, now(&env)).await.unwrap());
        assert!(env.stores.batches.add_jobs(&b.id, 2).await.unwrap());
        let got = env.stores.batches.find(&b.id).await.unwrap().unwrap();
        assert_eq!((got.total_jobs, got.pending_jobs), (4, 3));
        assert!(env.stores.batches.cancel(&b.id, now(&env)).await.unwrap());
        assert!(!env.stores.batches.cancel(&b.id, now(&env)).await.unwrap());
        assert!(env.stores.batches.delete(&b.id).await.unwrap());
        assert_eq!(env.stores.batches.find(&b.id).await.unwrap(), None);
    }

    // ---------------------------------------------------------------- failed jobs

    fn failed(env: &TestEnv, i: usize) -> FailedJob {
        FailedJob {
            uuid: format!("00000000-0000-4000-8000-{i:012}"),
            connection: "sqs".into(),
            queue: "jobs".into(),
            payload: json!({"uuid": i}).to_string(),
            exception: format!("boom {i}\ncaused by: io"),
            failed_at: now(env),
            expires_at: Some(now(env) + Span::days(30)),
        }
    }

    pub async fn failed_jobs_list_newest_first_across_many_small_pages(env: TestEnv) {
        for i in 0..11 {
            env.stores.failed_jobs.record(&failed(&env, i)).await.unwrap();
            env.clock.advance(Span::milliseconds(10));
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let page = env.stores.failed_jobs.list(4, cursor.as_ref()).await.unwrap();
            pages += 1;
            seen.extend(page.items.into_iter().map(|j| j.uuid));
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let want: Vec<_> = (0..11).rev().map(|i| failed(&env, i).uuid).collect();
        assert_eq!(seen, want);
        assert!(pages >= 3);
    }

    pub async fn failed_jobs_are_found_forgotten_and_flushed(env: TestEnv) {
        for i in 0..30 {
            env.stores.failed_jobs.record(&failed(&env, i)).await.unwrap();
        }
        let one = failed(&env, 7);
        assert_eq!(env.stores.failed_jobs.find(&one.uuid).await.unwrap(), Some(one.clone()));
        assert!(env.stores.failed_jobs.forget(&one.uuid).await.unwrap());
        assert!(!env.stores.failed_jobs.forget(&one.uuid).await.unwrap());
        assert_eq!(env.stores.failed_jobs.flush().await.unwrap(), 29);
        assert!(env.stores.failed_jobs.list(10, None).await.unwrap().items.is_empty());
    }

    pub async fn failed_jobs_past_retention_are_invisible(env: TestEnv) {
        let job = failed(&env, 1);
        env.stores.failed_jobs.record(&job).await.unwrap();
        env.clock.advance(Span::days(31));
        assert_eq!(env.stores.failed_jobs.find(&job.uuid).await.unwrap(), None);
        assert!(env.stores.failed_jobs.list(10, None).await.unwrap().items.is_empty());
    }

    pub async fn a_bad_cursor_is_rejected_not_a_crash(env: TestEnv) {
        let bad = gatehouse::page::Cursor::from_string("!!not-a-cursor".into());
        let res = env.stores.failed_jobs.list(10, Some(&bad)).await;
        assert!(matches!(res, Err(StoreError::InvalidCursor)), "{res:?}");
        let res = env.stores.tokens.list_for(&Tokenable::user(&UserId::generate()), 10, Some(&bad)).await;
        assert!(matches!(res, Err(StoreError::InvalidCursor)), "{res:?}");
    }

    // ---------------------------------------------------------------- cross-app

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
                let (store, hash) = (env.stores.cross_app.clone(), token.hash());
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
        assert_eq!(env.stores.cross_app.consume_handoff(&token.hash(), "admin", now(&env)).await.unwrap(), None);
        env.clock.advance(Span::minutes(3));
        assert_eq!(env.stores.cross_app.consume_handoff(&token.hash(), "billing", now(&env)).await.unwrap(), None);
    }

    pub async fn cross_app_sessions_are_audited_and_revoked_only_by_their_user(env: TestEnv) {
        let uid = UserId::generate();
        let rec = CrossAppSession {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: uid.clone(),
            source_app: "main".into(),
            target_app: "billing".into(),
            session_key: SessionId::generate().key(),
            ip_address: Some("198.51.100.4".into()),
            user_agent: Some("Firefox".into()),
            created_at: now(&env),
            revoked_at: None,
            revoked_reason: None,
            expires_at: Some(now(&env) + Span::days(90)),
        };
        env.stores.cross_app.record_session(&rec).await.unwrap();
        assert_eq!(env.stores.cross_app.list_for_user(&uid).await.unwrap(), vec![rec.clone()]);
        let stranger = UserId::generate();
        assert_eq!(env.stores.cross_app.revoke_session(&rec.id, &stranger, now(&env), "test").await.unwrap(), None);
        let revoked = env.stores.cross_app.revoke_session(&rec.id, &uid, now(&env), "logout").await.unwrap().unwrap();
        assert_eq!(revoked.revoked_at, Some(now(&env)));
        assert_eq!(revoked.revoked_reason.as_deref(), Some("logout"));
        assert_eq!(env.stores.cross_app.revoke_session(&rec.id, &uid, now(&env), "again").await.unwrap(), None);
        assert_eq!(env.stores.cross_app.find_session(&rec.id).await.unwrap().unwrap().revoked_at, Some(now(&env)));
    }

    // ---------------------------------------------------------------- credentials (the register)

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
        let listed: Vec<_> =
            env.stores.credentials.list(&u.id).await.unwrap().into_iter().map(|e| e.credential).collect();
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

    // ---------------------------------------------------------------- job runs

    pub async fn a_job_run_is_claimed_by_exactly_one_of_racing_workers(env: TestEnv) {
        let t = now(&env);
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let runs = env.stores.job_runs.clone();
                tokio::spawn(
                    async move { runs.claim("job-1", t, t + Span::seconds(60), t + Span::days(1)).await.unwrap() },
                )
            })
            .collect();
        let mut claimed = 0;
        for task in tasks {
            match task.await.unwrap() {
                Claim::Claimed => claimed += 1,
                Claim::Busy { until } => assert_eq!(until, t + Span::seconds(60)),
                Claim::Completed => panic!("not completed yet"),
            }
        }
        assert_eq!(claimed, 1);
    }

    pub async fn a_completed_run_stays_completed_and_a_released_or_lapsed_one_is_claimable(env: TestEnv) {
        let runs = &env.stores.job_runs;
        let t = now(&env);
        assert_eq!(runs.claim("a", t, t + Span::seconds(60), t + Span::days(1)).await.unwrap(), Claim::Claimed);
        runs.complete("a", t, t + Span::days(1)).await.unwrap();
        assert_eq!(runs.claim("a", t, t + Span::seconds(60), t + Span::days(1)).await.unwrap(), Claim::Completed);
        assert_eq!(runs.claim("b", t, t + Span::seconds(60), t + Span::days(1)).await.unwrap(), Claim::Claimed);
        runs.release("b").await.unwrap();
        assert_eq!(runs.claim("b", t, t + Span::seconds(60), t + Span::days(1)).await.unwrap(), Claim::Claimed);
        // A crashed attempt's lease lapses.
        env.clock.advance(Span::seconds(61));
        let later = now(&env);
        assert_eq!(
            runs.claim("b", later, later + Span::seconds(60), later + Span::days(1)).await.unwrap(),
            Claim::Claimed
        );
        // Past its retention a completed record is forgotten.
        env.clock.advance(Span::days(2));
        let much_later = now(&env);
        assert_eq!(
            runs.claim("a", much_later, much_later + Span::seconds(60), much_later + Span::days(1)).await.unwrap(),
            Claim::Claimed
        );
    }

    // ---------------------------------------------------------------- queue

    pub async fn the_queue_sends_receives_and_deletes(env: TestEnv) {
        let q = &env.stores.queue;
        q.send(r#"{"n":1}"#, Duration::ZERO).await.unwrap();
        let got = q.receive(10, Duration::from_secs(1), Some(Duration::from_secs(30))).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, r#"{"n":1}"#);
        assert_eq!(got[0].receive_count, 1);
        assert!(q.receive(10, Duration::ZERO, None).await.unwrap().is_empty(), "invisible while in flight");
        q.delete(&got[0].receipt_handle).await.unwrap();
        assert_eq!(q.approximate_len().await.unwrap(), 0);
    }

    pub async fn a_released_message_comes_back_with_its_receive_count(env: TestEnv) {
        let q = &env.stores.queue;
        q.send("again", Duration::ZERO).await.unwrap();
        let first = q.receive(1, Duration::from_secs(1), Some(Duration::from_secs(30))).await.unwrap();
        q.change_visibility(&first[0].receipt_handle, Duration::ZERO).await.unwrap();
        let second = q.receive(1, Duration::from_secs(2), Some(Duration::from_secs(30))).await.unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].message_id, first[0].message_id);
        assert_eq!(second[0].receive_count, 2);
        q.delete(&second[0].receipt_handle).await.unwrap();
    }

    pub async fn a_delayed_message_stays_hidden_until_due(env: TestEnv) {
        let q = &env.stores.queue;
        q.send("later", Duration::from_secs(2)).await.unwrap();
        assert!(q.receive(1, Duration::ZERO, None).await.unwrap().is_empty());
        env.advance(Duration::from_secs(3)).await;
        let got = q.receive(1, Duration::from_secs(1), None).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, "later");
    }

    pub async fn the_queue_rejects_oversized_bodies_and_over_long_delays(env: TestEnv) {
        let q = &env.stores.queue;
        let big = "x".repeat(gatehouse::jobs::MAX_MESSAGE_BYTES + 1);
        assert!(matches!(q.send(&big, Duration::ZERO).await, Err(StoreError::Rejected(_))));
        assert!(matches!(q.send("x", Duration::from_secs(901)).await, Err(StoreError::Rejected(_))));
        assert!(matches!(q.receive(11, Duration::ZERO, None).await, Err(StoreError::Rejected(_))));
    }
}

/// Runs each named suite function against the in-memory stores and against DynamoDB/SQS on the
/// emulator.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::suite::$name(super::TestEnv::memory()).await
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::suite::$name(super::TestEnv::aws().await).await
                }
            )*
        }
    };
}

contract!(
    users_are_found_by_id_and_by_email_in_any_case,
    users_with_the_same_email_in_another_case_conflict,
    twenty_concurrent_registrations_of_one_email_let_exactly_one_succeed,
    users_password_and_verification_updates_persist,
    deleting_a_user_frees_its_email,
    sessions_are_found_by_the_hash_of_their_id_and_deleted,
    an_expired_session_is_invisible_though_still_stored,
    touching_a_session_writes_only_when_its_activity_is_stale,
    deleting_a_users_other_sessions_keeps_exactly_the_current_one,
    a_reset_token_is_throttled_then_replaced,
    a_reset_token_is_consumed_once_and_only_by_its_own_hash,
    an_expired_reset_token_is_neither_found_nor_consumed,
    ten_concurrent_consumptions_of_one_reset_token_succeed_once,
    a_token_is_found_by_id_and_matches_only_its_secret,
    an_expired_token_is_invisible_though_still_stored,
    last_used_is_written_at_most_once_per_interval,
    only_the_owner_deletes_a_token,
    tokens_are_listed_newest_first_a_page_at_a_time,
    cache_puts_gets_many_and_forgets,
    an_expired_cache_item_is_invisible_to_every_read_and_to_add,
    cache_counters_increment_and_decrement_atomically,
    incrementing_a_non_integer_is_a_conflict,
    a_rate_window_counts_each_of_eighty_concurrent_hits_once,
    remember_computes_once,
    twenty_concurrent_acquisitions_of_one_lock_give_exactly_one_owner,
    a_lock_released_by_a_non_owner_stays_held,
    an_expired_lock_can_be_taken_but_not_refreshed,
    a_blocking_acquire_waits_for_the_release,
    a_job_counted_twice_against_a_batch_decrements_pending_once,
    a_batch_records_failures_and_finishes_exactly_once,
    a_batch_with_pending_jobs_does_not_finish_and_cancels_once,
    failed_jobs_list_newest_first_across_many_small_pages,
    failed_jobs_are_found_forgotten_and_flushed,
    failed_jobs_past_retention_are_invisible,
    a_bad_cursor_is_rejected_not_a_crash,
    two_racing_exchanges_of_one_handoff_token_let_one_through,
    a_handoff_for_another_app_or_expired_is_refused,
    cross_app_sessions_are_audited_and_revoked_only_by_their_user,
    issuing_is_conditional_on_the_credentials_version,
    twenty_concurrent_issues_racing_a_version_change_never_land_after_it,
    a_job_run_is_claimed_by_exactly_one_of_racing_workers,
    a_completed_run_stays_completed_and_a_released_or_lapsed_one_is_claimable,
    the_queue_sends_receives_and_deletes,
    a_released_message_comes_back_with_its_receive_count,
    a_delayed_message_stays_hidden_until_due,
    the_queue_rejects_oversized_bodies_and_over_long_delays,
);
