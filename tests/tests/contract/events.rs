//! The contract of the `events` table, run against both backends by the macro in `main.rs`.

use crate::now;
use chrono::Duration as Span;
use gatehouse::tables::events::{Appended, Event, EventBody};
use gatehouse::tables::users::UserId;
use gatehouse_tests::TestEnv;

fn deleted(env: &TestEnv, user: &UserId, seq: u64) -> Event {
    let body: EventBody =
        serde_json::from_value(serde_json::json!({ "type": "user.deleted", "data": { "revoked": "all" } })).unwrap();
    Event::new(user.clone(), seq, now(env), body)
}

pub async fn an_event_holds_its_number_alone_and_is_listed_in_order_while_live(env: TestEnv) {
    let events = &env.stores.events;
    let (ann, bob) = (UserId::generate(), UserId::generate());
    let until = now(&env) + Span::days(7);
    let (first, second, third) = (deleted(&env, &ann, 1), deleted(&env, &ann, 2), deleted(&env, &ann, 3));
    // Appended out of order: listed by number.
    assert_eq!(events.append(&second, until).await.unwrap(), Appended::Added);
    assert_eq!(events.append(&first, until).await.unwrap(), Appended::Added);
    assert_eq!(events.append(&deleted(&env, &bob, 1), until).await.unwrap(), Appended::Added);
    // The same event again (its job run again): no second item; another at its number: refused.
    assert_eq!(events.append(&first, until).await.unwrap(), Appended::Already);
    let rival = deleted(&env, &ann, 1);
    assert_eq!(events.append(&rival, until).await.unwrap(), Appended::Taken(first.id.clone()));
    // A short-lived one: listed until it expires, and its number still held after.
    assert_eq!(events.append(&third, now(&env) + Span::seconds(5)).await.unwrap(), Appended::Added);
    let ids = |list: Vec<Event>| list.into_iter().map(|e| (e.seq, e.id)).collect::<Vec<_>>();
    assert_eq!(
        ids(events.after(&ann, 0, 10).await.unwrap()),
        vec![(1, first.id.clone()), (2, second.id.clone()), (3, third.id.clone())]
    );
    assert_eq!(events.after(&ann, 0, 10).await.unwrap()[0], first, "read back whole");
    assert_eq!(ids(events.after(&ann, 1, 1).await.unwrap()), vec![(2, second.id.clone())], "after 1, at most 1");
    env.clock.advance(Span::seconds(6));
    assert_eq!(ids(events.after(&ann, 1, 10).await.unwrap()), vec![(2, second.id.clone())], "expired: not listed");
    assert_eq!(events.append(&deleted(&env, &ann, 3), until).await.unwrap(), Appended::Taken(third.id));
    assert_eq!(events.after(&bob, 0, 10).await.unwrap().len(), 1);
    assert!(events.after(&UserId::generate(), 0, 10).await.unwrap().is_empty());
}

fn registered(env: &TestEnv, user: &UserId, seq: u64) -> Event {
    let body: EventBody = serde_json::from_value(serde_json::json!({ "type": "user.registered", "data": {
        "email": "zelda@example.com", "name": "Zelda Quux", "email_verified": false, "method": "password",
        "client": { "ip": "198.51.100.23", "user_agent": "Mozilla/5.0" } } }))
    .unwrap();
    Event::new(user.clone(), seq, now(env), body)
}

/// A deletion's redaction: every event of the user (an expired one too) loses its personal
/// fields and is marked, keeping its id, number and place; run again it rewrites nothing;
/// another user's events are untouched.
pub async fn a_users_events_are_redacted_in_place_and_no_one_elses(env: TestEnv) {
    let events = &env.stores.events;
    let (ann, bob) = (UserId::generate(), UserId::generate());
    let until = now(&env) + Span::days(7);
    let (first, second) = (registered(&env, &ann, 1), deleted(&env, &ann, 2));
    let short = registered(&env, &ann, 3);
    let other = registered(&env, &bob, 1);
    for (e, until) in [(&first, until), (&second, until), (&short, now(&env) + Span::seconds(5)), (&other, until)] {
        assert_eq!(events.append(e, until).await.unwrap(), Appended::Added);
    }
    env.clock.advance(Span::seconds(6));
    assert_eq!(events.redact(&ann).await.unwrap(), 3, "the expired one too");
    assert_eq!(events.redact(&ann).await.unwrap(), 0, "already redacted");
    let listed = events.after(&ann, 0, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|e| (e.seq, e.id.clone())).collect::<Vec<_>>(),
        vec![(1, first.id.clone()), (2, second.id.clone())]
    );
    let mut expected = first.clone();
    expected.redact();
    assert_eq!(listed[0], expected);
    let text = serde_json::to_string(&listed).unwrap();
    for personal in ["zelda@example.com", "Zelda Quux", "198.51.100.23", "Mozilla"] {
        assert!(!text.contains(personal), "{personal} left in {text}");
    }
    assert!(listed.iter().all(|e| e.redacted));
    assert_eq!(events.after(&bob, 0, 10).await.unwrap(), vec![other], "bob's untouched");
    assert_eq!(events.append(&short, until).await.unwrap(), Appended::Already, "the number is still held by it");
}
