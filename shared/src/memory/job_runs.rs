//! The in-memory `job runs` table.

use super::{SharedClock, Table};
use crate::clock::Timestamp;
use crate::error::StoreResult;
use crate::job_runs::{Claim, JobRunStore};
use async_trait::async_trait;

#[derive(Clone, Copy)]
enum RunRow {
    Running { lease_until: Timestamp, expires_at: Timestamp },
    Completed { expires_at: Timestamp },
}

pub struct MemoryJobRuns {
    clock: SharedClock,
    rows: Table<String, RunRow>,
}

impl MemoryJobRuns {
    pub fn new(clock: SharedClock) -> Self {
        Self { clock, rows: Table::default() }
    }
}

#[async_trait]
impl JobRunStore for MemoryJobRuns {
    async fn claim(
        &self,
        uuid: &str,
        now: Timestamp,
        lease_until: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<Claim> {
        let live_now = self.clock.now();
        let mut t = self.rows.lock();
        match t.get(uuid).copied() {
            Some(RunRow::Completed { expires_at: e }) if e > live_now => Ok(Claim::Completed),
            Some(RunRow::Running { lease_until: l, expires_at: e }) if e > live_now && l > now => {
                Ok(Claim::Busy { until: l })
            }
            _ => {
                t.insert(uuid.to_owned(), RunRow::Running { lease_until, expires_at });
                Ok(Claim::Claimed)
            }
        }
    }

    async fn complete(&self, uuid: &str, _now: Timestamp, expires_at: Timestamp) -> StoreResult<()> {
        self.rows.lock().insert(uuid.to_owned(), RunRow::Completed { expires_at });
        Ok(())
    }

    async fn release(&self, uuid: &str) -> StoreResult<()> {
        self.rows.lock().remove(uuid);
        Ok(())
    }
}
