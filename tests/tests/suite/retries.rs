//! Retries finish what they started (#34): a request whose change landed and whose answer was
//! then lost (the route answered 503, as an outage right after the write makes it) is asked again
//! identically, and gets the answer the first attempt would have given; the notices of the change
//! go out once; the paths that recognise their own landed writes are driven through the fault
//! proxy (`gatehouse_tests::wire`), on the emulator with the real SDK.
//!
//! The outage is started by a hook the proxy runs between a call landing and its answer
//! (`Faults::after_next_lands`), so the first attempt's change is surely written and everything
//! after it fails (every AWS call answers 500 until `set_outage(false)`).

use crate::support::{mails, put_reset_token, unique};
use gatehouse::mail::Mail;
use gatehouse_tests::http::{TestApp, TestCall, TestReply};
use gatehouse_tests::passkey::SoftAuthenticator;
use gatehouse_tests::wire::{Fault, Faults, faulty_env};
use serde_json::{Value, json};
use std::sync::Arc;

const PW: &str = "correct horse battery staple 42";
const NEW_PW: &str = "an entirely new passphrase 2026";
/// What the update expression of a move of the credentials version holds.
const CHANGE: &str = "cred_version = :next";

/// A faulty world (faults off until scripted) and its app.
async fn app() -> (TestApp, Arc<Faults>) {
    let (env, faults, _) = faulty_env(7).await;
    (TestApp::with(env, &[]), faults)
}

/// [`app`] with a user signed up: the address and the session's cookie.
async fn app_with_user(name: &str) -> (TestApp, Arc<Faults>, String, String) {
    let (t, faults) = app().await;
    let email = unique(name);
    let cookie = t.signed_up(&email).await;
    (t, faults, email, cookie)
}

/// [`app`] with a user registered and mailed a reset link: the address and the link's token.
async fn app_with_a_reset_link(name: &str) -> (TestApp, Arc<Faults>, String, String) {
    let (t, faults) = app().await;
    let email = unique(name);
    let token = registered_with_a_reset_link(&t, &email).await;
    (t, faults, email, token)
}

/// The body of `POST /reset-password`: the link's `token` for `email`, and the new `password`.
fn reset_body(email: &str, token: &str, password: &str) -> Value {
    json!({ "email": email, "token": token, "password": password, "password_confirmation": password })
}

/// The reset to [`NEW_PW`] was made: the new password signs in, the old one no longer does.
async fn assert_reset_to_the_new_password(t: &TestApp, email: &str) {
    assert_eq!(t.login(email, NEW_PW).await.status, 200);
    assert_eq!(t.login(email, PW).await.status, 422);
}

/// Starts an outage once the next call of `name` whose body holds `needle` has landed (before
/// its answer goes back).
fn outage_after(faults: &Arc<Faults>, name: &str, needle: &str) {
    let f = faults.clone();
    faults.after_next_lands_with(
        name,
        needle,
        Box::new(move || {
            Box::pin(async move {
                f.set_outage(true);
            })
        }),
    );
}

/// Signs a user up at `old` and asks to move to `new`: the session's cookie and the confirmation
/// link mailed to `new`.
async fn asked_to_move(t: &TestApp, old: &str, new: &str) -> (String, String) {
    let cookie = t.signed_up(old).await;
    confirm_password(t, &cookie, PW).await;
    let asked =
        t.login_fn(TestCall::new("POST", "/user/email").cookie(Some(&cookie)).json(json!({ "email": new }))).await;
    assert_eq!(asked.status, 202, "{}", asked.raw_body);
    let sent = mails(t).await;
    let mail = sent.iter().find(|m| m.to == new && m.subject == "Confirm your new email address").expect("the link");
    (cookie, link_in(mail, "/user/email/confirm/"))
}

fn count(sent: &[Mail], to: &str, subject: &str) -> usize {
    sent.iter().filter(|m| m.to == to && m.subject == subject).count()
}

/// Registers `email`, asks for a reset link, and returns the token the worker mailed.
async fn registered_with_a_reset_link(t: &TestApp, email: &str) -> String {
    assert_eq!(t.register("Ann", email, PW).await.status, 201);
    let forgot = t.reset_fn(TestCall::new("POST", "/forgot-password").json(json!({ "email": email }))).await;
    assert_eq!(forgot.status, 202);
    let sent = mails(t).await;
    let link = sent.iter().find(|m| m.to == email && m.subject == "Reset your password").expect("the reset mail");
    token_in(&link.text)
}

fn token_in(text: &str) -> String {
    let i = text.find("token=").expect("a link with a token") + 6;
    text[i..i + 64].to_owned()
}

fn link_in(mail: &Mail, marker: &str) -> String {
    let url = mail.text.split_whitespace().find(|w| w.contains(marker)).expect("a link");
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest[rest.find('/').expect("a path")..].to_owned()
}

fn assert_503(r: &TestReply, what: &str) {
    assert_eq!((r.status, r.error_code()), (503, Some("unavailable")), "{what}: {}", r.raw_body);
}

async fn confirm_password(t: &TestApp, cookie: &str, password: &str) {
    let c = TestCall::new("POST", "/user/confirm-password").cookie(Some(cookie)).json(json!({ "password": password }));
    assert_eq!(t.login_fn(c).await.status, 204);
}

/// The headline: a reset whose password write landed, then an outage; the client asks
/// again with the same link and password, as the 503 invites, and is told the reset happened
/// (it was: the new password signs in, the old one does not), not that its link is invalid. The
/// "password changed" mail, promised before the write, goes out once.
#[tokio::test]
async fn a_reset_that_landed_before_an_outage_is_answered_200_when_asked_again() {
    let (t, faults, email, token) = app_with_a_reset_link("reset").await;
    let body = reset_body(&email, &token, NEW_PW);
    // The password's write lands, and then nothing more does.
    outage_after(&faults, "dynamodb:UpdateItem", CHANGE);
    let first = t.reset_fn(TestCall::new("POST", "/reset-password").json(body.clone())).await;
    assert_503(&first, "the reset cut by the outage");
    faults.set_outage(false);
    let again = t.reset_fn(TestCall::new("POST", "/reset-password").json(body.clone())).await;
    assert_eq!(again.status, 200, "the reset that landed, asked again: {}", again.raw_body);
    assert_reset_to_the_new_password(&t, &email).await;
    // The same link for another password is spent.
    let reuse = t.reset_fn(TestCall::new("POST", "/reset-password").json(reset_body(&email, &token, PW))).await;
    assert_eq!((reuse.status, reuse.error_code()), (422, Some("invalid_token")), "{}", reuse.raw_body);
    assert_eq!(count(&mails(&t).await, &email, "Your password was changed"), 1, "told once");
}

/// A password change landed, then an outage: the client's identical retry carries the session
/// the change made stale. It is recognised (that session made the user's latest change minutes
/// ago, and the new password is the account's) and answered as the change would have been: 204
/// and a session that works, the old one ended, the owner told once.
#[tokio::test]
async fn a_password_change_that_landed_before_an_outage_is_answered_204_when_asked_again() {
    let (t, faults, email, cookie) = app_with_user("change").await;
    let other = t.login(&email, PW).await.session_cookie().expect("another browser");
    let body = json!({ "current_password": PW, "password": NEW_PW, "password_confirmation": NEW_PW });
    let change = || TestCall::new("PUT", "/user/password").cookie(Some(&cookie)).json(body.clone());
    // The password's write lands, then the outage.
    outage_after(&faults, "dynamodb:UpdateItem", CHANGE);
    let first = t.login_fn(change()).await;
    assert_503(&first, "the change cut by the outage");
    faults.set_outage(false);
    assert_eq!(t.login(&email, NEW_PW).await.status, 200, "the change had landed");
    let again = t.login_fn(change()).await;
    assert_eq!(again.status, 204, "asked again: {}", again.raw_body);
    let rotated = again.session_cookie().expect("the continuing session");
    assert_eq!(t.user(Some(&rotated)).await.status, 200);
    assert_eq!(t.login_fn(change()).await.status, 401, "resumed once: a copy of the cookie gets nothing more");
    for dead in [&cookie, &other] {
        assert_eq!(t.user(Some(dead)).await.status, 401);
    }
    let sent = mails(&t).await;
    assert_eq!(count(&sent, &email, "Your password was changed"), 1, "told once");

    // Not for anyone else: another session of the user (which did not make the change), the
    // right cookie with a wrong password, or the right request eleven minutes later.
    let bystander = t.login(&email, NEW_PW).await.session_cookie().unwrap();
    let newer = json!({ "current_password": NEW_PW, "password": PW, "password_confirmation": PW });
    let c = TestCall::new("PUT", "/user/password").cookie(Some(&bystander)).json(newer);
    assert_eq!(t.login_fn(c).await.status, 204, "a change from the bystander");
    let theirs = t.login_fn(change()).await;
    assert_eq!(theirs.status, 401, "the user's latest change is not this session's: {}", theirs.raw_body);
    let c = TestCall::new("PUT", "/user/password").cookie(Some(&bystander)).json(json!({ "password": "wrong" }));
    assert_eq!(t.login_fn(c).await.status, 401, "the change's own session, a wrong password");
    t.env.clock.advance(chrono::Duration::minutes(11));
    let late = json!({ "current_password": NEW_PW, "password": PW, "password_confirmation": PW });
    let c = TestCall::new("PUT", "/user/password").cookie(Some(&bystander)).json(late);
    assert_eq!(t.login_fn(c).await.status, 401, "eleven minutes on");
}

/// "Log out other devices" and turning a second factor on prove no new secret: a retry of theirs
/// cannot be told from a copy of the same cookie with the password it kept, so neither is ever
/// resumed. Asked again after the change landed, the session that made it is told 401 (sign in
/// again: what it asked for happened), and a password change's resume path gives nothing for
/// them either (the review's attack: a stolen cookie and the password after the owner turned
/// on a second factor).
#[tokio::test]
async fn changes_that_prove_no_new_secret_are_never_resumed() {
    let (t, faults, email, cookie) = app_with_user("others").await;
    let other = t.login(&email, PW).await.session_cookie().unwrap();
    let call = || TestCall::new("POST", "/logout-other-devices").cookie(Some(&cookie)).json(json!({ "password": PW }));
    outage_after(&faults, "dynamodb:UpdateItem", CHANGE);
    assert_503(&t.login_fn(call()).await, "cut by the outage");
    faults.set_outage(false);
    assert_eq!(t.user(Some(&other)).await.status, 401, "the others were logged out");
    assert_eq!(t.login_fn(call()).await.status, 401, "the stale session signs in again");
    let through_change = json!({ "current_password": PW, "password": PW, "password_confirmation": PW });
    let c = TestCall::new("PUT", "/user/password").cookie(Some(&cookie)).json(through_change);
    assert_eq!(t.login_fn(c).await.status, 401, "nor through the password change's resume");
}

/// Two changes of the credentials land within one SDK retry of each other: the first one's answer
/// is lost, the second lands before the SDK sends the first again. The retry is refused by the
/// version (moved twice now) and still knows its own write landed: each change answers its own
/// version, neither is told it lost a race it won.
#[tokio::test]
async fn two_changes_landing_within_one_retry_each_answer_their_own_version() {
    use gatehouse::tables::users::CredentialChange;
    let (t, faults) = app().await;
    let email = unique("race");
    assert_eq!(t.register("Ann", &email, PW).await.status, 201);
    let address = gatehouse::values::email::Email::parse(&email).expect("an address");
    let user = t.env.stores.users.find_by_email(&address).await.expect("read").expect("the user");
    let (v, now, stores, id) = (user.credentials_version, t.env.clock_now(), t.env.stores.clone(), user.id.clone());
    faults.fail_next("dynamodb:UpdateItem", Fault::AfterWrite);
    faults.after_next_lands(
        "dynamodb:UpdateItem",
        Box::new(move || {
            Box::pin(async move {
                let second = CredentialChange { revoke: true, ..CredentialChange::default() };
                let landed = stores.users.change_credentials(&id, v + 1, second, now).await.expect("the second");
                assert_eq!(landed, Some(v + 2), "the second change lands on the first");
            })
        }),
    );
    let first = CredentialChange { revoke: true, ..CredentialChange::default() };
    let answered = t.env.stores.users.change_credentials(&user.id, v, first, now).await.expect("the first");
    assert_eq!(answered, Some(v + 1), "the first change's own landed write, not a conflict");
    let read = t.env.stores.users.find(&user.id).await.unwrap().unwrap();
    assert_eq!(read.credentials_version, v + 2);
    assert_eq!(read.recent_changes.iter().map(|c| c.version).collect::<Vec<_>>(), vec![v + 2, v + 1]);
    // A change that really lost is still refused.
    let stale = CredentialChange { revoke: true, ..CredentialChange::default() };
    assert_eq!(t.env.stores.users.change_credentials(&user.id, v, stale, now).await.unwrap(), None);
}

/// The address swap landed, then an outage failed everything after it (the request answers
/// 503): the old address is told all the same, by the notice promised before the swap. (It used
/// to be queued after the swap, and a failure to queue it was only logged.)
#[tokio::test]
async fn the_address_changed_notice_survives_an_outage_right_after_the_swap() {
    let (t, faults) = app().await;
    let (old, new) = (unique("old"), unique("new"));
    let (cookie, link) = asked_to_move(&t, &old, &new).await;
    outage_after(&faults, "dynamodb:TransactWriteItems", "email_prev = :tag");
    let first = t.login_fn(TestCall::new("GET", &link).cookie(Some(&cookie))).await;
    assert_503(&first, "the confirmation cut by the outage");
    faults.set_outage(false);
    let address = gatehouse::values::email::Email::parse(&new).unwrap();
    assert!(t.env.stores.users.find_by_email(&address).await.unwrap().is_some(), "the swap had landed");
    let sent = mails(&t).await;
    assert_eq!(count(&sent, &old, "Your email address was changed"), 1, "the old address is told");
    // And asked again, the link finishes the rest (verified, signed in as before).
    let again = t.login_fn(TestCall::new("GET", &link).cookie(Some(&cookie))).await;
    assert_eq!(again.status, 200, "{}", again.raw_body);
    assert_eq!(count(&mails(&t).await, &old, "Your email address was changed"), 0, "not told twice");
}

/// A change that never landed is never announced: the promised notice's job finds no mark.
#[tokio::test]
async fn a_change_that_did_not_land_announces_nothing() {
    let (t, faults, email, cookie) = app_with_user("nochange").await;
    mails(&t).await;
    // The password's write (the request's first UpdateItem: the password check's counters are a
    // transaction) is refused for good, 500 on each of the SDK's attempts.
    for _ in 0..3 {
        faults.fail_next("dynamodb:UpdateItem", Fault::ServerError);
    }
    let body = json!({ "current_password": PW, "password": NEW_PW, "password_confirmation": NEW_PW });
    let r = t.login_fn(TestCall::new("PUT", "/user/password").cookie(Some(&cookie)).json(body)).await;
    assert_503(&r, "the change refused");
    assert_eq!(t.login(&email, PW).await.status, 200, "unchanged");
    assert_eq!(count(&mails(&t).await, &email, "Your password was changed"), 0, "nothing to announce");
}

/// A passkey sign-in whose use of the authenticator's state landed and whose answer was lost:
/// the SDK sends the write again, it is refused by the state it wrote itself, and the use is
/// recognised by its ceremony's mark: the sign-in goes through (once), not "invalid".
#[tokio::test]
async fn a_passkey_use_whose_answer_was_lost_still_signs_in() {
    let (t, faults, _, cookie) = app_with_user("pk").await;
    confirm_password(&t, &cookie, PW).await;
    let mut key = SoftAuthenticator::new("localhost", "http://localhost:8080");
    let o = t.login_fn(TestCall::new("POST", "/user/passkeys/options").cookie(Some(&cookie)).json(json!({}))).await;
    assert_eq!(o.status, 200, "{}", o.raw_body);
    let credential = key.register(&o.body["publicKey"]);
    let body = json!({ "name": "Laptop", "credential": credential });
    let added = t.login_fn(TestCall::new("POST", "/user/passkeys").cookie(Some(&cookie)).json(body)).await;
    assert_eq!(added.status, 201, "{}", added.raw_body);
    let o = t.login_fn(TestCall::new("POST", "/passkeys/options").json(json!({}))).await;
    let assertion: Value = key.assert(&o.body["publicKey"]);
    // The passkey's use (its state's write) lands and its answer is lost.
    faults.fail_matching("dynamodb:UpdateItem", "SET #p.#s = :new", Fault::AfterWrite, 1);
    let signed = t.login_fn(TestCall::new("POST", "/passkeys/login").json(json!({ "credential": assertion }))).await;
    assert_eq!(signed.status, 200, "{}", signed.raw_body);
    assert_eq!(faults.injected().get(&("dynamodb:UpdateItem".into(), Fault::AfterWrite)), Some(&1), "injected");
    assert_eq!(t.user(signed.session_cookie().as_deref()).await.status, 200);
    // The state it wrote is the authenticator's: its next use signs in too.
    let o = t.login_fn(TestCall::new("POST", "/passkeys/options").json(json!({}))).await;
    let next = key.assert(&o.body["publicKey"]);
    let again = t.login_fn(TestCall::new("POST", "/passkeys/login").json(json!({ "credential": next }))).await;
    assert_eq!(again.status, 200, "{}", again.raw_body);
}

/// A reset whose password write failed for good, and whose giving the token back failed too:
/// the token stays spent, the password unchanged. Asked again, the reset is not refused by its
/// own spend: the credentials have not moved since, so the token is given back and the retry
/// resets with it, once.
#[tokio::test]
async fn a_reset_that_spent_its_token_and_changed_nothing_is_finished_when_asked_again() {
    let (t, faults, email, token) = app_with_a_reset_link("spent").await;
    let body = reset_body(&email, &token, NEW_PW);
    // Each of the SDK's three attempts refused, for the password's write and for the give-back.
    faults.fail_matching("dynamodb:UpdateItem", CHANGE, Fault::ServerError, 3);
    faults.fail_matching("dynamodb:UpdateItem", "REMOVE spent_by", Fault::ServerError, 3);
    let first = t.reset_fn(TestCall::new("POST", "/reset-password").json(body.clone())).await;
    assert_503(&first, "the reset whose write failed");
    assert_eq!(t.login(&email, PW).await.status, 200, "nothing changed");
    let again = t.reset_fn(TestCall::new("POST", "/reset-password").json(body.clone())).await;
    assert_eq!(again.status, 200, "asked again: {}", again.raw_body);
    assert_reset_to_the_new_password(&t, &email).await;
    let reuse = t.reset_fn(TestCall::new("POST", "/reset-password").json(reset_body(&email, &token, PW))).await;
    assert_eq!(reuse.error_code(), Some("invalid_token"), "then spent: {}", reuse.raw_body);
    assert_eq!(count(&mails(&t).await, &email, "Your password was changed"), 1, "told once");
}

/// A request for a reset link whose counters (the address's day and throttle window, one
/// transaction) landed and whose answer was then lost: the request answers 503 and queued
/// nothing. Asked again, it must queue the link, not be held by its own count in the window (a
/// 202 that mails nothing).
#[tokio::test]
async fn a_forgot_password_whose_counters_landed_before_a_503_still_mails_the_link_when_asked_again() {
    let (t, faults) = app().await;
    let email = unique("forgot");
    assert_eq!(t.register("Ann", &email, PW).await.status, 201);
    mails(&t).await;
    // The counters' transaction lands, its answer is lost, and the SDK's two retries fail.
    faults.fail_matching("dynamodb:TransactWriteItems", "reset-link", Fault::AfterWrite, 1);
    faults.fail_matching("dynamodb:TransactWriteItems", "reset-link", Fault::ServerError, 2);
    let call = || TestCall::new("POST", "/forgot-password").json(json!({ "email": email }));
    assert_503(&t.reset_fn(call()).await, "the counters' answer lost");
    let again = t.reset_fn(call()).await;
    assert_eq!(again.status, 202, "{}", again.raw_body);
    assert_eq!(count(&mails(&t).await, &email, "Reset your password"), 1, "the link is mailed");
}

/// `DELETE /user` whose mark landed (the account is being deleted: its sessions are refused from
/// that write on), then an outage: asked again by the session that asked, it is finished and
/// answered 204 as the first attempt would have been, not 401 because of its own mark. Another
/// session of the user gets nothing of the kind.
#[tokio::test]
async fn an_account_deletion_that_landed_before_an_outage_is_finished_when_asked_again() {
    let (t, faults, email, cookie) = app_with_user("delete").await;
    let bystander = t.login(&email, PW).await.session_cookie().unwrap();
    confirm_password(&t, &cookie, PW).await;
    outage_after(&faults, "dynamodb:UpdateItem", "deleted_at = if_not_exists");
    let delete = |c: &str| TestCall::new("DELETE", "/user").cookie(Some(c));
    assert_503(&t.login_fn(delete(&cookie)).await, "cut by the outage after the mark");
    faults.set_outage(false);
    let theirs = t.login_fn(delete(&bystander)).await;
    assert_eq!(theirs.status, 401, "not the session that asked: {}", theirs.raw_body);
    let again = t.login_fn(delete(&cookie)).await;
    assert_eq!(again.status, 204, "asked again: {}", again.raw_body);
    assert!(again.set_cookies().iter().any(|c| c.contains("Max-Age=0")), "the cookie is cleared");
    let address = gatehouse::values::email::Email::parse(&email).unwrap();
    assert!(t.env.stores.users.find_by_email(&address).await.unwrap().is_none(), "finished");
    assert_eq!(count(&mails(&t).await, &email, "Your account was deleted"), 1);
    // Asked once more: still the same answer, nothing more happens.
    assert_eq!(t.login_fn(delete(&cookie)).await.status, 204);
    assert_eq!(count(&mails(&t).await, &email, "Your account was deleted"), 0, "told once");
}

/// The give-back of a spend whose reset changed nothing waits until no request that began
/// before could still be running (`GATEHOUSE_NOTICE_DELAY_SECONDS`): a slow first attempt may
/// still land, and another holder of the link must not reset over it meanwhile. Until then the
/// retry is told to ask again (503), then it resets.
#[tokio::test]
async fn a_spend_is_given_back_only_once_its_first_attempt_cannot_still_land() {
    let (env, faults, _) = faulty_env(11).await;
    let t = TestApp::with(env, &[("GATEHOUSE_NOTICE_DELAY_SECONDS", "30")]);
    let email = unique("settle");
    assert_eq!(t.register("Ann", &email, PW).await.status, 201);
    // A token as the link job stores it, without waiting out the queue's real-time delays.
    let token = put_reset_token(&t.env.stores, &email, chrono::Duration::seconds(60)).await;
    let body = reset_body(&email, token.expose(), NEW_PW);
    faults.fail_matching("dynamodb:UpdateItem", CHANGE, Fault::ServerError, 3);
    faults.fail_matching("dynamodb:UpdateItem", "REMOVE spent_by", Fault::ServerError, 3);
    assert_503(&t.reset_fn(TestCall::new("POST", "/reset-password").json(body.clone())).await, "the write failed");
    let soon = t.reset_fn(TestCall::new("POST", "/reset-password").json(body.clone())).await;
    assert_503(&soon, "the first attempt could still be landing");
    assert_eq!(t.login(&email, PW).await.status, 200, "nothing changed meanwhile");
    t.env.clock.advance(chrono::Duration::seconds(31));
    let later = t.reset_fn(TestCall::new("POST", "/reset-password").json(body.clone())).await;
    assert_eq!(later.status, 200, "{}", later.raw_body);
    assert_eq!(t.login(&email, NEW_PW).await.status, 200);
}

/// A change made just before the account is deleted is still told: the deletion keeps the
/// promised notices' marks aside for their jobs (the user item they looked for is gone).
#[tokio::test]
async fn deleting_the_account_right_after_a_change_does_not_silence_its_notice() {
    let t = TestApp::memory(&[]);
    let (old, new) = (unique("old"), unique("new"));
    let (cookie, link) = asked_to_move(&t, &old, &new).await;
    let moved = t.login_fn(TestCall::new("GET", &link).cookie(Some(&cookie))).await;
    assert_eq!(moved.status, 200, "{}", moved.raw_body);
    // At once, before the notice's job looks for its change.
    let deleted = t.login_fn(TestCall::new("DELETE", "/user").cookie(Some(&cookie))).await;
    assert_eq!(deleted.status, 204, "{}", deleted.raw_body);
    t.env.clock.advance(chrono::Duration::from_std(gatehouse::config::NOTICE_DELAY).unwrap());
    let sent = mails(&t).await;
    assert_eq!(count(&sent, &old, "Your email address was changed"), 1, "the old address is told");
}

/// A registration asked again queues the same verification job again: one mail.
#[tokio::test]
async fn a_registration_asked_again_mails_one_verification_link() {
    let t = TestApp::memory(&[]);
    let email = unique("verify");
    assert_eq!(t.register("Ann", &email, PW).await.status, 201);
    for _ in 0..3 {
        assert_eq!(t.register("Ann", &email, PW).await.status, 201, "the same registration");
    }
    assert_eq!(count(&mails(&t).await, &email, "Verify your email address"), 1);
}
