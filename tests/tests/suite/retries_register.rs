//! `POST /register` asked again (issue #34, "retries finish what they started"): a registration
//! whose user landed but whose later step failed (a 503, an answer lost) is finished by the
//! client's retry of the same request — 201, the user, a session — and by nothing else: another
//! password, another name, a later hour, or an account that has been touched since gets the same
//! "email taken" answer as ever, and wrong guesses count against the login's per-account limit.

use crate::support::{mails, unique};
use gatehouse::mail::Mail;
use gatehouse::tables::users::CredentialChange;
use gatehouse_tests::http::{TestApp, TestCall, TestReply};
use gatehouse_tests::wire::{Fault, faulty_env};
use serde_json::{Value, json};

const PW: &str = "correct horse battery staple 42";
const NEW_PW: &str = "a brand new and long passphrase 7";

fn register_call(name: &str, email: &str, password: &str) -> TestCall {
    TestCall::new("POST", "/register").json(json!({
        "name": name, "email": email, "password": password, "password_confirmation": password
    }))
}

fn verification_mails(sent: &[Mail], to: &str) -> usize {
    sent.iter().filter(|m| m.to == to && m.subject == "Verify your email address").count()
}

/// A user registered at `unique(name)` ([`TestApp::registered`]): the address and the session's
/// cookie.
async fn registered_user(t: &TestApp, name: &str) -> (String, String) {
    let email = unique(name);
    let cookie = t.registered(&email).await;
    (email, cookie)
}

/// The answer an address taken by somebody else gets: what every refused retry must look like.
fn assert_taken(r: &TestReply, what: &str) {
    assert_eq!((r.status, r.error_code()), (422, Some("validation_failed")), "{what}: {}", r.raw_body);
    assert_eq!(r.body["error"]["fields"]["email"][0], "has already been taken", "{what}");
    assert!(r.session_cookie().is_none(), "{what}: no session");
}

/// A finished retry: 201, the account's body, and a session that works.
async fn assert_signed_up(t: &TestApp, r: &TestReply, email: &str, what: &str) -> String {
    assert_eq!(r.status, 201, "{what}: {}", r.raw_body);
    assert_eq!(r.body["user"]["email"], email, "{what}");
    assert_eq!(r.body["user"]["email_verified_at"], Value::Null, "{what}");
    let cookie = r.session_cookie().expect("a session cookie");
    let me = t.user(Some(&cookie)).await;
    assert_eq!(me.status, 200, "{what}: the session works: {}", me.raw_body);
    assert_eq!(me.body["user"]["email"], email, "{what}");
    cookie
}

/// On DynamoDB: the user's transaction lands, then every attempt at the session's transaction
/// fails, so the registration answers 503 (`unavailable`, "ask again"). Asked again, the same
/// request is that registration finished — not "the email has already been taken" by the
/// client's own first attempt.
#[tokio::test]
async fn a_registration_whose_session_failed_after_the_user_landed_is_finished_by_its_retry() {
    let (env, faults, _) = faulty_env(1).await;
    let t = TestApp::with(env, &[]);
    let email = unique("retry");
    // The register limit is one counter (an UpdateItem); the first transaction is the user's.
    // Once it has landed, the session's transaction fails on each of the SDK's three attempts.
    let twi = "dynamodb:TransactWriteItems";
    faults.after_next_lands_fail(twi, &[(twi, Fault::ServerError); 3]);
    let first = t.login_fn(register_call("Ann", &email, PW)).await;
    assert_eq!((first.status, first.error_code()), (503, Some("unavailable")), "{}", first.raw_body);
    assert!(first.session_cookie().is_none());
    assert_eq!(faults.injected().values().sum::<usize>(), 3, "{:?}", faults.injected());
    let address = gatehouse::Email::parse(&email).expect("an address");
    let landed = t.env.stores.users.find_by_email(&address).await.expect("read").expect("the user landed");

    let again = t.login_fn(register_call("Ann", &email, PW)).await;
    let cookie = assert_signed_up(&t, &again, &email, "the retry").await;
    assert_eq!(again.body["user"]["id"], landed.id.as_str(), "the account the first attempt wrote");
    assert!(verification_mails(&mails(&t).await, &email) >= 1, "the verification mail is queued");
    assert_eq!(t.login_fn(TestCall::new("POST", "/logout").cookie(Some(&cookie))).await.status, 204);
    assert_eq!(t.login(&email, PW).await.status, 200, "the password is the one registered");
}

/// In memory: the identical request again within the window is answered as the first was (a
/// second verification mail is queued, which is harmless); the first session stays.
#[tokio::test]
async fn the_same_registration_again_within_ten_minutes_signs_in_to_the_same_account() {
    let t = TestApp::memory(&[]);
    let email = unique("ann");
    let first = t.register("Ann", &email, PW).await;
    let first_cookie = assert_signed_up(&t, &first, &email, "the first attempt").await;
    t.env.clock.advance(chrono::Duration::minutes(9));
    let again = t.register("Ann", &email.to_uppercase(), PW).await;
    let cookie = assert_signed_up(&t, &again, &email, "asked again nine minutes later").await;
    assert_ne!(cookie, first_cookie, "a session of its own");
    assert_eq!(again.body["user"]["id"], first.body["user"]["id"]);
    assert_eq!(t.user(Some(&first_cookie)).await.status, 200, "the first session stays");
    assert_eq!(verification_mails(&mails(&t).await, &email), 1, "one verification mail: one job per registration");
}

#[tokio::test]
async fn a_retry_with_another_password_or_name_is_told_the_address_is_taken() {
    let t = TestApp::memory(&[]);
    let email = unique("ann");
    assert_eq!(t.register("Ann", &email, PW).await.status, 201);
    let wrong_password = t.register("Ann", &email, NEW_PW).await;
    assert_taken(&wrong_password, "another password");
    let other_name = t.register("Anne", &email, PW).await;
    assert_taken(&other_name, "another name");
    // The very answer an unrelated registration of a taken address gets, byte for byte.
    assert_eq!(wrong_password.raw_body, other_name.raw_body);
    let unrelated = t.register("Eve", &email, "an unrelated passphrase of eve 9").await;
    assert_eq!(wrong_password.raw_body, unrelated.raw_body);
    // Nothing of the account changed: its owner's password still signs in.
    assert_eq!(t.login(&email, PW).await.status, 200);
}

#[tokio::test]
async fn the_same_request_eleven_minutes_later_is_told_the_address_is_taken() {
    let t = TestApp::memory(&[]);
    let email = unique("ann");
    assert_eq!(t.register("Ann", &email, PW).await.status, 201);
    t.env.clock.advance(chrono::Duration::minutes(11));
    assert_taken(&t.register("Ann", &email, PW).await, "eleven minutes later");
}

#[tokio::test]
async fn a_retry_after_the_address_was_verified_is_told_it_is_taken() {
    let t = TestApp::memory(&[]);
    let email = unique("ann");
    let reg = t.register("Ann", &email, PW).await;
    let cookie = reg.session_cookie().expect("a session");
    let sent = mails(&t).await;
    let mail = sent.iter().find(|m| m.to == email && m.subject == "Verify your email address").expect("a mail");
    let url = mail.text.split_whitespace().find(|w| w.contains("/account/verify-email/")).expect("a link");
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let link = rest[rest.find('/').expect("a path")..].replacen("/account/verify-email/", "/email/verify/", 1);
    let verified = t.login_fn(TestCall::new("GET", &link).cookie(Some(&cookie))).await;
    assert_eq!(verified.status, 200, "{}", verified.raw_body);
    assert_taken(&t.register("Ann", &email, PW).await, "after verifying");
}

#[tokio::test]
async fn a_retry_after_the_credentials_moved_on_is_told_the_address_is_taken() {
    let t = TestApp::memory(&[]);
    // "Log out other devices": the password is the same, the credentials version moved on.
    let (ann, cookie) = registered_user(&t, "ann").await;
    let c = TestCall::new("POST", "/logout-other-devices").cookie(Some(&cookie)).json(json!({ "password": PW }));
    assert_eq!(t.login_fn(c).await.status, 204);
    assert_taken(&t.register("Ann", &ann, PW).await, "after logging out other devices");

    // A password change: neither the old password nor the new one finishes a registration.
    let (bob, cookie) = registered_user(&t, "bob").await;
    let body = json!({ "current_password": PW, "password": NEW_PW, "password_confirmation": NEW_PW });
    let changed = t.login_fn(TestCall::new("PUT", "/user/password").cookie(Some(&cookie)).json(body)).await;
    assert_eq!(changed.status, 204, "{}", changed.raw_body);
    assert_taken(&t.register("Ann", &bob, PW).await, "the old password after a change");
    assert_taken(&t.register("Ann", &bob, NEW_PW).await, "the new password after a change");
}

#[tokio::test]
async fn a_retry_after_a_second_factor_was_begun_or_the_account_disabled_is_told_it_is_taken() {
    let t = TestApp::memory(&[]);
    // Two-factor enrolment begun (not even confirmed yet): the account is no longer as
    // registration left it.
    let ann = unique("ann");
    let cookie = t.signed_up(&ann).await;
    let begun = t.login_fn(TestCall::new("POST", "/user/two-factor-authentication").cookie(Some(&cookie))).await;
    assert_eq!(begun.status, 200, "{}", begun.raw_body);
    assert_taken(&t.register("Ann", &ann, PW).await, "with a second factor begun");

    // Disabled by an operator, whether or not its credentials version moved.
    let (bob, _) = registered_user(&t, "bob").await;
    let address = gatehouse::Email::parse(&bob).expect("an address");
    let user = t.env.stores.users.find_by_email(&address).await.expect("read").expect("bob");
    let disable = CredentialChange { disable: Some(true), ..CredentialChange::default() };
    let now = t.env.clock_now();
    t.env.stores.users.change_credentials(&user.id, user.credentials_version, disable, now).await.expect("disable");
    assert_taken(&t.register("Ann", &bob, PW).await, "a disabled account");
}

/// An address moved onto an account (an email change confirmed within the window) is not that
/// account's registration: registering it with the account's name and password is refused.
#[tokio::test]
async fn an_address_moved_onto_a_young_account_is_not_its_registration() {
    let t = TestApp::memory(&[]);
    let (old, new) = (unique("ann"), unique("ann.new"));
    let cookie = t.signed_up(&old).await;
    mails(&t).await;
    let asked =
        t.login_fn(TestCall::new("POST", "/user/email").cookie(Some(&cookie)).json(json!({ "email": new }))).await;
    assert_eq!(asked.status, 202, "{}", asked.raw_body);
    let sent = mails(&t).await;
    let mail = sent.iter().find(|m| m.to == new && m.subject == "Confirm your new email address").expect("a mail");
    let url = mail.text.split_whitespace().find(|w| w.contains("/user/email/confirm/")).expect("a link");
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let link = &rest[rest.find('/').expect("a path")..];
    let done = t.login_fn(TestCall::new("GET", link).cookie(Some(&cookie))).await;
    assert_eq!(done.status, 200, "{}", done.raw_body);
    assert_taken(&t.register("Ann", &new, PW).await, "the address moved onto the account");
}

/// Guessing a fresh account's password through /register costs what guessing it through /login
/// does: the guesses count against the login's per-account limit (and the other way round), from
/// whichever clients they come, and past it even the right password gets 429, as at /login.
#[tokio::test]
async fn wrong_password_retries_meet_the_logins_per_account_limit() {
    let t = TestApp::memory(&[("GATEHOUSE_LOGIN_PER_ACCOUNT_PER_HOUR", "3")]);
    let email = unique("ann");
    assert_eq!(t.register("Ann", &email, PW).await.status, 201);
    let guess = |i: usize, password: &str| {
        let call = register_call("Ann", &email, password).from_ip(&format!("198.51.100.{}", 10 + i));
        t.login_fn(call)
    };
    for i in 0..3 {
        assert_taken(&guess(i, &format!("guessing the passphrase no {i}")).await, "a wrong guess");
    }
    let right = guess(3, PW).await;
    assert_eq!((right.status, right.error_code()), (429, Some("too_many_requests")), "{}", right.raw_body);
    assert!(right.session_cookie().is_none());
    let login = t.login_fn(TestCall::new("POST", "/login").from_ip("192.0.2.99").json(json!({
        "email": email, "password": PW
    })));
    assert_eq!(login.await.status, 429, "the same counter as /login's");

    // And /login's failures count against a registration's retry.
    let other = unique("bob");
    assert_eq!(t.register("Bob", &other, PW).await.status, 201);
    for i in 0..3 {
        let wrong = TestCall::new("POST", "/login")
            .from_ip(&format!("192.0.2.{}", 10 + i))
            .json(json!({ "email": other, "password": "not the right passphrase" }));
        assert_eq!(t.login_fn(wrong).await.status, 422);
    }
    let retry = t.login_fn(register_call("Bob", &other, PW).from_ip("192.0.2.50")).await;
    assert_eq!(retry.status, 429, "{}", retry.raw_body);
}
