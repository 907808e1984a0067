//! The `sessions` table. A session id is a bearer secret: the store only ever sees its SHA-256
//! ([`SessionKey`]), so a leaked table hands out no live session.

use crate::tables::users::UserId;
use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;

/// The session id carried by the cookie: 256 random bits, URL-safe base64 (43 chars), then `.`
/// and the owner's user id (not a secret), so a check reads the session and its owner in one call
/// ([`SessionStore::find_with_owner`]). A bare 43-character value (issued before ids named their
/// owner) is still an id, with no owner named. Anything else is rejected before any read. Only
/// the random part is hashed into the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);
crate::redacted_debug!(SessionId);

impl SessionId {
    /// A new id naming `owner`.
    pub fn generate_for(owner: &UserId) -> Self {
        Self(format!("{}.{owner}", crate::values::secret::random_token_256()))
    }

    /// A new id naming no owner (a guest's).
    pub fn generate() -> Self {
        Self(crate::values::secret::random_token_256())
    }

    pub fn parse(s: &str) -> Option<Self> {
        let (secret, owner) = match s.split_once('.') {
            Some((secret, owner)) => (secret, Some(owner)),
            None => (s, None),
        };
        // The owner only in the canonical form a user id is written in: one id, one string.
        let canonical = owner.is_none_or(|o| UserId::parse(o).is_some_and(|u| u.as_str() == o));
        (crate::values::secret::is_token_256(secret) && canonical).then(|| Self(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The user the id names (`None` for an id from before ids named their owner).
    pub fn owner(&self) -> Option<UserId> {
        self.0.split_once('.').map(|(_, o)| UserId::from_stored(o.to_owned()))
    }

    pub fn key(&self) -> SessionKey {
        let secret = self.0.split_once('.').map_or(self.0.as_str(), |(s, _)| s);
        SessionKey(crate::values::secret::sha256_hex(secret))
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
    pub parent: Option<crate::tables::credential_ref::CredentialRef>,
    /// When the password was last confirmed in this session (`POST /user/confirm-password`;
    /// signing in is no confirmation).
    pub password_confirmed_at: Option<Timestamp>,
    /// Whether the user's address was verified: stamped at issue and refreshed when the user
    /// verifies, so routes that require it need no user read. `None` on sessions issued before
    /// sessions carried it (a route requiring it then reads the user).
    pub email_verified: Option<bool>,
    /// What a derived session may do: the abilities of the token its handoff came from. `None`:
    /// everything its user may (a session of the user's own, or one derived from a session).
    pub abilities: Option<crate::tables::personal_access_tokens::Abilities>,
    /// When a derived session stops, whatever its activity: its parent token's expiry.
    pub not_after: Option<Timestamp>,
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
    /// [`SessionStore::find`] and the state of `owner` (the user the cookie names; `None` when no
    /// such user is left), both read consistently in one call: the check's one read.
    async fn find_with_owner(
        &self,
        key: &SessionKey,
        owner: &UserId,
    ) -> StoreResult<(Option<SessionRecord>, Option<crate::tables::users::OwnerState>)>;
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
    /// fresh write: revocation goes through [`crate::services::revocation::revoke`]). Returns how many.
    async fn delete_for_user(&self, user: &UserId, keep: Option<&SessionKey>) -> StoreResult<usize>;
}
/// The register's name for a session.
impl crate::tables::credential_ref::CredentialRef {
    pub fn session(key: &SessionKey) -> Self {
        Self { kind: crate::tables::credential_ref::CredentialKind::Session, key: key.as_str().to_owned() }
    }
}
