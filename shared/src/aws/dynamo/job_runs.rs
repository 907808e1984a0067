//! `job_runs`: keyed by job uuid; `state` is `running` (with `lease_until`, ms) or `completed`;
//! TTL on `expires_at`.

use super::{Table, condition_failed, from_ms, key1, ms, n, s, secs};
use crate::clock::{Timestamp, from_epoch_seconds};
use crate::error::{StoreError, StoreResult};
use crate::job_runs::{Claim, JobRunStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

pub struct DynamoJobRuns {
    t: Table,
}

impl DynamoJobRuns {
    pub fn new(t: Table) -> Self {
        Self { t }
    }
}

fn num(item: &super::Item, k: &str) -> Option<i64> {
    match item.get(k) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

#[async_trait]
impl JobRunStore for DynamoJobRuns {
    async fn claim(
        &self,
        uuid: &str,
        now: Timestamp,
        lease_until: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<Claim> {
        for _ in 0..3 {
            let res = self
                .t
                .client
                .put_item()
                .table_name(&self.t.name)
                .item("uuid", s(uuid))
                .item("state", s("running"))
                .item("lease_until", n(ms(lease_until)))
                .item("expires_at", n(secs(expires_at)))
                .condition_expression(
                    "attribute_not_exists(#u) OR expires_at <= :now_s OR (#s = :running AND lease_until <= :now_ms)",
                )
                .expression_attribute_names("#u", "uuid")
                .expression_attribute_names("#s", "state")
                .expression_attribute_values(":running", s("running"))
                .expression_attribute_values(":now_s", n(secs(self.t.now())))
                .expression_attribute_values(":now_ms", n(ms(now)))
                .send()
                .await;
            match res {
                Ok(_) => return Ok(Claim::Claimed),
                Err(e) if condition_failed(&e) => {
                    let Some(item) = self.t.get(key1("uuid", uuid)).await? else {
                        continue; // released in between: try again
                    };
                    let live = num(&item, "expires_at").and_then(from_epoch_seconds).is_some_and(|e| e > self.t.now());
                    if !live {
                        continue;
                    }
                    return match item.get("state") {
                        Some(AttributeValue::S(st)) if st == "completed" => Ok(Claim::Completed),
                        Some(AttributeValue::S(st)) if st == "running" => {
                            let until = num(&item, "lease_until")
                                .ok_or_else(|| StoreError::corrupt(&self.t.name, "lease_until missing"))?;
                            Ok(Claim::Busy { until: from_ms(&self.t.name, until)? })
                        }
                        _ => Err(StoreError::corrupt(&self.t.name, "state is missing or unknown")),
                    };
                }
                Err(e) => return Err(self.t.err(e)),
            }
        }
        Err(StoreError::Unavailable(format!("{}: claim kept racing", self.t.name)))
    }

    async fn complete(&self, uuid: &str, now: Timestamp, expires_at: Timestamp) -> StoreResult<()> {
        self.t
            .client
            .put_item()
            .table_name(&self.t.name)
            .item("uuid", s(uuid))
            .item("state", s("completed"))
            .item("completed_at", n(ms(now)))
            .item("expires_at", n(secs(expires_at)))
            .send()
            .await
            .map_err(|e| self.t.err(e))?;
        Ok(())
    }

    async fn release(&self, uuid: &str) -> StoreResult<()> {
        self.t
            .client
            .delete_item()
            .table_name(&self.t.name)
            .key("uuid", s(uuid))
            .send()
            .await
            .map_err(|e| self.t.err(e))?;
        Ok(())
    }
}
