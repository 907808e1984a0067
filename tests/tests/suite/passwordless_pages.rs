//! The account page of an account without a password (issue #31): it shows "Confirm it's you"
//! and no password field; "Email me a code" queues the mail, its code confirms this session, and
//! then the forms that need a recent confirmation work without a password, while before it (or
//! after the confirmation lapsed) they say to confirm first. `GET /user` says which accounts have
//! a password. Pages driven in process, stores in memory.

use crate::support::{mails, unique};
use gatehouse::Email;
use gatehouse_tests::http::{SESSION_COOKIE, TestApp, TestCall, TestReply};
use std::collections::{BTreeMap, BTreeSet};

const PW: &str = "correct horse battery staple 42";
const OWN_ORIGIN: &str = "https://api.example.test";
const GH_AUTHORIZE: &str = "https://github.example.test/login/oauth/authorize";
const SETTINGS: &[(&str, &str)] = &[
    ("GATEHOUSE_ARGON2_MEMORY_KIB", "64"),
    ("GATEHOUSE_ARGON2_ITERATIONS", "1"),
    ("GATEHOUSE_EMAIL_LINK_SIGNUP", "true"),
    ("GATEHOUSE_FEDERATION_PROVIDERS", "github"),
    ("GATEHOUSE_FEDERATION_GITHUB_KIND", "github"),
    ("GATEHOUSE_FEDERATION_GITHUB_CLIENT_ID", "Iv1.gatehouse0123"),
    ("GATEHOUSE_FEDERATION_GITHUB_CLIENT_SECRET", "github-client-secret-00112233445566778899aabbccddeeff"),
    ("GATEHOUSE_FEDERATION_GITHUB_AUTHORIZE_URL", GH_AUTHORIZE),
    ("GATEHOUSE_FEDERATION_GITHUB_TOKEN_URL", "https://github.example.test/login/oauth/access_token"),
    ("GATEHOUSE_FEDERATION_GITHUB_API_URL", "https://api.github.example.test"),
];
/// What the page says when the API wants a recent confirmation of an account without a password.
const CONFIRM_FIRST: &str = "Confirm it's you first: under";

/// A browser: its cookies, and what it sends with a form of the site's own page.
#[derive(Default)]
struct Browser(BTreeMap<String, String>);

impl Browser {
    fn keep(&mut self, r: &TestReply) {
        for c in r.set_cookies() {
            let pair = c.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if c.contains("Max-Age=0") || value.is_empty() {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn with_cookies(&self, call: TestCall) -> TestCall {
        let header: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if header.is_empty() { call } else { call.header("cookie", &header.join("; ")) }
    }

    async fn get(&mut self, t: &TestApp, path: &str) -> TestReply {
        let r = t.pages_fn(self.with_cookies(TestCall::new("GET", path))).await;
        self.keep(&r);
        r
    }

    /// GET `page`, then post `action` with its CSRF token and `fields`, as the page's form would.
    async fn submit(&mut self, t: &TestApp, page: &str, action: &str, fields: &[(&str, &str)]) -> TestReply {
        let shown = self.get(t, page).await;
        assert_eq!(shown.status, 200, "{page}: {}", shown.raw_body);
        let token = csrf_token(&shown.raw_body);
        let mut all = fields.to_vec();
        all.push(("_token", &token));
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(&all).finish();
        let call = TestCall::new("POST", action)
            .raw(&body)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .header("origin", OWN_ORIGIN);
        let r = t.pages_fn(self.with_cookies(call)).await;
        self.keep(&r);
        r
    }

    /// An account form posted from the account page.
    async fn act(&mut self, t: &TestApp, action: &str, fields: &[(&str, &str)]) -> TestReply {
        self.submit(t, "/account", action, fields).await
    }

    fn session(&self) -> String {
        format!("{SESSION_COOKIE}={}", self.0.get(SESSION_COOKIE).expect("signed in"))
    }
}

fn csrf_token(html: &str) -> String {
    let marker = r#"name="_token" value=""#;
    let at = html.find(marker).expect("a form with a CSRF token") + marker.len();
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

fn location(r: &TestReply) -> &str {
    r.header("location").unwrap_or_default()
}

/// Every `id` of the page is its own (axe's duplicate-id rules).
fn ids_are_unique(html: &str) {
    let mut seen = BTreeSet::new();
    for part in html.split(" id=\"").skip(1) {
        let id = &part[..part.find('"').unwrap()];
        assert!(seen.insert(id.to_owned()), "the id {id} twice");
    }
}

/// Signs up `email` through the pages' email link (sign-up on): a browser signed in to an
/// account without a password.
async fn signed_up_by_mail(t: &TestApp, email: &str) -> Browser {
    let mut b = Browser::default();
    let r = b.submit(t, "/account/sign-in", "/account/email-link", &[("email", email)]).await;
    assert_eq!((r.status, location(&r)), (303, "/account/email-link"), "{}", r.raw_body);
    let sent = mails(t).await;
    assert_eq!(sent.len(), 1);
    let marker = "type this code there: ";
    let at = sent[0].text.find(marker).expect("a code") + marker.len();
    let code = sent[0].text[at..at + 6].to_owned();
    let r = b.submit(t, "/account/email-link", "/account/email-link/complete", &[("code", &code)]).await;
    assert_eq!((r.status, location(&r)), (303, "/account"), "{}", r.raw_body);
    let user = t.env.stores.users.find_by_email(&Email::parse(email).unwrap()).await.unwrap().unwrap();
    assert!(!user.has_password());
    b
}

/// The code of the one confirmation mail the queued jobs send now.
async fn confirmation_code(t: &TestApp) -> String {
    let sent = mails(t).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].subject, "Your confirmation code");
    let at = sent[0].text.find("code is ").expect("a code") + "code is ".len();
    sent[0].text[at..at + 6].to_owned()
}

#[tokio::test]
async fn the_account_page_of_an_account_without_a_password_confirms_by_mail_and_asks_for_no_password() {
    let t = TestApp::memory(SETTINGS);
    let email = unique("ann");
    let mut b = signed_up_by_mail(&t, &email).await;
    let me = t.user(Some(&b.session())).await;
    assert_eq!((me.status, me.body["user"]["has_password"].as_bool()), (200, Some(false)), "{}", me.raw_body);

    let page = b.get(&t, "/account").await;
    assert_eq!(page.status, 200, "{}", page.raw_body);
    let html = &page.raw_body;
    assert!(html.contains("Confirm it's you</h2>"), "{html}");
    assert!(html.contains(r#"action="/account/confirm-by-email""#) && html.contains("Email me a code"));
    assert!(html.contains(r#"action="/account/confirm-by-email/verify""#) && html.contains(r#"id="confirm-code""#));
    assert!(!html.contains(r#"type="password""#), "no password field: {html}");
    assert!(html.contains(r#"href="/account/forgot-password""#), "a password can be set");
    assert!(html.contains(r#"action="/account/providers/github/link""#));
    ids_are_unique(html);
    // Every form carries its CSRF token.
    assert_eq!(html.matches("<form ").count(), html.matches(r#"name="_token""#).count());

    // Before any confirmation: the forms say to confirm first, and nothing happens.
    let r = b.act(&t, "/account/two-factor/enable", &[]).await;
    assert_eq!(r.status, 423, "{}", r.raw_body);
    assert!(r.raw_body.contains(CONFIRM_FIRST) && !r.raw_body.contains("Scan this code"), "{}", r.raw_body);
    let r = b.act(&t, "/account/providers/github/link", &[]).await;
    assert_eq!(r.status, 423, "{}", r.raw_body);
    assert!(r.raw_body.contains(CONFIRM_FIRST), "{}", r.raw_body);
    let r = b.act(&t, "/account/delete", &[]).await;
    assert_eq!(r.status, 423, "{}", r.raw_body);
    assert_eq!(t.user(Some(&b.session())).await.status, 200, "the account is still there");

    // "Email me a code": the mail is queued.
    let r = b.act(&t, "/account/confirm-by-email", &[]).await;
    assert_eq!((r.status, location(&r)), (303, "/account?notice=confirmation-sent"), "{}", r.raw_body);
    assert!(b.get(&t, location(&r)).await.raw_body.contains("A code is on its way to your email"));
    let code = confirmation_code(&t).await;

    // A wrong code is said beside its field; the right one confirms this session.
    let r = b.act(&t, "/account/confirm-by-email/verify", &[("code", "000000")]).await;
    assert_eq!(r.status, 422, "{}", r.raw_body);
    assert!(r.raw_body.contains(r#"id="confirm-code-error""#), "{}", r.raw_body);
    // The wrong answer spent nothing: the code was not the last attempt.
    let r = b.act(&t, "/account/confirm-by-email/verify", &[("code", &code)]).await;
    assert_eq!((r.status, location(&r)), (303, "/account?notice=confirmed-by-email"), "{}", r.raw_body);
    let shown = b.get(&t, location(&r)).await;
    assert!(
        shown.raw_body.contains("Confirmed: for the next 15 minutes you can change how you sign in."),
        "{}",
        shown.raw_body
    );

    // Now the forms work without a password: two-factor's first step, connecting a provider.
    let r = b.act(&t, "/account/two-factor/enable", &[]).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert!(r.raw_body.contains("Scan this code"), "{}", r.raw_body);
    let r = b.act(&t, "/account/providers/github/link", &[]).await;
    assert_eq!(r.status, 303, "{}", r.raw_body);
    assert!(location(&r).starts_with(GH_AUTHORIZE), "{}", location(&r));

    // Once the confirmation lapses, they say to confirm again.
    t.env.clock.advance(chrono::Duration::minutes(16));
    let r = b.act(&t, "/account/two-factor/enable", &[]).await;
    assert_eq!(r.status, 423, "{}", r.raw_body);
    assert!(r.raw_body.contains(CONFIRM_FIRST), "{}", r.raw_body);
}

#[tokio::test]
async fn a_confirmation_by_mail_deletes_an_account_without_a_password_from_its_page() {
    let t = TestApp::memory(SETTINGS);
    let email = unique("ann");
    let mut b = signed_up_by_mail(&t, &email).await;
    let session = b.session();
    let r = b.act(&t, "/account/confirm-by-email", &[]).await;
    assert_eq!(r.status, 303, "{}", r.raw_body);
    let code = confirmation_code(&t).await;
    let r = b.act(&t, "/account/confirm-by-email/verify", &[("code", &code)]).await;
    assert_eq!(r.status, 303, "{}", r.raw_body);
    let r = b.act(&t, "/account/delete", &[]).await;
    assert_eq!((r.status, location(&r)), (303, "/account/sign-in?notice=deleted"), "{}", r.raw_body);
    assert_eq!(t.user(Some(&session)).await.status, 401);
}

#[tokio::test]
async fn an_account_with_a_password_keeps_its_password_fields_and_get_user_says_so() {
    let t = TestApp::memory(SETTINGS);
    let email = unique("bob");
    let reg = t.register("Bob", &email, PW).await;
    assert_eq!(reg.status, 201, "{}", reg.raw_body);
    assert_eq!(reg.body["user"]["has_password"], true);
    let cookie = reg.session_cookie().expect("a session");
    let me = t.user(Some(&cookie)).await;
    assert_eq!(me.body["user"]["has_password"], true, "{}", me.raw_body);

    let mut b = Browser::default();
    b.0.insert(SESSION_COOKIE.to_owned(), cookie.split_once('=').unwrap().1.to_owned());
    let page = b.get(&t, "/account").await;
    assert_eq!(page.status, 200, "{}", page.raw_body);
    let html = &page.raw_body;
    assert!(!html.contains("/account/confirm-by-email"), "no mailed code for an account with a password");
    for id in ["password-current_password", "tf-password", "others-password", "token-password", "delete-password"] {
        assert!(html.contains(&format!(r#"id="{id}""#)), "{id}: {html}");
    }
    ids_are_unique(html);
    // A code asked for anyway is refused in words.
    let r = b.act(&t, "/account/confirm-by-email", &[]).await;
    assert_eq!(r.status, 422, "{}", r.raw_body);
    assert!(r.raw_body.contains("This account has a password"), "{}", r.raw_body);
}
