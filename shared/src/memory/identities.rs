//! The in-memory `identities` table: every write judged under the table's mutex, as DynamoDB's
//! conditions judge it.

use super::table::Table;
use crate::tables::identities::{Identity, IdentityStore, Linked, check_key, identity_key};
use crate::tables::users::UserId;
use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;

/// Identities never expire: no clock. By key (`<provider>#<subject>`).
#[derive(Default)]
pub struct MemoryIdentities {
    rows: Table<String, Identity>,
}

impl MemoryIdentities {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl IdentityStore for MemoryIdentities {
    async fn find(&self, provider: &str, subject: &str) -> StoreResult<Option<Identity>> {
        check_key(provider, subject)?;
        Ok(self.rows.lock().get(&identity_key(provider, subject)).cloned())
    }

    async fn for_user(&self, user: &UserId) -> StoreResult<Vec<Identity>> {
        let mut out: Vec<Identity> = self.rows.lock().values().filter(|i| i.user_id == *user).cloned().collect();
        out.sort_by(|a, b| (&a.provider, &a.subject).cmp(&(&b.provider, &b.subject)));
        Ok(out)
    }

    async fn link(&self, identity: &Identity) -> StoreResult<Linked> {
        check_key(&identity.provider, &identity.subject)?;
        let mut rows = self.rows.lock();
        if let Some(held) = rows.get(&identity.key()) {
            return Ok(Linked::Already(held.clone()));
        }
        rows.insert(identity.key(), identity.clone());
        Ok(Linked::New)
    }

    async fn unlink(&self, provider: &str, subject: &str, user: &UserId) -> StoreResult<bool> {
        check_key(provider, subject)?;
        let key = identity_key(provider, subject);
        let mut rows = self.rows.lock();
        if rows.get(&key).is_some_and(|i| i.user_id == *user) {
            rows.remove(&key);
            return Ok(true);
        }
        Ok(false)
    }

    async fn touch(
        &self,
        provider: &str,
        subject: &str,
        user: &UserId,
        at: Timestamp,
        tokens: Option<&str>,
    ) -> StoreResult<()> {
        check_key(provider, subject)?;
        if let Some(i) = self.rows.lock().get_mut(&identity_key(provider, subject)).filter(|i| i.user_id == *user) {
            i.last_used_at = Some(at);
            if let Some(t) = tokens {
                i.tokens = Some(t.to_owned());
            }
        }
        Ok(())
    }
}
