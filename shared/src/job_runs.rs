//! The `job_runs` table: one idempotency record per job uuid, so at-least-once delivery gives
//! exactly-once effects. A run is claimed with a lease (so a crashed attempt does not block
//! retries for ever), then completed (later deliveries are acknowledged without running) or
//! released (the next delivery may run it).

use crate::clock::Timestamp;
use crate::error::StoreResult;
use async_trait::async_trait;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This caller may run the job now.
    Claimed,
    /// The job already ran to completion: acknowledge without running.
    Completed,
    /// Another attempt holds the lease until then: try later.
    Busy { until: Timestamp },
}

#[async_trait]
pub trait JobRunStore: Send + Sync {
    /// Claims the run of `uuid` until `lease_until`, unless it is completed or leased by another
    /// live attempt. One conditional write: of racing callers exactly one gets `Claimed`.
    async fn claim(
        &self,
        uuid: &str,
        now: Timestamp,
        lease_until: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<Claim>;
    /// Marks the run completed (kept until `expires_at`).
    async fn complete(&self, uuid: &str, now: Timestamp, expires_at: Timestamp) -> StoreResult<()>;
    /// Forgets the run, so that a later delivery (a retry) may claim it.
    async fn release(&self, uuid: &str) -> StoreResult<()>;
}
