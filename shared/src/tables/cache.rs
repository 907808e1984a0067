//! The `cache` table: Laravel's cache repository on a key-value store with expiry.

use crate::values::clock::Timestamp;
use crate::values::error::{StoreError, StoreResult};
use async_trait::async_trait;
use serde_json::Value;
use std::future::Future;

/// Longest accepted key, in bytes (DynamoDB allows 2048 for a partition key).
pub const MAX_KEY_LEN: usize = 1024;

pub fn check_key(key: &str) -> StoreResult<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(StoreError::Rejected(format!("a cache key must be 1 to {MAX_KEY_LEN} bytes")));
    }
    Ok(())
}

/// One counter of [`CacheStore::hit_all`].
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    /// Names the counter and its window (a new window is a new key).
    pub key: &'a str,
    /// Hits the window takes.
    pub max: i64,
    /// When the window (and the item holding it) expires.
    pub window_end: Timestamp,
}

/// What [`CacheStore::hit_all`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hits {
    /// Every counter took its hit.
    Counted,
    /// Nothing was counted: the counters at these indices were full.
    Full(Vec<usize>),
    /// Nothing was counted: other hits on the same counters kept cancelling this one (a flood on
    /// them; only a backend whose multi-item writes can cancel each other answers this).
    Contended,
}

/// Checks the keys of a [`CacheStore::hit_all`]: each valid, none twice.
pub fn check_hits(hits: &[Hit<'_>]) -> StoreResult<()> {
    for (i, h) in hits.iter().enumerate() {
        check_key(h.key)?;
        if hits[..i].iter().any(|o| o.key == h.key) {
            return Err(StoreError::Rejected(format!("the counter {:?} is named twice in one hit", h.key)));
        }
    }
    if hits.is_empty() || hits.len() > MAX_HITS {
        return Err(StoreError::Rejected(format!("a hit counts 1 to {MAX_HITS} counters")));
    }
    Ok(())
}

/// Most counters one [`CacheStore::hit_all`] takes (DynamoDB's transaction holds 100 items).
pub const MAX_HITS: usize = 25;

/// A single-use value as one taker finds it ([`CacheStore::get_once`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Once {
    /// Live and not taken.
    Open(Value),
    /// Taken by this same mark at `at` (an earlier attempt of the same request whose answer was a
    /// failure, or lost), and kept for that request's repeats until the take's keep time.
    Taken { value: Value, at: Timestamp },
}

impl Once {
    pub fn value(&self) -> &Value {
        match self {
            Self::Open(v) | Self::Taken { value: v, .. } => v,
        }
    }

    /// Whether this is the same request's own earlier take.
    pub fn is_repeat(&self) -> bool {
        matches!(self, Self::Taken { .. })
    }
}

/// Store of cached values: any JSON value; integers are counters that [`CacheStore::increment`]
/// updates atomically. `expires_at = None` keeps a value until it is forgotten.
#[async_trait]
pub trait CacheStore: Send + Sync {
    /// The live value; `None` when absent or expired.
    async fn get(&self, key: &str) -> StoreResult<Option<Value>>;
    /// Live values for several keys, in the order asked.
    async fn many(&self, keys: &[String]) -> StoreResult<Vec<Option<Value>>>;
    /// Stores the value, replacing any other.
    async fn put(&self, key: &str, value: &Value, expires_at: Option<Timestamp>) -> StoreResult<()>;
    /// Stores the value only if the key is absent or expired. `true` when it stored.
    async fn add(&self, key: &str, value: &Value, expires_at: Option<Timestamp>) -> StoreResult<bool>;
    /// Adds `by` (may be negative) to an integer value, atomically, and returns the new value. An
    /// absent or expired key starts from 0 and never expires (keep the expiry with [`CacheStore::add`]
    /// first). A non-integer value is `Err(Conflict)`.
    async fn increment(&self, key: &str, by: i64) -> StoreResult<i64>;
    /// Counts one hit in each counter, or in none: when any counter already holds its `max`
    /// hits, nothing is counted ([`Hits::Full`]). One atomic step for all of them, so N concurrent
    /// callers let at most `max` through any counter. A counter starts at 0 with its first hit,
    /// which sets its expiry to `window_end`; once expired it refuses nothing, so a key names one
    /// window and is not hit again after it (a later window is a new key). Keys must differ and
    /// hold nothing but counters.
    async fn hit_all(&self, hits: &[Hit<'_>]) -> StoreResult<Hits>;
    /// Removes the key. `true` when a live value was there.
    async fn forget(&self, key: &str) -> StoreResult<bool>;
    /// The single-use value at `key` as the taker `mark` finds it: open, taken by `mark` itself,
    /// or `None` when absent, expired or taken by another mark. A taken value is absent to every
    /// other read ([`CacheStore::get`], [`CacheStore::many`]).
    async fn get_once(&self, key: &str, mark: &str) -> StoreResult<Option<Once>>;
    /// Takes the live value at `key` for `mark`, atomically: of two takers with different marks
    /// one wins. Instead of being removed it is marked taken and kept, for `mark` alone, until
    /// `keep_until` (set by the first take, never moved by a repeat), so a repeat of the same
    /// taker passes again: the store's own retry of a take whose answer was lost, or the same
    /// request asked again after it failed. Returns when the value was first taken; `None` when
    /// it is absent, expired or taken by another mark.
    async fn take_once(&self, key: &str, mark: &str, keep_until: Timestamp) -> StoreResult<Option<Timestamp>>;
}

/// The single-use values one request took ([`CacheStore::take_once`]). Once the request has done
/// what they allowed, [`Taken::close`] forgets them, so the same request asked again after its
/// success is refused like any other replay; until then (a failure after the take) it passes
/// the take again.
#[derive(Debug, Default)]
#[must_use = "close it once the request has done what the take allowed"]
pub struct Taken(Vec<String>);

impl Taken {
    pub fn of(key: impl Into<String>) -> Self {
        Self(vec![key.into()])
    }

    /// These and `other`'s.
    pub fn and(mut self, other: Taken) -> Self {
        self.0.extend(other.0);
        self
    }

    /// Forgets the values, best effort: what they allowed is done, so a failure here is logged,
    /// not answered (a value left is refused to every other taker and expires at its keep time).
    pub async fn close(self, cache: &dyn CacheStore) {
        for key in self.0 {
            if let Err(e) = cache.forget(&key).await {
                tracing::warn!(event = "taken_value_not_closed", error = %e);
            }
        }
    }
}

/// Subtracts `by`, see [`CacheStore::increment`].
pub async fn decrement(cache: &dyn CacheStore, key: &str, by: i64) -> StoreResult<i64> {
    cache.increment(key, -by).await
}

/// The cached value, or computes, stores and returns it (Laravel's `Cache::remember`).
pub async fn remember<F, Fut, E>(
    cache: &dyn CacheStore,
    key: &str,
    expires_at: Option<Timestamp>,
    compute: F,
) -> Result<Value, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Value, E>>,
    E: From<StoreError>,
{
    if let Some(v) = cache.get(key).await? {
        return Ok(v);
    }
    let v = compute().await?;
    cache.put(key, &v, expires_at).await?;
    Ok(v)
}
