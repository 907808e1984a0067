//! Delivering recorded events to webhook endpoints (#32, docs/design/events.md), at least once and
//! in order per user: each recorded event queues one [`DELIVER_EVENTS`] job per live endpoint
//! that wants it ([`dispatch`]); a delivery job sends one user's events to one endpoint in `seq`
//! order from that pair's cursor, signed per Standard Webhooks with the endpoint's live secrets.
//!
//! - One run at a time per (endpoint, user): a lock in `cache_locks`, owned by the job (its
//!   retry takes it back). A job that finds it held queues a run for when the lock will have
//!   expired, and the holder looks once more after releasing it (`last_look`) and queues the
//!   next run for whatever was recorded meanwhile.
//! - One job retries per (endpoint, user): while a failing delivery waits for its next try (a
//!   note in the cache), the jobs of later events leave the pair to it, since it sends
//!   everything from the cursor once the receiver answers. A receiver that is down costs one
//!   job's tries, not one per event.
//! - The cursor (the last number sent, in the `cache` table under the user's keyed tag, so it
//!   names no one) moves only after the receiver answered 2xx: an answer lost after the receiver
//!   took the event means it comes again with the same `webhook-id` (deduplicate on it).
//! - A number not recorded yet (its event job is behind) stops the run: the later event waits
//!   for it. After [`GAP_PATIENCE`] the gap is passed over (its job failed for good) and the
//!   receiver sees the jump in `seq`.
//! - A receiver that fails (not 2xx, unreachable, slower than the client's timeout) fails the
//!   job, which the queue retries with backoff ([`BACKOFF`]) for up to [`RETRY_FOR`], then
//!   records in `failed_jobs` (`gatehouse queue:failed`, `queue:retry`).
//! - An endpoint hears of the facts from its creation on (earlier ones are passed over); a
//!   removed or disabled one is sent nothing. One enabled again sends what was recorded while
//!   it was off (within the retention) with each user's next delivery.
//! - Each event is read just before it is sent (one at a time), so a deletion's redaction
//!   meanwhile is what goes out.

use crate::config::Config;
use crate::queue::{JobContext, JobError, JobHandler};
use crate::tables::cache_locks::LockOwner;
use crate::tables::events::Event;
use crate::tables::jobs::JobPayload;
use crate::tables::users::UserId;
use crate::tables::webhook_endpoints::{WebhookEndpoint, WebhookEndpointId};
use crate::values::clock::{Span, epoch_seconds};
use crate::values::error::StoreError;
use crate::values::webhook_signature::{WebhookId, headers};
use async_trait::async_trait;
use std::sync::Arc;

/// The delivery job: one user's events to one endpoint.
pub const DELIVER_EVENTS: &str = "DeliverEvents";
/// Events sent by one run at most; the next run takes the rest.
pub const PER_RUN: usize = 10;
/// A run stops sending after this long (the next run takes the rest): with one call at the
/// client's 10 s timeout after it, well inside the job's [`JOB_TIMEOUT`].
const RUN_BUDGET: std::time::Duration = std::time::Duration::from_secs(25);
/// The delivery job's timeout (seconds): under the worker function's 60 s.
pub const JOB_TIMEOUT: u32 = 40;
/// How long a run holds its lock at most: more than the job's timeout.
const LOCK_FOR: Span = Span::seconds(60);
/// How long a missing number is waited for before the events after it are sent without it.
pub const GAP_PATIENCE: Span = Span::hours(1);
/// The waits between a failing delivery's tries (seconds; the last one repeats).
pub const BACKOFF: &[u32] = &[5, 30, 120, 600, 1800, 3600, 7200, 14_400];
/// How long a failing delivery is tried before it is a failed job.
pub const RETRY_FOR: Span = Span::hours(72);

/// POSTs a delivery: the receiver's status, or why none came (unreachable, timed out). The
/// job worker's is the process's HTTPS client (`gatehouse_aws::outbound::poster`); tests give
/// their own.
#[async_trait]
pub trait Post: Send + Sync {
    async fn post_json(&self, url: &str, headers: &[(&str, String)], body: Vec<u8>) -> Result<u16, String>;
}

/// Puts a recorded event on the deployment's EventBridge bus (`GATEHOUSE_EVENT_BUS`): source
/// `gatehouse`, detail-type the event's type, detail the event. `Err` when the bus did not take it
/// (the event job is tried again, so the bus gets it at least once). EventBridge keeps no order
/// to its targets: `seq` is the receiver's tool there.
#[async_trait]
pub trait Bus: Send + Sync {
    async fn put(&self, event: &Event) -> Result<(), String>;
}

/// Where recorded events go besides the `events` table: the webhook client, and the bus when the
/// deployment has one.
#[derive(Clone)]
pub struct Outbound {
    pub post: Arc<dyn Post>,
    pub bus: Option<Arc<dyn Bus>>,
}

/// The job that delivers `user`'s events to `endpoint`.
pub fn delivery_job(endpoint: &WebhookEndpointId, user: &UserId, now: crate::values::clock::Timestamp) -> JobPayload {
    let data = serde_json::json!({ "endpoint": endpoint.as_str(), "user": user.as_str() });
    let mut job = JobPayload::new(DELIVER_EVENTS, data);
    job.display_name = format!("Gatehouse\\Events\\{DELIVER_EVENTS}");
    // 20 tries over about 55 hours (within the 72 h and the queue's 25 receives).
    job.max_tries = Some(20);
    job.backoff = BACKOFF.to_vec();
    job.timeout = Some(JOB_TIMEOUT);
    job.retry_until = Some(epoch_seconds(now + RETRY_FOR));
    job
}

/// Queues the delivery of `event` to every enabled endpoint whose filter takes its type: how
/// many. (Those that do not take it pass over its number when they next deliver to the user.)
pub async fn dispatch(ctx: &JobContext, event: &Event) -> Result<usize, StoreError> {
    let now = ctx.stores.clock.now();
    let mut queued = 0;
    for endpoint in ctx.stores.webhook_endpoints.list().await? {
        if endpoint.disabled_at.is_none() && endpoint.matches(event.kind().as_str()) {
            ctx.dispatcher.dispatch(delivery_job(&endpoint.id, &event.user_id, now)).await?;
            queued += 1;
        }
    }
    Ok(queued)
}

/// The job named [`DELIVER_EVENTS`].
pub struct DeliverEvents {
    pub config: Arc<Config>,
    pub post: Arc<dyn Post>,
}

/// Where a run stopped.
enum Stopped {
    /// Everything recorded was sent (or passed over).
    Done,
    /// [`PER_RUN`] sent: more may be waiting.
    Full,
    /// A number is missing; the next one waits until this time at the latest.
    Gap(crate::values::clock::Timestamp),
}

impl DeliverEvents {
    fn tag(&self, endpoint: &WebhookEndpointId, user: &UserId) -> String {
        format!("{}:{}", endpoint.as_str(), self.config.app_key.tag("user-tag", user.as_str()))
    }

    fn cursor_key(&self, endpoint: &WebhookEndpointId, user: &UserId) -> String {
        format!("webhook-cursor:{}", self.tag(endpoint, user))
    }

    fn retrying_key(&self, endpoint: &WebhookEndpointId, user: &UserId) -> String {
        format!("webhook-retrying:{}", self.tag(endpoint, user))
    }

    /// Sends what waits, in order, from the cursor, each event read just before it is sent;
    /// moves the cursor after each.
    async fn run(&self, ctx: &JobContext, endpoint: &WebhookEndpoint, user: &UserId) -> Result<Stopped, JobError> {
        let stores = &ctx.stores;
        let key = self.cursor_key(&endpoint.id, user);
        let mut cursor = stores.cache.get(&key).await?.and_then(|v| v.as_u64());
        let keep_until = Some(stores.clock.now() + self.config.event_retention + Span::days(1));
        let started = std::time::Instant::now();
        for _ in 0..PER_RUN {
            if started.elapsed() > RUN_BUDGET {
                return Ok(Stopped::Full);
            }
            let Some(event) = stores.events.after(user, cursor.unwrap_or(0), 1).await?.pop() else {
                return Ok(Stopped::Done);
            };
            let now = stores.clock.now();
            let expected = cursor.map_or(1, |c| c + 1);
            if event.seq != expected && self.earlier_pending(ctx, user, cursor, event.seq).await? {
                let due = event.occurred_at + GAP_PATIENCE;
                if now < due {
                    return Ok(Stopped::Gap(due));
                }
                tracing::error!(event = "event_gap_passed", endpoint = %endpoint.id, missing_from = expected, next = event.seq);
            }
            // An endpoint hears of what happens from its creation on.
            let before_it = event.occurred_at < endpoint.created_at;
            if !before_it && endpoint.matches(event.kind().as_str()) {
                self.send(ctx, endpoint, &event).await?;
            }
            cursor = Some(event.seq);
            stores.cache.put(&key, &serde_json::json!(event.seq), keep_until).await?;
        }
        Ok(Stopped::Full)
    }

    /// Whether a number before `seq` may still be recorded. Past the cursor, a missing number
    /// surely will be (numbers have no gaps). With no cursor yet (the endpoint's first delivery
    /// to this user, whose earlier events may have expired or predate it), when the user still
    /// has an event promised with a smaller number, or is gone (the marks a deletion keeps are
    /// not the user's to read: wait, as for a gap).
    async fn earlier_pending(
        &self,
        ctx: &JobContext,
        user: &UserId,
        cursor: Option<u64>,
        seq: u64,
    ) -> Result<bool, StoreError> {
        if cursor.is_some() {
            return Ok(true);
        }
        let user = ctx.stores.users.find(user).await?;
        Ok(user.is_none_or(|u| u.pending_events.values().any(|n| *n < seq)))
    }

    /// One POST of `event`, signed with the endpoint's live secrets; `Err` (retried) unless 2xx.
    async fn send(&self, ctx: &JobContext, endpoint: &WebhookEndpoint, event: &Event) -> Result<(), JobError> {
        let now = ctx.stores.clock.now();
        // Checked again at each send, not only when it was added.
        crate::services::webhooks::parse_url(&endpoint.url)
            .map_err(|_| JobError::permanent(format!("{}: the URL is no longer allowed", endpoint.id)))?;
        let secrets = crate::services::webhooks::signing_secrets(&self.config.app_key, endpoint, now)?;
        if secrets.is_empty() {
            return Err(JobError::retry_msg(format!("{}: no live signing secret", endpoint.id)));
        }
        let id =
            WebhookId::parse(event.id.as_str()).map_err(|_| JobError::permanent("an event id is no webhook id"))?;
        let body = serde_json::to_vec(event).map_err(|e| JobError::permanent(format!("the event: {e}")))?;
        let signed = headers(&id, now.timestamp(), &body, &secrets.iter().collect::<Vec<_>>());
        let started = std::time::Instant::now();
        let answer = self.post.post_json(&endpoint.url, &signed, body).await;
        let ms = started.elapsed().as_millis() as u64;
        match answer {
            Ok(status) if (200..300).contains(&status) => {
                tracing::info!(event = "webhook_delivered", endpoint = %endpoint.id, event_id = %event.id, seq = event.seq, status, ms);
                Ok(())
            }
            Ok(status) => {
                tracing::warn!(event = "webhook_refused", endpoint = %endpoint.id, event_id = %event.id, status, ms);
                Err(JobError::retry_msg(format!("{} answered {status}", endpoint.id)))
            }
            Err(why) => {
                tracing::warn!(event = "webhook_unreachable", endpoint = %endpoint.id, event_id = %event.id, error = %why, ms);
                Err(JobError::retry_msg(format!("{}: {why}", endpoint.id)))
            }
        }
    }

    /// After the lock is released: queues the next run when the one that just ended left
    /// something to send (a full run, or an event recorded while it ran, whose own job found the
    /// lock held), or, at a gap, when the gap will be passed over.
    async fn last_look(
        &self,
        ctx: &JobContext,
        endpoint: &WebhookEndpoint,
        user: &UserId,
        stopped: &Stopped,
    ) -> Result<(), StoreError> {
        let now = ctx.stores.clock.now();
        let job = delivery_job(&endpoint.id, user, now);
        let waiting = match stopped {
            Stopped::Full => true,
            Stopped::Gap(due) => {
                let wait = (*due - now).to_std().unwrap_or_default();
                ctx.dispatcher.dispatch_after(job, wait).await?;
                return Ok(());
            }
            // Anything after the cursor (the next run sets a gap's timer itself).
            Stopped::Done => {
                let key = self.cursor_key(&endpoint.id, user);
                let cursor = ctx.stores.cache.get(&key).await?.and_then(|v| v.as_u64()).unwrap_or(0);
                !ctx.stores.events.after(user, cursor, 1).await?.is_empty()
            }
        };
        if waiting {
            ctx.dispatcher.dispatch(job).await?;
        }
        Ok(())
    }
}

fn field<'a>(job: &'a JobPayload, name: &str) -> Result<&'a str, JobError> {
    job.data.get(name).and_then(|v| v.as_str()).ok_or_else(|| JobError::permanent(format!("the job has no {name}")))
}

#[async_trait]
impl JobHandler for DeliverEvents {
    async fn handle(&self, job: &JobPayload, ctx: &JobContext) -> Result<(), JobError> {
        let id = WebhookEndpointId::parse(field(job, "endpoint")?).ok_or_else(|| JobError::permanent("no endpoint"))?;
        let user = UserId::parse(field(job, "user")?).ok_or_else(|| JobError::permanent("no user"))?;
        let Some(endpoint) = ctx.stores.webhook_endpoints.get(&id).await? else {
            tracing::info!(event = "webhook_endpoint_gone", endpoint = %id);
            return Ok(());
        };
        if endpoint.disabled_at.is_some() {
            tracing::info!(event = "webhook_endpoint_disabled", endpoint = %id);
            return Ok(());
        }
        let now = ctx.stores.clock.now();
        // A failing delivery of this pair waits for its next try: it carries this event too.
        let retrying = ctx.stores.cache.get(&self.retrying_key(&id, &user)).await?;
        if retrying.as_ref().and_then(|v| v.as_str()).is_some_and(|holder| holder != job.uuid) {
            tracing::info!(event = "webhook_delivery_retrying", endpoint = %id);
            return Ok(());
        }
        let lock = format!("webhook-delivery:{}", self.tag(&id, &user));
        // The job's own: its retry after a run that died takes the lock back.
        let owner = LockOwner::new(job.uuid.clone());
        let locks = &ctx.stores.cache_locks;
        if !locks.acquire(&lock, &owner, Some(now + LOCK_FOR)).await? {
            // Another run holds it, and looks again when it is done; should it have died, this
            // run comes back once the lock has expired.
            tracing::info!(event = "webhook_delivery_running", endpoint = %id);
            let later = delivery_job(&id, &user, now);
            ctx.dispatcher
                .dispatch_after(later, (LOCK_FOR + Span::seconds(5)).to_std().unwrap_or_default())
                .await
                .map_err(StoreError::from)?;
            return Ok(());
        }
        let ran = self.run(ctx, &endpoint, &user).await;
        let released = locks.release(&lock, &owner).await;
        let stopped = match ran {
            Ok(stopped) => stopped,
            Err(e) => {
                // This job retries the pair until the receiver answers; later events' jobs
                // leave it the pair meanwhile.
                let wait = Span::from_std(job.backoff_for(ctx.attempt)).unwrap_or(Span::MAX);
                let until = Some(ctx.stores.clock.now() + wait + LOCK_FOR + LOCK_FOR);
                ctx.stores.cache.put(&self.retrying_key(&id, &user), &serde_json::json!(job.uuid), until).await?;
                return Err(e);
            }
        };
        released?;
        if retrying.is_some() {
            ctx.stores.cache.forget(&self.retrying_key(&id, &user)).await?;
        }
        self.last_look(ctx, &endpoint, &user, &stopped).await?;
        Ok(())
    }
}

/// Registers the delivery job on `w`, posting with `post`.
pub fn register_jobs(w: &mut crate::queue::Worker, config: Arc<Config>, post: Arc<dyn Post>) {
    w.register(DELIVER_EVENTS, DeliverEvents { config, post });
}
