//! The `cache` table: Laravel's cache repository on a key-value store with expiry.

use crate::clock::Timestamp;
use crate::error::{StoreError, StoreResult};
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
    /// first, as a rate limiter does). A non-integer value is `Err(Conflict)`.
    async fn increment(&self, key: &str, by: i64) -> StoreResult<i64>;
    /// Counts one hit in the window that `key` names: adds 1 to a live counter, or starts one at 1
    /// that expires at `window_end` when there is none live — atomically, in one step where the
    /// backend allows. Returns the count after this hit and when the window ends. A rate limiter
    /// decides on the returned count, so concurrent attempts cannot all pass one check.
    async fn hit(&self, key: &str, window_end: Timestamp) -> StoreResult<(i64, Timestamp)>;
    /// Removes the key. `true` when a live value was there.
    async fn forget(&self, key: &str) -> StoreResult<bool>;
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
