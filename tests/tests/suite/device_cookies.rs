//! Issue #28, point 3: device cookies hoarded from earlier sign-ins. A device cookie is bound to
//! the user and its credentials version and listed on the account (at most 20): after a reset, a
//! password change or "log out other devices" a hoarded cookie is an unknown device again, held
//! to the account's unknown-device limit before any hash; a known device still meets the
//! account's known-device ceiling; and the owner's current device still signs in through a flood.

use gatehouse::mail::LogMailer;
use gatehouse_tests::http::{TestApp, TestCall, TestReply};
use gatehouse_tests::jobs::drain;
use serde_json::json;
use std::sync::Arc;

const PW: &str = "correct horse battery staple 42";
const NEW_PW: &str = "an entirely new passphrase 2026";
const EMAIL: &str = "ann@example.com";

fn login(password: &str, ip: &str, device: Option<&str>) -> TestCall {
    TestCall::new("POST", "/login").from_ip(ip).cookie(device).json(json!({ "email": EMAIL, "password": password }))
}

/// `name=value` of the device cookie `r` sets, if any.
fn device_cookie(t: &TestApp, r: &TestReply) -> Option<String> {
    let name = format!("{}=", gatehouse_http::device_cookie_name(&t.app.config.session));
    r.set_cookies()
        .into_iter()
        .find(|c| c.starts_with(&name))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

/// Moves the clock to just past the next hour's start: the hourly windows are fresh and the
/// test's minutes stay inside one of them.
fn next_hour(t: &TestApp) {
    let now = gatehouse::values::clock::epoch_seconds(gatehouse::values::clock::Clock::now(&t.env.clock));
    t.env.clock.advance(chrono::Duration::seconds(3600 - now.rem_euclid(3600) + 1));
}

/// An app letting an account sign in from `per_hour` unknown devices an hour, its clock at the
/// start of an hour, and Ann registered.
async fn ann_registered(per_hour: &str) -> TestApp {
    let t = TestApp::memory(&[("GATEHOUSE_LOGIN_PER_ACCOUNT_PER_HOUR", per_hour)]);
    next_hour(&t);
    assert_eq!(t.register("Ann", EMAIL, PW).await.status, 201);
    t
}

/// Three sign-ins from three addresses: the three device cookies they were given, and the last
/// session cookie.
async fn hoard(t: &TestApp) -> (Vec<String>, String) {
    let mut cookies = Vec::new();
    let mut session = String::new();
    for i in 1..=3 {
        let r = t.login_fn(login(PW, &format!("203.0.113.{i}"), None)).await;
        assert_eq!(r.status, 200, "{}", r.raw_body);
        cookies.push(device_cookie(t, &r).expect("a device cookie at sign-in"));
        session = r.session_cookie().expect("a session");
    }
    (cookies, session)
}

/// Nine wrong guesses from nine new addresses, each carrying one of `cookies` in turn: their
/// statuses.
async fn guesses(t: &TestApp, cookies: &[String]) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..9 {
        let call =
            login("not the password at all", &format!("198.51.100.{}", i + 1), Some(&cookies[i % cookies.len()]));
        statuses.push(t.login_fn(call).await.status);
    }
    statuses
}

fn known_devices(r: &TestReply) -> u64 {
    r.body["known_devices"].as_u64().expect("known_devices beside the sessions")
}

/// The reproduced attack: with an account limit of 3 an hour, three sign-ins collected three
/// device cookies; after the owner's reset, 9 wrong guesses from new addresses carrying them were
/// all judged (422). Now the hoarded cookies are unknown devices: 3 judged, then 429.
#[tokio::test]
async fn cookies_hoarded_before_a_reset_are_unknown_devices_after_it() {
    let t = ann_registered("3").await;
    let (hoarded, _) = hoard(&t).await;
    // An hour on: the account's unknown-device window is empty again.
    next_hour(&t);
    // The owner resets through the mailed link.
    let forgot = TestCall::new("POST", "/forgot-password").json(json!({ "email": EMAIL }));
    assert_eq!(t.reset_fn(forgot).await.status, 202);
    let mailer = LogMailer::quiet();
    drain(&t.worker(Arc::new(mailer.clone())), 10).await;
    let sent = mailer.sent();
    let mail = sent.iter().find(|m| m.subject != "Verify your email address").expect("the reset mail");
    let at = mail.text.find("token=").expect("a link") + 6;
    let token = &mail.text[at..at + 64];
    let body = json!({ "email": EMAIL, "token": token, "password": NEW_PW, "password_confirmation": NEW_PW });
    assert_eq!(t.reset_fn(TestCall::new("POST", "/reset-password").json(body)).await.status, 200);

    let statuses = guesses(&t, &hoarded).await;
    assert_eq!(statuses, [422, 422, 422, 429, 429, 429, 429, 429, 429], "the unknown-device limit, then refused");
    // Even the right password: a hoarded cookie is no pass past the account's limit.
    let r = t.login_fn(login(NEW_PW, "198.51.100.77", Some(&hoarded[0]))).await;
    assert_eq!(r.status, 429, "{}", r.raw_body);
    let wait: u64 = r.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!(wait <= 3600, "{wait}");
}

/// A password change and "log out other devices" void the cookies as a reset does, and the
/// account forgets its devices (`GET /sessions` counts them).
#[tokio::test]
async fn a_password_change_or_logging_out_other_devices_voids_the_hoarded_cookies() {
    for change in ["PUT /user/password", "POST /logout-other-devices"] {
        let t = ann_registered("3").await;
        let (hoarded, session) = hoard(&t).await;
        let sessions = t.login_fn(TestCall::new("GET", "/sessions").cookie(Some(&session))).await;
        assert_eq!(known_devices(&sessions), 3, "{change}: {}", sessions.raw_body);
        next_hour(&t);
        let (method, path) = change.split_once(' ').unwrap_or_default();
        let body = match method {
            "PUT" => json!({ "current_password": PW, "password": NEW_PW, "password_confirmation": NEW_PW }),
            _ => json!({ "password": PW }),
        };
        let r = t.login_fn(TestCall::new(method, path).cookie(Some(&session)).json(body)).await;
        assert_eq!(r.status, 204, "{change}: {}", r.raw_body);
        let session = r.session_cookie().expect("the session continues under a new id");
        let sessions = t.login_fn(TestCall::new("GET", "/sessions").cookie(Some(&session))).await;
        assert_eq!(known_devices(&sessions), 0, "{change}: {}", sessions.raw_body);
        let statuses = guesses(&t, &hoarded).await;
        assert_eq!(statuses, [422, 422, 422, 429, 429, 429, 429, 429, 429], "{change}");
    }
}

/// A known device is not held to the unknown-device limit, but to the account's known-device
/// ceiling: wrong guesses with one valid current cookie from many addresses (within the
/// per-device limit of 10 a minute) end in 429 at the ceiling.
#[tokio::test]
async fn a_known_device_still_meets_the_accounts_ceiling() {
    let t = TestApp::memory(&[
        ("GATEHOUSE_LOGIN_PER_ACCOUNT_PER_HOUR", "3"),
        ("GATEHOUSE_LOGIN_KNOWN_DEVICES_PER_ACCOUNT_PER_HOUR", "12"),
    ]);
    next_hour(&t);
    assert_eq!(t.register("Ann", EMAIL, PW).await.status, 201);
    let first = t.login_fn(login(PW, "203.0.113.1", None)).await;
    let device = device_cookie(&t, &first).expect("a device cookie");
    let mut statuses = Vec::new();
    for i in 0..24 {
        if i > 0 && i % 8 == 0 {
            // A new minute: the per-device and per-(email, client) limits never bind.
            t.env.clock.advance(chrono::Duration::seconds(61));
        }
        let call = login("not the password at all", &format!("198.51.100.{}", i + 1), Some(&device));
        statuses.push(t.login_fn(call).await.status);
    }
    assert_eq!(statuses[..12], [422; 12], "judged beyond the unknown-device limit of 3: {statuses:?}");
    assert_eq!(statuses[12..], [429; 12], "refused at the ceiling of 12: {statuses:?}");
}

/// The owner's current device cookie still signs in while a flood from elsewhere (no cookie, or
/// hoarded cookies a reset voided) has exhausted the account's unknown-device limit; a new
/// device waits.
#[tokio::test]
async fn the_owners_current_device_signs_in_through_a_flood() {
    let t = ann_registered("3").await;
    let first = t.login_fn(login(PW, "203.0.113.1", None)).await;
    assert_eq!(first.status, 200);
    let device = device_cookie(&t, &first).expect("a device cookie");
    for i in 0..10 {
        let r = t.login_fn(login("not the password at all", &format!("10.1.0.{}", i + 1), None)).await;
        assert!(matches!(r.status, 422 | 429), "{}", r.raw_body);
    }
    assert_eq!(t.login_fn(login(PW, "203.0.113.9", None)).await.status, 429, "a new device waits");
    let owner = t.login_fn(login(PW, "203.0.113.10", Some(&device))).await;
    assert_eq!(owner.status, 200, "{}", owner.raw_body);
    assert_eq!(device_cookie(&t, &owner), None, "a known device keeps its cookie");
    let sessions = t.login_fn(TestCall::new("GET", "/sessions").cookie(owner.session_cookie().as_deref())).await;
    assert_eq!(known_devices(&sessions), 1);
}

/// The account lists at most 20 devices: the 21st sign-in's device evicts the oldest, whose
/// cookie is then an unknown device's.
#[tokio::test]
async fn the_account_lists_twenty_devices_and_the_oldest_goes_first() {
    let t = ann_registered("21").await;
    let mut cookies = Vec::new();
    let mut session = None;
    for i in 0..21 {
        let r = t.login_fn(login(PW, &format!("203.0.113.{}", i + 1), None)).await;
        assert_eq!(r.status, 200, "{}", r.raw_body);
        cookies.push(device_cookie(&t, &r).expect("a device cookie"));
        session = r.session_cookie();
        t.env.clock.advance(chrono::Duration::milliseconds(5));
    }
    let sessions = t.login_fn(TestCall::new("GET", "/sessions").cookie(session.as_deref())).await;
    assert_eq!(known_devices(&sessions), 20);
    // The account's unknown-device limit is spent (21 sign-ins without a cookie).
    let oldest = t.login_fn(login(PW, "198.51.100.1", Some(&cookies[0]))).await;
    assert_eq!(oldest.status, 429, "evicted: an unknown device");
    let second = t.login_fn(login(PW, "198.51.100.2", Some(&cookies[1]))).await;
    assert_eq!(second.status, 200, "{}", second.raw_body);
}

/// Hoarded cookies voided by a reset are unknown devices and only that: a flood carrying them
/// fills the unknown-device limit, never the known-device ceiling, so the owner's device given
/// after the reset still signs in (counted as known first, 20 such guesses would have filled a
/// ceiling of 12 and locked it out).
#[tokio::test]
async fn voided_cookies_cannot_fill_the_known_device_ceiling() {
    let t = ann_registered("3").await;
    let (hoarded, session) = hoard(&t).await;
    next_hour(&t);
    // The owner takes the account back ("log out other devices") and keeps signing in from one
    // device of their own, given after the change.
    let lod = TestCall::new("POST", "/logout-other-devices").cookie(Some(&session)).json(json!({ "password": PW }));
    assert_eq!(t.login_fn(lod).await.status, 204);
    let own = t.login_fn(login(PW, "192.0.2.10", None)).await;
    assert_eq!(own.status, 200, "{}", own.raw_body);
    let own = device_cookie(&t, &own).expect("the owner's device cookie");
    for i in 0..20 {
        let call = login("not the password at all", &format!("198.51.100.{}", i + 1), Some(&hoarded[i % 3]));
        let status = t.login_fn(call).await.status;
        assert!(status == 422 || status == 429, "{status}");
    }
    let r = t.login_fn(login(PW, "192.0.2.10", Some(&own))).await;
    assert_eq!(r.status, 200, "the owner's own device signs in through the flood: {}", r.raw_body);
}
