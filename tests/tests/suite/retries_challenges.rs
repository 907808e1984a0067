//! Single-use challenges asked again (issue #34): a two-factor challenge or a passkey ceremony is
//! taken by a conditional write that marks it taken by the request (a MAC of the challenge and
//! the answer) and keeps it for that request's repeats, not deleted; the route closes it once it
//! has issued what it allowed. So a retry of the same request after a 503 that came after the
//! take (the factor's use landed, the session's write failed) ends in the answer the first
//! attempt would have given, and a recovery code is not burnt for nothing; the SDK's own retry
//! of the take whose answer was lost passes too. Everything else about a taken challenge is
//! refused as before: another client, another answer, a replay after the success, after the
//! keep window, or past the few repeats allowed. On the emulator, through the fault proxy.

use crate::support::{mails_with_notices, unique};
use gatehouse::mail::Mail;
use gatehouse_tests::http::{TestApp, TestCall, TestReply};
use gatehouse_tests::passkey::SoftAuthenticator;
use gatehouse_tests::wire::{Fault, Faults, faulty_env};
use serde_json::{Value, json};
use std::sync::Arc;

const PW: &str = "correct horse battery staple 42";
const ORIGIN: &str = "http://localhost:8080";
const IP: &str = "203.0.113.7";
const TWI: &str = "dynamodb:TransactWriteItems";

/// A faulty world (faults off until scripted) and its app.
async fn app(seed: u64) -> (TestApp, Arc<Faults>) {
    let (env, faults, _) = faulty_env(seed).await;
    (TestApp::with(env, &[]), faults)
}

fn count(sent: &[Mail], to: &str, subject: &str) -> usize {
    sent.iter().filter(|m| m.to == to && m.subject == subject).count()
}

/// [`TestApp::enrolled`], then the next time step: the code that turned it on is used.
async fn enrolled(t: &TestApp, email: &str) -> (String, String, Vec<String>) {
    let enrolled = t.enrolled(email).await;
    t.env.clock.advance(chrono::Duration::seconds(30));
    enrolled
}

/// A password sign-in from `ip` that is asked for its second factor: the challenge.
async fn challenged(t: &TestApp, email: &str, ip: &str) -> Value {
    let r =
        t.login_fn(TestCall::new("POST", "/login").from_ip(ip).json(json!({ "email": email, "password": PW }))).await;
    assert_eq!(r.status, 202, "{}", r.raw_body);
    r.body["challenge"].clone()
}

fn answer_call(challenge: &Value, ip: &str, mut body: Value) -> TestCall {
    body["challenge"] = challenge.clone();
    TestCall::new("POST", "/two-factor-challenge").from_ip(ip).json(body)
}

/// A world of [`app`] with a user enrolled in two-factor ([`enrolled`]) and the challenge of a
/// password sign-in from [`IP`].
struct Challenged {
    t: TestApp,
    faults: Arc<Faults>,
    email: String,
    secret: String,
    codes: Vec<String>,
    challenge: Value,
}

async fn challenged_in_app(seed: u64, name: &str) -> Challenged {
    let (t, faults) = app(seed).await;
    let email = unique(name);
    let (_, secret, codes) = enrolled(&t, &email).await;
    let challenge = challenged(&t, &email, IP).await;
    Challenged { t, faults, email, secret, codes, challenge }
}

/// The challenge's answer is counted by one transaction (the per-(user, client) and per-user
/// counters); once it has landed, the next transaction, the session's, fails on each of the
/// SDK's three attempts: everything of the challenge before it (the take, the factor's use) lands.
fn fail_the_session_after_the_counters(faults: &Arc<Faults>) {
    faults.after_next_lands_fail(TWI, &[(TWI, Fault::ServerError); 3]);
}

/// The session's transaction (the first of a passkey sign-in) fails on each of its attempts.
fn fail_the_next_session(faults: &Faults) {
    for _ in 0..3 {
        faults.fail_next(TWI, Fault::ServerError);
    }
}

fn assert_503(r: &TestReply, what: &str) {
    assert_eq!((r.status, r.error_code()), (503, Some("unavailable")), "{what}: {}", r.raw_body);
    assert!(r.session_cookie().is_none(), "{what}: no session");
}

/// 200, the user, and a session that works.
async fn assert_signed_in(t: &TestApp, r: &TestReply, email: &str, what: &str) {
    assert_eq!(r.status, 200, "{what}: {}", r.raw_body);
    assert_eq!(r.body["user"]["email"], email, "{what}");
    let cookie = r.session_cookie().expect("a session cookie");
    let me = t.user(Some(&cookie)).await;
    assert_eq!(me.status, 200, "{what}: the session works: {}", me.raw_body);
    assert_eq!(me.body["user"]["email"], email, "{what}");
}

fn assert_challenge_refused(r: &TestReply, what: &str) {
    assert_eq!(r.status, 422, "{what}: {}", r.raw_body);
    assert!(r.body["error"]["fields"]["challenge"].is_array(), "{what}: the challenge is refused: {}", r.raw_body);
    assert!(r.session_cookie().is_none(), "{what}: no session");
}

fn assert_ceremony_refused(r: &TestReply, what: &str) {
    assert_eq!((r.status, r.error_code()), (422, Some("invalid_ceremony")), "{what}: {}", r.raw_body);
    assert!(r.session_cookie().is_none(), "{what}: no session");
}

/// Signs `email` up and registers `key` as its passkey.
async fn with_passkey(t: &TestApp, email: &str, key: &mut SoftAuthenticator) -> String {
    let cookie = t.signed_up(email).await;
    let o = t.login_fn(TestCall::new("POST", "/user/passkeys/options").cookie(Some(&cookie)).json(json!({}))).await;
    assert_eq!(o.status, 200, "{}", o.raw_body);
    let body = json!({ "name": "Laptop", "credential": key.register(&o.body["publicKey"]) });
    let added = t.login_fn(TestCall::new("POST", "/user/passkeys").cookie(Some(&cookie)).json(body)).await;
    assert_eq!(added.status, 201, "{}", added.raw_body);
    cookie
}

/// [`app`] with a user who has `key` as a passkey ([`with_passkey`]): the address and the
/// session's cookie.
async fn app_with_passkey(
    seed: u64,
    name: &str,
    key: &mut SoftAuthenticator,
) -> (TestApp, Arc<Faults>, String, String) {
    let (t, faults) = app(seed).await;
    let email = unique(name);
    let cookie = with_passkey(&t, &email, key).await;
    (t, faults, email, cookie)
}

/// The options of a fresh sign-in ceremony begun from `ip`.
async fn sign_in_options(t: &TestApp, ip: &str) -> Value {
    let o = t.login_fn(TestCall::new("POST", "/passkeys/options").from_ip(ip).json(json!({}))).await;
    assert_eq!(o.status, 200, "{}", o.raw_body);
    o.body["publicKey"].clone()
}

fn sign_in_call(credential: &Value, ip: &str) -> TestCall {
    TestCall::new("POST", "/passkeys/login").from_ip(ip).json(json!({ "credential": credential }))
}

/// The headline: the code's time step is used, then the session's write fails (503). The same
/// request again is that sign-in finished (the code's use recognised as its own), not "the
/// challenge is invalid"; once it succeeded, the same request is a replay again, and the code's
/// step stays used.
#[tokio::test]
async fn a_two_factor_code_whose_session_failed_after_the_take_is_finished_by_its_retry() {
    let Challenged { t, faults, email, secret, challenge, .. } = challenged_in_app(21, "code").await;
    let body = json!({ "code": t.totp(&secret) });
    fail_the_session_after_the_counters(&faults);
    let first = t.login_fn(answer_call(&challenge, IP, body.clone())).await;
    assert_503(&first, "the session failed");
    assert_eq!(faults.injected().get(&(TWI.to_owned(), Fault::ServerError)), Some(&3), "{:?}", faults.injected());

    let again = t.login_fn(answer_call(&challenge, IP, body.clone())).await;
    assert_signed_in(&t, &again, &email, "the retry").await;
    assert_challenge_refused(
        &t.login_fn(answer_call(&challenge, IP, body.clone())).await,
        "replayed after its success",
    );
    // The code's time step was used once, by this sign-in: a fresh challenge does not take it.
    let fresh = challenged(&t, &email, IP).await;
    let replay = t.login_fn(answer_call(&fresh, IP, body)).await;
    assert!(replay.body["error"]["fields"]["code"].is_array(), "the step is used: {}", replay.raw_body);
}

/// A recovery code spent by a sign-in whose session then failed is not burnt for nothing: the
/// retry signs in, and the owner is told once that a code was used.
#[tokio::test]
async fn a_recovery_code_whose_session_failed_after_it_was_spent_is_finished_by_its_retry() {
    let (t, faults) = app(22).await;
    let email = unique("recovery");
    let (_, _, codes) = enrolled(&t, &email).await;
    mails_with_notices(&t).await;
    let challenge = challenged(&t, &email, IP).await;
    let body = json!({ "recovery_code": codes[0] });
    fail_the_session_after_the_counters(&faults);
    assert_503(&t.login_fn(answer_call(&challenge, IP, body.clone())).await, "the session failed");

    // Typed differently (upper case, a space for the dash): the same answer.
    let retyped = json!({ "recovery_code": codes[0].to_uppercase().replace('-', " ") });
    let again = t.login_fn(answer_call(&challenge, IP, retyped)).await;
    assert_signed_in(&t, &again, &email, "the retry").await;
    assert_challenge_refused(
        &t.login_fn(answer_call(&challenge, IP, body.clone())).await,
        "replayed after its success",
    );
    assert_eq!(count(&mails_with_notices(&t).await, &email, "A recovery code was used"), 1, "told once");
    // Spent once: on a fresh challenge it is refused, the next code is not.
    let fresh = challenged(&t, &email, IP).await;
    assert_eq!(t.login_fn(answer_call(&fresh, IP, body)).await.status, 422, "used");
    let next = t.login_fn(answer_call(&fresh, IP, json!({ "recovery_code": codes[1] }))).await;
    assert_signed_in(&t, &next, &email, "another code").await;
}

/// A passkey sign-in whose use of the authenticator's state landed and whose session then
/// failed: the same assertion again signs in (its counter is the stored one now, and it passes
/// only as that use recognised); then it is a replay, and the authenticator's next use works.
#[tokio::test]
async fn a_passkey_sign_in_whose_session_failed_after_the_take_is_finished_by_its_retry() {
    let mut key = SoftAuthenticator::new("localhost", ORIGIN);
    let (t, faults, email, _) = app_with_passkey(23, "pk", &mut key).await;
    let assertion = key.assert(&sign_in_options(&t, IP).await);
    fail_the_next_session(&faults);
    assert_503(&t.login_fn(sign_in_call(&assertion, IP)).await, "the session failed");
    assert_eq!(faults.injected().get(&(TWI.to_owned(), Fault::ServerError)), Some(&3));

    let again = t.login_fn(sign_in_call(&assertion, IP)).await;
    assert_signed_in(&t, &again, &email, "the retry").await;
    assert_ceremony_refused(&t.login_fn(sign_in_call(&assertion, IP)).await, "replayed after its success");
    let next = key.assert(&sign_in_options(&t, IP).await);
    assert_signed_in(&t, &t.login_fn(sign_in_call(&next, IP)).await, &email, "the next use").await;
}

/// A passkey answering a two-factor challenge, the session then failing: the retry signs in.
#[tokio::test]
async fn a_passkey_answer_to_a_challenge_whose_session_failed_is_finished_by_its_retry() {
    let mut key = SoftAuthenticator::new("localhost", ORIGIN);
    let (t, faults, email, cookie) = app_with_passkey(24, "pk2fa", &mut key).await;
    let e = t.login_fn(TestCall::new("POST", "/user/two-factor-authentication").cookie(Some(&cookie))).await;
    let secret = e.body["secret"].as_str().unwrap().to_owned();
    let c = TestCall::new("POST", "/user/confirmed-two-factor-authentication").cookie(Some(&cookie));
    assert_eq!(t.login_fn(c.json(json!({ "code": t.totp(&secret) }))).await.status, 200);
    let challenge = challenged(&t, &email, IP).await;
    let body = json!({ "passkey": key.assert(&sign_in_options(&t, IP).await) });
    fail_the_session_after_the_counters(&faults);
    assert_503(&t.login_fn(answer_call(&challenge, IP, body.clone())).await, "the session failed");

    let again = t.login_fn(answer_call(&challenge, IP, body.clone())).await;
    assert_signed_in(&t, &again, &email, "the retry").await;
    assert_challenge_refused(&t.login_fn(answer_call(&challenge, IP, body)).await, "replayed after its success");
}

/// A passkey registration whose write landed and whose answer was lost on every attempt (503):
/// the same request again is answered 201 with the same passkey, which is listed once, and the
/// owner is told once.
#[tokio::test]
async fn a_passkey_registration_whose_write_landed_unanswered_is_finished_by_its_retry() {
    let (t, faults) = app(25).await;
    let email = unique("reg");
    let cookie = t.signed_up(&email).await;
    mails_with_notices(&t).await;
    let mut key = SoftAuthenticator::new("localhost", ORIGIN);
    let o = t.login_fn(TestCall::new("POST", "/user/passkeys/options").cookie(Some(&cookie)).json(json!({}))).await;
    assert_eq!(o.status, 200, "{}", o.raw_body);
    let body = json!({ "name": "Laptop", "credential": key.register(&o.body["publicKey"]) });
    // The notice is promised (one SQS message), then the passkey's write lands and its answer is
    // lost, on each of the SDK's three attempts.
    faults.after_next_lands_fail("sqs:SendMessage", &[("dynamodb:UpdateItem", Fault::AfterWrite); 3]);
    let register = || TestCall::new("POST", "/user/passkeys").cookie(Some(&cookie)).json(body.clone());
    let first = t.login_fn(register()).await;
    assert_eq!((first.status, first.error_code()), (503, Some("unavailable")), "{}", first.raw_body);
    assert_eq!(faults.injected().get(&("dynamodb:UpdateItem".to_owned(), Fault::AfterWrite)), Some(&3));

    let again = t.login_fn(register()).await;
    assert_eq!(again.status, 201, "the retry: {}", again.raw_body);
    assert_eq!(again.body["id"], key.credential_id());
    assert_eq!(again.body["name"], "Laptop");
    let listed = t.login_fn(TestCall::new("GET", "/user/passkeys").cookie(Some(&cookie))).await;
    let listed = listed.body["passkeys"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "listed once: {listed:?}");
    assert_eq!(listed[0]["created_at"], again.body["created_at"], "the one the first attempt wrote");
    assert_ceremony_refused(&t.login_fn(register()).await, "replayed after its success");
    assert_eq!(count(&mails_with_notices(&t).await, &email, "A passkey was added"), 1, "told once");
    let signed = t.login_fn(sign_in_call(&key.assert(&sign_in_options(&t, IP).await), IP)).await;
    assert_signed_in(&t, &signed, &email, "the passkey signs in").await;
}

/// The take's own write lands and its answer is lost: the SDK sends it again, and it passes as
/// the same taker's (it used to be a delete, which found nothing the second time and refused the
/// sign-in that had just taken the challenge). Scripted for both shapes of the take: a
/// `DeleteItem` (before #34) and the marking `UpdateItem`; the close after the session (a
/// `DeleteItem` now) loses its answer too, which changes nothing.
#[tokio::test]
async fn a_challenge_take_whose_answer_was_lost_still_signs_in() {
    let Challenged { t, faults, email, secret, challenge, .. } = challenged_in_app(26, "lost").await;
    let lost = [("dynamodb:DeleteItem", Fault::AfterWrite), ("dynamodb:UpdateItem", Fault::AfterWrite)];
    faults.after_next_lands_fail(TWI, &lost);
    let r = t.login_fn(answer_call(&challenge, IP, json!({ "code": t.totp(&secret) }))).await;
    assert_signed_in(&t, &r, &email, "the first request").await;
    let injected = faults.injected();
    assert_eq!(injected.get(&("dynamodb:DeleteItem".to_owned(), Fault::AfterWrite)), Some(&1), "{injected:?}");
    assert_eq!(injected.get(&("dynamodb:UpdateItem".to_owned(), Fault::AfterWrite)), Some(&1), "{injected:?}");
}

/// A challenge taken by a request that then failed is that request's alone: the same answer from
/// another client, another right answer (a recovery code, which stays unspent), and a wrong one
/// are all refused as for a used challenge; the request itself then finishes, once.
#[tokio::test]
async fn a_taken_challenge_gives_nothing_to_another_client_or_another_answer() {
    let Challenged { t, faults, email, secret, codes, challenge } = challenged_in_app(27, "attacker").await;
    let body = json!({ "code": t.totp(&secret) });
    fail_the_session_after_the_counters(&faults);
    assert_503(&t.login_fn(answer_call(&challenge, IP, body.clone())).await, "the session failed");

    let elsewhere = t.login_fn(answer_call(&challenge, "198.51.100.77", body.clone())).await;
    assert_challenge_refused(&elsewhere, "the same answer from another client");
    let recovery = t.login_fn(answer_call(&challenge, IP, json!({ "recovery_code": codes[0] }))).await;
    assert_challenge_refused(&recovery, "another right answer");
    assert_challenge_refused(
        &t.login_fn(answer_call(&challenge, IP, json!({ "code": "000000" }))).await,
        "a wrong one",
    );
    let again = t.login_fn(answer_call(&challenge, IP, body.clone())).await;
    assert_signed_in(&t, &again, &email, "the request itself").await;
    assert_challenge_refused(&t.login_fn(answer_call(&challenge, IP, body)).await, "then never again");
    // The recovery code offered to the taken challenge was not spent.
    let fresh = challenged(&t, &email, IP).await;
    let r = t.login_fn(answer_call(&fresh, IP, json!({ "recovery_code": codes[0] }))).await;
    assert_signed_in(&t, &r, &email, "the recovery code, unspent").await;
}

/// Two different right answers to one challenge at once (a code and a recovery code): one signs
/// in, the other is refused, and the loser's factor is not used up.
#[tokio::test]
async fn two_different_answers_to_one_challenge_at_once_sign_in_once() {
    let t = TestApp::aws(&[]).await;
    let email = unique("race");
    let (_, secret, codes) = enrolled(&t, &email).await;
    let challenge = challenged(&t, &email, IP).await;
    let (by_code, by_recovery) = (json!({ "code": t.totp(&secret) }), json!({ "recovery_code": codes[0] }));
    let (a, b) = tokio::join!(
        t.login_fn(answer_call(&challenge, IP, by_code.clone())),
        t.login_fn(answer_call(&challenge, IP, by_recovery.clone()))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 422], "{} / {}", a.raw_body, b.raw_body);
    let loser = if a.status == 200 { by_recovery } else { by_code };
    let fresh = challenged(&t, &email, IP).await;
    let r = t.login_fn(answer_call(&fresh, IP, loser)).await;
    assert_signed_in(&t, &r, &email, "the losing answer, unused").await;
}

/// A ceremony taken by an assertion whose sign-in then failed: the same assertion from another
/// client, and another assertion of the same ceremony, are refused; the assertion itself
/// finishes, once.
#[tokio::test]
async fn a_taken_ceremony_gives_nothing_to_another_client_or_another_assertion() {
    let mut key = SoftAuthenticator::new("localhost", ORIGIN);
    let (t, faults, email, _) = app_with_passkey(28, "pkattacker", &mut key).await;
    let options = sign_in_options(&t, IP).await;
    let assertion = key.assert(&options);
    fail_the_next_session(&faults);
    assert_503(&t.login_fn(sign_in_call(&assertion, IP)).await, "the session failed");

    assert_ceremony_refused(&t.login_fn(sign_in_call(&assertion, "198.51.100.77")).await, "from another client");
    let other = key.clone_state().assert(&options);
    assert_ceremony_refused(&t.login_fn(sign_in_call(&other, IP)).await, "another assertion of the ceremony");
    assert_signed_in(&t, &t.login_fn(sign_in_call(&assertion, IP)).await, &email, "the assertion itself").await;
    assert_ceremony_refused(&t.login_fn(sign_in_call(&assertion, IP)).await, "then never again");
}

/// A taken ceremony is kept for its repeats two minutes, and lets three of them through: past
/// either, the same request is refused.
#[tokio::test]
async fn repeats_of_a_take_are_few_and_short_lived() {
    let mut key = SoftAuthenticator::new("localhost", ORIGIN);
    let (t, faults, _, _) = app_with_passkey(29, "repeats", &mut key).await;
    let assertion = key.assert(&sign_in_options(&t, IP).await);
    for i in 0..4 {
        fail_the_next_session(&faults);
        assert_503(&t.login_fn(sign_in_call(&assertion, IP)).await, &format!("attempt {i}"));
    }
    let capped = t.login_fn(sign_in_call(&assertion, IP)).await;
    assert_eq!(capped.status, 429, "a fourth repeat: {}", capped.raw_body);

    let late = key.assert(&sign_in_options(&t, IP).await);
    fail_the_next_session(&faults);
    assert_503(&t.login_fn(sign_in_call(&late, IP)).await, "the session failed");
    t.env.clock.advance(chrono::Duration::seconds(121));
    assert_ceremony_refused(&t.login_fn(sign_in_call(&late, IP)).await, "past the keep window");
}

/// One right answer sent many times at once (identical requests all pass the take with one
/// mark): every take is counted, so at most the first and `MAX_REPEATS` repeats issue a session,
/// however they race.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_answers_racing_each_other_issue_at_most_the_allowed_repeats() {
    let t = Arc::new(TestApp::memory(&[]));
    let email = unique("race");
    let (_, secret, _) = enrolled(&t, &email).await;
    let challenge = challenged(&t, &email, IP).await;
    let body = json!({ "code": t.totp(&secret) });
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (t, call) = (t.clone(), answer_call(&challenge, IP, body.clone()));
            tokio::spawn(async move { t.login_fn(call).await.status })
        })
        .collect();
    let mut signed_in = 0;
    for task in tasks {
        let status = task.await.unwrap();
        assert!(matches!(status, 200 | 422 | 429), "{status}");
        signed_in += usize::from(status == 200);
    }
    let most = 1 + gatehouse::services::auth::limits::MAX_REPEATS as usize;
    assert!((1..=most).contains(&signed_in), "{signed_in} sessions from one answer");
}
