//! Issue #28, tried as an attacker holding a stolen cookie would: a made-up email-change link
//! verifies nothing, signing in is no proof for adding a lasting way in, a passkey planted before
//! the owner changes the password or logs out other devices stops signing in, and a session mints
//! no strong token, nor more tokens or handoffs than a user's limits allow.

use crate::support::{mails, unique};
use gatehouse_tests::http::{TestApp, TestCall, TestReply};
use gatehouse_tests::passkey::SoftAuthenticator;
use serde_json::{Value, json};
use std::sync::Arc;

const PW: &str = "correct horse battery staple 42";
const NEW_PW: &str = "a brand new and long passphrase 7";
const ORIGIN: &str = "http://localhost:8080";

async fn confirm(t: &TestApp, cookie: &str) {
    let c = TestCall::new("POST", "/user/confirm-password").cookie(Some(cookie)).json(json!({ "password": PW }));
    let r = t.login_fn(c).await;
    assert_eq!(r.status, 204, "{}", r.raw_body);
}

async fn call(t: &TestApp, method: &str, path: &str, cookie: &str, body: Value) -> TestReply {
    t.login_fn(TestCall::new(method, path).cookie(Some(cookie)).json(body)).await
}

fn refused_for_confirmation(r: &TestReply, what: &str) {
    assert_eq!((r.status, r.error_code()), (423, Some("password_confirmation_required")), "{what}: {}", r.raw_body);
}

/// `GET /user/email/confirm/{own id}?email=<own address>&expires=0&signature=x` once marked every
/// credential verified: the "already at this address" branch ran before the signature check.
#[tokio::test]
async fn a_made_up_email_change_link_naming_the_current_address_verifies_nothing() {
    let t = TestApp::memory(&[("GATEHOUSE_ROUTE_ABILITIES", "GET /tokens=verified")]);
    let email = unique("ann");
    let reg = t.register("Ann", &email, PW).await;
    let cookie = reg.session_cookie().unwrap();
    let id = reg.body["user"]["id"].as_str().unwrap().to_owned();
    let tokens = || t.tokens_fn(TestCall::new("GET", "/tokens").cookie(Some(&cookie)));
    assert_eq!(tokens().await.status, 403, "unverified");
    let at = email.replace('@', "%40");
    let far = gatehouse::values::clock::epoch_seconds(gatehouse::values::clock::Clock::now(&t.env.clock)) + 3600;
    for forged in [
        format!("/user/email/confirm/{id}?email={at}&expires=0&signature=x"),
        format!("/user/email/confirm/{id}?email={at}&expires={far}&signature=x"),
        format!("/user/email/confirm/{id}?email={at}&expires={far}&signature="),
    ] {
        let r = t.login_fn(TestCall::new("GET", &forged).cookie(Some(&cookie))).await;
        assert_eq!((r.status, r.error_code()), (403, Some("invalid_link")), "{forged}: {}", r.raw_body);
    }
    assert_eq!(tokens().await.status, 403, "still unverified: no credential was stamped");
    let authorizer = gatehouse_token_check::RouteAbilities::parse("GET /reports=verified").unwrap();
    let answer = t.authorize(&authorizer, "GET /reports", None, Some(&cookie)).await;
    assert!(!answer.is_authorized, "the authorizer does not tell a backend the address is verified");
    assert_eq!(t.user(Some(&cookie)).await.body["user"]["email_verified_at"], Value::Null);
}

/// After a real change, the link opened again still works (a retry finishes the stamping), and a
/// forged one naming the new address verifies nothing.
#[tokio::test]
async fn after_a_change_only_the_mailed_link_opens_again() {
    let t = TestApp::memory(&[]);
    let (old, new) = (unique("ann"), unique("ann.new"));
    let reg = t.register("Ann", &old, PW).await;
    let cookie = reg.session_cookie().unwrap();
    let id = reg.body["user"]["id"].as_str().unwrap().to_owned();
    confirm(&t, &cookie).await;
    assert_eq!(call(&t, "POST", "/user/email", &cookie, json!({ "email": new })).await.status, 202);
    let sent = mails(&t).await;
    let mail = sent.iter().find(|m| m.to == new).expect("the link to the new address");
    let url = mail.text.split_whitespace().find(|w| w.contains("/user/email/confirm/")).unwrap();
    let link = &url[url.find("/user/email/confirm/").unwrap()..];
    assert_eq!(t.login_fn(TestCall::new("GET", link).cookie(Some(&cookie))).await.status, 200);
    assert_eq!(t.login_fn(TestCall::new("GET", link).cookie(Some(&cookie))).await.status, 200, "opened again");
    let forged = format!("/user/email/confirm/{id}?email={}&expires=99999999999&signature=x", new.replace('@', "%40"));
    let r = t.login_fn(TestCall::new("GET", &forged).cookie(Some(&cookie))).await;
    assert_eq!((r.status, r.error_code()), (403, Some("invalid_link")));
    // Expired: the same link an hour and more later.
    t.env.clock.advance(chrono::Duration::minutes(61));
    let me = t.login(&new, PW).await.session_cookie().unwrap();
    let late = t.login_fn(TestCall::new("GET", link).cookie(Some(&me))).await;
    assert_eq!((late.status, late.error_code()), (403, Some("link_expired")), "{}", late.raw_body);
}

/// Signing in (or registering) is no confirmation: a stolen cookie alone adds no way in, moves no
/// address, turns no factor off, regenerates no codes, mints no strong token, deletes nothing.
#[tokio::test]
async fn a_session_that_only_signed_in_can_add_no_lasting_way_in() {
    let t = TestApp::memory(&[]);
    let email = unique("ann");
    let registered = t.register("Ann", &email, PW).await.session_cookie().unwrap();
    let stolen = t.login(&email, PW).await.session_cookie().unwrap();
    for cookie in [&registered, &stolen] {
        for (method, path, body) in [
            ("POST", "/user/passkeys/options", json!({})),
            ("POST", "/user/email", json!({ "email": unique("eve") })),
            ("POST", "/user/two-factor-authentication", json!({})),
            ("DELETE", "/user/two-factor-authentication", json!({})),
            ("POST", "/user/two-factor-recovery-codes", json!({})),
            ("DELETE", "/user", json!({})),
        ] {
            refused_for_confirmation(&call(&t, method, path, cookie, body).await, path);
        }
        let strong = t.create_token(cookie, json!({"name": "x", "abilities": ["*"], "expires_in_minutes": 5})).await;
        refused_for_confirmation(&strong, "a * token");
        let status = t.login_fn(TestCall::new("GET", "/user/confirmed-password-status").cookie(Some(cookie))).await;
        assert_eq!(status.body["confirmed"], false, "{}", status.raw_body);
    }
    // The window is 15 minutes by default.
    confirm(&t, &stolen).await;
    assert_eq!(call(&t, "POST", "/user/passkeys/options", &stolen, json!({})).await.status, 200);
    t.env.clock.advance(chrono::Duration::minutes(16));
    refused_for_confirmation(&call(&t, "POST", "/user/passkeys/options", &stolen, json!({})).await, "16 min later");
}

/// The token from `{"abilities":["tokens:create","read","write"],"expires_in_minutes":5256000}`
/// was minted 9 s after the window closed: only `*` and "no expiry" counted as strong.
#[tokio::test]
async fn a_session_mints_a_token_that_can_mint_hand_off_or_live_long_only_after_a_confirmation() {
    let t = TestApp::memory(&[("GATEHOUSE_APPS", "billing")]);
    let cookie = t.registered(&unique("ann")).await;
    for (abilities, minutes) in [
        (json!(["tokens:create", "read", "write"]), 5_256_000),
        (json!(["tokens:create"]), 5),
        (json!(["cross-app:handoff"]), 5),
        (json!(["read"]), 5_256_000),
        (json!(["read"]), 31 * 24 * 60),
        (json!(["*"]), 5),
    ] {
        let r =
            t.create_token(&cookie, json!({"name": "x", "abilities": abilities, "expires_in_minutes": minutes})).await;
        refused_for_confirmation(&r, &format!("{abilities} for {minutes} minutes"));
    }
    let no_expiry = t.create_token(&cookie, json!({"name": "x", "abilities": ["read"]})).await;
    refused_for_confirmation(&no_expiry, "no expiry");
    let weak =
        t.create_token(&cookie, json!({"name": "x", "abilities": ["read"], "expires_in_minutes": 30 * 24 * 60})).await;
    assert_eq!(weak.status, 201, "a read-only token of 30 days is not strong: {}", weak.raw_body);
    confirm(&t, &cookie).await;
    let strong =
        t.create_token(&cookie, json!({"name": "x", "abilities": ["tokens:create"], "expires_in_minutes": 5})).await;
    assert_eq!(strong.status, 201, "{}", strong.raw_body);
}

/// A stolen credential cannot pad the register: tokens and handoffs are counted per user, from
/// every client and credential together.
#[tokio::test]
async fn tokens_and_handoffs_are_limited_per_user_across_clients_and_credentials() {
    let t = TestApp::memory(&[
        ("GATEHOUSE_APPS", "billing"),
        ("GATEHOUSE_TOKENS_PER_USER_PER_HOUR", "3"),
        ("GATEHOUSE_HANDOFFS_PER_USER_PER_HOUR", "2"),
    ]);
    let email = unique("ann");
    let first = t.signed_up(&email).await;
    let second = t.login(&email, PW).await.session_cookie().unwrap();
    let mint = |cookie: String, ip: &'static str| {
        let body = json!({"name": "x", "abilities": ["read"], "expires_in_minutes": 60});
        t.tokens_fn(TestCall::new("POST", "/tokens").cookie(Some(&cookie)).from_ip(ip).json(body))
    };
    assert_eq!(mint(first.clone(), "198.51.100.1").await.status, 201);
    assert_eq!(mint(second.clone(), "198.51.100.2").await.status, 201);
    assert_eq!(mint(first.clone(), "198.51.100.3").await.status, 201);
    let fourth = mint(second.clone(), "198.51.100.4").await;
    assert_eq!((fourth.status, fourth.error_code()), (429, Some("too_many_requests")), "{}", fourth.raw_body);
    assert!(fourth.header("retry-after").is_some());
    let other = t.signed_up(&unique("bob")).await;
    assert_eq!(mint(other, "198.51.100.4").await.status, 201, "another user's count is their own");

    let handoff = |cookie: String, ip: &'static str| {
        let c = TestCall::new("POST", "/cross-app/handoff").cookie(Some(&cookie)).from_ip(ip);
        t.tokens_fn(c.json(json!({"target_app": "billing"})))
    };
    assert_eq!(handoff(first.clone(), "198.51.100.5").await.status, 201);
    assert_eq!(handoff(second.clone(), "198.51.100.6").await.status, 201);
    let third = handoff(first.clone(), "198.51.100.7").await;
    assert_eq!((third.status, third.error_code()), (429, Some("too_many_requests")), "{}", third.raw_body);
    t.env.clock.advance(chrono::Duration::minutes(61));
    assert_eq!(handoff(first, "198.51.100.7").await.status, 201, "a new hour");
}

async fn add_passkey(t: &TestApp, cookie: &str, key: &mut SoftAuthenticator) {
    let o = call(t, "POST", "/user/passkeys/options", cookie, json!({})).await;
    assert_eq!(o.status, 200, "{}", o.raw_body);
    let body = json!({ "name": "planted", "credential": key.register(&o.body["publicKey"]) });
    let added = call(t, "POST", "/user/passkeys", cookie, body).await;
    assert_eq!(added.status, 201, "{}", added.raw_body);
}

async fn passkey_sign_in(t: &TestApp, key: &mut SoftAuthenticator) -> TestReply {
    let o = t.login_fn(TestCall::new("POST", "/passkeys/options").from_ip("203.0.113.9").json(json!({}))).await;
    assert_eq!(o.status, 200, "{}", o.raw_body);
    let credential = key.assert(&o.body["publicKey"]);
    t.login_fn(
        TestCall::new("POST", "/passkeys/login").from_ip("203.0.113.9").json(json!({ "credential": credential })),
    )
    .await
}

/// A passkey planted by whoever held the account (with its password) stops signing in once the
/// owner changes the password or logs out other devices, and the owner is told.
#[tokio::test]
async fn a_planted_passkey_ends_with_a_password_change_or_logging_out_other_devices() {
    let t = TestApp::aws(&[]).await;
    for how in ["password change", "log out other devices"] {
        let email = unique("pk");
        let owner = t.signed_up(&email).await;
        let intruder = t.login(&email, PW).await.session_cookie().unwrap();
        confirm(&t, &intruder).await;
        let mut planted = SoftAuthenticator::new("localhost", ORIGIN);
        add_passkey(&t, &intruder, &mut planted).await;
        assert_eq!(passkey_sign_in(&t, &mut planted).await.status, 200, "{how}: the planted passkey works");
        mails(&t).await;

        let r = match how {
            "password change" => {
                let body = json!({"current_password": PW, "password": NEW_PW, "password_confirmation": NEW_PW});
                call(&t, "PUT", "/user/password", &owner, body).await
            }
            _ => call(&t, "POST", "/logout-other-devices", &owner, json!({ "password": PW })).await,
        };
        assert!(r.status == 200 || r.status == 204, "{how}: {}", r.raw_body);
        let owner = r.session_cookie().unwrap_or(owner);
        let refused = passkey_sign_in(&t, &mut planted).await;
        assert_eq!(refused.status, 422, "{how}: the planted passkey signs in no more: {}", refused.raw_body);
        assert_eq!(t.user(Some(&owner)).await.body["user"]["passkeys"], 0, "{how}");
        let sent = mails(&t).await;
        assert!(
            sent.iter().any(|m| m.to == email && m.subject == "Your passkeys were removed"),
            "{how}: the owner is told: {:?}",
            sent.iter().map(|m| &m.subject).collect::<Vec<_>>()
        );
    }
}

/// A token holding only `cross-app:handoff` once became, after the exchange, a session with
/// every ability in the target app, outliving the token: a derived session now carries its parent
/// token's abilities and ends with it.
#[tokio::test]
async fn a_session_derived_from_a_token_carries_its_abilities_and_ends_with_it() {
    let t = TestApp::memory(&[("GATEHOUSE_APPS", "billing")]);
    let cookie = t.signed_up(&unique("ann")).await;
    let minted = t
        .create_token(&cookie, json!({"name": "h", "abilities": ["cross-app:handoff"], "expires_in_minutes": 30}))
        .await;
    assert_eq!(minted.status, 201, "{}", minted.raw_body);
    let token = minted.body["token"].as_str().unwrap().to_owned();
    let billing = t.sibling(&[("GATEHOUSE_APP_NAME", "billing")]);
    let exchange = || async {
        let h = t
            .tokens_fn(
                TestCall::new("POST", "/cross-app/handoff").bearer(&token).json(json!({"target_app": "billing"})),
            )
            .await;
        assert_eq!(h.status, 201, "{}", h.raw_body);
        let call = TestCall::new("POST", "/cross-app/exchange").json(json!({"handoff_token": h.body["handoff_token"]}));
        let r = TestApp::tokens_at(&billing, call).await;
        assert_eq!(r.status, 200, "{}", r.raw_body);
        r.session_cookie().unwrap()
    };
    let derived = exchange().await;
    let at_billing = |call: TestCall| TestApp::login_at(&billing, call);
    assert_eq!(at_billing(TestCall::new("GET", "/user").cookie(Some(&derived))).await.status, 200, "it may browse");
    let profile = TestCall::new("PUT", "/user/profile-information").cookie(Some(&derived)).json(json!({"name": "Eve"}));
    let r = at_billing(profile).await;
    assert_eq!(r.status, 403, "the token could not update the profile, nor can its session: {}", r.raw_body);
    let authorizer = gatehouse_token_check::RouteAbilities::parse("GET /reports=reports:read").unwrap();
    let answer = gatehouse_token_check::authorize(
        &billing.access,
        &authorizer,
        serde_json::from_value(gatehouse_tests::http::authorizer_event("GET /reports", None, Some(&derived))).unwrap(),
    )
    .await;
    assert!(!answer.is_authorized, "the authorizer judges the parent's abilities too");
    // Nor does it manage the account: it cannot end the owner's other sessions.
    let listed = t.login_fn(TestCall::new("GET", "/sessions").cookie(Some(&cookie))).await;
    let home = listed.body["sessions"][0]["id"].as_str().expect("a session handle").to_owned();
    let end = at_billing(TestCall::new("DELETE", &format!("/sessions/{home}")).cookie(Some(&derived))).await;
    assert_eq!(end.status, 403, "{}", end.raw_body);
    assert_eq!(t.user(Some(&cookie)).await.status, 200, "the owner's session lives on");

    // Kept busy (well within the idle lifetime), it still ends when the token does.
    let busy = exchange().await;
    for _ in 0..2 {
        t.env.clock.advance(chrono::Duration::minutes(14));
        assert_eq!(at_billing(TestCall::new("GET", "/user").cookie(Some(&busy))).await.status, 200);
    }
    t.env.clock.advance(chrono::Duration::minutes(3));
    assert_eq!(
        at_billing(TestCall::new("GET", "/user").cookie(Some(&busy))).await.status,
        401,
        "past the token's expiry"
    );
}

/// `DELETE /user` deleted the user first and revoked after, with no net: an interrupted deletion
/// left tokens passing the authorizer for a user that no longer existed. Now the store fails
/// part way through the revocation: the request answers 503, yet no credential of the user is
/// honoured by any check from that moment, and the queued job finishes the deletion.
#[tokio::test]
async fn a_deletion_cut_short_mid_revocation_honours_no_credential_and_its_job_finishes_it() {
    use gatehouse_tests::counting::FailingSessionDeletes;
    let mut env = gatehouse_tests::TestEnv::aws().await;
    // DynamoDB for every table; the queue in memory on the test's clock, so "a minute later" is
    // the clock moved on rather than a minute waited.
    let q = gatehouse::schema::JOBS_QUEUE;
    let visibility = std::time::Duration::from_secs(q.visibility_timeout_secs.into());
    let queue = gatehouse::memory::MemoryQueue::new(env.stores.clock.clone(), visibility, q.max_receive_count);
    env.stores.queue = Arc::new(queue);
    let broken = FailingSessionDeletes::wrap(env.stores.sessions.clone());
    env.stores.sessions = broken.clone();
    let t = TestApp::with(env, &[]);
    let email = unique("gone");
    let cookie = t.signed_up(&email).await;
    let id = t.user(Some(&cookie)).await.body["user"]["id"].as_str().unwrap().to_owned();
    let other = t.login(&email, PW).await.session_cookie().unwrap();
    let token = t.create_token(&cookie, json!({"name": "ci", "abilities": ["read"], "expires_in_minutes": 60})).await;
    let token = token.body["token"].as_str().unwrap().to_owned();
    mails(&t).await;

    broken.fail(true);
    let cut = t.login_fn(TestCall::new("DELETE", "/user").cookie(Some(&cookie))).await;
    assert_eq!((cut.status, cut.error_code()), (503, Some("unavailable")), "{}", cut.raw_body);
    let stored = gatehouse_tests::scan_items(&t.env, None).await;
    assert!(stored.iter().any(|i| i.contains(&id)), "the revocation was cut short: the user's items remain");
    let routes = gatehouse_token_check::RouteAbilities::parse("GET /reports=read").unwrap();
    for c in [&cookie, &other] {
        assert_eq!(t.user(Some(c)).await.status, 401, "a session of the user being deleted");
        assert!(!t.authorize(&routes, "GET /reports", None, Some(c)).await.is_authorized);
    }
    assert_eq!(t.login_fn(TestCall::new("GET", "/user").bearer(&token)).await.status, 401);
    assert!(!t.authorize(&routes, "GET /reports", Some(&token), None).await.is_authorized);
    assert_ne!(t.login(&email, PW).await.status, 200, "no sign-in");

    // The net runs a minute later and finishes everything, once.
    broken.fail(false);
    t.env.clock.advance(chrono::Duration::seconds(61));
    let sent = mails(&t).await;
    let told = sent.iter().filter(|m| m.to == email && m.subject == "Your account was deleted").count();
    assert_eq!(told, 1, "{:?}", sent.iter().map(|m| &m.subject).collect::<Vec<_>>());
    let left = crate::support::items_naming(&t, &id).await;
    assert!(left.is_empty(), "items still naming the user: {left:#?}");
    assert_eq!(t.register("Newcomer", &email, PW).await.status, 201, "the address registers again");
}

/// On DynamoDB: the check reads the credential and its owner in one call, so a credential whose
/// user's version moved on, was disabled, or is gone is refused before any revocation runs.
#[tokio::test]
async fn the_check_refuses_a_credential_whose_owner_moved_on_or_is_gone_before_revocation() {
    use gatehouse::tables::users::CredentialChange;
    let t = TestApp::aws(&[]).await;
    let routes = gatehouse_token_check::RouteAbilities::parse("GET /reports=read").unwrap();
    let email = unique("owner");
    let cookie = t.signed_up(&email).await;
    let id = gatehouse::tables::users::UserId::parse(t.user(Some(&cookie)).await.body["user"]["id"].as_str().unwrap())
        .unwrap();
    let token = t.create_token(&cookie, json!({"name": "ci", "abilities": ["read"], "expires_in_minutes": 60})).await;
    let token = token.body["token"].as_str().unwrap().to_owned();
    assert!(token.split('|').next().unwrap().ends_with(id.as_str()), "the token names its owner");
    assert!(cookie.ends_with(id.as_str()), "the cookie names its owner");
    assert!(t.authorize(&routes, "GET /reports", Some(&token), None).await.is_authorized);
    assert!(t.authorize(&routes, "GET /reports", None, Some(&cookie)).await.is_authorized);
    // The version moves with no revocation at all (as if the request died right after).
    let users = &t.env.stores.users;
    let moved =
        users.change_credentials(&id, 0, CredentialChange { revoke: true, ..Default::default() }, t.env.clock_now());
    assert_eq!(moved.await.unwrap(), Some(1));
    assert!(!t.authorize(&routes, "GET /reports", Some(&token), None).await.is_authorized);
    assert!(!t.authorize(&routes, "GET /reports", None, Some(&cookie)).await.is_authorized);
    assert_eq!(t.user(Some(&cookie)).await.status, 401);

    // A fresh sign-in works; once the user item is gone, it does not.
    let fresh = t.login(&email, PW).await.session_cookie().unwrap();
    assert!(t.authorize(&routes, "GET /reports", None, Some(&fresh)).await.is_authorized);
    assert!(users.delete(&id).await.unwrap());
    assert!(!t.authorize(&routes, "GET /reports", None, Some(&fresh)).await.is_authorized);
    // A value naming another owner than the one stored is refused too.
    let (secret, _) = fresh.split_once('.').unwrap();
    let other = gatehouse::tables::users::UserId::generate();
    assert_eq!(t.user(Some(&format!("{secret}.{other}"))).await.status, 401);
}
