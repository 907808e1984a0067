//! Recording the events of facts (#32, docs/design/events.md): the job a fact promised before
//! its write ([`Dispatcher::promise_event`](crate::queue::Dispatcher::promise_event)) runs once
//! the worker found the fact's mark on the user (or kept aside by the account's deletion), reads
//! the number the write took, and writes the event to the `events` table. Delivery (step S4)
//! starts from here.

use crate::config::Config;
use crate::queue::{JobContext, JobError, JobHandler, RECORD_EVENT};
use crate::tables::events::{Appended, Event, EventBody, EventId};
use crate::tables::jobs::JobPayload;
use crate::tables::users::{EventMark, UserId};
use async_trait::async_trait;
use std::sync::Arc;

/// The job named [`RECORD_EVENT`].
pub struct RecordEvent {
    pub config: Arc<Config>,
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
        let seq = match ctx.stores.users.find(&user).await? {
            Some(u) => u.pending_events.get(mark.as_str()).copied(),
            None => ctx.stores.cache.get(&mark.kept_key()).await?.and_then(|v| v.as_u64()),
        };
        let Some(seq) = seq else {
            tracing::info!(event = "event_mark_gone", "the event's mark is gone: recorded before");
            return Ok(());
        };
        let mut event = Event::new(user, seq, occurred_at, body);
        event.id = id;
        let until = ctx.stores.clock.now() + self.config.event_retention;
        match ctx.stores.events.append(&event, until).await? {
            Appended::Added | Appended::Already => {}
            Appended::Taken(other) => {
                return Err(JobError::permanent(format!("event number {seq} is held by {other}")));
            }
        }
        tracing::info!(event = "event_recorded", event_id = %event.id, seq, kind = ?event.body.kind());
        // S4: the deliveries (one job per destination) start here.
        Ok(())
    }
}

/// Registers the event job on `w`.
pub fn register_jobs(w: &mut crate::queue::Worker, config: Arc<Config>) {
    w.register(RECORD_EVENT, RecordEvent { config });
}
