//! The in-memory `personal access tokens` table.

use super::table::{SharedClock, Table, cursor_position, paginate};
use crate::tables::personal_access_tokens::{PersonalAccessToken, PersonalAccessTokenStore, TokenId, Tokenable};
use crate::values::clock::{Timestamp, is_live};
use crate::values::error::StoreResult;
use crate::values::pagination::{Cursor, Page};
use async_trait::async_trait;

pub struct MemoryPersonalAccessTokens {
    clock: SharedClock,
    pub(super) rows: Table<TokenId, PersonalAccessToken>,
    /// The users table, for [`PersonalAccessTokenStore::find_with_owner`].
    owners: Option<std::sync::Arc<super::users::MemoryUsers>>,
}

impl MemoryPersonalAccessTokens {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default(), owners: None }
    }

    /// Reads owners from `users` (without it, every owner is absent).
    pub fn with_owners(self, users: std::sync::Arc<super::users::MemoryUsers>) -> Self {
        Self { owners: Some(users), ..self }
    }
}

#[async_trait]
impl PersonalAccessTokenStore for MemoryPersonalAccessTokens {
    async fn find_with_owner(
        &self,
        id: &TokenId,
        owner: &crate::tables::users::UserId,
    ) -> StoreResult<(Option<PersonalAccessToken>, Option<crate::tables::users::OwnerState>)> {
        let state = self.owners.as_ref().and_then(|u| u.owner_state(owner));
        Ok((self.find(id).await?, state))
    }

    async fn find(&self, id: &TokenId) -> StoreResult<Option<PersonalAccessToken>> {
        let now = self.clock.now();
        Ok(self.rows.lock().get(id).filter(|t| is_live(t.expires_at, now)).cloned())
    }

    async fn touch_last_used(&self, id: &TokenId, now: Timestamp, stale_before: Timestamp) -> StoreResult<bool> {
        let live_now = self.clock.now();
        Ok(match self.rows.lock().get_mut(id) {
            Some(t) if is_live(t.expires_at, live_now) && t.last_used_at.is_none_or(|l| l <= stale_before) => {
                t.last_used_at = Some(now);
                true
            }
            _ => false,
        })
    }

    async fn mark_verified(&self, id: &TokenId) -> StoreResult<bool> {
        let now = self.clock.now();
        Ok(match self.rows.lock().get_mut(id) {
            Some(t) if is_live(t.expires_at, now) => {
                t.email_verified = Some(true);
                true
            }
            _ => false,
        })
    }

    async fn extend(&self, id: &TokenId, expires_at: Timestamp) -> StoreResult<bool> {
        let now = self.clock.now();
        Ok(match self.rows.lock().get_mut(id) {
            Some(t) if is_live(t.expires_at, now) => {
                t.expires_at = Some(expires_at);
                true
            }
            _ => false,
        })
    }

    async fn delete_owned(&self, id: &TokenId, owner: &Tokenable) -> StoreResult<bool> {
        let mut t = self.rows.lock();
        if t.get(id).is_some_and(|tok| &tok.tokenable == owner) {
            t.remove(id);
            return Ok(true);
        }
        Ok(false)
    }

    async fn list_for(
        &self,
        owner: &Tokenable,
        limit: usize,
        after: Option<&Cursor>,
    ) -> StoreResult<Page<PersonalAccessToken>> {
        let now = self.clock.now();
        let mut all: Vec<_> = self
            .rows
            .lock()
            .values()
            .filter(|t| &t.tokenable == owner && is_live(t.expires_at, now))
            .cloned()
            .collect();
        // Ids are UUIDv7: newest first is descending id order.
        all.sort_by(|a, b| b.id.cmp(&a.id));
        let start_after = cursor_position(after, "id")?;
        Ok(paginate(all, limit, |t| t.id.as_str().to_owned(), start_after, |id| serde_json::json!({ "id": id })))
    }

    async fn delete_all_for(&self, owner: &Tokenable) -> StoreResult<usize> {
        let mut t = self.rows.lock();
        let before = t.len();
        t.retain(|_, tok| &tok.tokenable != owner);
        Ok(before - t.len())
    }
}
