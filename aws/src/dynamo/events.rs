//! `events`: a user's events keyed by `user_id` and `seq` (a zero-padded string, so the sort key
//! orders numerically), kept until `expires_at` (TTL). An append is one `PutItem` on
//! `attribute_not_exists(seq)`: a number is held by one event; a refused put reads the holder
//! (consistently) and is `Already` when it is this very event (its job run again, or the put sent
//! again by the SDK after its answer was lost).

use super::{Cond, Item, Table, key1, s, secs};
use async_trait::async_trait;
use gatehouse::tables::events::{Appended, Event, EventStore};
use gatehouse::tables::users::UserId;
use gatehouse::values::clock::{Timestamp, epoch_seconds};
use gatehouse::values::error::{StoreError, StoreResult};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct EventItem {
    user_id: String,
    /// [`padded`].
    seq: String,
    /// The event's id (`evt_…`), to tell this event from another at its number.
    id: String,
    /// The envelope as the receiver gets it (JSON): its form is fixed by `EVENTS_VERSION`.
    event: String,
    expires_at: i64,
}

/// `seq` as the sort key holds it: 20 digits, so the string order is the number order.
fn padded(seq: u64) -> String {
    format!("{seq:020}")
}

pub struct DynamoEvents {
    t: Table,
}

impl DynamoEvents {
    pub fn new(t: Table) -> Self {
        Self { t }
    }

    fn event_in(&self, item: Item) -> StoreResult<(Event, i64)> {
        let i: EventItem = self.t.decode(item)?;
        let event: Event =
            serde_json::from_str(&i.event).map_err(|e| StoreError::corrupt(&self.t.name, format!("event: {e}")))?;
        Ok((event, i.expires_at))
    }
}

#[async_trait]
impl EventStore for DynamoEvents {
    async fn append(&self, event: &Event, expires_at: Timestamp) -> StoreResult<Appended> {
        let body = serde_json::to_string(event)
            .map_err(|e| StoreError::Rejected(format!("an event cannot be encoded: {e}")))?;
        let item = self.t.encode(&EventItem {
            user_id: event.user_id.as_str().to_owned(),
            seq: padded(event.seq),
            id: event.id.as_str().to_owned(),
            event: body,
            expires_at: secs(expires_at),
        })?;
        if self.t.put_if(item, Cond::new("attribute_not_exists(seq)")).await? {
            return Ok(Appended::Added);
        }
        let mut key = key1("user_id", event.user_id.as_str());
        key.insert("seq".into(), s(padded(event.seq)));
        let Some(held) = self.t.get(key).await? else {
            return Err(StoreError::Unavailable(format!("{}: a refused append found no event", self.t.name)));
        };
        let (held, _) = self.event_in(held)?;
        Ok(if held.id == event.id { Appended::Already } else { Appended::Taken(held.id) })
    }

    async fn after(&self, user: &UserId, seq: u64, limit: usize) -> StoreResult<Vec<Event>> {
        // Page by page, `limit` items at a time: a delivery reads what it sends, not the
        // user's whole backlog (an expired item, not yet taken by TTL, reads one more page).
        let now = epoch_seconds(self.t.now());
        let mut out = Vec::new();
        let mut start = None;
        while out.len() < limit {
            let page = self
                .t
                .client
                .query()
                .table_name(&self.t.name)
                .key_condition_expression("user_id = :u AND seq > :s")
                .expression_attribute_values(":u", s(user.as_str()))
                .expression_attribute_values(":s", s(padded(seq)))
                .consistent_read(true)
                .limit(i32::try_from(limit - out.len()).unwrap_or(i32::MAX).max(1))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.t.err(e))?;
            for item in page.items.unwrap_or_default() {
                let (event, until) = self.event_in(item)?;
                if until > now && out.len() < limit {
                    out.push(event);
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(out)
    }

    async fn redact(&self, user: &UserId) -> StoreResult<usize> {
        let events = self
            .t
            .query_all(
                |q| {
                    q.key_condition_expression("user_id = :u")
                        .expression_attribute_values(":u", s(user.as_str()))
                        .consistent_read(true)
                },
                |item| self.event_in(item),
            )
            .await?;
        let mut n = 0;
        for (mut event, _) in events.into_iter().filter(|(e, _)| !e.redacted) {
            event.redact();
            let body = serde_json::to_string(&event)
                .map_err(|e| StoreError::Rejected(format!("an event cannot be encoded: {e}")))?;
            let mut key = key1("user_id", user.as_str());
            key.insert("seq".into(), s(padded(event.seq)));
            // Only over the item still there (TTL may have taken it meanwhile: nothing to redact).
            let cond = Cond::new("attribute_exists(seq)").name("#e", "event").value(":e", s(body));
            if self.t.update_if(key, "SET #e = :e", cond).await? {
                n += 1;
            }
        }
        Ok(n)
    }
}
