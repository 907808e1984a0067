//! The worker: each message run once in effect however often SQS delivers it (claimed in job_runs, timed out, isolated from panics), retried with backoff or recorded as failed.

use super::dispatch::{DispatchError, Dispatcher, promised, promised_event};
use super::job::{JobContext, JobError, JobHandler, Outcome};
use crate::stores::Stores;
use crate::tables::failed_jobs::FailedJob;
use crate::tables::job_batches::{Batch, Counted};
use crate::tables::job_runs::Claim;
use crate::tables::jobs::{JobPayload, MAX_QUEUE_DELAY, QueueMessage};
use crate::values::clock::{Span, Timestamp, epoch_seconds};
use crate::values::error::StoreError;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// SQS's longest receive wait: what the local worker loop asks for while idle.
pub const IDLE_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Laravel's `connection` and `queue` columns of failed_jobs.
    pub connection: String,
    pub queue: String,
    /// A job's run time when its payload names none; must stay under the function's timeout.
    pub default_timeout: Duration,
    pub failed_retention: Span,
    /// How long a completed run is remembered (at least the queue's retention).
    pub run_retention: Span,
}

impl WorkerSettings {
    pub fn new(queue: impl Into<String>, failed_retention: Span) -> Self {
        Self {
            connection: "sqs".into(),
            queue: queue.into(),
            default_timeout: Duration::from_secs(50),
            failed_retention,
            run_retention: Span::days(15),
        }
    }
}

/// Runs messages through registered handlers.
#[derive(Clone)]
pub struct Worker {
    handlers: HashMap<String, Arc<dyn JobHandler>>,
    stores: Stores,
    dispatcher: Dispatcher,
    settings: WorkerSettings,
}

impl Worker {
    pub fn new(stores: Stores, dispatcher: Dispatcher, settings: WorkerSettings) -> Self {
        Self { handlers: HashMap::new(), stores, dispatcher, settings }
    }

    /// Registers the handler for jobs named `name` (the payload's `job`).
    pub fn register(&mut self, name: &str, handler: impl JobHandler) -> &mut Self {
        self.handlers.insert(name.to_owned(), Arc::new(handler));
        self
    }

    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    fn now(&self) -> Timestamp {
        self.stores.clock.now()
    }

    /// The local worker loop (`gatehouse serve`, `queue:work`): long-polls the queue ([`IDLE_WAIT`]
    /// for the first message, so an idle worker asks at most three times a minute) and processes
    /// what arrives, until `stop` completes — or, with `until_empty`, until a 1-second poll finds
    /// nothing. A poll in flight is abandoned as soon as `stop` completes; a job being processed
    /// is finished first. A message SQS handed to the abandoned poll in its last moment becomes
    /// visible again after its visibility timeout, with one receive counted and no run: a job
    /// allowed a single try then lands in failed_jobs unrun (`queue:retry` runs it), one with more
    /// tries has one fewer. A store error is logged and the poll retried after 1 s,
    /// except with `until_empty`, where it is returned. Returns how many messages it handled.
    pub async fn run(&self, stop: impl Future<Output = ()>, until_empty: bool) -> Result<usize, StoreError> {
        let mut stop = std::pin::pin!(stop);
        let wait = if until_empty { Duration::from_secs(1) } else { IDLE_WAIT };
        let mut handled = 0;
        loop {
            let received = tokio::select! {
                biased;
                () = &mut stop => return Ok(handled),
                r = self.stores.queue.receive(10, wait, None) => r,
            };
            match received {
                Ok(msgs) if msgs.is_empty() && until_empty => return Ok(handled),
                Ok(msgs) => {
                    for m in &msgs {
                        let outcome = self.process(m).await;
                        if let Err(e) = self.settle(m, &outcome).await {
                            tracing::warn!(error = %e, message_id = %m.message_id, "could not settle a message; it will be received again");
                        }
                    }
                    handled += msgs.len();
                }
                Err(e) if until_empty => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "worker poll failed; retrying in 1 s");
                    tokio::select! {
                        () = &mut stop => return Ok(handled),
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    /// Receives up to 10 messages (waiting up to `wait` for the first), processes each and settles
    /// it with the queue. Returns how many it handled. (The local worker loop and `queue:work`;
    /// on Lambda the SQS event source receives and deletes.)
    pub async fn poll_once(&self, wait: Duration) -> Result<usize, StoreError> {
        let msgs = self.stores.queue.receive(10, wait, None).await?;
        for m in &msgs {
            let outcome = self.process(m).await;
            self.settle(m, &outcome).await?;
        }
        Ok(msgs.len())
    }

    /// Deletes a finished message, or makes a retried one visible again after its backoff.
    pub async fn settle(&self, msg: &QueueMessage, outcome: &Outcome) -> Result<(), StoreError> {
        match outcome {
            Outcome::Retry { after } => self.stores.queue.change_visibility(&msg.receipt_handle, *after).await,
            _ => self.stores.queue.delete(&msg.receipt_handle).await,
        }
    }

    /// Processes one delivery. Store failures along the way become `Retry`, never a lost job.
    pub async fn process(&self, msg: &QueueMessage) -> Outcome {
        match self.try_process(msg).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(message_id = %msg.message_id, error = %e, "job bookkeeping failed; the message will be retried");
                Outcome::Retry { after: Duration::from_secs(5) }
            }
        }
    }

    async fn try_process(&self, msg: &QueueMessage) -> Result<Outcome, StoreError> {
        let job = match JobPayload::from_body(&msg.body) {
            Ok(j) => j,
            Err(e) => {
                let uuid = format!("undecodable-{}", msg.message_id);
                self.record_failure(&uuid, &msg.body, &format!("undecodable job payload: {e}")).await?;
                tracing::error!(message_id = %msg.message_id, "undecodable job payload recorded in failed_jobs");
                return Ok(Outcome::Failed);
            }
        };
        let span = tracing::info_span!("job", uuid = %job.uuid, job = %job.job);
        let _enter = span.enter();
        let now = self.now();
        if let Some(due) = job.available_at
            && due > epoch_seconds(now)
        {
            let wait = Duration::from_secs((due - epoch_seconds(now)) as u64).min(MAX_QUEUE_DELAY);
            self.stores.queue.send(&msg.body, wait).await?;
            return Ok(Outcome::Skipped("not due yet: re-delayed"));
        }
        // Saturating: `attempts` is whatever the message says, and a payload claiming u32::MAX of
        // them has used up its tries (an overflow panicked here in debug builds and wrapped to a
        // fresh first attempt in release).
        let attempt = job.attempts.saturating_add(msg.receive_count.max(1));
        let Some(handler) = self.handlers.get(&job.job).cloned() else {
            self.fail(&job, msg, &format!("no handler is registered for job {:?}", job.job)).await?;
            return Ok(Outcome::Failed);
        };
        let max_tries = job.max_tries.unwrap_or(1).max(1);
        let timeout = job.timeout.map(|t| Duration::from_secs(t.into())).unwrap_or(self.settings.default_timeout);
        let lease = now + Span::from_std(timeout).unwrap_or(Span::MAX) + Span::seconds(30);
        // Idempotency first: a run that completed is acknowledged however late the duplicate.
        let claimant =
            match self.stores.job_runs.claim(&job.uuid, now, lease, now + self.settings.run_retention).await? {
                Claim::Completed => {
                    // Ran to completion before, but the delivery came back: the batch count may be
                    // what failed after the run was recorded. Counting is idempotent (the job's
                    // mark), so count again; a batch left unfinished by a lost follow-up finishes here.
                    if let Some(batch_id) = &job.batch_id
                        && let Some(counted) = self.stores.job_batches.record_success(batch_id, &job.uuid).await?
                    {
                        self.after_batch_count(counted, false).await?;
                    }
                    return Ok(Outcome::Completed);
                }
                Claim::Busy { until } => {
                    let after = (until - now).to_std().unwrap_or(Duration::from_secs(1)).max(Duration::from_secs(1));
                    return Ok(Outcome::Retry { after });
                }
                Claim::Claimed(claimant) => claimant,
            };
        let give_up = if job.retry_until.is_some_and(|until| epoch_seconds(now) > until) {
            Some("the job's retryUntil has passed".to_owned())
        } else if attempt > max_tries {
            Some(format!("the job has been attempted too many times ({attempt} > maxTries {max_tries})"))
        } else {
            None
        };
        if let Some(reason) = give_up {
            self.stores.job_runs.release(&job.uuid, &claimant).await?;
            self.fail(&job, msg, &reason).await?;
            return Ok(Outcome::Failed);
        }
        if let Some(batch_id) = &job.batch_id
            && let Some(batch) = self.stores.job_batches.find(batch_id).await?
            && batch.cancelled_at.is_some()
        {
            self.stores.job_runs.complete(&job.uuid, now, now + self.settings.run_retention).await?;
            if let Some(counted) = self.stores.job_batches.record_success(batch_id, &job.uuid).await? {
                self.after_batch_count(counted, false).await?;
            }
            return Ok(Outcome::Skipped("batch cancelled"));
        }

        // A promised notice ([`Dispatcher::promise`]) goes out only if its change was made: its
        // mark is on the user. Read consistently; the job ran `NOTICE_DELAY` after it was queued.
        let promise = match promised(&job) {
            Ok(p) => p,
            Err(why) => {
                self.stores.job_runs.release(&job.uuid, &claimant).await?;
                self.fail(&job, msg, why).await?;
                return Ok(Outcome::Failed);
            }
        };
        // A promised event ([`Dispatcher::promise_event`]) likewise: recorded only if its fact's
        // write put the mark (and its number) on the user, or the deletion kept it aside.
        let event = match promised_event(&job) {
            Ok(p) => p,
            Err(why) => {
                self.stores.job_runs.release(&job.uuid, &claimant).await?;
                self.fail(&job, msg, why).await?;
                return Ok(Outcome::Failed);
            }
        };
        if let Some((user, mark)) = &promise {
            // A deleted account's marks were kept aside by its deletion: a change made just before
            // the account went is still told (to the address the job carries).
            let made = match self.stores.users.find(user).await? {
                Some(u) => u.pending_notices.iter().any(|m| m == mark.as_str()),
                None => self.stores.cache.get(&mark.kept_key()).await?.is_some(),
            };
            if !made {
                self.stores.job_runs.complete(&job.uuid, now, now + self.settings.run_retention).await?;
                tracing::info!(event = "notice_not_due", "the change the notice was promised for was not made");
                return Ok(Outcome::Skipped("the promised change was not made"));
            }
        }
        if let Some((user, mark)) = &event {
            let made = match self.stores.users.find(user).await? {
                Some(u) => u.pending_events.contains_key(mark.as_str()),
                None => self.stores.cache.get(&mark.kept_key()).await?.is_some(),
            };
            if !made {
                self.stores.job_runs.complete(&job.uuid, now, now + self.settings.run_retention).await?;
                tracing::info!(event = "event_not_due", "the fact the event was promised for did not happen");
                return Ok(Outcome::Skipped("the promised fact did not happen"));
            }
        }

        let ctx = JobContext { stores: self.stores.clone(), dispatcher: self.dispatcher.clone(), attempt };
        let run = {
            let job = job.clone();
            tokio::spawn(async move { handler.handle(&job, &ctx).await })
        };
        // A run past its timeout is stopped, not left detached: its claim is released below, and
        // a retry must not run beside it (on Lambda it would go on in the next thawed invocation).
        let abort = run.abort_handle();
        let result = match tokio::time::timeout(timeout, run).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) if join.is_panic() => {
                Err(JobError::retry_msg(format!("the job panicked: {}", panic_message(join))))
            }
            Ok(Err(join)) => Err(JobError::retry_msg(format!("the job was cancelled: {join}"))),
            Err(_) => {
                abort.abort();
                Err(JobError::retry_msg(format!("the job timed out after {}s", timeout.as_secs())))
            }
        };

        match result {
            Ok(()) => {
                // The job's effects happened: recording that is worth more than one call's luck
                // (a completion that is not recorded runs the job again once its lease is over).
                let until = self.now() + self.settings.run_retention;
                persist(|| self.stores.job_runs.complete(&job.uuid, self.now(), until)).await?;
                // The mark has done its work (the completed run is what stops a second mail).
                if let Some((user, mark)) = &promise
                    && let Err(e) = self.stores.users.clear_notice(user, mark).await
                {
                    tracing::warn!(event = "notice_mark_left", error = %e);
                }
                if let Some((user, mark)) = &event
                    && let Err(e) = self.stores.users.clear_event(user, mark).await
                {
                    tracing::warn!(event = "event_mark_left", error = %e);
                }
                if let Some(batch_id) = &job.batch_id
                    && let Some(counted) = self.stores.job_batches.record_success(batch_id, &job.uuid).await?
                {
                    self.after_batch_count(counted, false).await?;
                }
                tracing::info!(attempt, "job completed");
                Ok(Outcome::Completed)
            }
            Err(e) => {
                let exhausted = e.is_permanent()
                    || attempt >= max_tries
                    || job.max_exceptions.is_some_and(|m| attempt >= m)
                    || job
                        .retry_until
                        .is_some_and(|u| epoch_seconds(self.now()) + (job.backoff_for(attempt).as_secs() as i64) > u);
                // An unreleased claim holds the next attempt off until its lease ends.
                persist(|| self.stores.job_runs.release(&job.uuid, &claimant)).await?;
                if exhausted {
                    tracing::warn!(attempt, error = %e, "job failed for good");
                    self.fail(&job, msg, &format!("{}: {e}", job.display_name)).await?;
                    Ok(Outcome::Failed)
                } else {
                    let after = job.backoff_for(attempt);
                    tracing::info!(attempt, error = %e, retry_in = after.as_secs(), "job failed; will retry");
                    Ok(Outcome::Retry { after })
                }
            }
        }
    }

    async fn record_failure(&self, uuid: &str, body: &str, exception: &str) -> Result<(), StoreError> {
        let now = self.now();
        self.stores
            .failed_jobs
            .record(&FailedJob {
                uuid: uuid.to_owned(),
                connection: self.settings.connection.clone(),
                queue: self.settings.queue.clone(),
                payload: body.to_owned(),
                exception: exception.to_owned(),
                failed_at: now,
                expires_at: Some(now + self.settings.failed_retention),
            })
            .await
    }

    async fn fail(&self, job: &JobPayload, msg: &QueueMessage, exception: &str) -> Result<(), StoreError> {
        self.record_failure(&job.uuid, &msg.body, exception).await?;
        if let Some(batch_id) = &job.batch_id
            && let Some(counted) = self.stores.job_batches.record_failure(batch_id, &job.uuid).await?
        {
            self.after_batch_count(counted, true).await?;
        }
        Ok(())
    }

    /// Dispatches a batch's follow-up jobs. Each gets a uuid derived from the batch, so that even
    /// when a crash makes us dispatch twice, the job runs once.
    async fn after_batch_count(&self, counted: Counted, failed: bool) -> Result<(), StoreError> {
        let b = &counted.batch;
        if failed && counted.newly_counted && b.failed_jobs == 1 {
            self.follow_ups(b, "catch", &b.options.catch).await?;
            if !b.options.allow_failures {
                self.stores.job_batches.cancel(&b.id, self.now()).await?;
            }
        }
        if b.all_jobs_done() && b.finished_at.is_none() {
            if b.failed_jobs == 0 {
                self.follow_ups(b, "then", &b.options.then).await?;
            }
            self.follow_ups(b, "finally", &b.options.finally).await?;
            self.stores.job_batches.mark_finished(&b.id, self.now()).await?;
        }
        Ok(())
    }

    async fn follow_ups(&self, b: &Batch, kind: &str, jobs: &[serde_json::Value]) -> Result<(), StoreError> {
        for (i, raw) in jobs.iter().enumerate() {
            let Ok(mut job) = serde_json::from_value::<JobPayload>(raw.clone()) else {
                tracing::error!(batch_id = %b.id, kind, "a batch follow-up job is not a job payload; skipped");
                continue;
            };
            job.uuid = format!("{}-{kind}-{i}", b.id);
            job.batch_id = None;
            if let Some(obj) = job.data.as_object_mut() {
                obj.insert("batch_id".into(), serde_json::Value::String(b.id.clone()));
            }
            match self.dispatcher.dispatch(job).await {
                Ok(_) => {}
                Err(DispatchError::Store(e)) => return Err(e),
                Err(e) => {
                    tracing::error!(batch_id = %b.id, kind, error = %e, "a batch follow-up job could not be dispatched")
                }
            }
        }
        Ok(())
    }
}

/// Runs `write` again, up to three times in all with a short pause, while the store is
/// unavailable (on top of the SDK's own retries, which give up within a second or two of
/// throttling): for the writes that record what already happened.
async fn persist<F, Fut>(mut write: F) -> Result<(), StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    let mut pause = Duration::from_millis(200);
    for _ in 0..2 {
        match write().await {
            Err(StoreError::Unavailable(why)) => {
                tracing::warn!(error = %why, retry_in_ms = pause.as_millis() as u64, "recording a finished job failed");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            other => return other,
        }
    }
    write().await
}

fn panic_message(join: tokio::task::JoinError) -> String {
    let payload = join.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}
