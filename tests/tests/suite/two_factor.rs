//! Two-factor authentication (TOTP and recovery codes) over real-shaped events, stores on the
//! emulator unless a test says otherwise: enrolment, the sign-in challenge for sessions and
//! tokens, replay and concurrency, and that a reset does not get around it.

use crate::support::{mails_with_notices, unique};
use gatehouse::mail::LogMailer;
use gatehouse_tests::http::{TestApp, TestCall, TestReply};
use gatehouse_tests::jobs::drain;
use serde_json::{Value, json};
use std::sync::Arc;

const PW: &str = "correct horse battery staple 42";
const NEW_PW: &str = "a brand new and long passphrase 7";

/// The owner of `email` asks for a reset link and sets NEW_PW with it (the mails before are
/// dropped).
async fn reset_through_the_mail(t: &TestApp, email: &str) {
    mails_with_notices(t).await;
    t.reset_fn(TestCall::new("POST", "/forgot-password").json(json!({ "email": email }))).await;
    let sent = mails_with_notices(t).await;
    let mail = sent.iter().find(|m| m.subject == "Reset your password").expect("a reset mail");
    let i = mail.text.find("token=").unwrap() + 6;
    let reset = TestCall::new("POST", "/reset-password").json(
        json!({"email": email, "token": &mail.text[i..i + 64], "password": NEW_PW, "password_confirmation": NEW_PW}),
    );
    assert_eq!(t.reset_fn(reset).await.status, 200);
}

async fn login(t: &TestApp, email: &str, password: &str) -> TestReply {
    t.login(email, password).await
}

async fn answer(t: &TestApp, challenge: &Value, body: Value) -> TestReply {
    let mut body = body;
    body["challenge"] = challenge.clone();
    t.login_fn(TestCall::new("POST", "/two-factor-challenge").json(body)).await
}

#[tokio::test]
async fn enrolment_is_pending_until_a_code_confirms_it_and_the_secret_is_stored_sealed() {
    let t = TestApp::aws(&[]).await;
    let email = unique("ann");
    let cookie = t.signed_up(&email).await;
    let e = t.login_fn(TestCall::new("POST", "/user/two-factor-authentication").cookie(Some(&cookie))).await;
    assert_eq!(e.status, 200, "{}", e.raw_body);
    let secret = e.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 32, "160 bits in base32: {secret}");
    let url = e.body["otpauth_url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/") && url.contains(&format!("secret={secret}")), "{url}");
    assert!(e.body["qr_svg"].as_str().unwrap().contains("<svg"));
    // Pending: a password alone still signs in, and GET /user says off.
    assert_eq!(login(&t, &email, PW).await.status, 200);
    assert_eq!(t.user(Some(&cookie)).await.body["user"]["two_factor_enabled"], false);
    let scan = every_user_item(&t).await;
    assert!(scan.iter().any(|i| i.contains("tf_secret")), "the sealed secret is stored");
    let raw = totp_bytes(&secret);
    for form in [secret.clone(), hex::encode(&raw), base64_of(&raw)] {
        assert!(scan.iter().all(|i| !i.contains(&form)), "never the secret itself, in any encoding: {form}");
    }

    let confirm = |code: &str| {
        TestCall::new("POST", "/user/confirmed-two-factor-authentication")
            .cookie(Some(&cookie))
            .json(json!({ "code": code }))
    };
    for bad in ["000000", "12345", "abcdef", ""] {
        let r = t.login_fn(confirm(bad)).await;
        assert_eq!(r.status, 422, "{bad:?}: {}", r.raw_body);
    }
    let ok = t.login_fn(confirm(&t.totp(&secret))).await;
    assert_eq!(ok.status, 200, "{}", ok.raw_body);
    let codes = ok.body["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let cookie = ok.session_cookie().expect("this session goes on under a new cookie");
    assert_eq!(t.user(Some(&cookie)).await.body["user"]["two_factor_enabled"], true);
    let again = t.login_fn(TestCall::new("POST", "/user/two-factor-authentication").cookie(Some(&cookie))).await;
    assert_eq!((again.status, again.error_code()), (409, Some("two_factor_enabled")));
    let scan = every_user_item(&t).await;
    for c in codes {
        let c = c.as_str().unwrap();
        for form in [c.to_owned(), c.replace('-', ""), gatehouse::values::secret::sha256_hex(c.replace('-', ""))] {
            assert!(scan.iter().all(|i| !i.contains(&form)), "recovery codes are stored keyed-hashed: {form}");
        }
    }
    let sent = mails_with_notices(&t).await;
    assert!(sent.iter().any(|m| m.to == email && m.subject == "Two-factor authentication was turned on"));
}

/// On the emulator, a user at a unique address enrolled in two-factor, and the clock a time step
/// on (the code that confirmed the enrolment was used: the next one signs in): the app, the
/// address and the secret.
async fn enrolled_and_a_step_on() -> (TestApp, String, String) {
    let t = TestApp::aws(&[]).await;
    let email = unique("ann");
    let (_, secret, _) = t.enrolled(&email).await;
    t.env.clock.advance(chrono::Duration::seconds(30));
    (t, email, secret)
}

#[tokio::test]
async fn a_password_alone_gets_a_challenge_and_a_code_completes_it_once() {
    let (t, email, secret) = enrolled_and_a_step_on().await;
    let first = login(&t, &email, PW).await;
    assert_eq!(first.status, 202, "{}", first.raw_body);
    assert_eq!(first.body["two_factor"], true);
    assert!(first.set_cookies().is_empty(), "no session, no device cookie yet: {:?}", first.set_cookies());
    assert_eq!(login(&t, &email, "wrong").await.status, 422, "a wrong password is still just wrong");
    let challenge = first.body["challenge"].clone();

    // Bad input: a field named, never a 5xx.
    for (body, field) in [
        (json!({}), "code"),
        (json!({"code": "123456", "recovery_code": "abcde-fghij"}), "code"),
        (json!({"code": "000000"}), "code"),
    ] {
        let r = answer(&t, &challenge, body).await;
        assert_eq!(r.status, 422, "{}", r.raw_body);
        assert!(r.body["error"]["fields"][field].is_array(), "{}", r.raw_body);
    }
    let r = answer(&t, &json!("garbage"), json!({"code": t.totp(&secret)})).await;
    assert!(r.body["error"]["fields"]["challenge"].is_array(), "{}", r.raw_body);
    let from_elsewhere = TestCall::new("POST", "/two-factor-challenge")
        .from_ip("198.51.100.77")
        .json(json!({"challenge": challenge, "code": t.totp(&secret)}));
    let r = t.login_fn(from_elsewhere).await;
    assert!(r.body["error"]["fields"]["challenge"].is_array(), "bound to the client: {}", r.raw_body);

    let ok = answer(&t, &challenge, json!({"code": t.totp(&secret)})).await;
    assert_eq!(ok.status, 200, "{}", ok.raw_body);
    let cookie = ok.session_cookie().expect("a session at last");
    assert!(ok.set_cookies().iter().any(|c| c.contains("_device=")), "and this device becomes known");
    // (Not `mails_with_notices`: the clock stays, for the replay of this time step below. The
    // notice of a wrong code is sent at once: it announces no change of the account.)
    let mailer = LogMailer::quiet();
    drain(&t.worker(Arc::new(mailer.clone())), 10).await;
    let told = mailer.sent();
    assert_eq!(
        told.iter().filter(|m| m.to == email && m.subject.contains("wrong second factor")).count(),
        1,
        "a right password with a wrong code is told once per challenge"
    );
    assert_eq!(t.user(Some(&cookie)).await.body["user"]["email"], email);
    let used = answer(&t, &challenge, json!({"code": t.totp(&secret)})).await;
    assert_eq!(used.status, 422, "a challenge is used once");

    // The same code on a fresh challenge: its time step was used.
    let second = login(&t, &email, PW).await.body["challenge"].clone();
    let replay = answer(&t, &second, json!({"code": t.totp(&secret)})).await;
    assert!(replay.body["error"]["fields"]["code"].is_array(), "{}", replay.raw_body);
    t.env.clock.advance(chrono::Duration::seconds(30));
    assert_eq!(answer(&t, &second, json!({"code": t.totp(&secret)})).await.status, 200, "the next code works");
}

#[tokio::test]
async fn two_concurrent_uses_of_one_code_sign_in_once() {
    let (t, email, secret) = enrolled_and_a_step_on().await;
    let (a, b) = (login(&t, &email, PW).await, login(&t, &email, PW).await);
    let c = t.totp(&secret);
    let (ra, rb) = tokio::join!(
        answer(&t, &a.body["challenge"], json!({ "code": c })),
        answer(&t, &b.body["challenge"], json!({ "code": c }))
    );
    let mut statuses = [ra.status, rb.status];
    statuses.sort();
    assert_eq!(statuses, [200, 422], "{} / {}", ra.raw_body, rb.raw_body);
}

#[tokio::test]
async fn a_recovery_code_signs_in_once_and_the_owner_is_told() {
    let t = TestApp::aws(&[]).await;
    let email = unique("ann");
    let (_, _, codes) = t.enrolled(&email).await;
    mails_with_notices(&t).await;
    let challenge = login(&t, &email, PW).await.body["challenge"].clone();
    let typed = codes[0].to_uppercase().replace('-', " ");
    let ok = answer(&t, &challenge, json!({ "recovery_code": typed })).await;
    assert_eq!(ok.status, 200, "{}", ok.raw_body);
    let again = login(&t, &email, PW).await.body["challenge"].clone();
    let r = answer(&t, &again, json!({ "recovery_code": codes[0] })).await;
    assert_eq!(r.status, 422, "used once: {}", r.raw_body);
    assert_eq!(answer(&t, &again, json!({ "recovery_code": codes[1] })).await.status, 200);
    let sent = mails_with_notices(&t).await;
    assert_eq!(sent.iter().filter(|m| m.to == email && m.subject == "A recovery code was used").count(), 2);
}

#[tokio::test]
async fn tokens_issued_for_a_password_need_the_second_factor_too() {
    let (t, email, secret) = enrolled_and_a_step_on().await;
    let issue = TestCall::new("POST", "/tokens/issue").json(json!({
        "email": email, "password": PW, "device_name": "cli", "abilities": ["tokens:read"], "expires_in_minutes": 60
    }));
    let r = t.tokens_fn(issue).await;
    assert_eq!(r.status, 202, "{}", r.raw_body);
    assert!(r.body.get("token").is_none(), "nothing issued on a password alone");
    let done = answer(&t, &r.body["challenge"], json!({"code": t.totp(&secret)})).await;
    assert_eq!(done.status, 201, "{}", done.raw_body);
    assert_eq!(done.body["abilities"], json!(["tokens:read"]));
    assert_eq!(done.body["name"], "cli");
    let token = done.body["token"].as_str().unwrap();
    assert_eq!(t.login_fn(TestCall::new("GET", "/user").bearer(token)).await.status, 200);
}

#[tokio::test]
async fn a_password_reset_neither_bypasses_the_second_factor_nor_leaves_a_challenge_usable() {
    let t = TestApp::aws(&[]).await;
    let email = unique("ann");
    let (cookie, secret, _) = t.enrolled(&email).await;
    // A verified owner's factor (a never-verified account's goes with a reset: the next test).
    let sent = mails_with_notices(&t).await;
    let verify = sent.iter().find(|m| m.subject.contains("Verify")).expect("the verification mail");
    let url = verify.text.split_whitespace().find(|w| w.contains("/account/verify-email/")).unwrap();
    let path =
        url[url.find("/account/verify-email/").unwrap()..].replacen("/account/verify-email/", "/email/verify/", 1);
    assert_eq!(t.login_fn(TestCall::new("GET", &path).cookie(Some(&cookie))).await.status, 200);
    let stale = login(&t, &email, PW).await.body["challenge"].clone();
    reset_through_the_mail(&t, &email).await;
    t.env.clock.advance(chrono::Duration::seconds(30));
    let r = answer(&t, &stale, json!({"code": t.totp(&secret)})).await;
    assert!(r.body["error"]["fields"]["challenge"].is_array(), "the password changed since: {}", r.raw_body);
    let after = login(&t, &email, NEW_PW).await;
    assert_eq!(after.status, 202, "still two factors after a reset: {}", after.raw_body);
    assert_eq!(answer(&t, &after.body["challenge"], json!({"code": t.totp(&secret)})).await.status, 200);
}

/// Whoever registered an address first (never verifying it) and turned a second factor on
/// cannot lock the address's owner out: the owner's reset clears every factor of a never-verified
/// account in the password's own write (issue #28).
#[tokio::test]
async fn a_reset_of_a_never_verified_account_clears_the_second_factor_a_squatter_set() {
    let t = TestApp::memory(&[]);
    let email = unique("owner");
    t.enrolled(&email).await;
    assert_eq!(login(&t, &email, PW).await.status, 202, "the squatter's factor is on");
    reset_through_the_mail(&t, &email).await;
    let after = login(&t, &email, NEW_PW).await;
    assert_eq!(after.status, 200, "the owner signs in with the password alone: {}", after.raw_body);
    let cookie = after.session_cookie().unwrap();
    assert_eq!(t.user(Some(&cookie)).await.body["user"]["two_factor_enabled"], false);
}

#[tokio::test]
async fn turning_it_off_or_new_recovery_codes_need_a_recent_confirmation() {
    let t = TestApp::memory(&[("GATEHOUSE_PASSWORD_TIMEOUT_SECONDS", "60")]);
    let (cookie, _, old_codes) = t.enrolled("ann@example.com").await;
    t.env.advance(std::time::Duration::from_secs(61)).await;
    for (m, p) in [("POST", "/user/two-factor-recovery-codes"), ("DELETE", "/user/two-factor-authentication")] {
        let r = t.login_fn(TestCall::new(m, p).cookie(Some(&cookie))).await;
        assert_eq!((r.status, r.error_code()), (423, Some("password_confirmation_required")), "{p}");
    }
    let confirm = TestCall::new("POST", "/user/confirm-password").cookie(Some(&cookie)).json(json!({"password": PW}));
    assert_eq!(t.login_fn(confirm).await.status, 204);
    let fresh = t.login_fn(TestCall::new("POST", "/user/two-factor-recovery-codes").cookie(Some(&cookie))).await;
    assert_eq!(fresh.status, 200, "{}", fresh.raw_body);
    let fresh: Vec<String> =
        fresh.body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    let challenge = t.login("ann@example.com", PW).await.body["challenge"].clone();
    let old = answer(&t, &challenge, json!({ "recovery_code": old_codes[0] })).await;
    assert_eq!(old.status, 422, "the old codes stopped working");
    assert_eq!(answer(&t, &challenge, json!({ "recovery_code": fresh[0] })).await.status, 200);
    let off = t.login_fn(TestCall::new("DELETE", "/user/two-factor-authentication").cookie(Some(&cookie))).await;
    assert_eq!(off.status, 204, "{}", off.raw_body);
    assert_eq!(t.login("ann@example.com", PW).await.status, 200, "a password alone again");
    let sent = mails_with_notices(&t).await;
    for subject in ["New recovery codes", "Two-factor authentication was turned off"] {
        assert!(sent.iter().any(|m| m.subject == subject), "{subject}");
    }
}

#[tokio::test]
async fn a_challenge_takes_five_attempts_then_answers_429() {
    let t = TestApp::memory(&[]);
    let (_, secret, _) = t.enrolled("ann@example.com").await;
    // Past the minute in which the enrolment's code was counted.
    t.env.advance(std::time::Duration::from_secs(61)).await;
    let challenge = t.login("ann@example.com", PW).await.body["challenge"].clone();
    for _ in 0..5 {
        assert_eq!(answer(&t, &challenge, json!({"code": "000000"})).await.status, 422);
    }
    t.env.advance(std::time::Duration::from_secs(30)).await;
    let r = answer(&t, &challenge, json!({"code": t.totp(&secret)})).await;
    assert_eq!(r.status, 429, "counted before the check: {}", r.raw_body);
    assert!(r.header("retry-after").is_some());
    // A challenge lasts five minutes.
    let late = t.login("ann@example.com", PW).await.body["challenge"].clone();
    t.env.advance(std::time::Duration::from_secs(301)).await;
    let r = answer(&t, &late, json!({"code": t.totp(&secret)})).await;
    assert!(r.body["error"]["fields"]["challenge"].is_array(), "expired: {}", r.raw_body);
}

/// Every item of the test's users table, as text.
async fn every_user_item(t: &TestApp) -> Vec<String> {
    gatehouse_tests::scan_items(&t.env, Some("users")).await
}

#[tokio::test]
async fn a_password_holder_guessing_codes_elsewhere_does_not_lock_the_owner_out() {
    let t = TestApp::aws(&[]).await;
    let email = unique("ann");
    let (cookie, secret, _) = t.enrolled(&email).await;
    let from = |ip: &str| TestCall::new("POST", "/login").from_ip(ip).json(json!({"email": email, "password": PW}));
    let guess = |ip: &str, challenge: &Value| {
        TestCall::new("POST", "/two-factor-challenge")
            .from_ip(ip)
            .json(json!({"challenge": challenge, "code": "000000"}))
    };
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let challenge = t.login_fn(from("203.0.113.66")).await.body["challenge"].clone();
        for _ in 0..3 {
            statuses.push(t.login_fn(guess("203.0.113.66", &challenge)).await.status);
        }
    }
    assert_eq!(statuses, [422, 422, 422, 422, 422, 429], "5 a minute per (user, client)");
    t.env.clock.advance(chrono::Duration::seconds(30));
    let mine = t.login_fn(from("198.51.100.7")).await.body["challenge"].clone();
    let c = TestCall::new("POST", "/two-factor-challenge")
        .from_ip("198.51.100.7")
        .json(json!({"challenge": mine, "code": t.totp(&secret)}));
    assert_eq!(t.login_fn(c).await.status, 200, "the owner's own client still signs in");

    // A password change voids a challenge made before it.
    let stale = t.login_fn(from("198.51.100.7")).await.body["challenge"].clone();
    let change = TestCall::new("PUT", "/user/password")
        .cookie(Some(&cookie))
        .json(json!({"current_password": PW, "password": NEW_PW, "password_confirmation": NEW_PW}));
    assert_eq!(t.login_fn(change).await.status, 204);
    t.env.clock.advance(chrono::Duration::seconds(30));
    let c = TestCall::new("POST", "/two-factor-challenge")
        .from_ip("198.51.100.7")
        .json(json!({"challenge": stale, "code": t.totp(&secret)}));
    let r = t.login_fn(c).await;
    assert!(r.body["error"]["fields"]["challenge"].is_array(), "{}", r.raw_body);
}

fn totp_bytes(secret: &str) -> Vec<u8> {
    let mut bits = 0u64;
    let (mut n, mut out) = (0, Vec::new());
    for c in secret.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => continue,
        };
        bits = (bits << 5) | u64::from(v);
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// Turning two-factor on ends what a password alone had issued: another device's session and a
/// token made before are refused at once; the enrolling browser goes on under a new cookie (its
/// old one is refused too).
#[tokio::test]
async fn turning_it_on_signs_out_every_credential_issued_on_a_password_alone() {
    let t = TestApp::aws(&[]).await;
    let email = unique("ann");
    let cookie = t.signed_up(&email).await;
    let other_device = login(&t, &email, PW).await.session_cookie().unwrap();
    let token = t.create_token(&cookie, json!({"name": "ci"})).await;
    let token = token.body["token"].as_str().unwrap().to_owned();
    let e = t.login_fn(TestCall::new("POST", "/user/two-factor-authentication").cookie(Some(&cookie))).await;
    let secret = e.body["secret"].as_str().unwrap().to_owned();
    let c = TestCall::new("POST", "/user/confirmed-two-factor-authentication")
        .cookie(Some(&cookie))
        .json(json!({ "code": t.totp(&secret) }));
    let confirmed = t.login_fn(c).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.raw_body);
    let rotated = confirmed.session_cookie().expect("a new cookie for this browser");
    assert_ne!(rotated, cookie);
    assert_eq!(t.user(Some(&other_device)).await.status, 401, "the other device's session ended");
    assert_eq!(t.login_fn(TestCall::new("GET", "/user").bearer(&token)).await.status, 401, "the token ended");
    assert_eq!(t.user(Some(&cookie)).await.status, 401, "the old cookie ended");
    let me = t.user(Some(&rotated)).await;
    assert_eq!((me.status, me.body["user"]["two_factor_enabled"].as_bool()), (200, Some(true)));
}
