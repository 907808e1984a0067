//! `cache_locks`: keyed by `key`, holding `owner`; TTL on `expires_at`. Acquire, refresh and
//! release are single conditional writes on the owner, so a lock is never freed by a non-owner.

use super::{Cond, LIVE, Table, key1, n, s, secs};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use gatehouse::tables::cache_locks::{CacheLockStore, LockOwner};
use gatehouse::values::clock::{Timestamp, from_epoch_seconds, is_live};
use gatehouse::values::error::{StoreError, StoreResult};

pub struct DynamoCacheLocks {
    t: Table,
}

impl DynamoCacheLocks {
    pub fn new(t: Table) -> Self {
        Self { t }
    }
}

#[async_trait]
impl CacheLockStore for DynamoCacheLocks {
    async fn acquire(&self, key: &str, owner: &LockOwner, expires_at: Option<Timestamp>) -> StoreResult<bool> {
        let mut item = key1("key", key);
        item.insert("owner".into(), s(owner.as_str()));
        if let Some(e) = expires_at {
            item.insert("expires_at".into(), n(secs(e)));
        }
        let cond = Cond::new("attribute_not_exists(#k) OR #o = :o OR expires_at <= :now_s")
            .name("#k", "key")
            .name("#o", "owner")
            .value(":o", s(owner.as_str()))
            .now_s(self.t.now());
        self.t.put_if(item, cond).await
    }

    async fn refresh(&self, key: &str, owner: &LockOwner, expires_at: Option<Timestamp>) -> StoreResult<bool> {
        let cond = Cond::new(format!("#o = :o AND {LIVE}"))
            .name("#o", "owner")
            .value(":o", s(owner.as_str()))
            .now_s(self.t.now());
        let (update, cond) = match expires_at {
            Some(e) => ("SET expires_at = :e", cond.value(":e", n(secs(e)))),
            None => ("REMOVE expires_at", cond),
        };
        self.t.update_if(key1("key", key), update, cond).await
    }

    async fn release(&self, key: &str, owner: &LockOwner) -> StoreResult<bool> {
        self.t
            .delete_if(key1("key", key), Cond::new("#o = :o").name("#o", "owner").value(":o", s(owner.as_str())))
            .await
    }

    async fn force_release(&self, key: &str) -> StoreResult<()> {
        self.t.delete(key1("key", key)).await
    }

    async fn owner(&self, key: &str) -> StoreResult<Option<LockOwner>> {
        let Some(item) = self.t.get(key1("key", key)).await? else {
            return Ok(None);
        };
        let corrupt = |why: &str| StoreError::corrupt(&self.t.name, why);
        let expires_at = match item.get("expires_at") {
            None => None,
            Some(AttributeValue::N(v)) => {
                Some(v.parse::<i64>().ok().and_then(from_epoch_seconds).ok_or_else(|| corrupt("bad expires_at"))?)
            }
            Some(_) => return Err(corrupt("expires_at is not a number")),
        };
        match item.get("owner") {
            Some(AttributeValue::S(o)) => Ok(is_live(expires_at, self.t.now()).then(|| LockOwner::new(o.clone()))),
            _ => Err(corrupt("owner is missing or not a string")),
        }
    }
}
