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
