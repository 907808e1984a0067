//! Events (#32, S3): a fact's event is promised before its write
//! ([`gatehouse::queue::Dispatcher::promise_event`]), carried by that write as a mark with the
//! user's next number, and recorded by its job (`RecordEvent`) once the worker finds the mark.
//! The first tests make the writes themselves; the last go through the API (registration and
//! deletion emit `user.registered` and `user.deleted`).

use crate::support::{mails, mails_with_notices};
use gatehouse::queue::Dispatcher;
use gatehouse::tables::events::{
    Client, EventBody, EventType, RegistrationMethod, Revoked, UserDeleted, UserRegistered,
};
use gatehouse::tables::users::{CredentialChange, User, UserId};
use gatehouse::values::email::Email;
use gatehouse::values::password::PasswordHash;
use gatehouse_tests::http::TestApp;

fn registered(user: &User) -> EventBody {
    EventBody::UserRegistered(UserRegistered {
        email: Some(user.email.clone()),
        name: Some(user.name.clone()),
        email_verified: false,
        method: RegistrationMethod::Password,
        provider: None,
        client: Some(Client { ip: Some("203.0.113.7".into()), user_agent: None }),
    })
}

fn deleted() -> EventBody {
    EventBody::UserDeleted(UserDeleted { revoked: Revoked::All })
}

fn new_user(t: &TestApp) -> User {
    let email = format!("events-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    User::new("Ann", Email::parse(&email).unwrap(), PasswordHash::unusable(), t.env.clock_now())
}

async fn recorded(t: &TestApp, user: &User) -> Vec<(u64, EventType)> {
    let events = t.env.stores.events.after(&user.id, 0, 100).await.expect("events");
    events.into_iter().map(|e| (e.seq, e.body.kind())).collect()
}

/// A creation and a credentials change, each carrying its promised event: recorded after the
/// notice delay as 1 and 2, the marks cleared; a promise whose write never landed (a second
/// creation of the address, refused) records nothing.
async fn facts_written_with_their_marks_are_recorded_in_order(t: TestApp) {
    let dispatcher = Dispatcher::for_config(t.env.stores.clone(), &t.app.config);
    let user = new_user(&t);
    let mark = dispatcher.promise_event(&user.id, registered(&user)).await.expect("promised");
    let user = user.with_events(std::slice::from_ref(&mark));
    t.env.stores.users.create(&user).await.expect("created");
    // The same address again: refused, so its promised event finds no mark.
    let rival = User::new("Bob", user.email.clone(), PasswordHash::unusable(), t.env.clock_now());
    let lost = dispatcher.promise_event(&rival.id, registered(&rival)).await.expect("promised");
    let rival = rival.with_events(std::slice::from_ref(&lost));
    assert!(t.env.stores.users.create(&rival).await.is_err());
    assert_eq!(recorded(&t, &user).await, vec![], "nothing before the notice delay");
    mails_with_notices(&t).await;
    assert_eq!(recorded(&t, &user).await, vec![(1, EventType::UserRegistered)]);
    assert_eq!(recorded(&t, &rival).await, vec![], "a write that did not land announces nothing");
    assert!(t.env.stores.users.find(&user.id).await.unwrap().unwrap().pending_events.is_empty(), "cleared");
    // Deletion's first write, carrying its event.
    let event = dispatcher.promise_event(&user.id, deleted()).await.expect("promised");
    let change = CredentialChange {
        revoke: true,
        disable: Some(true),
        delete: true,
        events: std::slice::from_ref(&event),
        ..CredentialChange::default()
    };
    let now = t.env.clock_now();
    assert_eq!(t.env.stores.users.change_credentials(&user.id, 0, change, now).await.unwrap(), Some(1));
    mails_with_notices(&t).await;
    assert_eq!(recorded(&t, &user).await, vec![(1, EventType::UserRegistered), (2, EventType::UserDeleted)]);
    let first = &t.env.stores.events.after(&user.id, 0, 1).await.unwrap()[0];
    assert_eq!((&first.user_id, first.seq), (&user.id, 1));
}

#[tokio::test]
async fn facts_written_with_their_marks_are_recorded_as_events_in_order() {
    facts_written_with_their_marks_are_recorded_in_order(TestApp::memory(&[])).await;
}

#[tokio::test]
async fn facts_written_with_their_marks_are_recorded_as_events_in_order_on_the_emulator() {
    facts_written_with_their_marks_are_recorded_in_order(TestApp::aws(&[]).await).await;
}

/// A change whose write was refused (a stale credentials version) takes no number: its promised
/// job finds no mark and records nothing.
#[tokio::test]
async fn an_event_whose_write_was_refused_is_never_recorded() {
    let t = TestApp::memory(&[]);
    let dispatcher = Dispatcher::for_config(t.env.stores.clone(), &t.app.config);
    let user = new_user(&t);
    t.env.stores.users.create(&user).await.expect("created");
    let event = dispatcher.promise_event(&user.id, deleted()).await.expect("promised");
    let change =
        CredentialChange { revoke: true, delete: true, events: std::slice::from_ref(&event), ..Default::default() };
    assert_eq!(t.env.stores.users.change_credentials(&user.id, 7, change, t.env.clock_now()).await.unwrap(), None);
    mails_with_notices(&t).await;
    assert_eq!(recorded(&t, &user).await, vec![]);
    assert_eq!(t.env.stores.users.find(&user.id).await.unwrap().unwrap().event_seq, 0, "no number taken");
}

/// A deleted account's promised event is still recorded with its number: the deletion keeps
/// the marks aside (the user item the job looks for is gone).
#[tokio::test]
async fn an_event_promised_just_before_the_account_went_is_recorded() {
    let t = TestApp::memory(&[]);
    let dispatcher = Dispatcher::for_config(t.env.stores.clone(), &t.app.config);
    let user = new_user(&t);
    let mark = dispatcher.promise_event(&user.id, deleted()).await.expect("promised");
    let user = user.with_events(std::slice::from_ref(&mark));
    t.env.stores.users.create(&user).await.expect("created");
    gatehouse::services::account_deletion::finish(&t.env.stores, &t.app.config, &dispatcher, &user.id, &user.email)
        .await
        .expect("finished");
    assert_eq!(t.env.stores.users.find(&user.id).await.unwrap(), None);
    mails_with_notices(&t).await;
    assert_eq!(recorded(&t, &user).await, vec![(1, EventType::UserDeleted)]);
}

/// The deletion's write lands and its answer is lost: the SDK sends it again, which its own
/// version move and its own event mark refuse; read back, it is the change's own, and the
/// event's number was taken once.
#[tokio::test]
async fn a_write_carrying_an_event_whose_answer_was_lost_takes_its_number_once() {
    use gatehouse_tests::wire::{Fault, faulty_env};
    let (env, faults, _) = faulty_env(7).await;
    let t = TestApp::with(env, &[]);
    let dispatcher = Dispatcher::for_config(t.env.stores.clone(), &t.app.config);
    let user = new_user(&t);
    let mark = dispatcher.promise_event(&user.id, registered(&user)).await.expect("promised");
    let user = user.with_events(std::slice::from_ref(&mark));
    t.env.stores.users.create(&user).await.expect("created");
    let event = dispatcher.promise_event(&user.id, deleted()).await.expect("promised");
    let change = CredentialChange {
        revoke: true,
        delete: true,
        events: std::slice::from_ref(&event),
        ..CredentialChange::default()
    };
    faults.fail_next("dynamodb:UpdateItem", Fault::AfterWrite);
    let now = t.env.clock_now();
    assert_eq!(t.env.stores.users.change_credentials(&user.id, 0, change, now).await.unwrap(), Some(1), "its own");
    assert_eq!(faults.injected().values().sum::<usize>(), 1, "the fault was injected");
    let stored = t.env.stores.users.find(&user.id).await.unwrap().unwrap();
    assert_eq!((stored.event_seq, stored.pending_events.get(event.as_str()).copied()), (2, Some(2)));
}

/// Every event recorded for `user_id`, as stored.
async fn stored(t: &TestApp, user_id: &str) -> Vec<gatehouse::tables::events::Event> {
    let id = UserId::parse(user_id).expect("a user id");
    t.env.stores.events.after(&id, 0, 100).await.expect("events")
}

/// Registered through the API, then deleted: `user.registered` (with the address, the name and
/// the client while the account lives) and `user.deleted`, numbered 1 and 2; once deleted, both
/// are kept only redacted: the id, the types, the numbers, nothing that names the person.
async fn registration_and_deletion_are_announced_and_the_deleted_user_is_redacted(t: TestApp) {
    use gatehouse_tests::http::TestCall;
    use serde_json::json;
    let email = format!("zelda-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let reg = t
        .login_fn(TestCall::new("POST", "/register").from_ip("198.51.100.23").json(json!({
            "name": "Zelda Quux", "email": email, "password": PW, "password_confirmation": PW,
        })))
        .await;
    assert_eq!(reg.status, 201, "{}", reg.raw_body);
    let id = reg.body["user"]["id"].as_str().unwrap().to_owned();
    let cookie = reg.session_cookie().unwrap();
    mails_with_notices(&t).await;
    let events = stored(&t, &id).await;
    assert_eq!(events.len(), 2, "registered, and its session: {events:?}");
    let session = serde_json::to_value(&events[1]).unwrap();
    assert_eq!((session["type"].as_str(), session["seq"].as_u64()), (Some("session.created"), Some(2)));
    assert_eq!(session["data"]["client"]["ip"], "198.51.100.23");
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!((json["type"].as_str(), json["seq"].as_u64()), (Some("user.registered"), Some(1)));
    assert_eq!(json["data"]["email"], email.as_str());
    assert_eq!(json["data"]["name"], "Zelda Quux");
    assert_eq!(json["data"]["method"], "password");
    assert_eq!(json["data"]["email_verified"], false);
    assert_eq!(json["data"]["client"]["ip"], "198.51.100.23");
    assert!(json.get("redacted").is_none());

    let confirm = TestCall::new("POST", "/user/confirm-password").cookie(Some(&cookie)).json(json!({"password": PW}));
    assert_eq!(t.login_fn(confirm).await.status, 204);
    assert_eq!(t.login_fn(TestCall::new("DELETE", "/user").cookie(Some(&cookie))).await.status, 204);
    mails_with_notices(&t).await;
    let events = stored(&t, &id).await;
    let kinds: Vec<_> = events.iter().map(|e| (e.seq, e.kind(), e.redacted)).collect();
    let want = [EventType::UserRegistered, EventType::SessionCreated, EventType::UserDeleted];
    assert_eq!(kinds, want.into_iter().zip(1..).map(|(k, n)| (n, k, true)).collect::<Vec<_>>());
    let text = serde_json::to_string(&events).unwrap();
    for personal in [email.as_str(), "Zelda Quux", "198.51.100.23"] {
        assert!(!text.contains(personal), "{personal} kept in {text}");
    }
}

const PW: &str = "correct horse battery staple 2026";

#[tokio::test]
async fn registration_and_deletion_are_announced_and_a_deleted_user_s_events_are_redacted() {
    registration_and_deletion_are_announced_and_the_deleted_user_is_redacted(TestApp::memory(&[])).await;
}

#[tokio::test]
async fn registration_and_deletion_are_announced_and_a_deleted_user_s_events_are_redacted_on_the_emulator() {
    registration_and_deletion_are_announced_and_the_deleted_user_is_redacted(TestApp::aws(&[]).await).await;
}

/// The "a deletion is observable": the deletion's marking write lands, then every AWS
/// call fails, so the request is cut (503) before it finishes anything. Once AWS answers again,
/// the event's job records `user.deleted`, numbered after `user.registered` (a registration of the
/// taken address took no number), and the deletion's own job finishes the deletion and redacts
/// both. (On the emulator the queue's delays are real time: the notice delay is 0 here, and the
/// deletion's job, due a minute later, is run by hand as the worker would run it.)
#[tokio::test]
async fn a_deletion_cut_after_its_write_is_still_announced() {
    use gatehouse_tests::http::TestCall;
    use gatehouse_tests::wire::faulty_env;
    use serde_json::json;
    let (env, faults, _) = faulty_env(11).await;
    let t = TestApp::with(env, &[("GATEHOUSE_NOTICE_DELAY_SECONDS", "0")]);
    let email = format!("cut-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let reg = t.register("Cut Short", &email, PW).await;
    assert_eq!(reg.status, 201, "{}", reg.raw_body);
    let id = reg.body["user"]["id"].as_str().unwrap().to_owned();
    let cookie = reg.session_cookie().unwrap();
    assert_eq!(t.register("Someone Else", &email, PW).await.status, 422, "the address is taken");
    let confirm = TestCall::new("POST", "/user/confirm-password").cookie(Some(&cookie)).json(json!({"password": PW}));
    assert_eq!(t.login_fn(confirm).await.status, 204);
    let f = faults.clone();
    faults.after_next_lands_with(
        "dynamodb:UpdateItem",
        "deleted_at",
        Box::new(move || {
            Box::pin(async move {
                f.set_outage(true);
            })
        }),
    );
    let cut = t.login_fn(TestCall::new("DELETE", "/user").cookie(Some(&cookie))).await;
    assert_eq!(cut.status, 503, "{}", cut.raw_body);
    faults.set_outage(false);
    mails(&t).await;
    let user = UserId::parse(&id).unwrap();
    let marked = t.env.stores.users.find(&user).await.unwrap().expect("marked, not finished");
    assert!(marked.deleted_at.is_some());
    let events = stored(&t, &id).await;
    let kinds: Vec<_> = events.iter().map(|e| (e.seq, e.kind())).collect();
    let want = vec![(1, EventType::UserRegistered), (2, EventType::SessionCreated), (3, EventType::UserDeleted)];
    assert_eq!(kinds, want, "announced before finished");
    let dispatcher = Dispatcher::for_config(t.env.stores.clone(), &t.app.config);
    gatehouse::services::account_deletion::finish(&t.env.stores, &t.app.config, &dispatcher, &user, &marked.email)
        .await
        .expect("the deletion's job");
    assert_eq!(t.env.stores.users.find(&user).await.unwrap(), None, "finished by its job");
    let events = stored(&t, &id).await;
    let kinds: Vec<_> = events.iter().map(|e| (e.seq, e.kind())).collect();
    assert_eq!(
        kinds,
        vec![(1, EventType::UserRegistered), (2, EventType::SessionCreated), (3, EventType::UserDeleted)]
    );
    assert!(events.iter().all(|e| e.redacted));
}

/// The path and query of the link in `mail` whose path holds `marker`.
fn link_in(mail: &gatehouse::mail::Mail, marker: &str) -> String {
    let url = mail.text.split_whitespace().find(|w| w.contains(marker)).expect("a link");
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest[rest.find('/').expect("a path")..].to_owned()
}

/// Every fact of an account's life through the API, each announced once, numbered in the order
/// the facts happened: registered, two-factor on, verified, profile, password changed, other
/// devices signed out, address changed, two-factor off, deleted. Refused requests (a wrong
/// password) announce nothing. On the in-memory stores and the emulator.
async fn every_account_fact_is_announced_in_order(t: TestApp) {
    use gatehouse_tests::http::TestCall;
    use serde_json::json;
    const ANN_PW: &str = "correct horse battery staple 42";
    const NEW_PW: &str = "a brand new and long passphrase 7";
    let email = format!("walk-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let (mut cookie, _, _) = t.enrolled(&email).await;
    let id = t.user(Some(&cookie)).await.body["user"]["id"].as_str().expect("the user").to_owned();
    let keep = |r: &gatehouse_tests::http::TestReply, cookie: &mut String| {
        if let Some(c) = r.session_cookie() {
            *cookie = c;
        }
    };
    let sent = mails_with_notices(&t).await;
    let verify = sent.iter().find(|m| m.to == email && m.text.contains("/account/verify-email/")).expect("the link");
    let path = link_in(verify, "/account/verify-email/").replacen("/account/verify-email/", "/email/verify/", 1);
    let verified = t.login_fn(TestCall::new("GET", &path).cookie(Some(&cookie))).await;
    assert!(verified.status < 300, "{}", verified.raw_body);
    let call = |method: &str, path: &str, cookie: &str, body: serde_json::Value| {
        TestCall::new(method, path).cookie(Some(cookie)).json(body)
    };
    let named = t.login_fn(call("PUT", "/user/profile-information", &cookie, json!({"name": "Ann B."}))).await;
    assert!(named.status < 300, "{}", named.raw_body);
    let wrong = json!({"current_password": "not it at all", "password": NEW_PW, "password_confirmation": NEW_PW});
    assert_eq!(t.login_fn(call("PUT", "/user/password", &cookie, wrong)).await.status, 422, "refused: no event");
    let change = json!({"current_password": ANN_PW, "password": NEW_PW, "password_confirmation": NEW_PW});
    let changed = t.login_fn(call("PUT", "/user/password", &cookie, change)).await;
    assert!(changed.status < 300, "{}", changed.raw_body);
    keep(&changed, &mut cookie);
    let out = t.login_fn(call("POST", "/logout-other-devices", &cookie, json!({"password": NEW_PW}))).await;
    assert!(out.status < 300, "{}", out.raw_body);
    keep(&out, &mut cookie);
    let confirm = |cookie: &str| call("POST", "/user/confirm-password", cookie, json!({"password": NEW_PW}));
    assert_eq!(t.login_fn(confirm(&cookie)).await.status, 204);
    let new = format!("moved-{email}");
    let asked = t.login_fn(call("POST", "/user/email", &cookie, json!({"email": new}))).await;
    assert_eq!(asked.status, 202, "{}", asked.raw_body);
    let sent = mails(&t).await;
    let mail = sent.iter().find(|m| m.to == new && m.subject == "Confirm your new email address").expect("the link");
    let moved = t.login_fn(TestCall::new("GET", &link_in(mail, "/user/email/confirm/")).cookie(Some(&cookie))).await;
    assert!(moved.status < 300, "{}", moved.raw_body);
    keep(&moved, &mut cookie);
    assert_eq!(t.login_fn(confirm(&cookie)).await.status, 204);
    let off = t.login_fn(TestCall::new("DELETE", "/user/two-factor-authentication").cookie(Some(&cookie))).await;
    assert!(off.status < 300, "{}", off.raw_body);
    assert_eq!(t.login_fn(TestCall::new("DELETE", "/user").cookie(Some(&cookie))).await.status, 204);
    mails_with_notices(&t).await;
    let events = stored(&t, &id).await;
    let got: Vec<(u64, &str)> = events.iter().map(|e| (e.seq, e.kind().as_str())).collect();
    // A change that rotates the changing session (two-factor on, the password, log out other
    // devices) announces the continued session after itself (`method: continued`).
    let want = [
        "user.registered",
        "session.created",
        "two_factor.enabled",
        "session.created",
        "user.verified",
        "user.profile_updated",
        "user.password_changed",
        "session.created",
        "user.signed_out",
        "session.created",
        "user.email_changed",
        "two_factor.disabled",
        "user.deleted",
    ];
    let want: Vec<(u64, &str)> = want.iter().enumerate().map(|(i, k)| (i as u64 + 1, *k)).collect();
    assert_eq!(got, want);
    let methods: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .filter(|e| e["type"] == "session.created")
        .map(|e| e["data"]["method"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(methods, ["password", "continued", "continued", "continued"]);
    assert!(events.iter().all(|e| e.redacted), "the user is gone: all redacted");
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&email) && !text.contains("Ann B."), "{text}");
}

#[tokio::test]
async fn every_account_fact_is_announced_once_in_order() {
    every_account_fact_is_announced_in_order(TestApp::memory(&[])).await;
}

#[tokio::test]
async fn every_account_fact_is_announced_once_in_order_on_the_emulator() {
    every_account_fact_is_announced_in_order(TestApp::aws(&[("GATEHOUSE_NOTICE_DELAY_SECONDS", "0")]).await).await;
}

/// An event job's first try read the user live, the deletion finished (redacting what was
/// stored), then that try appended the event unredacted and was cut; its retry finds the user
/// gone and redacts what the first try left.
#[tokio::test]
async fn an_event_stored_unredacted_by_a_try_cut_after_a_deletion_is_redacted_by_its_retry() {
    let t = TestApp::memory(&[]);
    let dispatcher = Dispatcher::for_config(t.env.stores.clone(), &t.app.config);
    let user = new_user(&t);
    let mark = dispatcher.promise_event(&user.id, registered(&user)).await.expect("promised");
    let user = user.with_events(std::slice::from_ref(&mark));
    t.env.stores.users.create(&user).await.expect("created");
    gatehouse::services::account_deletion::finish(&t.env.stores, &t.app.config, &dispatcher, &user.id, &user.email)
        .await
        .expect("finished");
    // The first try's late append, with the id the job carries (read off the queue, left there).
    t.env.clock.advance(chrono::Duration::from_std(gatehouse::config::NOTICE_DELAY).unwrap());
    let queued = t.env.stores.queue.receive(10, std::time::Duration::ZERO, Some(std::time::Duration::ZERO)).await;
    let job = queued
        .unwrap()
        .into_iter()
        .map(|m| gatehouse::tables::jobs::JobPayload::from_body(&m.body).unwrap())
        .find(|j| j.job == gatehouse::queue::RECORD_EVENT)
        .expect("the event's job");
    let id = gatehouse::tables::events::EventId::parse(job.data["event_id"].as_str().unwrap()).unwrap();
    let mut late = gatehouse::tables::events::Event::new(user.id.clone(), 1, t.env.clock_now(), registered(&user));
    late.id = id;
    let until = t.env.clock_now() + chrono::Duration::days(7);
    t.env.stores.events.append(&late, until).await.unwrap();
    mails(&t).await;
    let stored = t.env.stores.events.after(&user.id, 0, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].redacted, "redacted by the retry: {:?}", stored[0]);
    assert!(!serde_json::to_string(&stored).unwrap().contains(user.email.as_str()));
}
