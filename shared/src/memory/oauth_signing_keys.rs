//! The in-memory `oauth_signing_keys` table.

use super::table::{SharedClock, Table};
use crate::tables::oauth_signing_keys::{OAuthSigningKeyStore, SigningKeyRecord};
use crate::values::clock::Timestamp;
use crate::values::error::{StoreError, StoreResult};
use async_trait::async_trait;

pub struct MemoryOAuthSigningKeys {
    clock: SharedClock,
    rows: Table<String, SigningKeyRecord>,
}

impl MemoryOAuthSigningKeys {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }
}

#[async_trait]
impl OAuthSigningKeyStore for MemoryOAuthSigningKeys {
    async fn list(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let now = self.clock.now();
        let mut keys: Vec<SigningKeyRecord> =
            self.rows.lock().values().filter(|k| k.expires_at.is_none_or(|e| e > now)).cloned().collect();
        keys.sort_by(|a, b| (a.activates_at, &a.kid).cmp(&(b.activates_at, &b.kid)));
        Ok(keys)
    }

    async fn add(&self, record: &SigningKeyRecord, retire: &[(String, Timestamp)]) -> StoreResult<()> {
        let mut rows = self.rows.lock();
        if rows.contains_key(&record.kid) || retire.iter().any(|(kid, _)| !rows.contains_key(kid)) {
            return Err(StoreError::Conflict("signing key kid already exists, or a retired key is gone".into()));
        }
        for (kid, at) in retire {
            if let Some(k) = rows.get_mut(kid) {
                k.expires_at = Some(*at);
            }
        }
        rows.insert(record.kid.clone(), record.clone());
        Ok(())
    }
}
