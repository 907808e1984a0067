//! The `identities` table (Socialstream's `connected_accounts`): which user an account at a sign-in
//! provider belongs to, (provider, subject) → user. One provider subject belongs to one user:
//! [`IdentityStore::link`] is a conditional create that exactly one of any number of racing links
//! wins and that never overwrites, and [`IdentityStore::unlink`] and [`IdentityStore::touch`]
//! change an identity only while it still names the user the caller says.
//!
//! An identity is no credential of the register: it holds the user's credentials version at link
//! time, and whoever uses it compares that with the user's (a reset, a password change or "log out
//! other devices" ends it). It lives until unlinked (no TTL); deleting the account unlinks every
//! one ([`crate::services::account_deletion`]).
//!
//! The stores check the key themselves ([`check_key`]): a provider id is `[a-z0-9-]{1,32}`, a
//! subject 1 to 255 bytes without control characters; anything else is `Rejected`, whoever asks.

use crate::tables::users::{EventMark, UserId};
use crate::values::clock::Timestamp;
use crate::values::error::{StoreError, StoreResult};
use async_trait::async_trait;

/// The longest provider id, in bytes.
pub const MAX_PROVIDER_LEN: usize = 32;
/// The longest subject, in bytes.
pub const MAX_SUBJECT_LEN: usize = 255;

#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    /// The configured provider's id, e.g. `google`, `github` (`[a-z0-9-]{1,32}`).
    pub provider: String,
    /// The provider's stable id of the account (OIDC `sub`, GitHub's numeric id), ≤ 255 bytes.
    pub subject: String,
    pub user_id: UserId,
    /// The address the provider gave at link time (shown on the account page).
    pub email: Option<String>,
    /// The user's credentials version when linked: once the user's moves on, the identity has
    /// ended (checked on every use, like OAuth grants; a stale one is removed).
    pub credentials_version: u64,
    pub linked_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    /// The provider's tokens, sealed with `AppKey::seal`, only when configured to keep them.
    pub tokens: Option<String>,
}

impl Identity {
    /// The table's key: `<provider>#<subject>` (a provider id holds no `#`).
    pub fn key(&self) -> String {
        identity_key(&self.provider, &self.subject)
    }
}

/// Sealed, but still nobody's business in a log line.
impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("provider", &self.provider)
            .field("subject", &self.subject)
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("credentials_version", &self.credentials_version)
            .field("linked_at", &self.linked_at)
            .field("last_used_at", &self.last_used_at)
            .field("tokens", &self.tokens.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// What [`IdentityStore::link`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linked {
    /// Written: the subject is now the caller's user's.
    New,
    /// Not written: the subject was already linked, to the user this identity names (maybe the
    /// caller's own, maybe another: the caller compares user ids).
    Already(Identity),
}

/// The key of `provider`'s `subject`.
pub fn identity_key(provider: &str, subject: &str) -> String {
    format!("{provider}#{subject}")
}

/// Whether `provider` is a provider id: `[a-z0-9-]{1,32}`.
pub fn valid_provider(provider: &str) -> bool {
    (1..=MAX_PROVIDER_LEN).contains(&provider.len())
        && provider.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `subject` can be a provider's subject: 1 to 255 bytes, no control character.
pub fn valid_subject(subject: &str) -> bool {
    (1..=MAX_SUBJECT_LEN).contains(&subject.len()) && !subject.chars().any(char::is_control)
}

/// `Rejected` unless `provider` and `subject` are a valid key ([`valid_provider`],
/// [`valid_subject`]); neither is quoted back (a subject may be anything a provider sent).
pub fn check_key(provider: &str, subject: &str) -> StoreResult<()> {
    if !valid_provider(provider) {
        return Err(StoreError::Rejected("identities: a provider id is 1 to 32 of a-z, 0-9 and '-'".into()));
    }
    if !valid_subject(subject) {
        return Err(StoreError::Rejected("identities: a subject is 1 to 255 bytes without control characters".into()));
    }
    Ok(())
}

#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// The identity of `provider`'s `subject` (consistent read), if linked.
    async fn find(&self, provider: &str, subject: &str) -> StoreResult<Option<Identity>>;
    /// Every identity of the user, ordered by provider then subject. Read through an index on
    /// DynamoDB, so an identity linked a moment ago may be missing (eventually consistent). A
    /// user has a few: nothing bounds the list but the links the caller allows.
    async fn for_user(&self, user: &UserId) -> StoreResult<Vec<Identity>>;
    /// Conditional create: `Linked::New` when written, `Linked::Already(existing)` when
    /// (provider, subject) is already held, by anyone (the caller compares user ids). Never
    /// overwrites. A link whose answer was lost and that the SDK sent again is still `New`.
    async fn link(&self, identity: &Identity) -> StoreResult<Linked> {
        self.link_noting(identity, &[]).await
    }
    /// [`IdentityStore::link`], numbering `events` on the identity's user in the same atomic
    /// step (#32: `identity.linked`): only a link that is `New` numbers them, once. With events,
    /// a user that is gone is `Err(Conflict)`, and nothing is linked.
    async fn link_noting(&self, identity: &Identity, events: &[EventMark]) -> StoreResult<Linked>;
    /// Removes the identity only while it still names `user` (conditional): `true` when removed,
    /// `false` when it names another user or is not there (a removal whose answer was lost and
    /// that the SDK sent again finds it gone: `false`, and it is gone).
    async fn unlink(&self, provider: &str, subject: &str, user: &UserId) -> StoreResult<bool> {
        self.unlink_noting(provider, subject, user, &[]).await
    }
    /// [`IdentityStore::unlink`], numbering `events` on `user` in the same atomic step (#32:
    /// `identity.unlinked`), only when it removes the identity; the same removal sent again
    /// after it landed is `true` again and numbers nothing twice.
    async fn unlink_noting(
        &self,
        provider: &str,
        subject: &str,
        user: &UserId,
        events: &[EventMark],
    ) -> StoreResult<bool>;
    /// Records a use: `last_used_at = at`, and `tokens` when given (else the stored ones stay);
    /// only while the identity still names `user` (else nothing changes, and no error).
    async fn touch(
        &self,
        provider: &str,
        subject: &str,
        user: &UserId,
        at: Timestamp,
        tokens: Option<&str>,
    ) -> StoreResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_are_short_lower_case_words() {
        for ok in ["google", "github", "my-idp", "a", "x1", &"a".repeat(32)] {
            assert!(valid_provider(ok), "{ok}");
        }
        for bad in ["", "Google", "git hub", "a#b", "a_b", "é", &"a".repeat(33)] {
            assert!(!valid_provider(bad), "{bad}");
        }
    }

    #[test]
    fn subjects_are_short_and_printable() {
        for ok in ["1234567", "a#b|c", "AItOawmwtWwcT0k51BayewNvutrJUqsvl6qs7A4", &"é".repeat(127)] {
            assert!(valid_subject(ok), "{ok}");
        }
        for bad in ["", "a\nb", "a\0", "\u{7f}", &"a".repeat(256), &"é".repeat(128)] {
            assert!(!valid_subject(bad), "{bad:?}");
        }
        assert!(matches!(check_key("google", "a\nb"), Err(StoreError::Rejected(_))));
        assert!(matches!(check_key("Google", "1"), Err(StoreError::Rejected(_))));
        assert!(check_key("google", "1").is_ok());
    }

    #[test]
    fn sealed_tokens_do_not_leak_through_debug() {
        let i = Identity {
            provider: "github".into(),
            subject: "42".into(),
            user_id: UserId::generate(),
            email: None,
            credentials_version: 0,
            linked_at: chrono::Utc::now(),
            last_used_at: None,
            tokens: Some("sealed-ciphertext".into()),
        };
        assert!(!format!("{i:?}").contains("sealed-ciphertext"));
    }
}
