//! Versioned migrations with a history, as Laravel's `migrations` table keeps one: numbered
//! migrations in code, a `<prefix>migrations` table recording which ran and in which batch,
//! `up` (the pending ones, in order, as one batch), `rollback` (the last batch, or the last N
//! migrations, in reverse) and a lock so that concurrent runs take turns.
//!
//! Migration 1 is the whole current schema ([`gatehouse::schema`], made by [`migrate::migrate`]:
//! idempotent, so a deployment that ran the old desired-state `migrate` records it as run without
//! changing anything). Later tables, index, TTL or backfill changes are new migrations: 2 the
//! batches' listing index, 4 the OAuth provider's tables, 5 the identities table, 6 the events
//! table, 7 the webhook endpoints (3 is the test-only one).
//!
//! A rollback never destroys what it should not: before anything is deleted every resource of
//! the batch is checked, and the rollback is refused as a whole when one holds items or messages
//! (unless `force`), has deletion protection (turn it off on purpose first), or belongs to a
//! CloudFormation stack (the stack owns it).

use crate::error::sdk_error;
use crate::migrate;
use aws_sdk_dynamodb::Client as Dynamo;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sqs::Client as Sqs;
use gatehouse::config::Names;
use gatehouse::schema::{EVENTS, IDENTITIES, JOBS_QUEUE, OAUTH_TABLES, TABLES, WEBHOOK_ENDPOINTS};
use gatehouse::values::error::{StoreError, StoreResult};
use std::time::Duration;

/// The tag CloudFormation puts on what a stack owns.
const STACK_TAG: &str = "aws:cloudformation:stack-name";
/// How long a lock holds if its holder dies.
const LOCK_SECONDS: i64 = 600;
/// How long a run waits for another to finish.
const LOCK_WAIT: Duration = Duration::from_secs(180);

/// One migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub id: u32,
    pub name: &'static str,
    step: Step,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// The tables and queues of [`gatehouse::schema`].
    Schema,
    /// `job_batches.by_created` (for `queue:batches`), and the backfill of its keys on the
    /// batches written before it.
    BatchesByCreated,
    /// The OAuth provider's tables ([`OAUTH_TABLES`]), on a deployment migrated before them.
    OAuthTables,
    /// The sign-in providers' identities ([`IDENTITIES`]), on a deployment migrated before it.
    Identities,
    /// The events ([`EVENTS`]), on a deployment migrated before them.
    Events,
    /// The webhook endpoints ([`WEBHOOK_ENDPOINTS`]), on a deployment migrated before them.
    WebhookEndpoints,
    /// A small table, only for tests of the migration machinery.
    TestTable,
}

impl Migration {
    /// `0001_schema`.
    pub fn label(&self) -> String {
        format!("{:04}_{}", self.id, self.name)
    }
}

/// Every migration, in order; `with_test` adds the test-only migration 3 (after the others).
pub fn all(with_test: bool) -> Vec<Migration> {
    let mut out = vec![
        Migration { id: 1, name: "schema", step: Step::Schema },
        Migration { id: 2, name: "job_batches_by_created", step: Step::BatchesByCreated },
        Migration { id: 4, name: "oauth_tables", step: Step::OAuthTables },
        Migration { id: 5, name: "identities", step: Step::Identities },
        Migration { id: 6, name: "events", step: Step::Events },
        Migration { id: 7, name: "webhook_endpoints", step: Step::WebhookEndpoints },
    ];
    if with_test {
        out.push(Migration { id: 3, name: "test_widgets", step: Step::TestTable });
    }
    out
}

/// A migration the history says ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub id: u32,
    pub batch: u32,
    pub ran_at: String,
}

/// One resource a rollback would delete.
#[derive(Debug, Clone)]
enum Doomed {
    Table {
        name: String,
        arn: String,
        protected: bool,
    },
    /// An index (deleting it loses no data).
    Index {
        table: String,
        arn: String,
        index: &'static str,
    },
    Queue {
        name: String,
        url: String,
    },
}

/// Runs migrations against one deployment.
pub struct Migrator<'a> {
    pub db: &'a Dynamo,
    pub sqs: &'a Sqs,
    pub names: &'a Names,
    pub migrations: Vec<Migration>,
    owner: String,
}

fn item_str(item: &std::collections::HashMap<String, AttributeValue>, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

fn item_num(item: &std::collections::HashMap<String, AttributeValue>, k: &str) -> Option<u32> {
    item.get(k).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

impl<'a> Migrator<'a> {
    pub fn new(db: &'a Dynamo, sqs: &'a Sqs, names: &'a Names, migrations: Vec<Migration>) -> Self {
        Self { db, sqs, names, migrations, owner: uuid::Uuid::new_v4().to_string() }
    }

    /// The history table's name.
    pub fn history_table(&self) -> String {
        self.names.table("migrations")
    }

    fn batches_table(&self) -> String {
        self.names.table(gatehouse::schema::JOB_BATCHES.logical)
    }

    /// Sets `list_pk`/`list_sk` on batch items written before `by_created` existed.
    async fn backfill_batch_keys(&self) -> StoreResult<usize> {
        let name = self.batches_table();
        let mut n = 0;
        let mut start = None;
        loop {
            let page = self
                .db
                .scan()
                .table_name(&name)
                .filter_expression("sk = :batch AND attribute_not_exists(list_pk)")
                .expression_attribute_values(":batch", AttributeValue::S("batch".into()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error(&name, e))?;
            for item in page.items() {
                let created = item.get("created_at").and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok());
                let (Some(pk), Some(created)) = (item_str(item, "pk"), created) else {
                    return Err(StoreError::corrupt(&name, "a batch item without pk or created_at"));
                };
                let list_sk = gatehouse::values::pagination::newest_first_key(created, &pk);
                let r = self
                    .db
                    .update_item()
                    .table_name(&name)
                    .key("pk", AttributeValue::S(pk))
                    .key("sk", AttributeValue::S("batch".into()))
                    .update_expression("SET list_pk = :l, list_sk = :s")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":l", AttributeValue::S(crate::dynamo::job_batches::LIST_PK.into()))
                    .expression_attribute_values(":s", AttributeValue::S(list_sk))
                    .send()
                    .await;
                match r {
                    Ok(_) => n += 1,
                    // Deleted meanwhile: nothing to list.
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
                    Err(e) => return Err(sdk_error(&name, e)),
                }
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(n)
    }

    fn table_test_widgets(&self) -> String {
        self.names.table("test_widgets")
    }

    async fn ensure_history(&self) -> StoreResult<()> {
        let name = self.history_table();
        if self.describe(&name).await?.is_some() {
            return Ok(());
        }
        create_simple_table(self.db, &name).await
    }

    /// What ran, by id; empty when there is no history yet.
    pub async fn ran(&self) -> StoreResult<Vec<Ran>> {
        let name = self.history_table();
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = match self
                .db
                .scan()
                .table_name(&name)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
            {
                Ok(p) => p,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(out),
                Err(e) => return Err(sdk_error(&name, e)),
            };
            for item in page.items() {
                let pk = item_str(item, "pk").unwrap_or_default();
                // The lock item is the only other one.
                let Some(id) = pk.strip_prefix("migration#") else { continue };
                let (Some(id), Some(batch), Some(ran_at)) =
                    (id.parse().ok(), item_num(item, "batch"), item_str(item, "ran_at"))
                else {
                    return Err(StoreError::corrupt(&name, format!("history item {pk} lacks its id, batch or time")));
                };
                out.push(Ran { id, batch, ran_at });
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    /// Takes the lock, waiting up to [`LOCK_WAIT`] for another run to finish.
    async fn lock(&self) -> StoreResult<()> {
        let name = self.history_table();
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            let now = chrono::Utc::now().timestamp();
            let put = self
                .db
                .put_item()
                .table_name(&name)
                .item("pk", AttributeValue::S("lock".into()))
                .item("owner", AttributeValue::S(self.owner.clone()))
                .item("expires_at", AttributeValue::N((now + LOCK_SECONDS).to_string()))
                // Ours already (an SDK retry of a put that landed) counts as taken.
                .condition_expression("attribute_not_exists(pk) OR expires_at < :now OR #o = :me")
                .expression_attribute_names("#o", "owner")
                .expression_attribute_values(":me", AttributeValue::S(self.owner.clone()))
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .send()
                .await;
            match put {
                Ok(_) => return Ok(()),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                    if tokio::time::Instant::now() > deadline {
                        return Err(StoreError::Unavailable(format!(
                            "another migration run holds the lock in {name} (item `lock`, for at most {LOCK_SECONDS} s after it started); try again when it is done"
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(sdk_error(&name, e)),
            }
        }
    }

    async fn unlock(&self) -> StoreResult<()> {
        let name = self.history_table();
        let r = self
            .db
            .delete_item()
            .table_name(&name)
            .key("pk", AttributeValue::S("lock".into()))
            .condition_expression("#o = :me")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":me", AttributeValue::S(self.owner.clone()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(sdk_error(&name, e)),
        }
    }

    /// Runs the pending migrations in order as one batch; each line of the result says what
    /// happened. `pretend` only says what would run.
    pub async fn up(&self, pretend: bool) -> StoreResult<Vec<String>> {
        if pretend {
            let ran: Vec<u32> = self.ran().await?.iter().map(|r| r.id).collect();
            let pending: Vec<String> = self
                .migrations
                .iter()
                .filter(|m| !ran.contains(&m.id))
                .map(|m| format!("would run {}", m.label()))
                .collect();
            return Ok(if pending.is_empty() { vec!["nothing to run".into()] } else { pending });
        }
        self.ensure_history().await?;
        self.lock().await?;
        let result = self.up_locked().await;
        // The run's own error first; the lock expires by itself if releasing it fails.
        let unlocked = self.unlock().await;
        let lines = result?;
        unlocked?;
        Ok(lines)
    }

    async fn up_locked(&self) -> StoreResult<Vec<String>> {
        let ran = self.ran().await?;
        let batch = ran.iter().map(|r| r.batch).max().unwrap_or(0) + 1;
        let mut out = Vec::new();
        for m in self.migrations.iter().filter(|m| !ran.iter().any(|r| r.id == m.id)) {
            match m.step {
                Step::Schema => {
                    for r in migrate::migrate(self.db, self.sqs, self.names).await? {
                        out.push(r.to_string());
                    }
                }
                Step::TestTable => {
                    let name = self.table_test_widgets();
                    if self.describe(&name).await?.is_none() {
                        create_simple_table(self.db, &name).await?;
                    }
                    out.push(format!("table  {name:<48} created"));
                }
                Step::BatchesByCreated => {
                    // The index, as the schema has it (idempotent), then its keys on old batches.
                    let report = migrate::migrate(self.db, self.sqs, self.names).await?;
                    out.extend(report.iter().filter(|r| r.name == self.batches_table()).map(|r| r.to_string()));
                    let n = self.backfill_batch_keys().await?;
                    out.push(format!("backfilled the listing keys of {n} batch(es)"));
                }
                Step::OAuthTables => {
                    // The tables, as the schema has them (idempotent: made by migration 1 on a
                    // deployment that starts with them).
                    let report = migrate::migrate(self.db, self.sqs, self.names).await?;
                    let ours: Vec<String> = OAUTH_TABLES.iter().map(|t| self.names.table(t.logical)).collect();
                    out.extend(report.iter().filter(|r| ours.contains(&r.name)).map(|r| r.to_string()));
                }
                Step::Identities => {
                    // As the schema has it (idempotent: made by migration 1 on a deployment that
                    // starts with it).
                    let report = migrate::migrate(self.db, self.sqs, self.names).await?;
                    let ours = self.names.table(IDENTITIES.logical);
                    out.extend(report.iter().filter(|r| r.name == ours).map(|r| r.to_string()));
                }
                Step::Events => {
                    // As the schema has it (idempotent: made by migration 1 on a deployment that
                    // starts with it).
                    let report = migrate::migrate(self.db, self.sqs, self.names).await?;
                    let ours = self.names.table(EVENTS.logical);
                    out.extend(report.iter().filter(|r| r.name == ours).map(|r| r.to_string()));
                }
                Step::WebhookEndpoints => {
                    // As the schema has it (idempotent, as the identities' above).
                    let report = migrate::migrate(self.db, self.sqs, self.names).await?;
                    let ours = self.names.table(WEBHOOK_ENDPOINTS.logical);
                    out.extend(report.iter().filter(|r| r.name == ours).map(|r| r.to_string()));
                }
            }
            self.db
                .put_item()
                .table_name(self.history_table())
                .item("pk", AttributeValue::S(format!("migration#{}", m.id)))
                .item("name", AttributeValue::S(m.label()))
                .item("batch", AttributeValue::N(batch.to_string()))
                .item("ran_at", AttributeValue::S(gatehouse::values::clock::rfc3339(chrono::Utc::now())))
                // Recorded once: two runs overlapping past the lock's lease fail loudly here.
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map_err(|e| sdk_error(&self.history_table(), e))?;
            out.push(format!("ran {} (batch {batch})", m.label()));
        }
        Ok(out)
    }

    /// What the migrations that ran made and is no longer as they left it (a table deleted by
    /// hand, an index dropped): one line each. Empty when all is in place.
    pub async fn drift(&self) -> StoreResult<Vec<String>> {
        let ran = self.ran().await?;
        let mut out = Vec::new();
        for m in self.migrations.iter().filter(|m| ran.iter().any(|r| r.id == m.id)) {
            match m.step {
                Step::Schema => {
                    let report = migrate::status(self.db, self.sqs, self.names).await?;
                    out.extend(
                        report.iter().filter(|r| !migrate::all_ok(std::slice::from_ref(r))).map(|r| r.to_string()),
                    );
                }
                Step::TestTable => {
                    let name = self.table_test_widgets();
                    if self.describe(&name).await?.is_none() {
                        out.push(format!("table  {name:<48} MISSING"));
                    }
                }
                // Part of the schema's report above.
                Step::BatchesByCreated
                | Step::OAuthTables
                | Step::Identities
                | Step::Events
                | Step::WebhookEndpoints => {}
            }
        }
        Ok(out)
    }

    /// Reverses the last batch (or, with `steps`, the last that many migrations), newest first.
    /// Refused as a whole, before anything is deleted, when a resource holds items or messages
    /// (unless `force`), has deletion protection, or belongs to a CloudFormation stack.
    pub async fn rollback(&self, steps: Option<u32>, force: bool, pretend: bool) -> StoreResult<Vec<String>> {
        if !pretend {
            self.ensure_history().await?;
            self.lock().await?;
        }
        let result = self.rollback_locked(steps, force, pretend).await;
        let unlocked = if pretend { Ok(()) } else { self.unlock().await };
        let lines = result?;
        unlocked?;
        Ok(lines)
    }

    async fn rollback_locked(&self, steps: Option<u32>, force: bool, pretend: bool) -> StoreResult<Vec<String>> {
        let mut ran = self.ran().await?;
        // Newest first as Laravel orders them: by batch, then by number within it (a migration
        // numbered below one that ran earlier, as the test-only 3 is, runs in a later batch).
        ran.sort_by_key(|r| std::cmp::Reverse((r.batch, r.id)));
        let chosen: Vec<Ran> = match steps {
            Some(n) => ran.into_iter().take(n as usize).collect(),
            None => {
                let last = ran.first().map(|r| r.batch);
                ran.into_iter().filter(|r| Some(r.batch) == last).collect()
            }
        };
        if chosen.is_empty() {
            return Ok(vec!["nothing to roll back".into()]);
        }
        // Everything checked first: a refusal deletes nothing.
        let mut plan = Vec::new();
        let mut refusals = Vec::new();
        for r in &chosen {
            let Some(m) = self.migrations.iter().find(|m| m.id == r.id) else {
                refusals.push(format!("migration {} ran but this build does not know it", r.id));
                continue;
            };
            let doomed = self.doomed(m).await?;
            for d in &doomed {
                if let Some(why) = self.refusal(d, force).await? {
                    refusals.push(why);
                }
            }
            plan.push((*m, doomed));
        }
        if !refusals.is_empty() {
            return Err(StoreError::Rejected(format!(
                "rollback refused, nothing was deleted:\n  {}",
                refusals.join("\n  ")
            )));
        }
        let mut out = Vec::new();
        for (m, doomed) in plan {
            for d in &doomed {
                if pretend {
                    out.push(format!("would delete {}", describe(d)));
                } else {
                    self.delete(d).await?;
                    out.push(format!("deleted {}", describe(d)));
                }
            }
            if pretend {
                out.push(format!("would roll back {}", m.label()));
            } else {
                self.db
                    .delete_item()
                    .table_name(self.history_table())
                    .key("pk", AttributeValue::S(format!("migration#{}", m.id)))
                    .send()
                    .await
                    .map_err(|e| sdk_error(&self.history_table(), e))?;
                out.push(format!("rolled back {}", m.label()));
            }
        }
        Ok(out)
    }

    /// What rolling `m` back deletes (what exists of it).
    async fn doomed(&self, m: &Migration) -> StoreResult<Vec<Doomed>> {
        let tables: Vec<String> = match m.step {
            // The OAuth tables are migration 4's, the identities 5's and the webhook endpoints
            // 7's, made by migration 1 or not: rolled back with theirs.
            Step::Schema => TABLES
                .iter()
                .filter(|t| !OAUTH_TABLES.contains(t) && **t != IDENTITIES && **t != EVENTS && **t != WEBHOOK_ENDPOINTS)
                .map(|t| self.names.table(t.logical))
                .collect(),
            Step::OAuthTables => OAUTH_TABLES.iter().map(|t| self.names.table(t.logical)).collect(),
            Step::Identities => vec![self.names.table(IDENTITIES.logical)],
            Step::Events => vec![self.names.table(EVENTS.logical)],
            Step::WebhookEndpoints => vec![self.names.table(WEBHOOK_ENDPOINTS.logical)],
            Step::TestTable => vec![self.table_test_widgets()],
            Step::BatchesByCreated => {
                let table = self.batches_table();
                let Some(t) = self.describe(&table).await? else { return Ok(vec![]) };
                let has = t.global_secondary_indexes().iter().any(|i| i.index_name() == Some("by_created"));
                let arn = t.table_arn.unwrap_or_default();
                return Ok(if has { vec![Doomed::Index { table, arn, index: "by_created" }] } else { vec![] });
            }
        };
        let mut out = Vec::new();
        for name in tables {
            if let Some(t) = self.describe(&name).await? {
                let protected = t.deletion_protection_enabled().unwrap_or(false);
                out.push(Doomed::Table { name, arn: t.table_arn.unwrap_or_default(), protected });
            }
        }
        if matches!(m.step, Step::Schema) {
            for logical in [JOBS_QUEUE.logical, JOBS_QUEUE.dead_letter_logical] {
                let name = self.names.queue(logical);
                if let Some(url) = migrate::queue_url(self.sqs, &name).await? {
                    out.push(Doomed::Queue { name, url });
                }
            }
        }
        Ok(out)
    }

    /// The table's description; `None` when it does not exist (any other error is one).
    async fn describe(&self, name: &str) -> StoreResult<Option<aws_sdk_dynamodb::types::TableDescription>> {
        match self.db.describe_table().table_name(name).send().await {
            Ok(d) => Ok(d.table),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
            Err(e) => Err(sdk_error(name, e)),
        }
    }

    /// The CloudFormation stack that owns the table `arn`, if one does.
    async fn stack_of(&self, name: &str, arn: &str) -> StoreResult<Option<String>> {
        let tags = self.db.list_tags_of_resource().resource_arn(arn).send().await.map_err(|e| sdk_error(name, e))?;
        Ok(tags.tags().iter().find(|t| t.key() == STACK_TAG).map(|t| t.value().to_owned()))
    }

    /// Why `d` may not be deleted, if it may not.
    async fn refusal(&self, d: &Doomed, force: bool) -> StoreResult<Option<String>> {
        match d {
            Doomed::Table { name, arn, protected } => {
                if let Some(stack) = self.stack_of(name, arn).await? {
                    return Ok(Some(format!(
                        "table {name} belongs to the CloudFormation stack {stack}: delete it with the stack"
                    )));
                }
                // Never turned off here, not even with --force (which is about data): protection is
                // a decision someone made on purpose; undo it on purpose.
                if *protected {
                    return Ok(Some(format!(
                        "table {name} has deletion protection; turn it off first \
                         (aws dynamodb update-table --table-name {name} --no-deletion-protection-enabled)"
                    )));
                }
                let scan = self.db.scan().table_name(name).limit(1).consistent_read(true).send().await;
                let scan = scan.map_err(|e| sdk_error(name, e))?;
                if (!scan.items().is_empty() || scan.last_evaluated_key().is_some()) && !force {
                    return Ok(Some(format!("table {name} holds items (--force deletes them with it)")));
                }
                Ok(None)
            }
            Doomed::Index { table, arn, .. } => Ok(self.stack_of(table, arn).await?.map(|stack| {
                format!("table {table} belongs to the CloudFormation stack {stack}: change its indexes with the stack")
            })),
            Doomed::Queue { name, url } => {
                let tags = self.sqs.list_queue_tags().queue_url(url).send().await.map_err(|e| sdk_error(name, e))?;
                if let Some(stack) = tags.tags().and_then(|t| t.get(STACK_TAG)) {
                    return Ok(Some(format!(
                        "queue {name} belongs to the CloudFormation stack {stack}: delete it with the stack"
                    )));
                }
                let queue = crate::sqs::SqsQueue::new(self.sqs.clone(), name.clone(), Some(url.clone()));
                let held = gatehouse::tables::jobs::JobQueue::approximate_len(&queue).await?;
                if held > 0 && !force {
                    return Ok(Some(format!("queue {name} holds {held} message(s) (--force deletes them with it)")));
                }
                Ok(None)
            }
        }
    }

    async fn delete(&self, d: &Doomed) -> StoreResult<()> {
        match d {
            Doomed::Table { name, .. } => {
                self.db.delete_table().table_name(name).send().await.map_err(|e| sdk_error(name, e))?;
            }
            Doomed::Index { table, index, .. } => {
                let delete = aws_sdk_dynamodb::types::DeleteGlobalSecondaryIndexAction::builder()
                    .index_name(*index)
                    .build()
                    .map_err(|e| StoreError::Rejected(e.to_string()))?;
                let update = aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder().delete(delete).build();
                self.db
                    .update_table()
                    .table_name(table)
                    .global_secondary_index_updates(update)
                    .send()
                    .await
                    .map_err(|e| sdk_error(table, e))?;
                // The table is UPDATING until the index is gone, and refuses to be deleted (a
                // rollback of the schema with it) until then.
                migrate::wait_active(self.db, table).await?;
            }
            Doomed::Queue { name, url } => {
                self.sqs.delete_queue().queue_url(url).send().await.map_err(|e| sdk_error(name, e))?;
            }
        }
        Ok(())
    }
}

fn describe(d: &Doomed) -> String {
    match d {
        Doomed::Table { name, .. } => format!("table {name}"),
        Doomed::Index { table, index, .. } => format!("index {index} of table {table}"),
        Doomed::Queue { name, .. } => format!("queue {name}"),
    }
}

/// An on-demand table keyed by a string `pk`.
async fn create_simple_table(db: &Dynamo, name: &str) -> StoreResult<()> {
    let attr = AttributeDefinition::builder()
        .attribute_name("pk")
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| StoreError::Rejected(e.to_string()))?;
    let key = KeySchemaElement::builder()
        .attribute_name("pk")
        .key_type(KeyType::Hash)
        .build()
        .map_err(|e| StoreError::Rejected(e.to_string()))?;
    let created = db
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr)
        .key_schema(key)
        .send()
        .await;
    match created {
        Ok(_) => {}
        // Two runs creating it at once: the other one did.
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => return Err(sdk_error(name, e)),
    }
    migrate::wait_active(db, name).await
}
