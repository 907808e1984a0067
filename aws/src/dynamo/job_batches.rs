//! `job_batches`: the batch item (`pk = <id>, sk = batch`) and one mark per counted job
//! (`pk = <id>, sk = job#<uuid>`). Counting writes the mark (if absent) and moves the counters in
//! one transaction, so a job delivered twice is counted once, however many workers race.

use super::{
    Cond, Item, LIVE, OwnMark, Table, Transacted, cancellation_codes, from_ms, n, opt_from_ms, opt_from_secs, s, secs,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use gatehouse::tables::job_batches::{Batch, BatchOptions, Counted, JobBatchStore};
use gatehouse::values::clock::Timestamp;
use gatehouse::values::error::{StoreError, StoreResult};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

const BATCH_SK: &str = "batch";

/// How long a job's counted-mark is kept: longer than SQS keeps any message (14 days).
const MARK_LIFETIME: gatehouse::values::clock::Span = gatehouse::values::clock::Span::days(15);
#[derive(Serialize, Deserialize)]
struct BatchItem {
    pk: String,
    sk: String,
    name: String,
    total_jobs: u64,
    pending_jobs: i64,
    failed_jobs: u64,
    #[serde(default)]
    failed_job_ids: Vec<String>,
    /// JSON text of [`BatchOptions`].
    options: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancelled_at: Option<i64>,
    created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    /// The `by_created` index's keys (a constant, and [`Batch::list_key`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    list_pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    list_sk: Option<String>,
}

/// The `by_created` index's one partition.
pub(crate) const LIST_PK: &str = "batch";

pub struct DynamoJobBatches {
    t: Table,
}

fn batch_key(id: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(id)), ("sk".to_owned(), s(BATCH_SK))])
}

impl DynamoJobBatches {
    pub fn new(t: Table) -> Self {
        Self { t }
    }

    fn to_domain(&self, item: Item) -> StoreResult<Batch> {
        let i: BatchItem = self.t.decode(item)?;
        let table = &self.t.name;
        let options: BatchOptions =
            serde_json::from_str(&i.options).map_err(|e| StoreError::corrupt(table, format!("options: {e}")))?;
        Ok(Batch {
            id: i.pk,
            name: i.name,
            total_jobs: i.total_jobs,
            pending_jobs: u64::try_from(i.pending_jobs).unwrap_or(0),
            failed_jobs: i.failed_jobs,
            failed_job_ids: i.failed_job_ids,
            options,
            cancelled_at: opt_from_ms(table, i.cancelled_at)?,
            created_at: from_ms(table, i.created_at)?,
            finished_at: opt_from_ms(table, i.finished_at)?,
            expires_at: opt_from_secs(table, i.expires_at)?,
        })
    }

    /// Two calls: the mark and the counters in one transaction (conditional on the batch being
    /// live), then the batch as it now is.
    async fn count(&self, id: &str, job: &str, failed: bool) -> StoreResult<Option<Counted>> {
        let mut mark = HashMap::from([("pk".to_owned(), s(id)), ("sk".to_owned(), s(format!("job#{job}")))]);
        mark.insert("outcome".into(), s(if failed { "failed" } else { "succeeded" }));
        // A mark only has to outlive every redelivery of its job's message (SQS keeps one at most
        // 14 days); TTL removes it after that, with or before its batch.
        mark.insert("expires_at".into(), n(secs(self.t.now() + MARK_LIFETIME)));
        let put_mark = Put::builder()
            .table_name(&self.t.name)
            .set_item(Some(mark))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Rejected(e.to_string()))?;
        let mut update = Update::builder()
            .table_name(&self.t.name)
            .set_key(Some(batch_key(id)))
            .condition_expression(format!("attribute_exists(pk) AND {LIVE}"))
            .expression_attribute_values(":now_s", n(secs(self.t.now())))
            .expression_attribute_values(":minus", n(-1));
        update = if failed {
            update
                .update_expression("ADD pending_jobs :minus, failed_jobs :one SET failed_job_ids = list_append(if_not_exists(failed_job_ids, :empty), :ids)")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":empty", AttributeValue::L(vec![]))
                .expression_attribute_values(":ids", AttributeValue::L(vec![s(job)]))
        } else {
            update.update_expression("ADD pending_jobs :minus")
        };
        let update = update.build().map_err(|e| StoreError::Rejected(e.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().put(put_mark).build(),
            TransactWriteItem::builder().update(update).build(),
        ];
        let newly_counted = match self.t.transact(items, 6).await? {
            Transacted::Done => true,
            // The mark's condition: this job was counted before (a redelivery).
            Transacted::Refused(codes) if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") => false,
            Transacted::Refused(_) => return Ok(None),
            Transacted::Contended => {
                return Err(StoreError::Unavailable(format!("{}: counting a job kept conflicting", self.t.name)));
            }
        };
        match self.find(id).await? {
            Some(batch) => Ok(Some(Counted { newly_counted, batch })),
            None => Ok(None),
        }
    }

    async fn set_once(&self, id: &str, attr: &str, extra_cond: &str, now: Timestamp) -> StoreResult<bool> {
        let mut cond = Cond::new(format!("attribute_exists(pk) AND attribute_not_exists({attr}){extra_cond}"))
            .value(":now", n(super::ms(now)));
        if !extra_cond.is_empty() {
            cond = cond.value(":zero", n(0));
        }
        self.t.update_if(batch_key(id), format!("SET {attr} = :now"), cond).await
    }
}

#[async_trait]
impl JobBatchStore for DynamoJobBatches {
    async fn create(&self, b: &Batch) -> StoreResult<()> {
        let item = self.t.encode(&BatchItem {
            pk: b.id.clone(),
            sk: BATCH_SK.into(),
            name: b.name.clone(),
            total_jobs: b.total_jobs,
            pending_jobs: i64::try_from(b.pending_jobs).unwrap_or(i64::MAX),
            failed_jobs: b.failed_jobs,
            failed_job_ids: b.failed_job_ids.clone(),
            options: serde_json::to_string(&b.options).map_err(|e| StoreError::Rejected(e.to_string()))?,
            cancelled_at: b.cancelled_at.map(super::ms),
            created_at: super::ms(b.created_at),
            finished_at: b.finished_at.map(super::ms),
            expires_at: b.expires_at.map(secs),
            list_pk: Some(LIST_PK.into()),
            list_sk: Some(b.list_key()),
        })?;
        if self.t.put_if(item, Cond::new("attribute_not_exists(pk)")).await? {
            return Ok(());
        }
        // Refused: this very put, retried by the SDK after it landed, finds itself (one read,
        // only on this path); anything else under the id is another batch.
        match self.find(&b.id).await? {
            // Times are stored in milliseconds; the batch in hand may carry nanoseconds.
            Some(found)
                if found.created_at.timestamp_millis() == b.created_at.timestamp_millis()
                    && found.total_jobs == b.total_jobs
                    && found.name == b.name =>
            {
                Ok(())
            }
            _ => Err(StoreError::Conflict(format!("batch {} exists", b.id))),
        }
    }

    async fn list(
        &self,
        limit: usize,
        after: Option<&gatehouse::values::pagination::Cursor>,
    ) -> StoreResult<gatehouse::values::pagination::Page<Batch>> {
        let now = self.t.now();
        self.t
            .query_page("by_created", ("list_pk", LIST_PK), limit, after, |item| {
                Ok(Some(self.to_domain(item)?).filter(|b| gatehouse::values::clock::is_live(b.expires_at, now)))
            })
            .await
    }

    async fn find(&self, id: &str) -> StoreResult<Option<Batch>> {
        self.t.find_live(batch_key(id), |i| self.to_domain(i), |b| b.expires_at).await
    }

    async fn add_jobs(&self, id: &str, count: u64) -> StoreResult<bool> {
        // An ADD retried by the SDK after it landed would count the jobs twice, and the batch
        // would wait for jobs that do not exist: each add carries its own id, applied once.
        let add = OwnMark::new();
        let cond = Cond::new("attribute_exists(pk) AND NOT contains(add_ids, :add)")
            .value(":n", n(count))
            .value(":add", add.value())
            .value(":adds", AttributeValue::Ss(vec![add.as_str().to_owned()]));
        if self.t.update_if(batch_key(id), "ADD total_jobs :n, pending_jobs :n, add_ids :adds", cond).await? {
            return Ok(true);
        }
        let item = self.t.get(batch_key(id)).await?;
        Ok(item.is_some_and(
            |i| matches!(i.get("add_ids"), Some(AttributeValue::Ss(ids)) if ids.iter().any(|i| i == add.as_str())),
        ))
    }

    async fn record_success(&self, id: &str, job_uuid: &str) -> StoreResult<Option<Counted>> {
        self.count(id, job_uuid, false).await
    }

    async fn record_failure(&self, id: &str, job_uuid: &str) -> StoreResult<Option<Counted>> {
        self.count(id, job_uuid, true).await
    }

    async fn reopen(&self, id: &str, job_uuid: &str) -> StoreResult<bool> {
        // The uuid's place in the list is read, then removed on condition that it is still
        // there: a concurrent reopen that moved the list makes this one re-read, and of two
        // reopens of one job exactly one finds it.
        for attempt in 0..6u32 {
            let Some(batch) = self.find(id).await? else { return Ok(false) };
            let Some(at) = batch.failed_job_ids.iter().position(|u| u == job_uuid) else { return Ok(false) };
            let update = Update::builder()
                .table_name(&self.t.name)
                .set_key(Some(batch_key(id)))
                .condition_expression(format!("attribute_exists(pk) AND failed_job_ids[{at}] = :job"))
                .update_expression(format!(
                    "ADD pending_jobs :one, failed_jobs :minus REMOVE failed_job_ids[{at}], finished_at"
                ))
                .expression_attribute_values(":job", s(job_uuid))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":minus", n(-1))
                .build()
                .map_err(|e| StoreError::Rejected(e.to_string()))?;
            let delete_mark = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.t.name)
                .key("pk", s(id))
                .key("sk", s(format!("job#{job_uuid}")))
                .build()
                .map_err(|e| StoreError::Rejected(e.to_string()))?;
            let items = vec![
                TransactWriteItem::builder().update(update).build(),
                TransactWriteItem::builder().delete(delete_mark).build(),
            ];
            match self.t.client.transact_write_items().set_transact_items(Some(items)).send().await {
                Ok(_) => return Ok(true),
                Err(e) => match cancellation_codes(&e) {
                    Some(codes)
                        if codes.iter().any(|c| c == "ConditionalCheckFailed" || c == "TransactionConflict") =>
                    {
                        let jitter = u64::from(gatehouse::values::secret::random_bytes::<1>()[0]) % 20;
                        tokio::time::sleep(std::time::Duration::from_millis((10 << attempt) + jitter)).await;
                    }
                    _ => return Err(self.t.err(e)),
                },
            }
        }
        Err(StoreError::Unavailable(format!("{}: the batch kept changing while a job was re-opened", self.t.name)))
    }

    async fn mark_finished(&self, id: &str, now: Timestamp) -> StoreResult<bool> {
        self.set_once(id, "finished_at", " AND pending_jobs <= :zero", now).await
    }

    async fn cancel(&self, id: &str, now: Timestamp) -> StoreResult<bool> {
        self.set_once(id, "cancelled_at", "", now).await
    }

    async fn delete(&self, id: &str) -> StoreResult<bool> {
        let keys = self
            .t
            .query_all(
                |q| {
                    q.key_condition_expression("pk = :p")
                        .expression_attribute_values(":p", s(id))
                        .projection_expression("pk, sk")
                },
                Ok,
            )
            .await?;
        let existed = !keys.is_empty();
        self.t.delete_keys(keys).await?;
        Ok(existed)
    }
}
