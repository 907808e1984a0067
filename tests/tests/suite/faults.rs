//! gatehouse under injected AWS faults: every DynamoDB, SQS and SES call goes through the proxy of
//! `gatehouse_tests::wire`, which fails a seeded 10 % of them the ways AWS fails (throttled, 500,
//! connection dropped, answer delayed past the attempt timeout, answer dropped after the write
//! landed), while users go register → login → token → forgot → mailed link → reset, as a
//! well-behaved client does: asking again after a 503, as the answer invites.
//!
//! What must hold: no 500 and no AWS internals in any answer; no retry turns a landed write into
//! a refusal (a token creation never answers 409, a fresh address is never "taken" unless the
//! account exists with the password given); every 202 of forgot-password ends in a mail whose
//! link works; every reset that answered 200, or whose answer was lost, revoked the old password
//! and the old token; the mail jobs finish (none left queued or failed).
//!
//! A failure prints its seed: `GATEHOUSE_FAULT_SEED=<seed>` replays the same faults (calls of one
//! operation are failed by their sequence number, and the users go one after another).
//!
//! The two long runs are `#[ignore]`d in the main test run and run by `scripts/test` as a step of
//! their own, with the emulator otherwise idle: their attempt timeouts are real, and an emulator
//! serving the rest of the suite at once answers slowly enough to be taken for a fault.
//! `cargo test -p gatehouse-tests --test suite faults:: -- --include-ignored` runs them by hand.

use gatehouse::mail::{Mail, Mailer};
use gatehouse::queue::Worker;
use gatehouse_tests::http::{Call, Reply, TestApp};
use gatehouse_tests::wire::{Fault, faulty_env};
use serde_json::json;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery staple 42";
const NEW_PW: &str = "an entirely new passphrase 2026";
const USERS: usize = 10;
/// 10 % of calls fail.
const RATE: u32 = 100;

/// What a client gets after asking up to eight times while the answer was 503 (or a 5xx the
/// function should never give: it fails the test below), and whether an earlier answer was lost.
struct Outcome {
    reply: Reply,
    lost_before: bool,
}

async fn persistently<F, Fut>(what: &str, mut call: F) -> Outcome
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Reply>,
{
    let mut lost_before = false;
    for _ in 0..8 {
        let reply = call().await;
        assert!(reply.status != 500, "{what}: a 500 under faults: {}", reply.raw_body);
        for secret in ["amazonaws", "dynamodb", "Exception", "injected", "__type"] {
            assert!(!reply.raw_body.contains(secret), "{what}: AWS internals in the answer: {}", reply.raw_body);
        }
        if reply.status == 503 {
            assert_eq!(reply.error_code(), Some("unavailable"), "{what}: {}", reply.raw_body);
            lost_before = true;
            continue;
        }
        return Outcome { reply, lost_before };
    }
    panic!("{what}: still unavailable after eight tries at a 10 % fault rate");
}

fn email_of(i: usize, run: &str) -> String {
    format!("fault-{run}-{i}@example.com")
}

fn ip_of(i: usize) -> String {
    format!("198.51.100.{}", 10 + i)
}

/// The token in a mailed link `...?token=<64 hex>&email=...`.
fn token_in(text: &str) -> Option<String> {
    let i = text.find("token=")? + 6;
    text.get(i..i + 64).map(str::to_owned)
}

/// SES, through the faulty proxy, keeping every mail SES accepted (answered 200): what the
/// test reads the links from. Asking moto for its sent mail instead dumps the emulator's whole
/// state, which takes tens of seconds once the rest of the suite has filled it.
struct Accepted {
    ses: gatehouse::aws::ses::SesMailer,
    sent: Mutex<Vec<Mail>>,
}

#[async_trait::async_trait]
impl Mailer for Accepted {
    async fn send(&self, mail: &Mail) -> Result<(), gatehouse::mail::MailError> {
        self.ses.send(mail).await?;
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).push(mail.clone());
        Ok(())
    }
}

impl Accepted {
    /// The reset links mailed to `to`, in order.
    fn reset_mails(&self, to: &str) -> Vec<String> {
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        sent.iter().filter(|m| m.to == to && m.subject == "Reset your password").map(|m| m.text.clone()).collect()
    }
}

/// Runs the worker as the Lambda event source would, until every address in `to` has a reset
/// mail or four minutes pass: receives with a 20 s visibility (a delivery whose deletion was lost
/// comes back), processes, settles; a failed poll or settle is what a fault looks like, not an
/// error of the test.
async fn work_until_mailed(worker: &Worker, mailer: &Accepted, to: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(240);
    let missing = || -> Vec<&String> { to.iter().filter(|e| mailer.reset_mails(e).is_empty()).collect() };
    while Instant::now() < deadline {
        if missing().is_empty() {
            return;
        }
        let Ok(msgs) = worker.stores().queue.receive(10, Duration::from_secs(1), Some(Duration::from_secs(20))).await
        else {
            continue;
        };
        for m in &msgs {
            let outcome = worker.process(m).await;
            let _ = worker.settle(m, &outcome).await;
        }
    }
    panic!("no reset mail within four minutes for {:?}", missing());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load-sensitive: scripts/test runs it as a step of its own (faults:: -- --ignored)"]
async fn credential_flows_hold_while_a_tenth_of_aws_calls_fail() {
    let seed = seed();
    let (env, faults, sdk) = faulty_env(seed).await;
    let t = TestApp::with(env, &[("GATEHOUSE_MAIL_FROM", "noreply@gatehouse.test")]);
    let direct = gatehouse_tests::emulator_sdk_config().await;
    aws_sdk_sesv2::Client::new(&direct)
        .create_email_identity()
        .email_identity("noreply@gatehouse.test")
        .send()
        .await
        .ok();
    let mailer = Arc::new(Accepted {
        ses: gatehouse::aws::ses::SesMailer::new(&sdk, "noreply@gatehouse.test".into()),
        sent: Mutex::default(),
    });
    let worker = t.worker(mailer.clone());
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    faults.set_rate(RATE);

    let mut accounts = Vec::new();
    for i in 0..USERS {
        let (email, ip) = (email_of(i, run), ip_of(i));
        let register = persistently("register", || {
            t.login_fn(Call::new("POST", "/register").from_ip(&ip).json(json!({
                "name": format!("User {i}"), "email": email, "password": PW, "password_confirmation": PW
            })))
        })
        .await;
        match register.reply.status {
            201 => {}
            // Only after an answer was lost may the address be taken: by this user's own account,
            // which the login below proves.
            422 if register.lost_before => {}
            s => panic!("register {email}: {s} {}", register.reply.raw_body),
        }
        // A minute between sign-ins, as people take: the login limits count per minute.
        t.env.clock.advance(chrono::Duration::seconds(61));
        let login = persistently("login", || {
            t.login_fn(Call::new("POST", "/login").from_ip(&ip).json(json!({ "email": email, "password": PW })))
        })
        .await;
        assert_eq!(login.reply.status, 200, "login {email}: {}", login.reply.raw_body);
        let cookie = login.reply.session_cookie().expect("a session");
        let token = persistently("create token", || {
            t.tokens_fn(Call::new("POST", "/tokens").from_ip(&ip).cookie(Some(&cookie)).json(json!({
                "name": "ci", "abilities": ["tokens:read"], "expires_in_minutes": 60
            })))
        })
        .await;
        assert_eq!(token.reply.status, 201, "create token {email}: {}", token.reply.raw_body);
        let token = token.reply.body["token"].as_str().expect("the plaintext").to_owned();
        let me = persistently("GET /user", || t.login_fn(Call::new("GET", "/user").from_ip(&ip).bearer(&token))).await;
        assert_eq!(me.reply.status, 200, "GET /user {email}: {}", me.reply.raw_body);
        let forgot = persistently("forgot", || {
            t.reset_fn(Call::new("POST", "/forgot-password").from_ip(&ip).json(json!({ "email": email })))
        })
        .await;
        assert_eq!(forgot.reply.status, 202, "forgot {email}: {}", forgot.reply.raw_body);
        accounts.push((email, ip, token));
    }

    let emails: Vec<String> = accounts.iter().map(|(e, _, _)| e.clone()).collect();
    work_until_mailed(&worker, &mailer, &emails).await;

    for (email, ip, old_token) in &accounts {
        let links = mailer.reset_mails(email);
        let reset_token = token_in(&links[0]).expect("a link with a token");
        // A mail sent twice (its answer lost, the job run again) carries the same link.
        for body in &links {
            assert_eq!(token_in(body).as_deref(), Some(reset_token.as_str()), "{email}: two different links");
        }
        let reset = persistently("reset", || {
            t.reset_fn(Call::new("POST", "/reset-password").from_ip(ip).json(json!({
                "email": email, "token": reset_token, "password": NEW_PW, "password_confirmation": NEW_PW
            })))
        })
        .await;
        match reset.reply.status {
            200 => {}
            // The token was spent by an attempt whose answer was lost: the new password works below.
            422 if reset.lost_before && reset.reply.error_code() == Some("invalid_token") => {}
            s => panic!("reset {email}: {s} {}", reset.reply.raw_body),
        }
        t.env.clock.advance(chrono::Duration::seconds(61));
        let new = persistently("login, new password", || {
            t.login_fn(Call::new("POST", "/login").from_ip(ip).json(json!({ "email": email, "password": NEW_PW })))
        })
        .await;
        assert_eq!(new.reply.status, 200, "{email}: the new password: {}", new.reply.raw_body);
        t.env.clock.advance(chrono::Duration::seconds(61));
        let old = persistently("login, old password", || {
            t.login_fn(Call::new("POST", "/login").from_ip(ip).json(json!({ "email": email, "password": PW })))
        })
        .await;
        assert_eq!(old.reply.status, 422, "{email}: the old password still works: {}", old.reply.raw_body);
        let revoked =
            persistently("old token", || t.login_fn(Call::new("GET", "/user").from_ip(ip).bearer(old_token))).await;
        assert_eq!(revoked.reply.status, 401, "{email}: the token from before the reset still works");
    }

    faults.set_rate(0);
    let injected = faults.injected();
    eprintln!("faults injected (seed {seed}): {injected:?}");
    for kind in [Fault::Throttle, Fault::ServerError, Fault::Drop, Fault::Delay, Fault::AfterWrite] {
        assert!(injected.keys().any(|(_, k)| *k == kind), "seed {seed}: no {kind:?} was injected; raise USERS");
    }
    // Every job finished: nothing failed for good, nothing left behind once its retries are due.
    let failed = t.env.stores.failed_jobs.list(10, None).await.expect("failed jobs");
    assert!(failed.items.is_empty(), "seed {seed}: jobs failed for good: {:?}", failed.items);
}

/// A write that landed and whose answer was lost: the SDK sends it again, and the retry must be
/// taken for the same write, not refused by the item it wrote itself.
#[tokio::test]
async fn a_write_whose_answer_was_lost_is_not_refused_by_its_own_retry() {
    let (env, faults, _) = faulty_env(1).await;
    let t = TestApp::with(env, &[]);
    let email = email_of(0, &uuid::Uuid::new_v4().simple().to_string()[..8]);
    // Registering: the address reserved and the user written in one transaction (its
    // ClientRequestToken makes the retry answer the first success, as DynamoDB does).
    faults.fail_next("dynamodb:TransactWriteItems", Fault::AfterWrite);
    let reg = t.register("Ann", &email, PW).await;
    assert_eq!(reg.status, 201, "{}", reg.raw_body);
    let cookie = reg.session_cookie().expect("registration signs in");
    // A token: the credentials register's transaction.
    faults.fail_next("dynamodb:TransactWriteItems", Fault::AfterWrite);
    let token = t
        .tokens_fn(Call::new("POST", "/tokens").cookie(Some(&cookie)).json(json!({
            "name": "ci", "abilities": ["tokens:read"], "expires_in_minutes": 60
        })))
        .await;
    assert_eq!(token.status, 201, "{}", token.raw_body);
    // A job's run claim: a conditional put, recognised by the claimant mark it carries.
    let now = t.env.clock_now();
    let (lease, keep) = (now + chrono::Duration::seconds(60), now + chrono::Duration::days(1));
    faults.fail_next("dynamodb:PutItem", Fault::AfterWrite);
    let claim = t.env.stores.job_runs.claim("job-lost-answer", now, lease, keep).await.expect("claim");
    let gatehouse::job_runs::Claim::Claimed(claimant) = claim else { panic!("not claimed: {claim:?}") };
    let other = t.env.stores.job_runs.claim("job-lost-answer", now, lease, keep).await.expect("claim");
    assert!(matches!(other, gatehouse::job_runs::Claim::Busy { .. }), "another run is still refused: {other:?}");
    // The claimant answered is the one stored: its release frees the run for the next attempt.
    t.env.stores.job_runs.release("job-lost-answer", &claimant).await.expect("release");
    let again = t.env.stores.job_runs.claim("job-lost-answer", now, lease, keep).await.expect("claim");
    assert!(matches!(again, gatehouse::job_runs::Claim::Claimed(_)), "released by its holder: {again:?}");
    assert_eq!(
        faults.injected().values().sum::<usize>(),
        3,
        "every scripted fault was injected: {:?}",
        faults.injected()
    );
}

fn seed() -> u64 {
    let seed = std::env::var("GATEHOUSE_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from_le_bytes(gatehouse::secret::random_bytes::<8>()));
    eprintln!("fault injection seed: {seed} (replay: GATEHOUSE_FAULT_SEED={seed})");
    seed
}

/// 300 jobs through the worker while a tenth of its DynamoDB and SQS calls fail: 180 that succeed
/// at once, 60 that fail twice first, 30 that always fail, and three batches of ten whose
/// then/catch/finally jobs count their runs. Dispatched before the faults start (dispatching
/// under faults is the credential flows' part); processed as the SQS event source does, with a
/// short visibility so a delivery whose deletion was lost comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load-sensitive: scripts/test runs it as a step of its own (faults:: -- --ignored)"]
async fn jobs_run_once_in_effect_while_a_tenth_of_aws_calls_fail() {
    use gatehouse::job_batches::BatchOptions;
    use gatehouse_tests::jobs::{job, test_worker};
    let seed = seed();
    let (env, faults, _) = faulty_env(seed).await;
    let (w, probe) = test_worker(&env);
    let timed = |mut j: gatehouse::jobs::JobPayload| {
        j.timeout = Some(5);
        j
    };
    let mut plain = Vec::new();
    for i in 0..240 {
        let effect = format!("effect-{i}");
        let fail_times = if i >= 180 { 2 } else { 0 };
        let j = timed(job("Flaky", json!({ "fail_times": fail_times, "effect": effect }), 8));
        w.dispatcher().dispatch(j).await.expect("dispatch");
        plain.push(effect);
    }
    let mut doomed = Vec::new();
    for _ in 0..30 {
        let j = timed(job("Flaky", json!({ "fail_times": 99, "effect": "never" }), 2));
        doomed.push(j.uuid.clone());
        w.dispatcher().dispatch(j).await.expect("dispatch");
    }
    let mut batches = Vec::new();
    for b in 0..3 {
        let follow_up = |kind: &str| {
            vec![serde_json::to_value(job("Flaky", json!({ "effect": format!("{kind}-{b}") }), 8)).unwrap()]
        };
        let options = BatchOptions {
            allow_failures: true,
            then: follow_up("then"),
            catch: follow_up("catch"),
            finally: follow_up("finally"),
        };
        let members: Vec<_> =
            (0..10).map(|m| timed(job("Flaky", json!({ "effect": format!("member-{b}-{m}") }), 8))).collect();
        batches.push(w.dispatcher().dispatch_batch("import", members, options).await.expect("batch").id);
    }
    faults.set_rate(RATE);

    let done = |failed: usize| {
        plain.iter().all(|e| probe.runs(e) >= 1)
            && (0..3).all(|b| probe.runs(&format!("finally-{b}")) >= 1)
            && failed >= doomed.len()
    };
    let deadline = Instant::now() + Duration::from_secs(360);
    let mut last = Instant::now();
    loop {
        // The stores' clock follows the wall clock: leases and backoffs end as they would.
        let now = Instant::now();
        env.clock.advance(chrono::Duration::from_std(now - last).expect("small"));
        last = now;
        let failed = env.stores.failed_jobs.list(100, None).await.map(|p| p.items.len()).unwrap_or(0);
        if done(failed) {
            break;
        }
        assert!(Instant::now() < deadline, "seed {seed}: the jobs did not finish in six minutes");
        let Ok(msgs) = env.stores.queue.receive(10, Duration::from_secs(1), Some(Duration::from_secs(10))).await else {
            continue;
        };
        for m in &msgs {
            let outcome = w.process(m).await;
            let _ = w.settle(m, &outcome).await;
        }
    }
    faults.set_rate(0);
    let injected = faults.injected();
    eprintln!("faults injected (seed {seed}): {injected:?}");
    for effect in &plain {
        assert_eq!(probe.runs(effect), 1, "seed {seed}: {effect} took effect {} times", probe.runs(effect));
    }
    assert_eq!(probe.runs("never"), 0);
    let failed = env.stores.failed_jobs.list(100, None).await.expect("failed jobs").items;
    let mut failed_ids: Vec<&str> = failed.iter().map(|f| f.uuid.as_str()).collect();
    failed_ids.sort_unstable();
    let mut expected: Vec<&str> = doomed.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(failed_ids, expected, "seed {seed}: exactly the always-failing jobs failed, each once");
    for (b, id) in batches.iter().enumerate() {
        let batch = env.stores.batches.find(id).await.expect("find").expect("the batch");
        assert_eq!((batch.total_jobs, batch.pending_jobs, batch.failed_jobs), (10, 0, 0), "seed {seed}: batch {b}");
        assert!(batch.finished_at.is_some(), "seed {seed}: batch {b} finished");
        for m in 0..10 {
            assert_eq!(probe.runs(&format!("member-{b}-{m}")), 1, "seed {seed}: member {m} of batch {b}");
        }
        assert_eq!(probe.runs(&format!("then-{b}")), 1, "seed {seed}: then of batch {b}");
        assert_eq!(probe.runs(&format!("finally-{b}")), 1, "seed {seed}: finally of batch {b}");
        assert_eq!(probe.runs(&format!("catch-{b}")), 0, "seed {seed}: catch of batch {b}");
    }
    // Nothing left to run once the last retries are due.
    let left = env.stores.queue.receive(10, Duration::from_secs(1), None).await.expect("receive");
    for m in &left {
        assert_eq!(w.process(m).await, gatehouse::queue::Outcome::Completed, "seed {seed}: a leftover ran: {}", m.body);
    }
    assert!(injected.values().sum::<usize>() > 50, "seed {seed}: few faults were injected: {injected:?}");
}

/// Limits on counters others keep hitting: real DynamoDB cancels transactions that race on an
/// item (`TransactionConflict`), which the serialised emulator never does, so the proxy scripts
/// it. A login whose limiter transaction keeps being cancelled is refused at once as throttled
/// (429, a one-second wait), never held for long and never a 503; one cancellation is retried.
#[tokio::test]
async fn a_limit_whose_counters_keep_conflicting_refuses_at_once_as_throttled() {
    let (env, faults, _) = faulty_env(2).await;
    let t = TestApp::with(env, &[]);
    let email = email_of(0, &uuid::Uuid::new_v4().simple().to_string()[..8]);
    assert_eq!(t.register("Ann", &email, PW).await.status, 201);
    for _ in 0..3 {
        faults.fail_next("dynamodb:TransactWriteItems", Fault::Conflict);
    }
    let flooded = t.login(&email, PW).await;
    assert_eq!(flooded.status, 429, "{}", flooded.raw_body);
    assert_eq!(flooded.error_code(), Some("too_many_requests"));
    assert_eq!(flooded.header("retry-after"), Some("1"));
    faults.fail_next("dynamodb:TransactWriteItems", Fault::Conflict);
    let once = t.login(&email, PW).await;
    assert_eq!(once.status, 200, "one cancellation is sent again: {}", once.raw_body);
    assert_eq!(faults.injected().values().sum::<usize>(), 4, "{:?}", faults.injected());
}

/// A password change or a reset whose revocation fails part way (every attempt to read the
/// credentials register fails) still answers its success, since the new password stands, and
/// queues the revocation: until the worker runs it the old credentials still work (the window,
/// seconds on AWS), after it they are refused, while the changing browser's rotated session and
/// a sign-in made after the change stay.
#[tokio::test]
async fn a_revocation_that_fails_is_queued_and_the_old_credentials_still_end() {
    use gatehouse::password_reset_tokens::{PlainResetToken, ResetRecord};
    let (env, faults, _) = faulty_env(7).await;
    let t = TestApp::with(env, &[]);
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (ann, bob) = (email_of(0, run), email_of(1, run));
    let worker = t.worker(Arc::new(gatehouse::mail::LogMailer::new()));
    let drain = || async { worker.run(std::future::pending(), true).await.expect("the queue drains") };
    let me = |cookie: &str| t.login_fn(Call::new("GET", "/user").cookie(Some(cookie)));

    // A password change: this browser goes on under a rotated session; the other one must end.
    let current = t.signed_up(&ann).await;
    let other = t.login(&ann, PW).await.session_cookie().expect("a second session");
    let token = t.create_token(&current, json!({"name": "ci", "abilities": ["tokens:read"]})).await;
    let token = token.body["token"].as_str().expect("a token").to_owned();
    drain().await;
    // Time passes (the test clock is manual) between what was issued and the change, and after.
    t.env.clock.advance(chrono::Duration::seconds(1));
    for _ in 0..3 {
        faults.fail_next("dynamodb:Query", Fault::ServerError);
    }
    let body = json!({"current_password": PW, "password": NEW_PW, "password_confirmation": NEW_PW});
    let changed = t.login_fn(Call::new("PUT", "/user/password").cookie(Some(&current)).json(body)).await;
    assert_eq!(changed.status, 204, "{}", changed.raw_body);
    let rotated = changed.session_cookie().expect("the rotated session");
    assert_eq!(me(&other).await.status, 200, "not ended yet: the revocation is queued");
    t.env.clock.advance(chrono::Duration::seconds(1));
    let later = t.login(&ann, NEW_PW).await.session_cookie().expect("a sign-in with the new password");
    drain().await;
    assert_eq!(me(&other).await.status, 401, "the queued revocation ended the other session");
    let by_token = t.login_fn(Call::new("GET", "/user").bearer(&token)).await;
    assert_eq!(by_token.status, 401, "and the token: {}", by_token.raw_body);
    assert_eq!(me(&rotated).await.status, 200, "the changing browser's rotated session stays");
    assert_eq!(me(&later).await.status, 200, "a sign-in after the change stays");

    // A reset: nobody keeps a session.
    let before = t.signed_up(&bob).await;
    drain().await;
    t.env.clock.advance(chrono::Duration::seconds(1));
    let plain = PlainResetToken::generate();
    let now = t.env.stores.clock.now();
    let record = ResetRecord {
        email: gatehouse::Email::parse(&bob).expect("an address"),
        token_hash: plain.hash(),
        created_at: now,
        expires_at: now + chrono::Duration::minutes(60),
    };
    assert!(t.env.stores.resets.put_unless_throttled(&record, now - chrono::Duration::days(1)).await.expect("put"));
    for _ in 0..3 {
        faults.fail_next("dynamodb:Query", Fault::ServerError);
    }
    let reset = t
        .reset_fn(Call::new("POST", "/reset-password").json(json!({
            "email": bob, "token": plain.expose(), "password": NEW_PW, "password_confirmation": NEW_PW
        })))
        .await;
    assert_eq!(reset.status, 200, "{}", reset.raw_body);
    assert_eq!(me(&before).await.status, 200, "not ended yet: the revocation is queued");
    drain().await;
    assert_eq!(me(&before).await.status, 401, "the queued revocation ended the session from before the reset");
    let injected: usize = faults.injected().values().sum();
    assert_eq!(injected, 6, "every scripted fault was injected: {:?}", faults.injected());
}
