//! End to end: the Lambda binaries (dev profile under `scripts/test`; release with
//! `GATEHOUSE_E2E_BIN_DIR=target/release`), started as Lambda starts them (through a Runtime API on
//! 127.0.0.1), fed real-format events (API Gateway HTTP API v2, REQUEST authorizer, SQS), with
//! their stores and queue on the emulator.

use gatehouse_tests::TestEnv;
use gatehouse_tests::http::{SESSION_COOKIE, TestCall, authorizer_event, ses_sent_to, sqs_event};
use gatehouse_tests::runtime_api::{LambdaProcess, binary};
use serde_json::{Value, json};
use std::time::Duration;

const PW: &str = "correct horse battery staple 42";

pub(crate) fn env_for(env: &TestEnv, extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let names = &env.aws.as_ref().expect("aws env").names;
    let mut v = vec![
        ("GATEHOUSE_TABLE_PREFIX", names.table_prefix.clone()),
        ("GATEHOUSE_QUEUE_PREFIX", names.queue_prefix.clone()),
        ("RUST_LOG", "warn".to_owned()),
        // On Lambda these are required (the binaries see AWS_LAMBDA_FUNCTION_NAME); `extra` may
        // override them, the later value wins.
        ("GATEHOUSE_RESET_URL", "https://app.example.com/reset-password?token={token}&email={email}".to_owned()),
        (
            "GATEHOUSE_VERIFY_URL",
            "https://app.example.com/email/verify/{id}/{hash}?expires={expires}&signature={signature}".to_owned(),
        ),
        (
            "GATEHOUSE_EMAIL_CHANGE_URL",
            "https://app.example.com/user/email/confirm/{id}?email={email}&expires={expires}&signature={signature}"
                .to_owned(),
        ),
        ("GATEHOUSE_ALLOW_LOG_MAILER", "true".to_owned()),
        // One key shared by every binary of the test, as every function of a stack shares one.
        ("GATEHOUSE_APP_KEY", gatehouse::keys::AppKey::random().to_config_value()),
    ];
    for (k, val) in extra {
        v.push((Box::leak(k.to_string().into_boxed_str()), val.to_string()));
    }
    v
}

/// The session cookie (`name=value`) a Lambda HTTP response sets (payload 2.0 puts it in `cookies`).
pub(crate) fn cookie(resp: &Value) -> Option<String> {
    resp["cookies"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find(|c| c.starts_with(&format!("{SESSION_COOKIE}=")) && !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap_or("").to_owned())
}

/// `POST /register` through the login binary; the raw Lambda response.
async fn register(login: &LambdaProcess, email: &str) -> Value {
    let call = TestCall::new("POST", "/register")
        .json(json!({"name": "Ann", "email": email, "password": PW, "password_confirmation": PW}));
    login.invoke(call.event()).await.expect("register")
}

/// `POST /tokens` by the session `cookie` through the tokens binary: a token `name` that may
/// `reports:read` for an hour. The raw Lambda response.
pub(crate) async fn create_reports_token(tokens: &LambdaProcess, cookie: &str, name: &str) -> Value {
    let body = json!({"name": name, "abilities": ["reports:read"], "expires_in_minutes": 60});
    tokens.invoke(TestCall::new("POST", "/tokens").cookie(Some(cookie)).json(body).event()).await.expect("create")
}

async fn call(lambda: &LambdaProcess, call: TestCall) -> Value {
    lambda.invoke(call.event()).await.expect("an answer")
}

pub(crate) fn body(resp: &Value) -> Value {
    serde_json::from_str(resp["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_binary_registers_logs_in_serves_the_user_and_logs_out() {
    let env = TestEnv::aws().await;
    let login = LambdaProcess::start(&binary("login"), &env_for(&env, &[])).await;
    let reg = register(&login, "ann@example.com").await;
    assert_eq!(reg["statusCode"], 201, "{reg}");
    let log = login
        .invoke(TestCall::new("POST", "/login").json(json!({"email": "ann@example.com", "password": PW})).event())
        .await
        .unwrap();
    assert_eq!(log["statusCode"], 200);
    let c = cookie(&log).expect("a session cookie");
    let me = login.invoke(TestCall::new("GET", "/user").cookie(Some(&c)).event()).await.unwrap();
    assert_eq!(body(&me)["user"]["email"], "ann@example.com");
    assert_eq!(me["headers"]["cache-control"], "no-store");
    let out = login.invoke(TestCall::new("POST", "/logout").cookie(Some(&c)).event()).await.unwrap();
    assert_eq!(out["statusCode"], 204);
    let after = login.invoke(TestCall::new("GET", "/user").cookie(Some(&c)).event()).await.unwrap();
    assert_eq!(after["statusCode"], 401);
    let bad = login
        .invoke(TestCall::new("POST", "/login").header("content-type", "application/json").raw("{not json").event())
        .await
        .unwrap();
    assert_eq!(body(&bad)["error"]["code"], "validation_failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_binary_asks_for_the_second_factor_and_takes_a_code_or_a_recovery_code() {
    let env = TestEnv::aws().await;
    let login = LambdaProcess::start(&binary("login"), &env_for(&env, &[])).await;
    let email = format!("ann-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let c = cookie(&register(&login, &email).await).expect("the session cookie");
    // Registering is no password confirmation: turning two-factor on asks for one.
    let confirm = TestCall::new("POST", "/user/confirm-password").cookie(Some(&c)).json(json!({ "password": PW }));
    assert_eq!(call(&login, confirm).await["statusCode"], 204);
    let enrol = call(&login, TestCall::new("POST", "/user/two-factor-authentication").cookie(Some(&c))).await;
    let secret = body(&enrol)["secret"].as_str().expect("a secret").to_owned();
    // The binary runs on the system clock, as on Lambda.
    let code = |at: std::time::SystemTime| {
        let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        gatehouse::services::two_factor::code_for(&secret, secs).unwrap()
    };
    let now = std::time::SystemTime::now();
    let confirm = TestCall::new("POST", "/user/confirmed-two-factor-authentication").cookie(Some(&c));
    let confirmed = call(&login, confirm.json(json!({ "code": code(now) }))).await;
    assert_eq!(confirmed["statusCode"], 200, "{confirmed}");
    let recovery = body(&confirmed)["recovery_codes"][0].as_str().unwrap().to_owned();
    let password = || TestCall::new("POST", "/login").json(json!({"email": email, "password": PW}));
    let challenged = call(&login, password()).await;
    assert_eq!(challenged["statusCode"], 202, "{challenged}");
    assert_eq!(cookie(&challenged), None, "no session on a password alone: {challenged}");
    assert!(!challenged.to_string().to_lowercase().contains("set-cookie"), "{challenged}");
    let challenge = body(&challenged)["challenge"].clone();
    // The code that confirmed is used; the next step's code (one step of skew) signs in.
    let next = code(now + Duration::from_secs(30));
    let done = call(
        &login,
        TestCall::new("POST", "/two-factor-challenge").json(json!({"challenge": challenge, "code": next})),
    )
    .await;
    assert_eq!(done["statusCode"], 200, "{done}");
    let c2 = cookie(&done).expect("a session");
    assert_eq!(
        body(&call(&login, TestCall::new("GET", "/user").cookie(Some(&c2))).await)["user"]["two_factor_enabled"],
        true
    );
    let again = body(&call(&login, password()).await)["challenge"].clone();
    let by_recovery =
        TestCall::new("POST", "/two-factor-challenge").json(json!({"challenge": again, "recovery_code": recovery}));
    assert_eq!(call(&login, by_recovery).await["statusCode"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorizer_binary_allows_a_live_token_and_denies_it_once_revoked() {
    let env = TestEnv::aws().await;
    let vars = env_for(&env, &[("GATEHOUSE_ROUTE_ABILITIES", "GET /reports=reports:read")]);
    let login = LambdaProcess::start(&binary("login"), &vars).await;
    let tokens = LambdaProcess::start(&binary("tokens"), &vars).await;
    let check = LambdaProcess::start(&binary("token-check"), &vars).await;
    let reg = register(&login, "ann@example.com").await;
    let c = cookie(&reg).unwrap();
    let created = create_reports_token(&tokens, &c, "ci").await;
    assert_eq!(created["statusCode"], 201, "{created}");
    let tok = body(&created);
    let token = tok["token"].as_str().unwrap().to_owned();
    let allowed = check.invoke(authorizer_event("GET /reports", Some(&token), None)).await.unwrap();
    assert_eq!(allowed["isAuthorized"], true, "{allowed}");
    assert_eq!(allowed["context"]["token_id"], tok["id"]);
    let lacking = check.invoke(authorizer_event("POST /tokens", Some(&token), None)).await.unwrap();
    assert_eq!(lacking["isAuthorized"], false, "lacks tokens:create");
    let by_cookie = check.invoke(authorizer_event("GET /reports", None, Some(&c))).await.unwrap();
    assert_eq!(by_cookie["isAuthorized"], true);
    let del = tokens
        .invoke(TestCall::new("DELETE", &format!("/tokens/{}", tok["id"].as_str().unwrap())).cookie(Some(&c)).event())
        .await
        .unwrap();
    assert_eq!(del["statusCode"], 204);
    let denied = check.invoke(authorizer_event("GET /reports", Some(&token), None)).await.unwrap();
    assert_eq!(denied["isAuthorized"], false);
    let garbage = check.invoke(authorizer_event("GET /reports", Some("garbage"), None)).await.unwrap();
    assert_eq!(garbage["isAuthorized"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_and_reset_with_the_worker_binary_delivering_the_mail_through_ses() {
    let env = TestEnv::aws().await;
    let email = format!("ann-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let sdk = gatehouse_tests::emulator_sdk_config().await;
    aws_sdk_sesv2::Client::new(&sdk).create_email_identity().email_identity("noreply@gatehouse.test").send().await.ok();
    let vars = env_for(
        &env,
        &[
            ("GATEHOUSE_MAILER", "ses"),
            ("GATEHOUSE_MAIL_FROM", "noreply@gatehouse.test"),
            ("GATEHOUSE_RESET_URL", "https://app.example.com/reset?token={token}&email={email}"),
            ("GATEHOUSE_ROUTE_ABILITIES", "GET /sessions=verified"),
        ],
    );
    let login = LambdaProcess::start(&binary("login"), &vars).await;
    let reset = LambdaProcess::start(&binary("password-reset"), &vars).await;
    let worker = LambdaProcess::start(&binary("job-worker"), &vars).await;
    let registered = register(&login, &email).await;
    let cookie = cookie(&registered).expect("the session cookie");
    let forgot = reset
        .invoke(
            TestCall::new("POST", "/forgot-password")
                .header("host", "evil.example")
                .json(json!({"email": email}))
                .event(),
        )
        .await
        .unwrap();
    assert_eq!(forgot["statusCode"], 202);
    // Two mail jobs: the verification mail registration queued, and the reset link; and the
    // registration's event jobs (`user.registered`, `session.created`), when the emulator hands
    // them out already.
    let mut msgs = Vec::new();
    let mails = |msgs: &Vec<gatehouse::tables::jobs::QueueMessage>| {
        msgs.iter().filter(|m| !m.body.contains("RecordEvent")).count()
    };
    for _ in 0..10 {
        msgs.extend(env.stores.queue.receive(10, Duration::from_secs(2), None).await.unwrap());
        if mails(&msgs) >= 2 {
            break;
        }
    }
    assert_eq!(mails(&msgs), 2);
    assert!(msgs.len() <= 4, "and at most the events' jobs besides");
    let answer = worker.invoke(sqs_event(&msgs)).await.unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let sent = ses_sent_to(&email);
    assert_eq!(sent.len(), 2, "{sent:?}");
    let mail = |subject: &str| sent.iter().find(|m| m.0 == subject).map(|m| m.1.clone()).expect(subject);
    let (verify_mail, reset_mail) = (mail("Verify your email address"), mail("Reset your password"));

    // A route that requires a verified address refuses the session with its own code until then.
    let sessions = TestCall::new("GET", "/sessions").cookie(Some(&cookie)).event();
    let refused = login.invoke(sessions.clone()).await.unwrap();
    assert_eq!(
        (refused["statusCode"].as_u64(), body(&refused)["error"]["code"].as_str()),
        (Some(403), Some("email_unverified")),
        "{refused}"
    );

    // The verification link, opened through the login binary, verifies the address.
    let start = verify_mail.find("https://app.example.com/email/verify/").expect("the configured link") + 23;
    let link = verify_mail[start..].split_whitespace().next().unwrap();
    let opened = login.invoke(TestCall::new("GET", link).cookie(Some(&cookie)).event()).await.unwrap();
    assert_eq!(opened["statusCode"], 200, "{opened}");
    assert_eq!(body(&opened)["verified"], true);
    let passed = login.invoke(sessions).await.unwrap();
    assert_eq!(passed["statusCode"], 200, "the session was stamped verified: {passed}");

    assert!(reset_mail.contains("https://app.example.com/reset?token="), "{reset_mail}");
    let i = reset_mail.find("token=").unwrap() + 6;
    let token = &reset_mail[i..i + 64];
    let new_pw = "a brand new passphrase for e2e";
    let reset_call = TestCall::new("POST", "/reset-password")
        .json(json!({"email": email, "token": token, "password": new_pw, "password_confirmation": new_pw}));
    let done = reset.invoke(reset_call.event()).await.unwrap();
    assert_eq!(done["statusCode"], 200, "{done}");
    // The same request again (its answer lost, say) is answered as it was; the link with any
    // other password is spent.
    let again = reset.invoke(reset_call.event()).await.unwrap();
    assert_eq!(again["statusCode"], 200, "{again}");
    let other = "yet another passphrase for e2e";
    let reuse = TestCall::new("POST", "/reset-password")
        .json(json!({"email": email, "token": token, "password": other, "password_confirmation": other}));
    let reuse = reset.invoke(reuse.event()).await.unwrap();
    assert_eq!(body(&reuse)["error"]["code"], "invalid_token");
    let relog = login
        .invoke(TestCall::new("POST", "/login").json(json!({"email": email, "password": new_pw})).event())
        .await
        .unwrap();
    assert_eq!(relog["statusCode"], 200);
    assert!(body(&relog)["user"]["email_verified_at"].is_string(), "{relog}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_lands_in_failed_jobs_through_the_worker_binary() {
    let env = TestEnv::aws().await;
    let worker = LambdaProcess::start(&binary("job-worker"), &env_for(&env, &[])).await;
    let mut job = gatehouse::tables::jobs::JobPayload::new("SendPasswordResetLink", json!({"email": 42}));
    job.max_tries = Some(3);
    env.stores.queue.send(&job.to_body(), Duration::ZERO).await.unwrap();
    env.stores.queue.send("{\"not\": \"a job\"}", Duration::ZERO).await.unwrap();
    let mut msgs = Vec::new();
    while msgs.len() < 2 {
        msgs.extend(env.stores.queue.receive(10, Duration::from_secs(2), None).await.unwrap());
    }
    let answer = worker.invoke(sqs_event(&msgs)).await.unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]), "both end in failed_jobs, neither is retried: {answer}");
    let failed = env.stores.failed_jobs.list(10, None).await.unwrap().items;
    assert_eq!(failed.len(), 2);
    let bad_data = failed.iter().find(|f| f.uuid == job.uuid).expect("the job with bad data");
    assert!(bad_data.exception.contains("job data has no email"), "{}", bad_data.exception);
}

/// The `pages` binary as Lambda runs it: the sign-in page, then its form posted (base64, as API
/// Gateway sends a form) with the page's CSRF token signs the browser in; the session cookie it
/// sets is one the login binary accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_binary_signs_a_browser_in_through_the_form() {
    let env = TestEnv::aws().await;
    let login = LambdaProcess::start(&binary("login"), &env_for(&env, &[])).await;
    let pages = LambdaProcess::start(&binary("pages"), &env_for(&env, &[])).await;
    let email = format!("ann-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    assert_eq!(register(&login, &email).await["statusCode"], 201);

    let page = call(&pages, TestCall::new("GET", "/account/sign-in")).await;
    assert_eq!(page["statusCode"], 200, "{page}");
    assert!(page["headers"]["content-type"].as_str().unwrap_or_default().starts_with("text/html"));
    let csrf_cookie = page["cookies"]
        .as_array()
        .and_then(|c| c.iter().filter_map(Value::as_str).find(|c| c.starts_with(&format!("{SESSION_COOKIE}_csrf="))))
        .map(|c| c.split(';').next().unwrap_or("").to_owned())
        .expect("the pre-session cookie");
    let html = page["body"].as_str().unwrap_or_default();
    let at = html.find(r#"name="_token" value=""#).expect("a token") + r#"name="_token" value=""#.len();
    let token = &html[at..at + html[at..].find('"').unwrap()];
    let form: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("email", email.as_str()), ("password", PW), ("_token", token)])
        .finish();
    let post = TestCall::new("POST", "/account/sign-in")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .cookie(Some(&csrf_cookie))
        .raw(&form);
    assert_eq!(post.event()["isBase64Encoded"], true, "a form arrives base64-encoded");
    let signed_in = call(&pages, post).await;
    assert_eq!(signed_in["statusCode"], 303, "{signed_in}");
    assert_eq!(signed_in["headers"]["location"], "/account");
    let c = cookie(&signed_in).expect("the session cookie");
    let me = call(&login, TestCall::new("GET", "/user").cookie(Some(&c))).await;
    assert_eq!(body(&me)["user"]["email"], email.as_str());
}

/// Lambda Managed Instances: one process serves `AWS_LAMBDA_MAX_CONCURRENCY` invocations at once
/// (`run_concurrent`), sharing its clients and caches. Eight users' registrations, then logins
/// (right and wrong passwords) and `GET /user`s, fired eight at a time into one login process:
/// every answer is its own request's. With the variable at 1 the same binary takes them one at a
/// time, as on classic Lambda. Prints the wall time of each, for the note on throughput.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_serves_eight_invocations_at_once_and_each_answer_is_its_own() {
    let env = TestEnv::aws().await;
    for (round, concurrency) in [(0u8, 1usize), (1, 8)] {
        let vars = env_for(&env, &[("AWS_LAMBDA_MAX_CONCURRENCY", &concurrency.to_string())]);
        let login = std::sync::Arc::new(LambdaProcess::start(&binary("login"), &vars).await);
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let users: Vec<(String, String)> = (0..8u8)
            .map(|i| (format!("u{i}-{tag}@example.com"), format!("198.51.100.{}", round * 8 + i + 1)))
            .collect();
        let started = std::time::Instant::now();
        // Each batch fired at once; an answer 503 `unavailable` (the emulator starved by eight
        // argon2 hashes on a loaded machine: the route says "retry") is asked again, alone, as a
        // client does, and must then be its own request's answer like any other.
        let fire = |calls: Vec<TestCall>| {
            let tasks: Vec<_> = calls
                .iter()
                .cloned()
                .map(|c| {
                    let login = login.clone();
                    tokio::spawn(async move { login.invoke(c.event()).await.expect("an answer") })
                })
                .collect();
            let login = login.clone();
            async move {
                let mut answers = Vec::new();
                for (t, call) in tasks.into_iter().zip(calls) {
                    let mut answer = t.await.expect("the invocation task");
                    for _ in 0..3 {
                        if answer["statusCode"] != 503 {
                            break;
                        }
                        eprintln!("asked again after a 503: {answer}");
                        answer = login.invoke(call.event()).await.expect("an answer");
                    }
                    answers.push(answer);
                }
                answers
            }
        };
        let registrations = fire(
            users
                .iter()
                .map(|(email, ip)| {
                    TestCall::new("POST", "/register")
                        .from_ip(ip)
                        .json(json!({"name": email, "email": email, "password": PW, "password_confirmation": PW}))
                })
                .collect(),
        )
        .await;
        let mut cookies = Vec::new();
        for ((email, _), reg) in users.iter().zip(&registrations) {
            assert_eq!(reg["statusCode"], 201, "{reg}");
            assert_eq!(body(reg)["user"]["email"], *email, "a registration answered with another's account");
            cookies.push(cookie(reg).expect("a session cookie"));
        }
        // Three kinds per user, shuffled across the batch: its own profile, a right and a wrong password.
        let mixed: Vec<(usize, u8)> = (0..24).map(|n| ((n * 5) % 8, (n % 3) as u8)).collect();
        let calls = mixed
            .iter()
            .map(|&(i, kind)| {
                let (email, ip) = &users[i];
                match kind {
                    0 => TestCall::new("GET", "/user").from_ip(ip).cookie(Some(&cookies[i])),
                    1 => TestCall::new("POST", "/login").from_ip(ip).json(json!({"email": email, "password": PW})),
                    _ => {
                        TestCall::new("POST", "/login").from_ip(ip).json(json!({"email": email, "password": "not it"}))
                    }
                }
            })
            .collect();
        let answers = fire(calls).await;
        for (&(i, kind), answer) in mixed.iter().zip(&answers) {
            let email = &users[i].0;
            match kind {
                0 | 1 => {
                    assert_eq!(answer["statusCode"], 200, "{answer}");
                    assert_eq!(body(answer)["user"]["email"], *email, "user {i} got another's answer: {answer}");
                }
                _ => {
                    assert_eq!(answer["statusCode"], 422, "{answer}");
                    assert_eq!(cookie(answer), None, "a wrong password got a session: {answer}");
                }
            }
        }
        let held = login.max_in_flight();
        eprintln!(
            "AWS_LAMBDA_MAX_CONCURRENCY={concurrency}: 32 invocations in {:?}, at most {held} at once",
            started.elapsed()
        );
        if concurrency == 1 {
            assert_eq!(held, 1, "a classic Lambda process takes one invocation at a time");
        } else {
            assert!(held > 1, "AWS_LAMBDA_MAX_CONCURRENCY={concurrency} served one invocation at a time");
        }
    }
}

/// A listener on 127.0.0.1 that accepts connections and never answers: an AWS that hangs.
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    format!("http://{addr}")
}

/// A request's AWS calls have their own timeouts (8 s with retries, each), but Lambda kills the
/// invocation at its deadline. Against an AWS that hangs, the login function and the authorizer
/// answer in their own words (503 `unavailable` with `Retry-After`; a deny) when their budget is
/// spent, before the deadline, instead of after their first call's 8 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_gives_up_before_its_deadline_when_aws_hangs() {
    let env = TestEnv::aws().await;
    let hole = black_hole().await;
    let vars = env_for(&env, &[("AWS_ENDPOINT_URL", &hole)]);
    let (login, check) = (
        LambdaProcess::start(&binary("login"), &vars).await,
        LambdaProcess::start(&binary("token-check"), &vars).await,
    );
    let budget = Duration::from_secs(3);
    let started = std::time::Instant::now();
    let attempt = TestCall::new("POST", "/login").json(json!({"email": "ann@example.com", "password": PW}));
    let answer = login.invoke_within(attempt.event(), budget).await.expect("an answer");
    let took = started.elapsed();
    assert_eq!(answer["statusCode"], 503, "{answer}");
    assert_eq!(body(&answer)["error"]["code"], "unavailable", "{answer}");
    assert_eq!(answer["headers"]["retry-after"], "1", "{answer}");
    // Cut at the deadline less the margin; without the budget the answer came after 8 s.
    assert!(took < budget + Duration::from_secs(2), "answered after {took:?}");
    assert!(
        took >= budget - gatehouse::values::deadline::MARGIN - Duration::from_millis(300),
        "cut early, at {took:?}"
    );
    // A well-formed token (the default prefix, a good checksum), so the check reaches the store.
    use gatehouse::tables::personal_access_tokens::{PlainTextToken, TokenId, TokenSecret};
    let token = PlainTextToken { id: TokenId::generate(), owner: None, secret: TokenSecret::generate("gth_") }.expose();
    let started = std::time::Instant::now();
    let answer = check.invoke_within(authorizer_event("GET /reports", Some(&token), None), budget).await;
    let took = started.elapsed();
    assert_eq!(answer.expect("an answer")["isAuthorized"], false);
    assert!(took < budget + Duration::from_secs(2), "denied after {took:?}");
    assert!(
        took >= budget - gatehouse::values::deadline::MARGIN - Duration::from_millis(300),
        "denied before the cut, at {took:?}: the store was never asked"
    );
}
