//! The `gatehouse` binary against the emulator.

use gatehouse::failed_jobs::FailedJob;
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
    let stores = gatehouse::Stores::aws(&sdk, &names, std::sync::Arc::new(gatehouse::SystemClock));
    let now = chrono::Utc::now();
    for uuid in ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"] {
        let payload = gatehouse::jobs::JobPayload {
            uuid: uuid.into(),
            ..gatehouse::jobs::JobPayload::new("Flaky", serde_json::json!({}))
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
