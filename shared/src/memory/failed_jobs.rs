//! The in-memory `failed jobs` table.

use super::table::{SharedClock, Table, cursor_position, paginate};
use crate::tables::failed_jobs::{FailedJob, FailedJobStore};
use crate::values::clock::is_live;
use crate::values::error::StoreResult;
use crate::values::pagination::{Cursor, Page};
use async_trait::async_trait;

pub struct MemoryFailedJobs {
    clock: SharedClock,
    rows: Table<String, FailedJob>,
}

impl MemoryFailedJobs {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }
}

#[async_trait]
impl FailedJobStore for MemoryFailedJobs {
    async fn record(&self, job: &FailedJob) -> StoreResult<()> {
        self.rows.lock().insert(job.uuid.clone(), job.clone());
        Ok(())
    }

    async fn find(&self, uuid: &str) -> StoreResult<Option<FailedJob>> {
        let now = self.clock.now();
        Ok(self.rows.lock().get(uuid).filter(|j| is_live(j.expires_at, now)).cloned())
    }

    async fn list(&self, limit: usize, after: Option<&Cursor>) -> StoreResult<Page<FailedJob>> {
        let now = self.clock.now();
        let mut all: Vec<_> = self.rows.lock().values().filter(|j| is_live(j.expires_at, now)).cloned().collect();
        all.sort_by_key(|j| std::cmp::Reverse(j.list_key()));
        let start_after = cursor_position(after, "sort")?;
        Ok(paginate(all, limit, FailedJob::list_key, start_after, |k| serde_json::json!({ "sort": k })))
    }

    async fn forget(&self, uuid: &str) -> StoreResult<bool> {
        Ok(self.rows.lock().remove(uuid).is_some())
    }

    async fn flush(&self) -> StoreResult<usize> {
        let mut t = self.rows.lock();
        let n = t.len();
        t.clear();
        Ok(n)
    }
}
