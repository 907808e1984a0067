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

/// The user commands on an account with a live session and token: `user:show` (table and JSON,
/// no secret), `user:disable` (every credential refused at once, sign-in refused even with the
/// right password, a second run harmless), `user:enable`, `user:sign-out-everywhere`.
#[tokio::test]
async fn the_user_commands_show_disable_enable_and_sign_out_an_account() {
    use gatehouse_tests::http::{Call, TestApp};
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
    let by_token = t.login_fn(Call::new("GET", "/user").bearer(&token)).await;
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
            Call::new("POST", "/tokens/issue")
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
