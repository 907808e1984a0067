//! The Lambda figures of `scripts/bench`, measured on the binaries Lambda would run (release, with
//! `GATEHOUSE_E2E_BIN_DIR=target/release`) through a local Runtime API, with the stores on the
//! emulator: each function's cold start (process start to its first poll: what Lambda bills as
//! init) and first event, 20 starts each (`GATEHOUSE_BENCH_STARTS`), median and p90; its peak
//! RSS; a warm invocation's time; the AWS calls of each operation, counted on the wire; and one
//! process's throughput at `AWS_LAMBDA_MAX_CONCURRENCY` 1 and 8. Ignored in the test run: these are
//! figures, not assertions. The markdown goes to `GATEHOUSE_BENCH_OUT` (or stdout). The call
//! counts alone are asserted in the test run too
//! (`every_operation_makes_exactly_its_aws_calls_on_the_wire`).

use super::e2e::{body, cookie, create_reports_token, env_for};
use gatehouse_tests::TestEnv;
use gatehouse_tests::http::{TestCall, authorizer_event, ses_sent_to, sqs_event};
use gatehouse_tests::runtime_api::{LambdaProcess, binary};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery staple 42";
const WARM: usize = 30;

fn quantile(v: &[Duration], q: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Each function's first event: a request it answers in full, touching its stores.
fn first_event(function: &str) -> Value {
    let nobody = json!({"email": "nobody@example.com", "password": "not the password at all"});
    match function {
        "login" => TestCall::new("POST", "/login").json(nobody).event(),
        "tokens" => TestCall::new("POST", "/tokens/issue")
            .json(json!({"email": "nobody@example.com", "password": "not it at all", "device_name": "cli"}))
            .event(),
        "token-check" => authorizer_event("GET /reports", Some("1|abcdefghijklmnopqrstuvwxyz0123456789ABCD"), None),
        "password-reset" => {
            TestCall::new("POST", "/forgot-password").json(json!({"email": "nobody@example.com"})).event()
        }
        "pages" => TestCall::new("GET", "/account/login").event(),
        "examples/bare_http" | "examples/bare_dynamodb" => TestCall::new("GET", "/").event(),
        _ => sqs_event(&[gatehouse::tables::jobs::QueueMessage {
            message_id: uuid::Uuid::new_v4().to_string(),
            receipt_handle: "bench".to_owned(),
            body: "{\"not\":\"a job\"}".to_owned(),
            receive_count: 1,
            sent_at: None,
        }]),
    }
}

/// The six functions, then the two floors (`tests/examples/`): lambda_http alone, and lambda_http
/// with the SDK's configuration and a DynamoDB client making one GetItem.
const FUNCTIONS: [&str; 8] = [
    "login",
    "tokens",
    "token-check",
    "password-reset",
    "job-worker",
    "pages",
    "examples/bare_http",
    "examples/bare_dynamodb",
];

/// A section of the report: its heading (and a blank line), then the header of its table.
fn section(out: &mut String, heading: &str, columns: &[&str]) {
    writeln!(out, "{heading}\n").unwrap();
    writeln!(out, "| {} |\n|{}", columns.join(" | "), "---|".repeat(columns.len())).unwrap();
}

async fn starts(env: &TestEnv, out: &mut String) {
    let n: usize = std::env::var("GATEHOUSE_BENCH_STARTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let vars = env_for(env, &[]);
    let heading = format!("### Cold start, first event, memory ({n} starts each)");
    let columns = [
        "function",
        "init median / p90 ms",
        "first event median / p90 ms",
        "warm event median ms",
        "peak RSS median MiB",
    ];
    section(out, &heading, &columns);
    for function in FUNCTIONS {
        let (mut init, mut first, mut rss, mut warm) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for start in 0..n {
            let lambda = LambdaProcess::start(&binary(function), &vars).await;
            init.push(lambda.init_time().await);
            let t = Instant::now();
            let _ = lambda.invoke(first_event(function)).await;
            first.push(t.elapsed());
            rss.push(lambda.peak_rss_kib().unwrap_or(0));
            if start + 1 == n {
                for _ in 0..WARM {
                    let t = Instant::now();
                    let _ = lambda.invoke(first_event(function)).await;
                    warm.push(t.elapsed());
                }
            }
        }
        rss.sort();
        writeln!(
            out,
            "| {function} | {} / {} | {} / {} | {} | {:.1} |",
            ms(quantile(&init, 0.5)),
            ms(quantile(&init, 0.9)),
            ms(quantile(&first, 0.5)),
            ms(quantile(&first, 0.9)),
            ms(quantile(&warm, 0.5)),
            rss[rss.len() / 2] as f64 / 1024.0
        )
        .unwrap();
    }
}

fn calls(seen: BTreeMap<String, usize>) -> String {
    let total: usize = seen.values().sum();
    let each: Vec<String> = seen.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!("{total} | {}", each.join(", "))
}

/// `POST /register` for `email`; the raw Lambda response.
async fn register(login: &LambdaProcess, email: &str) -> Value {
    let body = json!({"name": "Bench", "email": email, "password": PW, "password_confirmation": PW});
    login.invoke(TestCall::new("POST", "/register").json(body).event()).await.expect("register")
}

/// The jobs waiting on the queue (read straight from the emulator, not through the proxy).
async fn waiting_jobs(env: &TestEnv) -> Vec<gatehouse::tables::jobs::QueueMessage> {
    loop {
        let got = env.stores.queue.receive(10, Duration::from_secs(2), None).await.expect("receive");
        if !got.is_empty() {
            return got;
        }
    }
}

/// One operation as measured on the wire: its calls and its wall time (one warm sample).
struct Op {
    name: String,
    function: &'static str,
    calls: BTreeMap<String, usize>,
    took: Duration,
}

async fn wire_counts(out: &mut String) -> Vec<Op> {
    let env = TestEnv::aws().await;
    let (proxy, counter) = gatehouse_tests::wire::start_proxy(&gatehouse_tests::emulator_endpoint(), None).await;
    let sdk = gatehouse_tests::emulator_sdk_config().await;
    aws_sdk_sesv2::Client::new(&sdk).create_email_identity().email_identity("noreply@gatehouse.test").send().await.ok();
    let vars = env_for(
        &env,
        &[
            ("AWS_ENDPOINT_URL", &proxy),
            ("GATEHOUSE_MAILER", "ses"),
            ("GATEHOUSE_MAIL_FROM", "noreply@gatehouse.test"),
            ("GATEHOUSE_RESET_URL", "https://app.example.com/reset?token={token}&email={email}"),
            ("GATEHOUSE_ROUTE_ABILITIES", "GET /reports=reports:read"),
        ],
    );
    let (login, tokens) =
        (LambdaProcess::start(&binary("login"), &vars).await, LambdaProcess::start(&binary("tokens"), &vars).await);
    let (check, reset) = (
        LambdaProcess::start(&binary("token-check"), &vars).await,
        LambdaProcess::start(&binary("password-reset"), &vars).await,
    );
    let worker = LambdaProcess::start(&binary("job-worker"), &vars).await;
    for f in [&login, &tokens, &check, &reset, &worker] {
        f.init_time().await;
    }
    let email = format!("bench-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    section(out, "### AWS calls per operation (counted on the wire)", &["operation", "calls", "which"]);
    let mut ops: Vec<Op> = Vec::new();
    let since = std::cell::Cell::new(Instant::now());
    // Work between operations (reading the queue or the mail) is neither counted nor timed.
    let restart = || {
        counter.take();
        since.set(Instant::now());
    };
    let mut row = |name: &str, function: &'static str, out: &mut String| {
        let seen = counter.take();
        writeln!(out, "| {name} | {} |", calls(seen.clone())).unwrap();
        ops.push(Op { name: name.to_owned(), function, calls: seen, took: since.get().elapsed() });
        since.set(Instant::now());
    };
    counter.take();
    let reg = register(&login, &email).await;
    row("register (+ its verification job queued)", "login", out);
    let c = cookie(&reg).expect("a session");
    let attempt =
        |pw: &str, who: &str| TestCall::new("POST", "/login").json(json!({"email": who, "password": pw})).event();
    let ok = login.invoke(attempt(PW, &email)).await.expect("login");
    assert_eq!(ok["statusCode"], 200, "{ok}");
    row("login, right password", "login", out);
    let _ = login.invoke(attempt("not the password at all", &email)).await;
    row("login, wrong password", "login", out);
    let _ = login.invoke(attempt("not the password at all", "nobody@example.com")).await;
    row("login, unknown email", "login", out);
    let _ = login.invoke(TestCall::new("GET", "/user").cookie(Some(&c)).event()).await;
    row("`GET /user` with the session cookie", "login", out);
    let created = create_reports_token(&tokens, &c, "bench").await;
    row("create a token (`POST /tokens`)", "tokens", out);
    let token = body(&created)["token"].as_str().unwrap_or_default().to_owned();
    let id = body(&created)["id"].as_str().unwrap_or_default().to_owned();
    let _ = login.invoke(TestCall::new("GET", "/user").bearer(&token).event()).await;
    row("`GET /user` with the token", "login", out);
    let _ = check.invoke(authorizer_event("GET /reports", Some(&token), None)).await;
    row("token check (authorizer, bearer)", "token-check", out);
    let _ = check.invoke(authorizer_event("GET /reports", None, Some(&c))).await;
    row("session check (authorizer, cookie)", "token-check", out);
    let _ = tokens.invoke(TestCall::new("DELETE", &format!("/tokens/{id}")).cookie(Some(&c)).event()).await;
    row("revoke a token", "tokens", out);
    let queued = waiting_jobs(&env).await;
    restart();
    let _ = worker.invoke(sqs_event(&queued)).await;
    let label = format!("the verification mail's job (run, mail through SES, record; {} in the event)", queued.len());
    row(&label, "job-worker", out);
    let _ = reset.invoke(TestCall::new("POST", "/forgot-password").json(json!({"email": email})).event()).await;
    row("forgot password (+ its job queued)", "password-reset", out);
    let queued = waiting_jobs(&env).await;
    restart();
    let _ = worker.invoke(sqs_event(&queued)).await;
    row(&format!("its job (the reset link; {} in the event)", queued.len()), "job-worker", out);
    let mail = ses_sent_to(&email).into_iter().find(|m| m.0 == "Reset your password").map(|m| m.1).unwrap_or_default();
    let link = mail.find("token=").map(|i| mail[i + 6..i + 70].to_owned()).unwrap_or_default();
    restart();
    let new_pw = "a brand new passphrase for the bench";
    let done = reset
        .invoke(
            TestCall::new("POST", "/reset-password")
                .json(json!({"token": link, "email": email, "password": new_pw, "password_confirmation": new_pw}))
                .event(),
        )
        .await
        .expect("reset");
    row(&format!("reset the password (answered {})", done["statusCode"]), "password-reset", out);
    ops
}

async fn throughput(env: &TestEnv, out: &mut String) {
    let heading = "\n### One process, one or eight invocations at once (64 `GET /user`, one user)";
    section(out, heading, &["AWS_LAMBDA_MAX_CONCURRENCY", "wall ms", "invocations/s"]);
    for concurrency in [1usize, 8] {
        let vars = env_for(env, &[("AWS_LAMBDA_MAX_CONCURRENCY", &concurrency.to_string())]);
        let login = Arc::new(LambdaProcess::start(&binary("login"), &vars).await);
        login.init_time().await;
        let email = format!("tp-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let reg = register(&login, &email).await;
        let c = cookie(&reg).expect("a session");
        let started = Instant::now();
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (login, event) = (login.clone(), TestCall::new("GET", "/user").cookie(Some(&c)).event());
                tokio::spawn(async move { login.invoke(event).await })
            })
            .collect();
        for t in tasks {
            let answer = t.await.expect("task").expect("an answer");
            assert_eq!(answer["statusCode"], 200, "{answer}");
        }
        let wall = started.elapsed();
        writeln!(out, "| {concurrency} | {} | {:.0} |", ms(wall), 64.0 / wall.as_secs_f64()).unwrap();
    }
}

/// Each function's `MemorySize` in template.yaml (its own, else the Globals').
fn memory_mb() -> BTreeMap<String, f64> {
    use gatehouse_tests::template::{load, of_type, untag};
    let template = load();
    let global = template["Globals"]["Function"]["MemorySize"].as_f64().unwrap_or(128.0);
    of_type(&template, "AWS::Serverless::Function")
        .values()
        .filter_map(|f| {
            let binary = untag(&f["Metadata"]["BuildProperties"]["Binary"]).as_str()?.to_owned();
            Some((binary, untag(&f["Properties"]["MemorySize"]).as_f64().unwrap_or(global)))
        })
        .collect()
}

// Published on-demand prices, us-east-1, arm64, as of 2026-11 (no free tier counted).
const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
const DYNAMODB_WRU: f64 = 0.625 / 1e6;
const DYNAMODB_RRU: f64 = 0.125 / 1e6;
const SQS_REQUEST: f64 = 0.40 / 1e6;
const SES_MAIL: f64 = 0.10 / 1e3;
const COGNITO_ESSENTIALS_MAU: f64 = 0.015;
const COGNITO_FREE_MAU: f64 = 10_000.0;

/// What one operation costs: Lambda (billed ms rounded up, at the function's memory), the HTTP
/// API request (not for the authorizer or a job), and its calls at on-demand request-unit prices,
/// each item taken as small (a read 1 RRU consistent, a write 1 WRU, a transaction 2 WRU per item
/// with 2 items, a query 1 RRU).
fn cost(op: &Op, memory: &BTreeMap<String, f64>) -> f64 {
    let mb = memory.get(op.function).copied().unwrap_or(256.0);
    let billed_ms = (op.took.as_secs_f64() * 1000.0).ceil();
    let mut usd = LAMBDA_REQUEST + billed_ms / 1000.0 * mb / 1024.0 * LAMBDA_GB_SECOND;
    if !matches!(op.function, "token-check" | "job-worker") {
        usd += HTTP_API_REQUEST;
    }
    for (call, n) in &op.calls {
        let n = *n as f64;
        usd += n * match call.as_str() {
            c if c.ends_with("TransactWriteItems") => 4.0 * DYNAMODB_WRU,
            c if c.ends_with("GetItem") || c.ends_with("Query") || c.ends_with("BatchGetItem") => DYNAMODB_RRU,
            c if c.starts_with("dynamodb:") => DYNAMODB_WRU,
            c if c.starts_with("sqs:") => SQS_REQUEST,
            _ => SES_MAIL,
        };
    }
    usd
}

fn cost_model(ops: &[Op], out: &mut String) {
    let memory = memory_mb();
    let of = |prefix: &str| ops.iter().filter(|o| o.name.starts_with(prefix)).map(|o| cost(o, &memory)).sum::<f64>();
    let heading =
        "\n### Cost model (on-demand prices, us-east-1, arm64; one warm sample per operation on this machine)";
    section(out, heading, &["operation", "USD per million"]);
    for op in ops {
        writeln!(out, "| {} | {:.2} |", op.name, cost(op, &memory) * 1e6).unwrap();
    }
    let request = of("`GET /user` with the token");
    // An active user's month: 8 sign-ins (one mistyped), 300 authenticated requests, a token, and
    // a password reset every tenth month.
    let month = 7.0 * of("login, right")
        + of("login, wrong")
        + 300.0 * request
        + of("create a token")
        + 0.1 * (of("forgot") + of("its job") + of("reset the password"));
    writeln!(out, "\n| scenario | gatehouse USD | Cognito Essentials USD |\n|---|---|---|").unwrap();
    writeln!(out, "| 1 million authenticated requests (`GET /user` with a token) | {:.2} | 0 (JWTs are checked without a call; your API's own Lambda and API Gateway costs are the same either way) |", request * 1e6).unwrap();
    for mau in [10_000.0f64, 100_000.0] {
        let cognito = (mau - COGNITO_FREE_MAU).max(0.0) * COGNITO_ESSENTIALS_MAU;
        writeln!(out, "| {mau:.0} monthly active users (8 sign-ins, 300 requests, a token, 0.1 resets each) | {:.2} | {cognito:.2} |", month * mau).unwrap();
    }
}

/// The AWS calls of every operation the bench prints, pinned: each runs through the real binaries
/// and is counted on the wire (`wire_counts`, the same as `scripts/bench`), so a call added
/// anywhere fails the test run, not only a later bench. Counts, not times: behaviour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_makes_exactly_its_aws_calls_on_the_wire() {
    const GET: &str = "dynamodb:GetItem";
    const BATCH: &str = "dynamodb:BatchGetItem";
    const TRANSACT: &str = "dynamodb:TransactWriteItems";
    const UPDATE: &str = "dynamodb:UpdateItem";
    const PUT: &str = "dynamodb:PutItem";
    const SES: &str = "POST /v2/email/outbound-emails";
    const SEND: &str = "sqs:SendMessage";
    const QUEUE_URL: &str = "sqs:GetQueueUrl";
    let expected: &[(&str, &[(&str, usize)])] = &[
        // The address and the user in one transaction, the registration limit, the verification
        // mail's job (the queue's URL once per process).
        ("register", &[(TRANSACT, 2), (UPDATE, 1), (QUEUE_URL, 1), (SEND, 1)]),
        ("login, right password", &[(GET, 2), (TRANSACT, 2)]),
        ("login, wrong password", &[(GET, 2), (TRANSACT, 1)]),
        ("login, unknown email", &[(GET, 2), (TRANSACT, 1)]),
        // Every check is one read: the credential and its owner in one `BatchGetItem` (#28).
        ("`GET /user` with the session cookie", &[(BATCH, 1), (GET, 1)]),
        // The check, the per-user mint limits (hour and day, one transaction), the token and
        // its register entry under the user's version (one transaction).
        ("create a token", &[(BATCH, 1), (TRANSACT, 2)]),
        ("`GET /user` with the token", &[(BATCH, 1), (GET, 1), (UPDATE, 1)]),
        ("token check", &[(BATCH, 1)]),
        ("session check", &[(BATCH, 1)]),
        // The check, the register read consistently (the token's entry is the caller's proof of
        // ownership: no delete of the token up front), the token deleted last (#34: what derives
        // from it first), the register read again for what was derived meanwhile (the token stays
        // live the longest), its entry forgotten with the mark of its ended tree in one batch.
        (
            "revoke a token",
            &[("dynamodb:BatchWriteItem", 1), ("dynamodb:DeleteItem", 1), (BATCH, 1), ("dynamodb:Query", 2)],
        ),
        ("the verification mail's job", &[(SES, 1), (GET, 1), (PUT, 2)]),
        // The per-client limit, the address's mails a day (#28), the job.
        ("forgot password", &[(UPDATE, 1), (TRANSACT, 1), (QUEUE_URL, 1), (SEND, 1)]),
        ("its job (the reset link", &[(SES, 1), (GET, 2), (PUT, 3)]),
        // The link, the user (twice: before the hash, and the compare-and-swap's read), the
        // password-changed notice promised first, the password with the passkeys and the
        // notice's mark in one write, the register's revocation, the safety-net job. The spent
        // token stays (marked spent) for the reset's own retry.
        (
            "reset the password (answered 200)",
            &[
                ("dynamodb:BatchWriteItem", 1),
                ("dynamodb:DeleteItem", 2),
                (GET, 5),
                ("dynamodb:Query", 4),
                (UPDATE, 3),
                (SEND, 2),
            ],
        ),
    ];
    let ops = wire_counts(&mut String::new()).await;
    let got: Vec<(&str, &BTreeMap<String, usize>)> = ops.iter().map(|op| (op.name.as_str(), &op.calls)).collect();
    assert_eq!(got.len(), expected.len(), "operations: {got:?}");
    for ((name, calls), (want_name, want)) in got.iter().zip(expected) {
        assert!(name.starts_with(want_name), "{name} where {want_name} was expected");
        let want: BTreeMap<String, usize> = want.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        assert_eq!(*calls, &want, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures, not assertions: scripts/bench runs it on the release binaries"]
async fn lambda_figures() {
    let env = TestEnv::aws().await;
    let mut out = String::new();
    starts(&env, &mut out).await;
    writeln!(out).unwrap();
    let ops = wire_counts(&mut out).await;
    throughput(&env, &mut out).await;
    cost_model(&ops, &mut out);
    match std::env::var("GATEHOUSE_BENCH_OUT") {
        Ok(path) => std::fs::write(&path, &out).unwrap_or_else(|e| panic!("{path}: {e}")),
        Err(_) => println!("{out}"),
    }
}
