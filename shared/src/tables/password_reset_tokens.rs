//! The `password_reset_tokens` table: at most one live token per email, stored as a hash.

use crate::values::clock::Timestamp;
use crate::values::email::Email;
use crate::values::error::StoreResult;
use async_trait::async_trait;

/// A reset token as mailed: 256 random bits, 64 hex characters. Never stored, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainResetToken(String);
crate::redacted_debug!(PlainResetToken);

impl PlainResetToken {
    pub fn generate() -> Self {
        Self(hex::encode(crate::values::secret::random_bytes::<32>()))
    }
    /// The token made of a 256-bit MAC (a job's own token: `PasswordBroker`'s `job_token`).
    pub fn from_mac(mac: &[u8]) -> Self {
        Self(hex::encode(mac))
    }
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Self(s.to_ascii_lowercase()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn hash(&self) -> String {
        crate::values::secret::sha256_hex(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRecord {
    /// The normalised email; the table's key.
    pub email: Email,
    pub token_hash: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The mark a spend of a token leaves on it (random; never shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendMark(pub String);

/// A spent token ([`PasswordResetTokenStore::find_spent`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpentReset {
    pub token_hash: String,
    pub spent_at: Timestamp,
    /// The spend's mark: what gives this spend back ([`PasswordResetTokenStore::restore`]).
    pub mark: SpendMark,
    /// The user's credentials version when it was spent.
    pub version: u64,
}

#[async_trait]
pub trait PasswordResetTokenStore: Send + Sync {
    /// Stores `record`, replacing any older token for the email, unless a live token for it was
    /// created after `throttle_since` (then nothing is written and the answer is `false`). The
    /// check and the write are one conditional write, so two racing requests mint one token. A
    /// stored token with `record`'s own hash is no throttle: that is this very write, retried.
    async fn put_unless_throttled(&self, record: &ResetRecord, throttle_since: Timestamp) -> StoreResult<bool>;
    /// The live token record for the email; `None` when absent or expired.
    async fn find(&self, email: &Email) -> StoreResult<Option<ResetRecord>>;
    /// Spends the email's token if and only if it is live, unspent and its hash is `token_hash`:
    /// the atomic, single-use consumption, marked with the spend's own mark (returned) and time.
    /// `Some` for exactly one of any number of racing callers.
    /// `version` is the user's credentials version the spend was made under (recorded with it).
    async fn consume(
        &self,
        email: &Email,
        token_hash: &str,
        now: Timestamp,
        version: u64,
    ) -> StoreResult<Option<SpendMark>>;
    /// Makes a token spent by `spend`, a reset that then could not change the password, usable
    /// again, so the client's retry of that reset can finish it (the link is neither spent for
    /// nothing nor usable twice: it is spent again by the retry). Only while the token is still
    /// spent by that very spend: a give-back landing late, after a retry spent the token again
    /// and changed the password, finds another mark and gives nothing back.
    async fn restore(&self, email: &Email, spend: &SpendMark) -> StoreResult<()>;
    /// The email's token as spent (not expired), and when: what a retry of the reset that spent
    /// it is recognised by ([`crate::services::password_broker::PasswordBroker::reset`]).
    async fn find_spent(&self, email: &Email) -> StoreResult<Option<SpentReset>>;
    /// Deletes the email's token, whatever it is.
    async fn delete(&self, email: &Email) -> StoreResult<()>;
}
