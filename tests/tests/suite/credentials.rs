//! Credential integrity (issue #11), tried as an attacker would: a reset races the attacker's
//! logins, rehashes, "log out other devices", token issues and handoffs — on the emulator, with
//! an index that lags, many times over — and afterwards nothing from the old password works.
//! Then: no credential grows beyond the one it came from, lifetimes hold where they are checked,
//! cursors cannot be forged, and the checks still cost one read.

use crate::support::put_reset_token;
use chrono::Duration as Span;
use gatehouse::Email;
use gatehouse::tables::password_reset_tokens::PlainResetToken;
use gatehouse::tables::users::CredentialChange;
use gatehouse::values::clock::Clock;
use gatehouse::values::password::{HashCost, PasswordHasher, PasswordPolicy};
use gatehouse_http::App;
use gatehouse_tests::TestEnv;
use gatehouse_tests::counting::{CountingSessions, LaggingSessions, LaggingTokens};
use gatehouse_tests::http::{TestApp, TestCall, TestReply};
use serde_json::{Value, json};
use std::sync::Arc;

const OLD: &str = "correct horse battery staple 42";
const NEW: &str = "tulip orbit mango lantern 77";
/// Race iterations per test per CI run.
const ROUNDS: usize = 50;

/// Cheap hashing so fifty rounds of races stay quick, and limits out of the way: these races are
/// about ordering, not cost or rate (`abuse.rs` proves the limits).
const FAST_ARGON2: &[(&str, &str)] = &[
    ("GATEHOUSE_ARGON2_MEMORY_KIB", "64"),
    ("GATEHOUSE_ARGON2_ITERATIONS", "1"),
    ("GATEHOUSE_APPS", "billing"),
    ("GATEHOUSE_LOGIN_PER_EMAIL_PER_MINUTE", "1000"),
    ("GATEHOUSE_LOGIN_PER_CLIENT_PER_MINUTE", "100000"),
    ("GATEHOUSE_REGISTER_PER_CLIENT_PER_HOUR", "100000"),
    ("GATEHOUSE_RESET_PER_CLIENT_PER_MINUTE", "10000"),
    ("GATEHOUSE_PASSWORD_CHECKS_PER_MINUTE", "1000"),
    ("GATEHOUSE_EXCHANGE_PER_CLIENT_PER_MINUTE", "100000"),
];

fn lagging(mut env: TestEnv) -> TestEnv {
    let clock: Arc<dyn Clock> = Arc::new(env.clock.clone());
    // Everything written in the last hour of (test) time is missing from the owner indexes.
    env.stores.sessions =
        Arc::new(LaggingSessions { inner: env.stores.sessions, clock: clock.clone(), lag: Span::hours(1) });
    env.stores.personal_access_tokens =
        Arc::new(LaggingTokens { inner: env.stores.personal_access_tokens, clock, lag: Span::hours(1) });
    env
}

async fn register(t: &TestApp, email: &str) {
    let r = t.register("Ann", email, OLD).await;
    assert_eq!(r.status, 201, "{}", r.raw_body);
}

fn login_call(email: &str, password: &str, ip: &str) -> TestCall {
    TestCall::new("POST", "/login").from_ip(ip).json(json!({ "email": email, "password": password }))
}

fn reset_call(email: &str, token: &PlainResetToken) -> TestCall {
    TestCall::new("POST", "/reset-password").from_ip("192.0.2.200").json(json!({
        "email": email, "token": token.expose(), "password": NEW, "password_confirmation": NEW
    }))
}

/// Stores an outdated (cheaper) hash of `OLD`, so the next successful login rehashes it.
async fn make_hash_outdated(t: &TestApp, email: &str) {
    let weak = PasswordHasher::new(HashCost { memory_kib: 32, iterations: 1, parallelism: 1 }).unwrap();
    let old = weak.hash(&PasswordPolicy::new(15, 128, Vec::<String>::new()).check(OLD).unwrap()).unwrap();
    let user = t.env.stores.users.find_by_email(&Email::parse(email).unwrap()).await.unwrap().unwrap();
    let change = CredentialChange { password: Some(&old), ..CredentialChange::default() };
    assert!(
        t.env
            .stores
            .users
            .change_credentials(&user.id, user.credentials_version, change, t.env.clock_now())
            .await
            .unwrap()
            .is_some()
    );
}

async fn user_with(app: &App, cookie: &str) -> u16 {
    TestApp::login_at(app, TestCall::new("GET", "/user").cookie(Some(cookie))).await.status
}

async fn tokens_list_with(t: &TestApp, bearer: &str) -> u16 {
    t.tokens_fn(TestCall::new("GET", "/tokens").bearer(bearer)).await.status
}

// ------------------------------------------------------------------------------------------------
// (a) a reset is never undone

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reset_wins_every_race_against_logout_other_devices_and_rehashing_logins() {
    let t = Arc::new(TestApp::aws(FAST_ARGON2).await);
    for round in 0..ROUNDS {
        let email = format!("a{round}@example.com");
        register(&t, &email).await;
        let attacker = t.login_fn(login_call(&email, OLD, "198.51.100.1")).await.session_cookie().unwrap();
        make_hash_outdated(&t, &email).await;
        let token = put_reset_token(&t.env.stores, &email, Span::days(1)).await;
        let spoiler = {
            let (t, email) = (t.clone(), email.clone());
            tokio::spawn(async move {
                let mut cookie = attacker;
                for i in 0..3 {
                    let call = TestCall::new("POST", "/logout-other-devices")
                        .cookie(Some(&cookie))
                        .json(json!({"password": OLD}));
                    let (lod, _login) = tokio::join!(
                        t.login_fn(call),
                        t.login_fn(login_call(&email, OLD, &format!("198.51.100.{}", 10 + i)))
                    );
                    if let Some(c) = lod.session_cookie() {
                        cookie = c;
                    }
                }
            })
        };
        let reset = t.reset_fn(reset_call(&email, &token)).await;
        assert_eq!(reset.status, 200, "round {round}: {}", reset.raw_body);
        spoiler.await.unwrap();
        let ip = format!("203.0.113.{}", round % 250);
        assert_eq!(t.login_fn(login_call(&email, NEW, &ip)).await.status, 200, "round {round}: the new password works");
        assert_eq!(t.login_fn(login_call(&email, OLD, &ip)).await.status, 422, "round {round}: the old one does not");
    }
}

// ------------------------------------------------------------------------------------------------
// (b), (c) nothing minted from the old password survives

/// What the attacker got while the reset ran: session cookies, bearer tokens, handoff tokens.
#[derive(Default)]
struct Loot {
    cookies: Vec<String>,
    tokens: Vec<String>,
    handoffs: Vec<String>,
}

async fn plunder(t: Arc<TestApp>, email: String, session: String) -> Loot {
    let mut loot = Loot::default();
    for i in 0..3 {
        let ip = format!("198.51.100.{}", 20 + i);
        let issue = TestCall::new("POST", "/tokens/issue")
            .from_ip(&ip)
            .json(json!({"email": email, "password": OLD, "device_name": "loot"}));
        let handoff =
            TestCall::new("POST", "/cross-app/handoff").cookie(Some(&session)).json(json!({"target_app": "billing"}));
        let child = TestCall::new("POST", "/tokens")
            .cookie(Some(&session))
            .json(json!({"name": "c", "abilities": ["read"], "expires_in_minutes": 60}));
        let (login, issued, handed, child): (TestReply, TestReply, TestReply, TestReply) = tokio::join!(
            t.login_fn(login_call(&email, OLD, &ip)),
            t.tokens_fn(issue),
            t.tokens_fn(handoff),
            t.tokens_fn(child),
        );
        loot.cookies.extend(login.session_cookie());
        for r in [&issued, &child] {
            if let Some(tok) = r.body["token"].as_str() {
                loot.tokens.push(tok.to_owned());
            }
        }
        if let Some(h) = handed.body["handoff_token"].as_str() {
            loot.handoffs.push(h.to_owned());
        }
    }
    loot
}

async fn nothing_from_the_old_password_survives_a_reset(t: TestApp) {
    let t = Arc::new(t);
    let billing = t.sibling(&[FAST_ARGON2, &[("GATEHOUSE_APP_NAME", "billing")]].concat());
    let mut minted = 0;
    for round in 0..ROUNDS {
        let email = format!("b{round}@example.com");
        register(&t, &email).await;
        let session = t.login_fn(login_call(&email, OLD, "198.51.100.2")).await.session_cookie().unwrap();
        let before = plunder(t.clone(), email.clone(), session.clone()).await;
        let token = put_reset_token(&t.env.stores, &email, Span::days(1)).await;
        let during = tokio::spawn(plunder(t.clone(), email.clone(), session.clone()));
        let reset = t.reset_fn(reset_call(&email, &token)).await;
        assert_eq!(reset.status, 200, "round {round}: {}", reset.raw_body);
        let during = during.await.unwrap();
        // After the reset answered, and after everything racing it finished: none of it works.
        for loot in [&before, &during] {
            minted += loot.cookies.len() + loot.tokens.len() + loot.handoffs.len();
            for c in loot.cookies.iter().chain([&session]) {
                assert_eq!(user_with(&t.app, c).await, 401, "round {round}: a session from the old password");
            }
            for b in &loot.tokens {
                assert_eq!(tokens_list_with(&t, b).await, 401, "round {round}: a token from the old password");
            }
            for h in &loot.handoffs {
                let r = TestApp::tokens_at(
                    &billing,
                    TestCall::new("POST", "/cross-app/exchange").json(json!({"handoff_token": h})),
                )
                .await;
                assert_eq!(r.status, 422, "round {round}: a handoff from the old password: {}", r.raw_body);
            }
        }
    }
    assert!(minted >= ROUNDS * 9, "the attacker did get credentials before the reset ({minted})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_minted_from_the_old_password_survives_a_racing_reset() {
    nothing_from_the_old_password_survives_a_reset(TestApp::aws(FAST_ARGON2).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_survives_a_reset_even_when_the_owner_indexes_lag() {
    nothing_from_the_old_password_survives_a_reset(TestApp::with(lagging(TestEnv::aws().await), FAST_ARGON2)).await;
}

#[tokio::test]
async fn logout_other_devices_ends_credentials_the_indexes_have_not_seen() {
    let t = Arc::new(TestApp::with(lagging(TestEnv::aws().await), FAST_ARGON2));
    register(&t, "ann@example.com").await;
    let keep = t.login_fn(login_call("ann@example.com", OLD, "198.51.100.3")).await.session_cookie().unwrap();
    let loot = plunder(t.clone(), "ann@example.com".into(), keep.clone()).await;
    assert_eq!(loot.cookies.len() + loot.tokens.len(), 9);
    let ok = t
        .login_fn(TestCall::new("POST", "/logout-other-devices").cookie(Some(&keep)).json(json!({"password": OLD})))
        .await;
    assert_eq!(ok.status, 204, "{}", ok.raw_body);
    let rotated = ok.session_cookie().unwrap();
    assert_eq!(user_with(&t.app, &rotated).await, 200);
    for c in loot.cookies.iter().chain([&keep]) {
        assert_eq!(user_with(&t.app, c).await, 401);
    }
    for b in &loot.tokens {
        assert_eq!(tokens_list_with(&t, b).await, 401);
    }
    let audit = t.env.stores.cross_app_sessions.list_for_user(&user_id(&t, "ann@example.com").await).await.unwrap();
    assert!(audit.is_empty(), "no handoff was exchanged");
    for h in &loot.handoffs {
        let billing = t.sibling(&[FAST_ARGON2, &[("GATEHOUSE_APP_NAME", "billing")]].concat());
        let r = TestApp::tokens_at(
            &billing,
            TestCall::new("POST", "/cross-app/exchange").json(json!({"handoff_token": h})),
        )
        .await;
        assert_eq!(r.status, 422, "{}", r.raw_body);
    }
}

async fn user_id(t: &TestApp, email: &str) -> gatehouse::tables::users::UserId {
    t.env.stores.users.find_by_email(&Email::parse(email).unwrap()).await.unwrap().unwrap().id
}

// ------------------------------------------------------------------------------------------------
// derived credentials never exceed their parent

async fn token_from_session(t: &TestApp, cookie: &str, body: Value) -> TestReply {
    t.create_token(cookie, body).await
}

#[tokio::test]
async fn the_read_token_escalation_fails_at_every_step() {
    let t = TestApp::aws(&[("GATEHOUSE_APPS", "billing")]).await;
    let billing = t.sibling(&[FAST_ARGON2, &[("GATEHOUSE_APP_NAME", "billing")]].concat());
    let cookie = t.signed_up("ann@example.com").await;
    let read =
        token_from_session(&t, &cookie, json!({"name": "r", "abilities": ["read"], "expires_in_minutes": 60})).await;
    assert_eq!(read.status, 201, "{}", read.raw_body);
    let read = read.body["token"].as_str().unwrap().to_owned();

    // Step 1: a read-only token cannot hand off.
    let r = t
        .tokens_fn(TestCall::new("POST", "/cross-app/handoff").bearer(&read).json(json!({"target_app": "billing"})))
        .await;
    assert_eq!((r.status, r.error_code()), (403, Some("forbidden")), "{}", r.raw_body);

    // Step 2, on its own: a token made for handing off does hand off, but only to its target app,
    // which alone can exchange it, and the session it gets is that app's only.
    let ho = token_from_session(
        &t,
        &cookie,
        json!({"name": "h", "abilities": ["cross-app:handoff"], "expires_in_minutes": 60}),
    )
    .await;
    let ho = ho.body["token"].as_str().unwrap().to_owned();
    let h = t
        .tokens_fn(TestCall::new("POST", "/cross-app/handoff").bearer(&ho).json(json!({"target_app": "billing"})))
        .await;
    assert_eq!(h.status, 201, "{}", h.raw_body);
    let handoff = h.body["handoff_token"].as_str().unwrap().to_owned();
    let here = t.tokens_fn(TestCall::new("POST", "/cross-app/exchange").json(json!({"handoff_token": handoff}))).await;
    assert_eq!(here.error_code(), Some("invalid_token"), "the home app is not the target");
    let there = TestApp::tokens_at(
        &billing,
        TestCall::new("POST", "/cross-app/exchange").json(json!({"handoff_token": handoff})),
    )
    .await;
    assert_eq!(there.status, 200, "{}", there.raw_body);
    let derived = there.session_cookie().unwrap();
    assert_eq!(user_with(&billing, &derived).await, 200);
    assert_eq!(user_with(&t.app, &derived).await, 401, "a billing session is not a session here");

    // Step 3, on its own: the derived session mints no token at all, strong or weak (a home session
    // needs a recent password confirmation for a strong one: the next test).
    for body in [
        json!({"name": "x"}),
        json!({"name": "x", "abilities": ["read"]}),
        json!({"name": "x", "expires_in_minutes": 60}),
    ] {
        let r =
            TestApp::tokens_at(&billing, TestCall::new("POST", "/tokens").cookie(Some(&derived)).json(body.clone()))
                .await;
        assert_eq!((r.status, r.error_code()), (403, Some("forbidden")), "{body}");
    }
    // Nor anything at all: a session opened by a handoff is no source of credentials.
    let limited = TestApp::tokens_at(
        &billing,
        TestCall::new("POST", "/tokens")
            .cookie(Some(&derived))
            .json(json!({"name": "x", "abilities": ["read"], "expires_in_minutes": 60})),
    )
    .await;
    assert_eq!((limited.status, limited.error_code()), (403, Some("forbidden")), "{}", limited.raw_body);
    let again = TestApp::tokens_at(
        &billing,
        TestCall::new("POST", "/cross-app/handoff").cookie(Some(&derived)).json(json!({"target_app": "billing"})),
    )
    .await;
    assert_eq!(again.status, 403, "{}", again.raw_body);

    // Step 4: revoking the token the chain started from ends everything derived from it.
    // The token's id: the part before its owner (`<id>.<owner>|<secret>`).
    let ho_id = ho.split(['|', '.']).next().unwrap();
    let del = t.tokens_fn(TestCall::new("DELETE", &format!("/tokens/{ho_id}")).cookie(Some(&cookie))).await;
    assert_eq!(del.status, 204);
    assert_eq!(user_with(&billing, &derived).await, 401, "the derived session ended with its source token");
    let audit = t.env.stores.cross_app_sessions.list_for_user(&user_id(&t, "ann@example.com").await).await.unwrap();
    assert_eq!(audit[0].revoked_reason.as_deref(), Some("parent_revoked"));
    // The read token was not derived from it, and lives on.
    assert_eq!(tokens_list_with(&t, &read).await, 200);
}

#[tokio::test]
async fn a_recent_password_confirmation_allows_a_strong_token_from_a_session_and_expires() {
    let t = TestApp::aws(&[]).await;
    let cookie = t.signed_up("ann@example.com").await;
    // Registering proved the password just now.
    assert_eq!(token_from_session(&t, &cookie, json!({"name": "all"})).await.status, 201);
    // Kept alive (idle lifetime 2 hours) past the 3-hour confirmation window.
    t.env.clock.advance(Span::minutes(100));
    assert_eq!(user_with(&t.app, &cookie).await, 200);
    t.env.clock.advance(Span::minutes(81));
    let status = t.login_fn(TestCall::new("GET", "/user/confirmed-password-status").cookie(Some(&cookie))).await;
    assert_eq!(status.body["confirmed"], false);
    let r = token_from_session(&t, &cookie, json!({"name": "all"})).await;
    assert_eq!((r.status, r.error_code()), (423, Some("password_confirmation_required")));
    let wrong = t
        .login_fn(TestCall::new("POST", "/user/confirm-password").cookie(Some(&cookie)).json(json!({"password": NEW})))
        .await;
    assert_eq!(wrong.status, 422);
    let ok = t
        .login_fn(TestCall::new("POST", "/user/confirm-password").cookie(Some(&cookie)).json(json!({"password": OLD})))
        .await;
    assert_eq!(ok.status, 204, "{}", ok.raw_body);
    assert_eq!(token_from_session(&t, &cookie, json!({"name": "all"})).await.status, 201);
}

#[tokio::test]
async fn a_child_token_stays_within_its_parents_abilities_and_lifetime() {
    let t = TestApp::aws(&[]).await;
    let cookie = t.signed_up("ann@example.com").await;
    let parent = token_from_session(
        &t,
        &cookie,
        json!({"name": "p", "abilities": ["tokens:create", "read"], "expires_in_minutes": 1}),
    )
    .await;
    let parent_expiry = parent.body["expires_at"].as_str().unwrap().to_owned();
    let parent = parent.body["token"].as_str().unwrap().to_owned();
    let mint = |body: Value| t.tokens_fn(TestCall::new("POST", "/tokens").bearer(&parent).json(body));
    let wider = mint(json!({"name": "c", "abilities": ["write"]})).await;
    assert_eq!(wider.status, 422);
    assert!(wider.body["error"]["fields"]["abilities"].is_array());
    for body in [
        json!({"name": "c", "abilities": ["read"]}),
        json!({"name": "c", "abilities": ["read"], "expires_in_minutes": 600}),
    ] {
        let child = mint(body).await;
        assert_eq!(child.status, 201, "{}", child.raw_body);
        assert_eq!(child.body["expires_at"], parent_expiry, "no later than its parent");
    }
    let child = mint(json!({"name": "c", "abilities": ["read"]})).await.body["token"].as_str().unwrap().to_owned();
    t.env.clock.advance(Span::seconds(61));
    assert_eq!(tokens_list_with(&t, &child).await, 401);
}

// ------------------------------------------------------------------------------------------------
// lifetimes are enforced where they are checked

#[tokio::test]
async fn the_maximum_token_age_is_enforced_by_the_check_itself() {
    let t = TestApp::aws(&[]).await;
    let cookie = t.signed_up("ann@example.com").await;
    let tok = token_from_session(&t, &cookie, json!({"name": "forever"})).await;
    assert_eq!(tok.body["expires_at"], Value::Null);
    let tok = tok.body["token"].as_str().unwrap().to_owned();
    let capped = t.sibling(&[("GATEHOUSE_TOKEN_MAX_AGE_MINUTES", "1")]);
    assert_eq!(TestApp::tokens_at(&capped, TestCall::new("GET", "/tokens").bearer(&tok)).await.status, 200);
    t.env.clock.advance(Span::seconds(70));
    assert_eq!(TestApp::tokens_at(&capped, TestCall::new("GET", "/tokens").bearer(&tok)).await.status, 401);
    assert_eq!(tokens_list_with(&t, &tok).await, 200, "without the cap it still lives");
}

#[tokio::test]
async fn remember_me_cannot_slide_a_session_past_its_absolute_lifetime() {
    let t = TestApp::aws(&[]).await;
    t.signed_up("ann@example.com").await;
    let r = t
        .login_fn(
            TestCall::new("POST", "/login")
                .json(json!({"email": "ann@example.com", "password": OLD, "remember": true})),
        )
        .await;
    let cookie = r.session_cookie().unwrap();
    // Used every ten days, a remembered session (30 idle days) would slide forever.
    for _ in 0..2 {
        t.env.clock.advance(Span::days(10));
        assert_eq!(user_with(&t.app, &cookie).await, 200);
    }
    t.env.clock.advance(Span::days(10));
    assert_eq!(user_with(&t.app, &cookie).await, 401, "30 days after login, it is over");
    let unlimited = t.sibling(&[("GATEHOUSE_SESSION_ABSOLUTE_LIFETIME_MINUTES", "none")]);
    let r = TestApp::login_at(
        &unlimited,
        TestCall::new("POST", "/login").json(json!({"email": "ann@example.com", "password": OLD, "remember": true})),
    )
    .await;
    let cookie = r.session_cookie().unwrap();
    for _ in 0..4 {
        t.env.clock.advance(Span::days(10));
        assert_eq!(user_with(&unlimited, &cookie).await, 200, "\"none\" is allowed when said");
    }
}

// ------------------------------------------------------------------------------------------------
// cursors cannot be forged

async fn genuine_cursor(t: &TestApp, cookie: &str) -> String {
    for i in 0..3 {
        token_from_session(
            t,
            cookie,
            json!({"name": format!("t{i}"), "expires_in_minutes": 60, "abilities": ["read"]}),
        )
        .await;
    }
    let page = t.tokens_fn(TestCall::new("GET", "/tokens?limit=1").cookie(Some(cookie))).await;
    assert_eq!(page.status, 200, "{}", page.raw_body);
    page.body["next_cursor"].as_str().expect("a next page").to_owned()
}

fn list_page(cookie: &str, cursor: &str) -> TestCall {
    let mut c = TestCall::new("GET", "/tokens").cookie(Some(cookie));
    c.path = format!("/tokens?limit=1&cursor={}", gatehouse::services::password_broker::url_encode(cursor));
    c
}

#[tokio::test]
async fn forged_foreign_and_garbage_cursors_are_422_never_500_on_dynamodb() {
    let t = TestApp::aws(&[]).await;
    let ann = t.signed_up("ann@example.com").await;
    let bob = t.signed_up("bob@example.com").await;
    let anns = genuine_cursor(&t, &ann).await;
    let bobs = genuine_cursor(&t, &bob).await;
    assert_eq!(t.tokens_fn(list_page(&ann, &anns)).await.status, 200);
    for bad in ["eyJmb28iOnsiUyI6ImJhciJ9fQ", bobs.as_str(), "", ".", "x.y"] {
        let r = t.tokens_fn(list_page(&ann, bad)).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.raw_body);
        assert!(r.body["error"]["fields"]["cursor"].is_array(), "{bad}");
    }
}

#[test]
fn random_and_mutated_cursors_are_422_and_genuine_ones_2xx() {
    use proptest::prelude::*;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t = TestApp::memory(&[]);
    let cookie = rt.block_on(t.signed_up("ann@example.com"));
    let genuine = rt.block_on(genuine_cursor(&t, &cookie));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 256, ..ProptestConfig::default() });
    let strategy = (any::<String>(), 0usize..200, any::<u8>(), any::<bool>());
    runner
        .run(&strategy, |(garbage, at, byte, mutate)| {
            let cursor = if mutate {
                let mut b = genuine.clone().into_bytes();
                let i = at % b.len();
                b[i] = if b[i] == byte { byte.wrapping_add(1) } else { byte };
                String::from_utf8_lossy(&b).into_owned()
            } else {
                garbage
            };
            let status = rt.block_on(t.tokens_fn(list_page(&cookie, &cursor))).status;
            if cursor == genuine {
                prop_assert_eq!(status, 200);
            } else {
                prop_assert_eq!(status, 422, "cursor {:?}", cursor);
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(rt.block_on(t.tokens_fn(list_page(&cookie, &genuine))).status, 200);
}

// ------------------------------------------------------------------------------------------------
// the checks still cost one read

#[tokio::test]
async fn the_session_check_is_one_read_and_no_write_within_the_touch_interval() {
    let mut env = TestEnv::aws().await;
    let counting = CountingSessions::wrap(env.stores.sessions.clone());
    env.stores.sessions = counting.clone();
    let t = TestApp::with(env, &[]);
    let cookie = t.signed_up("ann@example.com").await;
    let abilities = gatehouse_token_check::RouteAbilities::default();
    let (finds, writes) = (counting.finds(), counting.writes());
    for _ in 0..20 {
        t.env.clock.advance(Span::seconds(2));
        assert!(t.authorize(&abilities, "GET /user", None, Some(&cookie)).await.is_authorized);
    }
    assert_eq!(counting.finds() - finds, 20, "one read per check");
    assert_eq!(counting.writes() - writes, 0, "no write within the touch interval");
}

/// Every revocation after a credentials change leaves a safety net: a `RevokeCredentials` job a
/// minute later, for a request cut at its deadline while a store hung. After a revocation that
/// completed it ends nothing more: the rotated session and a sign-in made after the change stay.
#[tokio::test]
async fn the_safety_net_job_after_a_password_change_ends_nothing_issued_since() {
    let t = TestApp::memory(&[]);
    register(&t, "ann@example.com").await;
    let current = t.login("ann@example.com", OLD).await.session_cookie().expect("a session");
    let other = t.login("ann@example.com", OLD).await.session_cookie().expect("another session");
    // The test clock is manual: time passes between what was issued, the change and what follows.
    t.env.clock.advance(Span::seconds(1));
    let body = json!({"current_password": OLD, "password": NEW, "password_confirmation": NEW});
    let changed = t.login_fn(TestCall::new("PUT", "/user/password").cookie(Some(&current)).json(body)).await;
    assert_eq!(changed.status, 204, "{}", changed.raw_body);
    let rotated = changed.session_cookie().expect("the rotated session");
    t.env.clock.advance(Span::seconds(1));
    let later = t.login("ann@example.com", NEW).await.session_cookie().expect("a sign-in with the new password");
    assert_eq!(user_with(&t.app, &other).await, 401, "ended at once");
    let net = |msgs: &[gatehouse::tables::jobs::QueueMessage]| {
        msgs.iter().filter(|m| m.body.contains("RevokeCredentials")).count()
    };
    let now = t.env.stores.queue.receive(10, std::time::Duration::ZERO, None).await.expect("receive");
    assert_eq!(net(&now), 0, "the net waits a minute");
    t.env.clock.advance(Span::seconds(61));
    let due = t.env.stores.queue.receive(10, std::time::Duration::ZERO, None).await.expect("receive");
    assert_eq!(net(&due), 1, "one safety-net job per change");
    let worker = t.worker(Arc::new(gatehouse::mail::LogMailer::new()));
    for msg in due.iter().filter(|m| m.body.contains("RevokeCredentials")) {
        let outcome = worker.process(msg).await;
        assert!(matches!(outcome, gatehouse::queue::Outcome::Completed), "{outcome:?}");
    }
    assert_eq!(user_with(&t.app, &rotated).await, 200, "the rotated session stays");
    assert_eq!(user_with(&t.app, &later).await, 200, "a sign-in after the change stays");
}
