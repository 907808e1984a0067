//! The in-memory `sessions` table.

use super::table::{SharedClock, Table};
use crate::tables::sessions::{SessionKey, SessionRecord, SessionStore};
use crate::tables::users::UserId;
use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;

pub struct MemorySessions {
    pub(super) clock: SharedClock,
    pub(super) rows: Table<SessionKey, SessionRecord>,
    /// The users table, for [`SessionStore::find_with_owner`].
    owners: Option<std::sync::Arc<super::users::MemoryUsers>>,
}

impl MemorySessions {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default(), owners: None }
    }

    /// Reads owners from `users` (without it, every owner is absent).
    pub fn with_owners(self, users: std::sync::Arc<super::users::MemoryUsers>) -> Self {
        Self { owners: Some(users), ..self }
    }
}

#[async_trait]
impl SessionStore for MemorySessions {
    async fn find_with_owner(
        &self,
        key: &SessionKey,
        owner: &UserId,
    ) -> StoreResult<(Option<SessionRecord>, Option<crate::tables::users::OwnerState>)> {
        let state = self.owners.as_ref().and_then(|u| u.owner_state(owner));
        Ok((self.find(key).await?, state))
    }

    async fn confirm_password(&self, key: &SessionKey, now: Timestamp) -> StoreResult<bool> {
        let live_now = self.clock.now();
        Ok(match self.rows.lock().get_mut(key) {
            Some(s) if s.expires_at > live_now => {
                s.password_confirmed_at = Some(now);
                true
            }
            _ => false,
        })
    }

    async fn mark_verified(&self, key: &SessionKey) -> StoreResult<bool> {
        let live_now = self.clock.now();
        Ok(match self.rows.lock().get_mut(key) {
            Some(s) if s.expires_at > live_now => {
                s.email_verified = Some(true);
                true
            }
            _ => false,
        })
    }

    async fn find(&self, key: &SessionKey) -> StoreResult<Option<SessionRecord>> {
        let now = self.clock.now();
        Ok(self.rows.lock().get(key).filter(|s| s.expires_at > now).cloned())
    }

    async fn touch(
        &self,
        key: &SessionKey,
        now: Timestamp,
        expires_at: Timestamp,
        stale_before: Timestamp,
    ) -> StoreResult<bool> {
        let live_now = self.clock.now();
        Ok(match self.rows.lock().get_mut(key) {
            Some(s) if s.expires_at > live_now && s.last_activity <= stale_before => {
                s.last_activity = now;
                s.expires_at = expires_at;
                true
            }
            _ => false,
        })
    }

    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        Ok(self.rows.lock().remove(key).is_some())
    }

    async fn list_for_user(&self, user: &UserId) -> StoreResult<Vec<SessionRecord>> {
        let now = self.clock.now();
        let mut v: Vec<_> = self
            .rows
            .lock()
            .values()
            .filter(|s| s.user_id.as_ref() == Some(user) && s.expires_at > now)
            .cloned()
            .collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.last_activity));
        Ok(v)
    }

    async fn delete_for_user(&self, user: &UserId, keep: Option<&SessionKey>) -> StoreResult<usize> {
        let mut t = self.rows.lock();
        let before = t.len();
        t.retain(|k, s| s.user_id.as_ref() != Some(user) || Some(k) == keep);
        Ok(before - t.len())
    }
}
