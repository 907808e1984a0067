//! Laravel's `RateLimiter` on the cache store: a hit counter and a timer per key, both expiring
//! with the decay window. Never a permanent lockout: every key frees itself when its window ends.

use crate::cache::CacheStore;
use crate::clock::{Clock, epoch_seconds};
use crate::error::StoreResult;
use chrono::Duration;
use serde_json::Value;
use std::sync::Arc;

#[derive(Clone)]
pub struct RateLimiter {
    cache: Arc<dyn CacheStore>,
    clock: Arc<dyn Clock>,
}

impl RateLimiter {
    pub fn new(cache: Arc<dyn CacheStore>, clock: Arc<dyn Clock>) -> Self {
        Self { cache, clock }
    }

    fn timer(key: &str) -> String {
        format!("{key}:timer")
    }

    /// `Some(seconds until the window ends)` when `key` has reached `max` hits in its window.
    pub async fn too_many(&self, key: &str, max: i64) -> StoreResult<Option<u64>> {
        let hits = self.cache.get(key).await?.and_then(|v| v.as_i64()).unwrap_or(0);
        if hits < max {
            return Ok(None);
        }
        match self.cache.get(&Self::timer(key)).await?.and_then(|v| v.as_i64()) {
            Some(available_at) => {
                let wait = available_at - epoch_seconds(self.clock.now());
                Ok(Some(wait.max(1) as u64))
            }
            None => {
                // The timer is gone, so the window is over: start afresh.
                self.clear(key).await?;
                Ok(None)
            }
        }
    }

    /// Counts one hit in `key`'s window (opening a window of `decay` if none is open). Returns
    /// the hits so far.
    pub async fn hit(&self, key: &str, decay: Duration) -> StoreResult<i64> {
        let now = self.clock.now();
        let end = now + decay;
        self.cache.add(&Self::timer(key), &Value::from(epoch_seconds(end)), Some(end)).await?;
        let added = self.cache.add(key, &Value::from(0), Some(end)).await?;
        let hits = self.cache.increment(key, 1).await?;
        if !added && hits == 1 {
            // The counter expired between `add` and `increment` and came back without an expiry.
            self.cache.put(key, &Value::from(1), Some(end)).await?;
        }
        Ok(hits)
    }

    pub async fn clear(&self, key: &str) -> StoreResult<()> {
        self.cache.forget(key).await?;
        self.cache.forget(&Self::timer(key)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::memory::MemoryCache;

    fn limiter() -> (RateLimiter, ManualClock) {
        let clock = ManualClock::starting_now();
        let c: Arc<dyn Clock> = Arc::new(clock.clone());
        (RateLimiter::new(Arc::new(MemoryCache::new(c.clone())), c), clock)
    }

    #[tokio::test]
    async fn five_hits_then_locked_until_the_window_ends() {
        let (rl, clock) = limiter();
        for i in 1..=5 {
            assert_eq!(rl.too_many("k", 5).await.unwrap(), None);
            assert_eq!(rl.hit("k", Duration::seconds(60)).await.unwrap(), i);
        }
        assert_eq!(rl.too_many("k", 5).await.unwrap(), Some(60));
        clock.advance(Duration::seconds(45));
        assert_eq!(rl.too_many("k", 5).await.unwrap(), Some(15));
        clock.advance(Duration::seconds(16));
        assert_eq!(rl.too_many("k", 5).await.unwrap(), None);
        assert_eq!(rl.hit("k", Duration::seconds(60)).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn clearing_resets_the_count() {
        let (rl, _) = limiter();
        for _ in 0..5 {
            rl.hit("k", Duration::seconds(60)).await.unwrap();
        }
        rl.clear("k").await.unwrap();
        assert_eq!(rl.too_many("k", 5).await.unwrap(), None);
    }
}
