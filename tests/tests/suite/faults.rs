//! gatehouse under injected AWS faults: every DynamoDB, SQS and SES call goes through the proxy of
//! `gatehouse_tests::wire`, which fails a seeded 10 % of them the ways AWS fails (throttled, 500,
//! connection dropped, answer delayed past the attempt timeout, answer dropped after the write
//! landed), while users go register → login → token → forgot → mailed link → reset, as a
//! well-behaved client does: asking again after a 503, as the answer invites.
//!
//! What must hold: no 500 and no AWS internals in any answer; every 503 is followed by a retry
//! of the same request, and no retry ends in a refusal caused by the first attempt's own success
//! (#34): a registration asked again answers 201, a token creation never 409, a reset asked again
//! with its link 200, a password change asked again with its (now stale) session 204; every 202
//! of forgot-password ends in a mail whose link works; every reset revoked the old password and
//! the old token; the mail jobs finish (none left queued or failed).
//!
//! A failure prints its seed: `GATEHOUSE_FAULT_SEED=<seed>` replays the same faults (calls of one
//! operation are failed by their sequence number, and the users go one after another).
//!
//! The two long runs are `#[ignore]`d in the main test run and run by `scripts/test` as a step of
//! their own, with the emulator otherwise idle: their attempt timeouts are real, and an emulator
//! serving the rest of the suite at once answers slowly enough to be taken for a fault.
//! `cargo test -p gatehouse-tests --test suite faults:: -- --include-ignored` runs them by hand.

use crate::support::put_reset_token;
use gatehouse::mail::{Mail, Mailer};
use gatehouse::queue::Worker;
use gatehouse_tests::http::{TestApp, TestCall, TestReply};
use gatehouse_tests::wire::{Fault, Faults, faulty_env_hasty};
use serde_json::json;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery staple 42";
const NEW_PW: &str = "an entirely new passphrase 2026";
const NEWER_PW: &str = "and then another one entirely 7";

#[derive(Clone)]
enum Credential {
    Token(String),
    Cookie(String),
}

/// Works the queue (as the Lambda event source would) for at most `limit`, stopping once it
/// has been found empty twice a few seconds apart (a retried job waits out its backoff unseen).
async fn work_queue(worker: &Worker, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut empty = 0;
    while Instant::now() < deadline && empty < 2 {
        match worker.run(std::future::pending(), true).await {
            Ok(0) => {
                empty += 1;
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            Ok(_) => empty = 0,
            Err(_) => {}
        }
    }
}

/// This run's users (email → id) and address reservations (email → the id they point to), read
/// from the users table directly (not through the faulty proxy).
async fn users_and_reservations(
    sdk: &gatehouse_aws::SdkConfig,
    table: &str,
    run: &str,
) -> (std::collections::BTreeMap<String, String>, std::collections::BTreeMap<String, String>) {
    let (mut users, mut reservations) = (std::collections::BTreeMap::new(), std::collections::BTreeMap::new());
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let mut pages = client.scan().table_name(table).into_paginator().items().send();
    let text = |item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>, key: &str| {
        item.get(key).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
    };
    while let Some(item) = pages.next().await {
        let item = item.expect("a scan of the users table");
        let pk = text(&item, "pk");
        if let Some(email) = pk.strip_prefix("email#").filter(|e| e.starts_with(run)) {
            reservations.insert(email.to_owned(), text(&item, "user_id"));
        } else if pk.starts_with("user#") && text(&item, "email").starts_with(run) {
            let previous = users.insert(text(&item, "email"), text(&item, "id"));
            assert!(previous.is_none(), "two users with one address: {}", text(&item, "email"));
        }
    }
    (users, reservations)
}
/// How many users go through the credential flows: `GATEHOUSE_CHAOS_USERS` (`scripts/chaos`
/// runs 40), else 10.
fn chaos_users() -> usize {
    std::env::var("GATEHOUSE_CHAOS_USERS").ok().and_then(|n| n.parse().ok()).unwrap_or(10).max(10)
}
/// 10 % of calls fail.
const RATE: u32 = 100;

/// What a client gets after asking up to eight times while the answer was 503 (or a 5xx the
/// function should never give: it fails the test below), and how many 503s came before it.
struct Outcome {
    reply: TestReply,
    retried: usize,
}

/// The answers the clients got, by request and status, for the run's table.
type Tally = Mutex<std::collections::BTreeMap<(&'static str, u16), usize>>;

async fn persistently<F, Fut>(tally: &Tally, what: &'static str, mut call: F) -> Outcome
where
    F: FnMut() -> Fut,
    Fut: Future<Output = TestReply>,
{
    let mut retried = 0;
    for _ in 0..8 {
        let reply = call().await;
        *tally.lock().unwrap_or_else(|e| e.into_inner()).entry((what, reply.status)).or_default() += 1;
        assert!(reply.status != 500, "{what}: a 500 under faults: {}", reply.raw_body);
        for secret in ["amazonaws", "dynamodb", "Exception", "injected", "__type"] {
            assert!(!reply.raw_body.contains(secret), "{what}: AWS internals in the answer: {}", reply.raw_body);
        }
        if reply.status == 503 {
            assert_eq!(reply.error_code(), Some("unavailable"), "{what}: {}", reply.raw_body);
            retried += 1;
            continue;
        }
        if retried > 0 {
            // Every 503 was followed by a retry (this one); what it ended in is judged by the
            // caller, which accepts only the answer a first attempt heard would have been.
            *tally
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(("(a retry after a 503)", reply.status))
                .or_default() += 1;
        }
        return Outcome { reply, retried };
    }
    panic!("{what}: still unavailable after eight tries at a 10 % fault rate");
}

fn email_of(i: usize, run: &str) -> String {
    format!("fault-{run}-{i}@example.com")
}

/// A faulty world (faults off until scripted), its app, and an address no other run uses.
async fn app_and_an_address(seed: u64) -> (TestApp, Arc<Faults>, String) {
    let (env, faults, _) = faulty_env_hasty(seed).await;
    let email = email_of(0, &uuid::Uuid::new_v4().simple().to_string()[..8]);
    (TestApp::with(env, &[]), faults, email)
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
    ses: gatehouse_aws::ses::SesMailer,
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
    log_errors();
    let seed = seed();
    let (env, faults, sdk) = faulty_env_hasty(seed).await;
    let t = TestApp::with(env, &[("GATEHOUSE_MAIL_FROM", "noreply@gatehouse.test")]);
    let direct = gatehouse_tests::emulator_sdk_config().await;
    aws_sdk_sesv2::Client::new(&direct)
        .create_email_identity()
        .email_identity("noreply@gatehouse.test")
        .send()
        .await
        .ok();
    let mailer = Arc::new(Accepted {
        ses: gatehouse_aws::ses::SesMailer::new(&sdk, "noreply@gatehouse.test".into()),
        sent: Mutex::default(),
    });
    let worker = t.worker(mailer.clone());
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (started, users, tally) = (Instant::now(), chaos_users(), Tally::default());
    // A webhook receiver (#32): every event of every user, in order, through the same faults.
    let receiver = gatehouse_tests::receiver::Receiver::start().await;
    let webhooks = t.env.stores.webhook_endpoints.as_ref();
    let (endpoint, _) =
        gatehouse::services::webhooks::add(webhooks, &t.app.config.app_key, &receiver.url, None, "", t.env.clock_now())
            .await
            .expect("an endpoint");
    faults.set_rate(RATE);

    let mut accounts = Vec::new();
    for i in 0..users {
        let (email, ip) = (email_of(i, run), ip_of(i));
        let register = persistently(&tally, "register", || {
            t.login_fn(TestCall::new("POST", "/register").from_ip(&ip).json(json!({
                "name": format!("User {i}"), "email": email, "password": PW, "password_confirmation": PW
            })))
        })
        .await;
        // Asked again after its account was written, a registration still answers 201 (#34).
        assert_eq!(
            register.reply.status, 201,
            "register {email} ({} retries): {}",
            register.retried, register.reply.raw_body
        );
        // A minute between sign-ins, as people take: the login limits count per minute.
        t.env.clock.advance(chrono::Duration::seconds(61));
        let login = persistently(&tally, "login", || {
            t.login_fn(TestCall::new("POST", "/login").from_ip(&ip).json(json!({ "email": email, "password": PW })))
        })
        .await;
        assert_eq!(login.reply.status, 200, "login {email}: {}", login.reply.raw_body);
        let cookie = login.reply.session_cookie().expect("a session");
        let token = persistently(&tally, "create token", || {
            t.tokens_fn(TestCall::new("POST", "/tokens").from_ip(&ip).cookie(Some(&cookie)).json(json!({
                "name": "ci", "abilities": ["tokens:read"], "expires_in_minutes": 24 * 60
            })))
        })
        .await;
        // (A day: it must still be live at the end, or the check that the reset revoked it
        // would pass on its expiry.)
        assert_eq!(token.reply.status, 201, "create token {email}: {}", token.reply.raw_body);
        let token = token.reply.body["token"].as_str().expect("the plaintext").to_owned();
        let me =
            persistently(&tally, "GET /user", || t.login_fn(TestCall::new("GET", "/user").from_ip(&ip).bearer(&token)))
                .await;
        assert_eq!(me.reply.status, 200, "GET /user {email}: {}", me.reply.raw_body);
        let forgot = persistently(&tally, "forgot", || {
            t.reset_fn(TestCall::new("POST", "/forgot-password").from_ip(&ip).json(json!({ "email": email })))
        })
        .await;
        assert_eq!(forgot.reply.status, 202, "forgot {email}: {}", forgot.reply.raw_body);
        accounts.push((email, ip, token));
    }

    let emails: Vec<String> = accounts.iter().map(|(e, _, _)| e.clone()).collect();
    work_until_mailed(&worker, &mailer, &emails).await;

    let mut links_used = Vec::new();
    for (email, ip, _) in &accounts {
        let links = mailer.reset_mails(email);
        let reset_token = token_in(&links[0]).expect("a link with a token");
        // A mail sent twice (its answer lost, the job run again) carries the same link.
        for body in &links {
            assert_eq!(token_in(body).as_deref(), Some(reset_token.as_str()), "{email}: two different links");
        }
        let reset = persistently(&tally, "reset", || {
            t.reset_fn(TestCall::new("POST", "/reset-password").from_ip(ip).json(json!({
                "email": email, "token": reset_token, "password": NEW_PW, "password_confirmation": NEW_PW
            })))
        })
        .await;
        // The headline: asked again after its write landed, the reset answers 200, not
        // "invalid token" (#34).
        assert_eq!(reset.reply.status, 200, "reset {email} ({} retries): {}", reset.retried, reset.reply.raw_body);
        links_used.push(reset_token);
    }
    // The logins a minute after the resets, all users at once, as the login limits count per
    // minute. (Not a minute per user: the links were all mailed at one moment and live an hour,
    // so from the thirtieth user on they would have expired before their reset.)
    let (tr, tl) = (&t, &tally);
    let login = move |what: &'static str, email: &str, ip: &str, password: &str| {
        let call = TestCall::new("POST", "/login").from_ip(ip).json(json!({ "email": email, "password": password }));
        persistently(tl, what, move || tr.login_fn(call.clone()))
    };
    let me = move |what: &'static str, ip: &str, credential: Credential| {
        let call = TestCall::new("GET", "/user").from_ip(ip);
        let call = match credential {
            Credential::Token(token) => call.bearer(&token),
            Credential::Cookie(cookie) => call.cookie(Some(&cookie)),
        };
        persistently(tl, what, move || tr.login_fn(call.clone()))
    };
    // What the product promised to end ends at once, or by the revocation job it queued when a
    // store failed part way (`revoke_or_queue`): what still works is asked again after the queue
    // has been worked.
    let mut to_end: Vec<(String, &'static str, String, Credential)> = Vec::new();
    t.env.clock.advance(chrono::Duration::seconds(61));
    let mut first_sessions = Vec::new();
    for (email, ip, _) in &accounts {
        let new = login("login, new password", email, ip, NEW_PW).await;
        assert_eq!(new.reply.status, 200, "{email}: the new password: {}", new.reply.raw_body);
        first_sessions.push(new.reply.session_cookie().expect("a session"));
    }
    t.env.clock.advance(chrono::Duration::seconds(61));
    for ((email, ip, old_token), link) in accounts.iter().zip(&links_used) {
        let old = login("login, old password", email, ip, PW).await;
        assert_eq!(old.reply.status, 422, "{email}: the old password still works: {}", old.reply.raw_body);
        to_end.push((
            email.clone(),
            "the token from before the reset",
            ip.clone(),
            Credential::Token(old_token.clone()),
        ));
        // No reset that changed the password left its link usable.
        let again = persistently(&tally, "reset link again", || {
            t.reset_fn(TestCall::new("POST", "/reset-password").from_ip(ip).json(json!({
                "email": email, "token": link, "password": PW, "password_confirmation": PW
            })))
        })
        .await;
        assert_eq!(
            (again.reply.status, again.reply.error_code()),
            (422, Some("invalid_token")),
            "{email}: the spent link: {}",
            again.reply.raw_body
        );
    }
    // A password change from one browser ends the user's other sessions and keeps the changing
    // browser signed in under a new session id.
    t.env.clock.advance(chrono::Duration::seconds(61));
    let mut kept = Vec::new();
    for ((email, ip, _), first) in accounts.iter().zip(&first_sessions) {
        let second = login("login, second browser", email, ip, NEW_PW).await;
        assert_eq!(second.reply.status, 200, "{email}: a second session: {}", second.reply.raw_body);
        let second = second.reply.session_cookie().expect("a session");
        let body = json!({ "current_password": NEW_PW, "password": NEWER_PW, "password_confirmation": NEWER_PW });
        let changed = persistently(&tally, "change password", || {
            t.login_fn(TestCall::new("PUT", "/user/password").from_ip(ip).cookie(Some(first)).json(body.clone()))
        })
        .await;
        // Asked again with its session after the change landed (the session is stale now), the
        // change answers 204 and a session that works (#34).
        assert_eq!(
            changed.reply.status, 204,
            "change password {email} ({} retries): {}",
            changed.retried, changed.reply.raw_body
        );
        kept.push((email.clone(), ip.clone(), changed.reply.session_cookie().expect("the rotated session")));
        to_end.push((email.clone(), "the other browser's session", ip.clone(), Credential::Cookie(second)));
        to_end.push((
            email.clone(),
            "the changing browser's old session id",
            ip.clone(),
            Credential::Cookie(first.clone()),
        ));
    }
    t.env.clock.advance(chrono::Duration::seconds(61));
    for (email, ip, _) in &accounts {
        let changed = login("login, changed password", email, ip, NEWER_PW).await;
        assert_eq!(changed.reply.status, 200, "{email}: the changed password: {}", changed.reply.raw_body);
        let before = login("login, password before the change", email, ip, NEW_PW).await;
        assert_eq!(before.reply.status, 422, "{email}: the password before the change: {}", before.reply.raw_body);
    }
    for (email, ip, cookie) in &kept {
        let still = me("the changing browser", ip, Credential::Cookie(cookie.clone())).await;
        assert_eq!(still.reply.status, 200, "{email}: the changing browser was signed out: {}", still.reply.raw_body);
    }
    let mut queued = 0;
    let mut still_working = Vec::new();
    for (email, what, ip, credential) in &to_end {
        if me(what, ip, credential.clone()).await.reply.status != 401 {
            still_working.push((email, what, ip, credential));
        }
    }
    if !still_working.is_empty() {
        queued = still_working.len();
        work_queue(&worker, Duration::from_secs(60)).await;
        for (email, what, ip, credential) in still_working {
            let again = me(what, ip, credential.clone()).await;
            assert_eq!(again.reply.status, 401, "{email}: {what} still works after its revocation job ran");
        }
    }

    faults.set_rate(0);
    let injected = faults.injected();
    for kind in [Fault::Throttle, Fault::ServerError, Fault::Drop, Fault::Delay, Fault::AfterWrite] {
        assert!(injected.keys().any(|(_, k)| *k == kind), "seed {seed}: no {kind:?} was injected; raise the users");
    }
    // Every user has their address reserved, and every reservation of this run has its user.
    let users_table = t.env.aws.as_ref().expect("on the emulator").names.table("users");
    let (users_found, reservations) = users_and_reservations(&direct, &users_table, &format!("fault-{run}-")).await;
    assert_eq!(users_found.len(), users, "seed {seed}: users of this run: {users_found:?}");
    assert_eq!(reservations, users_found, "seed {seed}: reservations and users differ");
    // Events (#32): every fact that happened was recorded once, numbered in the order it happened
    // (nothing for a fact that did not happen: a retried request's first attempt counts once),
    // and the receiver got each user's events in that order (a duplicate only right after
    // itself, never after a later one). The event jobs wait out the notice delay in real time.
    // The account's facts happen once each; sessions and tokens as often as they were issued: a
    // sign-in or a token asked again after its answer was lost makes another (and announces it),
    // so those are counted at least, and each session or token announced once.
    let once = ["user.registered", "user.password_reset", "user.password_changed"];
    let by_user = |id: &str| -> Vec<(u64, String)> {
        let mut got: Vec<(u64, String)> = receiver
            .events()
            .into_iter()
            .filter(|e| e["user_id"] == id)
            .map(|e| (e["seq"].as_u64().unwrap_or(0), e["type"].as_str().unwrap_or("").to_owned()))
            .collect();
        got.dedup();
        got
    };
    let stores = &t.env.stores;
    let recorded_of = |id: &str| {
        let user = gatehouse::tables::users::UserId::parse(id).expect("a user id");
        async move { stores.events.after(&user, 0, 100).await.expect("the user's events") }
    };
    let complete = |events: &[gatehouse::tables::events::Event]| {
        let count = |kind: &str| events.iter().filter(|e| e.kind().as_str() == kind).count();
        // The registration's session and the four sign-ins that answered 200; the one token.
        once.iter().all(|k| count(k) == 1) && count("session.created") >= 5 && count("token.created") >= 1
    };
    // (A job that failed under the faults waits out its backoff first: minutes, at worst.)
    let events_deadline = Instant::now() + Duration::from_secs(420);
    for id in users_found.values() {
        loop {
            let recorded = recorded_of(id).await;
            let kinds: Vec<(u64, String)> = recorded.iter().map(|e| (e.seq, e.kind().as_str().to_owned())).collect();
            if (complete(&recorded) && by_user(id) == kinds) || Instant::now() >= events_deadline {
                break;
            }
            work_queue(&worker, Duration::from_secs(10)).await;
        }
        let recorded = recorded_of(id).await;
        let kinds: Vec<(u64, String)> = recorded.iter().map(|e| (e.seq, e.kind().as_str().to_owned())).collect();
        let numbers: Vec<u64> = kinds.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, (1..=kinds.len() as u64).collect::<Vec<_>>(), "seed {seed}: user {id}: {kinds:?}");
        let facts: Vec<&str> = kinds.iter().map(|(_, k)| k.as_str()).filter(|k| once.contains(k)).collect();
        assert_eq!(facts, once, "seed {seed}: user {id}'s account facts, once each, in order: {kinds:?}");
        assert!(complete(&recorded), "seed {seed}: user {id}'s sessions and token: {kinds:?}");
        let keys: Vec<String> = recorded
            .iter()
            .map(|e| serde_json::to_value(e).expect("JSON")["data"].clone())
            .filter_map(|d| d["session"].as_str().or(d["token_id"].as_str()).map(str::to_owned))
            .collect();
        let unique: std::collections::BTreeSet<&String> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "seed {seed}: user {id}: a session or token announced twice: {kinds:?}");
        assert_eq!(by_user(id), kinds, "seed {seed}: user {id}'s deliveries, in order");
    }
    let delivered = receiver.received().len();
    let _ = t.env.stores.webhook_endpoints.remove(&endpoint.id).await;
    // Every job finished: nothing failed for good, nothing left behind once its retries are due.
    let failed = t.env.stores.failed_jobs.list(10, None).await.expect("failed jobs");
    assert!(failed.items.is_empty(), "seed {seed}: jobs failed for good: {:?}", failed.items);
    // Reached only when every check above held: each is an assertion, so a violation stops the
    // run with its seed before the table.
    report(&format!("credential flows under faults (seed {seed})"), format!("{users} users"));
    report_faults(&injected);
    report("answers the clients got (a 503 is asked again)", "by request and status");
    let tally = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    for ((what, status), n) in &tally {
        report(&format!("  {what}: {status}"), n);
    }
    // Every 503 was asked again (`persistently`), and every retry ended in the answer its first
    // attempt would have given: each request's assertion above accepts only that one, so a
    // refusal caused by the first attempt stops the run before this table.
    let unavailable: usize = tally.iter().filter(|((w, s), _)| *s == 503 && !w.starts_with('(')).map(|(_, n)| n).sum();
    let retried: usize = tally.iter().filter(|((w, _), _)| w.starts_with('(')).map(|(_, n)| n).sum();
    report("503s, every one asked again", unavailable);
    report("requests that ended after one or more retries", retried);
    report("credentials still working until their queued revocation ran", queued);
    report("users with their address reserved, and the reverse", users_found.len());
    report("events recorded once each, delivered in order (deliveries, duplicates included)", delivered);
    report("violations", 0);
    report("wall time", format!("{:.0} s", started.elapsed().as_secs_f64()));
}

/// A write that landed and whose answer was lost: the SDK sends it again, and the retry must be
/// taken for the same write, not refused by the item it wrote itself.
#[tokio::test]
async fn a_write_whose_answer_was_lost_is_not_refused_by_its_own_retry() {
    let (t, faults, email) = app_and_an_address(1).await;
    // Registering: the address reserved and the user written in one transaction (its
    // ClientRequestToken makes the retry answer the first success, as DynamoDB does).
    faults.fail_next("dynamodb:TransactWriteItems", Fault::AfterWrite);
    let reg = t.register("Ann", &email, PW).await;
    assert_eq!(reg.status, 201, "{}", reg.raw_body);
    let cookie = reg.session_cookie().expect("registration signs in");
    // A token: the credentials register's transaction.
    faults.fail_next("dynamodb:TransactWriteItems", Fault::AfterWrite);
    let token = t
        .tokens_fn(TestCall::new("POST", "/tokens").cookie(Some(&cookie)).json(json!({
            "name": "ci", "abilities": ["tokens:read"], "expires_in_minutes": 60
        })))
        .await;
    assert_eq!(token.status, 201, "{}", token.raw_body);
    // A job's run claim: a conditional put, recognised by the claimant mark it carries.
    let now = t.env.clock_now();
    let (lease, keep) = (now + chrono::Duration::seconds(60), now + chrono::Duration::days(1));
    faults.fail_next("dynamodb:PutItem", Fault::AfterWrite);
    let claim = t.env.stores.job_runs.claim("job-lost-answer", now, lease, keep).await.expect("claim");
    let gatehouse::tables::job_runs::Claim::Claimed(claimant) = claim else { panic!("not claimed: {claim:?}") };
    let other = t.env.stores.job_runs.claim("job-lost-answer", now, lease, keep).await.expect("claim");
    assert!(
        matches!(other, gatehouse::tables::job_runs::Claim::Busy { .. }),
        "another run is still refused: {other:?}"
    );
    // The claimant answered is the one stored: its release frees the run for the next attempt.
    t.env.stores.job_runs.release("job-lost-answer", &claimant).await.expect("release");
    let again = t.env.stores.job_runs.claim("job-lost-answer", now, lease, keep).await.expect("claim");
    assert!(matches!(again, gatehouse::tables::job_runs::Claim::Claimed(_)), "released by its holder: {again:?}");
    assert_eq!(
        faults.injected().values().sum::<usize>(),
        3,
        "every scripted fault was injected: {:?}",
        faults.injected()
    );
}

/// A credentials change ("log out other devices") lands and its answer is lost; before the SDK
/// sends it again, a sign-in that read the user after it upgrades the old password's hash (a
/// rehash keeps the version). The retry is refused by the version the change moved itself, and
/// must still be told apart from another change: it answers its own new version, not a
/// conflict. (The rehash used to overwrite the change's mark.)
#[tokio::test]
async fn a_credentials_change_whose_answer_was_lost_stays_its_own_when_a_rehash_lands_before_its_retry() {
    use gatehouse::tables::users::CredentialChange;
    let (t, faults, email) = app_and_an_address(1).await;
    assert_eq!(t.register("Ann", &email, PW).await.status, 201);
    let address = gatehouse::values::email::Email::parse(&email).expect("an address");
    let user = t.env.stores.users.find_by_email(&address).await.expect("read").expect("the user");
    let (v, now) = (user.credentials_version, t.env.clock_now());
    let (stores, id, hash) = (t.env.stores.clone(), user.id.clone(), user.password_hash.clone());
    faults.fail_next("dynamodb:UpdateItem", Fault::AfterWrite);
    faults.after_next_lands(
        "dynamodb:UpdateItem",
        Box::new(move || {
            Box::pin(async move {
                let rehash = CredentialChange { password: Some(&hash), ..CredentialChange::default() };
                let landed = stores.users.change_credentials(&id, v + 1, rehash, now).await.expect("the rehash");
                assert_eq!(landed, Some(v + 1), "the rehash lands on the version the change moved on");
            })
        }),
    );
    let change = CredentialChange { revoke: true, ..CredentialChange::default() };
    let answered = t.env.stores.users.change_credentials(&user.id, v, change, now).await.expect("the change");
    assert_eq!(answered, Some(v + 1), "its own landed write, not a conflict");
    assert_eq!(faults.injected().values().sum::<usize>(), 1);
    // A change that really lost the race is still refused.
    let stale = CredentialChange { revoke: true, ..CredentialChange::default() };
    assert_eq!(t.env.stores.users.change_credentials(&user.id, v, stale, now).await.expect("read"), None);
}

/// A transaction the SDK sent again while DynamoDB was still applying the first attempt is
/// answered `TransactionInProgressException` (400). The SDK retries it, but all its attempts can
/// fall inside the first one's delay. It is a moment's wait, so the store calls it unavailable and
/// the API answers 503 (the client asks again), never a 500: the CI fault run once got a 500 on a
/// sign-in this way.
#[tokio::test]
async fn a_transaction_still_in_progress_is_unavailable_not_an_internal_error() {
    let (env, faults, _) = faulty_env_hasty(1).await;
    let now = env.clock_now();
    let email = email_of(0, &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let hash =
        gatehouse::values::password::PasswordHash::from_stored("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA".into());
    let user = gatehouse::tables::users::User::new("Ann", gatehouse::Email::parse(&email).unwrap(), hash, now);
    // A registration's transaction, answered "still in progress" on each of the SDK's three
    // attempts (the first attempt, delayed past its timeout, still being applied).
    for _ in 0..3 {
        faults.fail_next("dynamodb:TransactWriteItems", Fault::InProgress);
    }
    let err = env.stores.users.create(&user).await.expect_err("the fault");
    assert!(matches!(err, gatehouse::StoreError::Unavailable(_)), "{err:?}");
    assert_eq!(faults.injected().values().sum::<usize>(), 3);
    assert_eq!(gatehouse_http::ApiError::from(err).status, 503, "a 503 the client asks again");
    env.stores.users.create(&user).await.expect("asked again, it goes through");
}

/// Prints every event the code logs at `error` (a store error behind a 500, say) to stderr, so
/// a failing fault run shows why, not only that.
fn log_errors() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("error"))
        .with_writer(std::io::stderr)
        .try_init();
}

fn seed() -> u64 {
    let seed = std::env::var("GATEHOUSE_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from_le_bytes(gatehouse::values::secret::random_bytes::<8>()));
    eprintln!("fault injection seed: {seed} (replay: GATEHOUSE_FAULT_SEED={seed})");
    seed
}

/// How many jobs the jobs-under-faults run dispatches: `GATEHOUSE_CHAOS_JOBS` (`scripts/chaos`
/// runs 1,000), else 200.
fn chaos_jobs() -> usize {
    std::env::var("GATEHOUSE_CHAOS_JOBS").ok().and_then(|n| n.parse().ok()).unwrap_or(200).max(100)
}

/// One row of a run's summary, in the `chaos |` lines `scripts/chaos` prints as its table.
fn report(what: &str, value: impl std::fmt::Display) {
    eprintln!("chaos | {what:<66} | {value}");
}

/// The injected faults, by kind and by service.
fn report_faults(injected: &std::collections::BTreeMap<(String, Fault), usize>) {
    let mut by_kind = std::collections::BTreeMap::<String, usize>::new();
    let mut by_service = std::collections::BTreeMap::<String, usize>::new();
    for ((call, kind), n) in injected {
        *by_kind.entry(format!("{kind:?}")).or_default() += n;
        let service = if call.contains("/email/") { "ses" } else { call.split(':').next().unwrap_or(call) };
        *by_service.entry(service.to_owned()).or_default() += n;
    }
    report("faults injected", injected.values().sum::<usize>());
    for (kind, n) in by_kind {
        report(&format!("  of kind {kind}"), n);
    }
    for (service, n) in by_service {
        report(&format!("  on {service}"), n);
    }
}

/// The effects the chaos worker recorded, counted by name.
fn effects_in(path: &std::path::Path) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        *counts.entry(line.to_owned()).or_default() += 1;
    }
    counts
}

/// Every failed job's uuid (all pages), or `None` if a page could not be read (a fault).
async fn failed_uuids(stores: &gatehouse::Stores) -> Option<Vec<String>> {
    let mut uuids = Vec::new();
    let mut cursor = None;
    loop {
        let page = stores.failed_jobs.list(100, cursor.as_ref()).await.ok()?;
        uuids.extend(page.items.into_iter().map(|f| f.uuid));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Some(uuids),
        }
    }
}

/// `chaos_jobs()` jobs through the real worker code as Lambda runs it: the job-worker's `run`
/// with a `Chaos` job registered (`tests/examples/chaos_worker.rs`), started through the local
/// Runtime API with `AWS_LAMBDA_MAX_CONCURRENCY=4`, its DynamoDB, SQS and SES calls going
/// through the fault proxy. The test is the SQS event source: it receives batches of ten (a 15 s
/// visibility), invokes up to four at once, and deletes what the answer does not list in
/// `batchItemFailures`; its receives and deletes go through the faulty proxy too, so a lost
/// deletion is a real redelivery. The mix: 60 % succeed at once (a fifth of them mailing
/// through SES first), 20 % fail twice and then succeed, 10 % always fail, and 10 % are batches
/// of ten whose then/catch/finally jobs count their runs. Dispatched before the faults start
/// (dispatching under faults is the credential flows' part).
///
/// Afterwards: every succeeding job took effect exactly once (the effects file), the
/// always-failing ones are in failed_jobs (once each) and nowhere took effect, batch counters are
/// the truth, then/finally ran once and catch never, and a leftover delivery runs nothing. The
/// violations are counted and printed as a table (`chaos |` lines) before the test fails on any.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load-sensitive: scripts/test runs it as a step of its own (faults:: -- --ignored)"]
async fn jobs_run_once_in_effect_through_the_worker_binary_while_a_tenth_of_aws_calls_fail() {
    use gatehouse::queue::Dispatcher;
    use gatehouse::tables::job_batches::BatchOptions;
    use gatehouse_tests::jobs::job;
    use gatehouse_tests::runtime_api::{LambdaProcess, binary};
    let seed = seed();
    let started = Instant::now();
    let total = chaos_jobs();
    let (env, faults, sdk) = faulty_env_hasty(seed).await;
    // Past the binary's own attempt timeout (3 s), so a delayed answer is a timed-out attempt.
    faults.set_delay(Duration::from_millis(3_500));
    let proxy = sdk.endpoint_url().expect("the proxy's endpoint").to_owned();
    let direct = gatehouse_tests::emulator_sdk_config().await;
    let from = "noreply@gatehouse.test";
    aws_sdk_sesv2::Client::new(&direct).create_email_identity().email_identity(from).send().await.ok();
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let effects = std::env::temp_dir().join(format!("gatehouse-chaos-{run}.effects"));
    let effects_path = effects.to_string_lossy().into_owned();
    let vars = crate::e2e::env_for(
        &env,
        &[
            ("AWS_ENDPOINT_URL", &proxy),
            ("CHAOS_EFFECTS", &effects_path),
            ("GATEHOUSE_MAILER", "ses"),
            ("GATEHOUSE_MAIL_FROM", from),
            ("AWS_LAMBDA_MAX_CONCURRENCY", "4"),
        ],
    );
    let lambda = Arc::new(LambdaProcess::start(&binary("examples/chaos_worker"), &vars).await);

    let dispatcher = Dispatcher::new(env.stores.clone(), gatehouse::values::clock::Span::days(30));
    let chaos = |data: serde_json::Value, tries: u32| {
        let mut j = job("Chaos", data, tries);
        j.timeout = Some(5);
        j
    };
    let batches_n = total / 100;
    let doomed_n = total / 10;
    let flaky_n = total / 5;
    let plain_n = total - batches_n * 10 - doomed_n - flaky_n;
    let mut once = Vec::new();
    for i in 0..plain_n + flaky_n {
        let effect = format!("effect-{i}");
        let mut data = json!({ "effect": effect, "fail_times": if i >= plain_n { 2 } else { 0 } });
        if i < plain_n && i % 5 == 0 {
            data["mail"] = json!(format!("chaos-{run}-{i}@example.com"));
        }
        dispatcher.dispatch(chaos(data, 8)).await.expect("dispatch");
        once.push(effect);
    }
    let mut doomed = Vec::new();
    for _ in 0..doomed_n {
        let j = chaos(json!({ "fail_times": 99, "effect": "never" }), 2);
        doomed.push(j.uuid.clone());
        dispatcher.dispatch(j).await.expect("dispatch");
    }
    let mut batches = Vec::new();
    for b in 0..batches_n {
        let follow_up =
            |kind: &str| vec![serde_json::to_value(chaos(json!({ "effect": format!("{kind}-{b}") }), 8)).unwrap()];
        let options = BatchOptions {
            allow_failures: true,
            then: follow_up("then"),
            catch: follow_up("catch"),
            finally: follow_up("finally"),
        };
        let members: Vec<_> = (0..10).map(|m| chaos(json!({ "effect": format!("member-{b}-{m}") }), 8)).collect();
        once.extend((0..10).map(|m| format!("member-{b}-{m}")));
        once.extend([format!("then-{b}"), format!("finally-{b}")]);
        batches.push(dispatcher.dispatch_batch("import", members, options).await.expect("batch").id);
    }
    report(&format!("jobs under faults (seed {seed})"), format!("{total} jobs, job-worker binary, 4 at once"));
    faults.set_rate(RATE);

    // The event source: up to four invocations in flight.
    let slots = Arc::new(tokio::sync::Semaphore::new(4));
    let (invocations, function_errors) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let deadline = Instant::now() + Duration::from_secs(240 + total as u64 / 2);
    let mut last_check = Instant::now();
    loop {
        if last_check.elapsed() > Duration::from_secs(2) {
            last_check = Instant::now();
            let counts = effects_in(&effects);
            let failed = failed_uuids(&env.stores).await.map_or(0, |f| f.len());
            if once.iter().all(|e| counts.contains_key(e)) && failed >= doomed.len() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "seed {seed}: the jobs did not finish in time");
        let slot = slots.clone().acquire_owned().await.expect("open");
        let msgs = match env.stores.queue.receive(10, Duration::from_secs(1), Some(Duration::from_secs(15))).await {
            Ok(msgs) if !msgs.is_empty() => msgs,
            _ => continue,
        };
        let (lambda, queue) = (lambda.clone(), env.stores.queue.clone());
        let (invocations, function_errors) = (invocations.clone(), function_errors.clone());
        tokio::spawn(async move {
            let _slot = slot;
            invocations.fetch_add(1, Ordering::Relaxed);
            let answer = lambda.invoke_within(gatehouse_tests::http::sqs_event(&msgs), Duration::from_secs(60)).await;
            let retry: Vec<String> = match answer {
                Ok(a) => a["batchItemFailures"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                    .collect(),
                Err(_) => {
                    function_errors.fetch_add(1, Ordering::Relaxed);
                    msgs.iter().map(|m| m.message_id.clone()).collect()
                }
            };
            for m in msgs.iter().filter(|m| !retry.contains(&m.message_id)) {
                let _ = queue.delete(&m.receipt_handle).await;
            }
        });
    }
    let _all = slots.acquire_many(4).await.expect("open");
    faults.set_rate(0);
    let injected = faults.injected();

    // Nothing left to run once the last retries are due: a leftover delivery runs nothing.
    let before = effects_in(&effects);
    let mut leftovers = 0;
    loop {
        let left = env.stores.queue.receive(10, Duration::from_secs(1), None).await.expect("receive");
        if left.is_empty() {
            break;
        }
        leftovers += left.len();
        let _ = lambda.invoke(gatehouse_tests::http::sqs_event(&left)).await;
        for m in &left {
            let _ = env.stores.queue.delete(&m.receipt_handle).await;
        }
    }
    let counts = effects_in(&effects);
    let _ = std::fs::remove_file(&effects);

    let mut violations = Vec::new();
    if counts != before {
        violations.push("a leftover delivery took effect".to_owned());
    }
    let twice = once.iter().filter(|e| counts.get(*e).copied().unwrap_or(0) > 1).count();
    let never = once.iter().filter(|e| !counts.contains_key(*e)).count();
    for e in &once {
        let n = counts.get(e).copied().unwrap_or(0);
        if n != 1 {
            violations.push(format!("{e} took effect {n} times"));
        }
    }
    if let Some(n) = counts.get("never") {
        violations.push(format!("an always-failing job took effect {n} times"));
    }
    let mut failed = failed_uuids(&env.stores).await.expect("failed jobs");
    failed.sort_unstable();
    doomed.sort_unstable();
    if failed != doomed {
        violations.push(format!("failed_jobs holds {} jobs, {} expected, or other ones", failed.len(), doomed.len()));
    }
    let mut batches_ok = 0;
    for (b, id) in batches.iter().enumerate() {
        let batch = env.stores.job_batches.find(id).await.expect("find").expect("the batch");
        if (batch.total_jobs, batch.pending_jobs, batch.failed_jobs) != (10, 0, 0) || batch.finished_at.is_none() {
            violations.push(format!(
                "batch {b}: {}/{}/{} finished {:?}",
                batch.total_jobs, batch.pending_jobs, batch.failed_jobs, batch.finished_at
            ));
        } else {
            batches_ok += 1;
        }
        if counts.contains_key(&format!("catch-{b}")) {
            violations.push(format!("catch of batch {b} ran"));
        }
    }
    report_faults(&injected);
    report(
        "invocations of the binary (function errors)",
        format!("{} ({})", invocations.load(Ordering::Relaxed), function_errors.load(Ordering::Relaxed)),
    );
    report(
        "jobs that must take effect once: exactly once",
        format!("{} of {}", once.len() - twice - never, once.len()),
    );
    report("  more than once / never", format!("{twice} / {never}"));
    report("always-failing jobs in failed_jobs (never took effect)", format!("{} of {}", failed.len(), doomed.len()));
    report(
        "batches counted right and finished; then/finally once, catch never",
        format!("{batches_ok} of {}", batches.len()),
    );
    report("leftover deliveries (none may take effect)", leftovers);
    report("violations", violations.len());
    report("wall time", format!("{:.0} s", started.elapsed().as_secs_f64()));
    assert!(violations.is_empty(), "seed {seed}: {violations:#?}");
    assert!(injected.values().sum::<usize>() > total / 10, "seed {seed}: few faults were injected: {injected:?}");
}

/// Limits on counters others keep hitting: real DynamoDB cancels transactions that race on an
/// item (`TransactionConflict`), which the serialised emulator never does, so the proxy scripts
/// it. A login whose limiter transaction keeps being cancelled is refused at once as throttled
/// (429, a one-second wait), never held for long and never a 503; one cancellation is retried.
#[tokio::test]
async fn a_limit_whose_counters_keep_conflicting_refuses_at_once_as_throttled() {
    let (t, faults, email) = app_and_an_address(2).await;
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
/// queues the revocation: the old credentials are refused at once (each check reads the owner,
/// whose version moved on) and their items go when the worker runs it, while the changing
/// browser's rotated session and a sign-in made after the change stay.
#[tokio::test]
async fn a_revocation_that_fails_is_queued_and_the_old_credentials_still_end() {
    let (env, faults, _) = faulty_env_hasty(7).await;
    let t = TestApp::with(env, &[]);
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (ann, bob) = (email_of(0, run), email_of(1, run));
    let worker = t.worker(Arc::new(gatehouse::mail::LogMailer::new()));
    let drain = || async { worker.run(std::future::pending(), true).await.expect("the queue drains") };
    let me = |cookie: &str| t.login_fn(TestCall::new("GET", "/user").cookie(Some(cookie)));

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
    let changed = t.login_fn(TestCall::new("PUT", "/user/password").cookie(Some(&current)).json(body)).await;
    assert_eq!(changed.status, 204, "{}", changed.raw_body);
    let rotated = changed.session_cookie().expect("the rotated session");
    // Its revocation is queued, but no check honours it: the owner read with it moved on.
    assert_eq!(me(&other).await.status, 401, "ended at once, before its queued revocation");
    t.env.clock.advance(chrono::Duration::seconds(1));
    let later = t.login(&ann, NEW_PW).await.session_cookie().expect("a sign-in with the new password");
    drain().await;
    assert_eq!(me(&other).await.status, 401, "the queued revocation ended the other session");
    let by_token = t.login_fn(TestCall::new("GET", "/user").bearer(&token)).await;
    assert_eq!(by_token.status, 401, "and the token: {}", by_token.raw_body);
    assert_eq!(me(&rotated).await.status, 200, "the changing browser's rotated session stays");
    assert_eq!(me(&later).await.status, 200, "a sign-in after the change stays");

    // A reset: nobody keeps a session.
    let before = t.signed_up(&bob).await;
    drain().await;
    t.env.clock.advance(chrono::Duration::seconds(1));
    let plain = put_reset_token(&t.env.stores, &bob, chrono::Duration::days(1)).await;
    for _ in 0..3 {
        faults.fail_next("dynamodb:Query", Fault::ServerError);
    }
    let reset = t
        .reset_fn(TestCall::new("POST", "/reset-password").json(json!({
            "email": bob, "token": plain.expose(), "password": NEW_PW, "password_confirmation": NEW_PW
        })))
        .await;
    assert_eq!(reset.status, 200, "{}", reset.raw_body);
    assert_eq!(me(&before).await.status, 401, "ended at once, before its queued revocation");
    drain().await;
    assert_eq!(me(&before).await.status, 401, "the queued revocation ended the session from before the reset");
    let injected: usize = faults.injected().values().sum();
    assert_eq!(injected, 6, "every scripted fault was injected: {:?}", faults.injected());
}
