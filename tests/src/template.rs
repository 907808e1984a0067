//! Reads `template.yaml` and compares it with the code's schema ([`gatehouse::schema`]).

use gatehouse::schema::{JOBS_QUEUE, KeyAttr, TABLES, TableDef};
use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The template, parsed (CloudFormation short tags such as `!Sub` are kept as tagged values).
pub fn load() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let text = std::fs::read_to_string(path).expect("template.yaml at the workspace root");
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

/// A value without its CloudFormation tag (`!Sub "x"` → `"x"`).
pub fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }
}

pub fn resources(template: &Value) -> BTreeMap<String, Value> {
    template
        .get("Resources")
        .and_then(Value::as_mapping)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone()))).collect())
        .unwrap_or_default()
}

pub fn of_type(template: &Value, ty: &str) -> BTreeMap<String, Value> {
    resources(template).into_iter().filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty)).collect()
}

/// `!Sub "${AWS::StackName}-<logical>"` → `<logical>`.
fn logical_name(props: &Value, field: &str) -> Option<String> {
    untag(props.get(field)?).as_str()?.strip_prefix("${AWS::StackName}-").map(str::to_owned)
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    untag(v.get(k)?).as_str()
}

/// Index name → (key schema, projection type).
type Indexes = BTreeMap<String, (Vec<(String, String)>, Option<String>)>;

fn keys(schema: Option<&Value>) -> Vec<(String, String)> {
    schema
        .and_then(Value::as_sequence)
        .map(|s| {
            s.iter()
                .map(|e| {
                    (
                        str_of(e, "AttributeName").unwrap_or("?").to_owned(),
                        str_of(e, "KeyType").unwrap_or("?").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn want_keys(p: KeyAttr, s: Option<KeyAttr>) -> Vec<(String, String)> {
    let mut v = vec![(p.name.to_owned(), "HASH".to_owned())];
    if let Some(s) = s {
        v.push((s.name.to_owned(), "RANGE".to_owned()));
    }
    v
}

fn check_table(def: &TableDef, props: &Value, out: &mut Vec<String>) {
    let t = def.logical;
    if str_of(props, "BillingMode") != Some("PAY_PER_REQUEST") {
        out.push(format!("{t}: BillingMode must be PAY_PER_REQUEST"));
    }
    if keys(props.get("KeySchema")) != want_keys(def.partition, def.sort) {
        out.push(format!("{t}: KeySchema differs from the code"));
    }
    let mut want_attrs = BTreeMap::new();
    for k in [Some(def.partition), def.sort]
        .into_iter()
        .flatten()
        .chain(def.indexes.iter().flat_map(|i| [Some(i.partition), i.sort]).flatten())
    {
        want_attrs.insert(k.name.to_owned(), k.ty.as_str().to_owned());
    }
    let got_attrs: BTreeMap<String, String> = props
        .get("AttributeDefinitions")
        .and_then(Value::as_sequence)
        .map(|s| {
            s.iter()
                .map(|a| {
                    (
                        str_of(a, "AttributeName").unwrap_or("?").to_owned(),
                        str_of(a, "AttributeType").unwrap_or("?").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if got_attrs != want_attrs {
        out.push(format!("{t}: AttributeDefinitions {got_attrs:?} differ from the code's {want_attrs:?}"));
    }
    let got_indexes: Indexes = props
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .map(|s| {
            s.iter()
                .map(|g| {
                    let projection = g.get("Projection").and_then(|p| str_of(p, "ProjectionType")).map(str::to_owned);
                    (str_of(g, "IndexName").unwrap_or("?").to_owned(), (keys(g.get("KeySchema")), projection))
                })
                .collect()
        })
        .unwrap_or_default();
    let want_indexes: Indexes = def
        .indexes
        .iter()
        .map(|i| (i.name.to_owned(), (want_keys(i.partition, i.sort), Some("ALL".to_owned()))))
        .collect();
    if got_indexes != want_indexes {
        out.push(format!("{t}: GlobalSecondaryIndexes {got_indexes:?} differ from the code's {want_indexes:?}"));
    }
    let ttl = props.get("TimeToLiveSpecification");
    let got_ttl = ttl
        .filter(|t| t.get("Enabled").and_then(Value::as_bool) == Some(true))
        .and_then(|t| str_of(t, "AttributeName"));
    if got_ttl != def.ttl_attribute {
        out.push(format!("{t}: TTL attribute is {got_ttl:?}, the code says {:?}", def.ttl_attribute));
    }
    let pitr = props
        .get("PointInTimeRecoverySpecification")
        .and_then(|p| p.get("PointInTimeRecoveryEnabled"))
        .and_then(Value::as_bool);
    if pitr != Some(true) {
        out.push(format!("{t}: point-in-time recovery must be on"));
    }
}

/// Every way the template's tables and queues disagree with the code's schema.
pub fn schema_mismatches(template: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let tables: BTreeMap<String, Value> = of_type(template, "AWS::DynamoDB::Table")
        .into_values()
        .filter_map(|r| {
            let props = r.get("Properties")?.clone();
            Some((logical_name(&props, "TableName")?, props))
        })
        .collect();
    let code: BTreeSet<&str> = TABLES.iter().map(|t| t.logical).collect();
    for name in tables.keys() {
        if !code.contains(name.as_str()) {
            out.push(format!("{name}: in template.yaml but not in the code's schema"));
        }
    }
    for def in TABLES {
        match tables.get(def.logical) {
            None => out.push(format!("{}: in the code's schema but not in template.yaml", def.logical)),
            Some(props) => check_table(def, props, &mut out),
        }
    }
    let queues: BTreeMap<String, Value> = of_type(template, "AWS::SQS::Queue")
        .into_values()
        .filter_map(|r| {
            let props = r.get("Properties")?.clone();
            Some((logical_name(&props, "QueueName")?, props))
        })
        .collect();
    let q = JOBS_QUEUE;
    let num = |props: &Value, k: &str| untag(props.get(k).unwrap_or(&Value::Null)).as_u64();
    match queues.get(q.logical) {
        None => out.push(format!("queue {}: missing from template.yaml", q.logical)),
        Some(p) => {
            if num(p, "VisibilityTimeout") != Some(q.visibility_timeout_secs.into()) {
                out.push(format!(
                    "queue {}: VisibilityTimeout differs from the code's {}",
                    q.logical, q.visibility_timeout_secs
                ));
            }
            if num(p, "ReceiveMessageWaitTimeSeconds") != Some(q.receive_wait_secs.into()) {
                out.push(format!("queue {}: ReceiveMessageWaitTimeSeconds differs", q.logical));
            }
            if num(p, "MessageRetentionPeriod") != Some(q.retention_secs.into()) {
                out.push(format!("queue {}: MessageRetentionPeriod differs", q.logical));
            }
            let redrive = p.get("RedrivePolicy");
            if redrive.and_then(|r| r.get("maxReceiveCount")).and_then(Value::as_u64)
                != Some(q.max_receive_count.into())
            {
                out.push(format!(
                    "queue {}: RedrivePolicy.maxReceiveCount differs from the code's {}",
                    q.logical, q.max_receive_count
                ));
            }
            let target =
                redrive.and_then(|r| r.get("deadLetterTargetArn")).map(untag).and_then(Value::as_str).unwrap_or("");
            let dlq_resource = of_type(template, "AWS::SQS::Queue")
                .into_iter()
                .find(|(_, r)| {
                    r.get("Properties").and_then(|p| logical_name(p, "QueueName")).as_deref()
                        == Some(q.dead_letter_logical)
                })
                .map(|(k, _)| k);
            if dlq_resource.as_ref().map(|k| format!("{k}.Arn")).as_deref() != Some(target) {
                out.push(format!("queue {}: RedrivePolicy must target the {} queue", q.logical, q.dead_letter_logical));
            }
        }
    }
    if !queues.contains_key(q.dead_letter_logical) {
        out.push(format!("queue {}: missing from template.yaml", q.dead_letter_logical));
    }
    out
}
