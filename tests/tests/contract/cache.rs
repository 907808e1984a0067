//! The contract of the `cache` table, run against both backends by the macro in `main.rs`.

use crate::now;
use chrono::Duration as Span;
use gatehouse::tables::cache::{Hit, Hits, Once};
use gatehouse::{StoreError, tables::cache};
use gatehouse_tests::TestEnv;
use serde_json::json;
use std::sync::Arc;

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

pub async fn counters_let_their_max_of_eighty_concurrent_hits_through_all_or_none(env: TestEnv) {
    let c = env.stores.cache.clone();
    let end = now(&env) + Span::seconds(60);
    let tasks: Vec<_> = (0..80)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                let hits = [Hit { key: "a", max: 30, window_end: end }, Hit { key: "b", max: 50, window_end: end }];
                c.hit_all(&hits).await.unwrap()
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert_eq!(answers.iter().filter(|h| **h == Hits::Counted).count(), 30, "exactly the smaller max passed");
    assert!(
        answers.iter().all(|h| matches!(h, Hits::Counted) || *h == Hits::Full(vec![0])),
        "only `a` was full: {answers:?}"
    );
    assert_eq!(c.get("a").await.unwrap(), Some(json!(30)));
    assert_eq!(c.get("b").await.unwrap(), Some(json!(30)), "a refused hit counted nothing");
    let b = [Hit { key: "b", max: 50, window_end: end }];
    for _ in 0..20 {
        assert_eq!(c.hit_all(&b).await.unwrap(), Hits::Counted);
    }
    assert_eq!(c.hit_all(&b).await.unwrap(), Hits::Full(vec![0]), "one counter, full");
    let both = [Hit { key: "a", max: 31, window_end: end }, Hit { key: "b", max: 50, window_end: end }];
    assert_eq!(c.hit_all(&both).await.unwrap(), Hits::Full(vec![1]), "`b` is full, `a` had room");
    assert_eq!(c.get("a").await.unwrap(), Some(json!(30)));
    for bad in [&[][..], &[Hit { key: "a", max: 1, window_end: end }, Hit { key: "a", max: 1, window_end: end }][..]] {
        assert!(matches!(c.hit_all(bad).await, Err(StoreError::Rejected(_))), "{bad:?}");
    }
    env.clock.advance(Span::seconds(61));
    assert_eq!(c.get("a").await.unwrap(), None, "a counter ends with its window");
    // Once expired (TTL deletes late) it refuses nothing, on either backend.
    assert_eq!(c.hit_all(&b).await.unwrap(), Hits::Counted);
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

/// A single-use value taken once: gone to every read and every other taker, kept for its own
/// taker's repeats (the same answer, its first take's time) until the keep time the first take
/// set, which a repeat does not move.
pub async fn a_value_taken_once_is_kept_only_for_the_repeats_of_its_own_taker(env: TestEnv) {
    let c = &env.stores.cache;
    assert_eq!(c.get_once("none", "m").await.unwrap(), None);
    assert_eq!(c.take_once("none", "m", now(&env) + Span::minutes(2)).await.unwrap(), None, "nothing to take");
    c.put("k", &json!({"user": "ann"}), Some(now(&env) + Span::minutes(5))).await.unwrap();
    assert_eq!(c.get_once("k", "m1").await.unwrap(), Some(Once::Open(json!({"user": "ann"}))));
    let at = c.take_once("k", "m1", now(&env) + Span::minutes(2)).await.unwrap().expect("taken");
    assert_eq!(c.get("k").await.unwrap(), None, "taken: gone to reads");
    assert_eq!(c.many(&["k".to_owned()]).await.unwrap(), vec![None]);
    assert!(!c.add("k", &json!("other"), None).await.unwrap(), "and still there to conditional writes");
    assert_eq!(c.get_once("k", "m2").await.unwrap(), None, "gone to another taker");
    assert_eq!(c.take_once("k", "m2", now(&env) + Span::minutes(2)).await.unwrap(), None);
    env.clock.advance(Span::seconds(90));
    let again = c.get_once("k", "m1").await.unwrap().expect("kept for its taker");
    assert_eq!(again, Once::Taken { value: json!({"user": "ann"}), at });
    assert!(again.is_repeat());
    assert_eq!(c.take_once("k", "m1", now(&env) + Span::minutes(2)).await.unwrap(), Some(at), "a repeat passes");
    // Kept until two minutes after the first take, not after the repeat.
    env.clock.advance(Span::seconds(31));
    assert_eq!(c.get_once("k", "m1").await.unwrap(), None, "past the keep time");
    assert_eq!(c.take_once("k", "m1", now(&env) + Span::minutes(2)).await.unwrap(), None);
    assert!(c.add("k", &json!("new"), None).await.unwrap(), "then absent");
    // An expired value is taken by nobody; a forgotten one neither.
    c.put("e", &json!(1), Some(now(&env) + Span::seconds(10))).await.unwrap();
    env.clock.advance(Span::seconds(11));
    assert_eq!(c.get_once("e", "m").await.unwrap(), None);
    assert_eq!(c.take_once("e", "m", now(&env) + Span::minutes(2)).await.unwrap(), None);
    c.put("f", &json!(1), Some(now(&env) + Span::minutes(5))).await.unwrap();
    assert!(c.take_once("f", "m", now(&env) + Span::minutes(2)).await.unwrap().is_some());
    assert!(!c.forget("f").await.unwrap(), "a taken value was no longer live");
    assert_eq!(c.get_once("f", "m").await.unwrap(), None, "closed: not even its taker finds it");
    assert_eq!(c.take_once("f", "m", now(&env) + Span::minutes(2)).await.unwrap(), None);
}

/// Twenty takers with different marks at once: exactly one takes the value.
pub async fn twenty_concurrent_takes_with_different_marks_let_exactly_one_win(env: TestEnv) {
    let c = env.stores.cache.clone();
    c.put("once", &json!("challenge"), Some(now(&env) + Span::minutes(5))).await.unwrap();
    let keep = now(&env) + Span::minutes(2);
    let runs: Vec<_> = (0..20)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move { c.take_once("once", &format!("mark-{i}"), keep).await.unwrap().is_some() })
        })
        .collect();
    let mut won = 0;
    for r in runs {
        won += usize::from(r.await.unwrap());
    }
    assert_eq!(won, 1);
}
