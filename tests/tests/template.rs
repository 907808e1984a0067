//! template.yaml against the code: the tables, indexes, TTL attributes and queues the code
//! creates with `migrate` are the ones the stack deploys.

use gatehouse_tests::template::{load, schema_mismatches};
use serde_yaml::Value;

fn table_props<'a>(t: &'a mut Value, resource: &str) -> &'a mut Value {
    t.get_mut("Resources").and_then(|r| r.get_mut(resource)).and_then(|r| r.get_mut("Properties")).expect(resource)
}

#[test]
fn the_template_declares_exactly_the_codes_tables_and_queues() {
    let problems = schema_mismatches(&load());
    assert!(problems.is_empty(), "template.yaml disagrees with shared/src/schema.rs:\n{}", problems.join("\n"));
}

#[test]
fn removing_a_table_from_the_template_is_caught() {
    let mut t = load();
    t.get_mut("Resources").and_then(Value::as_mapping_mut).unwrap().remove("CacheLocksTable");
    let problems = schema_mismatches(&t);
    assert!(
        problems.iter().any(|p| p.contains("cache_locks: in the code's schema but not in template.yaml")),
        "{problems:?}"
    );
}

#[test]
fn removing_an_index_from_the_template_is_caught() {
    let mut t = load();
    table_props(&mut t, "SessionsTable").as_mapping_mut().unwrap().remove("GlobalSecondaryIndexes");
    let problems = schema_mismatches(&t);
    assert!(problems.iter().any(|p| p.starts_with("sessions: GlobalSecondaryIndexes")), "{problems:?}");
}

#[test]
fn removing_a_ttl_attribute_from_the_template_is_caught() {
    let mut t = load();
    table_props(&mut t, "CacheTable").as_mapping_mut().unwrap().remove("TimeToLiveSpecification");
    let problems = schema_mismatches(&t);
    assert!(problems.iter().any(|p| p.starts_with("cache: TTL attribute")), "{problems:?}");
}

#[test]
fn a_changed_key_or_visibility_timeout_is_caught() {
    let mut t = load();
    let users = table_props(&mut t, "UsersTable");
    users["KeySchema"][0]["AttributeName"] = Value::from("id");
    table_props(&mut t, "JobsQueue")["VisibilityTimeout"] = Value::from(30);
    let problems = schema_mismatches(&t);
    assert!(problems.iter().any(|p| p.starts_with("users: KeySchema")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("VisibilityTimeout")), "{problems:?}");
}

#[test]
fn an_extra_table_in_the_template_is_caught() {
    let mut t = load();
    let copy = t["Resources"]["CacheTable"].clone();
    let mut copy = copy;
    if let Value::Tagged(tag) = &mut copy["Properties"]["TableName"] {
        tag.value = Value::from("${AWS::StackName}-orphans");
    }
    t["Resources"].as_mapping_mut().unwrap().insert(Value::from("OrphansTable"), copy);
    let problems = schema_mismatches(&t);
    assert!(
        problems.iter().any(|p| p.contains("orphans: in template.yaml but not in the code's schema")),
        "{problems:?}"
    );
}
