//! Cross-app sessions (seed 004): a short-lived, single-use handoff token minted in one app and
//! exchanged in another for a session there, with an audit record of every such session.

use crate::tables::sessions::SessionKey;
use crate::tables::users::UserId;
use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;

crate::random_secret!(
    /// The plaintext handoff token, 256 random bits. Stored only as its SHA-256.
    HandoffToken
);

impl HandoffToken {
    pub fn hash(&self) -> String {
        crate::values::secret::sha256_hex(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    pub token_hash: String,
    pub user_id: UserId,
    pub source_app: String,
    pub target_app: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    /// The user's credentials version the handoff was minted under (from its parent credential):
    /// the session it is exchanged for is issued only while the version still holds.
    pub credentials_version: u64,
    /// The session or token that minted it; revoking that revokes the exchanged session too.
    pub parent: Option<crate::tables::credential_ref::CredentialRef>,
    /// The minting token's abilities, which the exchanged session carries (`None`: minted by a
    /// session, whose user may do everything).
    pub abilities: Option<crate::tables::personal_access_tokens::Abilities>,
    /// The minting token's expiry, past which the exchanged session is no session.
    pub not_after: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossAppSession {
    pub id: String,
    pub user_id: UserId,
    pub source_app: String,
    pub target_app: String,
    /// The key of the session opened in the target app.
    pub session_key: SessionKey,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// Why it was revoked (`crate::tables::credentials::reasons`).
    pub revoked_reason: Option<String>,
    /// End of the audit record's retention (TTL).
    pub expires_at: Option<Timestamp>,
}

#[async_trait]
pub trait CrossAppSessionStore: Send + Sync {
    /// Deletes a handoff token (used or not). Revocation; harmless when absent.
    async fn delete_handoff(&self, token_hash: &str) -> StoreResult<()>;
    /// Marks the handoff used if it is live, unused and for `target_app`; returns it. One
    /// conditional write: of racing callers exactly one gets `Some`.
    async fn consume_handoff(&self, token_hash: &str, target_app: &str, now: Timestamp)
    -> StoreResult<Option<Handoff>>;
    async fn record_session(&self, session: &CrossAppSession) -> StoreResult<()>;
    async fn find_session(&self, id: &str) -> StoreResult<Option<CrossAppSession>>;
    /// Marks the session revoked (with `reason`) if `user` owns it and it is not revoked yet;
    /// returns it.
    async fn revoke_session(
        &self,
        id: &str,
        user: &UserId,
        now: Timestamp,
        reason: &str,
    ) -> StoreResult<Option<CrossAppSession>>;
    /// The user's cross-app sessions (audit trail), newest first.
    async fn list_for_user(&self, user: &UserId) -> StoreResult<Vec<CrossAppSession>>;
    /// For a deleted account: rewrites the user's audit records to carry `pseudonym` instead of
    /// the user id and drops their IP address and user agent. Returns how many it rewrote.
    async fn pseudonymize(&self, user: &UserId, pseudonym: &str) -> StoreResult<usize>;
}
