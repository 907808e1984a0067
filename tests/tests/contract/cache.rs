//! The contract of the `cache` table, run against both backends by the macro in `main.rs`.

use crate::now;
use chrono::Duration as Span;
use gatehouse::{StoreError, cache};
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
