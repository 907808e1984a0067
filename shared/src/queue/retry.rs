//! Putting failed jobs back: one (`queue:retry`) or a batch's (`queue:retry-batch`), each counted again exactly once.

use super::dispatch::{DispatchError, Dispatcher};
use crate::tables::jobs::JobPayload;
use crate::values::error::StoreError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RetryError {
    #[error("no failed job {0}")]
    NotFound(String),
    #[error("failed job {0} has an undecodable payload and cannot be retried")]
    Undecodable(String),
    #[error("no batch {0}")]
    NoBatch(String),
    #[error("batch {0} is cancelled: its jobs would be skipped, not run")]
    BatchCancelled(String),
    #[error(
        "job {uuid} was re-opened in its batch but could not be put back ({source}); run `gatehouse queue:retry {uuid}` to finish it"
    )]
    PushBack { uuid: String, source: Box<RetryError> },
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What [`retry_batch`] did with each of the batch's failed jobs.
#[derive(Debug, Default)]
pub struct BatchRetry {
    /// Re-opened in the batch and put back on the queue.
    pub retried: Vec<String>,
    /// Not retried, and why (no failure record any more, or re-opened by a concurrent retry).
    pub skipped: Vec<(String, &'static str)>,
}

/// Laravel's `queue:retry-batch`: every failed job of the batch is re-opened in it (failed − 1,
/// pending + 1, its mark and `finished_at` cleared: [`crate::tables::job_batches::JobBatchStore::reopen`],
/// exactly once per job however many retries race) and put back on the queue. When the retried
/// jobs succeed, the batch finishes again, now without failures: `then` runs (once), and
/// `finally`, which already ran, is not run again (its follow-up uuid is the same, and a job
/// runs once). A cancelled batch is refused: its jobs would be skipped. If putting a job back
/// fails after its re-opening, `queue:retry <uuid>` finishes it (the failure record is kept).
pub async fn retry_batch(dispatcher: &Dispatcher, id: &str) -> Result<BatchRetry, RetryError> {
    let stores = &dispatcher.stores;
    let batch = stores.job_batches.find(id).await?.ok_or_else(|| RetryError::NoBatch(id.to_owned()))?;
    if batch.cancelled_at.is_some() {
        return Err(RetryError::BatchCancelled(id.to_owned()));
    }
    let mut out = BatchRetry::default();
    for uuid in &batch.failed_job_ids {
        if stores.failed_jobs.find(uuid).await?.is_none() {
            out.skipped.push((uuid.clone(), "no failure record (past retention, or retried alone)"));
            continue;
        }
        if !stores.job_batches.reopen(id, uuid).await? {
            out.skipped.push((uuid.clone(), "already re-opened by another retry"));
            continue;
        }
        if let Err(e) = retry_failed(dispatcher, uuid).await {
            return Err(RetryError::PushBack { uuid: uuid.clone(), source: Box::new(e) });
        }
        out.retried.push(uuid.clone());
    }
    Ok(out)
}

/// Laravel's `queue:retry`: puts a failed job back on the queue with its attempts reset, then
/// forgets the failure record.
pub async fn retry_failed(dispatcher: &Dispatcher, uuid: &str) -> Result<(), RetryError> {
    let stores = &dispatcher.stores;
    let failed = stores.failed_jobs.find(uuid).await?.ok_or_else(|| RetryError::NotFound(uuid.to_owned()))?;
    let mut job = JobPayload::from_body(&failed.payload).map_err(|_| RetryError::Undecodable(uuid.to_owned()))?;
    job.attempts = 0;
    job.available_at = None;
    job.retry_until = None;
    stores.job_runs.forget(&job.uuid).await?;
    dispatcher.dispatch(job).await?;
    stores.failed_jobs.forget(uuid).await?;
    Ok(())
}
