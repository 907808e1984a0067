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

/// The properties of the resources of type `ty`, by the logical name their `field` gives.
fn by_logical_name(template: &Value, ty: &str, field: &str) -> BTreeMap<String, Value> {
    let named = |r: Value| {
        let props = r.get("Properties")?.clone();
        Some((logical_name(&props, field)?, props))
    };
    of_type(template, ty).into_values().filter_map(named).collect()
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    untag(v.get(k)?).as_str()
}

/// Index name → (key schema, projection type).
type Indexes = BTreeMap<String, (Vec<(String, String)>, Option<String>)>;

/// The fields `a` and `b` of each entry of a list (`?` where one is missing).
fn pairs(list: Option<&Value>, a: &str, b: &str) -> Vec<(String, String)> {
    let field = |e: &Value, k: &str| str_of(e, k).unwrap_or("?").to_owned();
    list.and_then(Value::as_sequence)
        .map(|s| s.iter().map(|e| (field(e, a), field(e, b))).collect())
        .unwrap_or_default()
}

fn keys(schema: Option<&Value>) -> Vec<(String, String)> {
    pairs(schema, "AttributeName", "KeyType")
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
    let got_attrs: BTreeMap<String, String> =
        pairs(props.get("AttributeDefinitions"), "AttributeName", "AttributeType").into_iter().collect();
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
    let tables = by_logical_name(template, "AWS::DynamoDB::Table", "TableName");
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
    let queues = by_logical_name(template, "AWS::SQS::Queue", "QueueName");
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

/// `(METHOD, /path)` of every HTTP API event of every function, with the function's binary.
pub fn routes(template: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for (_, f) in of_type(template, "AWS::Serverless::Function") {
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap_or("?").to_owned();
        if let Some(events) = f["Properties"]["Events"].as_mapping() {
            for (_, e) in events {
                if e["Type"].as_str() == Some("HttpApi") {
                    let p = &e["Properties"];
                    out.insert((
                        binary.clone(),
                        p["Method"].as_str().unwrap_or("?").to_uppercase(),
                        p["Path"].as_str().unwrap_or("?").to_owned(),
                    ));
                }
            }
        }
    }
    out
}

/// `(METHOD, /path)` of the HTTP API events an authorizer runs in front of: named on the event,
/// or the API's `DefaultAuthorizer` where the event does not opt out (`Auth: {Authorizer: NONE}`).
pub fn authorized_routes(template: &Value) -> BTreeSet<(String, String)> {
    let default = &template["Resources"]["HttpApi"]["Properties"]["Auth"]["DefaultAuthorizer"];
    let mut out = BTreeSet::new();
    for (_, f) in of_type(template, "AWS::Serverless::Function") {
        for (_, e) in f["Properties"]["Events"].as_mapping().into_iter().flatten() {
            let p = &e["Properties"];
            let authorizer = p["Auth"]["Authorizer"].as_str().or(default.as_str());
            if e["Type"].as_str() == Some("HttpApi") && authorizer.is_some_and(|a| a != "NONE") {
                out.insert((
                    p["Method"].as_str().unwrap_or("?").to_uppercase(),
                    p["Path"].as_str().unwrap_or("?").to_owned(),
                ));
            }
        }
    }
    out
}

/// What a policy `Resource` entry names: `table/<t>`, `table/<t>/index/<i>`, `queue/<q>`, `ses`,
/// `kms/<logical id>`, `bus/<logical id>`,
/// or `?…` when it cannot be read.
fn resource_name(template: &Value, r: &Value) -> String {
    let logical_of = |res: &str| -> Option<String> {
        let resource = template["Resources"].get(res)?;
        if resource.get("Type").and_then(Value::as_str) == Some("AWS::KMS::Key") {
            return Some(format!("kms/{res}"));
        }
        if resource.get("Type").and_then(Value::as_str) == Some("AWS::Events::EventBus") {
            return Some(format!("bus/{res}"));
        }
        let props = resource.get("Properties")?;
        logical_name(props, "TableName")
            .map(|t| format!("table/{t}"))
            .or_else(|| logical_name(props, "QueueName").map(|q| format!("queue/{q}")))
    };
    match r {
        // The hooks' functions, a parameter's list.
        Value::Tagged(t) if t.tag == "Ref" && t.value.as_str() == Some("HookFunctionArns") => "lambda/hooks".into(),
        Value::Tagged(t) if t.tag == "GetAtt" => {
            let target = t.value.as_str().unwrap_or("");
            target.strip_suffix(".Arn").and_then(logical_of).unwrap_or_else(|| format!("?{target}"))
        }
        Value::Tagged(t) if t.tag == "Sub" => {
            let s = t.value.as_str().unwrap_or("");
            if s.contains(":ses:") {
                return "ses".into();
            }
            if let Some(rest) = s.strip_prefix("${")
                && let Some((res, tail)) = rest.split_once(".Arn}")
                && let Some(base) = logical_of(res)
            {
                return format!("{base}{tail}");
            }
            format!("?{s}")
        }
        other => format!("?{other:?}"),
    }
}

/// `(resource, action)` pairs a function's inline policies grant.
pub fn granted(template: &Value, binary: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (_, f) in of_type(template, "AWS::Serverless::Function") {
        if f["Metadata"]["BuildProperties"]["Binary"].as_str() != Some(binary) {
            continue;
        }
        for policy in f["Properties"]["Policies"].as_sequence().into_iter().flatten() {
            for st in policy["Statement"].as_sequence().into_iter().flatten() {
                // `!If [condition, statement, !Ref AWS::NoValue]`: the statement, when granted.
                let st = match st {
                    Value::Tagged(t) if t.tag == "If" => match t.value.as_sequence().and_then(|s| s.get(1)) {
                        Some(inner) => inner,
                        None => continue,
                    },
                    other => other,
                };
                let actions: Vec<String> = match &st["Action"] {
                    Value::Sequence(s) => s.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
                    Value::String(a) => vec![a.clone()],
                    _ => vec![],
                };
                let resources: Vec<Value> = match &st["Resource"] {
                    Value::Sequence(s) => s.clone(),
                    other => vec![other.clone()],
                };
                // A grant on every KMS key of the account is read as one on the keys tagged for
                // the provider, and only with that condition.
                let tagged = st["Condition"]["StringEquals"]
                    .as_mapping()
                    .is_some_and(|m| m.keys().any(|k| k.as_str() == Some("aws:ResourceTag/gatehouse:oauth-signing")));
                for r in &resources {
                    let mut name = resource_name(template, r);
                    if tagged && name.starts_with('?') && name.contains(":kms:") && name.ends_with(":key/*") {
                        name = "kms/tag:gatehouse:oauth-signing".into();
                    }
                    for a in &actions {
                        out.insert((name.clone(), a.clone()));
                    }
                }
            }
        }
    }
    out
}

/// Every way a function's grants differ from what its code needs, and every over-broad grant.
pub fn permission_mismatches(template: &Value, binary: &str, needs: &[(&str, &[&str])]) -> Vec<String> {
    let have = granted(template, binary);
    let want: BTreeSet<(String, String)> =
        needs.iter().flat_map(|(r, actions)| actions.iter().map(move |a| (r.to_string(), a.to_string()))).collect();
    let mut out = Vec::new();
    for w in want.difference(&have) {
        out.push(format!("{binary}: template.yaml does not grant {} on {}", w.1, w.0));
    }
    for h in have.difference(&want) {
        out.push(format!("{binary}: template.yaml grants {} on {}, which the code does not use", h.1, h.0));
    }
    for (r, a) in &have {
        if a.contains('*') || r.starts_with('?') {
            out.push(format!("{binary}: over-broad or unreadable grant {a} on {r}"));
        }
    }
    out
}
