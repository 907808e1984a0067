//! The `oauth_access_tokens` table (Passport's `oauth_access_tokens`): one record per issued
//! access token (a JWT, RFC 9068), keyed by its `jti`, for introspection (RFC 7662) and
//! revocation (RFC 7009). The JWT itself is never stored. The record lives as long as the token
//! (TTL); a revoked token's record is deleted, so every check that reads it (introspection,
//! gatehouse's own authorizer) sees a revocation at once.

use crate::tables::oauth_clients::ClientId;
use crate::tables::users::UserId;
use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRecord {
    /// The JWT's `jti` (128 random bits, hex): the table's key.
    pub jti: String,
    pub client_id: ClientId,
    /// `None` for a client-credentials token (the client acts for itself).
    pub user_id: Option<UserId>,
    pub scopes: Vec<String>,
    /// The refresh-token family it was issued with, if any: revoking the family ends it too.
    pub family_id: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[async_trait]
pub trait OAuthAccessTokenStore: Send + Sync {
    /// Stores a new record; `Err(Conflict)` when the `jti` is taken.
    async fn put(&self, record: &AccessTokenRecord) -> StoreResult<()>;
    /// The live record (`None` when absent, revoked or expired).
    async fn find(&self, jti: &str) -> StoreResult<Option<AccessTokenRecord>>;
    /// Deletes the record (harmless when absent).
    async fn delete(&self, jti: &str) -> StoreResult<()>;
}
