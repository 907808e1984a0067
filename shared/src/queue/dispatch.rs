//! Sending jobs: now, later (past SQS's 15-minute limit, in steps), in batches, and the security notices promised before their change.

use crate::config::NOTICE_DELAY;
use crate::stores::Stores;
use crate::tables::events::{EventBody, EventId};
use crate::tables::job_batches::{Batch, BatchOptions};
use crate::tables::jobs::{JobPayload, MAX_MESSAGE_BYTES, MAX_QUEUE_DELAY};
use crate::tables::users::{EventMark, NoticeMark, UserId};
use crate::values::clock::{Span, epoch_seconds};
use crate::values::error::StoreError;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DispatchError {
    #[error("the job payload is {size} bytes; a queue message holds at most {MAX_MESSAGE_BYTES}")]
    TooLarge { size: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The job data fields of a promised notice: its mark, and the user whose item carries it.
const NOTICE_FIELD: &str = "notice_mark";

const NOTICE_USER_FIELD: &str = "notice_user";

/// The job that records a promised event ([`Dispatcher::promise_event`]; registered by
/// `services::events`).
pub const RECORD_EVENT: &str = "RecordEvent";

/// The waits between an event job's tries (seconds): 2,920 s in all.
pub const RECORD_EVENT_BACKOFF: &[u32] = &[10, 30, 60, 120, 300, 600, 600, 600, 600];

/// The job data fields of a promised event: its mark, and the user whose item carries it.
const EVENT_FIELD: &str = "event_mark";

const EVENT_USER_FIELD: &str = "event_user";

/// The event a job promises, if it does: `Err` for a job whose fields are malformed.
pub(super) fn promised_event(job: &JobPayload) -> Result<Option<(UserId, EventMark)>, &'static str> {
    let (Some(mark), Some(user)) = (job.data.get(EVENT_FIELD), job.data.get(EVENT_USER_FIELD)) else {
        return Ok(None);
    };
    let mark = mark.as_str().and_then(EventMark::parse).ok_or("the event mark is malformed")?;
    let user = user.as_str().and_then(UserId::parse).ok_or("the event names no user")?;
    Ok(Some((user, mark)))
}

/// The notice a job promises, if it does: `Err` for a job whose fields are malformed.
pub(super) fn promised(job: &JobPayload) -> Result<Option<(UserId, NoticeMark)>, &'static str> {
    let (Some(mark), Some(user)) = (job.data.get(NOTICE_FIELD), job.data.get(NOTICE_USER_FIELD)) else {
        return Ok(None);
    };
    let mark = mark.as_str().and_then(NoticeMark::parse).ok_or("the notice mark is malformed")?;
    let user = user.as_str().and_then(UserId::parse).ok_or("the notice names no user")?;
    Ok(Some((user, mark)))
}

impl From<DispatchError> for StoreError {
    fn from(e: DispatchError) -> Self {
        match e {
            DispatchError::Store(e) => e,
            e @ DispatchError::TooLarge { .. } => StoreError::Rejected(e.to_string()),
        }
    }
}

/// Sends jobs to the queue.
#[derive(Clone)]
pub struct Dispatcher {
    pub(crate) stores: Stores,
    batch_retention: Span,
    notice_delay: Duration,
}

impl Dispatcher {
    pub fn new(stores: Stores, batch_retention: Span) -> Self {
        Self { stores, batch_retention, notice_delay: NOTICE_DELAY }
    }

    /// A dispatcher with the deployment's settings (batch retention, notice delay).
    pub fn for_config(stores: Stores, config: &crate::config::Config) -> Self {
        Self { stores, batch_retention: config.batch_retention, notice_delay: config.notice_delay }
    }

    /// How long a promised notice waits before it looks for its change.
    pub fn notice_delay(&self) -> Duration {
        self.notice_delay
    }

    pub async fn dispatch(&self, job: JobPayload) -> Result<String, DispatchError> {
        self.dispatch_after(job, Duration::ZERO).await
    }

    /// Queues the notice of a change already made (a password changed, an account deleted, an
    /// address or a second factor changed): tried twice, and a failure is logged with the job's
    /// name rather than returned, since failing the request would not undo the change. `false`
    /// when it could not be queued.
    pub async fn notify(&self, job: JobPayload) -> bool {
        let name = job.job.clone();
        let Err(first) = self.dispatch(job.clone()).await else { return true };
        match self.dispatch(job).await {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(event = "notice_not_queued", job = %name, error = %e, first = %first);
                false
            }
        }
    }

    /// Queues the notice of a change about to be written to `user` — before the write, never
    /// after the answer: the job carries a fresh [`NoticeMark`], the change's own write must put
    /// that mark on the user, and the job, run [`NOTICE_DELAY`] later, mails only if it finds the
    /// mark there (see [`Worker`](super::Worker); the delay is `GATEHOUSE_NOTICE_DELAY_SECONDS`). A change that fails is never announced; one that lands is
    /// announced whatever fails after it (the request cut at its deadline, the answer lost). An
    /// `Err` here means nothing was queued and nothing must be written: the client's retry
    /// starts again.
    pub async fn promise(&self, user: &UserId, mut job: JobPayload) -> Result<NoticeMark, DispatchError> {
        let mark = NoticeMark::generate();
        if let Some(data) = job.data.as_object_mut() {
            data.insert(NOTICE_FIELD.into(), serde_json::Value::from(mark.as_str()));
            data.insert(NOTICE_USER_FIELD.into(), serde_json::Value::from(user.as_str()));
        }
        self.dispatch_after(job, self.notice_delay).await?;
        Ok(mark)
    }

    /// Queues the job that records the event `body` of a fact about to be written to `user`, as
    /// [`Dispatcher::promise`] does for notices: the job carries a fresh [`EventMark`], the event's
    /// id and its time; the fact's own write must put the mark on the user (taking the event's
    /// number from the user's counter), and the job, run after the notice delay, records the
    /// event only if it finds the mark there. An `Err` means nothing was queued and nothing must
    /// be written.
    pub async fn promise_event(&self, user: &UserId, body: EventBody) -> Result<EventMark, DispatchError> {
        let mark = EventMark::generate();
        let data = serde_json::json!({
            EVENT_FIELD: mark.as_str(),
            EVENT_USER_FIELD: user.as_str(),
            "event_id": EventId::generate().as_str(),
            "occurred_at": crate::values::clock::epoch_millis(self.stores.clock.now()),
            "body": body,
        });
        let mut job = JobPayload::notification(RECORD_EVENT, data);
        job.display_name = format!("Gatehouse\\Events\\{RECORD_EVENT}");
        // Tried for about 49 minutes (a mail's 4 would lose the event to a short outage), which
        // stays under the wait a delivery gives a missing number (`deliveries::GAP_PATIENCE`).
        job.max_tries = Some(RECORD_EVENT_BACKOFF.len() as u32 + 1);
        job.backoff = RECORD_EVENT_BACKOFF.to_vec();
        self.dispatch_after(job, self.notice_delay).await?;
        Ok(mark)
    }

    /// Sends `job` to run after `delay`. SQS delays at most 15 minutes: a longer delay records when
    /// the job is due and sends it delayed by the maximum; the worker re-delays it, step by step,
    /// until it is due.
    pub async fn dispatch_after(&self, mut job: JobPayload, delay: Duration) -> Result<String, DispatchError> {
        let step = if delay > MAX_QUEUE_DELAY {
            let due = self.stores.clock.now() + Span::from_std(delay).unwrap_or(Span::MAX);
            job.available_at = Some(epoch_seconds(due));
            MAX_QUEUE_DELAY
        } else {
            delay
        };
        let body = job.to_body();
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(DispatchError::TooLarge { size: body.len() });
        }
        Ok(self.stores.queue.send(&body, step).await?)
    }

    /// Creates a batch of `jobs` (each marked with the batch id) and dispatches them. Follow-up
    /// jobs in `options` run when the batch ends (`then` if nothing failed, `catch` on the first
    /// failure, `finally` always).
    pub async fn dispatch_batch(
        &self,
        name: &str,
        jobs: Vec<JobPayload>,
        options: BatchOptions,
    ) -> Result<Batch, DispatchError> {
        let now = self.stores.clock.now();
        let n = jobs.len() as u64;
        let batch = Batch {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.to_owned(),
            total_jobs: n,
            pending_jobs: n,
            failed_jobs: 0,
            failed_job_ids: vec![],
            options,
            cancelled_at: None,
            created_at: now,
            finished_at: None,
            expires_at: Some(now + self.batch_retention),
        };
        for job in &jobs {
            let size = job.to_body().len() + batch.id.len() + 16;
            if size > MAX_MESSAGE_BYTES {
                return Err(DispatchError::TooLarge { size });
            }
        }
        self.stores.job_batches.create(&batch).await?;
        for mut job in jobs {
            job.batch_id = Some(batch.id.clone());
            self.dispatch(job).await?;
        }
        Ok(batch)
    }
}
