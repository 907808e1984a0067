//! The in-memory `oauth_consents` table. A consent enters it only through the register
//! ([`super::MemoryCredentials`]).

use super::table::Table;
use crate::tables::oauth_clients::ClientId;
use crate::tables::oauth_consents::{Consent, OAuthConsentStore};
use crate::tables::users::UserId;
use crate::values::error::StoreResult;
use async_trait::async_trait;
use std::collections::BTreeMap;

/// Consents never expire: no clock. Each user's, by client id.
#[derive(Default)]
pub struct MemoryOAuthConsents {
    pub(super) rows: Table<UserId, BTreeMap<ClientId, Consent>>,
}

impl MemoryOAuthConsents {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl OAuthConsentStore for MemoryOAuthConsents {
    async fn find(&self, user: &UserId, client: &ClientId) -> StoreResult<Option<Consent>> {
        Ok(self.rows.lock().get(user).and_then(|m| m.get(client)).cloned())
    }

    async fn list(&self, user: &UserId) -> StoreResult<Vec<Consent>> {
        Ok(self.rows.lock().get(user).map(|m| m.values().cloned().collect()).unwrap_or_default())
    }

    async fn delete(&self, user: &UserId, client: &ClientId) -> StoreResult<()> {
        let mut rows = self.rows.lock();
        if let Some(m) = rows.get_mut(user) {
            m.remove(client);
            if m.is_empty() {
                rows.remove(user);
            }
        }
        Ok(())
    }
}
