//! Rate limiting on the cache store that counts first and decides on the counted value: one
//! atomic hit per attempt (a counter that opens its window on the first hit and expires with it),
//! so N concurrent attempts — from one Lambda copy or a hundred — let at most the limit through.
//! Never a permanent lockout: every window frees itself when it ends.

use crate::cache::CacheStore;
use crate::clock::{Clock, epoch_seconds};
use crate::error::StoreResult;
use chrono::Duration;
use std::sync::Arc;

/// At most `max` attempts per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: i64,
    pub window: Duration,
}

impl Limit {
    pub const fn per_minute(max: i64) -> Self {
        Self { max, window: Duration::seconds(60) }
    }
    pub const fn per_hour(max: i64) -> Self {
        Self { max, window: Duration::seconds(3600) }
    }
}

/// The part of a client address a limit is keyed on: an IPv4 address whole, an IPv6 address by
/// its /64 (one subscriber's allocation: rotating through it buys nothing), `-` when unknown.
pub fn client_key(ip: Option<&str>) -> String {
    match ip.map(str::parse::<std::net::IpAddr>) {
        Some(Ok(std::net::IpAddr::V4(v4))) => v4.to_string(),
        Some(Ok(std::net::IpAddr::V6(v6))) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        _ => "-".to_owned(),
    }
}

#[derive(Clone)]
pub struct RateLimiter {
    cache: Arc<dyn CacheStore>,
    clock: Arc<dyn Clock>,
}

impl RateLimiter {
    pub fn new(cache: Arc<dyn CacheStore>, clock: Arc<dyn Clock>) -> Self {
        Self { cache, clock }
    }

    /// Counts this attempt against `key`, then decides: `Ok(None)` when it is within `limit`,
    /// `Ok(Some(seconds until the window ends))` when it is over.
    pub async fn attempt(&self, key: &str, limit: Limit) -> StoreResult<Option<u64>> {
        let now = self.clock.now();
        let (count, end) = self.cache.hit(key, now + limit.window).await?;
        if count <= limit.max {
            return Ok(None);
        }
        Ok(Some((epoch_seconds(end) - epoch_seconds(now)).max(1) as u64))
    }

    /// Forgets `key`'s window (after a success, as Laravel's `RateLimiter::clear`).
    pub async fn clear(&self, key: &str) -> StoreResult<()> {
        self.cache.forget(key).await?;
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
    async fn five_attempts_then_refused_until_the_window_ends() {
        let (rl, clock) = limiter();
        for _ in 1..=5 {
            assert_eq!(rl.attempt("k", Limit::per_minute(5)).await.unwrap(), None);
        }
        assert_eq!(rl.attempt("k", Limit::per_minute(5)).await.unwrap(), Some(60));
        clock.advance(Duration::seconds(45));
        assert_eq!(rl.attempt("k", Limit::per_minute(5)).await.unwrap(), Some(15));
        clock.advance(Duration::seconds(16));
        assert_eq!(rl.attempt("k", Limit::per_minute(5)).await.unwrap(), None);
    }

    #[tokio::test]
    async fn twenty_concurrent_attempts_let_exactly_the_limit_through() {
        let (rl, _) = limiter();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let rl = rl.clone();
                tokio::spawn(async move { rl.attempt("k", Limit::per_minute(5)).await.unwrap().is_none() })
            })
            .collect();
        let mut passed = 0;
        for t in tasks {
            passed += usize::from(t.await.unwrap());
        }
        assert_eq!(passed, 5);
    }

    #[tokio::test]
    async fn clearing_resets_the_count() {
        let (rl, _) = limiter();
        for _ in 0..6 {
            rl.attempt("k", Limit::per_minute(5)).await.unwrap();
        }
        rl.clear("k").await.unwrap();
        assert_eq!(rl.attempt("k", Limit::per_minute(5)).await.unwrap(), None);
    }

    #[test]
    fn clients_are_ipv4_addresses_and_ipv6_slash_64s() {
        assert_eq!(client_key(Some("203.0.113.9")), "203.0.113.9");
        assert_eq!(client_key(Some("2001:db8:1:2:aaaa::1")), client_key(Some("2001:db8:1:2:ffff:1:2:3")));
        assert_ne!(client_key(Some("2001:db8:1:2::1")), client_key(Some("2001:db8:1:3::1")));
        assert_eq!(client_key(Some("::ffff:203.0.113.9")), "203.0.113.9");
        assert_eq!(client_key(Some("garbage")), "-");
        assert_eq!(client_key(None), "-");
    }
}
