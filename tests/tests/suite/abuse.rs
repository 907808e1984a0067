//! Abuse resistance (issue #12), tried as an attacker would on the emulator: concurrent attempts
//! against every limited route let at most the limit reach the expensive work, registration
//! cannot enumerate beyond its limit, and a flood against an account cannot lock its owner out.

use gatehouse_tests::http::{SESSION_COOKIE, TestApp, TestCall, TestReply};
use serde_json::{Value, json};
use std::sync::Arc;

const PW: &str = "correct horse battery staple 42";
const FAST: &[(&str, &str)] = &[("GATEHOUSE_ARGON2_MEMORY_KIB", "64"), ("GATEHOUSE_ARGON2_ITERATIONS", "1")];

/// Sends `n` copies of a call at once; returns how many were not refused with 429 (so reached
/// the work behind the limit), after checking every 429 carries `Retry-After` and the error JSON.
async fn concurrently(t: &Arc<TestApp>, n: usize, call: impl Fn(usize) -> (TestCall, Route)) -> Passed {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (t, (call, route)) = (t.clone(), call(i));
            tokio::spawn(async move { route.send(&t, call).await })
        })
        .collect();
    let mut passed = Passed(Vec::new());
    for task in tasks {
        let r = task.await.unwrap();
        if r.status == 429 {
            assert_eq!(r.error_code(), Some("too_many_requests"), "{}", r.raw_body);
            let wait: u64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
            assert!((1..=3600).contains(&wait), "{wait}");
        } else {
            passed.0.push((r.status, r.error_code().unwrap_or("").to_owned()));
        }
    }
    passed
}

/// The answers that were not 429: (status, error code).
#[derive(Debug)]
struct Passed(Vec<(u16, String)>);

impl Passed {
    fn at_most(&self, max: usize, what: &str) {
        assert!(self.0.len() <= max, "{what}: {} passed the limit of {max}: {:?}", self.0.len(), self.0);
    }
}

#[derive(Clone, Copy)]
enum Route {
    Login,
    Tokens,
    Reset,
}

impl Route {
    async fn send(self, t: &TestApp, call: TestCall) -> TestReply {
        match self {
            Route::Login => t.login_fn(call).await,
            Route::Tokens => t.tokens_fn(call).await,
            Route::Reset => t.reset_fn(call).await,
        }
    }
}

fn login(email: &str, password: &str, ip: &str) -> TestCall {
    TestCall::new("POST", "/login").from_ip(ip).json(json!({"email": email, "password": password}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_guesses_reach_the_hash_at_most_as_often_as_each_limit_allows() {
    let t = Arc::new(TestApp::aws(&[("GATEHOUSE_APPS", "billing"), FAST[0], FAST[1]]).await);
    let cookie = t.signed_up("ann@example.com").await;
    let ip = "198.51.100.9";
    // One email from one client: 5 a minute.
    concurrently(&t, 20, |_| (login("ann@example.com", "wrong wrong wrong 1", ip), Route::Login))
        .await
        .at_most(5, "login");
    // Token issuing shares the login limits (another client, so the first limit is fresh).
    let issue = |_| {
        let body = json!({"email": "ann@example.com", "password": "wrong wrong wrong 1", "device_name": "x"});
        (TestCall::new("POST", "/tokens/issue").from_ip("198.51.100.10").json(body), Route::Tokens)
    };
    concurrently(&t, 20, issue).await.at_most(5, "tokens/issue");
    // One client across many emails: 50 a minute.
    let spray = |i| (login(&format!("user{i}@example.com"), "wrong wrong wrong 1", "198.51.100.11"), Route::Login);
    concurrently(&t, 80, spray).await.at_most(50, "one client, many emails");
    // A stolen session is no password oracle: 5 password checks a minute per user.
    let confirm = |i: usize| {
        let path = if i.is_multiple_of(2) { "/user/confirm-password" } else { "/logout-other-devices" };
        (
            TestCall::new("POST", path).cookie(Some(&cookie)).json(json!({"password": "wrong wrong wrong 1"})),
            Route::Login,
        )
    };
    concurrently(&t, 20, confirm).await.at_most(5, "password checks");
    let right = t
        .login_fn(TestCall::new("POST", "/user/confirm-password").cookie(Some(&cookie)).json(json!({"password": PW})))
        .await;
    assert_eq!(right.status, 429, "the right password waits too: the count came first");
    // Resets: 10 a minute per client, counted before the token is checked or anything hashed.
    let reset = |_| {
        let body = json!({"email": "ann@example.com", "token": "x".repeat(43), "password": "tulip orbit mango lantern 77", "password_confirmation": "tulip orbit mango lantern 77"});
        (TestCall::new("POST", "/reset-password").from_ip("198.51.100.12").json(body), Route::Reset)
    };
    concurrently(&t, 20, reset).await.at_most(10, "reset");
    // Forgot-password: 6 a minute per client.
    let forgot = |i| {
        (
            TestCall::new("POST", "/forgot-password")
                .from_ip("198.51.100.13")
                .json(json!({"email": format!("x{i}@example.com")})),
            Route::Reset,
        )
    };
    concurrently(&t, 20, forgot).await.at_most(6, "forgot");
    // Handoff exchanges: 30 a minute per client.
    let exchange = |_| {
        (
            TestCall::new("POST", "/cross-app/exchange")
                .from_ip("198.51.100.14")
                .json(json!({"handoff_token": "y".repeat(43)})),
            Route::Tokens,
        )
    };
    concurrently(&t, 40, exchange).await.at_most(30, "exchange");
    // Clients are IPv6 /64s: rotating through one's own /64 buys nothing.
    let v6 = |i: usize| {
        (login("ann@example.com", "wrong wrong wrong 1", &format!("2001:db8:5:6::{:x}", i + 1)), Route::Login)
    };
    concurrently(&t, 20, v6).await.at_most(5, "one IPv6 /64");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_registrations_from_one_client_are_limited_so_enumeration_is_slow() {
    let t = Arc::new(TestApp::aws(FAST).await);
    t.signed_up("taken@example.com").await;
    let register = |i: usize| {
        let email = if i.is_multiple_of(2) { "taken@example.com".to_owned() } else { format!("new{i}@example.com") };
        let body = json!({"name": "Eve", "email": email, "password": PW, "password_confirmation": PW});
        (TestCall::new("POST", "/register").from_ip("198.51.100.20").json(body), Route::Login)
    };
    concurrently(&t, 50, register)
        .await
        .at_most(10, "registrations (answers about whether an address is taken) an hour");
}

fn device_cookie(r: &TestReply) -> Option<String> {
    let name = format!("{SESSION_COOKIE}_device=");
    r.set_cookies()
        .into_iter()
        .find(|c| c.starts_with(&name))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_against_an_account_does_not_lock_its_owner_out() {
    let t = Arc::new(TestApp::aws(FAST).await);
    t.signed_up("ann@example.com").await;
    // The owner signed in once from their laptop, which now holds a device cookie.
    let first = t.login_fn(login("ann@example.com", PW, "203.0.113.50")).await;
    assert_eq!(first.status, 200);
    let device = device_cookie(&first).expect("a device cookie at login");
    // 100 failures from 100 addresses.
    let flood = |i: usize| {
        (login("ann@example.com", "wrong wrong wrong 1", &format!("10.1.{}.{}", i / 250, i % 250 + 1)), Route::Login)
    };
    concurrently(&t, 100, flood).await.at_most(100, "the flood");
    // The owner's known device still gets in, from a fresh address.
    let owner = t.login_fn(login("ann@example.com", PW, "203.0.113.51").cookie(Some(&device))).await;
    assert_eq!(owner.status, 200, "{}", owner.raw_body);
    assert_eq!(device_cookie(&owner), None, "a known device keeps its cookie");
    // A new device waits, at most the account window (one hour).
    let stranger = t.login_fn(login("ann@example.com", PW, "203.0.113.52")).await;
    assert_eq!(stranger.status, 429);
    let wait: u64 = stranger.header("retry-after").unwrap().parse().unwrap();
    assert!(wait <= 3600, "{wait}");
    // Another account's device cookie is no pass.
    t.signed_up("eve@example.com").await;
    let eves = device_cookie(&t.login_fn(login("eve@example.com", PW, "203.0.113.53")).await).unwrap();
    let borrowed = t.login_fn(login("ann@example.com", PW, "203.0.113.54").cookie(Some(&eves))).await;
    assert_eq!(borrowed.status, 429);
    let _: Value = borrowed.body;
}

/// `GATEHOUSE_TRUSTED_PROXIES`: behind a trusted proxy (a front end's server proxying the API,
/// a CDN), each visitor is counted as themself (the rightmost `X-Forwarded-For` address that is
/// no trusted proxy), so one visitor reaching the per-client limit does not stop the next; a
/// header written by anyone else, or put to the left of what the proxy appended, counts for
/// nothing; and the address an event records is the visitor's.
#[tokio::test]
async fn behind_a_trusted_proxy_each_visitor_is_counted_as_themself_and_nobody_else_is_believed() {
    const PROXY: &str = "10.0.0.5";
    let t = TestApp::memory(&[
        ("GATEHOUSE_REGISTER_PER_CLIENT_PER_HOUR", "2"),
        ("GATEHOUSE_TRUSTED_PROXIES", "10.0.0.0/24"),
    ]);
    let register = |from: &str, forwarded: Option<&str>| {
        let email = crate::support::unique("proxied");
        let mut call = TestCall::new("POST", "/register").from_ip(from).json(json!({
            "name": "Ann", "email": email, "password": PW, "password_confirmation": PW,
        }));
        if let Some(f) = forwarded {
            call = call.header("x-forwarded-for", f);
        }
        t.login_fn(call)
    };
    // Visitor A through the proxy: two, then the limit; the spoofed entry to the left is not A.
    for _ in 0..2 {
        assert_eq!(register(PROXY, Some("6.6.6.6, 198.51.100.1")).await.status, 201);
    }
    assert_eq!(register(PROXY, Some("6.6.6.6, 198.51.100.1")).await.status, 429, "A reached the limit");
    assert_eq!(register(PROXY, Some("198.51.100.1")).await.status, 429, "whatever A writes on the left");
    // Visitor B through the same proxy is not A.
    let b = register(PROXY, Some("198.51.100.2")).await;
    assert_eq!(b.status, 201, "{}", b.raw_body);
    // Someone who is no trusted proxy sends the header: it is not believed (they are counted
    // as their own address, twice, then refused, whatever they claim).
    for _ in 0..2 {
        assert_eq!(register("203.0.113.50", Some("198.51.100.77")).await.status, 201);
    }
    assert_eq!(register("203.0.113.50", Some("198.51.100.78")).await.status, 429, "the header did not help");
    // The event of B's sign-up names B's address, not the proxy's.
    let id = b.body["user"]["id"].as_str().expect("B").to_owned();
    let events = crate::events_credentials::events_of(&t, &id).await;
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(json["data"]["client"]["ip"], "198.51.100.2");

    // Without trusted proxies, the proxy is one client for everyone.
    let t = TestApp::memory(&[("GATEHOUSE_REGISTER_PER_CLIENT_PER_HOUR", "2")]);
    let mut statuses = Vec::new();
    for visitor in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        let email = crate::support::unique("unproxied");
        let call = TestCall::new("POST", "/register").from_ip(PROXY).header("x-forwarded-for", visitor).json(json!({
            "name": "Ann", "email": email, "password": PW, "password_confirmation": PW,
        }));
        statuses.push(t.login_fn(call).await.status);
    }
    assert_eq!(statuses, [201, 201, 429]);
}
