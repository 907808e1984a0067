//! The in-memory `locks` table.

use super::table::{SharedClock, Table};
use crate::tables::cache_locks::{CacheLockStore, LockOwner};
use crate::values::clock::{Timestamp, is_live};
use crate::values::error::StoreResult;
use async_trait::async_trait;

pub struct MemoryCacheLocks {
    clock: SharedClock,
    rows: Table<String, (LockOwner, Option<Timestamp>)>,
}

impl MemoryCacheLocks {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }
}

#[async_trait]
impl CacheLockStore for MemoryCacheLocks {
    async fn acquire(&self, key: &str, owner: &LockOwner, expires_at: Option<Timestamp>) -> StoreResult<bool> {
        let now = self.clock.now();
        let mut t = self.rows.lock();
        let free = match t.get(key) {
            None => true,
            Some((o, e)) => o == owner || !is_live(*e, now),
        };
        if free {
            t.insert(key.to_owned(), (owner.clone(), expires_at));
        }
        Ok(free)
    }

    async fn refresh(&self, key: &str, owner: &LockOwner, expires_at: Option<Timestamp>) -> StoreResult<bool> {
        let now = self.clock.now();
        Ok(match self.rows.lock().get_mut(key) {
            Some((o, e)) if o == owner && is_live(*e, now) => {
                *e = expires_at;
                true
            }
            _ => false,
        })
    }

    async fn release(&self, key: &str, owner: &LockOwner) -> StoreResult<bool> {
        let mut t = self.rows.lock();
        if t.get(key).is_some_and(|(o, _)| o == owner) {
            t.remove(key);
            return Ok(true);
        }
        Ok(false)
    }

    async fn force_release(&self, key: &str) -> StoreResult<()> {
        self.rows.lock().remove(key);
        Ok(())
    }

    async fn owner(&self, key: &str) -> StoreResult<Option<LockOwner>> {
        let now = self.clock.now();
        Ok(self.rows.lock().get(key).filter(|(_, e)| is_live(*e, now)).map(|(o, _)| o.clone()))
    }
}
