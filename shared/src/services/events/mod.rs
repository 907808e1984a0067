//! Recording the events of facts (#32, docs/design/events.md): the job a fact promised before
//! its write ([`Dispatcher::promise_event`](crate::queue::Dispatcher::promise_event)) runs once
//! the worker found the fact's mark on the user (or kept aside by the account's deletion), reads
//! the number the write took, and writes the event to the `events` table, then queues its
//! deliveries ([`crate::services::deliveries`]).

use crate::config::Config;
use crate::queue::{Dispatcher, JobContext, JobError, JobHandler, RECORD_EVENT};
use crate::services::auth::ClientMeta;
use crate::tables::events::{Appended, Client, Event, EventBody, EventId};
use crate::tables::jobs::JobPayload;
use crate::tables::users::{EventMark, UserId};
use crate::values::error::StoreError;
use async_trait::async_trait;
use std::sync::Arc;

/// The job named [`RECORD_EVENT`].
pub struct RecordEvent {
    pub config: Arc<Config>,
    /// The EventBridge bus, when the deployment has one.
    pub bus: Option<Arc<dyn crate::services::deliveries::Bus>>,
}

fn field<'a>(job: &'a JobPayload, name: &str) -> Result<&'a str, JobError> {
    job.data.get(name).and_then(|v| v.as_str()).ok_or_else(|| JobError::permanent(format!("the job has no {name}")))
}

#[async_trait]
impl JobHandler for RecordEvent {
    async fn handle(&self, job: &JobPayload, ctx: &JobContext) -> Result<(), JobError> {
        let user = UserId::parse(field(job, "event_user")?).ok_or_else(|| JobError::permanent("no user"))?;
        let mark = EventMark::parse(field(job, "event_mark")?).ok_or_else(|| JobError::permanent("no mark"))?;
        let id = EventId::parse(field(job, "event_id")?).ok_or_else(|| JobError::permanent("no event id"))?;
        let occurred_at = job
            .data
            .get("occurred_at")
            .and_then(|v| v.as_i64())
            .and_then(crate::values::clock::from_epoch_millis)
            .ok_or_else(|| JobError::permanent("no time"))?;
        let body: EventBody = serde_json::from_value(job.data.get("body").cloned().unwrap_or_default())
            .map_err(|e| JobError::permanent(format!("the event body: {e}")))?;
        // The number the fact's write took: on the user, or kept by its deletion. Gone: the mark
        // was cleared after this very event was recorded (its completion was what got lost).
        let (seq, live) = match ctx.stores.users.find(&user).await? {
            Some(u) => (u.pending_events.get(mark.as_str()).copied(), true),
            None => (ctx.stores.cache.get(&mark.kept_key()).await?.and_then(|v| v.as_u64()), false),
        };
        let Some(seq) = seq else {
            tracing::info!(event = "event_mark_gone", "the event's mark is gone: recorded before");
            return Ok(());
        };
        let mut event = Event::new(user.clone(), seq, occurred_at, body);
        event.id = id;
        if !live {
            // The account went before its event was recorded: only what a deleted user's events keep.
            event.redact();
        }
        let until = ctx.stores.clock.now() + self.config.event_retention;
        match ctx.stores.events.append(&event, until).await? {
            Appended::Added | Appended::Already => {}
            Appended::Taken(other) => {
                return Err(JobError::permanent(format!("event number {seq} is held by {other}")));
            }
        }
        // A deletion finishing between the read above and the append redacted the user's events
        // without this one: read again (after the append), and redact what the deletion missed.
        // Gone at the first read too: this event may be a retry's, stored unredacted by a first
        // try that read the user live (and was cut before its second read).
        let gone = !live || ctx.stores.users.find(&user).await?.is_none();
        if gone {
            ctx.stores.events.redact(&user).await?;
            // What goes on the bus and to the endpoints is what the table keeps.
            event.redact();
        }
        tracing::info!(event = "event_recorded", event_id = %event.id, seq, kind = ?event.body.kind());
        // On the bus (again on a retry: at least once).
        if let Some(bus) = &self.bus {
            bus.put(&event).await.map_err(|e| JobError::retry_msg(format!("the event bus: {e}")))?;
        }
        // The deliveries: one job per endpoint that wants it (again on a retry: each delivery
        // sends from its cursor, so a second job sends nothing twice).
        let queued = crate::services::deliveries::dispatch(ctx, &event).await?;
        if queued > 0 {
            tracing::info!(event = "event_deliveries_queued", event_id = %event.id, endpoints = queued);
        }
        Ok(())
    }
}

/// Promises the event `body` of a fact about to be written to `user`
/// ([`Dispatcher::promise_event`]): the fact's write must carry the mark. `Err`: nothing was
/// queued, and nothing must be written.
pub async fn promise(dispatcher: &Dispatcher, user: &UserId, body: EventBody) -> Result<EventMark, StoreError> {
    Ok(dispatcher.promise_event(user, body).await?)
}

/// Where a request came from, as an event says it (personal data, [`Client`]); `None` when the
/// request said nothing.
pub fn client(meta: &ClientMeta) -> Option<Client> {
    (meta.ip.is_some() || meta.user_agent.is_some())
        .then(|| Client { ip: meta.ip.clone(), user_agent: meta.user_agent.clone() })
}

/// Registers the event job on `w`.
pub fn register_jobs(
    w: &mut crate::queue::Worker,
    config: Arc<Config>,
    bus: Option<Arc<dyn crate::services::deliveries::Bus>>,
) {
    w.register(RECORD_EVENT, RecordEvent { config, bus });
}
