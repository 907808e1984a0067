//! The `gatehouse` binary against the emulator.

use gatehouse::tables::failed_jobs::FailedJob;
use std::process::{Command, Output};

fn gatehouse(prefix: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env("AWS_ENDPOINT_URL", gatehouse_tests::emulator_endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("GATEHOUSE_TABLE_PREFIX", prefix)
        .output()
        .expect("run gatehouse")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn migrate_status_migrate_and_the_failed_job_commands() {
    let prefix = format!("c{}-", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let status = gatehouse(&prefix, &["migrate", "status"]);
    assert_eq!(status.status.code(), Some(1), "{}", stdout(&status));
    assert!(stdout(&status).contains("MISSING"));
    let first = gatehouse(&prefix, &["migrate"]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(stdout(&first).contains("migrate: done"));
    let second = gatehouse(&prefix, &["migrate"]);
    assert!(stdout(&second).contains("nothing to do"), "{}", stdout(&second));
    assert!(gatehouse(&prefix, &["migrate", "status"]).status.success());

    // Record two failures straight into the table, then drive the commands.
    let sdk = gatehouse_tests::emulator_sdk_config().await;
    let names =
        gatehouse::config::Names { table_prefix: prefix.clone(), queue_prefix: prefix.clone(), jobs_queue_url: None };
    let stores = gatehouse_aws::stores(&sdk, &names, std::sync::Arc::new(gatehouse::SystemClock));
    let now = chrono::Utc::now();
    for uuid in ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"] {
        let payload = gatehouse::tables::jobs::JobPayload {
            uuid: uuid.into(),
            ..gatehouse::tables::jobs::JobPayload::new("Flaky", serde_json::json!({}))
        };
        let job = FailedJob {
            uuid: uuid.into(),
            connection: "sqs".into(),
            queue: "jobs".into(),
            payload: payload.to_body(),
            exception: "boom\ncaused by: io".into(),
            failed_at: now,
            expires_at: None,
        };
        stores.failed_jobs.record(&job).await.unwrap();
    }
    let listed = gatehouse(&prefix, &["queue:failed", "--limit", "1"]);
    assert!(stdout(&listed).contains("22222222-2222-4222-8222-222222222222"), "{}", stdout(&listed));
    assert!(stdout(&listed).contains("--cursor"), "a second page is offered");
    let retried = gatehouse(&prefix, &["queue:retry", "11111111-1111-4111-8111-111111111111"]);
    assert!(retried.status.success(), "{}", String::from_utf8_lossy(&retried.stderr));
    assert_eq!(stores.queue.approximate_len().await.unwrap(), 1);
    let forgot = gatehouse(&prefix, &["queue:forget", "nope"]);
    assert!(!forgot.status.success());
    let flushed = gatehouse(&prefix, &["queue:flush"]);
    assert!(stdout(&flushed).contains("1 failed job(s) deleted"), "{}", stdout(&flushed));
}

/// The user commands on an account with a live session and token: `user:show` (table and JSON,
/// no secret), `user:disable` (every credential refused at once, sign-in refused even with the
/// right password, a second run harmless), `user:enable`, `user:sign-out-everywhere`.
#[tokio::test]
async fn the_user_commands_show_disable_enable_and_sign_out_an_account() {
    use gatehouse_tests::http::{TestApp, TestCall};
    const PW: &str = "correct horse battery staple 42";
    let t = TestApp::aws(&[]).await;
    let prefix = t.env.aws.as_ref().expect("the emulator").names.table_prefix.clone();
    let cookie = t.signed_up("ann@example.com").await;
    let token = t.create_token(&cookie, serde_json::json!({"name": "ci"})).await;
    let token = token.body["token"].as_str().expect("a token").to_owned();

    let shown = gatehouse(&prefix, &["user:show", "ann@example.com", "--json"]);
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let report: serde_json::Value = serde_json::from_str(&stdout(&shown)).expect("one JSON document");
    assert_eq!((report["sessions"].as_u64(), report["tokens"].as_u64()), (Some(1), Some(1)), "{report}");
    assert_eq!(report["disabled_at"], serde_json::Value::Null);
    let text = stdout(&gatehouse(&prefix, &["user:show", "ann@example.com"]));
    assert!(text.contains("sessions      1") && text.contains("ann@example.com"), "{text}");
    for secret in [token.as_str(), "argon2", "password"] {
        assert!(!stdout(&shown).contains(secret) && !text.contains(secret), "{secret} printed");
    }
    let missing = gatehouse(&prefix, &["user:show", "nobody@example.com"]);
    assert!(!missing.status.success() && String::from_utf8_lossy(&missing.stderr).contains("no user has that address"));
    let garbage = gatehouse(&prefix, &["user:disable", "not an address"]);
    assert!(!garbage.status.success() && String::from_utf8_lossy(&garbage.stderr).contains("not an email address"));

    let disabled = gatehouse(&prefix, &["user:disable", "ann@example.com"]);
    assert!(disabled.status.success(), "{}", String::from_utf8_lossy(&disabled.stderr));
    assert!(stdout(&disabled).contains("2 credential(s) revoked"), "{}", stdout(&disabled));
    assert_eq!(t.user(Some(&cookie)).await.status, 401, "the session ended");
    let by_token = t.login_fn(TestCall::new("GET", "/user").bearer(&token)).await;
    assert_eq!(by_token.status, 401, "the token ended");
    let abilities = gatehouse_token_check::RouteAbilities::parse("").unwrap();
    let authorizer = t.authorize(&abilities, "GET /orders", Some(&token), None).await;
    assert!(!authorizer.is_authorized, "the authorizer's one read decides");
    let login = t.login("ann@example.com", PW).await;
    assert_eq!((login.status, login.error_code()), (403, Some("account_disabled")), "{}", login.raw_body);
    let wrong = t.login("ann@example.com", "not the password at all").await;
    assert_eq!(wrong.status, 422, "a wrong password does not learn that the account is disabled");
    let issue = t
        .tokens_fn(
            TestCall::new("POST", "/tokens/issue")
                .json(serde_json::json!({"email": "ann@example.com", "password": PW, "device_name": "cli"})),
        )
        .await;
    assert_eq!(issue.error_code(), Some("account_disabled"), "{}", issue.raw_body);
    assert!(gatehouse(&prefix, &["user:disable", "ann@example.com"]).status.success(), "a second run is harmless");
    let report: serde_json::Value =
        serde_json::from_str(&stdout(&gatehouse(&prefix, &["user:show", "ann@example.com", "--json"]))).unwrap();
    assert!(report["disabled_at"].is_string() && report["sessions"] == 0 && report["tokens"] == 0, "{report}");

    let enabled = gatehouse(&prefix, &["user:enable", "ann@example.com"]);
    assert!(stdout(&enabled).contains("may sign in again"), "{}", stdout(&enabled));
    assert!(stdout(&gatehouse(&prefix, &["user:enable", "ann@example.com"])).contains("nothing to do"));
    let back = t.login("ann@example.com", PW).await;
    assert_eq!(back.status, 200, "{}", back.raw_body);
    let session = back.session_cookie().expect("a session");

    let out = gatehouse(&prefix, &["user:sign-out-everywhere", "ann@example.com"]);
    assert!(stdout(&out).contains("1 credential(s) of ann@example.com revoked"), "{}", stdout(&out));
    assert_eq!(t.user(Some(&session)).await.status, 401);
    assert_eq!(t.login("ann@example.com", PW).await.status, 200, "the account stays usable");
}

/// A poison message: received 25 times without a delete, SQS moves it to the dead-letter queue.
/// `queue:dlq` lists it (table and JSON), `queue:monitor` counts it and fails its limit,
/// `queue:dlq-redrive` moves it back as a fresh job, and the worker then runs it.
#[tokio::test]
async fn a_dead_lettered_job_is_listed_redriven_and_then_processed() {
    use gatehouse_tests::http::TestApp;
    use std::time::Duration;
    let t = TestApp::aws(&[]).await;
    let prefix = t.env.aws.as_ref().expect("the emulator").names.table_prefix.clone();
    // Ann, and her verification mail's job alone on the queue (a registration through the API
    // would queue its `user.registered` event's job too).
    let ann = gatehouse::tables::users::User::new(
        "Ann",
        gatehouse::Email::parse("ann@example.com").unwrap(),
        gatehouse::values::password::PasswordHash::unusable(),
        t.env.clock_now(),
    );
    t.env.stores.users.create(&ann).await.unwrap();
    let job = gatehouse::services::email_verification::registration_job(&t.app.config, &ann.id);
    gatehouse::queue::Dispatcher::for_config(t.env.stores.clone(), &t.app.config).dispatch(job).await.unwrap();
    // Crash on it 25 times (receive, never delete).
    let queue = &t.env.stores.queue;
    let mut uuid = None;
    for _ in 0..40 {
        let got = queue.receive(1, Duration::from_secs(1), Some(Duration::ZERO)).await.unwrap();
        match got.first() {
            Some(m) => uuid = Some(gatehouse::tables::jobs::JobPayload::from_body(&m.body).unwrap().uuid),
            None => break,
        }
    }
    let uuid = uuid.expect("the job was received");
    assert_eq!(queue.approximate_len().await.unwrap(), 0, "dead-lettered after 25 receives");

    let listed = gatehouse(&prefix, &["queue:dlq", "--json"]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&listed)).expect("one JSON document");
    let m = &doc["messages"][0];
    assert_eq!(m["uuid"], uuid.as_str(), "{doc}");
    assert!(m["job"].as_str().is_some_and(|j| !j.is_empty()) && m["receive_count"].as_u64() >= Some(25), "{doc}");
    assert!(m["first_seen"].as_str().is_some_and(|t| t.starts_with("20")), "when it was first sent: {doc}");
    let table = stdout(&gatehouse(&prefix, &["queue:dlq"]));
    assert!(table.contains(&uuid), "{table}");

    let health = gatehouse(&prefix, &["queue:monitor", "--max-dlq", "0", "--json"]);
    assert_eq!(health.status.code(), Some(1), "a crossed limit exits 1: {}", stdout(&health));
    let h: serde_json::Value = serde_json::from_str(&stdout(&health)).unwrap();
    assert_eq!((h["dead_lettered"].as_u64(), h["waiting"].as_u64()), (Some(1), Some(0)), "{h}");
    assert!(gatehouse(&prefix, &["queue:monitor", "--max-dlq", "1"]).status.success());

    // The oldest job's age comes from CloudWatch (SQS reports it nowhere else): none yet, then
    // a datapoint over the limit.
    let quiet: serde_json::Value =
        serde_json::from_str(&stdout(&gatehouse(&prefix, &["queue:monitor", "--max-age", "900", "--json"]))).unwrap();
    assert!(quiet["oldest_age_seconds"].is_null(), "no datapoint, no verdict: {quiet}");
    let jobs_queue = t.env.aws.as_ref().unwrap().names.queue("jobs");
    let cw = aws_sdk_cloudwatch::Client::new(&gatehouse_tests::emulator_sdk_config().await);
    let point = aws_sdk_cloudwatch::types::MetricDatum::builder()
        .metric_name("ApproximateAgeOfOldestMessage")
        .dimensions(aws_sdk_cloudwatch::types::Dimension::builder().name("QueueName").value(&jobs_queue).build())
        .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from(std::time::SystemTime::now()))
        .value(1200.0)
        .build();
    cw.put_metric_data().namespace("AWS/SQS").metric_data(point).send().await.unwrap();
    let old = gatehouse(&prefix, &["queue:monitor", "--max-age", "900", "--json"]);
    assert_eq!(old.status.code(), Some(1), "{}", stdout(&old));
    let h: serde_json::Value = serde_json::from_str(&stdout(&old)).unwrap();
    assert_eq!(h["oldest_age_seconds"].as_u64(), Some(1200), "{h}");
    assert!(gatehouse(&prefix, &["queue:monitor", "--max-age", "1800", "--max-dlq", "1"]).status.success());

    let bad = gatehouse(&prefix, &["queue:dlq-redrive", "not-a-uuid"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("not a job uuid"));
    let other = gatehouse(&prefix, &["queue:dlq-redrive", "11111111-1111-4111-8111-111111111111"]);
    assert!(!other.status.success(), "no such job: {}", stdout(&other));
    let moved = gatehouse(&prefix, &["queue:dlq-redrive", "--all"]);
    assert!(moved.status.success(), "{}", String::from_utf8_lossy(&moved.stderr));
    assert!(stdout(&moved).contains(&uuid), "{}", stdout(&moved));
    let after: serde_json::Value =
        serde_json::from_str(&stdout(&gatehouse(&prefix, &["queue:dlq", "--json"]))).unwrap();
    assert_eq!(after["messages"].as_array().map(Vec::len), Some(0), "{after}");

    // Back on the queue as a fresh job, it runs: the verification mail is sent.
    let mailer = gatehouse::mail::LogMailer::quiet();
    gatehouse_tests::jobs::drain(&t.worker(std::sync::Arc::new(mailer.clone())), 10).await;
    assert!(mailer.sent().iter().any(|m| m.to == "ann@example.com"), "the job ran after the redrive");
}

/// `queue:batch` (table and JSON with the documented fields), `queue:batch-cancel` (once), an
/// unknown batch a one-line error, and `queue:failed --json`.
#[tokio::test]
async fn the_batch_commands_show_and_cancel_a_batch() {
    use gatehouse::tables::job_batches::{Batch, BatchOptions};
    use gatehouse_tests::http::TestApp;
    let t = TestApp::aws(&[]).await;
    let prefix = t.env.aws.as_ref().expect("the emulator").names.table_prefix.clone();
    let now = chrono::Utc::now();
    let batch = Batch {
        id: uuid::Uuid::new_v4().to_string(),
        name: "import".into(),
        total_jobs: 4,
        pending_jobs: 1,
        failed_jobs: 1,
        failed_job_ids: vec!["33333333-3333-4333-8333-333333333333".into()],
        options: BatchOptions::default(),
        cancelled_at: None,
        created_at: now,
        finished_at: None,
        expires_at: Some(now + chrono::Duration::days(1)),
    };
    t.env.stores.job_batches.create(&batch).await.unwrap();

    let shown = gatehouse(&prefix, &["queue:batch", &batch.id, "--json"]);
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&shown)).expect("one JSON document");
    for field in [
        "id",
        "name",
        "total_jobs",
        "pending_jobs",
        "processed_jobs",
        "failed_jobs",
        "failed_job_ids",
        "options",
        "created_at",
        "cancelled_at",
        "finished_at",
    ] {
        assert!(doc.get(field).is_some(), "{field} missing: {doc}");
    }
    assert_eq!(
        (doc["processed_jobs"].as_u64(), doc["failed_job_ids"][0].as_str()),
        (Some(3), Some("33333333-3333-4333-8333-333333333333"))
    );
    assert!(
        stdout(&gatehouse(&prefix, &["queue:batch", &batch.id])).contains("progress   75% (3 of 4 done, 1 failed)")
    );

    let cancelled = gatehouse(&prefix, &["queue:batch-cancel", &batch.id]);
    assert!(stdout(&cancelled).contains("cancelled"), "{}", stdout(&cancelled));
    assert!(stdout(&gatehouse(&prefix, &["queue:batch-cancel", &batch.id])).contains("already cancelled"));
    let doc: serde_json::Value =
        serde_json::from_str(&stdout(&gatehouse(&prefix, &["queue:batch", &batch.id, "--json"]))).unwrap();
    assert!(doc["cancelled_at"].is_string(), "{doc}");
    let unknown = gatehouse(&prefix, &["queue:batch", "no-such-batch"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no batch no-such-batch"));

    // The listing, newest first, a page at a time.
    let mut later = batch.clone();
    later.id = uuid::Uuid::new_v4().to_string();
    later.created_at = now + chrono::Duration::seconds(5);
    t.env.stores.job_batches.create(&later).await.unwrap();
    let first: serde_json::Value =
        serde_json::from_str(&stdout(&gatehouse(&prefix, &["queue:batches", "--limit", "1", "--json"]))).unwrap();
    assert_eq!(first["batches"][0]["id"], later.id.as_str(), "newest first: {first}");
    let cursor = first["next_cursor"].as_str().expect("a second page").to_owned();
    let second: serde_json::Value = serde_json::from_str(&stdout(&gatehouse(
        &prefix,
        &["queue:batches", "--limit", "1", "--cursor", &cursor, "--json"],
    )))
    .unwrap();
    assert_eq!(second["batches"][0]["id"], batch.id.as_str(), "{second}");
    assert!(stdout(&gatehouse(&prefix, &["queue:batches"])).contains("cancelled"));

    let failed = gatehouse(&prefix, &["queue:failed", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&failed)).expect("one JSON document");
    assert!(doc["jobs"].as_array().is_some_and(Vec::is_empty) && doc["next_cursor"].is_null(), "{doc}");
}

fn gatehouse_with(prefix: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    c.args(args)
        .env("AWS_ENDPOINT_URL", gatehouse_tests::emulator_endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("GATEHOUSE_TABLE_PREFIX", prefix);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run gatehouse")
}

/// Migrations with a history: two concurrent runs run migration 1 once; a later migration runs as
/// batch 2 (`--pretend` first changes nothing); its rollback is refused while its table holds
/// items, has deletion protection, or carries a CloudFormation stack tag (that one even with
/// `--force`), and otherwise deletes the table and leaves it pending.
#[tokio::test]
async fn migrations_run_once_record_their_batch_and_roll_back_only_what_may_go() {
    use aws_sdk_dynamodb::types::{AttributeValue, Tag};
    let prefix = format!("m{}-", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let test = [("GATEHOUSE_TEST_MIGRATIONS", "1")];
    let err = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["migrate"])
            .env("AWS_ENDPOINT_URL", gatehouse_tests::emulator_endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("GATEHOUSE_TABLE_PREFIX", &prefix)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run gatehouse")
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{} / {}", err(&a), err(&b));
    let ran: usize = [&a, &b].iter().filter(|o| stdout(o).contains("ran 0001_schema")).count();
    assert_eq!(ran, 1, "migration 1 ran once:\n{}\n---\n{}", stdout(&a), stdout(&b));

    let status = gatehouse(&prefix, &["migrate", "status"]);
    assert!(status.status.success(), "{}", stdout(&status));
    assert!(stdout(&status).contains("ran     batch 1   0001_schema"), "{}", stdout(&status));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&gatehouse(&prefix, &["migrate", "status", "--json"])))
        .expect("one JSON document");
    assert_eq!((doc["in_place"].as_bool(), doc["migrations"][0]["state"].as_str()), (Some(true), Some("ran")), "{doc}");
    assert_eq!(doc["migrations"][1]["batch"], 1, "{doc}");
    assert!(doc["resources"].as_array().is_some_and(|r| r.len() > 10 && r.iter().all(|r| r["ok"] == true)), "{doc}");
    let status = gatehouse_with(&prefix, &test, &["migrate", "status"]);
    assert_eq!(status.status.code(), Some(1));
    assert!(stdout(&status).contains("PENDING           0003_test_widgets"), "{}", stdout(&status));

    let sdk = gatehouse_tests::emulator_sdk_config().await;
    let db = aws_sdk_dynamodb::Client::new(&sdk);
    let widgets = format!("{prefix}test_widgets");

    // Every migration after 1 (the newest first: 7 the webhook endpoints, 5 the identities, 4 the
    // OAuth tables, whatever else is listed, and 2) rolled back (2's index deleted) and run again:
    // a batch written without the listing keys is backfilled and listed.
    let after_1 = gatehouse_aws::migrations::all(false).iter().filter(|m| m.id > 1).count();
    let rolled = gatehouse(&prefix, &["migrate", "rollback", "--step", &after_1.to_string()]);
    assert!(stdout(&rolled).contains("rolled back 0007_webhook_endpoints"), "{}{}", stdout(&rolled), err(&rolled));
    assert!(stdout(&rolled).contains("rolled back 0006_events"), "{}{}", stdout(&rolled), err(&rolled));
    assert!(stdout(&rolled).contains("rolled back 0005_identities"), "{}{}", stdout(&rolled), err(&rolled));
    assert!(stdout(&rolled).contains("rolled back 0004_oauth_tables"), "{}{}", stdout(&rolled), err(&rolled));
    assert!(stdout(&rolled).contains("rolled back 0002_job_batches_by_created"), "{}{}", stdout(&rolled), err(&rolled));
    let n = |v: i64| AttributeValue::N(v.to_string());
    let old_batch = db
        .put_item()
        .table_name(format!("{prefix}job_batches"))
        .item("pk", AttributeValue::S("old-batch".into()))
        .item("sk", AttributeValue::S("batch".into()))
        .item("name", AttributeValue::S("from before".into()))
        .item("total_jobs", n(1))
        .item("pending_jobs", n(1))
        .item("failed_jobs", n(0))
        .item("options", AttributeValue::S("{}".into()))
        .item("created_at", n(chrono::Utc::now().timestamp_millis()));
    old_batch.send().await.unwrap();
    let again = gatehouse(&prefix, &["migrate"]);
    assert!(stdout(&again).contains("backfilled the listing keys of 1 batch(es)"), "{}{}", stdout(&again), err(&again));
    let listed: serde_json::Value =
        serde_json::from_str(&stdout(&gatehouse(&prefix, &["queue:batches", "--json"]))).unwrap();
    assert_eq!(listed["batches"][0]["id"], "old-batch", "{listed}");
    let pretend = gatehouse_with(&prefix, &test, &["migrate", "up", "--pretend"]);
    assert!(stdout(&pretend).contains("would run 0003_test_widgets"), "{}", stdout(&pretend));
    assert!(db.describe_table().table_name(&widgets).send().await.is_err(), "--pretend created nothing");
    let up = gatehouse_with(&prefix, &test, &["migrate"]);
    assert!(stdout(&up).contains("ran 0003_test_widgets (batch 3)"), "{}{}", stdout(&up), err(&up));

    // Items: refused without --force, and nothing deleted.
    db.put_item().table_name(&widgets).item("pk", AttributeValue::S("w1".into())).send().await.unwrap();
    let refused = gatehouse_with(&prefix, &test, &["migrate", "rollback"]);
    assert!(
        !refused.status.success() && err(&refused).contains("holds items"),
        "{}{}",
        stdout(&refused),
        err(&refused)
    );
    assert!(db.describe_table().table_name(&widgets).send().await.is_ok());
    db.delete_item().table_name(&widgets).key("pk", AttributeValue::S("w1".into())).send().await.unwrap();
    // Deletion protection: refused without --force.
    db.update_table().table_name(&widgets).deletion_protection_enabled(true).send().await.unwrap();
    let refused = gatehouse_with(&prefix, &test, &["migrate", "rollback", "--force"]);
    assert!(err(&refused).contains("deletion protection; turn it off first"), "even --force: {}", err(&refused));
    db.update_table().table_name(&widgets).deletion_protection_enabled(false).send().await.unwrap();
    // A stack's resource: refused even with --force.
    let arn = db.describe_table().table_name(&widgets).send().await.unwrap().table.unwrap().table_arn.unwrap();
    let tag = Tag::builder().key("aws:cloudformation:stack-name").value("prod").build().unwrap();
    db.tag_resource().resource_arn(&arn).tags(tag).send().await.unwrap();
    let refused = gatehouse_with(&prefix, &test, &["migrate", "rollback", "--force"]);
    assert!(err(&refused).contains("belongs to the CloudFormation stack prod"), "{}", err(&refused));
    db.untag_resource().resource_arn(&arn).tag_keys("aws:cloudformation:stack-name").send().await.unwrap();
    // Drift: migration 3 ran, so `migrate` runs nothing, and says that what it made is gone.
    db.delete_table().table_name(&widgets).send().await.unwrap();
    let drift = gatehouse_with(&prefix, &test, &["migrate"]);
    assert_eq!(drift.status.code(), Some(1), "{}", stdout(&drift));
    let recreate =
        db.create_table().table_name(&widgets).billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest);
    let recreate = recreate
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .unwrap(),
        );
    recreate.send().await.unwrap();

    let pretend = gatehouse_with(&prefix, &test, &["migrate", "rollback", "--force", "--pretend"]);
    assert!(stdout(&pretend).contains(&format!("would delete table {widgets}")), "{}", stdout(&pretend));
    assert!(db.describe_table().table_name(&widgets).send().await.is_ok(), "--pretend deleted nothing");
    let rolled = gatehouse_with(&prefix, &test, &["migrate", "rollback", "--force"]);
    assert!(stdout(&rolled).contains("rolled back 0003_test_widgets"), "{}{}", stdout(&rolled), err(&rolled));
    assert!(db.describe_table().table_name(&widgets).send().await.is_err(), "its table is gone");
    let status = gatehouse_with(&prefix, &test, &["migrate", "status"]);
    assert!(stdout(&status).contains("PENDING           0003_test_widgets"), "{}", stdout(&status));
    assert!(stdout(&status).contains("ran     batch 1   0001_schema"), "batch 1 untouched");
    assert!(stdout(&status).contains("ran     batch 2   0002_job_batches_by_created"), "{}", stdout(&status));
    // Every one but 3: those after 1 (batch 2), then 1.
    let all_but_3 = (after_1 + 1).to_string();
    let held = gatehouse(&prefix, &["migrate", "rollback", "--step", &all_but_3, "--pretend"]);
    assert!(err(&held).contains(&format!("table {prefix}job_batches holds items")), "{}", err(&held));
    let schema = gatehouse(&prefix, &["migrate", "rollback", "--step", &all_but_3, "--force", "--pretend"]);
    let out = stdout(&schema);
    assert!(out.contains(&format!("would delete table {prefix}webhook_endpoints")), "{out}");
    assert!(out.contains("would roll back 0007_webhook_endpoints"), "{out}");
    assert!(out.contains(&format!("would delete table {prefix}events")), "{out}");
    assert!(out.contains("would roll back 0006_events"), "{out}");
    assert!(out.contains(&format!("would delete table {prefix}identities")), "{out}");
    assert!(out.contains("would roll back 0005_identities"), "{out}");
    assert!(out.contains("would roll back 0004_oauth_tables"), "{out}");
    assert!(out.contains(&format!("would delete index by_created of table {prefix}job_batches")), "{out}");
    assert!(out.contains("would roll back 0002_job_batches_by_created"), "{out}");
    assert!(out.contains(&format!("would delete table {prefix}users")), "{out}{}", err(&schema));
    assert!(
        out.contains(&format!("would delete queue {prefix}jobs-dlq")) && out.contains("would roll back 0001_schema"),
        "{out}"
    );
}

/// `webhook:*` against the emulator: an endpoint added (its secret printed once, stored sealed),
/// listed without a secret, its secret rotated twice (both sign during the overlap, a third
/// rotation drops the oldest), disabled, enabled and removed; bad input and a missing app key are
/// refused before anything is stored.
#[tokio::test]
async fn webhook_endpoints_are_added_listed_rotated_disabled_and_removed() {
    use gatehouse::services::webhooks::signing_secrets;
    use gatehouse::tables::webhook_endpoints::WebhookEndpointId;
    let prefix = format!("w{}-", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let key = gatehouse::keys::AppKey::random();
    let key_value = key.to_config_value();
    let with_key = [("GATEHOUSE_APP_KEY", key_value.as_str())];
    let run = |args: &[&str]| gatehouse_with(&prefix, &with_key, args);
    let json = |o: &Output| -> serde_json::Value {
        serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
    };
    assert!(gatehouse(&prefix, &["migrate"]).status.success());

    let no_key = gatehouse(&prefix, &["webhook:add", "https://example.com/hooks"]);
    assert!(!no_key.status.success() && String::from_utf8_lossy(&no_key.stderr).contains("GATEHOUSE_APP_KEY"));
    for bad in [
        vec!["webhook:add", "http://example.com/hooks"],
        vec!["webhook:add", "https://example.com/hooks", "--events", "user.nope"],
        vec!["webhook:add", "https://example.com/hooks", "--description", "a\u{7}b"],
    ] {
        let o = run(&bad);
        assert!(!o.status.success(), "{bad:?}: {}", stdout(&o));
    }

    let added = run(&["webhook:add", "https://example.com/hooks", "--events", "user.*,session.created", "--json"]);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let doc = json(&added);
    let id = doc["id"].as_str().unwrap().to_owned();
    let first = doc["secret"].as_str().unwrap().to_owned();
    assert!(first.starts_with("whsec_"), "{doc}");
    let text = run(&["webhook:add", "http://127.0.0.1:9/in", "--description", "local"]);
    assert!(
        stdout(&text).contains("secret: whsec_") && stdout(&text).contains("hears of the facts from now on"),
        "{}",
        stdout(&text)
    );

    let listed = run(&["webhook:list", "--json"]);
    let all = json(&listed);
    assert_eq!(all["endpoints"].as_array().map(Vec::len), Some(2), "{all}");
    assert_eq!(all["endpoints"][0]["events"], serde_json::json!(["user.*", "session.created"]), "{all}");
    let plain = stdout(&run(&["webhook:list"]));
    for out in [stdout(&listed), plain.clone()] {
        assert!(!out.contains("whsec_") && !out.contains(first.trim_start_matches("whsec_")), "{out}");
    }
    assert!(plain.contains(&id) && plain.contains("enabled"), "{plain}");

    let rotated = json(&run(&["webhook:rotate-secret", &id, "--overlap-hours", "24", "--json"]));
    let second = rotated["secret"].as_str().unwrap().to_owned();
    let sdk = gatehouse_tests::emulator_sdk_config().await;
    let names =
        gatehouse::config::Names { table_prefix: prefix.clone(), queue_prefix: prefix.clone(), jobs_queue_url: None };
    let stores = gatehouse_aws::stores(&sdk, &names, std::sync::Arc::new(gatehouse::SystemClock));
    let wid = WebhookEndpointId::parse(&id).unwrap();
    let live = |e: &gatehouse::tables::webhook_endpoints::WebhookEndpoint| -> Vec<String> {
        signing_secrets(&key, e, chrono::Utc::now()).unwrap().iter().map(|s| s.expose().to_owned()).collect()
    };
    let e = stores.webhook_endpoints.get(&wid).await.unwrap().unwrap();
    assert_eq!(live(&e), [first.clone(), second.clone()], "both sign during the overlap");
    let third = json(&run(&["webhook:rotate-secret", &id, "--json"]))["secret"].as_str().unwrap().to_owned();
    let e = stores.webhook_endpoints.get(&wid).await.unwrap().unwrap();
    assert_eq!(live(&e), [second, third], "a third rotation drops the oldest");

    // `webhook:test` (the receiver here answers on another thread while the command runs) and
    // `webhook:status`.
    let receiver = gatehouse_tests::receiver::Receiver::start().await;
    let pinged = run(&["webhook:add", &receiver.url, "--json"]);
    let (pinged_id, pinged_secret) = {
        let doc = json(&pinged);
        (doc["id"].as_str().unwrap().to_owned(), doc["secret"].as_str().unwrap().to_owned())
    };
    let args = ["webhook:test", pinged_id.as_str(), "--json"].map(str::to_owned);
    let (p, k) = (prefix.clone(), key_value.clone());
    let run_off = move |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        gatehouse_with(&p, &[("GATEHOUSE_APP_KEY", k.as_str())], &args)
    };
    let tested = tokio::task::spawn_blocking({
        let run_off = run_off.clone();
        move || run_off(args.to_vec())
    })
    .await
    .unwrap();
    assert!(tested.status.success(), "{} {}", stdout(&tested), String::from_utf8_lossy(&tested.stderr));
    let report = json(&tested);
    assert_eq!((report["status"].as_u64(), report["accepted"].as_bool()), (Some(204), Some(true)), "{report}");
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["type"], "webhook.test");
    let secret = gatehouse::values::webhook_signature::WebhookSecret::parse(&pinged_secret).unwrap();
    let sent: i64 = got[0].header("webhook-timestamp").unwrap().parse().unwrap();
    gatehouse::values::webhook_signature::verify(&secret, &got[0].headers, &got[0].body, sent, 300)
        .expect("signed with the endpoint's secret");
    receiver.answer(&[503]);
    let args = ["webhook:test", pinged_id.as_str()].map(str::to_owned);
    let refused = tokio::task::spawn_blocking(move || run_off(args.to_vec())).await.unwrap();
    assert!(!refused.status.success() && stdout(&refused).contains("answered 503"), "{}", stdout(&refused));
    let status = json(&run(&["webhook:status", &pinged_id, "--json"]));
    assert_eq!((status["live_secrets"].as_u64(), status["gave_up"].as_array().map(Vec::len)), (Some(1), Some(0)));
    assert!(!status.to_string().contains("whsec_"), "{status}");
    assert!(!run(&["webhook:status", "we_nope"]).status.success());
    assert!(run(&["webhook:remove", &pinged_id]).status.success());

    assert!(run(&["webhook:disable", &id]).status.success());
    assert!(stores.webhook_endpoints.get(&wid).await.unwrap().unwrap().disabled_at.is_some());
    assert!(stdout(&run(&["webhook:list"])).contains("disabled"));
    assert!(run(&["webhook:enable", &id]).status.success());
    assert!(stores.webhook_endpoints.get(&wid).await.unwrap().unwrap().disabled_at.is_none());
    assert!(run(&["webhook:remove", &id]).status.success());
    let again = run(&["webhook:remove", &id]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("no webhook endpoint"));
    assert!(!run(&["webhook:disable", "we_nope"]).status.success());
    assert_eq!(json(&run(&["webhook:list", "--json"]))["endpoints"].as_array().map(Vec::len), Some(1));
}
