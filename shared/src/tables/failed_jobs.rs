//! The `failed_jobs` table.

use crate::values::clock::Timestamp;
use crate::values::error::StoreResult;
use crate::values::pagination::{Cursor, Page};
use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedJob {
    pub uuid: String,
    pub connection: String,
    pub queue: String,
    /// The job's message body, verbatim, so it can be retried.
    pub payload: String,
    /// The error and its cause chain.
    pub exception: String,
    pub failed_at: Timestamp,
    /// End of retention (TTL); `None` keeps it until forgotten.
    pub expires_at: Option<Timestamp>,
}

impl FailedJob {
    /// The order failed jobs are listed in (newest first), as a sortable string: every store
    /// sorts by it, and DynamoDB keeps it as the list index's sort key.
    pub fn list_key(&self) -> String {
        crate::values::pagination::newest_first_key(crate::values::clock::epoch_millis(self.failed_at), &self.uuid)
    }
}

#[async_trait]
pub trait FailedJobStore: Send + Sync {
    /// Records a failure. A second record for the same uuid replaces the first.
    async fn record(&self, job: &FailedJob) -> StoreResult<()>;
    /// The live record; `None` when absent or past retention.
    async fn find(&self, uuid: &str) -> StoreResult<Option<FailedJob>>;
    /// Live records, newest first, `limit` at a time.
    async fn list(&self, limit: usize, after: Option<&Cursor>) -> StoreResult<Page<FailedJob>>;
    /// Deletes one. `true` when it existed.
    async fn forget(&self, uuid: &str) -> StoreResult<bool>;
    /// Deletes all. Returns how many.
    async fn flush(&self) -> StoreResult<usize>;
}
