//! Events of credentials (#32, S6/S7): `session.created` and `token.created` numbered by the
//! issue's own write on the user (its condition check became an update), `session.ended` and
//! `token.revoked` by the last write of the tree's revocation (only while the tree is not marked
//! ended yet), so racing endings of one credential announce it once; `identity.*` and
//! `oauth.consent_*` are walked in `federation.rs` and `oauth.rs`.

use crate::support::{mails_with_notices, unique};
use gatehouse::tables::events::Event;
use gatehouse::tables::users::UserId;
use gatehouse_tests::http::{TestApp, TestCall, TestReply};
use serde_json::{Value, json};

const PW: &str = "correct horse battery staple 42";

/// Every event recorded for `user`, as stored, once the jobs due have run.
pub(crate) async fn events_of(t: &TestApp, user: &str) -> Vec<Event> {
    mails_with_notices(t).await;
    let id = UserId::parse(user).expect("a user id");
    t.env.stores.events.after(&id, 0, 100).await.expect("events")
}

/// `(seq, type)` of each, and each one's `data` as JSON.
pub(crate) fn kinds(events: &[Event]) -> Vec<(u64, &'static str)> {
    events.iter().map(|e| (e.seq, e.kind().as_str())).collect()
}

fn data(e: &Event) -> Value {
    serde_json::to_value(e).expect("an event as JSON")["data"].clone()
}

/// The `name=value` of the device cookie a reply set.
fn device_cookie(t: &TestApp, r: &TestReply) -> Option<String> {
    let name = format!("{}=", gatehouse_http::device_cookie_name(&t.app.config.session));
    r.set_cookies().into_iter().find(|c| c.starts_with(&name)).map(|c| c.split(';').next().unwrap_or("").to_owned())
}

/// The handles `GET /sessions` lists for `cookie`: (current, others).
async fn handles(t: &TestApp, cookie: &str) -> (String, Vec<String>) {
    let list = t.login_fn(TestCall::new("GET", "/sessions").cookie(Some(cookie))).await;
    let sessions = list.body["sessions"].as_array().cloned().unwrap_or_default();
    let id = |s: &Value| s["id"].as_str().unwrap_or_default().to_owned();
    let current = sessions.iter().find(|s| s["current"] == true).map(id).expect("the current session");
    (current, sessions.iter().filter(|s| s["current"] == false).map(id).collect())
}

/// A user's sessions and a token, made and ended through the API, each announced once, in
/// order, with what a receiver needs to match them (the session handle `GET /sessions` lists,
/// the token id `GET /tokens` lists); every ending asked for twice at once.
async fn sessions_and_tokens_are_announced_once_in_order(t: TestApp) {
    let email = unique("credevents");
    let reg = t.login_fn(TestCall::new("POST", "/register").from_ip("198.51.100.9").json(json!({
        "name": "Ann", "email": email, "password": PW, "password_confirmation": PW,
    })));
    let reg = reg.await;
    assert_eq!(reg.status, 201, "{}", reg.raw_body);
    let id = reg.body["user"]["id"].as_str().expect("the user").to_owned();
    let a = reg.session_cookie().expect("the sign-up's session");
    // A sign-in from a device not seen (no device cookie), then one showing the cookie it got.
    let second = t.login(&email, PW).await;
    let b = second.session_cookie().expect("a second session");
    let device = device_cookie(&t, &second).expect("a device cookie for the new device");
    let third = t
        .login_fn(
            TestCall::new("POST", "/login").header("cookie", &device).json(json!({ "email": email, "password": PW })),
        )
        .await;
    assert_eq!(third.status, 200, "{}", third.raw_body);
    // A wrong password opens nothing, announces nothing.
    assert_eq!(t.login(&email, "not the password at all").await.status, 422);
    let confirm = TestCall::new("POST", "/user/confirm-password").cookie(Some(&a)).json(json!({ "password": PW }));
    assert_eq!(t.login_fn(confirm).await.status, 204);
    let made = t.create_token(&a, json!({ "name": "deploy", "abilities": ["tokens:read"] })).await;
    assert_eq!(made.status, 201, "{}", made.raw_body);
    let token_id = made.body["id"].as_str().expect("the token's id").to_owned();
    // The token revoked by two requests at once: one announcement.
    let revoke = || t.tokens_fn(TestCall::new("DELETE", &format!("/tokens/{token_id}")).cookie(Some(&a)));
    let (r1, r2) = tokio::join!(revoke(), revoke());
    assert!(r1.status < 300 && r2.status < 300, "{} / {}", r1.raw_body, r2.raw_body);
    // Session B ended from A by its handle, twice at once: one announcement.
    let (a_handle, others) = handles(&t, &a).await;
    let (b_handle, _) = handles(&t, &b).await;
    assert!(others.contains(&b_handle));
    let end = || t.login_fn(TestCall::new("DELETE", &format!("/sessions/{b_handle}")).cookie(Some(&a)));
    let (e1, e2) = tokio::join!(end(), end());
    assert!(e1.status < 300 && e2.status < 300, "{} / {}", e1.raw_body, e2.raw_body);
    assert_eq!(t.user(Some(&b)).await.status, 401);
    // A signs out, twice at once (a double click): one announcement.
    let out = || t.login_fn(TestCall::new("POST", "/logout").cookie(Some(&a)));
    let (o1, o2) = tokio::join!(out(), out());
    assert!(o1.status < 300 || o2.status < 300, "{} / {}", o1.raw_body, o2.raw_body);

    let events = events_of(&t, &id).await;
    assert_eq!(
        kinds(&events),
        vec![
            (1, "user.registered"),
            (2, "session.created"),
            (3, "session.created"),
            (4, "session.created"),
            (5, "token.created"),
            (6, "token.revoked"),
            (7, "session.ended"),
            (8, "session.ended"),
        ]
    );
    let d: Vec<Value> = events.iter().map(data).collect();
    assert_eq!((d[1]["method"].as_str(), d[1]["new_device"].as_bool()), (Some("password"), Some(true)));
    assert_eq!(d[1]["session"], json!(a_handle), "the handle GET /sessions lists");
    assert_eq!(d[1]["client"]["ip"], "198.51.100.9");
    assert_eq!(d[2]["session"], json!(b_handle));
    assert_eq!(d[2]["new_device"], json!(true), "no device cookie shown");
    assert_eq!(d[3]["new_device"], json!(false), "the device cookie shown");
    assert_eq!((d[4]["token_id"].as_str(), d[4]["name"].as_str()), (Some(token_id.as_str()), Some("deploy")));
    assert_eq!(d[4]["abilities"], json!(["tokens:read"]));
    assert_eq!(d[5], json!({ "token_id": token_id, "reason": "revoked_by_user" }));
    assert_eq!(d[6], json!({ "session": b_handle, "reason": "revoked_by_user" }));
    assert_eq!(d[7], json!({ "session": a_handle, "reason": "logout" }));
    let text = serde_json::to_string(&events).expect("JSON");
    for secret in [&a, &b, &device] {
        let value = secret.split_once('=').map_or(secret.as_str(), |(_, v)| v);
        assert!(!text.contains(value), "a cookie's value in an event: {text}");
    }
}

#[tokio::test]
async fn sessions_and_tokens_are_announced_once_in_order_in_memory() {
    sessions_and_tokens_are_announced_once_in_order(TestApp::memory(&[])).await;
}

#[tokio::test]
async fn sessions_and_tokens_are_announced_once_in_order_on_the_emulator() {
    sessions_and_tokens_are_announced_once_in_order(TestApp::aws(&[("GATEHOUSE_NOTICE_DELAY_SECONDS", "0")]).await)
        .await;
}

/// Eight sign-ins of one user at once (Lambda runs many copies): each session announced, the
/// numbers 2 to 9 each taken once, none lost to the racing updates of the user item.
async fn racing_sign_ins_each_take_their_own_number(t: TestApp) {
    let email = unique("racing");
    let reg = t.register("Ann", &email, PW).await;
    assert_eq!(reg.status, 201, "{}", reg.raw_body);
    let id = reg.body["user"]["id"].as_str().expect("the user").to_owned();
    let mut logins = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (app, email) = (t.app.clone(), email.clone());
        let call = TestCall::new("POST", "/login").json(json!({ "email": email, "password": PW }));
        logins.spawn(async move { TestApp::login_at(&app, call).await });
    }
    let replies = logins.join_all().await;
    assert!(replies.iter().all(|r| r.status == 200), "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    let events = events_of(&t, &id).await;
    let created = events.iter().filter(|e| e.kind().as_str() == "session.created").count();
    assert_eq!(created, 9, "the sign-up's and eight sign-ins'");
    let numbers: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(numbers, (1..=10).collect::<Vec<_>>());
}

#[tokio::test]
async fn racing_sign_ins_each_take_their_own_number_in_memory() {
    racing_sign_ins_each_take_their_own_number(TestApp::memory(&[("GATEHOUSE_LOGIN_PER_EMAIL_PER_MINUTE", "50")]))
        .await;
}

#[tokio::test]
async fn racing_sign_ins_each_take_their_own_number_on_the_emulator() {
    let overrides = [("GATEHOUSE_NOTICE_DELAY_SECONDS", "0"), ("GATEHOUSE_LOGIN_PER_EMAIL_PER_MINUTE", "50")];
    racing_sign_ins_each_take_their_own_number(TestApp::aws(&overrides).await).await;
}

/// A queue that refuses every send: the events' jobs cannot be promised.
struct DownQueue;

#[async_trait::async_trait]
impl gatehouse::tables::jobs::JobQueue for DownQueue {
    async fn send(&self, _: &str, _: std::time::Duration) -> gatehouse::values::error::StoreResult<String> {
        Err(gatehouse::StoreError::Unavailable("the queue is down".into()))
    }
    async fn receive(
        &self,
        _: u32,
        _: std::time::Duration,
        _: Option<std::time::Duration>,
    ) -> gatehouse::values::error::StoreResult<Vec<gatehouse::tables::jobs::QueueMessage>> {
        Ok(Vec::new())
    }
    async fn change_visibility(&self, _: &str, _: std::time::Duration) -> gatehouse::values::error::StoreResult<()> {
        Ok(())
    }
    async fn delete(&self, _: &str) -> gatehouse::values::error::StoreResult<()> {
        Ok(())
    }
    async fn approximate_len(&self) -> gatehouse::values::error::StoreResult<u64> {
        Ok(0)
    }
}

/// Ending a credential matters more than announcing it: with the queue down, a token is still
/// revoked and a session still signed out (unannounced, logged), while nothing new is issued
/// unannounced (a sign-in or a token creation is refused instead).
#[tokio::test]
async fn with_the_queue_down_credentials_still_end_and_none_is_issued_unannounced() {
    let mut t = TestApp::memory(&[]);
    let email = unique("queuedown");
    let cookie = t.signed_up(&email).await;
    let made = t.create_token(&cookie, json!({ "name": "ci", "abilities": ["tokens:read"] })).await;
    assert_eq!(made.status, 201, "{}", made.raw_body);
    let (id, token) = (made.body["id"].as_str().unwrap().to_owned(), made.body["token"].as_str().unwrap().to_owned());
    let other = t.login(&email, PW).await.session_cookie().expect("a second session");
    // The queue goes down (the same stores otherwise).
    let mut stores = t.env.stores.clone();
    stores.queue = std::sync::Arc::new(DownQueue);
    t.env.stores = stores.clone();
    t.app = gatehouse_http::App::new(t.app.config.as_ref().clone(), stores).expect("an app");
    let revoked = t.tokens_fn(TestCall::new("DELETE", &format!("/tokens/{id}")).cookie(Some(&cookie))).await;
    assert_eq!(revoked.status, 204, "{}", revoked.raw_body);
    let used = t.login_fn(TestCall::new("GET", "/user").bearer(&token)).await;
    assert_eq!(used.status, 401, "the token ended: {}", used.raw_body);
    let out = t.login_fn(TestCall::new("POST", "/logout").cookie(Some(&other))).await;
    assert!(out.status < 300, "{}", out.raw_body);
    assert_eq!(t.user(Some(&other)).await.status, 401, "the session ended");
    // Nothing is issued that could not be announced.
    let login = t.login(&email, PW).await;
    assert_eq!(login.status, 503, "{}", login.raw_body);
    assert!(login.session_cookie().is_none());
    let minted = t.create_token(&cookie, json!({ "name": "ci", "abilities": ["tokens:read"] })).await;
    assert_eq!(minted.status, 503, "{}", minted.raw_body);
}
