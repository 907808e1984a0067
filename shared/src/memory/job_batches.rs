//! The in-memory `batches` table.

use super::table::{SharedClock, Table, cursor_position, paginate};
use crate::tables::job_batches::{Batch, Counted, JobBatchStore};
use crate::values::clock::{Timestamp, is_live};
use crate::values::error::{StoreError, StoreResult};
use crate::values::pagination::{Cursor, Page};
use async_trait::async_trait;
use std::collections::HashSet;

pub struct MemoryJobBatches {
    clock: SharedClock,
    rows: Table<String, (Batch, HashSet<String>)>,
}

impl MemoryJobBatches {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }

    fn count(&self, id: &str, job: &str, failed: bool) -> StoreResult<Option<Counted>> {
        let now = self.clock.now();
        let mut t = self.rows.lock();
        let Some((batch, counted)) = t.get_mut(id).filter(|(b, _)| is_live(b.expires_at, now)) else {
            return Ok(None);
        };
        let newly_counted = counted.insert(job.to_owned());
        if newly_counted {
            batch.pending_jobs = batch.pending_jobs.saturating_sub(1);
            if failed {
                batch.failed_jobs += 1;
                batch.failed_job_ids.push(job.to_owned());
            }
        }
        Ok(Some(Counted { newly_counted, batch: batch.clone() }))
    }
}

#[async_trait]
impl JobBatchStore for MemoryJobBatches {
    async fn create(&self, batch: &Batch) -> StoreResult<()> {
        let mut t = self.rows.lock();
        if t.contains_key(&batch.id) {
            return Err(StoreError::Conflict(format!("batch {} exists", batch.id)));
        }
        t.insert(batch.id.clone(), (batch.clone(), HashSet::new()));
        Ok(())
    }

    async fn list(&self, limit: usize, after: Option<&Cursor>) -> StoreResult<Page<Batch>> {
        let now = self.clock.now();
        let mut all: Vec<Batch> =
            self.rows.lock().values().map(|(b, _)| b).filter(|b| is_live(b.expires_at, now)).cloned().collect();
        all.sort_by_key(|b| std::cmp::Reverse(b.list_key()));
        let start_after = cursor_position(after, "sort")?;
        Ok(paginate(all, limit, Batch::list_key, start_after, |k| serde_json::json!({ "sort": k })))
    }

    async fn find(&self, id: &str) -> StoreResult<Option<Batch>> {
        let now = self.clock.now();
        Ok(self.rows.lock().get(id).map(|(b, _)| b).filter(|b| is_live(b.expires_at, now)).cloned())
    }

    async fn add_jobs(&self, id: &str, n: u64) -> StoreResult<bool> {
        Ok(match self.rows.lock().get_mut(id) {
            Some((b, _)) => {
                b.total_jobs += n;
                b.pending_jobs += n;
                true
            }
            None => false,
        })
    }

    async fn record_success(&self, id: &str, job_uuid: &str) -> StoreResult<Option<Counted>> {
        self.count(id, job_uuid, false)
    }

    async fn record_failure(&self, id: &str, job_uuid: &str) -> StoreResult<Option<Counted>> {
        self.count(id, job_uuid, true)
    }

    async fn reopen(&self, id: &str, job_uuid: &str) -> StoreResult<bool> {
        let now = self.clock.now();
        let mut t = self.rows.lock();
        let Some((batch, counted)) = t.get_mut(id).filter(|(b, _)| is_live(b.expires_at, now)) else {
            return Ok(false);
        };
        let Some(at) = batch.failed_job_ids.iter().position(|u| u == job_uuid) else {
            return Ok(false);
        };
        batch.failed_job_ids.remove(at);
        batch.failed_jobs = batch.failed_jobs.saturating_sub(1);
        batch.pending_jobs += 1;
        batch.finished_at = None;
        counted.remove(job_uuid);
        Ok(true)
    }

    async fn mark_finished(&self, id: &str, now: Timestamp) -> StoreResult<bool> {
        Ok(match self.rows.lock().get_mut(id) {
            Some((b, _)) if b.pending_jobs == 0 && b.finished_at.is_none() => {
                b.finished_at = Some(now);
                true
            }
            _ => false,
        })
    }

    async fn cancel(&self, id: &str, now: Timestamp) -> StoreResult<bool> {
        Ok(match self.rows.lock().get_mut(id) {
            Some((b, _)) if b.cancelled_at.is_none() => {
                b.cancelled_at = Some(now);
                true
            }
            _ => false,
        })
    }

    async fn delete(&self, id: &str) -> StoreResult<bool> {
        Ok(self.rows.lock().remove(id).is_some())
    }
}
