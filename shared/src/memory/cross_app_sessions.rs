//! The in-memory `cross-app` table.

use super::table::{SharedClock, Table};
use crate::tables::cross_app_sessions::{CrossAppSession, CrossAppSessionStore, Handoff};
use crate::tables::users::UserId;
use crate::values::clock::{Timestamp, is_live};
use crate::values::error::StoreResult;
use async_trait::async_trait;

pub struct MemoryCrossAppSessions {
    clock: SharedClock,
    pub(super) handoffs: Table<String, Handoff>,
    sessions: Table<String, CrossAppSession>,
}

impl MemoryCrossAppSessions {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, handoffs: Table::default(), sessions: Table::default() }
    }
}

#[async_trait]
impl CrossAppSessionStore for MemoryCrossAppSessions {
    async fn delete_handoff(&self, token_hash: &str) -> StoreResult<()> {
        self.handoffs.lock().remove(token_hash);
        Ok(())
    }

    async fn consume_handoff(
        &self,
        token_hash: &str,
        target_app: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Handoff>> {
        Ok(match self.handoffs.lock().get_mut(token_hash) {
            Some(h) if h.used_at.is_none() && h.expires_at > now && h.target_app == target_app => {
                h.used_at = Some(now);
                Some(h.clone())
            }
            _ => None,
        })
    }

    async fn record_session(&self, session: &CrossAppSession) -> StoreResult<()> {
        self.sessions.lock().insert(session.id.clone(), session.clone());
        Ok(())
    }

    async fn find_session(&self, id: &str) -> StoreResult<Option<CrossAppSession>> {
        let now = self.clock.now();
        Ok(self.sessions.lock().get(id).filter(|s| is_live(s.expires_at, now)).cloned())
    }

    async fn revoke_session(
        &self,
        id: &str,
        user: &UserId,
        now: Timestamp,
        reason: &str,
    ) -> StoreResult<Option<CrossAppSession>> {
        let live_now = self.clock.now();
        Ok(match self.sessions.lock().get_mut(id) {
            Some(s) if &s.user_id == user && s.revoked_at.is_none() && is_live(s.expires_at, live_now) => {
                s.revoked_at = Some(now);
                s.revoked_reason = Some(reason.to_owned());
                Some(s.clone())
            }
            _ => None,
        })
    }

    async fn list_for_user(&self, user: &UserId) -> StoreResult<Vec<CrossAppSession>> {
        let now = self.clock.now();
        let mut v: Vec<_> = self
            .sessions
            .lock()
            .values()
            .filter(|s| &s.user_id == user && is_live(s.expires_at, now))
            .cloned()
            .collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(v)
    }

    async fn pseudonymize(&self, user: &UserId, pseudonym: &str) -> StoreResult<usize> {
        let mut n = 0;
        for s in self.sessions.lock().values_mut().filter(|s| &s.user_id == user) {
            s.user_id = UserId::from_stored(pseudonym.to_owned());
            s.ip_address = None;
            s.user_agent = None;
            n += 1;
        }
        Ok(n)
    }
}
