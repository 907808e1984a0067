//! The in-memory `events` table: each user's events by number, judged under the table's mutex as
//! DynamoDB's conditions judge them.

use super::table::Table;
use crate::tables::events::{Appended, Event, EventStore};
use crate::tables::users::UserId;
use crate::values::clock::{Clock, Timestamp, is_live};
use crate::values::error::StoreResult;
use async_trait::async_trait;
use std::sync::Arc;

pub struct MemoryEvents {
    rows: Table<(UserId, u64), (Event, Timestamp)>,
    clock: Arc<dyn Clock>,
}

impl MemoryEvents {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { rows: Table::default(), clock }
    }
}

#[async_trait]
impl EventStore for MemoryEvents {
    async fn append(&self, event: &Event, expires_at: Timestamp) -> StoreResult<Appended> {
        let mut rows = self.rows.lock();
        let key = (event.user_id.clone(), event.seq);
        Ok(match rows.get(&key) {
            Some((held, _)) if held.id == event.id => Appended::Already,
            Some((held, _)) => Appended::Taken(held.id.clone()),
            None => {
                rows.insert(key, (event.clone(), expires_at));
                Appended::Added
            }
        })
    }

    async fn after(&self, user: &UserId, seq: u64, limit: usize) -> StoreResult<Vec<Event>> {
        let now = self.clock.now();
        let mut out: Vec<Event> = self
            .rows
            .lock()
            .iter()
            .filter(|((u, s), (_, until))| u == user && *s > seq && is_live(Some(*until), now))
            .map(|(_, (e, _))| e.clone())
            .collect();
        out.sort_by_key(|e| e.seq);
        out.truncate(limit);
        Ok(out)
    }

    async fn redact(&self, user: &UserId) -> StoreResult<usize> {
        let mut rows = self.rows.lock();
        let mut n = 0;
        for ((u, _), (event, _)) in rows.iter_mut() {
            if u == user && !event.redacted {
                event.redact();
                n += 1;
            }
        }
        Ok(n)
    }
}
