//! The in-memory `oauth_auth_codes` table.

use super::table::{SharedClock, Table};
use crate::tables::oauth_auth_codes::{AuthCodeRecord, CodeSpend, OAuthAuthCodeStore};
use crate::values::clock::Timestamp;
use crate::values::error::{StoreError, StoreResult};
use async_trait::async_trait;

pub struct MemoryOAuthAuthCodes {
    clock: SharedClock,
    /// Each code, and when it was spent once it was.
    rows: Table<String, (AuthCodeRecord, Option<Timestamp>)>,
}

impl MemoryOAuthAuthCodes {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }
}

#[async_trait]
impl OAuthAuthCodeStore for MemoryOAuthAuthCodes {
    async fn put(&self, record: &AuthCodeRecord) -> StoreResult<()> {
        let now = self.clock.now();
        let mut rows = self.rows.lock();
        // An expired code is absent (TTL deletes it late), as the DynamoDB condition has it; the
        // very same code, unspent, is this write again (a retry), as DynamoDB tells it.
        if let Some((r, spent)) = rows.get(&record.code_hash)
            && r.expires_at > now
        {
            if r == record && spent.is_none() {
                return Ok(());
            }
            return Err(StoreError::Conflict("authorization code already exists".into()));
        }
        rows.insert(record.code_hash.clone(), (record.clone(), None));
        Ok(())
    }

    async fn spend(&self, code_hash: &str, now: Timestamp) -> StoreResult<CodeSpend> {
        Ok(match self.rows.lock().get_mut(code_hash) {
            Some((r, _)) if r.expires_at <= now => CodeSpend::Unknown,
            Some((r, Some(_))) => CodeSpend::Replayed(r.clone()),
            Some((r, spent)) => {
                *spent = Some(now);
                CodeSpend::Spent(r.clone())
            }
            None => CodeSpend::Unknown,
        })
    }
}
