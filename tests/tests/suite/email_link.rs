//! Passwordless sign-in by mail (issue #31): one mail holds a link and a six-digit code, bound to
//! the browser that asked. A forwarded link signs no one in while the code typed where the
//! request was made does; each mail works once however many race it; it expires; the address and
//! the client are counted; a known and an unknown address get the same answer, cookie and AWS
//! calls; five wrong codes end it; a second factor still gets its challenge; a disabled account
//! gets nothing; sign-up only when enabled, and the account it makes has no password but a
//! mailed proof instead. Stores in memory unless a test says otherwise.

use crate::support::{mails, unique};
use gatehouse::Email;
use gatehouse::mail::Mail;
use gatehouse::tables::users::{CredentialChange, UserId};
use gatehouse_tests::http::{SESSION_COOKIE, TestApp, TestCall, TestReply};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const PW: &str = "correct horse battery staple 42";
const BINDING: &str = "__Host-gatehouse_email_link";
const SUBJECT: &str = "Your sign-in link";
const QUICK: &[(&str, &str)] = &[("GATEHOUSE_ARGON2_MEMORY_KIB", "64"), ("GATEHOUSE_ARGON2_ITERATIONS", "1")];

/// `name=value` of the cookie `name` set by `r`, if any (not a clearing one).
fn cookie_of(r: &TestReply, name: &str) -> Option<String> {
    r.set_cookies()
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")) && !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

/// `POST /auth/email-link` for `email` from the client at `ip`.
async fn ask(t: &TestApp, email: &str, ip: &str) -> TestReply {
    t.login_fn(TestCall::new("POST", "/auth/email-link").from_ip(ip).json(json!({ "email": email }))).await
}

/// Asks for `email` and returns this browser's binding cookie.
async fn asked(t: &TestApp, email: &str) -> String {
    let r = ask(t, email, "203.0.113.7").await;
    assert_eq!(r.status, 202, "{}", r.raw_body);
    cookie_of(&r, BINDING).expect("the binding cookie")
}

/// The link's token and the code of a sign-in mail.
fn secrets(mail: &Mail) -> (String, String) {
    let at = mail.text.find("token=").expect("a link") + "token=".len();
    let token = mail.text[at..].split_whitespace().next().unwrap().to_owned();
    let at = mail.text.find("type this code there: ").expect("a code") + "type this code there: ".len();
    (token, mail.text[at..at + 6].to_owned())
}

/// The one sign-in mail to `email` among those the queued jobs send now.
async fn mailed(t: &TestApp, email: &str) -> (String, String) {
    let sent: Vec<Mail> = mails(t).await.into_iter().filter(|m| m.to == email && m.subject == SUBJECT).collect();
    assert_eq!(sent.len(), 1, "one mail to {email}");
    secrets(&sent[0])
}

async fn complete(t: &TestApp, binding: Option<&str>, body: Value) -> TestReply {
    t.login_fn(TestCall::new("POST", "/auth/email-link/complete").cookie(binding).json(body)).await
}

/// A registered account whose address is verified: its id.
async fn verified(t: &TestApp, email: &str) -> UserId {
    let r = t.register("Ann", email, PW).await;
    assert_eq!(r.status, 201, "{}", r.raw_body);
    let id = UserId::parse(r.body["user"]["id"].as_str().unwrap()).unwrap();
    let users = &t.env.stores.users;
    assert!(users.mark_email_verified(&id, &Email::parse(email).unwrap(), t.env.clock_now()).await.unwrap());
    id
}

fn refused(r: &TestReply) -> bool {
    r.status == 422 && r.error_code() == Some("email_link_invalid") && r.session_cookie().is_none()
}

async fn signed_in_as(t: &TestApp, r: &TestReply) -> String {
    let cookie = r.session_cookie().expect("a session cookie");
    let me = t.user(Some(&cookie)).await;
    assert_eq!(me.status, 200, "{}", me.raw_body);
    me.body["user"]["email"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_forwarded_link_signs_no_one_in_and_the_code_typed_where_asked_does() {
    let t = TestApp::memory(QUICK);
    let email = unique("ann");
    verified(&t, &email).await;
    let binding = asked(&t, &email).await;
    let (token, code) = mailed(&t, &email).await;

    // Opened elsewhere: no binding cookie, or another browser's.
    let elsewhere = asked(&t, &unique("bob")).await;
    for other in [None, Some(elsewhere.as_str())] {
        let r = complete(&t, other, json!({ "token": token })).await;
        assert!(refused(&r), "{}", r.raw_body);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("another browser"), "{}", r.raw_body);
        // The code does nothing without the asking browser either.
        assert!(refused(&complete(&t, other, json!({ "code": code })).await));
    }
    // The hosted page the link lands on, in a browser that did not ask: no button, the words.
    let landed = t.pages_fn(TestCall::new("GET", &format!("/account/email-link?token={token}"))).await;
    assert_eq!(landed.status, 303);
    let jar = cookie_of(&landed, "__Host-gatehouse_session_email_link_token").expect("the token moved to a cookie");
    let page = t.pages_fn(TestCall::new("GET", "/account/email-link").cookie(Some(&jar))).await;
    assert_eq!(page.status, 200, "{}", page.raw_body);
    assert!(page.raw_body.contains("asked for in another browser") && !page.raw_body.contains("Finish signing in"));
    assert!(page.session_cookie().is_none());

    // Nothing was taken: the code where the request was made signs in.
    let r = complete(&t, Some(&binding), json!({ "code": code })).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert_eq!(signed_in_as(&t, &r).await, email);
    assert!(r.set_cookies().iter().any(|c| c.starts_with(&format!("{BINDING}=;")) && c.contains("Max-Age=0")));
    // And the mail is spent: its link too.
    assert!(refused(&complete(&t, Some(&binding), json!({ "token": token })).await));
}

#[tokio::test]
async fn each_mail_signs_in_once_even_when_eight_uses_race() {
    let t = TestApp::aws(QUICK).await;
    let email = unique("ann");
    verified(&t, &email).await;
    let binding = asked(&t, &email).await;
    let (token, code) = mailed(&t, &email).await;
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let body = if i % 2 == 0 { json!({ "token": token }) } else { json!({ "code": code }) };
            Box::pin(complete(&t, Some(&binding), body)) as Pending<'_>
        })
        .collect();
    let replies = join_all(calls).await;
    let signed_in: Vec<&TestReply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(signed_in.len(), 1, "{:?}", replies.iter().map(|r| (r.status, r.error_code())).collect::<Vec<_>>());
    assert!(replies.iter().filter(|r| r.status != 200).all(refused));
    // The session is the one: a replay afterwards, by link or code, is refused.
    assert!(refused(&complete(&t, Some(&binding), json!({ "token": token })).await));
    assert!(refused(&complete(&t, Some(&binding), json!({ "code": code })).await));
}

#[tokio::test]
async fn a_link_and_its_code_expire_after_fifteen_minutes_and_a_late_job_mails_nothing() {
    let t = TestApp::memory(QUICK);
    let email = unique("ann");
    verified(&t, &email).await;
    let binding = asked(&t, &email).await;
    let (token, code) = mailed(&t, &email).await;
    t.env.clock.advance(chrono::Duration::minutes(15) + chrono::Duration::seconds(1));
    assert!(refused(&complete(&t, Some(&binding), json!({ "code": code })).await));
    assert!(refused(&complete(&t, Some(&binding), json!({ "token": token })).await));

    // A job that runs after the link's life mails a dead link to no one.
    asked(&t, &email).await;
    t.env.clock.advance(chrono::Duration::minutes(16));
    assert!(mails(&t).await.is_empty());
}

#[tokio::test]
async fn the_address_and_the_client_are_counted_before_anything_is_read() {
    let t = TestApp::memory(QUICK);
    let email = unique("ann");
    verified(&t, &email).await;
    for _ in 0..3 {
        assert_eq!(ask(&t, &email, "203.0.113.7").await.status, 202);
    }
    // The fourth in 15 minutes, from anywhere: the address has had its mails.
    for ip in ["203.0.113.7", "198.51.100.9"] {
        let r = ask(&t, &email, ip).await;
        assert_eq!((r.status, r.error_code()), (429, Some("too_many_requests")), "{}", r.raw_body);
        assert!(r.header("retry-after").is_some() && cookie_of(&r, BINDING).is_none());
    }
    assert_eq!(mails(&t).await.len(), 3);
    // And a day's worth (here 4), however the windows of fifteen minutes free themselves.
    let t = TestApp::memory(&[QUICK, &[("GATEHOUSE_EMAIL_LINK_PER_ADDRESS_PER_DAY", "4")]].concat());
    for _ in 0..3 {
        assert_eq!(ask(&t, &email, "192.0.2.1").await.status, 202);
    }
    t.env.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(ask(&t, &email, "192.0.2.1").await.status, 202);
    assert_eq!(ask(&t, &email, "192.0.2.1").await.status, 429, "the day's fourth was the last");

    // Per client: ten a minute, whatever the addresses.
    let t = TestApp::memory(QUICK);
    for _ in 0..10 {
        assert_eq!(ask(&t, &unique("x"), "203.0.113.50").await.status, 202);
    }
    assert_eq!(ask(&t, &unique("x"), "203.0.113.50").await.status, 429);
    assert_eq!(ask(&t, &unique("x"), "203.0.113.51").await.status, 202, "another client's count is its own");
}

/// On the emulator, counted on the wire: a known and an unknown address get the same status,
/// body and cookie, and make the same AWS calls; only the job, later, tells them apart.
#[tokio::test]
async fn a_known_and_an_unknown_address_get_the_same_answer_cookie_and_calls() {
    let (env, wire) = gatehouse_tests::wire::counted_env().await;
    let t = TestApp::with(env, QUICK);
    let known = unique("ann");
    verified(&t, &known).await;
    let unknown = unique("nobody");
    let mut seen = Vec::new();
    for email in [&known, &unknown, &known, &unknown] {
        wire.take();
        let r = ask(&t, email, "203.0.113.7").await;
        let cookie = r.set_cookies();
        assert_eq!(cookie.len(), 1, "{cookie:?}");
        let shape = cookie[0].split_once('=').map(|(n, rest)| {
            let (value, attributes) = rest.split_once(';').unwrap();
            (n.to_owned(), value.len(), attributes.to_owned())
        });
        seen.push((r.status, r.raw_body.clone(), shape, wire.take()));
    }
    assert_eq!(seen[0], seen[1], "a known and an unknown address");
    assert_eq!(seen[2], seen[3]);
    let calls: BTreeMap<String, usize> = [
        // The three counters, the address (and the user, or a decoy), the record and the
        // browser's pointer, the job.
        ("dynamodb:TransactWriteItems", 1),
        ("dynamodb:GetItem", 2),
        ("dynamodb:PutItem", 2),
        ("sqs:SendMessage", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(seen[0].3, calls);
    let (status, _, shape, _) = &seen[0];
    assert_eq!(*status, 202);
    let (name, len, attributes) = shape.clone().unwrap();
    assert_eq!((name.as_str(), len), (BINDING, 43));
    assert_eq!(attributes, " Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=900");
    let sent = mails(&t).await;
    assert_eq!(sent.iter().filter(|m| m.to == known && m.subject == SUBJECT).count(), 2);
    assert!(sent.iter().all(|m| m.to != unknown), "no account, no sign-up: no mail");
}

#[tokio::test]
async fn five_wrong_codes_end_the_request() {
    let t = TestApp::memory(QUICK);
    let email = unique("ann");
    verified(&t, &email).await;
    let binding = asked(&t, &email).await;
    let (token, code) = mailed(&t, &email).await;
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    for _ in 0..5 {
        assert!(refused(&complete(&t, Some(&binding), json!({ "code": wrong })).await));
    }
    assert!(refused(&complete(&t, Some(&binding), json!({ "code": code })).await), "the right code, too late");
    assert!(refused(&complete(&t, Some(&binding), json!({ "token": token })).await), "the link went with it");
}

#[tokio::test]
async fn an_account_with_a_second_factor_gets_the_challenge() {
    let t = TestApp::memory(QUICK);
    let email = unique("ann");
    let (_, secret, _) = t.enrolled(&email).await;
    let user = t.env.stores.users.find_by_email(&Email::parse(&email).unwrap()).await.unwrap().unwrap();
    t.env.stores.users.mark_email_verified(&user.id, &user.email, t.env.clock_now()).await.unwrap();
    mails(&t).await;
    let binding = asked(&t, &email).await;
    let (token, _) = mailed(&t, &email).await;
    let r = complete(&t, Some(&binding), json!({ "token": token })).await;
    assert_eq!(r.status, 202, "{}", r.raw_body);
    assert!(r.session_cookie().is_none(), "nothing issued on the mail alone");
    // The next time step's code (enrolment used this one's).
    t.env.clock.advance(chrono::Duration::seconds(30));
    let answer = json!({ "challenge": r.body["challenge"], "code": t.totp(&secret) });
    let done = t.login_fn(TestCall::new("POST", "/two-factor-challenge").json(answer)).await;
    assert_eq!(done.status, 200, "{}", done.raw_body);
    assert_eq!(signed_in_as(&t, &done).await, email);
}

#[tokio::test]
async fn a_disabled_an_unverified_or_a_changed_account_signs_in_with_nothing() {
    let t = TestApp::memory(QUICK);
    let stores = t.env.stores.clone();
    let disable = |id: UserId| {
        let stores = stores.clone();
        async move {
            let user = stores.users.find(&id).await.unwrap().unwrap();
            let change = CredentialChange { revoke: true, disable: Some(true), ..CredentialChange::default() };
            let now = stores.clock.now();
            assert!(
                stores.users.change_credentials(&id, user.credentials_version, change, now).await.unwrap().is_some()
            );
        }
    };
    // Disabled after the mail: the mail signs no one in.
    let ann = unique("ann");
    let id = verified(&t, &ann).await;
    let binding = asked(&t, &ann).await;
    let (token, code) = mailed(&t, &ann).await;
    disable(id).await;
    assert!(refused(&complete(&t, Some(&binding), json!({ "token": token })).await));
    assert!(refused(&complete(&t, Some(&binding), json!({ "code": code })).await));
    // Disabled before: the same answer, and no mail at all.
    assert_eq!(ask(&t, &ann, "203.0.113.7").await.status, 202);
    assert!(mails(&t).await.is_empty());

    // The password changed after the mail (its credentials version moved): nothing.
    let bob = unique("bob");
    let id = verified(&t, &bob).await;
    let binding = asked(&t, &bob).await;
    let (_, code) = mailed(&t, &bob).await;
    let user = stores.users.find(&id).await.unwrap().unwrap();
    let moved = CredentialChange { revoke: true, ..CredentialChange::default() };
    stores.users.change_credentials(&id, user.credentials_version, moved, stores.clock.now()).await.unwrap();
    assert!(refused(&complete(&t, Some(&binding), json!({ "code": code })).await));

    // Not verified (someone else may have registered the address): told how, never a link.
    let cid = unique("cid");
    assert_eq!(t.register("Cid", &cid, PW).await.status, 201);
    mails(&t).await;
    asked(&t, &cid).await;
    let sent = mails(&t).await;
    assert_eq!(sent.len(), 1);
    assert!(!sent[0].text.contains("token=") && sent[0].text.contains("not verified"), "{}", sent[0].text);
}

#[tokio::test]
async fn sign_up_by_mail_only_when_enabled_and_the_account_proves_itself_by_mail() {
    let off = TestApp::memory(QUICK);
    let email = unique("new");
    asked(&off, &email).await;
    assert!(mails(&off).await.is_empty(), "sign-up by email is off by default");

    let t = TestApp::memory(&[QUICK, &[("GATEHOUSE_EMAIL_LINK_SIGNUP", "true")]].concat());
    let binding = asked(&t, &email).await;
    let sent = mails(&t).await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].text.contains("create your account"), "{}", sent[0].text);
    let (_, code) = secrets(&sent[0]);
    let r = complete(&t, Some(&binding), json!({ "code": code })).await;
    assert_eq!(r.status, 201, "{}", r.raw_body);
    assert!(r.body["user"]["email_verified_at"].is_string(), "the mail proved the address");
    let cookie = r.session_cookie().unwrap();
    let user = t.env.stores.users.find_by_email(&Email::parse(&email).unwrap()).await.unwrap().unwrap();
    assert!(!user.has_password());
    assert_eq!(t.login(&email, PW).await.status, 422, "no password signs in");

    // No password to confirm with: the mailed code is the proof, recorded as a confirmation.
    let confirm = |path: &str, body: Value| TestCall::new("POST", path).cookie(Some(&cookie)).json(body);
    let r = t.login_fn(confirm("/user/confirm-password", json!({ "password": PW }))).await;
    assert_eq!(r.status, 422);
    let r = t.login_fn(confirm("/user/confirm-by-email", json!({}))).await;
    assert_eq!(r.status, 202, "{}", r.raw_body);
    let sent = mails(&t).await;
    let at = sent[0].text.find("code is ").unwrap() + "code is ".len();
    let code = sent[0].text[at..at + 6].to_owned();
    let wrong = t.login_fn(confirm("/user/confirm-by-email/verify", json!({ "code": "000000" }))).await;
    assert_eq!(wrong.status, 422, "{}", wrong.raw_body);
    let ok = t.login_fn(confirm("/user/confirm-by-email/verify", json!({ "code": code }))).await;
    assert_eq!(ok.status, 204, "{}", ok.raw_body);
    let status = t.login_fn(TestCall::new("GET", "/user/confirmed-password-status").cookie(Some(&cookie))).await;
    assert_eq!(status.body["confirmed"], true);
    let again = t.login_fn(confirm("/user/confirm-by-email/verify", json!({ "code": code }))).await;
    assert_eq!(again.status, 422, "a code confirms once");

    // An account with a password confirms with it.
    let ann = t.signed_up(&unique("ann")).await;
    let r = t.login_fn(TestCall::new("POST", "/user/confirm-by-email").cookie(Some(&ann)).json(json!({}))).await;
    assert_eq!((r.status, r.error_code()), (422, Some("password_required")));
}

/// The hosted pages: the form on the sign-in page, the code form, and the mailed link's landing,
/// which signs in only with a POST from the browser that asked.
#[tokio::test]
async fn the_pages_ask_land_and_finish_only_in_the_asking_browser() {
    let t = TestApp::memory(QUICK);
    let email = unique("ann");
    verified(&t, &email).await;
    let mut jar = Jar::default();
    let shown = jar.get(&t, "/account/sign-in").await;
    assert!(shown.raw_body.contains(r#"action="/account/email-link""#), "the sign-in page offers it");
    let r = jar.post(&t, "/account/email-link", &[("email", &email), ("_token", &csrf(&shown.raw_body))]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/account/email-link")), "{}", r.raw_body);
    assert!(jar.0.contains_key(BINDING));
    let code_page = jar.get(&t, "/account/email-link").await;
    assert!(code_page.raw_body.contains(r#"name="code""#), "{}", code_page.raw_body);
    let (token, _) = mailed(&t, &email).await;

    // A GET signs no one in (mail scanners open links): the token leaves the address, then a button.
    let landed = jar.get(&t, &format!("/account/email-link?token={token}")).await;
    assert_eq!((landed.status, landed.header("location")), (303, Some("/account/email-link")));
    let page = jar.get(&t, "/account/email-link").await;
    assert!(page.raw_body.contains("Finish signing in") && !jar.0.contains_key(SESSION_COOKIE));
    let done = jar.post(&t, "/account/email-link/complete", &[("_token", &csrf(&page.raw_body))]).await;
    assert_eq!((done.status, done.header("location")), (303, Some("/account")), "{}", done.raw_body);
    assert!(jar.0.contains_key(SESSION_COOKIE));
}

type Pending<'a> = std::pin::Pin<Box<dyn Future<Output = TestReply> + 'a>>;

/// Runs the calls concurrently (their AWS calls interleave, as concurrent Lambdas' would).
async fn join_all(mut calls: Vec<Pending<'_>>) -> Vec<TestReply> {
    let mut done: Vec<Option<TestReply>> = calls.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (call, slot) in calls.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match call.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => *slot = Some(r),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    done.into_iter().flatten().collect()
}

/// A browser's cookies.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn keep(&mut self, r: &TestReply) {
        for c in r.set_cookies() {
            let (name, value) = c.split(';').next().unwrap().split_once('=').unwrap();
            if c.contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn call(&self, call: TestCall) -> TestCall {
        let header: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if header.is_empty() { call } else { call.header("cookie", &header.join("; ")) }
    }

    async fn get(&mut self, t: &TestApp, path: &str) -> TestReply {
        let r = t.pages_fn(self.call(TestCall::new("GET", path))).await;
        self.keep(&r);
        r
    }

    async fn post(&mut self, t: &TestApp, path: &str, fields: &[(&str, &str)]) -> TestReply {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let call = TestCall::new("POST", path)
            .raw(&body)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin");
        let r = t.pages_fn(self.call(call)).await;
        self.keep(&r);
        r
    }
}

fn csrf(html: &str) -> String {
    let marker = r#"name="_token" value=""#;
    let at = html.find(marker).expect("a form") + marker.len();
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}
