//! Forgot and reset, with the mail sent by the queued job; stores, queue and SES on the emulator.

use gatehouse::mail::LogMailer;
use gatehouse_tests::http::{TestApp, TestCall, TestReply, ses_sent_to};
use gatehouse_tests::jobs::drain;
use serde_json::json;
use std::sync::Arc;

const PW: &str = "correct horse battery staple 42";
const NEW_PW: &str = "an entirely new passphrase 2026";

fn unique(local: &str) -> String {
    format!("{local}-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

async fn forgot(t: &TestApp, email: &str, host: &str) -> TestReply {
    t.reset_fn(TestCall::new("POST", "/forgot-password").header("host", host).json(json!({ "email": email }))).await
}

/// The token in a mailed link `...?token=<64 hex>&email=...`.
fn token_in(text: &str) -> String {
    let i = text.find("token=").expect("a link with a token") + 6;
    text[i..i + 64].to_owned()
}

/// The mail sent but for the verification mail every registration queues.
fn reset_mails(mailer: &LogMailer) -> Vec<gatehouse::mail::Mail> {
    mailer.sent().into_iter().filter(|m| m.subject != "Verify your email address").collect()
}

/// Registers `email`, asks for a link, runs the worker, and returns the mailed token.
async fn registered_with_mailed_token(t: &TestApp, email: &str) -> String {
    t.register("Ann", email, PW).await;
    forgot(t, email, "h").await;
    let mailer = LogMailer::quiet();
    drain(&t.worker(Arc::new(mailer.clone())), 5).await;
    token_in(&reset_mails(&mailer)[0].text)
}

async fn reset(t: &TestApp, email: &str, token: &str, password: &str) -> TestReply {
    t.reset_fn(TestCall::new("POST", "/reset-password").json(json!({
        "email": email, "token": token, "password": password, "password_confirmation": password
    })))
    .await
}

#[tokio::test]
async fn forgot_answers_identically_for_known_and_unknown_emails_and_mails_only_the_known() {
    let t = TestApp::aws(&[("GATEHOUSE_RESET_URL", "https://app.example.com/reset?token={token}&email={email}")]).await;
    let known = unique("ann");
    let unknown = unique("nobody");
    t.register("Ann", &known, PW).await;
    let a = forgot(&t, &known, "api.example.test").await;
    let b = forgot(&t, &unknown, "api.example.test").await;
    assert_eq!(a.status, 202);
    assert_eq!((a.status, &a.raw_body), (b.status, &b.raw_body), "byte-identical bodies");
    assert_eq!(a.headers, b.headers, "identical headers");
    assert_eq!(a.header("referrer-policy"), Some("no-referrer"));

    let mailer = LogMailer::quiet();
    let w = t.worker(Arc::new(mailer.clone()));
    drain(&w, 5).await;
    let sent = reset_mails(&mailer);
    assert_eq!(sent.len(), 1, "mail only for the known account");
    assert_eq!(sent[0].to, known);
    assert!(sent[0].text.contains("https://app.example.com/reset?token="), "{}", sent[0].text);

    // Within 60 s: the same 202, no second mail.
    let again = forgot(&t, &known, "api.example.test").await;
    assert_eq!((again.status, &again.raw_body), (a.status, &a.raw_body));
    drain(&w, 5).await;
    assert_eq!(reset_mails(&mailer).len(), 1);
    // After the throttle window a new link (and the old token stops working).
    t.env.clock.advance(chrono::Duration::seconds(61));
    forgot(&t, &known, "api.example.test").await;
    drain(&w, 5).await;
    let sent = reset_mails(&mailer);
    assert_eq!(sent.len(), 2);
    let (old, new) = (token_in(&sent[0].text), token_in(&sent[1].text));
    assert_eq!(
        reset(&t, &known, &old, NEW_PW).await.error_code(),
        Some("invalid_token"),
        "only the newest token works"
    );
    assert_eq!(reset(&t, &known, &new, NEW_PW).await.status, 200);
}

#[tokio::test]
async fn the_link_comes_from_configuration_never_the_host_header() {
    let t = TestApp::aws(&[("GATEHOUSE_RESET_URL", "https://app.example.com/reset?token={token}&email={email}")]).await;
    let email = unique("ann");
    t.register("Ann", &email, PW).await;
    assert_eq!(forgot(&t, &email, "evil.example").await.status, 202);
    let mailer = LogMailer::quiet();
    drain(&t.worker(Arc::new(mailer.clone())), 5).await;
    let text = &reset_mails(&mailer)[0].text;
    assert!(!text.contains("evil.example"));
    assert!(text.contains("https://app.example.com/reset?token="));
    assert!(text.contains(&format!("&email={}", gatehouse::services::password_broker::url_encode(&email))));
}

#[tokio::test]
async fn the_mailed_token_resets_once_and_everything_old_is_revoked() {
    let t = TestApp::aws(&[]).await;
    let email = unique("ann");
    let session = t.register("Ann", &email, PW).await.session_cookie().unwrap();
    let api_token =
        t.create_token(&session, json!({"name": "ci", "abilities": ["read"], "expires_in_minutes": 60})).await;
    let api_token = api_token.body["token"].as_str().unwrap().to_owned();
    forgot(&t, &email, "h").await;
    let mailer = LogMailer::quiet();
    let w = t.worker(Arc::new(mailer.clone()));
    drain(&w, 5).await;
    let token = token_in(&reset_mails(&mailer)[0].text);

    let ok = reset(&t, &email, &token, NEW_PW).await;
    assert_eq!(ok.status, 200, "{}", ok.raw_body);
    assert!(ok.session_cookie().is_none(), "no automatic login");
    // Single use: another password with the same link is refused. The same request again (a
    // client whose answer was lost) is answered as the reset was, changing nothing, for ten
    // minutes.
    assert_eq!(reset(&t, &email, &token, PW).await.error_code(), Some("invalid_token"), "single use");
    assert_eq!(reset(&t, &email, &token, NEW_PW).await.status, 200, "its own retry");
    t.env.clock.advance(chrono::Duration::minutes(10) + chrono::Duration::seconds(1));
    assert_eq!(reset(&t, &email, &token, NEW_PW).await.error_code(), Some("invalid_token"), "a spent link");
    assert_eq!(t.login(&email, PW).await.status, 422, "the old password is dead");
    assert_eq!(t.login(&email, NEW_PW).await.status, 200);
    assert_eq!(t.user(Some(&session)).await.status, 401, "old sessions revoked");
    assert_eq!(t.login_fn(TestCall::new("GET", "/user").bearer(&api_token)).await.status, 401, "old tokens revoked");
    drain(&w, 5).await;
    let sent = reset_mails(&mailer);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].subject, "Your password was changed");
}

#[tokio::test]
async fn a_token_older_than_sixty_minutes_is_invalid_though_still_stored() {
    let t = TestApp::aws(&[]).await;
    let email = unique("ann");
    let token = registered_with_mailed_token(&t, &email).await;
    t.env.clock.advance(chrono::Duration::minutes(61));
    let r = reset(&t, &email, &token, NEW_PW).await;
    assert_eq!((r.status, r.error_code()), (422, Some("invalid_token")));
    assert_eq!(t.login(&email, PW).await.status, 200, "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_resets_with_one_token_let_exactly_one_through() {
    let t = Arc::new(TestApp::aws(&[]).await);
    let email = unique("ann");
    let token = registered_with_mailed_token(&t, &email).await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (t, email, token) = (t.clone(), email.clone(), token.clone());
            tokio::spawn(async move { reset(&t, &email, &token, &format!("{NEW_PW} variant {i}")).await })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    let ok: Vec<_> = replies.iter().enumerate().filter(|(_, r)| r.status == 200).collect();
    assert_eq!(ok.len(), 1, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(replies.iter().all(|r| r.status == 200 || r.error_code() == Some("invalid_token")));
    let winner = ok[0].0;
    assert_eq!(t.login(&email, &format!("{NEW_PW} variant {winner}")).await.status, 200);
}

#[tokio::test]
async fn the_worker_delivers_through_ses_once_and_the_link_completes_the_reset() {
    let t = TestApp::aws(&[("GATEHOUSE_MAIL_FROM", "noreply@gatehouse.test")]).await;
    let sdk = gatehouse_tests::emulator_sdk_config().await;
    aws_sdk_sesv2::Client::new(&sdk).create_email_identity().email_identity("noreply@gatehouse.test").send().await.ok();
    let email = unique("ann");
    t.register("Ann", &email, PW).await;
    // The verification mail registration queued goes first, elsewhere.
    drain(&t.worker(Arc::new(LogMailer::quiet())), 5).await;
    forgot(&t, &email, "h").await;
    let ses: Arc<dyn gatehouse::mail::Mailer> =
        Arc::new(gatehouse_aws::ses::SesMailer::new(&sdk, "noreply@gatehouse.test".into()));
    let w = t.worker(ses);
    // The same job delivered twice: received, processed, and delivered again before deletion.
    // (The registration's event job may come first: it is run as it comes.)
    let mut link_job = None;
    for _ in 0..20 {
        for m in t.env.stores.queue.receive(1, std::time::Duration::from_secs(1), None).await.unwrap() {
            if m.body.contains("RecordEvent") {
                w.process(&m).await;
            } else {
                link_job = Some(m);
            }
        }
        if link_job.is_some() {
            break;
        }
    }
    let msg = link_job.expect("the reset link's job");
    assert_eq!(w.process(&msg).await, gatehouse::queue::Outcome::Completed);
    let dup = gatehouse::tables::jobs::QueueMessage { receive_count: 2, ..msg.clone() };
    assert_eq!(w.process(&dup).await, gatehouse::queue::Outcome::Completed);
    let sent = ses_sent_to(&email);
    assert_eq!(sent.len(), 1, "one mail for a job delivered twice");
    assert_eq!(sent[0].0, "Reset your password");
    let token = token_in(&sent[0].1);
    assert_eq!(reset(&t, &email, &token, NEW_PW).await.status, 200);
    assert_eq!(t.login(&email, NEW_PW).await.status, 200);
}

#[tokio::test]
async fn forgot_is_rate_limited_per_ip_and_validates_the_email_form() {
    let t = TestApp::aws(&[]).await;
    let bad = t.reset_fn(TestCall::new("POST", "/forgot-password").json(json!({"email": "not an email"}))).await;
    assert_eq!((bad.status, bad.error_code()), (422, Some("validation_failed")));
    for _ in 0..6 {
        assert_eq!(forgot(&t, &unique("x"), "h").await.status, 202);
    }
    let limited = forgot(&t, &unique("x"), "h").await;
    assert_eq!(limited.status, 429);
    assert!(limited.header("retry-after").is_some());
    let other_ip = t
        .reset_fn(TestCall::new("POST", "/forgot-password").from_ip("198.51.100.1").json(json!({"email": unique("y")})))
        .await;
    assert_eq!(other_ip.status, 202);
}

#[tokio::test]
async fn reset_validates_its_input() {
    let t = TestApp::aws(&[]).await;
    let email = unique("ann");
    t.register("Ann", &email, PW).await;
    let weak = reset(&t, &email, &"a".repeat(64), "short").await;
    assert_eq!((weak.status, weak.error_code()), (422, Some("validation_failed")));
    let malformed = reset(&t, &email, "not-a-token", NEW_PW).await;
    assert_eq!(malformed.error_code(), Some("invalid_token"));
    let unknown = reset(&t, &email, &"ab".repeat(32), NEW_PW).await;
    assert_eq!(unknown.error_code(), Some("invalid_token"));
    assert_eq!(malformed.raw_body, unknown.raw_body);
}

#[tokio::test]
async fn security_mail_carries_no_text_the_account_holder_chose() {
    let t = TestApp::aws(&[("GATEHOUSE_RESET_URL", "https://app.example.com/reset?token={token}&email={email}")]).await;
    let email = unique("ann");
    let name = "SECURITY NOTICE: your account is locked, verify at https://evil.example/verify instead";
    assert_eq!(t.register(name, &email, PW).await.status, 201);
    assert_eq!(forgot(&t, &email, "api.example.test").await.status, 202);
    let mailer = LogMailer::quiet();
    let w = t.worker(Arc::new(mailer.clone()));
    drain(&w, 5).await;
    let reset_mail = reset_mails(&mailer)[0].clone();
    for text in [&reset_mail.subject, &reset_mail.text] {
        assert!(!text.contains("evil.example") && !text.contains("SECURITY NOTICE"), "{text}");
    }
    assert!(reset_mail.text.starts_with("Hello,\n"), "{}", reset_mail.text);
    let link = format!(
        "https://app.example.com/reset?token={}&email={}",
        token_in(&reset_mail.text),
        gatehouse::services::password_broker::url_encode(&email)
    );
    assert!(reset_mail.text.contains(&link), "the genuine link: {}", reset_mail.text);

    // The mail that follows the reset, too.
    assert_eq!(reset(&t, &email, &token_in(&reset_mail.text), NEW_PW).await.status, 200);
    t.env.clock.advance(chrono::Duration::from_std(gatehouse::config::NOTICE_DELAY).unwrap());
    drain(&w, 5).await;
    let changed = reset_mails(&mailer)[1].clone();
    assert_eq!(changed.subject, "Your password was changed");
    assert!(!changed.text.contains("evil.example") && !changed.text.contains("SECURITY NOTICE"), "{}", changed.text);
}

/// A reset-link job whose run is repeated after its token write landed (a crash before the mail
/// was acknowledged, or a lost store answer) mails the same working link again: the token is the
/// job's, so the repeated write is not taken for a second request inside the throttle and the
/// mail is not silently dropped.
#[tokio::test]
async fn a_reset_link_job_run_again_after_its_write_landed_still_mails_a_working_link() {
    let t = TestApp::aws(&[]).await;
    let email = unique("ann");
    t.register("Ann", &email, PW).await;
    drain(&t.worker(Arc::new(LogMailer::quiet())), 10).await;
    assert_eq!(forgot(&t, &email, "api.example.test").await.status, 202);
    let msgs = t.env.stores.queue.receive(10, std::time::Duration::from_secs(2), None).await.unwrap();
    let job = gatehouse::tables::jobs::JobPayload::from_body(&msgs[0].body).unwrap();
    assert_eq!(job.job, gatehouse::services::password_broker::SEND_RESET_LINK);
    let mailer = LogMailer::quiet();
    let handler = gatehouse::services::password_broker::SendResetLink {
        config: t.app.config.clone(),
        mailer: Arc::new(mailer.clone()),
    };
    let worker = t.worker(Arc::new(LogMailer::quiet()));
    for attempt in 1..=2 {
        let ctx = gatehouse::queue::JobContext {
            stores: t.env.stores.clone(),
            dispatcher: worker.dispatcher().clone(),
            attempt,
        };
        gatehouse::queue::JobHandler::handle(&handler, &job, &ctx).await.unwrap();
    }
    let sent = reset_mails(&mailer);
    assert_eq!(sent.len(), 2, "the repeated run mails too");
    assert_eq!(token_in(&sent[0].text), token_in(&sent[1].text), "the same link");
    let reset = TestCall::new("POST", "/reset-password").json(
        json!({"email": email, "token": token_in(&sent[1].text), "password": NEW_PW, "password_confirmation": NEW_PW}),
    );
    assert_eq!(t.reset_fn(reset.clone()).await.status, 200);
    // Run once more after the link was used (a late redelivery, or `queue:retry`): the used link
    // stays dead; the run mails another.
    let ctx = gatehouse::queue::JobContext {
        stores: t.env.stores.clone(),
        dispatcher: worker.dispatcher().clone(),
        attempt: 3,
    };
    gatehouse::queue::JobHandler::handle(&handler, &job, &ctx).await.unwrap();
    let sent = reset_mails(&mailer);
    let late = sent.iter().rev().find(|m| m.subject == "Reset your password").unwrap();
    assert_ne!(token_in(&late.text), token_in(&sent[1].text), "not the used token again");
    assert_eq!(t.reset_fn(reset).await.status, 422, "the used link does not come back");
    // A second request within the throttle is still throttled: another job, another token.
    assert_eq!(forgot(&t, &email, "api.example.test").await.status, 202);
    let mailer = LogMailer::quiet();
    drain(&t.worker(Arc::new(mailer.clone())), 10).await;
    let links = reset_mails(&mailer).into_iter().filter(|m| m.subject == "Reset your password").count();
    assert_eq!(links, 0, "the late run's token is inside the throttle: a second request mails nothing");
}
