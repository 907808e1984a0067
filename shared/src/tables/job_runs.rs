//! The `job_runs` table: one idempotency record per job uuid, so at-least-once delivery gives
//! exactly-once effects. A run is claimed with a lease (so a crashed attempt does not block
//! retries for ever), then completed (later deliveries are acknowledged without running) or
//! released (the next delivery may run it).

use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;

/// One claim of a run, named at random: only its holder releases it, so a release that lands
/// late (retried, delayed) cannot free a claim another attempt took after this one's lease lapsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimant(String);

impl Claimant {
    pub fn new() -> Self {
        Self(hex::encode(crate::values::secret::random_bytes::<16>()))
    }

    /// As stored with the claim.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Claimant {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This caller may run the job now, holding this claim.
    Claimed(Claimant),
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
    /// Marks the run completed (kept until `expires_at`). Unconditional: it is written only after
    /// the job's effects happened, which is the truth whoever holds the claim.
    async fn complete(&self, uuid: &str, now: Timestamp, expires_at: Timestamp) -> StoreResult<()>;
    /// Forgets the run if `claimant` still holds it, so that a later delivery (a retry) may claim
    /// it; a claim taken since (after this one's lease lapsed) or a completion stays.
    async fn release(&self, uuid: &str, claimant: &Claimant) -> StoreResult<()>;
    /// Forgets the run whatever holds it: an operator putting a failed job back.
    async fn forget(&self, uuid: &str) -> StoreResult<()>;
}
