//! The `cache_locks` table: mutual exclusion with an expiry, released only by its owner.

use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;
use std::time::Duration;

/// Who holds a lock: a random token the holder keeps to release it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOwner(String);

impl LockOwner {
    pub fn random() -> Self {
        Self(crate::values::secret::random_token_256()[..22].to_owned())
    }
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[async_trait]
pub trait CacheLockStore: Send + Sync {
    /// Takes the lock if it is free or expired, or already ours (which refreshes it). `true` when
    /// `owner` holds it afterwards. `expires_at = None` holds it until released.
    async fn acquire(&self, key: &str, owner: &LockOwner, expires_at: Option<Timestamp>) -> StoreResult<bool>;
    /// Moves the expiry of a lock `owner` still holds. `false` if it is not held by `owner`.
    async fn refresh(&self, key: &str, owner: &LockOwner, expires_at: Option<Timestamp>) -> StoreResult<bool>;
    /// Releases the lock if and only if `owner` holds it (one conditional delete). `true` when released.
    async fn release(&self, key: &str, owner: &LockOwner) -> StoreResult<bool>;
    /// Releases the lock whoever holds it.
    async fn force_release(&self, key: &str) -> StoreResult<()>;
    /// The current live owner, if any.
    async fn owner(&self, key: &str) -> StoreResult<Option<LockOwner>>;
}

/// Tries to acquire for up to `wait`, polling every `poll` (Laravel's `block`). `true` when acquired.
pub async fn acquire_blocking(
    locks: &dyn CacheLockStore,
    key: &str,
    owner: &LockOwner,
    expires_at: Option<Timestamp>,
    wait: Duration,
    poll: Duration,
) -> StoreResult<bool> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if locks.acquire(key, owner, expires_at).await? {
            return Ok(true);
        }
        if tokio::time::Instant::now() + poll > deadline {
            return Ok(false);
        }
        tokio::time::sleep(poll).await;
    }
}
