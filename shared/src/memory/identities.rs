//! The in-memory `identities` table: every write judged under the table's mutex, as DynamoDB's
//! conditions judge it.

use super::table::Table;
use super::users::MemoryUsers;
use crate::tables::identities::{Identity, IdentityStore, Linked, check_key, identity_key};
use crate::tables::users::{EventMark, Marks, UserId};
use crate::values::clock::Timestamp;
use crate::values::error::{StoreError, StoreResult};
use async_trait::async_trait;
use std::sync::Arc;

/// Identities never expire: no clock. By key (`<provider>#<subject>`).
pub struct MemoryIdentities {
    rows: Table<String, Identity>,
    /// An announced link or unlink numbers its events on the user.
    users: Arc<MemoryUsers>,
}

impl MemoryIdentities {
    pub fn new(users: Arc<MemoryUsers>) -> Self {
        Self { rows: Table::default(), users }
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

    async fn link_noting(&self, identity: &Identity, events: &[EventMark]) -> StoreResult<Linked> {
        check_key(&identity.provider, &identity.subject)?;
        let mut users = self.users.by_id.lock();
        let mut rows = self.rows.lock();
        if let Some(held) = rows.get(&identity.key()) {
            return Ok(Linked::Already(held.clone()));
        }
        if !events.is_empty() {
            let u = users
                .get_mut(&identity.user_id)
                .ok_or_else(|| StoreError::Conflict("identities: the user is gone".into()))?;
            super::users::mark(u, Marks::default().and_events(events));
        }
        rows.insert(identity.key(), identity.clone());
        Ok(Linked::New)
    }

    async fn unlink_noting(
        &self,
        provider: &str,
        subject: &str,
        user: &UserId,
        events: &[EventMark],
    ) -> StoreResult<bool> {
        check_key(provider, subject)?;
        let key = identity_key(provider, subject);
        let mut users = self.users.by_id.lock();
        let mut rows = self.rows.lock();
        if rows.get(&key).is_some_and(|i| i.user_id == *user) {
            rows.remove(&key);
            if let Some(u) = users.get_mut(user) {
                super::users::mark(u, Marks::default().and_events(events));
            }
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
