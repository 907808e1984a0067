//! The `oauth_consents` table: which scopes a user approved for a client (user × client). A
//! consent is a credential of the register ([`crate::tables::credentials`],
//! `consent#<client>`): granted only under the user's current credentials version, revoked with
//! the user's other credentials (a reset, a password change, "log out other devices", turning on
//! a second factor, disabling or deleting the account), so the next authorization asks again.

use crate::tables::oauth_clients::ClientId;
use crate::tables::users::UserId;
use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub user_id: UserId,
    pub client_id: ClientId,
    /// The approved scopes, sorted, no duplicates.
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
}

impl Consent {
    /// Whether every scope of `asked` was approved.
    pub fn covers(&self, asked: &[String]) -> bool {
        asked.iter().all(|s| self.scopes.contains(s))
    }
}

#[async_trait]
pub trait OAuthConsentStore: Send + Sync {
    /// The user's consent for the client, if any.
    async fn find(&self, user: &UserId, client: &ClientId) -> StoreResult<Option<Consent>>;
    /// Every consent of the user (consistent read), ordered by client id.
    async fn list(&self, user: &UserId) -> StoreResult<Vec<Consent>>;
    /// Deletes the consent (harmless when absent).
    async fn delete(&self, user: &UserId, client: &ClientId) -> StoreResult<()>;
}
