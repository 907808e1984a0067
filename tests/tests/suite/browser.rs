//! What a browser holds gatehouse to: a page on another site cannot make state changes with the
//! user's session cookie (CSRF), every response pins HTTPS and forbids framing, and the session
//! cookie is host-only (`__Host-`). Stores on the emulator.

use gatehouse_tests::http::{SESSION_COOKIE, TestApp, TestCall, TestReply};
use serde_json::json;

const PW: &str = "correct horse battery staple 42";
/// The API's own origin as the test events address it (`host: api.example.test`).
const OWN_ORIGIN: &str = "https://api.example.test";

fn logout(cookie: &str) -> TestCall {
    TestCall::new("POST", "/logout").cookie(Some(cookie))
}

fn assert_csrf(r: &TestReply) {
    assert_eq!((r.status, r.error_code()), (403, Some("csrf")), "{}", r.raw_body);
    assert!(r.body["error"]["message"].as_str().is_some_and(|m| m.contains("another site")), "{}", r.raw_body);
    assert!(r.set_cookies().is_empty(), "a refused request sets and clears no cookie");
}

#[tokio::test]
async fn a_forged_cross_site_logout_is_refused_and_the_session_still_works() {
    let t = TestApp::aws(&[]).await;
    let cookie = t.signed_up("ann@example.com").await;

    // What a form on another site makes the victim's browser send: the cookie rides along.
    let by_fetch_metadata = t.login_fn(logout(&cookie).header("sec-fetch-site", "cross-site")).await;
    assert_csrf(&by_fetch_metadata);
    let by_origin = t.login_fn(logout(&cookie).header("origin", "https://evil.example")).await;
    assert_csrf(&by_origin);
    let same_site = t.login_fn(logout(&cookie).header("sec-fetch-site", "same-site")).await;
    assert_csrf(&same_site);
    assert_eq!(t.user(Some(&cookie)).await.status, 200, "the session survived the forged requests");

    // The same request from the API's own page goes through.
    let own = t.login_fn(logout(&cookie).header("sec-fetch-site", "same-origin").header("origin", OWN_ORIGIN)).await;
    assert_eq!(own.status, 204, "{}", own.raw_body);
    assert_eq!(t.user(Some(&cookie)).await.status, 401);
}

#[tokio::test]
async fn every_cookie_authenticated_state_change_is_checked() {
    let t = TestApp::aws(&[]).await;
    let cookie = t.signed_up("ann@example.com").await;
    let token = t.create_token(&cookie, json!({"name": "ci"})).await;
    assert_eq!(token.status, 201, "no browser headers (curl, a server): not a browser, not refused");
    let id = token.body["id"].as_str().unwrap();

    let cross = |c: TestCall| c.cookie(Some(&cookie)).header("sec-fetch-site", "cross-site");
    assert_csrf(&t.tokens_fn(cross(TestCall::new("POST", "/tokens").json(json!({"name": "stolen"})))).await);
    assert_csrf(&t.tokens_fn(cross(TestCall::new("DELETE", &format!("/tokens/{id}")))).await);
    assert_csrf(
        &t.tokens_fn(cross(TestCall::new("POST", "/cross-app/handoff").json(json!({"target_app": "billing"})))).await,
    );
    assert_csrf(&t.login_fn(cross(TestCall::new("POST", "/logout-other-devices").json(json!({"password": PW})))).await);
    // Reading is not a state change.
    assert_eq!(t.tokens_fn(cross(TestCall::new("GET", "/tokens"))).await.status, 200);
    assert_eq!(t.login_fn(cross(TestCall::new("GET", "/user"))).await.status, 200);
    assert_eq!(t.tokens_fn(TestCall::new("GET", "/tokens").cookie(Some(&cookie))).await.body["tokens"][0]["id"], id);
}

#[tokio::test]
async fn a_bearer_token_request_from_a_foreign_origin_is_not_refused() {
    let t = TestApp::aws(&[]).await;
    let cookie = t.signed_up("ann@example.com").await;
    let token = t.create_token(&cookie, json!({"name": "spa"})).await.body["token"].as_str().unwrap().to_owned();
    let r = t
        .tokens_fn(
            TestCall::new("POST", "/tokens")
                .bearer(&token)
                .header("origin", "https://evil.example")
                .header("sec-fetch-site", "cross-site")
                .json(json!({"name": "another"})),
        )
        .await;
    assert_eq!(r.status, 201, "a page cannot attach a bearer token by itself: {}", r.raw_body);
}

#[tokio::test]
async fn login_and_register_from_another_site_are_refused() {
    let t = TestApp::aws(&[]).await;
    let body = json!({"name": "Ann", "email": "ann@example.com", "password": PW, "password_confirmation": PW});
    let forged = t
        .login_fn(TestCall::new("POST", "/register").header("origin", "https://evil.example").json(body.clone()))
        .await;
    assert_csrf(&forged);
    let own = t.login_fn(TestCall::new("POST", "/register").header("sec-fetch-site", "same-origin").json(body)).await;
    assert_eq!(own.status, 201, "{}", own.raw_body);

    // Login CSRF: signing the victim's browser into the attacker's account.
    let login = || TestCall::new("POST", "/login").json(json!({"email": "ann@example.com", "password": PW}));
    assert_csrf(&t.login_fn(login().header("sec-fetch-site", "cross-site")).await);
    assert_csrf(&t.login_fn(login().header("origin", "null")).await);
    let ok = t.login_fn(login().header("origin", OWN_ORIGIN)).await;
    assert_eq!(ok.status, 200, "{}", ok.raw_body);
    // A cross-app exchange signs a browser in too.
    let exchange = TestCall::new("POST", "/cross-app/exchange")
        .header("sec-fetch-site", "cross-site")
        .json(json!({"handoff_token": "x".repeat(40), "app": "billing"}));
    assert_csrf(&t.tokens_fn(exchange).await);
}

#[tokio::test]
async fn an_allowed_origin_may_use_the_cookie() {
    let t = TestApp::aws(&[("GATEHOUSE_ALLOWED_ORIGINS", "https://app.example.test")]).await;
    let cookie = t.signed_up("ann@example.com").await;
    let other = t
        .login_fn(logout(&cookie).header("sec-fetch-site", "same-site").header("origin", "https://admin.example.test"))
        .await;
    assert_csrf(&other);
    let allowed = t
        .login_fn(logout(&cookie).header("sec-fetch-site", "same-site").header("origin", "https://app.example.test"))
        .await;
    assert_eq!(allowed.status, 204, "{}", allowed.raw_body);
}

#[tokio::test]
async fn every_response_carries_hsts_and_the_csp() {
    let t = TestApp::aws(&[]).await;
    let reg = t.register("Ann", "ann@example.com", PW).await;
    let cookie = reg.session_cookie().unwrap();
    let replies = [
        reg,
        t.user(Some(&cookie)).await,
        t.user(None).await,
        t.login("ann@example.com", "not the password at all").await,
        t.login_fn(TestCall::new("GET", "/login")).await,
        t.login_fn(TestCall::new("GET", "/nowhere")).await,
        t.login_fn(logout(&cookie).header("sec-fetch-site", "cross-site")).await,
        t.tokens_fn(TestCall::new("GET", "/tokens").cookie(Some(&cookie))).await,
        t.reset_fn(TestCall::new("POST", "/forgot-password").json(json!({"email": "ann@example.com"}))).await,
        t.reset_fn(TestCall::new("POST", "/reset-password").raw("{")).await,
        t.login_fn(logout(&cookie)).await,
    ];
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, 200, 401, 422, 405, 404, 403, 200, 202, 415, 204]);
    for r in &replies {
        assert_eq!(r.header("strict-transport-security"), Some("max-age=63072000; includeSubDomains"), "{}", r.status);
        assert_eq!(r.header("content-security-policy"), Some("default-src 'none'; frame-ancestors 'none'"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
}

#[tokio::test]
async fn the_session_cookie_is_host_only_with_the_host_prefix() {
    let t = TestApp::aws(&[]).await;
    let reg = t.register("Ann", "ann@example.com", PW).await;
    assert!(SESSION_COOKIE.starts_with("__Host-"));
    let set = reg.set_cookies();
    let session = set.iter().find(|c| c.starts_with(&format!("{SESSION_COOKIE}="))).expect("the session cookie");
    for needed in ["; Path=/", "; Secure", "; HttpOnly", "; SameSite=Lax"] {
        assert!(session.contains(needed), "{session} lacks {needed}");
    }
    for c in &set {
        assert!(c.starts_with("__Host-"), "every cookie is host-only: {c}");
        assert!(!c.to_ascii_lowercase().contains("domain="), "__Host- forbids Domain: {c}");
    }
    let cookie = reg.session_cookie().unwrap();
    // The authorizer and the functions read the prefixed name.
    let abilities = gatehouse_token_check::RouteAbilities::parse("").unwrap();
    assert!(t.authorize(&abilities, "GET /user", None, Some(&cookie)).await.is_authorized);
    let unprefixed = cookie.trim_start_matches("__Host-");
    assert_eq!(t.user(Some(unprefixed)).await.status, 401, "the bare name is not the session cookie");
    let out = t.login_fn(logout(&cookie)).await;
    let cleared = out.set_cookies();
    assert!(
        cleared.iter().any(|c| c.starts_with(&format!("{SESSION_COOKIE}=;")) && c.contains("Max-Age=0")),
        "{cleared:?}"
    );
}

#[tokio::test]
async fn with_a_cookie_domain_the_cookie_is_secure_prefixed() {
    let t = TestApp::aws(&[("GATEHOUSE_SESSION_DOMAIN", "example.test")]).await;
    let reg = t.register("Ann", "ann@example.com", PW).await;
    let cookies = reg.set_cookies();
    let set = cookies.iter().find(|c| c.starts_with("__Secure-gatehouse_session=")).expect("the session cookie");
    assert!(set.contains("; Domain=example.test") && set.contains("; Secure"), "{set}");
    let cookie = set.split(';').next().unwrap();
    assert_eq!(t.user(Some(cookie)).await.status, 200);
}
