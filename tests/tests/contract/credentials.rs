//! The contract of the `credentials` table (the register), run against both backends by the macro in
//! `main.rs`.

use crate::{entry, now, session, user};
use chrono::Duration as Span;
use gatehouse::tables::credential_ref::CredentialRef;
use gatehouse::tables::credentials::NewCredential;
use gatehouse::tables::users::{CredentialChange, UserId};
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

/// A sign-in's new device is listed on the user by the very step that issues its session (one
/// write, under the same condition), at most 20 with the oldest going first, and a move of the
/// credentials version forgets them all (a rehash, which keeps the version, keeps them).
pub async fn a_device_is_listed_by_its_sessions_issue_capped_at_twenty_and_forgotten_when_the_version_moves(
    env: TestEnv,
) {
    use gatehouse::tables::credentials::{NewDevice, OnUser};
    use gatehouse::tables::users::MAX_DEVICES;
    let u = user(&env, "devices@example.com");
    env.stores.users.create(&u).await.unwrap();
    let listed = || async { env.stores.users.find(&u.id).await.unwrap().unwrap().devices };
    let ids =
        |devices: &[gatehouse::tables::users::KnownDevice]| devices.iter().map(|d| d.id.clone()).collect::<Vec<_>>();
    let sign_in = |version: u64, id: String, read: Vec<gatehouse::tables::users::KnownDevice>| {
        let (_, rec) = session(&env, Some(&u.id), Span::minutes(120));
        let e = entry(&u.id, CredentialRef::session(&rec.key), None);
        let stores = env.stores.clone();
        let at = now(&env) + Span::milliseconds(i64::try_from(read.len()).unwrap());
        async move {
            let on_user = OnUser { device: Some(NewDevice { id: &id, issued_at: at, listed: &read }), events: &[] };
            stores.credentials.issue_on_device(version, &e, NewCredential::Session(&rec), on_user).await.unwrap()
        }
    };
    assert!(listed().await.is_empty(), "a new user knows no device");
    // A refused issue lists nothing.
    assert!(!sign_in(3, gatehouse::keys::new_device_id(), vec![]).await);
    assert!(listed().await.is_empty());
    let mut given = Vec::new();
    for _ in 0..MAX_DEVICES {
        let id = gatehouse::keys::new_device_id();
        assert!(sign_in(0, id.clone(), listed().await).await);
        given.push(id);
    }
    assert_eq!(ids(&listed().await), given, "listed oldest first, every one of twenty");
    // The twenty-first evicts the oldest.
    let newest = gatehouse::keys::new_device_id();
    assert!(sign_in(0, newest.clone(), listed().await).await);
    let now_listed = ids(&listed().await);
    assert_eq!(now_listed.len(), MAX_DEVICES);
    assert!(!now_listed.contains(&given[0]), "the oldest is gone");
    assert_eq!(now_listed[..MAX_DEVICES - 1], given[1..], "the others stay");
    assert_eq!(now_listed.last(), Some(&newest));
    // An issue without a device (a token, a handoff, a rotated session) leaves the list alone.
    let (_, rec) = session(&env, Some(&u.id), Span::minutes(120));
    let e = entry(&u.id, CredentialRef::session(&rec.key), None);
    assert!(env.stores.credentials.issue(0, &e, NewCredential::Session(&rec)).await.unwrap());
    assert_eq!(listed().await.len(), MAX_DEVICES);
    // A change that keeps the version (a sign-in's rehash) keeps them; one that moves it does not.
    let keep = CredentialChange::default();
    assert_eq!(env.stores.users.change_credentials(&u.id, 0, keep, now(&env)).await.unwrap(), Some(0));
    assert_eq!(listed().await.len(), MAX_DEVICES);
    let revoke = CredentialChange { revoke: true, ..CredentialChange::default() };
    assert_eq!(env.stores.users.change_credentials(&u.id, 0, revoke, now(&env)).await.unwrap(), Some(1));
    assert!(listed().await.is_empty(), "a version move forgets every device");
    // Listed again under the new version, from none.
    let again = gatehouse::keys::new_device_id();
    assert!(!sign_in(0, gatehouse::keys::new_device_id(), vec![]).await, "not under the old version");
    assert!(sign_in(1, again.clone(), listed().await).await);
    assert_eq!(ids(&listed().await), vec![again]);
}

/// An issue's events (#32) are numbered by the issue's own write on the user, after the user's
/// earlier ones, with a device listed in the same write; an issue refused (a moved version)
/// numbers nothing; the same issue sent again after it landed answers `true` and numbers nothing
/// twice.
pub async fn an_issues_events_are_numbered_by_its_own_write_and_only_once(env: TestEnv) {
    use gatehouse::tables::credentials::{NewDevice, OnUser};
    use gatehouse::tables::users::EventMark;
    let u = user(&env, "issue-events@example.com");
    let registered = EventMark::generate();
    let u = u.with_events(std::slice::from_ref(&registered));
    env.stores.users.create(&u).await.unwrap();
    let numbers = || async {
        let found = env.stores.users.find(&u.id).await.unwrap().unwrap();
        (found.event_seq, found.pending_events)
    };
    let (_, rec) = session(&env, Some(&u.id), Span::minutes(120));
    let e = entry(&u.id, CredentialRef::session(&rec.key), None);
    let created = EventMark::generate();
    let events = [created.clone()];
    // Refused: the version moved on. Nothing numbered.
    assert!(!env.stores.credentials.issue_noting(7, &e, NewCredential::Session(&rec), &events).await.unwrap());
    assert_eq!(numbers().await.0, 1);
    // With a device listed by the same write.
    let id = gatehouse::keys::new_device_id();
    let device = Some(NewDevice { id: &id, issued_at: now(&env), listed: &[] });
    let on_user = OnUser { device, events: &events };
    assert!(env.stores.credentials.issue_on_device(0, &e, NewCredential::Session(&rec), on_user).await.unwrap());
    let (seq, pending) = numbers().await;
    assert_eq!(seq, 2);
    assert_eq!(pending.get(registered.as_str()), Some(&1));
    assert_eq!(pending.get(created.as_str()), Some(&2));
    let listed = env.stores.users.find(&u.id).await.unwrap().unwrap().devices;
    assert_eq!(listed.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
    // The same issue again (its answer lost): landed, numbered once.
    assert!(env.stores.credentials.issue_noting(0, &e, NewCredential::Session(&rec), &events).await.unwrap());
    assert_eq!(numbers().await.0, 2);
    // A token after it takes the next number.
    let (_, token) = gatehouse::tables::personal_access_tokens::mint(
        &gatehouse::tables::personal_access_tokens::Tokenable::user(&u.id),
        "ci".into(),
        gatehouse::tables::personal_access_tokens::Abilities::all(),
        None,
        "",
        now(&env),
        Default::default(),
    );
    let te = entry(&u.id, CredentialRef::token(&token.id), None);
    let minted = EventMark::generate();
    let marks = [minted.clone()];
    assert!(env.stores.credentials.issue_noting(0, &te, NewCredential::Token(&token), &marks).await.unwrap());
    assert_eq!(numbers().await.1.get(minted.as_str()), Some(&3));
}

/// A tree's announced end (#32): the root's entry forgotten, the tree marked, the event numbered,
/// in one step; a second end of the same tree (a racing revocation, or the same one again) marks
/// it again and numbers nothing; a user that is gone still gets the tree ended.
pub async fn a_trees_announced_end_numbers_its_event_once(env: TestEnv) {
    use gatehouse::tables::users::EventMark;
    let u = user(&env, "tree-end@example.com");
    env.stores.users.create(&u).await.unwrap();
    let (_, rec) = session(&env, Some(&u.id), Span::minutes(120));
    let root = CredentialRef::session(&rec.key);
    let e = entry(&u.id, root.clone(), None);
    assert!(env.stores.credentials.issue(0, &e, NewCredential::Session(&rec)).await.unwrap());
    let until = now(&env) + Span::days(1);
    let (first, second) = (EventMark::generate(), EventMark::generate());
    env.stores.credentials.end_tree_noting(&u.id, &root, until, std::slice::from_ref(&first)).await.unwrap();
    env.stores.credentials.end_tree_noting(&u.id, &root, until, std::slice::from_ref(&second)).await.unwrap();
    let found = env.stores.users.find(&u.id).await.unwrap().unwrap();
    assert_eq!(found.pending_events.get(first.as_str()), Some(&1));
    assert_eq!(found.pending_events.get(second.as_str()), None, "numbered once");
    let register = env.stores.credentials.read(&u.id).await.unwrap();
    assert!(register.entry(&root).is_none() && register.ended(&root), "forgotten and marked");
    // The user gone: the tree still ends, nothing numbered, no error.
    let gone = UserId::generate();
    let other = CredentialRef::session(&session(&env, Some(&gone), Span::minutes(5)).1.key);
    env.stores.credentials.end_tree_noting(&gone, &other, until, &[EventMark::generate()]).await.unwrap();
    assert!(env.stores.credentials.read(&gone).await.unwrap().ended(&other));
}
