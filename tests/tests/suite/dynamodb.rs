//! What only the DynamoDB side has: migrations, and items written by something other than
//! gatehouse.

use aws_sdk_dynamodb::types::AttributeValue;
use gatehouse::tables::personal_access_tokens::TokenId;
use gatehouse::tables::sessions::SessionId;
use gatehouse::tables::users::UserId;
use gatehouse::{Email, StoreError};
use gatehouse_aws::migrate::{self, State};
use gatehouse_tests::TestEnv;
use std::collections::HashMap;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// Writes `item` (attribute name, value) into the `logical` table as is, past gatehouse.
async fn put_raw<const N: usize>(env: &TestEnv, logical: &str, item: [(&str, AttributeValue); N]) {
    let aws = env.aws.as_ref().unwrap();
    let item: HashMap<String, AttributeValue> = item.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    aws.dynamo.put_item().table_name(aws.names.table(logical)).set_item(Some(item)).send().await.unwrap();
}

#[tokio::test]
async fn a_user_item_missing_attributes_is_reported_corrupt_not_a_panic() {
    let env = TestEnv::aws().await;
    let id = UserId::generate();
    put_raw(&env, "users", [("pk", s(&format!("user#{id}"))), ("id", s(id.as_str()))]).await;
    match env.stores.users.find(&id).await {
        Err(StoreError::Corrupt { table, reason }) => {
            assert!(table.ends_with("users"));
            assert!(reason.contains("missing field"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn an_attribute_of_the_wrong_type_is_reported_corrupt() {
    let env = TestEnv::aws().await;
    let sid = SessionId::generate();
    put_raw(
        &env,
        "sessions",
        [
            ("id_hash", s(sid.key().as_str())),
            ("payload", s("{}")),
            ("last_activity", s("yesterday")),
            ("created_at", AttributeValue::N("1".into())),
            ("expires_at", AttributeValue::N("99999999999".into())),
        ],
    )
    .await;
    assert!(matches!(env.stores.sessions.find(&sid.key()).await, Err(StoreError::Corrupt { .. })));

    let tid = TokenId::generate();
    put_raw(&env, "personal_access_tokens", [("id", s(tid.as_str())), ("abilities", s("*"))]).await;
    assert!(matches!(env.stores.personal_access_tokens.find(&tid).await, Err(StoreError::Corrupt { .. })));

    put_raw(&env, "cache", [("key", s("k")), ("value", AttributeValue::Bool(true))]).await;
    assert!(matches!(env.stores.cache.get("k").await, Err(StoreError::Corrupt { .. })));

    put_raw(&env, "users", [("pk", s("email#x@example.com")), ("user_id", AttributeValue::N("3".into()))]).await;
    assert!(matches!(
        env.stores.users.find_by_email(&Email::parse("x@example.com").unwrap()).await,
        Err(StoreError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn migrating_twice_changes_nothing_the_second_time() {
    let env = TestEnv::aws().await; // already migrated once
    let aws = env.aws.as_ref().unwrap();
    let report = migrate::migrate(&aws.dynamo, &aws.sqs, &aws.names).await.unwrap();
    assert!(!migrate::changed_anything(&report), "{report:#?}");
    assert!(report.iter().all(|r| r.state == State::Ok), "{report:#?}");
    assert_eq!(report.len(), gatehouse::schema::TABLES.len() + 2);
    let status = migrate::status(&aws.dynamo, &aws.sqs, &aws.names).await.unwrap();
    assert!(migrate::all_ok(&status));
}

#[tokio::test]
async fn migrate_status_reports_a_missing_table_and_migrate_restores_it() {
    let env = TestEnv::aws().await;
    let aws = env.aws.as_ref().unwrap();
    let cache = aws.names.table("cache");
    aws.dynamo.delete_table().table_name(&cache).send().await.unwrap();
    let status = migrate::status(&aws.dynamo, &aws.sqs, &aws.names).await.unwrap();
    assert!(!migrate::all_ok(&status));
    let missing: Vec<_> = status.iter().filter(|r| r.state == State::Missing).map(|r| r.name.as_str()).collect();
    assert_eq!(missing, vec![cache.as_str()]);
    let report = migrate::migrate(&aws.dynamo, &aws.sqs, &aws.names).await.unwrap();
    let created: Vec<_> = report.iter().filter(|r| r.state == State::Created).map(|r| r.name.as_str()).collect();
    assert_eq!(created, vec![cache.as_str()]);
    assert!(migrate::all_ok(&migrate::status(&aws.dynamo, &aws.sqs, &aws.names).await.unwrap()));
}

#[tokio::test]
async fn migrate_status_reports_a_disabled_ttl_and_a_changed_queue_and_migrate_fixes_both() {
    let env = TestEnv::aws().await;
    let aws = env.aws.as_ref().unwrap();
    let sessions = aws.names.table("sessions");
    aws.dynamo
        .update_time_to_live()
        .table_name(&sessions)
        .time_to_live_specification(
            aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(false)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let url = aws.sqs.get_queue_url().queue_name(aws.names.queue("jobs")).send().await.unwrap().queue_url.unwrap();
    aws.sqs
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "30")
        .send()
        .await
        .unwrap();
    let status = migrate::status(&aws.dynamo, &aws.sqs, &aws.names).await.unwrap();
    let differs: Vec<_> =
        status.iter().filter(|r| matches!(r.state, State::Differs(_))).map(|r| r.name.clone()).collect();
    assert_eq!(differs, vec![sessions.clone(), aws.names.queue("jobs")]);
    let report = migrate::migrate(&aws.dynamo, &aws.sqs, &aws.names).await.unwrap();
    assert!(migrate::changed_anything(&report));
    assert!(migrate::all_ok(&migrate::status(&aws.dynamo, &aws.sqs, &aws.names).await.unwrap()));
}

#[tokio::test]
async fn a_missing_table_is_a_clear_error_that_names_migrate() {
    let env = TestEnv::aws().await;
    let aws = env.aws.as_ref().unwrap();
    aws.dynamo.delete_table().table_name(aws.names.table("cache_locks")).send().await.unwrap();
    let err = env.stores.cache_locks.owner("k").await.unwrap_err();
    assert!(matches!(&err, StoreError::Rejected(m) if m.contains("gatehouse migrate")), "{err}");
}

#[tokio::test]
async fn a_first_migrate_creates_every_table_and_both_queues() {
    let sdk = gatehouse_tests::emulator_sdk_config().await;
    let prefix = format!("m{}-", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let names = gatehouse::config::Names { table_prefix: prefix.clone(), queue_prefix: prefix, jobs_queue_url: None };
    let (db, sqs) = (aws_sdk_dynamodb::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk));
    let status = migrate::status(&db, &sqs, &names).await.unwrap();
    assert!(status.iter().all(|r| r.state == State::Missing), "{status:#?}");
    let report = migrate::migrate(&db, &sqs, &names).await.unwrap();
    assert!(report.iter().all(|r| r.state == State::Created), "{report:#?}");
    assert_eq!(report.len(), gatehouse::schema::TABLES.len() + 2);
}
