//! The contract of the `users` table, run against both backends by the macro in `main.rs`.

use crate::{now, user};
use chrono::Duration as Span;
use gatehouse::tables::users::{CredentialChange, DisplayName, EmailMove, EmailSwap, Marks, UserId};
use gatehouse::values::error::StoreResult;
use gatehouse::values::password::PasswordHash;
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

/// Moves `id`'s address `from` → `to` under the credentials `version` (the old address's tag
/// `t`, no notice promised).
async fn move_email(env: &TestEnv, id: &UserId, from: &Email, to: &Email, version: u64) -> StoreResult<EmailSwap> {
    let m = EmailMove { from, to, version, from_tag: "t", notice: None, events: &[] };
    env.stores.users.change_email(id, m, now(env)).await
}

pub async fn an_email_change_moves_both_reservations_at_once_and_verifies_the_new_address(env: TestEnv) {
    let users = &env.stores.users;
    let (ann, bob) = (user(&env, "Ann@example.com"), user(&env, "bob@example.com"));
    users.create(&ann).await.unwrap();
    users.create(&bob).await.unwrap();
    let to = Email::parse("Ann.New@Example.com").unwrap();
    env.clock.advance(Span::seconds(5));
    assert_eq!(
        move_email(&env, &ann.id, &ann.email, &Email::parse("BOB@example.com").unwrap(), 0).await.unwrap(),
        EmailSwap::Taken
    );
    assert_eq!(move_email(&env, &ann.id, &ann.email, &to, 1).await.unwrap(), EmailSwap::Stale, "another version");
    assert_eq!(move_email(&env, &ann.id, &bob.email, &to, 0).await.unwrap(), EmailSwap::Stale, "another address");
    assert_eq!(move_email(&env, &UserId::generate(), &ann.email, &to, 0).await.unwrap(), EmailSwap::Stale);
    assert_eq!(users.find(&ann.id).await.unwrap().as_ref(), Some(&ann), "nothing moved yet");
    let same = Email::parse("ann@EXAMPLE.com").unwrap();
    assert!(matches!(move_email(&env, &ann.id, &ann.email, &same, 0).await, Err(StoreError::Rejected(_))));
    assert_eq!(move_email(&env, &ann.id, &ann.email, &to, 0).await.unwrap(), EmailSwap::Changed);
    let got = users.find(&ann.id).await.unwrap().unwrap();
    assert_eq!(
        (got.email.as_str(), got.email_verified_at, got.updated_at),
        ("Ann.New@Example.com", Some(now(&env)), now(&env))
    );
    assert_eq!((got.password_hash, got.credentials_version), (ann.password_hash.clone(), 0));
    assert_eq!(got.email_changed_from.as_deref(), Some("t"), "the swap keeps the old address's tag");
    assert_eq!(
        users.find_by_email(&Email::parse("ann.new@example.com").unwrap()).await.unwrap().map(|u| u.id),
        Some(ann.id.clone())
    );
    assert_eq!(users.find_by_email(&ann.email).await.unwrap(), None, "the old address is free");
    assert_eq!(move_email(&env, &ann.id, &ann.email, &to, 0).await.unwrap(), EmailSwap::Stale, "done once");
    users.create(&user(&env, "ann@example.com")).await.expect("the old address registers again");
    assert!(matches!(users.create(&user(&env, "ANN.NEW@example.com")).await, Err(StoreError::Conflict(_))));
}

pub async fn changes_and_registrations_racing_for_one_address_leave_exactly_one_owner(env: TestEnv) {
    let users = env.stores.users.clone();
    let mut movers = Vec::new();
    for i in 0..5 {
        let u = user(&env, &format!("mover{i}@example.com"));
        users.create(&u).await.unwrap();
        movers.push(u);
    }
    let target = Email::parse("race@example.com").unwrap();
    let mut tasks = Vec::new();
    for (i, u) in movers.iter().enumerate() {
        let (store, u, to, at) = (users.clone(), u.clone(), target.clone(), now(&env));
        tasks.push(tokio::spawn(async move {
            let swap = store
                .change_email(
                    &u.id,
                    EmailMove { from: &u.email, to: &to, version: 0, from_tag: "t", notice: None, events: &[] },
                    at,
                )
                .await
                .unwrap();
            (swap == EmailSwap::Changed).then_some(u.id)
        }));
        let (store, newcomer) =
            (users.clone(), user(&env, if i % 2 == 0 { "RACE@example.com" } else { "race@example.com" }));
        tasks.push(tokio::spawn(async move {
            match store.create(&newcomer).await {
                Ok(()) => Some(newcomer.id),
                Err(StoreError::Conflict(_)) => None,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        winners.extend(t.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "exactly one owner: {winners:?}");
    assert_eq!(users.find_by_email(&target).await.unwrap().map(|u| u.id), Some(winners[0].clone()));
    for u in &movers {
        let now_has = users.find(&u.id).await.unwrap().unwrap().email;
        let owner = users.find_by_email(&now_has).await.unwrap().map(|o| o.id);
        assert_eq!(owner.as_ref(), Some(&u.id), "every mover owns the address it has");
    }
}

pub async fn a_credential_change_bound_to_an_address_fails_once_the_address_moved(env: TestEnv) {
    let users = &env.stores.users;
    let u = user(&env, "ann@example.com");
    users.create(&u).await.unwrap();
    let hash = PasswordHash::from_stored("$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3".into());
    let to = Email::parse("ann.new@example.com").unwrap();
    let bound = |e| CredentialChange {
        password: Some(&hash),
        revoke: true,
        while_email: Some(e),
        ..CredentialChange::default()
    };
    assert_eq!(users.change_credentials(&u.id, 0, bound(&to), now(&env)).await.unwrap(), None, "not the address");
    assert_eq!(move_email(&env, &u.id, &u.email, &to, 0).await.unwrap(), EmailSwap::Changed);
    assert_eq!(users.change_credentials(&u.id, 0, bound(&u.email), now(&env)).await.unwrap(), None, "moved away");
    assert_eq!(users.change_credentials(&u.id, 0, bound(&to), now(&env)).await.unwrap(), Some(1));
}

pub async fn disabling_moves_the_version_on_and_enabling_keeps_it(env: TestEnv) {
    let users = &env.stores.users;
    let u = user(&env, "ann@example.com");
    users.create(&u).await.unwrap();
    let disable = CredentialChange { revoke: true, disable: Some(true), ..CredentialChange::default() };
    assert_eq!(users.change_credentials(&u.id, 0, disable, now(&env)).await.unwrap(), Some(1));
    let read = users.find(&u.id).await.unwrap().unwrap();
    assert_eq!((read.disabled_at, read.credentials_version), (Some(now(&env)), 1));
    assert_eq!(users.change_credentials(&u.id, 0, disable, now(&env)).await.unwrap(), None, "a stale version");
    // A reset or a rehash (no `disable`) leaves it disabled.
    let hash = PasswordHash::from_stored("$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3".into());
    let reset = CredentialChange { password: Some(&hash), revoke: true, ..CredentialChange::default() };
    assert_eq!(users.change_credentials(&u.id, 1, reset, now(&env)).await.unwrap(), Some(2));
    assert!(users.find(&u.id).await.unwrap().unwrap().disabled_at.is_some());
    let enable = CredentialChange { disable: Some(false), ..CredentialChange::default() };
    assert_eq!(users.change_credentials(&u.id, 2, enable, now(&env)).await.unwrap(), Some(2));
    let read = users.find(&u.id).await.unwrap().unwrap();
    assert_eq!((read.disabled_at, read.credentials_version), (None, 2));
    assert_eq!(users.find_by_email(&u.email).await.unwrap().unwrap().disabled_at, None);
}

pub async fn second_factor_writes_hold_only_under_their_conditions(env: TestEnv) {
    use gatehouse::tables::users::TwoFactorWrite as W;
    let users = &env.stores.users;
    let u = user(&env, "ann@example.com");
    users.create(&u).await.unwrap();
    let (id, at) = (u.id.clone(), now(&env));
    let w = |write| {
        let id = id.clone();
        async move { users.write_two_factor(&id, write, at).await.unwrap() }
    };
    let codes = vec!["h1".to_owned(), "h2".to_owned()];
    assert!(!w(W::Confirm { sealed: "v1.a.b", step: 5, recovery: &codes }).await, "nothing pending");
    assert!(w(W::Begin { sealed: "v1.a.b" }).await);
    assert!(w(W::Begin { sealed: "v1.c.d" }).await, "a pending secret is replaced");
    assert!(!w(W::UseStep { step: 5, by: "s0" }).await, "not confirmed yet");
    assert!(!w(W::Confirm { sealed: "v1.a.b", step: 5, recovery: &codes }).await, "not the pending secret");
    assert!(w(W::Confirm { sealed: "v1.c.d", step: 5, recovery: &codes }).await);
    let tf = users.find(&u.id).await.unwrap().unwrap().two_factor;
    assert!(tf.enabled());
    assert_eq!(
        (tf.sealed_secret.as_deref(), tf.confirmed_at, tf.last_step),
        (Some("v1.c.d"), Some(now(&env)), Some(5))
    );
    let mut stored = tf.recovery_codes.clone();
    stored.sort();
    assert_eq!(stored, codes);
    assert!(!w(W::Begin { sealed: "v1.e.f" }).await, "no re-enrolment while on");
    assert!(!w(W::UseStep { step: 5, by: "s1" }).await, "a step is used once");
    assert!(!w(W::UseStep { step: 4, by: "s2" }).await, "and never an earlier one");
    assert!(w(W::UseStep { step: 6, by: "s3" }).await);
    // The same write again (an SDK retry after its answer was lost) is recognised as done; the
    // same step by another sign-in is not.
    assert!(w(W::UseStep { step: 6, by: "s3" }).await, "a retried write of its own use");
    assert!(!w(W::UseStep { step: 6, by: "s4" }).await, "another sign-in's use of the step");
    assert!(w(W::UseRecoveryCode { hash: "h1", by: "r1" }).await);
    assert!(w(W::UseRecoveryCode { hash: "h1", by: "r1" }).await, "a retried write of its own use");
    assert!(!w(W::UseRecoveryCode { hash: "h1", by: "r2" }).await, "a recovery code is used once");
    assert!(!w(W::UseRecoveryCode { hash: "nope", by: "r3" }).await);
    let fresh = vec!["h3".to_owned()];
    assert!(w(W::ReplaceRecoveryCodes { hashes: &fresh }).await);
    assert!(!w(W::UseRecoveryCode { hash: "h2", by: "r4" }).await, "replaced codes are gone");
    assert!(w(W::UseRecoveryCode { hash: "h3", by: "r5" }).await);
    assert!(w(W::Clear).await);
    let tf = users.find(&u.id).await.unwrap().unwrap().two_factor;
    assert!(!tf.enabled() && tf.sealed_secret.is_none() && tf.recovery_codes.is_empty() && tf.last_step.is_none());
    assert!(!w(W::ReplaceRecoveryCodes { hashes: &fresh }).await, "off: nothing to replace");
    assert!(!users.write_two_factor(&UserId::generate(), W::Clear, now(&env)).await.unwrap(), "no such user");
    assert!(users.find(&UserId::generate()).await.unwrap().is_none());
}

pub async fn concurrent_uses_of_one_code_or_one_recovery_code_let_exactly_one_win(env: TestEnv) {
    use gatehouse::tables::users::TwoFactorWrite as W;
    let users = env.stores.users.clone();
    let u = user(&env, "ann@example.com");
    users.create(&u).await.unwrap();
    let codes = vec!["r1".to_owned()];
    assert!(users.write_two_factor(&u.id, W::Begin { sealed: "v1.x.y" }, now(&env)).await.unwrap());
    let confirm = W::Confirm { sealed: "v1.x.y", step: 10, recovery: &codes };
    assert!(users.write_two_factor(&u.id, confirm, now(&env)).await.unwrap());
    for write in [W::UseStep { step: 11, by: "-" }, W::UseRecoveryCode { hash: "r1", by: "-" }] {
        let step = matches!(write, W::UseStep { .. });
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let (users, id, at) = (users.clone(), u.id.clone(), now(&env));
                tokio::spawn(async move {
                    // Ten sign-ins, each its own nonce.
                    let by = format!("sign-in-{i}");
                    let w = if step {
                        W::UseStep { step: 11, by: &by }
                    } else {
                        W::UseRecoveryCode { hash: "r1", by: &by }
                    };
                    users.write_two_factor(&id, w, at).await.unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "{write:?}");
    }
}

fn passkey(id: &str, key: &str, at: gatehouse::Timestamp) -> gatehouse::tables::users::Passkey {
    gatehouse::tables::users::Passkey {
        id: id.to_owned(),
        name: format!("key {id}"),
        public_key: key.to_owned(),
        state: "AAAAAAAAAAA".to_owned(),
        transports: 1,
        created_at: at,
        last_used_at: None,
    }
}

/// Passkeys live on their user: added up to the limit, never twice under one credential id (the
/// same write repeated is still its own success), used only from the state read (of two
/// concurrent uses of one state, one wins), removed once, all cleared by an operator's reset, and
/// gone with the user.
pub async fn passkeys_are_added_within_the_limit_used_from_the_state_read_and_removed(env: TestEnv) {
    use gatehouse::tables::users::{PasskeyAdd, PasskeyUse};
    let users = env.stores.users.clone();
    let u = user(&env, "keys@example.com");
    users.create(&u).await.unwrap();
    let at = now(&env);
    let first = passkey("Y3JlZC1vbmU", "cHVibGljLW9uZQ", at);
    assert_eq!(users.add_passkey(&u.id, &first, 2, 0).await.unwrap(), PasskeyAdd::Added);
    assert_eq!(users.add_passkey(&u.id, &first, 2, 0).await.unwrap(), PasskeyAdd::Added, "the same write again");
    let other_key = passkey("Y3JlZC1vbmU", "c29tZW9uZS1lbHNl", at);
    assert_eq!(users.add_passkey(&u.id, &other_key, 2, 0).await.unwrap(), PasskeyAdd::Duplicate);
    let second = passkey("Y3JlZC10d28", "cHVibGljLXR3bw", at + Span::seconds(1));
    assert_eq!(users.add_passkey(&u.id, &second, 2, 0).await.unwrap(), PasskeyAdd::Added);
    let third = passkey("Y3JlZC10aHJlZQ", "cHVibGljLXRocmVl", at + Span::seconds(2));
    assert_eq!(users.add_passkey(&u.id, &third, 2, 0).await.unwrap(), PasskeyAdd::Full);
    assert_eq!(users.add_passkey(&UserId::generate(), &third, 2, 0).await.unwrap(), PasskeyAdd::NoUser);
    let found = users.find(&u.id).await.unwrap().unwrap();
    assert_eq!(found.passkeys, vec![first.clone(), second.clone()], "oldest first, as written");
    // Under another credentials version (a reset since the ceremony began): refused.
    let late = passkey("bGF0ZQ", "cHVibGljLWxhdGU", at);
    assert!(users.remove_passkey(&u.id, "Y3JlZC10d28", at).await.unwrap());
    assert_eq!(users.add_passkey(&u.id, &late, 2, 1).await.unwrap(), PasskeyAdd::NoUser);
    assert_eq!(users.add_passkey(&u.id, &second, 2, 0).await.unwrap(), PasskeyAdd::Added);

    // Two uses of one state at once: exactly one wins.
    let later = at + Span::seconds(5);
    // Both write the same new state at the same instant (two copies of one authenticator): only
    // the use's own mark tells them apart.
    let uses: Vec<_> = ["use-one", "use-two"]
        .into_iter()
        .map(|by| {
            let (users, id) = (users.clone(), u.id.clone());
            let change = PasskeyUse { old: "AAAAAAAAAAA", new: "BBBBBBBBBBB", by };
            tokio::spawn(async move { users.use_passkey(&id, "Y3JlZC1vbmU", change, later).await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for u in uses {
        won += usize::from(u.await.unwrap());
    }
    assert_eq!(won, 1, "one use of one state");
    // Each use sent again (its answer lost): only the winner's is recognised as its own.
    let mut own = 0;
    for by in ["use-one", "use-two"] {
        let again = PasskeyUse { old: "AAAAAAAAAAA", new: "BBBBBBBBBBB", by };
        own += usize::from(users.use_passkey(&u.id, "Y3JlZC1vbmU", again, later).await.unwrap());
    }
    assert_eq!(own, 1, "the winning use, repeated, is its own; the loser's is not");
    let used = users.find(&u.id).await.unwrap().unwrap();
    let one = used.passkeys.iter().find(|p| p.id == "Y3JlZC1vbmU").unwrap();
    assert_eq!(one.state, "BBBBBBBBBBB");
    assert_eq!(one.last_used_at, Some(later));
    let stale = PasskeyUse { old: "AAAAAAAAAAA", new: "DDDDDDDDDDD", by: "use-three" };
    assert!(!users.use_passkey(&u.id, "Y3JlZC1vbmU", stale, later).await.unwrap(), "a stale state");
    assert!(!users.use_passkey(&u.id, "bm8tc3VjaA", stale, later).await.unwrap(), "no such passkey");

    assert!(users.remove_passkey(&u.id, "Y3JlZC10d28", later).await.unwrap());
    assert!(!users.remove_passkey(&u.id, "Y3JlZC10d28", later).await.unwrap(), "removed once");
    assert_eq!(users.add_passkey(&u.id, &third, 2, 0).await.unwrap(), PasskeyAdd::Added, "room again");
    users.clear_passkeys(&u.id, later).await.unwrap();
    assert!(users.find(&u.id).await.unwrap().unwrap().passkeys.is_empty());
    assert_eq!(users.add_passkey(&u.id, &second, 2, 0).await.unwrap(), PasskeyAdd::Added, "the count was cleared too");
    assert!(users.delete(&u.id).await.unwrap());
    assert!(users.find(&u.id).await.unwrap().is_none());
}

/// A reset's password write removes the passkeys read with the user in the same write, and only
/// while they are exactly the user's: one added, or one removed and another added (the same
/// count), since the read fails the change like a moved version, and nothing is written.
pub async fn a_credential_change_clears_exactly_the_passkeys_it_read_or_nothing(env: TestEnv) {
    use gatehouse::tables::users::PasskeyAdd;
    let users = &env.stores.users;
    let u = user(&env, "keys-reset@example.com");
    users.create(&u).await.unwrap();
    let at = now(&env);
    let hash = PasswordHash::from_stored("$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3".into());
    let later = PasswordHash::from_stored("$argon2id$v=19$m=19456,t=2,p=1$bGF0ZXI$bGF0ZXI".into());
    fn reset<'a>(hash: &'a PasswordHash, read: &'a [gatehouse::tables::users::Passkey]) -> CredentialChange<'a> {
        CredentialChange {
            password: Some(hash),
            revoke: true,
            clear_passkeys: Some(read),
            ..CredentialChange::default()
        }
    }
    let (a, b, c) =
        (passkey("cGstYQ", "a2V5LWE", at), passkey("cGstYg", "a2V5LWI", at), passkey("cGstYw", "a2V5LWM", at));
    // None read, none there (a user from before passkeys has no count at all).
    assert_eq!(users.change_credentials(&u.id, 0, reset(&hash, &[]), at).await.unwrap(), Some(1));
    // None read, one added since: refused, nothing written.
    assert_eq!(users.add_passkey(&u.id, &a, 10, 1).await.unwrap(), PasskeyAdd::Added);
    assert_eq!(
        users.change_credentials(&u.id, 1, reset(&later, &[]), at).await.unwrap(),
        None,
        "one added since the read"
    );
    // Two read; one removed and another added since: the same count, not the same passkeys.
    assert_eq!(users.add_passkey(&u.id, &b, 10, 1).await.unwrap(), PasskeyAdd::Added);
    let read = users.find(&u.id).await.unwrap().unwrap();
    assert_eq!(read.passkeys.len(), 2);
    assert!(users.remove_passkey(&u.id, &a.id, at).await.unwrap());
    assert_eq!(users.add_passkey(&u.id, &c, 10, 1).await.unwrap(), PasskeyAdd::Added);
    assert_eq!(
        users.change_credentials(&u.id, 1, reset(&later, &read.passkeys), at).await.unwrap(),
        None,
        "swapped since"
    );
    let kept = users.find(&u.id).await.unwrap().unwrap();
    assert_eq!((kept.credentials_version, kept.password_hash.as_str()), (1, hash.as_str()), "nothing written");
    assert_eq!(kept.passkeys.len(), 2);
    // Read as they are: the password and the passkeys change in one write.
    assert_eq!(users.change_credentials(&u.id, 1, reset(&later, &kept.passkeys), at).await.unwrap(), Some(2));
    let after = users.find(&u.id).await.unwrap().unwrap();
    assert_eq!((after.password_hash.as_str(), after.passkeys.len()), (later.as_str(), 0));
    // The count went with them: the limit counts from zero again.
    assert_eq!(users.add_passkey(&u.id, &a, 1, 2).await.unwrap(), PasskeyAdd::Added);
    assert_eq!(users.add_passkey(&u.id, &b, 1, 2).await.unwrap(), PasskeyAdd::Full);
}

/// A reset of a never-verified account clears the second factor in the password's own write
/// (`clear_two_factor`); without it the factor stays.
pub async fn a_credential_change_can_clear_the_second_factor(env: TestEnv) {
    use gatehouse::tables::users::TwoFactorWrite;
    let users = &env.stores.users;
    let u = user(&env, "tf-clear@example.com");
    users.create(&u).await.unwrap();
    let at = now(&env);
    let codes = vec!["code-hash-1".to_owned(), "code-hash-2".to_owned()];
    assert!(users.write_two_factor(&u.id, TwoFactorWrite::Begin { sealed: "v1.sealed" }, at).await.unwrap());
    let confirm = TwoFactorWrite::Confirm { sealed: "v1.sealed", step: 7, recovery: &codes };
    assert!(users.write_two_factor(&u.id, confirm, at).await.unwrap());
    let hash = PasswordHash::from_stored("$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3".into());
    let keep = CredentialChange { password: Some(&hash), revoke: true, ..CredentialChange::default() };
    assert_eq!(users.change_credentials(&u.id, 0, keep, at).await.unwrap(), Some(1));
    assert!(users.find(&u.id).await.unwrap().unwrap().two_factor.enabled(), "kept without the flag");
    let clear =
        CredentialChange { password: Some(&hash), revoke: true, clear_two_factor: true, ..CredentialChange::default() };
    assert_eq!(users.change_credentials(&u.id, 1, clear, at).await.unwrap(), Some(2));
    let read = users.find(&u.id).await.unwrap().unwrap();
    assert!(!read.two_factor.enabled());
    assert_eq!(read.two_factor, gatehouse::tables::users::TwoFactor::default(), "nothing of it is left");
    assert_eq!(read.credentials_version, 2);
}

/// Every move of the credentials version records itself (newest first, the last
/// `RECENT_CHANGES` kept), with the session that made it; a change that keeps the version
/// records nothing.
pub async fn moves_of_the_credentials_version_are_recorded_with_who_made_them(env: TestEnv) {
    use gatehouse::tables::users::RECENT_CHANGES;
    let u = user(&env, "ann@example.com");
    env.stores.users.create(&u).await.unwrap();
    let by = "a-session-key";
    let change = CredentialChange { revoke: true, by: Some(by), ..CredentialChange::default() };
    assert_eq!(env.stores.users.change_credentials(&u.id, 0, change, now(&env)).await.unwrap(), Some(1));
    let rehash = CredentialChange { password: Some(&u.password_hash), ..CredentialChange::default() };
    assert_eq!(env.stores.users.change_credentials(&u.id, 1, rehash, now(&env)).await.unwrap(), Some(1));
    let read = env.stores.users.find(&u.id).await.unwrap().unwrap();
    assert_eq!(read.recent_changes.len(), 1, "the rehash records nothing");
    let first = read.change_to(1).expect("the change to version 1");
    assert_eq!((first.by.as_deref(), first.at), (Some(by), now(&env)));
    for v in 1..RECENT_CHANGES + 3 {
        let next = CredentialChange { revoke: true, ..CredentialChange::default() };
        assert_eq!(env.stores.users.change_credentials(&u.id, v, next, now(&env)).await.unwrap(), Some(v + 1));
    }
    let read = env.stores.users.find(&u.id).await.unwrap().unwrap();
    let versions: Vec<u64> = read.recent_changes.iter().map(|c| c.version).collect();
    let newest = RECENT_CHANGES + 3;
    assert_eq!(
        versions,
        (newest - RECENT_CHANGES + 1..=newest).rev().collect::<Vec<_>>(),
        "the last ones, newest first"
    );
    assert!(read.change_to(1).is_none(), "the oldest are forgotten");
    assert!(read.recent_changes.iter().all(|c| c.by.is_none()));
}

/// A promised notice's mark is written by the very write that makes its change (each kind of
/// write that promises one), never by a write that is refused, and is cleared once mailed.
pub async fn a_notice_mark_is_written_only_by_the_write_that_makes_its_change(env: TestEnv) {
    use gatehouse::tables::users::{NoticeMark, TwoFactorWrite};
    let u = user(&env, "ann@example.com");
    env.stores.users.create(&u).await.unwrap();
    let users = &env.stores.users;
    let marks: Vec<NoticeMark> = (0..6).map(|_| NoticeMark::generate()).collect();
    // A credentials change: refused (a stale version), then made.
    let refused = CredentialChange { revoke: true, notices: &marks[..1], ..CredentialChange::default() };
    assert_eq!(users.change_credentials(&u.id, 7, refused, now(&env)).await.unwrap(), None);
    assert!(users.find(&u.id).await.unwrap().unwrap().pending_notices.is_empty(), "a refused write notes nothing");
    let made = CredentialChange { revoke: true, notices: &marks[..2], ..CredentialChange::default() };
    assert_eq!(users.change_credentials(&u.id, 0, made, now(&env)).await.unwrap(), Some(1));
    // A second factor's write, refused (nothing pending to confirm), then made.
    let confirm = TwoFactorWrite::Confirm { sealed: "s", step: 1, recovery: &[] };
    assert!(!users.write_two_factor_noting(&u.id, confirm, Marks::notice(Some(&marks[2])), now(&env)).await.unwrap());
    assert!(
        users
            .write_two_factor_noting(&u.id, TwoFactorWrite::Clear, Marks::notice(Some(&marks[3])), now(&env))
            .await
            .unwrap()
    );
    // An address swap.
    let to = Email::parse("ann.new@example.com").unwrap();
    let m = EmailMove { from: &u.email, to: &to, version: 1, from_tag: "t", notice: Some(&marks[4]), events: &[] };
    assert_eq!(users.change_email(&u.id, m, now(&env)).await.unwrap(), EmailSwap::Changed);
    // A passkey removal of one that is not there: refused, nothing noted.
    assert!(!users.remove_passkey_noting(&u.id, "bm9uZQ", Marks::notice(Some(&marks[5])), now(&env)).await.unwrap());
    let mut pending = users.find(&u.id).await.unwrap().unwrap().pending_notices;
    pending.sort();
    let mut want: Vec<String> = [0, 1, 3, 4].iter().map(|i| marks[*i].as_str().to_owned()).collect();
    want.sort();
    // marks[0] again, with marks[1], on the change that was made.
    assert_eq!(pending, want);
    for m in &marks {
        users.clear_notice(&u.id, m).await.unwrap();
    }
    assert!(users.find(&u.id).await.unwrap().unwrap().pending_notices.is_empty(), "cleared once mailed");
    users.clear_notice(&UserId::generate(), &marks[0]).await.unwrap();
}

pub async fn event_marks_take_the_user_s_next_numbers_in_the_write_that_makes_their_fact(env: TestEnv) {
    use gatehouse::tables::users::EventMark;
    let users = &env.stores.users;
    let marks: Vec<EventMark> = (0..5).map(|_| EventMark::generate()).collect();
    // Registration: the creation carries the first event, number 1.
    let u = user(&env, "ann@example.com").with_events(&marks[..1]);
    users.create(&u).await.unwrap();
    let stored = users.find(&u.id).await.unwrap().unwrap();
    assert_eq!((stored.event_seq, stored.pending_events.clone()), (1, [(marks[0].as_str().to_owned(), 1)].into()));
    // A registration refused (the address taken) notes nothing anywhere.
    let late = user(&env, "ANN@example.com").with_events(&marks[4..]);
    assert!(matches!(users.create(&late).await, Err(StoreError::Conflict(_))));
    assert_eq!(users.find(&late.id).await.unwrap(), None);
    // A change refused (a stale version) takes no number.
    let refused = CredentialChange { revoke: true, delete: true, events: &marks[4..], ..CredentialChange::default() };
    assert_eq!(users.change_credentials(&u.id, 7, refused, now(&env)).await.unwrap(), None);
    assert_eq!(users.find(&u.id).await.unwrap().unwrap(), stored, "a refused write notes nothing");
    // A change made: each of its events takes the next number, in order.
    let made = CredentialChange { revoke: true, delete: true, events: &marks[1..3], ..CredentialChange::default() };
    assert_eq!(users.change_credentials(&u.id, 0, made, now(&env)).await.unwrap(), Some(1));
    // One that keeps the version, then the same write again (an SDK retry after its answer was
    // lost): taken for its own, counted once.
    let rehash = CredentialChange { events: &marks[3..4], ..CredentialChange::default() };
    assert_eq!(users.change_credentials(&u.id, 1, rehash, now(&env)).await.unwrap(), Some(1));
    assert_eq!(users.change_credentials(&u.id, 1, rehash, now(&env)).await.unwrap(), Some(1), "its own retry");
    let stored = users.find(&u.id).await.unwrap().unwrap();
    let want: std::collections::BTreeMap<String, u64> =
        (0..4).map(|i| (marks[i].as_str().to_owned(), i as u64 + 1)).collect();
    assert_eq!((stored.event_seq, stored.pending_events), (4, want));
    // Cleared once recorded; the counter stays.
    for m in &marks {
        users.clear_event(&u.id, m).await.unwrap();
    }
    let stored = users.find(&u.id).await.unwrap().unwrap();
    assert!(stored.pending_events.is_empty());
    assert_eq!(stored.event_seq, 4);
    users.clear_event(&UserId::generate(), &marks[0]).await.unwrap();
}
