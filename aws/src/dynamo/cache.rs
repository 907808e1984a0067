//! `cache`: keyed by `key`; `value` is a number (N) for integers, so counters are updated in
//! place with one `UpdateItem`, and JSON text (S) for everything else; TTL on `expires_at`. A
//! single-use value taken ([`CacheStore::take_once`]) carries its taker's mark (`taken_by`), when
//! it was taken (`taken_at`, epoch ms) and until when it is kept (`kept_until`, epoch seconds,
//! which `expires_at` becomes).

use super::{Cond, Item, LIVE, Table, Transacted, from_ms, key1, ms, n, s, secs};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};
use gatehouse::tables::cache::{CacheStore, Hit, Hits, Once, check_hits, check_key};
use gatehouse::values::clock::{Timestamp, from_epoch_seconds, is_live};
use gatehouse::values::error::{StoreError, StoreResult};
use serde_json::Value;
use std::collections::HashMap;

pub struct DynamoCache {
    t: Table,
}

impl DynamoCache {
    pub fn new(t: Table) -> Self {
        Self { t }
    }

    fn item(&self, key: &str, value: &Value, expires_at: Option<Timestamp>) -> Item {
        let mut item = key1("key", key);
        let v = match value.as_i64() {
            Some(i) => n(i),
            None => s(value.to_string()),
        };
        item.insert("value".into(), v);
        if let Some(e) = expires_at {
            item.insert("expires_at".into(), n(secs(e)));
        }
        item
    }

    /// The item's value if it is live and not taken, decoded.
    fn live_value(&self, item: &Item) -> StoreResult<Option<Value>> {
        if item.contains_key("taken_by") {
            return Ok(None);
        }
        self.unexpired_value(item)
    }

    /// The item's value if it has not expired (taken or not), decoded.
    fn unexpired_value(&self, item: &Item) -> StoreResult<Option<Value>> {
        let corrupt = |why: &str| StoreError::corrupt(&self.t.name, why);
        let expires_at = match item.get("expires_at") {
            None => None,
            Some(AttributeValue::N(v)) => Some(
                v.parse::<i64>()
                    .ok()
                    .and_then(from_epoch_seconds)
                    .ok_or_else(|| corrupt("expires_at is not epoch seconds"))?,
            ),
            Some(_) => return Err(corrupt("expires_at is not a number")),
        };
        if !is_live(expires_at, self.t.now()) {
            return Ok(None);
        }
        match item.get("value") {
            Some(AttributeValue::N(v)) => {
                Ok(Some(Value::from(v.parse::<i64>().map_err(|_| corrupt("value is not an integer"))?)))
            }
            Some(AttributeValue::S(text)) => {
                serde_json::from_str(text).map(Some).map_err(|_| corrupt("value is not JSON"))
            }
            _ => Err(corrupt("value is missing or of the wrong type")),
        }
    }

    /// Writes only if the key is absent or expired.
    async fn put_if_absent(&self, item: Item) -> StoreResult<bool> {
        let cond = Cond::new("attribute_not_exists(#k) OR expires_at <= :now_s").name("#k", "key").now_s(self.t.now());
        self.t.put_if(item, cond).await
    }

    /// Adds `by` to the number at `key` if `condition` (on `#k` = key and `:now_s`) holds, returning
    /// the attributes `returning` asks for; `None` if the condition failed. A value that is not a
    /// number is a `Conflict` (the value at `key` is not `what`).
    async fn add_to(
        &self,
        key: &str,
        by: i64,
        condition: &str,
        returning: ReturnValue,
        what: &str,
    ) -> StoreResult<Option<Item>> {
        let cond = Cond::new(condition).name("#k", "key").name("#v", "value").value(":by", n(by)).now_s(self.t.now());
        match self.t.send_update(key1("key", key), "SET #v = #v + :by", cond, Some(returning)).await {
            Err(e) if e.code() == Some("ValidationException") => {
                Err(StoreError::Conflict(format!("cache value at {key:?} is not {what}")))
            }
            res => Ok(self.t.conditional(res)?.map(|out| out.attributes.unwrap_or_default())),
        }
    }
}

#[async_trait]
impl CacheStore for DynamoCache {
    async fn hit_all(&self, hits: &[Hit<'_>]) -> StoreResult<Hits> {
        check_hits(hits)?;
        // Each counter: add 1 unless it is full; the first hit creates it with its window's end;
        // an expired one (TTL deletes late) refuses nothing, as if absent.
        let update = "ADD #v :one SET expires_at = if_not_exists(expires_at, :end)";
        let cond = "attribute_not_exists(#v) OR #v < :max OR expires_at <= :now_s";
        let cond_of = |h: &Hit<'_>| {
            Cond::new(cond)
                .name("#v", "value")
                .value(":one", n(1))
                .value(":end", n(secs(h.window_end)))
                .value(":max", n(h.max))
                .now_s(self.t.now())
        };
        if let [h] = hits {
            let counted = self.t.update_if(key1("key", h.key), update, cond_of(h)).await?;
            return Ok(if counted { Hits::Counted } else { Hits::Full(vec![0]) });
        }
        // Several: one transaction, so either every counter takes its hit or none does. Tried
        // three times at most (30 ms of backoff): hits that keep cancelling each other are a
        // flood on these counters, answered as one (`Contended`), not held for long.
        let items = hits
            .iter()
            .map(|h| self.t.transact_update(key1("key", h.key), update, cond_of(h)))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(match self.t.transact(items, 3).await? {
            Transacted::Done => Hits::Counted,
            Transacted::Refused(reasons) => Hits::Full(
                reasons
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.as_str() == "ConditionalCheckFailed")
                    .map(|(i, _)| i)
                    .collect(),
            ),
            Transacted::Contended => Hits::Contended,
        })
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Value>> {
        check_key(key)?;
        match self.t.get(key1("key", key)).await? {
            Some(item) => self.live_value(&item),
            None => Ok(None),
        }
    }

    async fn many(&self, keys: &[String]) -> StoreResult<Vec<Option<Value>>> {
        keys.iter().try_for_each(|k| check_key(k))?;
        let mut found: HashMap<String, Option<Value>> = HashMap::new();
        let mut unique: Vec<&String> = keys.iter().collect();
        unique.sort();
        unique.dedup();
        for chunk in unique.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.iter().map(|k| key1("key", k.as_str())).collect()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Rejected(e.to_string()))?,
            );
            let mut attempts = 0u32;
            while let Some(req) = pending.take() {
                let out = self
                    .t
                    .client
                    .batch_get_item()
                    .request_items(&self.t.name, req)
                    .send()
                    .await
                    .map_err(|e| self.t.err(e))?;
                for item in out.responses.and_then(|mut r| r.remove(&self.t.name)).unwrap_or_default() {
                    if let Some(AttributeValue::S(k)) = item.get("key") {
                        found.insert(k.clone(), self.live_value(&item)?);
                    }
                }
                pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.t.name)).filter(|k| !k.keys.is_empty());
                attempts += 1;
                if pending.is_some() {
                    if attempts > 8 {
                        return Err(StoreError::Unavailable(format!(
                            "{}: batch get left keys unprocessed",
                            self.t.name
                        )));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempts)).await;
                }
            }
        }
        Ok(keys.iter().map(|k| found.get(k).cloned().flatten()).collect())
    }

    async fn put(&self, key: &str, value: &Value, expires_at: Option<Timestamp>) -> StoreResult<()> {
        check_key(key)?;
        self.t.put(self.item(key, value, expires_at)).await
    }

    async fn add(&self, key: &str, value: &Value, expires_at: Option<Timestamp>) -> StoreResult<bool> {
        check_key(key)?;
        self.put_if_absent(self.item(key, value, expires_at)).await
    }

    async fn increment(&self, key: &str, by: i64) -> StoreResult<i64> {
        check_key(key)?;
        let live = format!("attribute_exists(#k) AND {LIVE}");
        for _ in 0..10 {
            match self.add_to(key, by, &live, ReturnValue::UpdatedNew, "an integer").await? {
                Some(attrs) => {
                    return match attrs.get("value") {
                        Some(AttributeValue::N(v)) => v
                            .parse::<i64>()
                            .map_err(|_| StoreError::Conflict(format!("cache counter at {key:?} overflowed"))),
                        _ => Err(StoreError::corrupt(&self.t.name, "increment returned no number")),
                    };
                }
                None => {
                    // Absent or expired: start a fresh counter, unless someone else just did.
                    if self.put_if_absent(self.item(key, &Value::from(by), None)).await? {
                        return Ok(by);
                    }
                }
            }
        }
        Err(StoreError::Unavailable(format!("{}: increment kept racing with expiry", self.t.name)))
    }

    async fn forget(&self, key: &str) -> StoreResult<bool> {
        check_key(key)?;
        match self.t.take(key1("key", key)).await? {
            Some(old) => Ok(self.live_value(&old).unwrap_or(None).is_some()),
            None => Ok(false),
        }
    }

    async fn get_once(&self, key: &str, mark: &str) -> StoreResult<Option<Once>> {
        check_key(key)?;
        let Some(item) = self.t.get(key1("key", key)).await? else { return Ok(None) };
        let Some(value) = self.unexpired_value(&item)? else { return Ok(None) };
        match item.get("taken_by") {
            None => Ok(Some(Once::Open(value))),
            Some(AttributeValue::S(by)) if by == mark => Ok(Some(Once::Taken { value, at: self.taken_at(&item)? })),
            Some(_) => Ok(None),
        }
    }

    async fn take_once(&self, key: &str, mark: &str, keep_until: Timestamp) -> StoreResult<Option<Timestamp>> {
        check_key(key)?;
        // Live and untaken, or taken by this very mark (so the SDK's retry of a take that landed
        // passes as well). The first take sets when and until when; a repeat moves neither (an
        // update's operands read the item as it was).
        let cond = Cond::new(format!(
            "attribute_exists(#k) AND {LIVE} AND (attribute_not_exists(taken_by) OR taken_by = :mark)"
        ))
        .name("#k", "key")
        .value(":mark", s(mark))
        .value(":now_ms", n(ms(self.t.now())))
        .value(":keep", n(secs(keep_until)))
        .now_s(self.t.now());
        let update = "SET taken_by = :mark, taken_at = if_not_exists(taken_at, :now_ms), \
                      kept_until = if_not_exists(kept_until, :keep), expires_at = if_not_exists(kept_until, :keep)";
        match self.t.update_if_returning(key1("key", key), update, cond).await? {
            Some(item) => Ok(Some(self.taken_at(&item)?)),
            None => Ok(None),
        }
    }
}

impl DynamoCache {
    /// When a taken item was first taken.
    fn taken_at(&self, item: &Item) -> StoreResult<Timestamp> {
        match item.get("taken_at") {
            Some(AttributeValue::N(v)) => from_ms(
                &self.t.name,
                v.parse::<i64>().map_err(|_| StoreError::corrupt(&self.t.name, "taken_at is not a number"))?,
            ),
            _ => Err(StoreError::corrupt(&self.t.name, "a taken item has no taken_at")),
        }
    }
}
