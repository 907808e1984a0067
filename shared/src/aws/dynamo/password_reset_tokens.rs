//! `password_reset_tokens`: keyed by the normalised email, one live token each; TTL on
//! `expires_at`. Throttle and single use are conditions on the write, not reads before it.

use super::{LIVE, Table, condition_failed, from_ms, from_secs, key1, ms, n, s, secs};
use crate::clock::Timestamp;
use crate::email::Email;
use crate::error::{StoreError, StoreResult};
use crate::password_reset_tokens::{ResetRecord, ResetStore};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct ResetItem {
    email: String,
    token_hash: String,
    created_at: i64,
    expires_at: i64,
}

pub struct DynamoResets {
    t: Table,
}

impl DynamoResets {
    pub fn new(t: Table) -> Self {
        Self { t }
    }
}

#[async_trait]
impl ResetStore for DynamoResets {
    async fn put_unless_throttled(&self, r: &ResetRecord, throttle_since: Timestamp) -> StoreResult<bool> {
        let item = self.t.encode(&ResetItem {
            email: r.email.normalized(),
            token_hash: r.token_hash.clone(),
            created_at: ms(r.created_at),
            expires_at: secs(r.expires_at),
        })?;
        let res = self
            .t
            .client
            .put_item()
            .table_name(&self.t.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(email) OR expires_at <= :now_s OR created_at <= :since")
            .expression_attribute_values(":now_s", n(secs(self.t.now())))
            .expression_attribute_values(":since", n(ms(throttle_since)))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(self.t.err(e)),
        }
    }

    async fn find(&self, email: &Email) -> StoreResult<Option<ResetRecord>> {
        let now = self.t.now();
        let Some(item) = self.t.get(key1("email", email.normalized())).await? else {
            return Ok(None);
        };
        let i: ResetItem = self.t.decode(item)?;
        let rec = ResetRecord {
            email: Email::parse(&i.email).map_err(|e| StoreError::corrupt(&self.t.name, format!("email: {e}")))?,
            token_hash: i.token_hash,
            created_at: from_ms(&self.t.name, i.created_at)?,
            expires_at: from_secs(&self.t.name, i.expires_at)?,
        };
        Ok(Some(rec).filter(|r| r.expires_at > now))
    }

    async fn consume(&self, email: &Email, token_hash: &str, now: Timestamp) -> StoreResult<bool> {
        let res = self
            .t
            .client
            .delete_item()
            .table_name(&self.t.name)
            .key("email", s(email.normalized()))
            .condition_expression(format!("attribute_exists(email) AND token_hash = :h AND {LIVE}"))
            .expression_attribute_values(":h", s(token_hash))
            .expression_attribute_values(":now_s", n(secs(now)))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(self.t.err(e)),
        }
    }

    async fn delete(&self, email: &Email) -> StoreResult<()> {
        self.t
            .client
            .delete_item()
            .table_name(&self.t.name)
            .key("email", s(email.normalized()))
            .send()
            .await
            .map_err(|e| self.t.err(e))?;
        Ok(())
    }
}
