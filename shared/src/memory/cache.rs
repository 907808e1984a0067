//! The in-memory `cache` table.

use super::table::{SharedClock, Table};
use crate::tables::cache::{CacheStore, Hit, Hits, Once, check_hits, check_key};
use crate::values::clock::{Timestamp, is_live};
use crate::values::error::{StoreError, StoreResult};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;

/// One cached value: its expiry, and who took it when ([`CacheStore::take_once`]).
struct Row {
    value: Value,
    expires_at: Option<Timestamp>,
    taken: Option<(String, Timestamp)>,
}

impl Row {
    fn new(value: Value, expires_at: Option<Timestamp>) -> Self {
        Self { value, expires_at, taken: None }
    }
}

pub struct MemoryCache {
    clock: SharedClock,
    rows: Table<String, Row>,
}

impl MemoryCache {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }

    /// The unexpired row at `key`, taken or not (what conditional writes see, as DynamoDB's do).
    fn present<'t>(&self, t: &'t HashMap<String, Row>, key: &str) -> Option<&'t Row> {
        let now = self.clock.now();
        t.get(key).filter(|r| is_live(r.expires_at, now))
    }

    /// The live value, unless it was taken (what reads see).
    fn live(&self, t: &HashMap<String, Row>, key: &str) -> Option<Value> {
        self.present(t, key).filter(|r| r.taken.is_none()).map(|r| r.value.clone())
    }
}

#[async_trait]
impl CacheStore for MemoryCache {
    async fn get(&self, key: &str) -> StoreResult<Option<Value>> {
        check_key(key)?;
        Ok(self.live(&self.rows.lock(), key))
    }

    async fn many(&self, keys: &[String]) -> StoreResult<Vec<Option<Value>>> {
        keys.iter().try_for_each(|k| check_key(k))?;
        let t = self.rows.lock();
        Ok(keys.iter().map(|k| self.live(&t, k)).collect())
    }

    async fn put(&self, key: &str, value: &Value, expires_at: Option<Timestamp>) -> StoreResult<()> {
        check_key(key)?;
        self.rows.lock().insert(key.to_owned(), Row::new(value.clone(), expires_at));
        Ok(())
    }

    async fn add(&self, key: &str, value: &Value, expires_at: Option<Timestamp>) -> StoreResult<bool> {
        check_key(key)?;
        let mut t = self.rows.lock();
        if self.present(&t, key).is_some() {
            return Ok(false);
        }
        t.insert(key.to_owned(), Row::new(value.clone(), expires_at));
        Ok(true)
    }

    async fn increment(&self, key: &str, by: i64) -> StoreResult<i64> {
        check_key(key)?;
        let mut t = self.rows.lock();
        let next = match self.present(&t, key) {
            None => {
                t.insert(key.to_owned(), Row::new(Value::from(by), None));
                return Ok(by);
            }
            Some(r) => r
                .value
                .as_i64()
                .ok_or_else(|| StoreError::Conflict(format!("cache value at {key:?} is not an integer")))?
                .checked_add(by)
                .ok_or_else(|| StoreError::Conflict(format!("cache counter at {key:?} would overflow")))?,
        };
        if let Some(entry) = t.get_mut(key) {
            entry.value = Value::from(next);
        }
        Ok(next)
    }

    async fn hit_all(&self, hits: &[Hit<'_>]) -> StoreResult<Hits> {
        check_hits(hits)?;
        let mut t = self.rows.lock();
        // A live counter's count (anything but an integer: full); an expired or absent one: 0.
        let count =
            |t: &HashMap<_, _>, key: &str| self.present(t, key).map_or(0, |r| r.value.as_i64().unwrap_or(i64::MAX));
        let full: Vec<usize> = (0..hits.len()).filter(|&i| count(&t, hits[i].key) >= hits[i].max).collect();
        if !full.is_empty() {
            return Ok(Hits::Full(full));
        }
        for h in hits {
            let next = count(&t, h.key).saturating_add(1);
            // A counter keeps its first end, expired or not (DynamoDB's `if_not_exists`): one
            // hit again after its window stays expired and refuses nothing, on both backends.
            let end = match t.get(h.key) {
                Some(Row { expires_at: Some(end), .. }) => *end,
                _ => h.window_end,
            };
            t.insert(h.key.to_owned(), Row::new(Value::from(next), Some(end)));
        }
        Ok(Hits::Counted)
    }

    async fn forget(&self, key: &str) -> StoreResult<bool> {
        check_key(key)?;
        let mut t = self.rows.lock();
        let was_live = self.live(&t, key).is_some();
        t.remove(key);
        Ok(was_live)
    }

    async fn get_once(&self, key: &str, mark: &str) -> StoreResult<Option<Once>> {
        check_key(key)?;
        let t = self.rows.lock();
        Ok(self.present(&t, key).and_then(|r| match &r.taken {
            None => Some(Once::Open(r.value.clone())),
            Some((by, at)) if by == mark => Some(Once::Taken { value: r.value.clone(), at: *at }),
            Some(_) => None,
        }))
    }

    async fn take_once(&self, key: &str, mark: &str, keep_until: Timestamp) -> StoreResult<Option<Timestamp>> {
        check_key(key)?;
        let now = self.clock.now();
        let mut t = self.rows.lock();
        let Some(row) = t.get_mut(key).filter(|r| is_live(r.expires_at, now)) else { return Ok(None) };
        match &row.taken {
            None => {
                row.taken = Some((mark.to_owned(), now));
                row.expires_at = Some(keep_until);
                Ok(Some(now))
            }
            Some((by, at)) if by == mark => Ok(Some(*at)),
            Some(_) => Ok(None),
        }
    }
}
