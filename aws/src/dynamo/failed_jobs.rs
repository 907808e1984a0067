//! `failed_jobs`: keyed by job uuid; index `by_failed_at` (a constant partition `list_pk` and
//! `list_sk = <failed_at ms, zero-padded>#<uuid>`) lists them newest first with DynamoDB's own
//! pagination. Failures are rare, so one index partition is ample. TTL on `expires_at`
//! (retention).

use super::{Item, Table, from_ms, key1, ms, opt_from_secs, secs};
use async_trait::async_trait;
use gatehouse::tables::failed_jobs::{FailedJob, FailedJobStore};
use gatehouse::values::clock::is_live;
use gatehouse::values::error::StoreResult;
use gatehouse::values::pagination::{Cursor, Page};
use serde::{Deserialize, Serialize};

const LIST_PK: &str = "failed";

#[derive(Serialize, Deserialize)]
struct FailedJobItem {
    uuid: String,
    connection: String,
    queue: String,
    payload: String,
    exception: String,
    failed_at: i64,
    list_pk: String,
    list_sk: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

pub struct DynamoFailedJobs {
    t: Table,
}

impl DynamoFailedJobs {
    pub fn new(t: Table) -> Self {
        Self { t }
    }

    fn to_domain(&self, item: Item) -> StoreResult<FailedJob> {
        let i: FailedJobItem = self.t.decode(item)?;
        Ok(FailedJob {
            uuid: i.uuid,
            connection: i.connection,
            queue: i.queue,
            payload: i.payload,
            exception: i.exception,
            failed_at: from_ms(&self.t.name, i.failed_at)?,
            expires_at: opt_from_secs(&self.t.name, i.expires_at)?,
        })
    }
}

#[async_trait]
impl FailedJobStore for DynamoFailedJobs {
    async fn record(&self, job: &FailedJob) -> StoreResult<()> {
        let item = self.t.encode(&FailedJobItem {
            uuid: job.uuid.clone(),
            connection: job.connection.clone(),
            queue: job.queue.clone(),
            payload: job.payload.clone(),
            exception: job.exception.clone(),
            failed_at: ms(job.failed_at),
            list_pk: LIST_PK.into(),
            list_sk: job.list_key(),
            expires_at: job.expires_at.map(secs),
        })?;
        self.t.put(item).await
    }

    async fn find(&self, uuid: &str) -> StoreResult<Option<FailedJob>> {
        self.t.find_live(key1("uuid", uuid), |i| self.to_domain(i), |j| j.expires_at).await
    }

    async fn list(&self, limit: usize, after: Option<&Cursor>) -> StoreResult<Page<FailedJob>> {
        let now = self.t.now();
        self.t
            .query_page("by_failed_at", ("list_pk", LIST_PK), limit, after, |item| {
                Ok(Some(self.to_domain(item)?).filter(|j| is_live(j.expires_at, now)))
            })
            .await
    }

    async fn forget(&self, uuid: &str) -> StoreResult<bool> {
        Ok(self.t.take(key1("uuid", uuid)).await?.is_some())
    }

    async fn flush(&self) -> StoreResult<usize> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .t
                .client
                .scan()
                .table_name(&self.t.name)
                .projection_expression("#u")
                .expression_attribute_names("#u", "uuid")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.t.err(e))?;
            keys.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        self.t.delete_keys(keys).await
    }
}
