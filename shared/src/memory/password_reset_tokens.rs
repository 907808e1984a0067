//! The in-memory `password reset tokens` table.

use super::table::{SharedClock, Table};
use crate::tables::password_reset_tokens::{PasswordResetTokenStore, ResetRecord, SpendMark, SpentReset};
use crate::values::clock::Timestamp;
use crate::values::email::Email;
use crate::values::error::StoreResult;
use async_trait::async_trait;

pub struct MemoryPasswordResetTokens {
    clock: SharedClock,
    /// Each token, and its spend (mark and time) once spent.
    rows: Table<String, (ResetRecord, Option<SpentReset>)>,
}

impl MemoryPasswordResetTokens {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }
}

#[async_trait]
impl PasswordResetTokenStore for MemoryPasswordResetTokens {
    async fn put_unless_throttled(&self, record: &ResetRecord, throttle_since: Timestamp) -> StoreResult<bool> {
        let now = self.clock.now();
        let mut t = self.rows.lock();
        let key = record.email.normalized();
        if let Some((old, spent)) = t.get(&key)
            && spent.is_none()
            && old.expires_at > now
            && old.created_at > throttle_since
            && old.token_hash != record.token_hash
        {
            return Ok(false);
        }
        t.insert(key, (record.clone(), None));
        Ok(true)
    }

    async fn find(&self, email: &Email) -> StoreResult<Option<ResetRecord>> {
        let now = self.clock.now();
        Ok(self
            .rows
            .lock()
            .get(&email.normalized())
            .filter(|(r, spent)| spent.is_none() && r.expires_at > now)
            .map(|(r, _)| r.clone()))
    }

    async fn consume(
        &self,
        email: &Email,
        token_hash: &str,
        now: Timestamp,
        version: u64,
    ) -> StoreResult<Option<SpendMark>> {
        let mut t = self.rows.lock();
        match t.get_mut(&email.normalized()) {
            Some((r, spent)) if spent.is_none() && r.expires_at > now && r.token_hash == token_hash => {
                let mark = SpendMark(hex::encode(crate::values::secret::random_bytes::<16>()));
                *spent =
                    Some(SpentReset { token_hash: r.token_hash.clone(), spent_at: now, mark: mark.clone(), version });
                Ok(Some(mark))
            }
            _ => Ok(None),
        }
    }

    async fn restore(&self, email: &Email, spend: &SpendMark) -> StoreResult<()> {
        if let Some((_, spent)) = self.rows.lock().get_mut(&email.normalized())
            && spent.as_ref().is_some_and(|s| &s.mark == spend)
        {
            *spent = None;
        }
        Ok(())
    }

    async fn find_spent(&self, email: &Email) -> StoreResult<Option<SpentReset>> {
        let now = self.clock.now();
        Ok(self.rows.lock().get(&email.normalized()).and_then(|(r, spent)| match spent {
            Some(spent) if r.expires_at > now => Some(spent.clone()),
            _ => None,
        }))
    }

    async fn delete(&self, email: &Email) -> StoreResult<()> {
        self.rows.lock().remove(&email.normalized());
        Ok(())
    }
}
