//! The hosted pages as an attacker and a careful user see them: every form post needs the Origin
//! check *and* a CSRF token bound to this browser's session (missing, foreign, forged, replayed
//! into another session: refused), mailed secrets leave the address bar at once, and every page
//! carries headers that forbid framing, script and referrers. Stores on the emulator; the real
//! browser walk-through is tests/browser/test_pages.py (scripts/browser-test).

use gatehouse::mail::{LogMailer, Mail};
use gatehouse_tests::http::{SESSION_COOKIE, TestApp, TestCall, TestReply};
use gatehouse_tests::jobs::drain;
use std::collections::BTreeMap;
use std::sync::Arc;

const PW: &str = "correct horse battery staple 42";
const NEW_PW: &str = "a brand new and long passphrase 7";
const OWN_ORIGIN: &str = "https://api.example.test";

/// A browser: a cookie jar, and what it sends with a form post from the site's own page.
#[derive(Default, Clone)]
struct Browser {
    jar: BTreeMap<String, String>,
}

impl Browser {
    fn keep(&mut self, r: &TestReply) {
        r.keep_cookies(&mut self.jar);
    }

    fn with_cookies(&self, call: TestCall) -> TestCall {
        if self.jar.is_empty() {
            return call;
        }
        let header: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        call.header("cookie", &header.join("; "))
    }

    async fn get(&mut self, t: &TestApp, path: &str) -> TestReply {
        let r = t.pages_fn(self.with_cookies(TestCall::new("GET", path))).await;
        self.keep(&r);
        r
    }

    /// A form post as the site's own page sends it.
    async fn post(&mut self, t: &TestApp, path: &str, fields: &[(&str, &str)]) -> TestReply {
        let call = form(TestCall::new("POST", path), fields)
            .header("sec-fetch-site", "same-origin")
            .header("origin", OWN_ORIGIN);
        let r = t.pages_fn(self.with_cookies(call)).await;
        self.keep(&r);
        r
    }

    /// GET `page`, then post its form (the CSRF token read from the page) with `fields`.
    async fn submit(&mut self, t: &TestApp, page: &str, action: &str, fields: &[(&str, &str)]) -> TestReply {
        let shown = self.get(t, page).await;
        assert_eq!(shown.status, 200, "{page}: {}", shown.raw_body);
        let token = csrf_token(&shown.raw_body);
        let mut all = fields.to_vec();
        all.push(("_token", &token));
        self.post(t, action, &all).await
    }

    fn signed_in(&self) -> bool {
        self.jar.contains_key(SESSION_COOKIE)
    }
}

fn form(call: TestCall, fields: &[(&str, &str)]) -> TestCall {
    let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
    call.raw(&body).header("content-type", "application/x-www-form-urlencoded")
}

/// The first CSRF token in a page.
fn csrf_token(html: &str) -> String {
    let at =
        html.find(r#"name="_token" value=""#).expect("a form with a CSRF token") + r#"name="_token" value=""#.len();
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

fn location(r: &TestReply) -> &str {
    r.header("location").unwrap_or_default()
}

async fn mails(t: &TestApp) -> Vec<Mail> {
    let mailer = LogMailer::quiet();
    drain(&t.worker(Arc::new(mailer.clone())), 10).await;
    mailer.sent()
}

/// The path and query of the link in `mail` whose path holds `marker`.
fn link_in(mail: &Mail, marker: &str) -> String {
    let url = mail.text.split_whitespace().find(|w| w.contains(marker)).expect("a link");
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest[rest.find('/').expect("a path")..].to_owned()
}

async fn registered(t: &TestApp, email: &str) -> Browser {
    let mut b = Browser::default();
    let fields = [("name", "Ann"), ("email", email), ("password", PW), ("password_confirmation", PW)];
    let r = b.submit(t, "/account/register", "/account/register", &fields).await;
    assert_eq!((r.status, location(&r)), (303, "/account?notice=registered"), "{}", r.raw_body);
    assert!(b.signed_in());
    b
}

#[tokio::test]
async fn a_form_post_needs_the_token_of_this_browser_and_the_sites_own_origin() {
    let t = TestApp::aws(&[]).await;
    registered(&t, "ann@example.com").await;
    let creds = [("email", "ann@example.com"), ("password", PW)];

    let mut victim = Browser::default();
    let page = victim.get(&t, "/account/sign-in").await;
    assert!(
        page.set_cookies().iter().any(|c| c.starts_with("__Host-gatehouse_session_csrf=") && c.contains("HttpOnly"))
    );
    let token = csrf_token(&page.raw_body);
    let refused = |r: &TestReply, what: &str| {
        assert_eq!(r.status, 403, "{what}: {}", r.raw_body);
        assert!(r.set_cookies().iter().all(|c| !c.starts_with(SESSION_COOKIE)), "{what}: signed in anyway");
    };

    // No token, a forged one, and another browser's (its own cookie and token, sent with ours).
    refused(&victim.post(&t, "/account/sign-in", &creds).await, "no token");
    refused(
        &victim.post(&t, "/account/sign-in", &[creds[0], creds[1], ("_token", "1795718444.forged")]).await,
        "forged",
    );
    let mut attacker = Browser::default();
    let theirs = csrf_token(&attacker.get(&t, "/account/sign-in").await.raw_body);
    refused(&victim.post(&t, "/account/sign-in", &[creds[0], creds[1], ("_token", &theirs)]).await, "foreign");
    // The right token from another site's form (login CSRF): the Origin check still refuses it.
    for (h, v) in [("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")] {
        let call =
            form(TestCall::new("POST", "/account/sign-in"), &[creds[0], creds[1], ("_token", &token)]).header(h, v);
        refused(&t.pages_fn(victim.with_cookies(call)).await, h);
    }
    // Not a form.
    let json =
        victim.with_cookies(TestCall::new("POST", "/account/sign-in").json(serde_json::json!({"_token": token})));
    assert_eq!(t.pages_fn(json).await.status, 415);

    // The same post with the token: signed in.
    let ok = victim.post(&t, "/account/sign-in", &[creds[0], creds[1], ("_token", &token)]).await;
    assert_eq!((ok.status, location(&ok)), (303, "/account"), "{}", ok.raw_body);
    assert!(victim.signed_in());
}

#[tokio::test]
async fn a_token_from_one_session_is_refused_in_the_next() {
    let t = TestApp::aws(&[]).await;
    let mut b = registered(&t, "ann@example.com").await;
    let account = b.get(&t, "/account").await;
    assert_eq!(account.status, 200, "{}", account.raw_body);
    let old = csrf_token(&account.raw_body);
    let out = b.post(&t, "/account/sign-out", &[("_token", &old)]).await;
    assert_eq!((out.status, location(&out)), (303, "/account/sign-in?notice=signed-out"));
    assert!(!b.signed_in());

    // Replayed before signing in again (bound to the ended session, not the pre-session cookie)…
    let replay = b.post(&t, "/account/tokens", &[("name", "x"), ("_token", &old)]).await;
    assert_eq!(replay.status, 403, "{}", replay.raw_body);
    // …and after: another session, another token.
    let r =
        b.submit(&t, "/account/sign-in", "/account/sign-in", &[("email", "ann@example.com"), ("password", PW)]).await;
    assert_eq!(r.status, 303, "{}", r.raw_body);
    let replay = b.post(&t, "/account/tokens", &[("name", "x"), ("_token", &old)]).await;
    assert_eq!(replay.status, 403, "{}", replay.raw_body);
    let listed = t.tokens_fn(b.with_cookies(TestCall::new("GET", "/tokens"))).await;
    assert_eq!(listed.body["tokens"].as_array().map(Vec::len), Some(0), "no token was made by a replay");

    // The fresh page's token works; the plaintext is shown once and is a working token.
    // A token with every ability that never expires needs the password, asked on the same form.
    let unconfirmed = b.submit(&t, "/account", "/account/tokens", &[("name", "ci")]).await;
    assert_eq!(unconfirmed.status, 423, "{}", unconfirmed.raw_body);
    let made = b.submit(&t, "/account", "/account/tokens", &[("name", "ci"), ("password", PW)]).await;
    assert_eq!(made.status, 201, "{}", made.raw_body);
    let start = made.raw_body.find(r#"id="new-token">"#).expect("the plaintext") + r#"id="new-token">"#.len();
    let plaintext = &made.raw_body[start..start + made.raw_body[start..].find('<').unwrap()];
    let me = t.login_fn(TestCall::new("GET", "/user").bearer(plaintext)).await;
    assert_eq!(me.status, 200, "{}", me.raw_body);
    assert!(!b.get(&t, "/account").await.raw_body.contains(plaintext), "shown once");
}

#[tokio::test]
async fn the_mailed_reset_link_leaves_the_address_bar_and_resets_once() {
    let t = TestApp::aws(&[]).await;
    registered(&t, "ann@example.com").await;
    let mut b = Browser::default();
    let r = b.submit(&t, "/account/forgot-password", "/account/forgot-password", &[("email", "ann@example.com")]).await;
    assert_eq!(r.status, 200);
    assert!(r.raw_body.contains("If an account exists"), "{}", r.raw_body);
    let mail = mails(&t).await.into_iter().find(|m| m.subject == "Reset your password").expect("a reset mail");
    let link = link_in(&mail, "/account/reset-password?");
    let token = link.split("token=").nth(1).unwrap().split('&').next().unwrap().to_owned();

    // The landing: the secret goes into an HttpOnly cookie, the browser to a clean address.
    let landing = b.get(&t, &link).await;
    assert_eq!((landing.status, location(&landing)), (303, "/account/reset-password"));
    assert_eq!(landing.header("referrer-policy"), Some("no-referrer"));
    let cookie = landing.set_cookies().into_iter().find(|c| c.contains("_reset=")).expect("the link's cookie");
    assert!(cookie.starts_with("__Host-gatehouse_session_reset=") && cookie.contains("; Path=/;"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("Secure") && cookie.contains("Max-Age=3600"), "{cookie}");
    assert!(!cookie.contains("Domain"), "{cookie}");
    let form = b.get(&t, "/account/reset-password").await;
    assert_eq!(form.status, 200);
    assert!(form.raw_body.contains("ann@example.com") && !form.raw_body.contains(&token), "no secret in the page");
    assert_eq!(form.header("referrer-policy"), Some("no-referrer"));

    let fields = [("password", NEW_PW), ("password_confirmation", "a different one entirely 12345")];
    let mismatch = b.submit(&t, "/account/reset-password", "/account/reset-password", &fields).await;
    assert_eq!(mismatch.status, 422);
    assert!(mismatch.raw_body.contains(r#"aria-invalid="true""#), "the field is marked: {}", mismatch.raw_body);
    let fields = [("password", NEW_PW), ("password_confirmation", NEW_PW)];
    let done = b.submit(&t, "/account/reset-password", "/account/reset-password", &fields).await;
    assert_eq!((done.status, location(&done)), (303, "/account/sign-in?notice=password-reset"), "{}", done.raw_body);
    assert!(
        done.set_cookies().iter().any(|c| c.contains("_reset=") && c.contains("Max-Age=0")),
        "the cookie is cleared"
    );
    assert_eq!(t.login("ann@example.com", NEW_PW).await.status, 200);

    // A damaged link (a page elsewhere can send a browser here with any text) keeps nothing.
    let damaged = b.get(&t, "/account/reset-password?token=abc&email=%3Cb%3Ecall%20us%3C%2Fb%3E").await;
    assert_eq!(damaged.status, 400, "{}", damaged.raw_body);
    assert!(damaged.set_cookies().is_empty() && !damaged.raw_body.contains("call us"));

    // The same link again, for another password: used up.
    b.get(&t, &link).await;
    let other = "and yet another passphrase 77";
    let fields = [("password", other), ("password_confirmation", other)];
    let again = b.submit(&t, "/account/reset-password", "/account/reset-password", &fields).await;
    assert_eq!(again.status, 400, "{}", again.raw_body);
    assert!(again.raw_body.contains("invalid or has expired"));
}

#[tokio::test]
async fn errors_are_words_beside_their_fields_and_a_limit_says_how_long_to_wait() {
    let t = TestApp::aws(&[]).await;
    let mut b = Browser::default();
    let hostile = "<img src=x onerror=alert(1)>@example.com";
    let fields = [("name", "Ann"), ("email", hostile), ("password", "short"), ("password_confirmation", "short")];
    let r = b.submit(&t, "/account/register", "/account/register", &fields).await;
    assert_eq!(r.status, 422);
    assert!(
        r.raw_body.contains(r#"id="password-error""#) && r.raw_body.contains("at least 15 characters"),
        "{}",
        r.raw_body
    );
    assert!(r.raw_body.contains(r#"aria-describedby="password-hint password-error""#), "{}", r.raw_body);
    assert!(r.raw_body.contains(r#"role="alert""#));
    assert!(!r.raw_body.contains("<img") && r.raw_body.contains("&lt;img"), "what was typed comes back escaped");
    assert!(!r.raw_body.contains(r#"value="short""#), "a password is never sent back");

    registered(&t, "ann@example.com").await;
    let mut throttled = None;
    for _ in 0..10 {
        let r = b
            .submit(&t, "/account/sign-in", "/account/sign-in", &[("email", "ann@example.com"), ("password", "wrong")])
            .await;
        if r.status == 429 {
            throttled = Some(r);
            break;
        }
        assert!(r.raw_body.contains("do not match our records"), "{}", r.raw_body);
    }
    let r = throttled.expect("the login limit answers 429");
    assert!(r.raw_body.contains("Too many attempts. Please try again in "), "{}", r.raw_body);
}

#[tokio::test]
async fn every_page_forbids_framing_script_and_referrers_and_the_stylesheet_is_cached_by_hash() {
    let t = TestApp::aws(&[]).await;
    let mut b = Browser::default();
    for page in ["/account/sign-in", "/account/register", "/account/forgot-password"] {
        let r = b.get(&t, page).await;
        assert_eq!(r.status, 200, "{page}");
        let csp = r.header("content-security-policy").unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains("default-src 'none'") && csp.contains("form-action 'self'"), "{csp}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        // One script, the passkeys', from this site under its hash; nothing inline.
        assert_eq!(r.raw_body.matches("<script").count(), 1, "{page}");
        assert!(r.raw_body.contains(r#"<script src="/account/assets/passkeys."#), "{page}");
        assert!(!r.raw_body.contains(" style=") && !r.raw_body.contains(" onclick="), "{page}");
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"), "{csp}");
        assert!(r.raw_body.contains(r#"<html lang="en">"#));
    }
    let page = b.get(&t, "/account/sign-in").await.raw_body;
    let href = page.split(r#"rel="stylesheet" href=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    assert!(href.starts_with("/account/assets/style.") && href.ends_with(".css"), "{href}");
    let css = b.get(&t, &href).await;
    assert_eq!(css.status, 200);
    assert_eq!(css.header("cache-control"), Some("public, max-age=31536000, immutable"));
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(b.get(&t, "/account/assets/style.0123456789ab.css").await.status, 404);
    let src = page.split(r#"<script src=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    let js = b.get(&t, &src).await;
    assert_eq!(js.status, 200);
    assert_eq!(js.header("cache-control"), Some("public, max-age=31536000, immutable"));
    assert_eq!(js.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert_eq!(b.get(&t, "/account/assets/passkeys.0123456789ab.js").await.status, 404);
    let none = b.get(&t, "/account/nope").await;
    assert_eq!(none.status, 404);
    assert!(none.header("content-type").unwrap().starts_with("text/html"));
    // Signed out, the account page sends the browser to sign in.
    let account = b.get(&t, "/account").await;
    assert_eq!((account.status, location(&account)), (303, "/account/sign-in"));
}

#[tokio::test]
async fn a_verification_link_lands_signed_in_or_waits_for_the_sign_in() {
    let t = TestApp::aws(&[]).await;
    let mut ann = registered(&t, "ann@example.com").await;
    let link = link_in(
        &mails(&t).await.into_iter().find(|m| m.text.contains("/account/verify-email/")).expect("a verification mail"),
        "/account/verify-email/",
    );
    // Opened in a browser that is not signed in: kept in a cookie while it signs in.
    let mut fresh = Browser::default();
    let landing = fresh.get(&t, &link).await;
    assert_eq!((landing.status, location(&landing)), (303, "/account/verify-email"));
    let kept = landing.set_cookies().into_iter().find(|c| c.contains("_verify=")).expect("the link's cookie");
    assert!(
        kept.starts_with("__Host-gatehouse_session_verify=") && kept.contains("; Path=/;") && kept.contains("HttpOnly")
    );
    let r = fresh.get(&t, "/account/verify-email").await;
    assert_eq!((r.status, location(&r)), (303, "/account/sign-in?notice=verify-sign-in"));
    // Another account signed in there: refused, and the link is dropped.
    registered(&t, "bob@example.com").await;
    let mut bob = fresh.clone();
    let s =
        bob.submit(&t, "/account/sign-in", "/account/sign-in", &[("email", "bob@example.com"), ("password", PW)]).await;
    assert_eq!(location(&s), "/account/verify-email", "back to the link after signing in");
    let refused = bob.get(&t, "/account/verify-email").await;
    assert_eq!(refused.status, 403, "{}", refused.raw_body);
    assert!(
        refused.set_cookies().iter().any(|c| c.contains("_verify=") && c.contains("Max-Age=0")),
        "the link is dropped"
    );
    // Ann's own browser: verified.
    ann.get(&t, &link).await;
    let ok = ann.get(&t, "/account/verify-email").await;
    assert_eq!((ok.status, location(&ok)), (303, "/account?notice=verified"));
    let me = t.login_fn(ann.with_cookies(TestCall::new("GET", "/user"))).await;
    assert!(me.body["user"]["email_verified_at"].is_string(), "{}", me.raw_body);
}

#[tokio::test]
async fn a_token_from_before_a_sign_in_is_refused_after_the_sign_out() {
    let t = TestApp::aws(&[]).await;
    registered(&t, "ann@example.com").await;
    let mut b = Browser::default();
    let before = csrf_token(&b.get(&t, "/account/forgot-password").await.raw_body);
    let r =
        b.submit(&t, "/account/sign-in", "/account/sign-in", &[("email", "ann@example.com"), ("password", PW)]).await;
    assert_eq!(r.status, 303);
    assert!(r.set_cookies().iter().any(|c| c.starts_with("__Host-gatehouse_session_csrf=")), "renewed at sign-in");
    let token = csrf_token(&b.get(&t, "/account").await.raw_body);
    let out = b.post(&t, "/account/sign-out", &[("_token", &token)]).await;
    assert!(out.set_cookies().iter().any(|c| c.starts_with("__Host-gatehouse_session_csrf=")), "renewed at sign-out");
    let replay = b.post(&t, "/account/forgot-password", &[("email", "ann@example.com"), ("_token", &before)]).await;
    assert_eq!(replay.status, 403, "{}", replay.raw_body);
}

#[tokio::test]
async fn with_a_shared_session_domain_a_sibling_host_cannot_plant_a_binding() {
    let t = TestApp::aws(&[("GATEHOUSE_SESSION_DOMAIN", "example.test")]).await;
    let mut victim = Browser::default();
    let page = victim.get(&t, "/account/register").await;
    let csrf = page.set_cookies().into_iter().find(|c| c.contains("_csrf=")).expect("the browser cookie");
    assert!(csrf.starts_with("__Host-gatehouse_session_csrf=") && csrf.contains("; Path=/;"), "{csrf}");
    assert!(!csrf.contains("Domain"), "host-only even when the session cookie is shared: {csrf}");
    let fields = [("name", "Ann"), ("email", "ann@example.com"), ("password", PW), ("password_confirmation", PW)];
    let r = victim.submit(&t, "/account/register", "/account/register", &fields).await;
    assert_eq!(r.status, 303, "{}", r.raw_body);
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with("__Secure-gatehouse_session=") && c.contains("Domain=example.test"))
    );

    // A sibling host can set the shared session cookie in the victim's browser, and knows the
    // token its own browser got with that value; the victim's own browser cookie still differs.
    let mut attacker = Browser::default();
    attacker.jar.insert("__Secure-gatehouse_session".into(), "planted".into());
    let theirs = csrf_token(&attacker.get(&t, "/account/sign-in").await.raw_body);
    let mut planted = victim.clone();
    planted.jar.insert("__Secure-gatehouse_session".into(), "planted".into());
    let r = planted
        .post(&t, "/account/sign-in", &[("email", "mallory@example.com"), ("password", PW), ("_token", &theirs)])
        .await;
    assert_eq!(r.status, 403, "{}", r.raw_body);
}

#[tokio::test]
async fn a_page_acts_as_its_session_never_as_a_bearer_token_the_browser_sends() {
    let t = TestApp::aws(&[]).await;
    let ann = registered(&t, "ann@example.com").await;
    let bob = t.signed_up("bob@example.com").await;
    let bobs = t.create_token(&bob, serde_json::json!({"name": "bob"})).await;
    let bobs = bobs.body["token"].as_str().expect("a token").to_owned();
    let call = ann.with_cookies(TestCall::new("GET", "/account")).bearer(&bobs);
    let page = t.pages_fn(call).await;
    assert_eq!(page.status, 200, "{}", page.raw_body);
    assert!(page.raw_body.contains("ann@example.com") && !page.raw_body.contains("bob@example.com"));
    let token = csrf_token(&page.raw_body);
    let call =
        form(TestCall::new("POST", "/account/tokens"), &[("name", "made"), ("password", PW), ("_token", &token)])
            .header("sec-fetch-site", "same-origin")
            .bearer(&bobs);
    let made = t.pages_fn(ann.with_cookies(call)).await;
    assert_eq!(made.status, 201, "{}", made.raw_body);
    let listed = t.tokens_fn(TestCall::new("GET", "/tokens").bearer(&bobs)).await;
    assert_eq!(
        listed.body["tokens"].as_array().map(Vec::len),
        Some(1),
        "nothing was made for Bob: {}",
        listed.raw_body
    );
}
