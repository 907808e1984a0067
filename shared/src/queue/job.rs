//! What a job handler is given and answers: its context, its error (retry or give up) and the outcome the worker settles.

use super::dispatch::Dispatcher;
use crate::stores::Stores;
use crate::tables::cache_locks::LockOwner;
use crate::tables::jobs::JobPayload;
use crate::values::clock::Span;
use crate::values::error::StoreError;
use async_trait::async_trait;
use std::fmt;
use std::time::Duration;

/// Why a job run did not succeed. Keeps the whole cause chain for failed_jobs.
#[derive(Debug, Clone)]
pub struct JobError {
    message: String,
    /// A permanent error fails the job at once, whatever tries remain.
    permanent: bool,
}

impl JobError {
    /// A failure worth retrying, with the message of `e` and of every cause behind it.
    pub fn retry(e: &(dyn std::error::Error + 'static)) -> Self {
        Self { message: cause_chain(e), permanent: false }
    }
    pub fn retry_msg(msg: impl Into<String>) -> Self {
        Self { message: msg.into(), permanent: false }
    }
    /// A failure no retry can fix (bad data): the job goes to failed_jobs now.
    pub fn permanent(msg: impl Into<String>) -> Self {
        Self { message: msg.into(), permanent: true }
    }
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        let permanent = matches!(e, StoreError::Corrupt { .. });
        Self { message: cause_chain(&e), permanent }
    }
}

/// `error\ncaused by: cause\ncaused by: …`
pub fn cause_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str("\ncaused by: ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// What a job handler is given: the stores (cache and locks among them), a dispatcher, and which
/// attempt this is.
#[derive(Clone)]
pub struct JobContext {
    pub stores: Stores,
    pub dispatcher: Dispatcher,
    pub attempt: u32,
}

impl JobContext {
    /// Laravel's `WithoutOverlapping`: `Ok(None)` (run nothing) when another run holds `key`,
    /// else runs `f` holding the lock for at most `ttl`, and releases it.
    pub async fn without_overlapping<F, Fut, T>(&self, key: &str, ttl: Span, f: F) -> Result<Option<T>, JobError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, JobError>>,
    {
        let owner = LockOwner::random();
        let key = format!("without-overlapping:{key}");
        if !self.stores.cache_locks.acquire(&key, &owner, Some(self.stores.clock.now() + ttl)).await? {
            return Ok(None);
        }
        let out = f().await;
        self.stores.cache_locks.release(&key, &owner).await?;
        out.map(Some)
    }
}

#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn handle(&self, job: &JobPayload, ctx: &JobContext) -> Result<(), JobError>;
}

/// What became of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ran and succeeded, or had already (duplicate delivery): remove from the queue.
    Completed,
    /// Not run, on purpose (re-delayed, batch cancelled): remove from the queue.
    Skipped(&'static str),
    /// Failed with tries left, or another attempt holds it: leave on the queue, visible again
    /// after this long.
    Retry { after: Duration },
    /// Failed for good and recorded in failed_jobs: remove from the queue.
    Failed,
}

/// A mail job's failure as the worker judges it: a transient one is retried, a rejection is not.
pub fn mail_error(e: crate::mail::MailError) -> JobError {
    match e {
        crate::mail::MailError::Transient(m) => JobError::retry_msg(m),
        crate::mail::MailError::Rejected(m) => JobError::permanent(m),
    }
}
