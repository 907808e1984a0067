//! The `users` table.

use crate::clock::Timestamp;
use crate::email::Email;
use crate::error::StoreResult;
use crate::password::PasswordHash;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A user id: a UUIDv7 string (time-ordered, not guessable from another user's id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
    /// Parses an id from outside (a path, a token context). Only UUIDs are ids.
    pub fn parse(s: &str) -> Option<Self> {
        uuid::Uuid::parse_str(s).ok().map(|u| Self(u.to_string()))
    }
    /// Wraps an id read from our own store.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Laravel's "remember me" token: 60 random characters, rotated on logout and password change.
#[derive(Clone, PartialEq, Eq)]
pub struct RememberToken(String);
crate::redacted_debug!(RememberToken);

impl RememberToken {
    pub fn generate() -> Self {
        Self(crate::secret::random_token_256())
    }
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub email: Email,
    pub email_verified_at: Option<Timestamp>,
    pub password_hash: PasswordHash,
    pub remember_token: Option<RememberToken>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Moves on whenever the password is reset or changed or other devices are logged out; every
    /// credential is issued conditionally on it (see [`crate::credentials`]). 0 for a new user.
    pub credentials_version: u64,
}

/// A change to a user's credentials, applied only if the credentials version is still the one
/// it was computed from (compare-and-swap): a stale hash is never written.
#[derive(Debug, Clone, Copy, Default)]
pub struct CredentialChange<'a> {
    /// The new password hash; `None` keeps the stored one.
    pub password: Option<&'a PasswordHash>,
    /// A new remember token; `None` keeps the stored one.
    pub remember_token: Option<&'a RememberToken>,
    /// Move the credentials version on, so nothing verified against the old state is issued.
    pub revoke: bool,
}

/// Store of users. Emails are unique case-insensitively ([`Email::normalized`]), enforced
/// atomically by the store, never by a read before a write.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts `user`. `Err(Conflict)` when another user has the same normalised email.
    async fn create(&self, user: &User) -> StoreResult<()>;
    /// The user with this id, read consistently.
    async fn find(&self, id: &UserId) -> StoreResult<Option<User>>;
    /// The user with this email (compared normalised), read consistently.
    async fn find_by_email(&self, email: &Email) -> StoreResult<Option<User>>;
    /// Applies `change` if the user exists and its credentials version is still `expected` (then
    /// `Some(the version now)`); `None` when the version moved on or the user is gone.
    async fn change_credentials(
        &self,
        id: &UserId,
        expected: u64,
        change: CredentialChange<'_>,
        now: Timestamp,
    ) -> StoreResult<Option<u64>>;
    /// Marks the email verified. `false` when the user does not exist.
    async fn mark_email_verified(&self, id: &UserId, now: Timestamp) -> StoreResult<bool>;
    /// Deletes the user and frees its email. `false` when it did not exist.
    async fn delete(&self, id: &UserId) -> StoreResult<bool>;
}
