//! The Lambda figures of `scripts/bench`, measured on the binaries Lambda would run (release, with
//! `GATEHOUSE_E2E_BIN_DIR=target/release`) through a local Runtime API, with the stores on the
//! emulator: each function's cold start (process start to its first poll: what Lambda bills as
//! init) and first event, 20 starts each (`GATEHOUSE_BENCH_STARTS`), median and p90; its peak
//! RSS; a warm invocation's time; the AWS calls of each operation, counted on the wire; and one
//! process's throughput at `AWS_LAMBDA_MAX_CONCURRENCY` 1 and 8; the OAuth token endpoint's time
//! with its key in the function and in KMS (the emulator's). Ignored in the test run: these are
//! figures, not assertions. The markdown goes to `GATEHOUSE_BENCH_OUT` (or stdout). The call
//! counts alone are asserted in the test run too
//! (`every_operation_makes_exactly_its_aws_calls_on_the_wire`).

use super::e2e::{body, cookie, create_reports_token, env_for};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gatehouse::services::oauth::clients::ClientRegistration;
use gatehouse::signing::JwtSigner;
use gatehouse::tables::oauth_clients::GrantType;
use gatehouse::values::jwt::{LocalKey, signing_input};
use gatehouse_tests::TestEnv;
use gatehouse_tests::http::{TestCall, authorizer_event, ses_sent_to, sqs_event};
use gatehouse_tests::runtime_api::{LambdaProcess, binary};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
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

/// Each function's first event: a request it answers in full, touching its stores (`m2m`: the
/// client the `oauth` function's token request authenticates as).
fn first_event(function: &str, m2m: &OAuthApp) -> Value {
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
        "oauth" => token_call(m2m, CLIENT_CREDENTIALS),
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

/// The seven functions, then the two floors (`tests/examples/`): lambda_http alone, and lambda_http
/// with the SDK's configuration and a DynamoDB client making one GetItem. `oauth` is started twice
/// (`starts`): its key in the function, then in KMS.
const FUNCTIONS: [&str; 9] = [
    "login",
    "tokens",
    "token-check",
    "password-reset",
    "job-worker",
    "pages",
    "oauth",
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
    // The oauth function boots with its key: a PEM in its environment, or a KMS key (one
    // `GetPublicKey` at init). Its first event is a client-credentials token request (the first
    // of a process reads the keyring too).
    let pem = LocalKey::generate().to_pem().expect("a PEM");
    let key_id = kms_key().await;
    let local_vars = with_oauth(&vars, ("GATEHOUSE_OAUTH_SIGNING_KEY", &pem));
    let kms_vars = with_oauth(&vars, ("GATEHOUSE_OAUTH_KMS_KEY_ID", &key_id));
    let m2m = oauth_client(env, &[GrantType::ClientCredentials]).await;
    // (row label, binary, its environment)
    type Run<'a> = (String, &'a str, &'a [(&'a str, String)]);
    let mut runs: Vec<Run<'_>> = Vec::new();
    for function in FUNCTIONS {
        if function == "oauth" {
            runs.push(("oauth (key in the function)".into(), function, &local_vars));
            runs.push(("oauth (KMS key, the emulator's)".into(), function, &kms_vars));
        } else {
            runs.push((function.into(), function, &vars));
        }
    }
    let heading = format!("### Cold start, first event, memory ({n} starts each)");
    let columns = [
        "function",
        "init median / p90 ms",
        "first event median / p90 ms",
        "warm event median ms",
        "peak RSS median MiB",
    ];
    section(out, &heading, &columns);
    for (label, function, vars) in runs {
        let (mut init, mut first, mut rss, mut warm) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for start in 0..n {
            let lambda = LambdaProcess::start(&binary(function), vars).await;
            init.push(lambda.init_time().await);
            let t = Instant::now();
            let _ = lambda.invoke(first_event(function, &m2m)).await;
            first.push(t.elapsed());
            rss.push(lambda.peak_rss_kib().unwrap_or(0));
            if start + 1 == n {
                for _ in 0..WARM {
                    let t = Instant::now();
                    let _ = lambda.invoke(first_event(function, &m2m)).await;
                    warm.push(t.elapsed());
                }
            }
        }
        rss.sort();
        writeln!(
            out,
            "| {label} | {} / {} | {} / {} | {} | {:.1} |",
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

/// The OAuth provider's issuer in the bench (the template's `OAuthIssuer`), and a client's
/// redirect URI.
const ISSUER: &str = "https://api.example.test";
const CB: &str = "https://app.example/cb";
/// A machine client's token request: its abilities, no user.
const CLIENT_CREDENTIALS: &[(&str, &str)] = &[("grant_type", "client_credentials"), ("scope", "reports:read")];

/// `base` with the OAuth provider on, as the template turns it on (`OAuthIssuer`), signing with
/// `key`: `GATEHOUSE_OAUTH_SIGNING_KEY` and a PEM, or `GATEHOUSE_OAUTH_KMS_KEY_ID` and a key id.
/// The token endpoint's per-address limit is raised: every bench call comes from one address.
fn with_oauth(base: &[(&'static str, String)], key: (&'static str, &str)) -> Vec<(&'static str, String)> {
    let mut v = base.to_vec();
    v.push(("GATEHOUSE_OAUTH_ISSUER", ISSUER.to_owned()));
    v.push((key.0, key.1.to_owned()));
    v.push(("GATEHOUSE_OAUTH_PER_CLIENT_PER_MINUTE", "100000".to_owned()));
    v
}

/// A new `ECC_NIST_P256` signing key in the emulator's KMS (straight to it, not counted): its id.
async fn kms_key() -> String {
    let client = gatehouse_aws::kms::Client::new(&gatehouse_tests::emulator_sdk_config().await);
    gatehouse_aws::kms::create_key(&client, "bench-").await.expect("CreateKey on the emulator").0
}

/// A confidential first-party OAuth client, made in the stores (not counted), and its
/// `Authorization: Basic` header.
struct OAuthApp {
    id: String,
    basic: String,
}

async fn oauth_client(env: &TestEnv, grants: &[GrantType]) -> OAuthApp {
    let code = grants.contains(&GrantType::AuthorizationCode);
    let reg = ClientRegistration {
        name: "Bench".into(),
        redirect_uris: if code { vec![CB.into()] } else { vec![] },
        post_logout_redirect_uris: vec![],
        grant_types: grants.to_vec(),
        scopes: vec!["openid".into(), "offline_access".into(), "reports:read".into()],
        confidential: true,
        first_party: true,
    };
    reg.check().expect("a valid client");
    let (client, secret) = reg.build(env.clock_now(), false);
    env.stores.oauth_clients.create(&client).await.expect("the client stored");
    let id = client.id.as_str().to_owned();
    let secret = secret.expect("a confidential client's secret");
    let basic = format!("Basic {}", STANDARD.encode(format!("{id}:{}", secret.expose())));
    OAuthApp { id, basic }
}

/// `POST /oauth/token` with `fields`, the client authenticated by `client_secret_basic`.
fn token_call(c: &OAuthApp, fields: &[(&str, &str)]) -> Value {
    let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
    TestCall::new("POST", "/oauth/token")
        .header("authorization", &c.basic)
        .header("content-type", "application/x-www-form-urlencoded")
        .raw(&body)
        .event()
}

/// `kms:Sign` as the proxy names it (`TrentService:Sign`, from `X-Amz-Target: TrentService.Sign`):
/// `kms:Sign`, as IAM and the price list name it.
fn named(seen: BTreeMap<String, usize>) -> BTreeMap<String, usize> {
    seen.into_iter().map(|(k, v)| (k.replace("TrentService:", "kms:"), v)).collect()
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
/// At least `n` of the jobs waiting on the queue (received until there are).
async fn waiting_at_least(env: &TestEnv, n: usize) -> Vec<gatehouse::tables::jobs::QueueMessage> {
    let mut all = Vec::new();
    while all.len() < n {
        all.extend(waiting_jobs(env).await);
    }
    all
}

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
            // The promised notices' and events' jobs wait a second, not half a minute.
            ("GATEHOUSE_NOTICE_DELAY_SECONDS", "1"),
        ],
    );
    let (login, tokens) =
        (LambdaProcess::start(&binary("login"), &vars).await, LambdaProcess::start(&binary("tokens"), &vars).await);
    let (check, reset) = (
        LambdaProcess::start(&binary("token-check"), &vars).await,
        LambdaProcess::start(&binary("password-reset"), &vars).await,
    );
    let worker = LambdaProcess::start(&binary("job-worker"), &vars).await;
    // The OAuth provider, on as the template turns it on: the `oauth` function with its key in the
    // function (a PEM) and again with a KMS key (the emulator's; `GetPublicKey` at init), the
    // authorizer checking its access tokens, the hosted pages serving its authorization endpoint.
    let pem = LocalKey::generate().to_pem().expect("a PEM");
    let key_id = kms_key().await;
    let oauth_vars = with_oauth(&vars, ("GATEHOUSE_OAUTH_SIGNING_KEY", &pem));
    let kms_vars = with_oauth(&vars, ("GATEHOUSE_OAUTH_KMS_KEY_ID", &key_id));
    let (oauth, oauth_kms) = (
        LambdaProcess::start(&binary("oauth"), &oauth_vars).await,
        LambdaProcess::start(&binary("oauth"), &kms_vars).await,
    );
    let (oauth_check, pages) = (
        LambdaProcess::start(&binary("token-check"), &oauth_vars).await,
        LambdaProcess::start(&binary("pages"), &oauth_vars).await,
    );
    for f in [&login, &tokens, &check, &reset, &worker, &oauth, &oauth_kms, &oauth_check, &pages] {
        f.init_time().await;
    }
    let m2m = oauth_client(&env, &[GrantType::ClientCredentials]).await;
    let web = oauth_client(&env, &[GrantType::AuthorizationCode, GrantType::RefreshToken]).await;
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
        let seen = named(counter.take());
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
    // The verification mail's job and the registration's event job (`user.registered`); the
    // other event jobs so far (the two sessions, the token made and revoked: #32) run uncounted.
    let (events, queued): (Vec<_>, Vec<_>) =
        waiting_at_least(&env, 6).await.into_iter().partition(|m| m.body.contains("RecordEvent"));
    let (events, others): (Vec<_>, Vec<_>) = events.into_iter().partition(|m| m.body.contains("user.registered"));
    let _ = worker.invoke(sqs_event(&others)).await;
    restart();
    let _ = worker.invoke(sqs_event(&queued)).await;
    let label = format!("the verification mail's job (run, mail through SES, record; {} in the event)", queued.len());
    row(&label, "job-worker", out);
    restart();
    let _ = worker.invoke(sqs_event(&events)).await;
    let label = format!(
        "the registration's event job (`user.registered` recorded, no webhook endpoint; {} in the event)",
        events.len()
    );
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

    // The OAuth provider. A process reads the keyring (one `Scan`) with its first token and then
    // once a minute: each process's first call is made before counting, so the rows are a warm
    // process's.
    let cc = token_call(&m2m, CLIENT_CREDENTIALS);
    for f in [&oauth, &oauth_kms] {
        let first = f.invoke(cc.clone()).await.expect("a token");
        assert_eq!(first["statusCode"], 200, "{first}");
    }
    restart();
    let issued = oauth.invoke(cc.clone()).await.expect("a token");
    assert_eq!(issued["statusCode"], 200, "{issued}");
    row("OAuth token, client credentials (key in the function)", "oauth", out);
    let by_kms = oauth_kms.invoke(cc.clone()).await.expect("a token");
    assert_eq!(by_kms["statusCode"], 200, "{by_kms}");
    row("OAuth token, client credentials (KMS key)", "oauth", out);
    let access = body(&issued)["access_token"].as_str().unwrap_or_default().to_owned();
    let check_event = authorizer_event("GET /reports", Some(&access), None);
    let checked = oauth_check.invoke(check_event.clone()).await.expect("checked");
    assert_eq!(checked["isAuthorized"], true, "{checked}");
    restart();
    let checked = oauth_check.invoke(check_event).await.expect("checked");
    assert_eq!(checked["isAuthorized"], true, "{checked}");
    row("token check (authorizer, OAuth access token)", "token-check", out);
    // The code flow, for a refresh token: signed in again (the reset ended every session), the
    // authorization endpoint (a first-party client: no consent page), the code exchanged.
    let again = login.invoke(attempt(new_pw, &email)).await.expect("login");
    let c = cookie(&again).unwrap_or_else(|| panic!("a session: {again}"));
    let verifier = format!("{}-{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", web.id.as_str()),
            ("redirect_uri", CB),
            ("scope", "openid offline_access reports:read"),
            ("state", "bench"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("nonce", "bench"),
        ])
        .finish();
    restart();
    let authorize = TestCall::new("GET", &format!("/account/oauth/authorize?{query}")).cookie(Some(&c));
    let shown = pages.invoke(authorize.event()).await.expect("authorize");
    row("OAuth authorize (hosted page; signed in, first-party client)", "pages", out);
    let location = shown["headers"]["location"].as_str().unwrap_or_default();
    let code = location
        .split_once('?')
        .and_then(|(_, q)| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "code"))
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code: {shown}"));
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CB),
        ("code_verifier", verifier.as_str()),
    ];
    let granted = oauth.invoke(token_call(&web, &exchange)).await.expect("exchange");
    assert_eq!(granted["statusCode"], 200, "{granted}");
    row("OAuth token, authorization code (+ ID token; key in the function)", "oauth", out);
    let refresh = body(&granted)["refresh_token"].as_str().unwrap_or_default().to_owned();
    let refreshed = oauth
        .invoke(token_call(&web, &[("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())]))
        .await
        .expect("refresh");
    assert_eq!(refreshed["statusCode"], 200, "{refreshed}");
    row("OAuth token, refresh token (+ ID token; key in the function)", "oauth", out);
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

/// Warm `POST /oauth/token` (client_credentials) times: the key in the function, the key in
/// the emulator's KMS, and the emulator's `kms:Sign` alone.
struct TokenTimes {
    local: Vec<Duration>,
    kms: Vec<Duration>,
    sign_alone: Vec<Duration>,
}

async fn timed(f: &LambdaProcess, event: &Value) -> Duration {
    let t = Instant::now();
    let answer = f.invoke(event.clone()).await.expect("an answer");
    let took = t.elapsed();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    took
}

/// The signature's place in a token request: two warm `oauth` processes, one signing in the
/// function and one through `kms:Sign` on the emulator, called in turn (so both see the same
/// machine), and the emulator's `Sign` alone from this process through the SDK.
async fn token_latency(env: &TestEnv, out: &mut String) -> TokenTimes {
    const N: usize = 50;
    let vars = env_for(env, &[]);
    let pem = LocalKey::generate().to_pem().expect("a PEM");
    let key_id = kms_key().await;
    let local = LambdaProcess::start(&binary("oauth"), &with_oauth(&vars, ("GATEHOUSE_OAUTH_SIGNING_KEY", &pem))).await;
    let kms = LambdaProcess::start(&binary("oauth"), &with_oauth(&vars, ("GATEHOUSE_OAUTH_KMS_KEY_ID", &key_id))).await;
    local.init_time().await;
    kms.init_time().await;
    let m2m = oauth_client(env, &[GrantType::ClientCredentials]).await;
    let event = token_call(&m2m, CLIENT_CREDENTIALS);
    for _ in 0..5 {
        timed(&local, &event).await;
        timed(&kms, &event).await;
    }
    let mut times = TokenTimes { local: Vec::new(), kms: Vec::new(), sign_alone: Vec::new() };
    for _ in 0..N {
        times.local.push(timed(&local, &event).await);
        times.kms.push(timed(&kms, &event).await);
    }
    let client = gatehouse_aws::kms::Client::new(&gatehouse_tests::emulator_sdk_config().await);
    let signer = gatehouse_aws::kms::KmsSigner::new(client, &key_id).await.expect("GetPublicKey");
    let claims = json!({"iss": ISSUER, "sub": m2m.id, "aud": ISSUER, "client_id": m2m.id, "scope": "reports:read",
        "jti": "0123456789abcdef0123456789abcdef", "iat": 1_800_000_000, "exp": 1_800_000_600});
    let input = signing_input(&signer.jwk().kid, "at+jwt", &claims);
    for n in 0..N + 5 {
        let t = Instant::now();
        signer.sign(input.as_bytes()).await.expect("kms:Sign");
        if n >= 5 {
            times.sign_alone.push(t.elapsed());
        }
    }
    let heading = format!(
        "\n### The OAuth token endpoint: its signature in the function or in KMS (warm `POST /oauth/token`, client_credentials, {N} each, in turn)"
    );
    section(out, &heading, &["signing key", "median ms", "p90 ms"]);
    for (what, v) in [
        ("in the function (`GATEHOUSE_OAUTH_SIGNING_KEY`: ES256 with p256, in the process)", &times.local),
        (
            "KMS (`GATEHOUSE_OAUTH_KMS_KEY_ID`): one `kms:Sign` per token, **the emulator's** (moto on this machine, not AWS KMS)",
            &times.kms,
        ),
        ("`kms:Sign` alone: the SDK from the test process to the emulator", &times.sign_alone),
    ] {
        writeln!(out, "| {what} | {} | {} |", ms(quantile(v, 0.5)), ms(quantile(v, 0.9))).unwrap();
    }
    let gap = quantile(&times.kms, 0.5).as_secs_f64() - quantile(&times.local, 0.5).as_secs_f64();
    writeln!(
        out,
        "\nThe KMS figures are the emulator's round trip (moto, one Python process on this machine's cores), not AWS \
         KMS's: AWS KMS's `Sign` latency could not be measured here (no AWS account). Here KMS added {:.1} ms at the \
         median. The in-process signature's CPU time is criterion's `oauth_jwt/sign_access_token` below.",
        gap * 1000.0
    )
    .unwrap();
    times
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
// KMS: a request to an asymmetric key other than RSA 2048 (`Sign` with ECC_NIST_P256), and a
// customer-managed key's month. Check aws.amazon.com/kms/pricing: third-party summaries disagree.
const KMS_ASYMMETRIC_REQUEST: f64 = 0.15 / 1e4;
const KMS_KEY_MONTH: f64 = 1.0;
// Cognito's machine-to-machine authorization (the issue's figures): per token request, and per
// M2M app client a month.
const COGNITO_M2M_TOKEN: f64 = 2.25 / 1e3;
const COGNITO_M2M_CLIENT_MONTH: f64 = 6.0;

/// What one operation costs: Lambda (billed ms rounded up, at the function's memory), the HTTP
/// API request (not for the authorizer or a job), and its calls ([`calls_cost`]).
fn cost(op: &Op, memory: &BTreeMap<String, f64>) -> f64 {
    lambda_cost(op.function, op.took, memory) + calls_cost(&op.calls, |_| true)
}

/// One invocation of `function` taking `took`: the request, the billed ms (rounded up) at the
/// function's memory, and the HTTP API request (not for the authorizer or a job).
fn lambda_cost(function: &str, took: Duration, memory: &BTreeMap<String, f64>) -> f64 {
    let mb = memory.get(function).copied().unwrap_or(256.0);
    let billed_ms = (took.as_secs_f64() * 1000.0).ceil();
    let mut usd = LAMBDA_REQUEST + billed_ms / 1000.0 * mb / 1024.0 * LAMBDA_GB_SECOND;
    if !matches!(function, "token-check" | "job-worker") {
        usd += HTTP_API_REQUEST;
    }
    usd
}

/// The calls `which` picks of `calls`, at on-demand request-unit prices, each item taken as
/// small (a read 1 RRU consistent, a write 1 WRU, a transaction 2 WRU per item with 2 items, a
/// query or a scan of a few items 1 RRU), KMS at its asymmetric-request price.
fn calls_cost(calls: &BTreeMap<String, usize>, which: impl Fn(&str) -> bool) -> f64 {
    let mut usd = 0.0;
    for (call, n) in calls.iter().filter(|(c, _)| which(c)) {
        let n = *n as f64;
        usd += n * match call.as_str() {
            c if c.ends_with("TransactWriteItems") => 4.0 * DYNAMODB_WRU,
            c if c.ends_with("GetItem") || c.ends_with("Query") || c.ends_with("Scan") => DYNAMODB_RRU,
            c if c.starts_with("dynamodb:") => DYNAMODB_WRU,
            c if c.starts_with("sqs:") => SQS_REQUEST,
            c if c.starts_with("kms:") => KMS_ASYMMETRIC_REQUEST,
            _ => SES_MAIL,
        };
    }
    usd
}

fn cost_model(ops: &[Op], tokens: &TokenTimes, out: &mut String) {
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
    oauth_cost(ops, tokens, &memory, out);
}

/// A million client-credentials token requests: the key in the function, in KMS, and Cognito's
/// M2M price. Lambda at the `oauth` function's memory and the warm medians measured here; the
/// DynamoDB calls of the wire rows; KMS per `Sign`.
fn oauth_cost(ops: &[Op], tokens: &TokenTimes, memory: &BTreeMap<String, f64>, out: &mut String) {
    let row = |name: &str| ops.iter().find(|o| o.name.starts_with(name)).unwrap_or_else(|| panic!("no row {name}"));
    let (local, kms) = (row("OAuth token, client credentials (key"), row("OAuth token, client credentials (KMS"));
    let (local_ms, kms_ms) = (quantile(&tokens.local, 0.5), quantile(&tokens.kms, 0.5));
    let mb = memory.get("oauth").copied().unwrap_or(256.0);
    let dynamodb = |op: &Op| calls_cost(&op.calls, |c| c.starts_with("dynamodb:")) * 1e6;
    let kms_calls = |op: &Op| calls_cost(&op.calls, |c| c.starts_with("kms:")) * 1e6;
    let lambda = |took: Duration| (lambda_cost("oauth", took, memory) - HTTP_API_REQUEST) * 1e6;
    let total = |op: &Op, took: Duration| lambda_cost("oauth", took, memory) * 1e6 + dynamodb(op) + kms_calls(op);
    let which = |op: &Op| {
        let each: Vec<String> =
            op.calls.iter().filter(|(c, _)| c.starts_with("dynamodb:")).map(|(c, n)| format!("{c} {n}")).collect();
        each.join(", ")
    };
    let heading =
        "\n### A million client-credentials token requests (`POST /oauth/token`), USD, beside Cognito's M2M price";
    section(out, heading, &["", "key in the function", "KMS key", "Cognito M2M"]);
    writeln!(
        out,
        "| Lambda: requests and duration at {mb:.0} MB (warm median here: {} ms in the function, {} ms with the emulator's KMS) | {:.2} | {:.2} | - |",
        ms(local_ms),
        ms(kms_ms),
        lambda(local_ms),
        lambda(kms_ms)
    )
    .unwrap();
    writeln!(out, "| HTTP API request | {:.2} | {:.2} | - |", HTTP_API_REQUEST * 1e6, HTTP_API_REQUEST * 1e6).unwrap();
    writeln!(out, "| DynamoDB on demand ({}) | {:.2} | {:.2} | - |", which(local), dynamodb(local), dynamodb(kms))
        .unwrap();
    writeln!(
        out,
        "| KMS `Sign`, $0.15 per 10,000 asymmetric requests | {:.2} | {:.2} | - |",
        kms_calls(local),
        kms_calls(kms)
    )
    .unwrap();
    writeln!(out, "| token requests, $2.25 per 1,000 | - | - | {:.2} |", COGNITO_M2M_TOKEN * 1e6).unwrap();
    writeln!(
        out,
        "| **per million token requests** | **{:.2}** | **{:.2}** | **{:.2}** |",
        total(local, local_ms),
        total(kms, kms_ms),
        COGNITO_M2M_TOKEN * 1e6
    )
    .unwrap();
    writeln!(
        out,
        "| and a month, whatever the traffic | 0 | {KMS_KEY_MONTH:.2} (the KMS key) | {COGNITO_M2M_CLIENT_MONTH:.2} per M2M app client |"
    )
    .unwrap();
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
        // ... and the job of its event, `user.registered` (#32), promised before the write.
        // ... and `session.created`'s, promised before the session's issue (which numbers it).
        ("register", &[(TRANSACT, 2), (UPDATE, 1), (QUEUE_URL, 1), (SEND, 3)]),
        ("login, right password", &[(GET, 2), (TRANSACT, 2), (SEND, 1)]),
        ("login, wrong password", &[(GET, 2), (TRANSACT, 1)]),
        ("login, unknown email", &[(GET, 2), (TRANSACT, 1)]),
        // Every check is one read: the credential and its owner in one `BatchGetItem` (#28).
        ("`GET /user` with the session cookie", &[(BATCH, 1), (GET, 1)]),
        // The check, the per-user mint limits (hour and day, one transaction), the token and
        // its register entry under the user's version (one transaction).
        // Its `token.created` promised first (the queue's URL once per process).
        ("create a token", &[(BATCH, 1), (TRANSACT, 2), (QUEUE_URL, 1), (SEND, 1)]),
        ("`GET /user` with the token", &[(BATCH, 1), (GET, 1), (UPDATE, 1)]),
        ("token check", &[(BATCH, 1)]),
        ("session check", &[(BATCH, 1)]),
        // The check, the register read consistently (the token's entry is the caller's proof of
        // ownership: no delete of the token up front), the token deleted last (#34: what derives
        // from it first), the register read again for what was derived meanwhile (the token stays
        // live the longest), its entry forgotten with the mark of its ended tree and the user's
        // numbering of `token.revoked` (promised first) in one transaction.
        ("revoke a token", &[(TRANSACT, 1), ("dynamodb:DeleteItem", 1), (BATCH, 1), ("dynamodb:Query", 2), (SEND, 1)]),
        ("the verification mail's job", &[(SES, 1), (GET, 1), (PUT, 2)]),
        // The job's run recorded, the mark looked for on the user (by the worker, then the job),
        // the event put, the user read again (a deletion meanwhile redacts), the endpoints listed
        // (none), the mark cleared.
        ("the registration's event job", &[(GET, 3), (PUT, 3), ("dynamodb:Scan", 1), (UPDATE, 1)]),
        // The per-client limit, the address's mails a day (#28), the job.
        ("forgot password", &[(UPDATE, 1), (TRANSACT, 1), (QUEUE_URL, 1), (SEND, 1)]),
        ("its job (the reset link", &[(SES, 1), (GET, 2), (PUT, 3)]),
        // The link, the user (twice: before the hash, and the compare-and-swap's read), the
        // password-changed notice promised first, then its event (`user.password_reset`, #32),
        // the password with the passkeys and both marks in one write, the register's revocation,
        // the safety-net job. The spent token stays (marked spent) for the reset's own retry.
        (
            "reset the password (answered 200)",
            &[
                ("dynamodb:BatchWriteItem", 1),
                ("dynamodb:DeleteItem", 2),
                (GET, 5),
                ("dynamodb:Query", 4),
                (UPDATE, 3),
                (SEND, 3),
            ],
        ),
        // The OAuth provider, warm (the keyring's `Scan` is once a minute per process). A token:
        // the endpoint's per-address limit, the client (its secret's hash), the access token's
        // record (introspection and revocation find it); the signature is in the process.
        ("OAuth token, client credentials (key in the function)", &[(UPDATE, 1), (GET, 1), (PUT, 1)]),
        // The same, and the signature is one `kms:Sign`.
        ("OAuth token, client credentials (KMS key)", &[(UPDATE, 1), (GET, 1), (PUT, 1), ("kms:Sign", 1)]),
        // The signature checked in the process; the token's record (revoked or not). A client's
        // own token has no grant to read.
        ("token check (authorizer, OAuth access token)", &[(GET, 1)]),
        // The session and its user in one read, the client, the code.
        ("OAuth authorize", &[(BATCH, 1), (GET, 1), (PUT, 1)]),
        // The limit, the client, the code spent (one conditional write), the user, the grant
        // issued under the user's credentials version (its family and register entry in one
        // transaction), the access token's record; two signatures (access and ID token).
        ("OAuth token, authorization code", &[(UPDATE, 2), (GET, 2), (TRANSACT, 1), (PUT, 1)]),
        // The limit, the client, the grant's family, its rotation (one conditional write), the
        // user, the access token's record; two signatures.
        ("OAuth token, refresh token", &[(UPDATE, 2), (GET, 3), (PUT, 1)]),
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
    let tokens = token_latency(&env, &mut out).await;
    cost_model(&ops, &tokens, &mut out);
    match std::env::var("GATEHOUSE_BENCH_OUT") {
        Ok(path) => std::fs::write(&path, &out).unwrap_or_else(|e| panic!("{path}: {e}")),
        Err(_) => println!("{out}"),
    }
}
