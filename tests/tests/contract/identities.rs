//! The contract of the `identities` table, run against both backends by the macro in `main.rs`:
//! a provider's subject is linked to one user, once, never overwritten, and only that user's calls
//! unlink or touch it.

use crate::now;
use chrono::Duration as Span;
use gatehouse::StoreError;
use gatehouse::tables::identities::{Identity, Linked};
use gatehouse::tables::users::UserId;
use gatehouse_tests::TestEnv;

/// `provider`'s `subject`, linked to `user` now, under credentials version 3.
fn identity(env: &TestEnv, provider: &str, subject: &str, user: &UserId) -> Identity {
    Identity {
        provider: provider.into(),
        subject: subject.into(),
        user_id: user.clone(),
        email: Some("ann@example.com".into()),
        credentials_version: 3,
        linked_at: now(env),
        last_used_at: None,
        tokens: None,
    }
}

pub async fn identities_are_linked_once_found_listed_by_user_and_unlinked(env: TestEnv) {
    let store = &env.stores.identities;
    let (ann, bob) = (UserId::generate(), UserId::generate());
    let google = identity(&env, "google", "110169484474386276334", &ann);
    let github = Identity {
        email: None,
        tokens: Some("sealed".into()),
        last_used_at: Some(now(&env)),
        ..identity(&env, "github", "583231", &ann)
    };
    let bobs = identity(&env, "google", "2", &bob);
    for i in [&google, &github, &bobs] {
        assert_eq!(store.link(i).await.unwrap(), Linked::New);
    }
    assert_eq!(store.find("google", "110169484474386276334").await.unwrap(), Some(google.clone()));
    assert_eq!(store.find("github", "583231").await.unwrap(), Some(github.clone()));
    assert_eq!(store.find("github", "110169484474386276334").await.unwrap(), None, "another provider's subject");
    assert_eq!(store.for_user(&ann).await.unwrap(), vec![github.clone(), google.clone()], "by provider");
    assert_eq!(store.for_user(&bob).await.unwrap(), vec![bobs.clone()]);
    assert!(store.for_user(&UserId::generate()).await.unwrap().is_empty());

    // Linked again, by its user (later) or by another: the holder, and nothing overwritten.
    env.clock.advance(Span::minutes(5));
    let again = identity(&env, "google", "110169484474386276334", &ann);
    assert_eq!(store.link(&again).await.unwrap(), Linked::Already(google.clone()));
    let taken = identity(&env, "google", "110169484474386276334", &bob);
    assert_eq!(store.link(&taken).await.unwrap(), Linked::Already(google.clone()));
    assert_eq!(store.find("google", "110169484474386276334").await.unwrap(), Some(google.clone()));

    assert!(store.unlink("google", "110169484474386276334", &ann).await.unwrap());
    assert_eq!(store.find("google", "110169484474386276334").await.unwrap(), None);
    assert!(!store.unlink("google", "110169484474386276334", &ann).await.unwrap(), "gone already");
    assert_eq!(store.for_user(&ann).await.unwrap(), vec![github]);
    // Free again: anyone may link it now.
    assert_eq!(store.link(&taken).await.unwrap(), Linked::New);
    assert_eq!(store.find("google", "110169484474386276334").await.unwrap(), Some(taken));
}

pub async fn eight_racing_links_of_one_subject_by_eight_users_let_exactly_one_have_it(env: TestEnv) {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, mine) = (env.stores.identities.clone(), identity(&env, "github", "4242", &UserId::generate()));
            tokio::spawn(async move { (store.link(&mine).await.unwrap(), mine) })
        })
        .collect();
    let mut won = Vec::new();
    let mut told = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (Linked::New, mine) => won.push(mine),
            (Linked::Already(holder), mine) => {
                assert_ne!(holder.user_id, mine.user_id, "told its own link is someone else's");
                told.push(holder);
            }
        }
    }
    assert_eq!((won.len(), told.len()), (1, 7), "exactly one link lands");
    let winner = won.pop().unwrap();
    assert!(told.iter().all(|holder| *holder == winner), "every loser is told the winner: {told:?}");
    assert_eq!(env.stores.identities.find("github", "4242").await.unwrap(), Some(winner.clone()));
    assert_eq!(env.stores.identities.for_user(&winner.user_id).await.unwrap(), vec![winner]);
}

pub async fn only_its_user_unlinks_or_touches_an_identity(env: TestEnv) {
    let store = &env.stores.identities;
    let (ann, bob) = (UserId::generate(), UserId::generate());
    let linked = Identity { tokens: Some("sealed-1".into()), ..identity(&env, "my-idp", "ann", &ann) };
    assert_eq!(store.link(&linked).await.unwrap(), Linked::New);

    assert!(!store.unlink("my-idp", "ann", &bob).await.unwrap(), "another user's unlink is refused");
    env.clock.advance(Span::minutes(1));
    store.touch("my-idp", "ann", &bob, now(&env), Some("sealed-by-bob")).await.unwrap();
    assert_eq!(store.find("my-idp", "ann").await.unwrap(), Some(linked.clone()), "kept, unchanged");

    // Its user's use: the time, and the tokens only when given.
    store.touch("my-idp", "ann", &ann, now(&env), None).await.unwrap();
    let used = Identity { last_used_at: Some(now(&env)), ..linked.clone() };
    assert_eq!(store.find("my-idp", "ann").await.unwrap(), Some(used.clone()));
    env.clock.advance(Span::minutes(1));
    store.touch("my-idp", "ann", &ann, now(&env), Some("sealed-2")).await.unwrap();
    let refreshed = Identity { last_used_at: Some(now(&env)), tokens: Some("sealed-2".into()), ..linked };
    assert_eq!(store.find("my-idp", "ann").await.unwrap(), Some(refreshed.clone()));
    assert_eq!(store.for_user(&ann).await.unwrap(), vec![refreshed]);

    // A use of what is not linked creates nothing.
    store.touch("my-idp", "nobody", &ann, now(&env), Some("sealed-3")).await.unwrap();
    assert_eq!(store.find("my-idp", "nobody").await.unwrap(), None);
    assert!(store.unlink("my-idp", "ann", &ann).await.unwrap());
    assert!(store.for_user(&ann).await.unwrap().is_empty());
}

fn rejected<T>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Rejected(_)))
}

pub async fn a_malformed_provider_or_subject_is_rejected_by_every_call(env: TestEnv) {
    let store = &env.stores.identities;
    let ann = UserId::generate();
    let long = "a".repeat(256);
    for (provider, subject) in [
        ("Google", "1"),
        ("goo gle", "1"),
        ("a#b", "1"),
        ("", "1"),
        (&"g".repeat(33), "1"),
        ("google", ""),
        ("google", "1\n2"),
        ("google", "1\u{0}"),
        ("google", &long),
    ] {
        let i = identity(&env, provider, subject, &ann);
        assert!(rejected(store.link(&i).await), "link {provider:?} {subject:?}");
        assert!(rejected(store.find(provider, subject).await), "find {provider:?} {subject:?}");
        assert!(rejected(store.unlink(provider, subject, &ann).await), "unlink {provider:?} {subject:?}");
        assert!(rejected(store.touch(provider, subject, &ann, now(&env), None).await), "touch {provider:?}");
    }
    assert!(store.for_user(&ann).await.unwrap().is_empty(), "nothing was stored");
    // The longest of each is fine.
    let longest = identity(&env, &"g".repeat(32), &"s".repeat(255), &ann);
    assert_eq!(store.link(&longest).await.unwrap(), Linked::New);
}

/// DynamoDB only (a proxy loses the answers): a link whose answer was lost after it landed is not
/// taken, by its own SDK retry, for the subject being someone's already; an unlink and a touch
/// sent again land once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_link_whose_answer_was_lost_is_still_its_own() {
    use gatehouse_tests::wire::{Fault, faulty_env};
    let (env, faults, _) = faulty_env(11).await;
    let store = &env.stores.identities;
    let (ann, bob) = (UserId::generate(), UserId::generate());
    let linked = identity(&env, "google", "lost-answer", &ann);
    faults.fail_next("dynamodb:PutItem", Fault::AfterWrite);
    assert_eq!(store.link(&linked).await.unwrap(), Linked::New, "its own retry is no rival");
    assert_eq!(store.find("google", "lost-answer").await.unwrap(), Some(linked.clone()));
    let rival = identity(&env, "google", "lost-answer", &bob);
    assert_eq!(store.link(&rival).await.unwrap(), Linked::Already(linked.clone()));

    faults.fail_next("dynamodb:UpdateItem", Fault::AfterWrite);
    store.touch("google", "lost-answer", &ann, now(&env), Some("sealed")).await.unwrap();
    let used = Identity { last_used_at: Some(now(&env)), tokens: Some("sealed".into()), ..linked };
    assert_eq!(store.find("google", "lost-answer").await.unwrap(), Some(used));

    // The retry of a removal that landed finds nothing to remove: `false`, and it is gone.
    faults.fail_next("dynamodb:DeleteItem", Fault::AfterWrite);
    assert!(!store.unlink("google", "lost-answer", &ann).await.unwrap());
    assert_eq!(store.find("google", "lost-answer").await.unwrap(), None);
    assert_eq!(
        faults.injected().values().sum::<usize>(),
        3,
        "every scripted fault was injected: {:?}",
        faults.injected()
    );
}

/// Announced links and removals (#32): a link that is new numbers its event on the user, once; a
/// link that finds the subject held, a removal of another user's or of none, number nothing; a
/// link for a user that is gone links nothing.
pub async fn an_announced_link_or_removal_numbers_its_event_only_when_it_happens(env: TestEnv) {
    use gatehouse::tables::users::EventMark;
    let store = &env.stores.identities;
    let ann = crate::user(&env, "identity-events@example.com");
    env.stores.users.create(&ann).await.unwrap();
    let numbers = || async { env.stores.users.find(&ann.id).await.unwrap().unwrap().pending_events };
    let linked = EventMark::generate();
    let google = identity(&env, "google", "42", &ann.id);
    assert_eq!(store.link_noting(&google, std::slice::from_ref(&linked)).await.unwrap(), Linked::New);
    assert_eq!(numbers().await.get(linked.as_str()), Some(&1));
    // Held already: nothing numbered.
    let again = EventMark::generate();
    let held = store.link_noting(&google, std::slice::from_ref(&again)).await.unwrap();
    assert!(matches!(held, Linked::Already(_)));
    assert_eq!(numbers().await.get(again.as_str()), None);
    // Another user's removal, or of a subject no one holds: nothing numbered.
    let bob = UserId::generate();
    let stray = EventMark::generate();
    assert!(!store.unlink_noting("google", "42", &bob, std::slice::from_ref(&stray)).await.unwrap());
    assert!(!store.unlink_noting("google", "7", &ann.id, std::slice::from_ref(&stray)).await.unwrap());
    assert_eq!(numbers().await.get(stray.as_str()), None);
    let unlinked = EventMark::generate();
    assert!(store.unlink_noting("google", "42", &ann.id, std::slice::from_ref(&unlinked)).await.unwrap());
    assert_eq!(numbers().await.get(unlinked.as_str()), Some(&2));
    assert_eq!(store.find("google", "42").await.unwrap(), None);
    // A user that is gone gets no identity.
    let ghost = identity(&env, "google", "43", &UserId::generate());
    let refused = store.link_noting(&ghost, &[EventMark::generate()]).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    assert_eq!(store.find("google", "43").await.unwrap(), None);
}
