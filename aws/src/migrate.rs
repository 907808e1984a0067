//! `migrate` and `migrate status`: make the deployment's tables and queues match
//! [`gatehouse::schema`], idempotently, and report what exists, what is missing and what differs.

use crate::error::sdk_error;
use aws_sdk_dynamodb::Client as Dynamo;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType,
    TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_sqs::Client as Sqs;
use aws_sdk_sqs::types::QueueAttributeName;
use gatehouse::config::Names;
use gatehouse::schema::{IndexDef, JOBS_QUEUE, KeyAttr, QueueDef, TABLES, TableDef};
use gatehouse::values::error::{StoreError, StoreResult};
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// The state of one table or queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Exists and matches the schema.
    Ok,
    Missing,
    /// Exists but differs; each string says how.
    Differs(Vec<String>),
    /// `migrate` created it.
    Created,
    /// `migrate` changed it; each string says how.
    Updated(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub kind: &'static str,
    pub name: String,
    pub state: State,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Ok => "ok".to_owned(),
            State::Missing => "MISSING".to_owned(),
            State::Differs(d) => format!("DIFFERS: {}", d.join("; ")),
            State::Created => "created".to_owned(),
            State::Updated(d) => format!("updated: {}", d.join("; ")),
        };
        write!(f, "{:<6} {:<48} {state}", self.kind, self.name)
    }
}

/// Whether a report shows everything in place.
pub fn all_ok(report: &[Resource]) -> bool {
    report.iter().all(|r| matches!(r.state, State::Ok | State::Created | State::Updated(_)))
}

/// Whether `migrate` changed anything.
pub fn changed_anything(report: &[Resource]) -> bool {
    report.iter().any(|r| matches!(r.state, State::Created | State::Updated(_)))
}

fn scalar(k: KeyAttr) -> ScalarAttributeType {
    match k.ty {
        gatehouse::schema::AttrType::S => ScalarAttributeType::S,
        gatehouse::schema::AttrType::N => ScalarAttributeType::N,
    }
}

fn key_schema(partition: KeyAttr, sort: Option<KeyAttr>) -> Vec<KeySchemaElement> {
    let mut v = vec![
        KeySchemaElement::builder().attribute_name(partition.name).key_type(KeyType::Hash).build().expect("complete"),
    ];
    if let Some(s) = sort {
        v.push(KeySchemaElement::builder().attribute_name(s.name).key_type(KeyType::Range).build().expect("complete"));
    }
    v
}

fn gsi(i: &IndexDef) -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(i.name)
        .set_key_schema(Some(key_schema(i.partition, i.sort)))
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .expect("complete")
}

fn attribute_definitions(def: &TableDef) -> Vec<AttributeDefinition> {
    let mut seen = HashMap::new();
    for k in [Some(def.partition), def.sort]
        .into_iter()
        .flatten()
        .chain(def.indexes.iter().flat_map(|i| [Some(i.partition), i.sort]).flatten())
    {
        seen.entry(k.name).or_insert(k);
    }
    let mut v: Vec<_> = seen
        .into_values()
        .map(|k| {
            AttributeDefinition::builder().attribute_name(k.name).attribute_type(scalar(k)).build().expect("complete")
        })
        .collect();
    v.sort_by(|a, b| a.attribute_name().cmp(b.attribute_name()));
    v
}

fn describe_keys(ks: &[KeySchemaElement]) -> String {
    ks.iter().map(|k| format!("{}:{}", k.attribute_name(), k.key_type().as_str())).collect::<Vec<_>>().join(",")
}

/// Compares a table with its definition; `None` when it does not exist.
async fn table_status(
    db: &Dynamo,
    name: &str,
    def: &TableDef,
) -> StoreResult<Option<(Vec<String>, Vec<&'static IndexDef>, bool)>> {
    let desc = match db.describe_table().table_name(name).send().await {
        Ok(d) => d.table.ok_or_else(|| StoreError::Rejected(format!("{name}: DescribeTable returned no table")))?,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(None),
        Err(e) => return Err(sdk_error(name, e)),
    };
    let mut diffs = Vec::new();
    let want = describe_keys(&key_schema(def.partition, def.sort));
    let got = describe_keys(desc.key_schema());
    if want != got {
        diffs.push(format!("key schema is {got}, expected {want} (recreate the table)"));
    }
    let attr_types: HashMap<_, _> = desc
        .attribute_definitions()
        .iter()
        .map(|a| (a.attribute_name().to_owned(), a.attribute_type().as_str().to_owned()))
        .collect();
    for a in attribute_definitions(def) {
        if let Some(t) = attr_types.get(a.attribute_name())
            && t != a.attribute_type().as_str()
        {
            diffs.push(format!("attribute {} is {t}, expected {}", a.attribute_name(), a.attribute_type().as_str()));
        }
    }
    let existing: HashMap<_, _> = desc
        .global_secondary_indexes()
        .iter()
        .map(|g| (g.index_name().unwrap_or_default().to_owned(), describe_keys(g.key_schema())))
        .collect();
    let mut missing_indexes = Vec::new();
    for i in def.indexes {
        match existing.get(i.name) {
            None => missing_indexes.push(i),
            Some(keys) if *keys != describe_keys(&key_schema(i.partition, i.sort)) => {
                diffs.push(format!("index {} has keys {keys} (drop and re-run migrate)", i.name))
            }
            Some(_) => {}
        }
    }
    let mut ttl_missing = false;
    if let Some(attr) = def.ttl_attribute {
        let ttl = db.describe_time_to_live().table_name(name).send().await.map_err(|e| sdk_error(name, e))?;
        let d = ttl.time_to_live_description();
        let enabled = d
            .and_then(|d| d.time_to_live_status())
            .is_some_and(|s| matches!(s, TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling));
        let on = d.and_then(|d| d.attribute_name());
        if !enabled || on != Some(attr) {
            ttl_missing = true;
        }
    }
    Ok(Some((diffs, missing_indexes, ttl_missing)))
}

/// What exists, what is missing, what differs. Changes nothing.
pub async fn status(db: &Dynamo, sqs: &Sqs, names: &Names) -> StoreResult<Vec<Resource>> {
    let mut out = Vec::new();
    for def in TABLES {
        let name = names.table(def.logical);
        let state = match table_status(db, &name, def).await? {
            None => State::Missing,
            Some((mut diffs, missing, ttl_missing)) => {
                diffs.extend(missing.iter().map(|i| format!("index {} is missing", i.name)));
                if ttl_missing {
                    diffs.push(format!("TTL on {} is not enabled", def.ttl_attribute.unwrap_or_default()));
                }
                if diffs.is_empty() { State::Ok } else { State::Differs(diffs) }
            }
        };
        out.push(Resource { kind: "table", name, state });
    }
    for QueueWant { name, attrs: want, .. } in queue_wants(sqs, names, &JOBS_QUEUE, false).await? {
        let state = match queue_url(sqs, &name).await? {
            None => State::Missing,
            Some(url) => {
                let diffs = queue_diffs(sqs, &name, &url, &want).await?;
                if diffs.is_empty() {
                    State::Ok
                } else {
                    State::Differs(diffs.into_iter().map(|(d, _, _)| d).collect())
                }
            }
        };
        out.push(Resource { kind: "queue", name, state });
    }
    Ok(out)
}

/// Creates what is missing and fixes what can be fixed in place (TTL, missing indexes, queue
/// attributes). Idempotent: a second run reports everything `Ok`.
pub async fn migrate(db: &Dynamo, sqs: &Sqs, names: &Names) -> StoreResult<Vec<Resource>> {
    let mut out = Vec::new();
    for def in TABLES {
        let name = names.table(def.logical);
        let state = match table_status(db, &name, def).await? {
            None => {
                create_table(db, &name, def).await?;
                if let Some(attr) = def.ttl_attribute {
                    enable_ttl(db, &name, attr).await?;
                }
                State::Created
            }
            Some((diffs, missing, ttl_missing)) => {
                if !diffs.is_empty() {
                    return Err(StoreError::Rejected(format!(
                        "{name} differs from the schema and cannot be fixed in place: {}",
                        diffs.join("; ")
                    )));
                }
                let mut changes = Vec::new();
                for i in missing {
                    add_index(db, &name, def, i).await?;
                    changes.push(format!("added index {}", i.name));
                }
                if ttl_missing && let Some(attr) = def.ttl_attribute {
                    enable_ttl(db, &name, attr).await?;
                    changes.push(format!("enabled TTL on {attr}"));
                }
                if changes.is_empty() { State::Ok } else { State::Updated(changes) }
            }
        };
        out.push(Resource { kind: "table", name, state });
    }
    for QueueWant { name, attrs: want, just_created } in queue_wants(sqs, names, &JOBS_QUEUE, true).await? {
        let state = match queue_url(sqs, &name).await? {
            Some(_) if just_created => State::Created,
            None => {
                let mut req = sqs.create_queue().queue_name(&name);
                for (k, v) in &want {
                    req = req.attributes(k.clone(), v.clone());
                }
                req.send().await.map_err(|e| sdk_error(&name, e))?;
                State::Created
            }
            Some(url) => {
                let diffs = queue_diffs(sqs, &name, &url, &want).await?;
                if diffs.is_empty() {
                    State::Ok
                } else {
                    let mut req = sqs.set_queue_attributes().queue_url(&url);
                    for (_, k, v) in &diffs {
                        req = req.attributes(k.clone(), v.clone());
                    }
                    req.send().await.map_err(|e| sdk_error(&name, e))?;
                    State::Updated(diffs.into_iter().map(|(d, _, _)| d).collect())
                }
            }
        };
        out.push(Resource { kind: "queue", name, state });
    }
    Ok(out)
}

async fn create_table(db: &Dynamo, name: &str, def: &TableDef) -> StoreResult<()> {
    let indexes: Vec<_> = def.indexes.iter().map(gsi).collect();
    db.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attribute_definitions(def)))
        .set_key_schema(Some(key_schema(def.partition, def.sort)))
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .send()
        .await
        .map_err(|e| sdk_error(name, e))?;
    wait_active(db, name).await
}

async fn add_index(db: &Dynamo, name: &str, def: &TableDef, i: &IndexDef) -> StoreResult<()> {
    let action = CreateGlobalSecondaryIndexAction::builder()
        .index_name(i.name)
        .set_key_schema(Some(key_schema(i.partition, i.sort)))
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .map_err(|e| StoreError::Rejected(e.to_string()))?;
    db.update_table()
        .table_name(name)
        .set_attribute_definitions(Some(attribute_definitions(def)))
        .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().create(action).build())
        .send()
        .await
        .map_err(|e| sdk_error(name, e))?;
    wait_active(db, name).await
}

/// Waits for a new table (AWS takes seconds; emulators are immediate), up to two minutes.
pub(crate) async fn wait_active(db: &Dynamo, name: &str) -> StoreResult<()> {
    for _ in 0..240 {
        let d = db.describe_table().table_name(name).send().await.map_err(|e| sdk_error(name, e))?;
        if d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(StoreError::Unavailable(format!("{name} did not become ACTIVE within two minutes")))
}

async fn enable_ttl(db: &Dynamo, name: &str, attr: &str) -> StoreResult<()> {
    db.update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(attr)
                .enabled(true)
                .build()
                .map_err(|e| StoreError::Rejected(e.to_string()))?,
        )
        .send()
        .await
        .map_err(|e| sdk_error(name, e))?;
    Ok(())
}

pub(crate) async fn queue_url(sqs: &Sqs, name: &str) -> StoreResult<Option<String>> {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_queue_does_not_exist()) => Ok(None),
        Err(e) => Err(sdk_error(name, e)),
    }
}

struct QueueWant {
    name: String,
    attrs: HashMap<QueueAttributeName, String>,
    /// Created while working out the wants (the DLQ, whose ARN the main queue needs).
    just_created: bool,
}

/// The attributes each queue should have, DLQ first. The main queue's redrive policy needs the
/// DLQ's ARN: when the DLQ does not exist yet and `create_dlq` is set, it is created here.
async fn queue_wants(sqs: &Sqs, names: &Names, q: &QueueDef, create_dlq: bool) -> StoreResult<Vec<QueueWant>> {
    let dlq = names.queue(q.dead_letter_logical);
    let dlq_attrs = HashMap::from([(QueueAttributeName::MessageRetentionPeriod, q.retention_secs.to_string())]);
    let mut main_attrs = HashMap::from([
        (QueueAttributeName::VisibilityTimeout, q.visibility_timeout_secs.to_string()),
        (QueueAttributeName::MessageRetentionPeriod, q.retention_secs.to_string()),
        (QueueAttributeName::ReceiveMessageWaitTimeSeconds, q.receive_wait_secs.to_string()),
    ]);
    let mut dlq_created = false;
    let dlq_url = match queue_url(sqs, &dlq).await? {
        Some(u) => Some(u),
        None if create_dlq => {
            let mut req = sqs.create_queue().queue_name(&dlq);
            for (k, v) in &dlq_attrs {
                req = req.attributes(k.clone(), v.clone());
            }
            let out = req.send().await.map_err(|e| sdk_error(&dlq, e))?;
            dlq_created = true;
            out.queue_url
        }
        None => None,
    };
    if let Some(url) = dlq_url {
        let arn = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| sdk_error(&dlq, e))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| StoreError::Rejected(format!("{dlq}: no QueueArn")))?;
        main_attrs.insert(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": q.max_receive_count }).to_string(),
        );
    }
    Ok(vec![
        QueueWant { name: dlq, attrs: dlq_attrs, just_created: dlq_created },
        QueueWant { name: names.queue(q.logical), attrs: main_attrs, just_created: false },
    ])
}

async fn queue_diffs(
    sqs: &Sqs,
    name: &str,
    url: &str,
    want: &HashMap<QueueAttributeName, String>,
) -> StoreResult<Vec<(String, QueueAttributeName, String)>> {
    let got = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .map_err(|e| sdk_error(name, e))?
        .attributes
        .unwrap_or_default();
    let mut diffs = Vec::new();
    for (k, v) in want {
        let have = got.get(k);
        let same = match k {
            QueueAttributeName::RedrivePolicy => {
                let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok().map(normalise_redrive);
                have.and_then(|h| parse(h)) == parse(v)
            }
            _ => have == Some(v),
        };
        if !same {
            diffs.push((
                format!("{} is {:?}, expected {v}", k.as_str(), have.map(String::as_str).unwrap_or("unset")),
                k.clone(),
                v.clone(),
            ));
        }
    }
    Ok(diffs)
}

/// Redrive policies come back with `maxReceiveCount` as a string or a number.
fn normalise_redrive(v: serde_json::Value) -> (String, String) {
    let arn = v.get("deadLetterTargetArn").and_then(|a| a.as_str()).unwrap_or_default().to_owned();
    let count = match v.get("maxReceiveCount") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    (arn, count)
}
