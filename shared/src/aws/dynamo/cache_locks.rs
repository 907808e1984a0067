//! `cache_locks`: keyed by `key`, holding `owner`; TTL on `expires_at`. Acquire, refresh and
//! release are single conditional writes on the owner, so a lock is never freed by a non-owner.

use super::{LIVE, Table, condition_failed, key1, n, s, secs};
use crate::cache_locks::{LockOwner, LockStore};
use crate::clock::{Timestamp, from_epoch_seconds, is_live};
use crate::error::{StoreError, StoreResult};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

pub struct DynamoLocks {
    t: Table,
}

impl DynamoLocks {
    pub fn new(t: Table) -> Self {
        Self { t }
    }
}

#[async_trait]
impl LockStore for DynamoLocks {
    async fn acquire(&self, key: &str, owner: &LockOwner, expires_at: Option<Timestamp>) -> StoreResult<bool> {
        let mut item = key1("key", key);
        item.insert("owner".into(), s(owner.as_str()));
        if let Some(e) = expires_at {
            item.insert("expires_at".into(), n(secs(e)));
        }
        let res = self
            .t
            .client
            .put_item()
            .table_name(&self.t.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#k) OR #o = :o OR expires_at <= :now_s")
            .expression_attribute_names("#k", "key")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":o", s(owner.as_str()))
            .expression_attribute_values(":now_s", n(secs(self.t.now())))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(self.t.err(e)),
        }
    }

    async fn refresh(&self, key: &str, owner: &LockOwner, expires_at: Option<Timestamp>) -> StoreResult<bool> {
        let mut req = self
            .t
            .client
            .update_item()
            .table_name(&self.t.name)
            .key("key", s(key))
            .condition_expression(format!("#o = :o AND {LIVE}"))
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":o", s(owner.as_str()))
            .expression_attribute_values(":now_s", n(secs(self.t.now())));
        req = match expires_at {
            Some(e) => req.update_expression("SET expires_at = :e").expression_attribute_values(":e", n(secs(e))),
            None => req.update_expression("REMOVE expires_at"),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(self.t.err(e)),
        }
    }

    async fn release(&self, key: &str, owner: &LockOwner) -> StoreResult<bool> {
        let res = self
            .t
            .client
            .delete_item()
            .table_name(&self.t.name)
            .key("key", s(key))
            .condition_expression("#o = :o")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":o", s(owner.as_str()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(self.t.err(e)),
        }
    }

    async fn force_release(&self, key: &str) -> StoreResult<()> {
        self.t
            .client
            .delete_item()
            .table_name(&self.t.name)
            .key("key", s(key))
            .send()
            .await
            .map_err(|e| self.t.err(e))?;
        Ok(())
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
