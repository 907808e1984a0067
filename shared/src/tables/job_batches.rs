//! The `job_batches` table. Counters move atomically and idempotently: each job is counted once
//! per batch however often it is delivered, and a batch finishes exactly once.

use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub id: String,
    pub name: String,
    pub total_jobs: u64,
    pub pending_jobs: u64,
    pub failed_jobs: u64,
    pub failed_job_ids: Vec<String>,
    pub options: BatchOptions,
    pub cancelled_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
}

impl Batch {
    /// Its place in the newest-first listing: `<created ms, zero-padded>#<id>`.
    pub fn list_key(&self) -> String {
        crate::values::pagination::newest_first_key(crate::values::clock::epoch_millis(self.created_at), &self.id)
    }

    /// Every job has reached its end (succeeded or, finally, failed).
    pub fn all_jobs_done(&self) -> bool {
        self.pending_jobs == 0
    }
}

/// Laravel's batch options: follow-up jobs (message bodies) and whether failures cancel the batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchOptions {
    #[serde(default)]
    pub allow_failures: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub then: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub catch: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finally: Vec<serde_json::Value>,
}

/// What counting a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    /// `false` when this job had already been counted (a duplicate delivery): nothing changed.
    pub newly_counted: bool,
    /// The batch after the update.
    pub batch: Batch,
}

#[async_trait]
pub trait JobBatchStore: Send + Sync {
    async fn create(&self, batch: &Batch) -> StoreResult<()>;
    /// The live batch; `None` when absent or past retention.
    async fn find(&self, id: &str) -> StoreResult<Option<Batch>>;
    /// Live batches, newest first, `limit` at a time (`queue:batches`).
    async fn list(
        &self,
        limit: usize,
        after: Option<&crate::values::pagination::Cursor>,
    ) -> StoreResult<crate::values::pagination::Page<Batch>>;
    /// Adds `n` jobs (total and pending). `false` when the batch does not exist.
    async fn add_jobs(&self, id: &str, n: u64) -> StoreResult<bool>;
    /// Counts a job that succeeded: pending − 1, once per job uuid. `None` when no such batch.
    async fn record_success(&self, id: &str, job_uuid: &str) -> StoreResult<Option<Counted>>;
    /// Counts a job that failed for good: pending − 1, failed + 1, its uuid added to
    /// `failed_job_ids`, once per job uuid. `None` when no such batch.
    async fn record_failure(&self, id: &str, job_uuid: &str) -> StoreResult<Option<Counted>>;
    /// Re-opens a job that failed for good, for a retry (`queue:retry-batch`): failed − 1,
    /// pending + 1, its uuid out of `failed_job_ids`, its counted-mark removed (so its next end
    /// counts) and `finished_at` cleared, in one atomic step. `true` for exactly one caller;
    /// `false` when the batch does not list that job as failed.
    async fn reopen(&self, id: &str, job_uuid: &str) -> StoreResult<bool>;
    /// Sets `finished_at` if no job is pending and it is not set yet. `true` for exactly one caller.
    async fn mark_finished(&self, id: &str, now: Timestamp) -> StoreResult<bool>;
    /// Sets `cancelled_at` once. `true` when this call cancelled it.
    async fn cancel(&self, id: &str, now: Timestamp) -> StoreResult<bool>;
    /// Deletes the batch and its per-job marks.
    async fn delete(&self, id: &str) -> StoreResult<bool>;
}
