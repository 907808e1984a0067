//! `job_runs`: keyed by job uuid; `state` is `running` (with `lease_until`, ms) or `completed`;
//! TTL on `expires_at`.

use super::{Cond, Item, OwnMark, Table, from_ms, key1, ms, n, s, secs};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use gatehouse::tables::job_runs::{Claim, Claimant, JobRunStore};
use gatehouse::values::clock::{Timestamp, from_epoch_seconds};
use gatehouse::values::error::{StoreError, StoreResult};

pub struct DynamoJobRuns {
    t: Table,
}

impl DynamoJobRuns {
    pub fn new(t: Table) -> Self {
        Self { t }
    }
}

fn num(item: &Item, k: &str) -> Option<i64> {
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
        // This claim's own mark: when the SDK retries a put whose answer was lost, the retry is
        // refused by the claim it made itself, and the read below must see that it is ours
        // (else the job would wait out its own lease, or look busy for good to this run).
        let claimant = OwnMark::new();
        let claimed = || Claim::Claimed(Claimant::from_stored(claimant.as_str().to_owned()));
        for _ in 0..3 {
            let item = Item::from([
                ("uuid".to_owned(), s(uuid)),
                ("state".to_owned(), s("running")),
                ("lease_until".to_owned(), n(ms(lease_until))),
                ("expires_at".to_owned(), n(secs(expires_at))),
                ("claimant".to_owned(), claimant.value()),
            ]);
            let cond = Cond::new(
                "attribute_not_exists(#u) OR expires_at <= :now_s OR (#s = :running AND lease_until <= :now_ms)",
            )
            .name("#u", "uuid")
            .name("#s", "state")
            .value(":running", s("running"))
            .now_s(self.t.now())
            .value(":now_ms", n(ms(now)));
            if self.t.put_if(item, cond).await? {
                return Ok(claimed());
            }
            let Some(item) = self.t.get(key1("uuid", uuid)).await? else {
                continue; // released in between: try again
            };
            let live = num(&item, "expires_at").and_then(from_epoch_seconds).is_some_and(|e| e > self.t.now());
            if !live {
                continue;
            }
            return match item.get("state") {
                Some(AttributeValue::S(st)) if st == "completed" => Ok(Claim::Completed),
                Some(AttributeValue::S(st)) if st == "running" && claimant.on(&item, "claimant") => Ok(claimed()),
                Some(AttributeValue::S(st)) if st == "running" => {
                    let until = num(&item, "lease_until")
                        .ok_or_else(|| StoreError::corrupt(&self.t.name, "lease_until missing"))?;
                    Ok(Claim::Busy { until: from_ms(&self.t.name, until)? })
                }
                _ => Err(StoreError::corrupt(&self.t.name, "state is missing or unknown")),
            };
        }
        Err(StoreError::Unavailable(format!("{}: claim kept racing", self.t.name)))
    }

    async fn complete(&self, uuid: &str, now: Timestamp, expires_at: Timestamp) -> StoreResult<()> {
        self.t
            .put(Item::from([
                ("uuid".to_owned(), s(uuid)),
                ("state".to_owned(), s("completed")),
                ("completed_at".to_owned(), n(ms(now))),
                ("expires_at".to_owned(), n(secs(expires_at))),
            ]))
            .await
    }

    async fn release(&self, uuid: &str, claimant: &Claimant) -> StoreResult<()> {
        // Refused when another claim or a completion is there, or nothing (this release retried
        // after it landed): each means there is nothing of this claim left to free.
        let cond = Cond::new("claimant = :me").value(":me", s(claimant.as_str()));
        self.t.delete_if(key1("uuid", uuid), cond).await?;
        Ok(())
    }

    async fn forget(&self, uuid: &str) -> StoreResult<()> {
        self.t.delete(key1("uuid", uuid)).await
    }
}
