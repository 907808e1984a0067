//! The `sessions` table. A session id is a bearer secret: the store only ever sees its SHA-256
//! ([`SessionKey`]), so a leaked table hands out no live session.

use crate::clock::Timestamp;
use crate::error::StoreResult;
use crate::users::UserId;
use async_trait::async_trait;

crate::random_secret!(
    /// The secret session id carried by the cookie: 256 random bits, URL-safe base64 (43 chars).
    /// A cookie value not of that shape is rejected before any read.
    SessionId
);

impl SessionId {
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
    /// The app the session belongs to; only that app accepts it. `None` on sessions from before
    /// apps were recorded (accepted by the app that reads them).
    pub app: Option<String>,
    /// The user's credentials version this session was issued under: what it may derive
    /// (tokens, handoffs) is issued only while that version holds.
    pub credentials_version: u64,
    /// The credential it was derived from (a cross-app session's handoff's parent).
    pub parent: Option<crate::credentials::CredentialRef>,
    /// When the password was last confirmed in this session (login counts).
    pub password_confirmed_at: Option<Timestamp>,
    /// Whether the user's address was verified: stamped at issue and refreshed when the user
    /// verifies, so routes that require it need no user read. `None` on sessions issued before
    /// sessions carried it (a route requiring it then reads the user).
    pub email_verified: Option<bool>,
}

impl SessionRecord {
    /// Whether "remember me" was asked for at login.
    pub fn remember(&self) -> bool {
        self.payload.get("remember").and_then(serde_json::Value::as_bool).unwrap_or(false)
    }
}

#[async_trait]
pub trait SessionStore: Send + Sync {
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
    /// Records a password confirmation on a live session. `false` when it is absent or expired.
    async fn confirm_password(&self, key: &SessionKey, now: Timestamp) -> StoreResult<bool>;
    /// Records that the user's address is verified, on a live session. `false` when it is absent
    /// or expired.
    async fn mark_verified(&self, key: &SessionKey) -> StoreResult<bool>;
    /// Deletes the session. `true` when it existed (expired or not).
    async fn delete(&self, key: &SessionKey) -> StoreResult<bool>;
    /// The user's live sessions, most recently active first (through an index: may lag writes by
    /// a moment).
    async fn list_for_user(&self, user: &UserId) -> StoreResult<Vec<SessionRecord>>;
    /// Deletes every session of the user but `keep`, as the index lists them (which may lag a
    /// fresh write: revocation goes through [`crate::credentials::revoke`]). Returns how many.
    async fn delete_for_user(&self, user: &UserId, keep: Option<&SessionKey>) -> StoreResult<usize>;
}
