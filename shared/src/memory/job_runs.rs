//! The in-memory `job runs` table.

use super::table::{SharedClock, Table};
use crate::tables::job_runs::{Claim, Claimant, JobRunStore};
use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;

#[derive(Clone)]
enum RunRow {
    Running { lease_until: Timestamp, expires_at: Timestamp, claimant: Claimant },
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
        match t.get(uuid) {
            Some(RunRow::Completed { expires_at: e }) if *e > live_now => Ok(Claim::Completed),
            Some(RunRow::Running { lease_until: l, expires_at: e, .. }) if *e > live_now && *l > now => {
                Ok(Claim::Busy { until: *l })
            }
            _ => {
                let claimant = Claimant::new();
                t.insert(uuid.to_owned(), RunRow::Running { lease_until, expires_at, claimant: claimant.clone() });
                Ok(Claim::Claimed(claimant))
            }
        }
    }

    async fn complete(&self, uuid: &str, _now: Timestamp, expires_at: Timestamp) -> StoreResult<()> {
        self.rows.lock().insert(uuid.to_owned(), RunRow::Completed { expires_at });
        Ok(())
    }

    async fn release(&self, uuid: &str, claimant: &Claimant) -> StoreResult<()> {
        let mut t = self.rows.lock();
        if matches!(t.get(uuid), Some(RunRow::Running { claimant: c, .. }) if c == claimant) {
            t.remove(uuid);
        }
        Ok(())
    }

    async fn forget(&self, uuid: &str) -> StoreResult<()> {
        self.rows.lock().remove(uuid);
        Ok(())
    }
}
