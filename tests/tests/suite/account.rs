//! The account while signed in: email verification, the profile and the password change, over
//! real-shaped API Gateway v2 events (stores on the emulator unless a test moves the clock).

use crate::support::{ann_handing_off_to_billing, handoff, mails_with_notices, unique};
use gatehouse::mail::Mail;
use gatehouse_tests::http::{TestApp, TestCall, TestReply};
use serde_json::json;

const PW: &str = "correct horse battery staple 42";
const NEW_PW: &str = "a brand new and long passphrase 7";

/// The API route behind the verification link in `mail`: the mailed link opens the hosted page
/// (`/account/verify-email/…`), which calls `/email/verify/…` with the same values.
fn link_of(mail: &Mail) -> String {
    link_in(mail, "/account/verify-email/").replacen("/account/verify-email/", "/email/verify/", 1)
}

/// The path and query of the link in `mail` whose path holds `marker`.
fn link_in(mail: &Mail, marker: &str) -> String {
    let url = mail.text.split_whitespace().find(|w| w.contains(marker)).expect("a link");
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest[rest.find('/').expect("a path")..].to_owned()
}

async fn open(t: &TestApp, path: &str, cookie: &str) -> TestReply {
    t.login_fn(TestCall::new("GET", path).cookie(Some(cookie))).await
}

#[tokio::test]
async fn registration_mails_a_signed_link_that_verifies_the_address_once() {
    let t = TestApp::aws(&[]).await;
    let reg = t.register("Ann", "ann@example.com", PW).await;
    assert_eq!(reg.status, 201);
    assert_eq!(reg.body["user"]["email_verified_at"], serde_json::Value::Null);
    let sent = mails_with_notices(&t).await;
    let mail = sent.iter().find(|m| m.to == "ann@example.com" && m.subject == "Verify your email address");
    let link = link_of(mail.expect("a verification mail"));

    // Tampering with any part of the link: 403 invalid_link, nothing stored.
    let (path, query) = link.split_once('?').unwrap();
    let forged = [
        link.replace("signature=", "signature=A"),
        format!("{path}?{}", query.replace("expires=", "expires=9")),
        link.replacen(&path[14..50], "00000000-0000-7000-8000-000000000000", 1),
        format!("{path}?expires=1"),
        path.to_owned(),
    ];
    let cookie = reg.session_cookie().unwrap();
    for f in &forged {
        let r = open(&t, f, &cookie).await;
        assert_eq!(r.status, 403, "{f}: {}", r.raw_body);
        assert_eq!(r.error_code(), Some("invalid_link"), "{f}");
    }
    // The link is for Ann signed in: opened by nobody (a mail scanner) or by Bob, nothing happens.
    assert_eq!(t.login_fn(TestCall::new("GET", &link)).await.status, 401);
    let bob = t.signed_up("bob@example.com").await;
    let r = open(&t, &link, &bob).await;
    assert_eq!((r.status, r.error_code()), (403, Some("not_your_link")));
    assert_eq!(t.user(Some(&cookie)).await.body["user"]["email_verified_at"], serde_json::Value::Null);

    let first = open(&t, &link, &cookie).await;
    assert_eq!(first.status, 200, "{}", first.raw_body);
    assert_eq!(first.body["verified"], true);
    assert_eq!(first.body["message"], "Your email address is verified.");
    let at = t.user(Some(&cookie)).await.body["user"]["email_verified_at"].clone();
    assert!(at.is_string());
    let again = open(&t, &link, &cookie).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["message"], "Your email address was already verified.");
    assert_eq!(t.user(Some(&cookie)).await.body["user"]["email_verified_at"], at, "set once");

    // Verified: asking again sends nothing.
    let resend = t
        .login_fn(TestCall::new("POST", "/email/verification-notification").cookie(Some(&cookie)).json(json!({})))
        .await;
    assert_eq!(resend.status, 200, "{}", resend.raw_body);
    assert!(mails_with_notices(&t).await.iter().all(|m| m.to != "ann@example.com"));
}

#[tokio::test]
async fn a_link_stops_working_when_it_expires() {
    let t = TestApp::memory(&[("GATEHOUSE_VERIFY_EXPIRE_MINUTES", "30")]);
    let cookie = t.register("Ann", "ann@example.com", PW).await.session_cookie().unwrap();
    let link = link_of(&mails_with_notices(&t).await[0]);
    t.env.advance(std::time::Duration::from_secs(31 * 60)).await;
    let r = open(&t, &link, &cookie).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error_code(), Some("link_expired"));
}

#[tokio::test]
async fn resending_is_limited_to_six_a_minute_per_user_and_the_link_goes_to_the_current_address() {
    let t = TestApp::aws(&[]).await;
    let cookie = t.signed_up("ann@example.com").await;
    let other = t.signed_up("bob@example.com").await;
    mails_with_notices(&t).await;
    let resend = |c: String| {
        let t = &t;
        async move {
            t.login_fn(TestCall::new("POST", "/email/verification-notification").cookie(Some(&c)).json(json!({}))).await
        }
    };
    // Concurrent requests cannot multiply the limit: the count is one atomic update per request.
    let replies = join_all((0..8).map(|_| Box::pin(resend(cookie.clone())) as Pending<'_>).collect()).await;
    let accepted = replies.iter().filter(|r| r.status == 202).count();
    let throttled: Vec<&TestReply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!((accepted, throttled.len()), (6, 2), "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(throttled[0].header("retry-after").is_some());
    assert_eq!(resend(other).await.status, 202, "another user's limit is their own");
    let sent = mails_with_notices(&t).await;
    assert_eq!(sent.iter().filter(|m| m.to == "ann@example.com").count(), 6);
    assert_eq!(t.login_fn(TestCall::new("POST", "/email/verification-notification")).await.status, 401);
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

#[tokio::test]
async fn the_profile_name_is_validated_and_a_token_needs_user_update() {
    let t = TestApp::aws(&[]).await;
    let cookie = t.signed_up("ann@example.com").await;
    let put = |body: serde_json::Value, cookie: Option<String>, bearer: Option<String>| {
        let mut call = TestCall::new("PUT", "/user/profile-information").json(body).cookie(cookie.as_deref());
        if let Some(b) = bearer {
            call = call.bearer(&b);
        }
        t.login_fn(call)
    };
    let ok = put(json!({"name": "  Ann Lee  "}), Some(cookie.clone()), None).await;
    assert_eq!(ok.status, 200, "{}", ok.raw_body);
    assert_eq!(ok.body["user"]["name"], "Ann Lee");
    for hostile in ["", "   ", "Ann\u{202E}gnp.exe", "Ann\nBcc: eve@example.com", "Ann\u{200B}", &"x".repeat(256)] {
        let r = put(json!({ "name": hostile }), Some(cookie.clone()), None).await;
        assert_eq!(r.status, 422, "{hostile:?}: {}", r.raw_body);
        assert!(r.body["error"]["fields"]["name"].is_array());
    }
    assert_eq!(put(json!({"name": 7}), Some(cookie.clone()), None).await.status, 422);
    assert_eq!(t.user(Some(&cookie)).await.body["user"]["name"], "Ann Lee", "refused names change nothing");

    let weak =
        t.create_token(&cookie, json!({"name": "ro", "abilities": ["tokens:read"], "expires_in_minutes": 60})).await;
    let weak = weak.body["token"].as_str().unwrap().to_owned();
    let r = put(json!({"name": "Eve"}), None, Some(weak)).await;
    assert_eq!(r.status, 403, "{}", r.raw_body);
    let able =
        t.create_token(&cookie, json!({"name": "rw", "abilities": ["user:update"], "expires_in_minutes": 60})).await;
    let able = able.body["token"].as_str().unwrap().to_owned();
    let r = put(json!({"name": "Ann B. Lee"}), None, Some(able)).await;
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert_eq!(r.body["user"]["name"], "Ann B. Lee");
    assert_eq!(put(json!({"name": "Nobody"}), None, None).await.status, 401);
}

#[tokio::test]
async fn changing_the_password_keeps_only_this_session_under_a_new_id_and_mails_the_owner() {
    let t = TestApp::aws(&[]).await;
    let current = t.signed_up("ann@example.com").await;
    let other = t.login("ann@example.com", PW).await.session_cookie().unwrap();
    let token =
        t.create_token(&current, json!({"name": "cli", "abilities": ["tokens:read"], "expires_in_minutes": 60})).await;
    let token = token.body["token"].as_str().unwrap().to_owned();
    mails_with_notices(&t).await;
    let change = |body: serde_json::Value, cookie: &str| {
        t.login_fn(TestCall::new("PUT", "/user/password").cookie(Some(cookie)).json(body))
    };

    let wrong = change(
        json!({"current_password": "not it at all", "password": NEW_PW, "password_confirmation": NEW_PW}),
        &current,
    )
    .await;
    assert_eq!(wrong.status, 422);
    assert_eq!(wrong.body["error"]["fields"]["current_password"][0], "is incorrect");
    let weak =
        change(json!({"current_password": PW, "password": "password", "password_confirmation": "password"}), &current)
            .await;
    assert_eq!(weak.status, 422);
    assert!(weak.body["error"]["fields"]["password"].is_array());
    let by_token = t.login_fn(TestCall::new("PUT", "/user/password").bearer(&token).json(json!({}))).await;
    assert_eq!(by_token.status, 401, "a token cannot change the password");

    let ok =
        change(json!({"current_password": PW, "password": NEW_PW, "password_confirmation": NEW_PW}), &current).await;
    assert_eq!(ok.status, 204, "{}", ok.raw_body);
    let rotated = ok.session_cookie().expect("a new cookie");
    assert_ne!(rotated, current);
    assert_eq!(t.user(Some(&rotated)).await.status, 200);
    for dead in [&current, &other] {
        assert_eq!(t.user(Some(dead)).await.status, 401);
    }
    let me = t.login_fn(TestCall::new("GET", "/user").bearer(&token)).await;
    assert_eq!(me.status, 401, "tokens end with the old password");
    assert_eq!(t.login("ann@example.com", PW).await.status, 422);
    assert_eq!(t.login("ann@example.com", NEW_PW).await.status, 200);
    let sent = mails_with_notices(&t).await;
    assert_eq!(sent.iter().filter(|m| m.subject == "Your password was changed").count(), 1);
}

#[tokio::test]
async fn two_concurrent_changes_from_one_session_cannot_both_win() {
    let t = TestApp::aws(&[]).await;
    let cookie = t.signed_up("ann@example.com").await;
    let a = "first concurrent passphrase 11";
    let b = "second concurrent passphrase 22";
    let call = |pw: &str| {
        t.login_fn(
            TestCall::new("PUT", "/user/password")
                .cookie(Some(&cookie))
                .json(json!({"current_password": PW, "password": pw, "password_confirmation": pw})),
        )
    };
    let replies = join_all(vec![Box::pin(call(a)), Box::pin(call(b))]).await;
    let won: Vec<&TestReply> = replies.iter().filter(|r| r.status == 204).collect();
    assert_eq!(won.len(), 1, "{:?}", replies.iter().map(|r| (r.status, r.raw_body.clone())).collect::<Vec<_>>());
    let winner = if std::ptr::eq(won[0], &replies[0]) { a } else { b };
    let loser = if winner == a { b } else { a };
    assert!(replies.iter().any(|r| r.status == 409 || r.status == 401));
    assert_eq!(t.login("ann@example.com", winner).await.status, 200);
    assert_eq!(t.login("ann@example.com", loser).await.status, 422);
    assert_eq!(t.user(won[0].session_cookie().as_deref()).await.status, 200);
}

#[tokio::test]
async fn one_session_is_ended_from_the_list_by_an_opaque_id_that_names_nothing_for_another_user() {
    let t = TestApp::aws(&[]).await;
    let a = t.signed_up("ann@example.com").await;
    let b = t.login("ann@example.com", PW).await.session_cookie().unwrap();
    let bob = t.signed_up("bob@example.com").await;
    let list = t.login_fn(TestCall::new("GET", "/sessions").cookie(Some(&a))).await;
    let sessions = list.body["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    for s in &sessions {
        let id = s["id"].as_str().unwrap();
        assert_eq!(id.len(), 22);
        assert!(!id.contains(s["id_hint"].as_str().unwrap()), "the id is not the session's hash");
        assert!(!a.contains(id) && !b.contains(id), "nor its secret");
    }
    let other = sessions.iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();
    let current = sessions.iter().find(|s| s["current"] == true).unwrap()["id"].as_str().unwrap().to_owned();
    let end =
        |cookie: &str, id: &str| t.login_fn(TestCall::new("DELETE", &format!("/sessions/{id}")).cookie(Some(cookie)));

    assert_eq!(end(&bob, &other).await.status, 404, "another user's id names nothing");
    assert_eq!(t.user(Some(&b)).await.status, 200);
    assert_eq!(end(&a, "AAAAAAAAAAAAAAAAAAAAAA").await.status, 404);
    let token = t.create_token(&a, json!({"name": "t", "abilities": ["tokens:read"], "expires_in_minutes": 60})).await;
    let token = token.body["token"].as_str().unwrap().to_owned();
    let by_token = t.login_fn(TestCall::new("DELETE", &format!("/sessions/{other}")).bearer(&token)).await;
    assert_eq!(by_token.status, 401, "a token cannot end sessions");

    let ended = end(&a, &other).await;
    assert_eq!(ended.status, 204, "{}", ended.raw_body);
    assert!(ended.set_cookies().is_empty(), "ending another session keeps this cookie");
    assert_eq!(t.user(Some(&b)).await.status, 401);
    assert_eq!(t.user(Some(&a)).await.status, 200);
    assert_eq!(end(&a, &other).await.status, 204, "asked again: the first answer, nothing more ended");

    let out = end(&a, &current).await;
    assert_eq!(out.status, 204);
    assert!(out.set_cookies().iter().any(|c| c.contains("Max-Age=0")), "ending this session logs out");
    assert_eq!(t.user(Some(&a)).await.status, 401);
}

#[tokio::test]
async fn the_cross_app_audit_lists_the_callers_records_newest_first_with_why_they_ended() {
    let t = TestApp::aws(&[("GATEHOUSE_APPS", "billing")]).await;
    let cookie = t.signed_up("ann@example.com").await;
    let bob = t.signed_up("bob@example.com").await;
    let billing = t.sibling(&[("GATEHOUSE_APP_NAME", "billing")]);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let h = handoff(&t, &cookie, "billing").await;
        let call = TestCall::new("POST", "/cross-app/exchange")
            .from_ip("198.51.100.9")
            .header("user-agent", "billing-app/2.0")
            .json(json!({"handoff_token": h.body["handoff_token"]}));
        let r = TestApp::tokens_at(&billing, call).await;
        assert_eq!(r.status, 200, "{}", r.raw_body);
        ids.push(r.body["cross_app_session_id"].as_str().unwrap().to_owned());
        t.env.clock.advance(chrono::Duration::seconds(2));
    }
    let revoked =
        t.tokens_fn(TestCall::new("DELETE", &format!("/cross-app/sessions/{}", ids[0])).cookie(Some(&cookie))).await;
    assert_eq!(revoked.status, 204);

    let list = |query: &str, cookie: &str| {
        t.tokens_fn(TestCall::new("GET", &format!("/cross-app/sessions{query}")).cookie(Some(cookie)))
    };
    // The owner index may lag a write by a moment.
    let mut all = list("", &cookie).await;
    for _ in 0..20 {
        if all.body["sessions"].as_array().is_some_and(|s| s.len() == 3) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        all = list("", &cookie).await;
    }
    assert_eq!(all.status, 200, "{}", all.raw_body);
    let got: Vec<&str> = all.body["sessions"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()], "newest first");
    let oldest = &all.body["sessions"][2];
    assert_eq!((oldest["source_app"].as_str(), oldest["target_app"].as_str()), (Some("gatehouse"), Some("billing")));
    assert_eq!(oldest["revoked_reason"], "revoked_by_user");
    assert!(oldest["revoked_at"].is_string());
    assert_eq!(all.body["sessions"][0]["revoked_at"], serde_json::Value::Null);
    assert_eq!(all.body["sessions"][0]["user_agent"], "billing-app/2.0");
    assert_eq!(all.body["next_cursor"], serde_json::Value::Null);

    // Two pages of two and one; the cursor is sealed to its owner.
    let first = list("?limit=2", &cookie).await;
    assert_eq!(first.body["sessions"].as_array().unwrap().len(), 2);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = list(&format!("?limit=2&cursor={cursor}"), &cookie).await;
    assert_eq!(second.body["sessions"][0]["id"], ids[0].as_str());
    assert_eq!(second.body["next_cursor"], serde_json::Value::Null);
    assert_eq!(list(&format!("?cursor={cursor}"), &bob).await.status, 422, "another user's cursor");
    assert_eq!(list("?cursor=garbage", &cookie).await.status, 422);
    assert_eq!(list("?limit=0", &cookie).await.status, 422);
    let empty = list("", &bob).await;
    assert_eq!(empty.body["sessions"].as_array().map(Vec::len), Some(0), "only the caller's records");

    // A password change ends the others and says why.
    let change = change_password(&t, &cookie, PW, NEW_PW).await;
    let cookie = change.session_cookie().unwrap();
    let after = list("", &cookie).await;
    let reasons: Vec<&str> = after.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["revoked_reason"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(reasons, ["password_changed", "password_changed", "revoked_by_user"]);
}

#[tokio::test]
async fn password_checks_are_capped_per_user_across_client_addresses() {
    let t = TestApp::memory(&[]);
    let cookie = t.registered("ann@example.com").await;
    let confirm = |ip: String| {
        t.login_fn(
            TestCall::new("POST", "/user/confirm-password")
                .from_ip(&ip)
                .cookie(Some(&cookie))
                .json(json!({"password": "wrong guess number n"})),
        )
    };
    // Five a minute from each address, thirty an hour in all: rotating addresses buys nothing.
    for i in 0..30 {
        let r = confirm(format!("2001:db8:{:x}::1", i / 5)).await;
        assert_eq!(r.status, 422, "guess {i}: {}", r.raw_body);
    }
    let r = confirm("2001:db8:ffff::1".to_owned()).await;
    assert_eq!(r.status, 429, "{}", r.raw_body);
    assert!(r.header("retry-after").is_some());
}

#[tokio::test]
async fn a_session_opened_by_another_apps_handoff_cannot_change_the_password() {
    let (t, cookie, h) = ann_handing_off_to_billing().await;
    let billing = t.sibling(&[("GATEHOUSE_APP_NAME", "billing")]);
    let call = TestCall::new("POST", "/cross-app/exchange").json(json!({"handoff_token": h.body["handoff_token"]}));
    let derived = TestApp::tokens_at(&billing, call).await.session_cookie().expect("a billing session");
    let change = TestCall::new("PUT", "/user/password")
        .cookie(Some(&derived))
        .json(json!({"current_password": PW, "password": NEW_PW, "password_confirmation": NEW_PW}));
    let r = TestApp::login_at(&billing, change).await;
    assert_eq!(r.status, 403, "{}", r.raw_body);
    let lod = TestCall::new("POST", "/logout-other-devices").cookie(Some(&derived)).json(json!({"password": PW}));
    assert_eq!(TestApp::login_at(&billing, lod).await.status, 403);
    assert_eq!(t.login("ann@example.com", PW).await.status, 200, "the password is unchanged");
    assert_eq!(t.user(Some(&cookie)).await.status, 200, "and nothing was revoked");
}

/// Every item of every table of this test's stack, as text.
async fn every_item(t: &TestApp) -> Vec<String> {
    gatehouse_tests::scan_items(&t.env, None).await
}

#[tokio::test]
async fn deleting_the_account_after_a_recent_confirmation_leaves_no_item_naming_the_user() {
    let t = TestApp::aws(&[("GATEHOUSE_APPS", "billing"), ("GATEHOUSE_PASSWORD_TIMEOUT_SECONDS", "60")]).await;
    let email = format!("zelda-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let reg = t.register("Zelda Quux", &email, PW).await;
    assert_eq!(reg.status, 201);
    let id = reg.body["user"]["id"].as_str().unwrap().to_owned();
    let cookie = reg.session_cookie().unwrap();
    let other = t.login(&email, PW).await.session_cookie().unwrap();
    // Something in every table: a token, a reset token, a cross-app session, throttle counts.
    let token =
        t.create_token(&cookie, json!({"name": "cli", "abilities": ["tokens:read"], "expires_in_minutes": 60})).await;
    let token = token.body["token"].as_str().unwrap().to_owned();
    t.reset_fn(TestCall::new("POST", "/forgot-password").json(json!({ "email": email }))).await;
    mails_with_notices(&t).await;
    let h = handoff(&t, &cookie, "billing").await;
    let billing = t.sibling(&[("GATEHOUSE_APP_NAME", "billing")]);
    let exchange = TestCall::new("POST", "/cross-app/exchange")
        .from_ip("198.51.100.23")
        .json(json!({"handoff_token": h.body["handoff_token"]}));
    assert_eq!(TestApp::tokens_at(&billing, exchange).await.status, 200);
    t.login_fn(TestCall::new("POST", "/email/verification-notification").cookie(Some(&cookie)).json(json!({}))).await;
    let wrong =
        TestCall::new("POST", "/user/confirm-password").cookie(Some(&cookie)).json(json!({"password": "not it"}));
    assert_eq!(t.login_fn(wrong).await.status, 422);
    assert!(every_item(&t).await.iter().any(|i| i.contains(&id)), "the scan sees the user's items");

    // Past the confirmation window: 423; confirmed again: deleted.
    t.env.clock.advance(chrono::Duration::seconds(61));
    let delete = || t.login_fn(TestCall::new("DELETE", "/user").cookie(Some(&cookie)));
    let refused = delete().await;
    assert_eq!((refused.status, refused.error_code()), (423, Some("password_confirmation_required")));
    let confirm = TestCall::new("POST", "/user/confirm-password").cookie(Some(&cookie)).json(json!({"password": PW}));
    assert_eq!(t.login_fn(confirm).await.status, 204);
    let deleted = delete().await;
    assert_eq!(deleted.status, 204, "{}", deleted.raw_body);
    assert!(deleted.set_cookies().iter().any(|c| c.contains("Max-Age=0")));

    for c in [&cookie, &other] {
        assert_eq!(t.user(Some(c)).await.status, 401);
    }
    assert_eq!(t.login_fn(TestCall::new("GET", "/user").bearer(&token)).await.status, 401);
    assert_eq!(t.login(&email, PW).await.status, 422);
    // The deletion's promised jobs (the notice, its event) run.
    let sent = mails_with_notices(&t).await;
    let name_lower = "zelda quux";
    let naming = |i: &String| i.to_lowercase().contains(&email) || i.to_lowercase().contains(name_lower);
    // The user's events stay for their delivery (its id, what happened, in order: the receiver
    // is told to forget the user), redacted: nothing else names the user, and they name nothing
    // personal (address, name, IP).
    let events_table = format!("{}: ", t.env.aws.as_ref().unwrap().names.table("events"));
    let (events, left): (Vec<String>, Vec<String>) = every_item(&t)
        .await
        .into_iter()
        .filter(|i| i.contains(&id) || naming(i))
        .partition(|i| i.starts_with(&events_table));
    assert!(left.is_empty(), "items still naming the user: {left:#?}");
    assert!(events.iter().any(|e| e.contains("user.deleted")), "user.deleted is kept for delivery: {events:#?}");
    for e in &events {
        assert!(!naming(e) && !e.contains("198.51.100.23") && e.contains(r#"\"redacted\":true"#), "not redacted: {e}");
    }
    let audit = every_item(&t).await.into_iter().find(|i| i.contains("cross_app_sessions") && i.contains("deleted#"));
    let audit = audit.expect("the audit record stays, pseudonymous");
    assert!(!audit.contains("198.51.100.23"), "{audit}");
    assert!(sent.iter().any(|m| m.to == email && m.subject == "Your account was deleted"));
    assert_eq!(delete().await.status, 204, "asked again by the session that asked: the same answer");
    t.env.clock.advance(chrono::Duration::minutes(11));
    assert_eq!(delete().await.status, 401, "and no more");
    assert_eq!(t.register("Zelda Again", &email, PW).await.status, 201, "the address is free again");
}

#[tokio::test]
async fn a_login_racing_the_deletion_leaves_no_session_behind() {
    let t = TestApp::aws(&[]).await;
    for round in 0..6 {
        let email = format!("race{round}-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let cookie = t.signed_up(&email).await;
        let delete = t.login_fn(TestCall::new("DELETE", "/user").cookie(Some(&cookie)));
        let replies = join_all(vec![Box::pin(t.login(&email, PW)), Box::pin(delete)]).await;
        assert_eq!(replies[1].status, 204, "{}", replies[1].raw_body);
        if let Some(c) = replies[0].session_cookie() {
            assert_eq!(t.user(Some(&c)).await.status, 401, "round {round}: a session outlived the deletion");
        }
        assert_eq!(t.login(&email, PW).await.status, 422);
    }
}

async fn confirm_password(t: &TestApp, cookie: &str) {
    let c = TestCall::new("POST", "/user/confirm-password").cookie(Some(cookie)).json(json!({ "password": PW }));
    assert_eq!(t.login_fn(c).await.status, 204);
}

/// `PUT /user/password` from `current` to `new` by the session `cookie`.
async fn change_password(t: &TestApp, cookie: &str, current: &str, new: &str) -> TestReply {
    let body = json!({"current_password": current, "password": new, "password_confirmation": new});
    t.login_fn(TestCall::new("PUT", "/user/password").cookie(Some(cookie)).json(body)).await
}

async fn request_change(t: &TestApp, cookie: &str, to: &str) -> TestReply {
    t.login_fn(TestCall::new("POST", "/user/email").cookie(Some(cookie)).json(json!({ "email": to }))).await
}

/// The confirmation link mailed to `to` among `sent`.
fn change_link(sent: &[Mail], to: &str) -> String {
    let mail = sent.iter().find(|m| m.to == to && m.subject == "Confirm your new email address");
    link_in(mail.expect("a confirmation mail to the new address"), "/user/email/confirm/")
}

#[tokio::test]
async fn an_email_change_is_confirmed_by_a_link_to_the_new_address_and_moves_everything_at_once() {
    let t = TestApp::aws(&[]).await;
    let (old, new, bobs) = (unique("ann"), unique("ann.new"), unique("bob"));
    let reg = t.register("Ann", &old, PW).await;
    let cookie = reg.session_cookie().unwrap();
    let bob = t.signed_up(&bobs).await;
    t.reset_fn(TestCall::new("POST", "/forgot-password").json(json!({ "email": old }))).await;
    let sent = mails_with_notices(&t).await;
    let reset = sent.iter().find(|m| m.to == old && m.subject == "Reset your password").expect("a reset mail");
    let i = reset.text.find("token=").unwrap() + 6;
    let reset_token = reset.text[i..i + 64].to_owned();
    // Signing up is no confirmation: refused before anything else is looked at.
    let unconfirmed = request_change(&t, &cookie, &new).await;
    assert_eq!((unconfirmed.status, unconfirmed.error_code()), (423, Some("password_confirmation_required")));
    confirm_password(&t, &cookie).await;

    // Refused before anything is mailed: a bad, the same or a taken address; a token; no session.
    for (body, field) in [(json!({"email": "nope"}), "email"), (json!({}), "email"), (json!({"email": 7}), "email")] {
        let r = t.login_fn(TestCall::new("POST", "/user/email").cookie(Some(&cookie)).json(body)).await;
        assert_eq!(r.status, 422, "{}", r.raw_body);
        assert!(r.body["error"]["fields"][field].is_array());
    }
    let same = request_change(&t, &cookie, &old.to_uppercase()).await;
    assert_eq!(
        (same.status, same.body["error"]["fields"]["email"][0].as_str()),
        (422, Some("is already your address"))
    );
    let taken = request_change(&t, &cookie, &bobs).await;
    assert_eq!(
        (taken.status, taken.body["error"]["fields"]["email"][0].as_str()),
        (422, Some("has already been taken"))
    );
    let token =
        t.create_token(&cookie, json!({"name": "t", "abilities": ["tokens:read"], "expires_in_minutes": 9})).await;
    let bearer =
        TestCall::new("POST", "/user/email").bearer(token.body["token"].as_str().unwrap()).json(json!({"email": new}));
    assert_eq!(t.login_fn(bearer).await.status, 401, "a session route");
    assert!(mails_with_notices(&t).await.is_empty());

    // Confirmed: a link to the new address, a notice to the old.
    let asked = request_change(&t, &cookie, &new).await;
    assert_eq!(asked.status, 202, "{}", asked.raw_body);
    let other = unique("ann.other");
    assert_eq!(request_change(&t, &cookie, &other).await.status, 202);
    let sent = mails_with_notices(&t).await;
    let link = change_link(&sent, &new);
    let superseded = change_link(&sent, &other);
    let notice = sent.iter().find(|m| m.to == old && m.subject.contains("change of your email address"));
    let notice = notice.expect("a notice to the current address");
    assert!(notice.text.contains("•••@example.com") && !notice.text.contains(&new), "{}", notice.text);
    assert_eq!(t.user(Some(&cookie)).await.body["user"]["email"], old, "nothing changes before the link");

    // The link works only for Ann signed in, and only as mailed.
    assert_eq!(t.login_fn(TestCall::new("GET", &link)).await.status, 401);
    let r = open(&t, &link, &bob).await;
    assert_eq!((r.status, r.error_code()), (403, Some("not_your_link")));
    let eve = unique("eve");
    for forged in [
        link.replace("email=", &format!("email={}", "x")),
        link.replace(&new.replace('@', "%40"), &eve.replace('@', "%40")),
        link.replace("signature=", "signature=A"),
    ] {
        let r = open(&t, &forged, &cookie).await;
        assert_eq!((r.status, r.error_code()), (403, Some("invalid_link")), "{forged}: {}", r.raw_body);
    }
    let done = open(&t, &link, &cookie).await;
    assert_eq!(done.status, 200, "{}", done.raw_body);
    assert_eq!(done.body["user"]["email"], new);
    assert!(done.body["user"]["email_verified_at"].is_string(), "the confirmation verifies the new address");
    assert_eq!(open(&t, &link, &cookie).await.status, 200, "again: nothing more to do");
    let by_token = TestCall::new("GET", &link).bearer(token.body["token"].as_str().unwrap());
    assert_eq!(t.login_fn(by_token).await.status, 401, "a session route: a token cannot confirm");
    let changed = mails_with_notices(&t).await;
    let notice = changed.iter().find(|m| m.to == old && m.subject == "Your email address was changed");
    assert!(notice.expect("the old address is told").text.contains("•••@example.com"));
    let r = open(&t, &superseded, &cookie).await;
    assert_eq!((r.status, r.error_code()), (403, Some("invalid_link")), "a link made for the old address");

    // Everything moved at once: the new address logs in, the old one is free, and the reset link
    // mailed to it is dead — even once somebody else registers that address.
    assert_eq!(t.login(&new, PW).await.status, 200);
    assert_eq!(t.login(&old, PW).await.status, 422);
    assert_eq!(t.register("Somebody", &old, PW).await.status, 201, "the old address registers again");
    let reset = TestCall::new("POST", "/reset-password")
        .json(json!({"email": old, "token": reset_token, "password": NEW_PW, "password_confirmation": NEW_PW}));
    assert_eq!(t.reset_fn(reset).await.status, 422);
    assert_eq!(t.login(&old, PW).await.status, 200, "the newcomer's password is untouched");
    assert_eq!(t.login(&new, PW).await.status, 200, "and Ann's");
    assert_eq!(t.register("Somebody", &new, PW).await.status, 422, "the new one is taken");
}

#[tokio::test]
async fn a_change_needs_a_recent_confirmation_and_a_password_change_voids_its_link() {
    let t = TestApp::memory(&[("GATEHOUSE_PASSWORD_TIMEOUT_SECONDS", "60")]);
    let cookie = t.signed_up("ann@example.com").await;
    mails_with_notices(&t).await;
    t.env.advance(std::time::Duration::from_secs(61)).await;
    let late = request_change(&t, &cookie, "ann.new@example.com").await;
    assert_eq!((late.status, late.error_code()), (423, Some("password_confirmation_required")));
    let confirm = TestCall::new("POST", "/user/confirm-password").cookie(Some(&cookie)).json(json!({"password": PW}));
    assert_eq!(t.login_fn(confirm).await.status, 204);
    assert_eq!(request_change(&t, &cookie, "ann.new@example.com").await.status, 202);
    let link = change_link(&mails_with_notices(&t).await, "ann.new@example.com");
    let changed = change_password(&t, &cookie, PW, NEW_PW).await;
    assert_eq!(changed.status, 204, "{}", changed.raw_body);
    let cookie = changed.session_cookie().unwrap();
    let r = open(&t, &link, &cookie).await;
    assert_eq!((r.status, r.error_code()), (403, Some("invalid_link")), "whoever asked before the password changed");
    assert_eq!(t.user(Some(&cookie)).await.body["user"]["email"], "ann@example.com");
    // Asked, then the password changed before the mail job ran: no link goes out at all.
    assert_eq!(request_change(&t, &cookie, "ann.later@example.com").await.status, 202);
    let back = change_password(&t, &cookie, NEW_PW, PW).await;
    assert_eq!(back.status, 204, "{}", back.raw_body);
    let cookie = back.session_cookie().unwrap();
    let sent = mails_with_notices(&t).await;
    assert!(
        sent.iter().all(|m| m.to != "ann.later@example.com"),
        "{:?}",
        sent.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert!(sent.iter().any(|m| m.to == "ann@example.com" && m.subject.contains("change of your email address")));

    // Counted per user before anything is read: six a minute.
    t.env.advance(std::time::Duration::from_secs(61)).await;
    let confirm = TestCall::new("POST", "/user/confirm-password").cookie(Some(&cookie)).json(json!({"password": PW}));
    assert_eq!(t.login_fn(confirm).await.status, 204);
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for i in 0..7 {
            v.push(request_change(&t, &cookie, &format!("n{i}@example.com")).await.status);
        }
        v
    };
    assert_eq!(statuses, [202, 202, 202, 202, 202, 202, 429]);
}

#[tokio::test]
async fn two_users_confirming_changes_to_one_address_leave_exactly_one_owner() {
    let t = TestApp::aws(&[]).await;
    let target = unique("wanted");
    let (ra, rb) = (t.register("A", &unique("a"), PW).await, t.register("B", &unique("b"), PW).await);
    let (a, b) = (ra.session_cookie().unwrap(), rb.session_cookie().unwrap());
    let a_id = ra.body["user"]["id"].as_str().unwrap().to_owned();
    confirm_password(&t, &a).await;
    confirm_password(&t, &b).await;
    mails_with_notices(&t).await;
    assert_eq!(request_change(&t, &a, &target).await.status, 202);
    assert_eq!(request_change(&t, &b, &target).await.status, 202);
    let sent = mails_with_notices(&t).await;
    let links: Vec<String> = sent
        .iter()
        .filter(|m| m.to == target && m.subject == "Confirm your new email address")
        .map(|m| link_in(m, "/user/email/confirm/"))
        .collect();
    assert_eq!(links.len(), 2);
    // Whose link is whose: the path names the user.
    let (la, lb) = if links[0].contains(&a_id) {
        (links[0].clone(), links[1].clone())
    } else {
        (links[1].clone(), links[0].clone())
    };
    assert!(la.contains(&a_id) && !lb.contains(&a_id));
    let replies = join_all(vec![Box::pin(open(&t, &la, &a)), Box::pin(open(&t, &lb, &b))]).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{:?}", replies.iter().map(|r| &r.raw_body).collect::<Vec<_>>());
    let loser = replies.iter().find(|r| r.status == 409).unwrap();
    assert_eq!(loser.error_code(), Some("email_taken"));
    let emails =
        [t.user(Some(&a)).await.body["user"]["email"].clone(), t.user(Some(&b)).await.body["user"]["email"].clone()];
    assert_eq!(emails.iter().filter(|e| **e == json!(target)).count(), 1, "{emails:?}");
    assert_eq!(t.register("Late", &target, PW).await.status, 422);
}

#[tokio::test]
async fn a_route_requiring_a_verified_address_passes_once_the_link_is_opened_with_no_user_read() {
    let mut env = gatehouse_tests::TestEnv::aws().await;
    let users = gatehouse_tests::counting::CountingUsers::wrap(env.stores.users.clone());
    env.stores.users = users.clone();
    let required = "GET /tokens=verified,GET /reports=verified,GET /user/confirmed-password-status=verified";
    let t = TestApp::with(env, &[("GATEHOUSE_ROUTE_ABILITIES", required)]);
    let status = |c: &str| TestCall::new("GET", "/user/confirmed-password-status").cookie(Some(c)).to_owned();
    let email = unique("ann");
    let cookie = t.register("Ann", &email, PW).await.session_cookie().unwrap();
    let token =
        t.create_token(&cookie, json!({"name": "t", "abilities": ["tokens:read"], "expires_in_minutes": 60})).await;
    let token = token.body["token"].as_str().unwrap().to_owned();
    let reserved = t.create_token(&cookie, json!({"name": "t", "abilities": ["verified"]})).await;
    assert_eq!(reserved.status, 422, "\"verified\" is no ability: {}", reserved.raw_body);
    let abilities = gatehouse::routes::RouteAbilities::parse("GET /reports=verified").unwrap();
    // A listing whose handler reads no user (GET /sessions now reads it for the factors).
    let sessions = |c: TestCall| t.tokens_fn(c);

    let before = users.calls();
    for call in [TestCall::new("GET", "/tokens").cookie(Some(&cookie)), TestCall::new("GET", "/tokens").bearer(&token)]
    {
        let r = sessions(call).await;
        assert_eq!((r.status, r.error_code()), (403, Some("email_unverified")), "{}", r.raw_body);
    }
    assert!(!t.authorize(&abilities, "GET /reports", Some(&token), None).await.is_authorized);
    assert!(!t.authorize(&abilities, "GET /reports", None, Some(&cookie)).await.is_authorized);
    let r = t.login_fn(status(&cookie)).await;
    assert_eq!((r.status, r.error_code()), (403, Some("email_unverified")), "a session-only route too");
    assert_eq!(users.calls(), before, "the flag rides on the credential: no user read");
    assert_eq!(t.user(Some(&cookie)).await.status, 200, "routes that do not require it pass");

    let link = link_of(mails_with_notices(&t).await.iter().find(|m| m.to == email).unwrap());
    assert_eq!(open(&t, &link, &cookie).await.status, 200);
    let before = users.calls();
    for call in [TestCall::new("GET", "/tokens").cookie(Some(&cookie)), TestCall::new("GET", "/tokens").bearer(&token)]
    {
        assert_eq!(sessions(call).await.status, 200, "the credentials issued before were stamped");
    }
    let ok = t.authorize(&abilities, "GET /reports", Some(&token), None).await;
    assert!(ok.is_authorized);
    assert_eq!(ok.context["email_verified"], true);
    assert_eq!(t.login_fn(status(&cookie)).await.status, 200);
    assert_eq!(users.calls(), before, "still no user read");
    let fresh = t.login(&email, PW).await.session_cookie().unwrap();
    assert_eq!(sessions(TestCall::new("GET", "/tokens").cookie(Some(&fresh))).await.status, 200, "stamped at issue");
    let child =
        t.create_token(&fresh, json!({"name": "c", "abilities": ["tokens:read"], "expires_in_minutes": 5})).await;
    let child = child.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        sessions(TestCall::new("GET", "/tokens").bearer(&child)).await.status,
        200,
        "inherited by what it mints"
    );
}

#[tokio::test]
async fn confirming_a_change_verifies_the_address_on_every_credential_already_issued() {
    let t = TestApp::memory(&[("GATEHOUSE_ROUTE_ABILITIES", "GET /sessions=verified")]);
    let cookie = t.signed_up("ann@example.com").await;
    let token =
        t.create_token(&cookie, json!({"name": "t", "abilities": ["tokens:read"], "expires_in_minutes": 60})).await;
    let token = token.body["token"].as_str().unwrap().to_owned();
    let sessions = || t.login_fn(TestCall::new("GET", "/sessions").bearer(&token));
    assert_eq!(sessions().await.error_code(), Some("email_unverified"));
    assert_eq!(request_change(&t, &cookie, "ann.new@example.com").await.status, 202);
    let link = change_link(&mails_with_notices(&t).await, "ann.new@example.com");
    assert_eq!(open(&t, &link, &cookie).await.status, 200);
    assert_eq!(sessions().await.status, 200, "the token was stamped by the confirmation");
}
