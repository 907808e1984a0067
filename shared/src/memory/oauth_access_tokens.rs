//! The in-memory `oauth_access_tokens` table.

use super::table::{SharedClock, Table};
use crate::tables::oauth_access_tokens::{AccessTokenRecord, OAuthAccessTokenStore};
use crate::values::error::{StoreError, StoreResult};
use async_trait::async_trait;

pub struct MemoryOAuthAccessTokens {
    clock: SharedClock,
    rows: Table<String, AccessTokenRecord>,
}

impl MemoryOAuthAccessTokens {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }
}

#[async_trait]
impl OAuthAccessTokenStore for MemoryOAuthAccessTokens {
    async fn put(&self, record: &AccessTokenRecord) -> StoreResult<()> {
        let now = self.clock.now();
        let mut rows = self.rows.lock();
        // Expired is absent; the very same record is this write again (a retry).
        if let Some(r) = rows.get(&record.jti)
            && r.expires_at > now
        {
            if r == record {
                return Ok(());
            }
            return Err(StoreError::Conflict("access token jti already exists".into()));
        }
        rows.insert(record.jti.clone(), record.clone());
        Ok(())
    }

    async fn find(&self, jti: &str) -> StoreResult<Option<AccessTokenRecord>> {
        let now = self.clock.now();
        Ok(self.rows.lock().get(jti).filter(|r| r.expires_at > now).cloned())
    }

    async fn delete(&self, jti: &str) -> StoreResult<()> {
        self.rows.lock().remove(jti);
        Ok(())
    }
}
