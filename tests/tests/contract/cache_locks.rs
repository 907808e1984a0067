//! The contract of the `cache_locks` table, run against both backends by the macro in `main.rs`.

use crate::now;
use chrono::Duration as Span;
use gatehouse::tables::cache_locks::{LockOwner, acquire_blocking};
use gatehouse::values::error::StoreResult;
use gatehouse_tests::TestEnv;
use std::time::Duration;

pub async fn twenty_concurrent_acquisitions_of_one_lock_give_exactly_one_owner(env: TestEnv) {
    let exp = Some(now(&env) + Span::seconds(30));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let locks = env.stores.cache_locks.clone();
            let owner = LockOwner::random();
            tokio::spawn(async move { locks.acquire("report", &owner, exp).await.unwrap().then_some(owner) })
        })
        .collect();
    let mut owners = Vec::new();
    for t in tasks {
        owners.extend(t.await.unwrap());
    }
    assert_eq!(owners.len(), 1);
    assert_eq!(env.stores.cache_locks.owner("report").await.unwrap(), Some(owners[0].clone()));
}

pub async fn a_lock_released_by_a_non_owner_stays_held(env: TestEnv) {
    let owner = LockOwner::random();
    let intruder = LockOwner::random();
    assert!(env.stores.cache_locks.acquire("k", &owner, Some(now(&env) + Span::seconds(30))).await.unwrap());
    assert!(!env.stores.cache_locks.release("k", &intruder).await.unwrap());
    assert_eq!(env.stores.cache_locks.owner("k").await.unwrap(), Some(owner.clone()));
    assert!(!env.stores.cache_locks.acquire("k", &intruder, None).await.unwrap());
    assert!(env.stores.cache_locks.release("k", &owner).await.unwrap());
    assert!(env.stores.cache_locks.acquire("k", &intruder, None).await.unwrap());
}

pub async fn an_expired_lock_can_be_taken_but_not_refreshed(env: TestEnv) {
    let first = LockOwner::random();
    let second = LockOwner::random();
    assert!(env.stores.cache_locks.acquire("k", &first, Some(now(&env) + Span::seconds(10))).await.unwrap());
    assert!(env.stores.cache_locks.refresh("k", &first, Some(now(&env) + Span::seconds(20))).await.unwrap());
    env.clock.advance(Span::seconds(15));
    assert!(!env.stores.cache_locks.acquire("k", &second, None).await.unwrap(), "refreshed, so still held");
    env.clock.advance(Span::seconds(6));
    assert_eq!(env.stores.cache_locks.owner("k").await.unwrap(), None);
    assert!(!env.stores.cache_locks.refresh("k", &first, Some(now(&env) + Span::seconds(20))).await.unwrap());
    assert!(env.stores.cache_locks.acquire("k", &second, Some(now(&env) + Span::seconds(10))).await.unwrap());
    assert!(!env.stores.cache_locks.release("k", &first).await.unwrap());
    env.stores.cache_locks.force_release("k").await.unwrap();
    assert_eq!(env.stores.cache_locks.owner("k").await.unwrap(), None);
}

/// A blocking acquire of the lock `b` (no expiry) by `waiter`, for at most `wait`, asking again
/// every 50 ms.
async fn wait_for_b(env: &TestEnv, waiter: &LockOwner, wait: Duration) -> StoreResult<bool> {
    acquire_blocking(env.stores.cache_locks.as_ref(), "b", waiter, None, wait, Duration::from_millis(50)).await
}

pub async fn a_blocking_acquire_waits_for_the_release(env: TestEnv) {
    let holder = LockOwner::random();
    assert!(env.stores.cache_locks.acquire("b", &holder, None).await.unwrap());
    let waiter = LockOwner::random();
    assert!(!wait_for_b(&env, &waiter, Duration::from_millis(150)).await.unwrap());
    let locks = env.stores.cache_locks.clone();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        locks.release("b", &holder).await.unwrap()
    });
    assert!(wait_for_b(&env, &waiter, Duration::from_secs(5)).await.unwrap());
    assert!(release.await.unwrap());
}
