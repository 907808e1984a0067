//! The in-memory `oauth_clients` table.

use super::table::Table;
use crate::tables::oauth_clients::{ClientId, OAuthClient, OAuthClientStore, PreviousSecret};
use crate::values::error::{StoreError, StoreResult};
use async_trait::async_trait;

/// Clients never expire: no clock.
#[derive(Default)]
pub struct MemoryOAuthClients {
    rows: Table<ClientId, OAuthClient>,
}

impl MemoryOAuthClients {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl OAuthClientStore for MemoryOAuthClients {
    async fn create(&self, client: &OAuthClient) -> StoreResult<()> {
        let mut rows = self.rows.lock();
        // The very same client is this write again (a retry), as DynamoDB tells it.
        if let Some(c) = rows.get(&client.id) {
            if c == client {
                return Ok(());
            }
            return Err(StoreError::Conflict(format!("oauth client {} already exists", client.id)));
        }
        rows.insert(client.id.clone(), client.clone());
        Ok(())
    }

    async fn find(&self, id: &ClientId) -> StoreResult<Option<OAuthClient>> {
        Ok(self.rows.lock().get(id).cloned())
    }

    async fn list(&self) -> StoreResult<Vec<OAuthClient>> {
        let mut all: Vec<OAuthClient> = self.rows.lock().values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    async fn rotate_secret(&self, id: &ClientId, hash: &str, previous: Option<&PreviousSecret>) -> StoreResult<bool> {
        Ok(match self.rows.lock().get_mut(id) {
            Some(c) if !c.is_public() && !c.revoked => {
                c.secret_hash = Some(hash.to_owned());
                c.previous_secret = previous.cloned();
                true
            }
            _ => false,
        })
    }

    async fn revoke(&self, id: &ClientId) -> StoreResult<bool> {
        Ok(match self.rows.lock().get_mut(id) {
            Some(c) => {
                c.revoked = true;
                true
            }
            None => false,
        })
    }
}
