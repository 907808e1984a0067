//! Rate limiting on the cache store: an attempt is counted only while its counter has room, in
//! one atomic conditional write for all the limits it is held to, so N concurrent attempts —
//! from one Lambda copy or a hundred — let at most the limit through, and a request held to
//! three limits pays one call. Windows are fixed and aligned to the clock (a minute's window
//! starts on the minute): the window is part of the counter's key, so a new window is a new item,
//! never a reset racing other attempts, and an item TTL has not yet deleted is never counted
//! again. At a window's edge a client can spend this window's rest and the next one's start back
//! to back; over any two windows it gets at most twice the limit. Never a permanent lockout:
//! every window frees itself when it ends.

use crate::tables::cache::{CacheStore, Hit, Hits};
use crate::values::clock::{Clock, Timestamp, epoch_seconds, from_epoch_seconds};
use crate::values::error::StoreResult;
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
    pub const fn per_day(max: i64) -> Self {
        Self { max, window: Duration::seconds(86_400) }
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

    /// Counts this attempt against `key`: `Ok(None)` when it is within `limit`,
    /// `Ok(Some(seconds until the window ends))` when it is over.
    pub async fn attempt(&self, key: &str, limit: Limit) -> StoreResult<Option<u64>> {
        self.attempt_all(&[(key, limit)]).await
    }

    /// Counts this attempt against every `(key, limit)`, all or none, in one store call: `Ok(None)`
    /// when each has room (each counted), `Ok(Some(seconds))` until the last full window ends when
    /// any is full (none counted).
    pub async fn attempt_all(&self, limits: &[(&str, Limit)]) -> StoreResult<Option<u64>> {
        let now = self.clock.now();
        let windows: Vec<(String, Timestamp)> = limits.iter().map(|(key, limit)| window(key, *limit, now)).collect();
        let hits: Vec<Hit<'_>> = windows
            .iter()
            .zip(limits)
            .map(|((key, end), (_, limit))| Hit { key, max: limit.max, window_end: *end })
            .collect();
        self.decide(&hits, now).await
    }

    /// Counts this attempt against `key` in one window that ends at `end` (opened by the first
    /// attempt, kept by the later ones): at most `max` attempts for the life of something that
    /// ends then, such as a challenge. The key must name that one thing, never to be counted
    /// again after `end`.
    pub async fn attempt_until(&self, key: &str, max: i64, end: Timestamp) -> StoreResult<Option<u64>> {
        self.decide(&[Hit { key, max, window_end: end }], self.clock.now()).await
    }

    async fn decide(&self, hits: &[Hit<'_>], now: Timestamp) -> StoreResult<Option<u64>> {
        Ok(match self.cache.hit_all(hits).await? {
            Hits::Counted => None,
            // A full counter's wait: its window's end as asked for (an older, kept end is sooner).
            Hits::Full(full) => {
                full.iter().map(|&i| (epoch_seconds(hits[i].window_end) - epoch_seconds(now)).max(1) as u64).max()
            }
            // Attempts on these counters kept cancelling each other: a flood, refused at once
            // (failing closed; the store is up, so not a 503) with a short wait.
            Hits::Contended => {
                tracing::warn!(event = "rate_limit_contended", counters = hits.len());
                Some(1)
            }
        })
    }

    /// Forgets `key`'s current window of `limit` (after a success, as Laravel's
    /// `RateLimiter::clear`).
    pub async fn clear(&self, key: &str, limit: Limit) -> StoreResult<()> {
        self.cache.forget(&window(key, limit, self.clock.now()).0).await?;
        Ok(())
    }
}

/// The counter of `key` in the window of `limit` that holds `now`, and when that window ends.
fn window(key: &str, limit: Limit, now: Timestamp) -> (String, Timestamp) {
    let length = limit.window.num_seconds().max(1);
    let start = epoch_seconds(now).div_euclid(length) * length;
    (format!("{key}@{start}"), from_epoch_seconds(start + length).unwrap_or(now + limit.window))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryCache;
    use crate::values::clock::ManualClock;

    /// A limiter whose clock starts on an hour (so on a minute too).
    fn limiter() -> (RateLimiter, ManualClock) {
        let clock = ManualClock::new(from_epoch_seconds(1_790_000_000 / 3600 * 3600).unwrap());
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
        rl.clear("k", Limit::per_minute(5)).await.unwrap();
        assert_eq!(rl.attempt("k", Limit::per_minute(5)).await.unwrap(), None);
    }

    #[tokio::test]
    async fn several_limits_count_all_or_none_and_wait_for_the_last_full_window() {
        let (rl, clock) = limiter();
        let (minute, hour) = (Limit::per_minute(2), Limit::per_hour(3));
        assert_eq!(rl.attempt_all(&[("a", minute), ("b", hour)]).await.unwrap(), None);
        assert_eq!(rl.attempt_all(&[("a", minute), ("b", hour)]).await.unwrap(), None);
        // `a` is full: nothing is counted, `b` keeps its third attempt.
        assert_eq!(rl.attempt_all(&[("a", minute), ("b", hour)]).await.unwrap(), Some(60));
        assert_eq!(rl.attempt("b", hour).await.unwrap(), None);
        clock.advance(Duration::seconds(30));
        // Both full: the wait is until the later window ends.
        assert_eq!(rl.attempt_all(&[("a", minute), ("b", hour)]).await.unwrap(), Some(3570));
        clock.advance(Duration::seconds(31));
        assert_eq!(rl.attempt("a", minute).await.unwrap(), None, "a new minute");
        assert_eq!(rl.attempt_all(&[("a", minute), ("b", hour)]).await.unwrap(), Some(3539));
    }

    #[tokio::test]
    async fn a_window_of_its_own_is_not_cut_by_the_clock() {
        let (rl, clock) = limiter();
        clock.advance(Duration::seconds(290));
        let end = clock.now() + Duration::seconds(300);
        assert_eq!(rl.attempt_until("challenge", 2, end).await.unwrap(), None);
        assert_eq!(rl.attempt_until("challenge", 2, end).await.unwrap(), None);
        assert_eq!(rl.attempt_until("challenge", 2, end).await.unwrap(), Some(300));
        // Past the clock's five-minute mark the count holds: two for the challenge's whole life.
        clock.advance(Duration::seconds(20));
        assert_eq!(rl.attempt_until("challenge", 2, end).await.unwrap(), Some(280));
    }

    #[tokio::test]
    async fn windows_are_aligned_to_the_clock() {
        let (rl, clock) = limiter();
        clock.advance(Duration::seconds(50));
        for _ in 0..5 {
            assert_eq!(rl.attempt("k", Limit::per_minute(5)).await.unwrap(), None);
        }
        assert_eq!(rl.attempt("k", Limit::per_minute(5)).await.unwrap(), Some(10), "the minute ends in 10 s");
        clock.advance(Duration::seconds(10));
        assert_eq!(rl.attempt("k", Limit::per_minute(5)).await.unwrap(), None, "the next minute");
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
