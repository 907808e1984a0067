//! The in-memory `password reset tokens` table.

use super::{SharedClock, Table};
use crate::clock::Timestamp;
use crate::email::Email;
use crate::error::StoreResult;
use crate::password_reset_tokens::{ResetRecord, ResetStore};
use async_trait::async_trait;

pub struct MemoryResets {
    clock: SharedClock,
    /// Each token, and whether it is spent.
    rows: Table<String, (ResetRecord, bool)>,
}

impl MemoryResets {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }
}

#[async_trait]
impl ResetStore for MemoryResets {
    async fn put_unless_throttled(&self, record: &ResetRecord, throttle_since: Timestamp) -> StoreResult<bool> {
        let now = self.clock.now();
        let mut t = self.rows.lock();
        let key = record.email.normalized();
        if let Some((old, spent)) = t.get(&key)
            && !spent
            && old.expires_at > now
            && old.created_at > throttle_since
            && old.token_hash != record.token_hash
        {
            return Ok(false);
        }
        t.insert(key, (record.clone(), false));
        Ok(true)
    }

    async fn find(&self, email: &Email) -> StoreResult<Option<ResetRecord>> {
        let now = self.clock.now();
        Ok(self
            .rows
            .lock()
            .get(&email.normalized())
            .filter(|(r, spent)| !spent && r.expires_at > now)
            .map(|(r, _)| r.clone()))
    }

    async fn consume(&self, email: &Email, token_hash: &str, now: Timestamp) -> StoreResult<bool> {
        let mut t = self.rows.lock();
        match t.get_mut(&email.normalized()) {
            Some((r, spent)) if !*spent && r.expires_at > now && r.token_hash == token_hash => {
                *spent = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn restore(&self, email: &Email, token_hash: &str) -> StoreResult<()> {
        if let Some((r, spent)) = self.rows.lock().get_mut(&email.normalized())
            && r.token_hash == token_hash
        {
            *spent = false;
        }
        Ok(())
    }

    async fn delete(&self, email: &Email) -> StoreResult<()> {
        self.rows.lock().remove(&email.normalized());
        Ok(())
    }
}
