//! The dead-letter queue, for operators: what landed there and moving it back.
//!
//! SQS moves a message to the DLQ after it was received `max_receive_count` (25) times without
//! being deleted: the worker crashed or timed out on it every time, so it never recorded the job
//! in failed_jobs (a job that merely fails is recorded there long before). Nothing runs on the DLQ,
//! so such a job is not recorded in failed_jobs when it is dead-lettered; `queue:dlq` lists it,
//! the DLQ alarm fires, and `queue:dlq-redrive` puts it back as a fresh job.

use crate::queue::{DispatchError, Dispatcher};
use crate::tables::jobs::{JobPayload, JobQueue, QueueMessage};
use crate::values::error::StoreError;
use std::time::Duration;

/// One dead-lettered message as listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetter {
    pub message_id: String,
    /// The job's uuid and name; `None` when the body is not a job payload.
    pub uuid: Option<String>,
    pub job: Option<String>,
    /// How many times SQS handed it out (the 25 that dead-lettered it, and the listing's own).
    pub receive_count: u32,
    /// Tries the job had recorded in its payload.
    pub attempts: Option<u32>,
    /// When it was first sent to the jobs queue (RFC 3339), if the queue says.
    pub first_seen: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
}

/// How long a listing or a redrive hides the messages it looks at.
const LOOK: Duration = Duration::from_secs(30);

/// The next visible messages of `dlq` (at most `want`, at most 10), hidden for [`LOOK`].
async fn next_batch(dlq: &dyn JobQueue, want: usize) -> Result<Vec<QueueMessage>, StoreError> {
    let want = u32::try_from(want.clamp(1, 10)).unwrap_or(10);
    dlq.receive(want, Duration::from_secs(1), Some(LOOK)).await
}

/// Makes messages that were only looked at visible again.
async fn restore(dlq: &dyn JobQueue, looked: &[QueueMessage]) -> Result<(), StoreError> {
    for m in looked {
        dlq.change_visibility(&m.receipt_handle, Duration::ZERO).await?;
    }
    Ok(())
}

/// Up to `limit` dead-lettered messages, as SQS hands them out; they stay in the DLQ.
pub async fn list(dlq: &dyn JobQueue, limit: usize) -> Result<Vec<DeadLetter>, DeadLetterError> {
    let mut looked: Vec<QueueMessage> = Vec::new();
    let read = async {
        while looked.len() < limit {
            let batch = next_batch(dlq, limit - looked.len()).await?;
            if batch.is_empty() {
                break;
            }
            looked.extend(batch);
        }
        Ok::<_, StoreError>(())
    }
    .await;
    let restored = restore(dlq, &looked).await;
    read?;
    restored?;
    Ok(looked
        .iter()
        .map(|m| {
            let payload = JobPayload::from_body(&m.body).ok();
            DeadLetter {
                message_id: m.message_id.clone(),
                uuid: payload.as_ref().map(|p| p.uuid.clone()),
                job: payload.as_ref().map(|p| p.display_name.clone()),
                receive_count: m.receive_count,
                attempts: payload.as_ref().map(|p| p.attempts),
                first_seen: m.sent_at.map(crate::values::clock::rfc3339),
            }
        })
        .collect())
}

/// What a redrive did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Redriven {
    /// Jobs put back on the queue (as fresh jobs: tries and delays reset; their run record is kept,
    /// so a job that completed is not run again).
    pub moved: Vec<String>,
    /// Messages left in the DLQ because their body is not a job payload.
    pub undecodable: usize,
}

/// Moves dead-lettered jobs back onto the jobs queue: every one (`only` = `None`) or the one with
/// that uuid, looking at no more than `limit` messages; `progress` hears of each job moved. Each
/// is dispatched afresh (same uuid, tries reset), then deleted from the DLQ: if that delete fails,
/// the next redrive dispatches it again, and the job's run claim lets only one of the copies
/// run.
pub async fn redrive(
    dispatcher: &Dispatcher,
    dlq: &dyn JobQueue,
    only: Option<&str>,
    limit: usize,
    mut progress: impl FnMut(&str),
) -> Result<Redriven, DeadLetterError> {
    let mut done = Redriven::default();
    let mut looked: Vec<QueueMessage> = Vec::new();
    let mut seen = 0;
    let moved = async {
        while seen < limit {
            let batch = next_batch(dlq, limit - seen).await?;
            if batch.is_empty() {
                break;
            }
            for m in batch {
                seen += 1;
                let Ok(mut job) = JobPayload::from_body(&m.body) else {
                    done.undecodable += 1;
                    looked.push(m);
                    continue;
                };
                if only.is_some_and(|u| u != job.uuid) {
                    looked.push(m);
                    continue;
                }
                // Hidden afresh while it is moved, however long the batch before it took.
                dlq.change_visibility(&m.receipt_handle, LOOK).await?;
                job.attempts = 0;
                job.available_at = None;
                job.retry_until = None;
                let uuid = job.uuid.clone();
                // The run claim is left as it is: a run that crashed holds an expired lease, which
                // the next run takes over; a run that completed (its delete was what failed) keeps
                // the job from running twice.
                dispatcher.dispatch(job).await?;
                dlq.delete(&m.receipt_handle).await?;
                progress(&uuid);
                done.moved.push(uuid);
            }
        }
        Ok::<_, DeadLetterError>(())
    }
    .await;
    // The first error is the one to report; restoring is best effort after it.
    let restored = restore(dlq, &looked).await;
    moved?;
    restored?;
    Ok(done)
}
