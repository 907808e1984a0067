//! The `sessions` table. A session id is a bearer secret: the store only ever sees its SHA-256
//! ([`SessionKey`]), so a leaked table hands out no live session.

use crate::clock::Timestamp;
use crate::error::StoreResult;
use crate::users::UserId;
use async_trait::async_trait;

/// The secret session id carried by the cookie: 256 random bits, URL-safe base64 (43 chars).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);
crate::redacted_debug!(SessionId);

impl SessionId {
    pub fn generate() -> Self {
        Self(crate::secret::random_token_256())
    }
    /// Parses a cookie value; anything that is not of the id's shape is rejected before any read.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            .then(|| Self(s.to_owned()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn key(&self) -> SessionKey {
        SessionKey(crate::secret::sha256_hex(&self.0))
    }
}

/// SHA-256 (hex) of a session id: the session's key in the store, safe to log in part.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey(String);

impl SessionKey {
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The first 8 hex characters: enough to tell sessions apart in a list, useless to an attacker.
    pub fn hint(&self) -> &str {
        &self.0[..self.0.len().min(8)]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub key: SessionKey,
    pub user_id: Option<UserId>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// Session data (Laravel's `payload`), JSON.
    pub payload: serde_json::Value,
    pub last_activity: Timestamp,
    pub created_at: Timestamp,
    /// When the session stops being valid: the sooner of idle and absolute expiry. Also the TTL.
    pub expires_at: Timestamp,
    /// The app the session belongs to (cross-app sessions); `None` for this app's own.
    pub app: Option<String>,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Inserts or replaces the session with this key.
    async fn put(&self, session: &SessionRecord) -> StoreResult<()>;
    /// The live session with this key (consistent read); `None` when absent or expired.
    async fn find(&self, key: &SessionKey) -> StoreResult<Option<SessionRecord>>;
    /// Records activity: sets `last_activity = now` and `expires_at`, but only when the session is
    /// live and its `last_activity` is at or before `stale_before` (so a busy session is written
    /// at most once per interval). `true` when it wrote.
    async fn touch(
        &self,
        key: &SessionKey,
        now: Timestamp,
        expires_at: Timestamp,
        stale_before: Timestamp,
    ) -> StoreResult<bool>;
    /// Deletes the session. `true` when it existed (expired or not).
    async fn delete(&self, key: &SessionKey) -> StoreResult<bool>;
    /// The user's live sessions, most recently active first (through an index: may lag writes by
    /// a moment).
    async fn list_for_user(&self, user: &UserId) -> StoreResult<Vec<SessionRecord>>;
    /// Deletes every session of the user but `keep`. Returns how many it deleted.
    async fn delete_for_user(&self, user: &UserId, keep: Option<&SessionKey>) -> StoreResult<usize>;
}
