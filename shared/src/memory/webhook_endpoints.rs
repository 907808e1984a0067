//! The in-memory `webhook_endpoints` table: every write judged under the table's mutex, as
//! DynamoDB's conditions judge it.

use super::table::Table;
use crate::tables::webhook_endpoints::{SealedSecret, WebhookEndpoint, WebhookEndpointId, WebhookEndpointStore};
use crate::values::clock::Timestamp;
use crate::values::error::{StoreError, StoreResult};
use async_trait::async_trait;

/// Endpoints never expire: no clock.
#[derive(Default)]
pub struct MemoryWebhookEndpoints {
    rows: Table<WebhookEndpointId, WebhookEndpoint>,
}

impl MemoryWebhookEndpoints {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl WebhookEndpointStore for MemoryWebhookEndpoints {
    async fn create(&self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        let mut rows = self.rows.lock();
        match rows.get(&endpoint.id) {
            Some(e) if e == endpoint => Ok(()),
            Some(_) => Err(StoreError::Conflict(format!("webhook endpoint {} already exists", endpoint.id))),
            None => {
                rows.insert(endpoint.id.clone(), endpoint.clone());
                Ok(())
            }
        }
    }

    async fn get(&self, id: &WebhookEndpointId) -> StoreResult<Option<WebhookEndpoint>> {
        Ok(self.rows.lock().get(id).cloned())
    }

    async fn list(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        let mut all: Vec<WebhookEndpoint> = self.rows.lock().values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    async fn replace_secrets(
        &self,
        id: &WebhookEndpointId,
        expected: u64,
        secrets: &[SealedSecret],
    ) -> StoreResult<bool> {
        Ok(match self.rows.lock().get_mut(id) {
            Some(e) if e.version == expected => {
                e.secrets = secrets.to_vec();
                e.version = expected + 1;
                true
            }
            _ => false,
        })
    }

    async fn set_disabled(&self, id: &WebhookEndpointId, at: Option<Timestamp>) -> StoreResult<bool> {
        Ok(match self.rows.lock().get_mut(id) {
            Some(e) => {
                e.disabled_at = at;
                true
            }
            None => false,
        })
    }

    async fn remove(&self, id: &WebhookEndpointId) -> StoreResult<bool> {
        Ok(self.rows.lock().remove(id).is_some())
    }
}
