//! Issue #34: a revocation cut short by a 503 (a store failure, a lost answer, the request's
//! deadline) leaves nothing the user ended alive once its identical retry is answered, and that
//! retry is answered what the first attempt would have been (204), never refused because of the
//! first attempt's own success. On DynamoDB through the fault proxy: each route is interrupted part
//! way by scripted faults (the SDK makes three attempts at a call, so three failures make a call
//! fail), what the retry must still end is checked to be live, then the request is sent again.
//!
//! The cuts: a child's deletion failing (the root is left for the retry to authenticate with),
//! the root gone but its register entry left (its forget failing), and the whole revocation
//! landed with its last answer lost (only the mark of the ended tree is left).

use crate::support::{handoff, unique};
use gatehouse_tests::http::{SESSION_COOKIE, TestApp, TestCall, TestReply};
use gatehouse_tests::wire::{Fault, Faults, faulty_env};
use serde_json::{Value, json};
use std::sync::Arc;

const PW: &str = "correct horse battery staple 42";
const DELETE: &str = "dynamodb:DeleteItem";
/// The revocation's last write: the root's entry forgotten, its tree marked ended and the end's
/// event (#32) numbered on the user, one transaction (the children's entries go in batches before).
const END: &str = "dynamodb:TransactWriteItems";

async fn app() -> (TestApp, Arc<Faults>) {
    let (env, faults, _) = faulty_env(34).await;
    (TestApp::with(env, &[("GATEHOUSE_APPS", "billing")]), faults)
}

/// The next `call` fails all three of the SDK's attempts: the request answers 503.
fn fail(faults: &Faults, call: &str) {
    for _ in 0..3 {
        faults.fail_next(call, Fault::ServerError);
    }
}

/// The next `call` lands but its answer is lost, and the SDK's two retries of it fail: the write
/// happened, the request answers 503.
fn lose_answer(faults: &Faults, call: &str) {
    faults.fail_next(call, Fault::AfterWrite);
    faults.fail_next(call, Fault::ServerError);
    faults.fail_next(call, Fault::ServerError);
}

/// The revocation's last call, the forget of the root's register entry (after its children's),
/// fails on all three of the SDK's attempts: everything else of the revocation happened.
fn fail_the_last_forget(faults: &Faults) {
    fail(faults, END);
}

/// The revocation's last call, the forget of the root's register entry (after its children's),
/// lands and its answer is lost: the whole revocation happened, the request answers 503.
fn lose_the_last_answer(faults: &Faults) {
    lose_answer(faults, END);
}

/// Every scripted fault was injected: none is left over for a later call.
fn all_injected(faults: &Faults, want: usize) {
    let got: usize = faults.injected().values().sum();
    assert_eq!(got, want, "scripted faults injected: {:?}", faults.injected());
}

fn unavailable(r: &TestReply, what: &str) {
    assert_eq!((r.status, r.error_code()), (503, Some("unavailable")), "{what}: {}", r.raw_body);
}

/// The first attempt, cut short by the scripted faults: answered 503 (`what` cut it), and all
/// `injected` faults were.
fn cut_short(r: &TestReply, what: &str, faults: &Faults, injected: usize) {
    unavailable(r, what);
    all_injected(faults, injected);
}

fn cleared(r: &TestReply) -> bool {
    r.set_cookies().iter().any(|c| c.starts_with(&format!("{SESSION_COOKIE}=")) && c.contains("Max-Age=0"))
}

async fn by_cookie(t: &TestApp, cookie: &str) -> u16 {
    t.user(Some(cookie)).await.status
}

/// The session `cookie` and the session derived from it at `billing` are both ended (401).
async fn assert_ended(t: &TestApp, cookie: &str, billing: &gatehouse_http::App, derived: &str) {
    assert_eq!((by_cookie(t, cookie).await, at_billing(billing, derived).await), (401, 401));
}

/// The retry, answered 204 as the first attempt would have been.
fn answered_204(again: TestReply) -> TestReply {
    assert_eq!(again.status, 204, "{}", again.raw_body);
    again
}

async fn by_token(t: &TestApp, token: &str) -> u16 {
    t.login_fn(TestCall::new("GET", "/user").bearer(token)).await.status
}

/// A signed-up user (password confirmed): the address, the session's cookie and the user's id.
async fn user(t: &TestApp, name: &str) -> (String, String, String) {
    let email = unique(name);
    let cookie = t.signed_up(&email).await;
    let id = t.user(Some(&cookie)).await.body["user"]["id"].as_str().expect("an id").to_owned();
    (email, cookie, id)
}

/// A world of [`app`] with a user signed up ([`user`]): the app, its faults, the session's cookie
/// and the user's id, and what `make` made with that session.
struct Scene<T> {
    t: TestApp,
    faults: Arc<Faults>,
    cookie: String,
    id: String,
    made: T,
}

async fn scene<T>(name: &str, make: impl AsyncFnOnce(&TestApp, &str) -> T) -> Scene<T> {
    let (t, faults) = app().await;
    let (_, cookie, id) = user(&t, name).await;
    let made = make(&t, &cookie).await;
    Scene { t, faults, cookie, id, made }
}

/// What the user's register still lists (read consistently).
async fn registered(t: &TestApp, id: &str) -> Vec<gatehouse::tables::credentials::CredentialEntry> {
    let uid = gatehouse::tables::users::UserId::parse(id).expect("a user id");
    t.env.stores.credentials.list(&uid).await.expect("the register")
}

/// No token is left in the user's register: the retry finished the tree.
async fn no_token_registered(t: &TestApp, id: &str) {
    let left = registered(t, id).await;
    assert!(
        left.iter().all(|e| e.credential.kind != gatehouse::tables::credential_ref::CredentialKind::Token),
        "{left:?}"
    );
}

async fn logout(t: &TestApp, cookie: &str) -> TestReply {
    t.login_fn(TestCall::new("POST", "/logout").cookie(Some(cookie))).await
}

/// Past the handoff's life (120 s): its register entry is then only forgotten, and what is left
/// to end of a session's tree is the session the exchange opened, on its own.
fn handoff_expires(t: &TestApp) {
    t.env.clock.advance(chrono::Duration::seconds(121));
}

/// `POST /logout`, cut while ending the cross-app session its handoff opened: the session is
/// left, so the retry authenticates and finishes. (Before #34 the session went in the same batch
/// as its children: a retry was 401 and a child lived on, or the first attempt was not cut.)
#[tokio::test]
async fn a_logout_cut_while_ending_what_its_session_derived_is_finished_by_its_retry() {
    let (t, faults) = app().await;
    let email = unique("logout-child");
    let cookie = t.signed_up(&email).await;
    let (billing, derived, audit_id) = handed_off(&t, &cookie).await;
    handoff_expires(&t);

    fail(&faults, DELETE);
    cut_short(&logout(&t, &cookie).await, "the derived session's deletion failed", &faults, 3);
    assert_eq!(at_billing(&billing, &derived).await, 200, "the child lives: the retry must end it");
    assert_eq!(by_cookie(&t, &cookie).await, 200, "the session is left for the retry");
    assert_eq!(audit(&t, &cookie, &audit_id).await["revoked_at"], Value::Null, "nothing ended yet");

    let again = answered_204(logout(&t, &cookie).await);
    assert!(cleared(&again), "the cookie is cleared: {:?}", again.set_cookies());
    assert_ended(&t, &cookie, &billing, &derived).await;
    let back = t.login(&email, PW).await.session_cookie().expect("signed in again");
    assert_eq!(audit(&t, &back, &audit_id).await["revoked_reason"], "logout");
}

/// `POST /logout`, cut after the session itself went but before its register entry did: the
/// retry's cookie names a session that is gone, of its owner, whose register still holds it.
#[tokio::test]
async fn a_logout_cut_after_its_session_went_is_answered_204_by_its_retry() {
    let Scene { t, faults, cookie, id, made: (billing, derived, _) } = scene("logout-root", handed_off).await;

    fail_the_last_forget(&faults);
    cut_short(&logout(&t, &cookie).await, "the session's entry was not forgotten", &faults, 3);
    assert_eq!(by_cookie(&t, &cookie).await, 401, "the session went (last)");
    assert_eq!(at_billing(&billing, &derived).await, 401, "after its child");
    assert!(!registered(&t, &id).await.is_empty(), "its entry is left");

    let again = logout(&t, &cookie).await;
    assert_eq!(again.status, 204, "the first attempt's answer: {}", again.raw_body);
    assert!(cleared(&again), "the cookie is cleared: {:?}", again.set_cookies());
    let left = registered(&t, &id).await;
    assert!(left.is_empty(), "the retry forgot the session: {left:?}");
    assert_eq!(logout(&t, &cookie).await.status, 204, "and a third time, from the mark of its ended tree");
}

/// `POST /logout` that finished but whose last answer was lost: only the mark of the ended tree
/// is left, and the retry is answered as the first attempt would have been.
#[tokio::test]
async fn a_logout_whose_last_answer_was_lost_is_answered_204_again() {
    let Scene { t, faults, cookie, made: (billing, derived, _), .. } = scene("logout-lost", handed_off).await;

    lose_the_last_answer(&faults);
    cut_short(&logout(&t, &cookie).await, "the last answer was lost", &faults, 3);
    assert_ended(&t, &cookie, &billing, &derived).await;

    let again = answered_204(logout(&t, &cookie).await);
    assert!(cleared(&again), "the cookie is cleared: {:?}", again.set_cookies());
}

/// The handle `GET /sessions` lists for the caller's other (non-current) session.
async fn other_handle(t: &TestApp, cookie: &str) -> String {
    let list = t.login_fn(TestCall::new("GET", "/sessions").cookie(Some(cookie))).await;
    assert_eq!(list.status, 200, "{}", list.raw_body);
    let sessions = list.body["sessions"].as_array().cloned().unwrap_or_default();
    let other = sessions.iter().find(|s| s["current"] == Value::Bool(false)).expect("the other session");
    other["id"].as_str().expect("a handle").to_owned()
}

async fn current_handle(t: &TestApp, cookie: &str) -> String {
    let list = t.login_fn(TestCall::new("GET", "/sessions").cookie(Some(cookie))).await;
    let sessions = list.body["sessions"].as_array().cloned().unwrap_or_default();
    let me = sessions.iter().find(|s| s["current"] == Value::Bool(true)).expect("the current session");
    me["id"].as_str().expect("a handle").to_owned()
}

async fn end_session(t: &TestApp, cookie: &str, handle: &str) -> TestReply {
    t.login_fn(TestCall::new("DELETE", &format!("/sessions/{handle}")).cookie(Some(cookie))).await
}

/// A world of [`app`] with a user signed in twice: the session making requests, the other one,
/// and the handle the first sees of the other (listed now, before any handoff, when the other
/// session is the only other one listed).
async fn app_with_two_sessions(name: &str) -> (TestApp, Arc<Faults>, String, String, String) {
    let (t, faults) = app().await;
    let email = unique(name);
    let here = t.signed_up(&email).await;
    let there = t.login(&email, PW).await.session_cookie().expect("a second session");
    let confirm = TestCall::new("POST", "/user/confirm-password").cookie(Some(&there)).json(json!({"password": PW}));
    assert_eq!(t.login_fn(confirm).await.status, 204);
    let handle = other_handle(&t, &here).await;
    (t, faults, here, there, handle)
}

/// `DELETE /sessions/{id}` of another session, cut while ending the cross-app session it
/// derived: the session is left, found again through the register, and the retry ends both.
#[tokio::test]
async fn ending_a_session_cut_while_ending_what_it_derived_is_finished_by_its_retry() {
    let (t, faults, here, there, handle) = app_with_two_sessions("end-child").await;
    let (billing, derived, _) = handed_off(&t, &there).await;
    handoff_expires(&t);

    fail(&faults, DELETE);
    cut_short(&end_session(&t, &here, &handle).await, "the derived session's deletion failed", &faults, 3);
    assert_eq!(at_billing(&billing, &derived).await, 200, "the child lives: the retry must end it");
    assert_eq!(by_cookie(&t, &there).await, 200, "the session is left for the retry");

    answered_204(end_session(&t, &here, &handle).await);
    assert_ended(&t, &there, &billing, &derived).await;
    assert_eq!(by_cookie(&t, &here).await, 200, "the caller's own session stays");
}

/// `DELETE /sessions/{id}` that finished but whose last answer was lost: found again by the mark
/// of its ended tree (before #34: 404, the index no longer listing it).
#[tokio::test]
async fn ending_a_session_whose_last_answer_was_lost_is_answered_204_again() {
    let (t, faults, here, there, handle) = app_with_two_sessions("end-lost").await;
    let (billing, derived, _) = handed_off(&t, &there).await;

    lose_the_last_answer(&faults);
    cut_short(&end_session(&t, &here, &handle).await, "the last answer was lost", &faults, 3);
    assert_ended(&t, &there, &billing, &derived).await;

    let again = answered_204(end_session(&t, &here, &handle).await);
    assert!(!cleared(&again), "another session ended: this one's cookie stays");
    assert_eq!(by_cookie(&t, &here).await, 200);
}

/// `DELETE /sessions/{id}` of the current session, whose last answer was lost: the retry's cookie
/// names a session that is gone, its handle that session's; answered 204 with the cookie cleared.
#[tokio::test]
async fn ending_the_current_session_whose_last_answer_was_lost_is_answered_204_again() {
    let Scene { t, faults, cookie, made: (billing, derived, _), .. } = scene("end-self", handed_off).await;
    let handle = current_handle(&t, &cookie).await;

    lose_the_last_answer(&faults);
    cut_short(&end_session(&t, &cookie, &handle).await, "the last answer was lost", &faults, 3);
    assert_ended(&t, &cookie, &billing, &derived).await;

    let again = answered_204(end_session(&t, &cookie, &handle).await);
    assert!(cleared(&again), "the cookie is cleared: {:?}", again.set_cookies());
    let wrong = end_session(&t, &cookie, "not-its-handle").await;
    assert_eq!(wrong.status, 401, "a gone session's cookie ends nothing but its own: {}", wrong.raw_body);
}

/// A token that can mint, and a child it minted.
async fn token_with_child(t: &TestApp, cookie: &str) -> (String, String, String) {
    let body = json!({"name": "root", "abilities": ["tokens:create", "read"], "expires_in_minutes": 60});
    let root = t.create_token(cookie, body).await;
    assert_eq!(root.status, 201, "{}", root.raw_body);
    let (id, secret) = (root.body["id"].as_str().unwrap().to_owned(), root.body["token"].as_str().unwrap().to_owned());
    let body = json!({"name": "child", "abilities": ["read"], "expires_in_minutes": 30});
    let child = t.tokens_fn(TestCall::new("POST", "/tokens").bearer(&secret).json(body)).await;
    assert_eq!(child.status, 201, "{}", child.raw_body);
    (id, secret, child.body["token"].as_str().unwrap().to_owned())
}

async fn revoke_token(t: &TestApp, cookie: &str, id: &str) -> TestReply {
    t.tokens_fn(TestCall::new("DELETE", &format!("/tokens/{id}")).cookie(Some(cookie))).await
}

/// `DELETE /tokens/{id}`, cut twice: at the register's read, then while ending the child. The
/// token is left each time; the third attempt ends both. (Before #34 the token went first: the
/// child lived on and the retry was 404.)
#[tokio::test]
async fn revoking_a_token_cut_part_way_twice_is_finished_by_its_retry() {
    let Scene { t, faults, cookie, id, made: (root, secret, child) } = scene("token-child", token_with_child).await;

    fail(&faults, "dynamodb:Query");
    unavailable(&revoke_token(&t, &cookie, &root).await, "the register could not be read");
    assert_eq!(by_token(&t, &child).await, 200, "the child lives: the retry must end it");
    fail(&faults, DELETE);
    cut_short(&revoke_token(&t, &cookie, &root).await, "the child's deletion failed", &faults, 6);
    assert_eq!(by_token(&t, &child).await, 200, "the child lives: the retry must end it");
    assert_eq!(by_token(&t, &secret).await, 200, "the token is left for last");

    answered_204(revoke_token(&t, &cookie, &root).await);
    assert_eq!((by_token(&t, &secret).await, by_token(&t, &child).await), (401, 401));
    no_token_registered(&t, &id).await;
}

/// `DELETE /tokens/{id}`, cut after the token itself went but before its entry did: the retry
/// finds the entry and answers 204.
#[tokio::test]
async fn revoking_a_token_cut_after_it_went_is_answered_204_by_its_retry() {
    let Scene { t, faults, cookie, id, made: (root, secret, child) } = scene("token-root", token_with_child).await;

    fail_the_last_forget(&faults);
    cut_short(&revoke_token(&t, &cookie, &root).await, "the token's entry was not forgotten", &faults, 3);
    assert_eq!((by_token(&t, &secret).await, by_token(&t, &child).await), (401, 401));

    answered_204(revoke_token(&t, &cookie, &root).await);
    no_token_registered(&t, &id).await;
}

/// `DELETE /tokens/{id}` that finished but whose last answer was lost: 204 again.
#[tokio::test]
async fn revoking_a_token_whose_last_answer_was_lost_is_answered_204_again() {
    let Scene { t, faults, cookie, made: (root, secret, child), .. } = scene("token-lost", token_with_child).await;

    lose_the_last_answer(&faults);
    cut_short(&revoke_token(&t, &cookie, &root).await, "the last answer was lost", &faults, 3);
    assert_eq!((by_token(&t, &secret).await, by_token(&t, &child).await), (401, 401));

    answered_204(revoke_token(&t, &cookie, &root).await);
}

/// A session handed off to billing and exchanged there: its cookie (billing's) and audit id.
async fn handed_off(t: &TestApp, cookie: &str) -> (gatehouse_http::App, String, String) {
    let h = handoff(t, cookie, "billing").await;
    assert_eq!(h.status, 201, "{}", h.raw_body);
    let billing = t.sibling(&[("GATEHOUSE_APP_NAME", "billing")]);
    let exchange = TestCall::new("POST", "/cross-app/exchange").json(json!({"handoff_token": h.body["handoff_token"]}));
    let done = TestApp::tokens_at(&billing, exchange).await;
    assert_eq!(done.status, 200, "{}", done.raw_body);
    let derived = done.session_cookie().expect("a billing session");
    (billing, derived, done.body["cross_app_session_id"].as_str().expect("an audit id").to_owned())
}

/// The audit record `id` as `GET /cross-app/sessions` shows it.
async fn audit(t: &TestApp, cookie: &str, id: &str) -> Value {
    let list = t.tokens_fn(TestCall::new("GET", "/cross-app/sessions").cookie(Some(cookie))).await;
    assert_eq!(list.status, 200, "{}", list.raw_body);
    let records = list.body["sessions"].as_array().cloned().unwrap_or_default();
    records.into_iter().find(|r| r["id"] == Value::String(id.to_owned())).expect("the record")
}

async fn revoke_cross_app(t: &TestApp, cookie: &str, id: &str) -> TestReply {
    t.tokens_fn(TestCall::new("DELETE", &format!("/cross-app/sessions/{id}")).cookie(Some(cookie))).await
}

async fn at_billing(billing: &gatehouse_http::App, cookie: &str) -> u16 {
    TestApp::login_at(billing, TestCall::new("GET", "/user").cookie(Some(cookie))).await.status
}

/// `DELETE /cross-app/sessions/{id}`, cut while ending the session: the record is not marked yet
/// and the session is left; the retry ends it and marks the record. (Before #34 the record was
/// marked first: the retry was 404 while the session lived on.)
#[tokio::test]
async fn revoking_a_cross_app_session_cut_before_it_ended_is_finished_by_its_retry() {
    let Scene { t, faults, cookie, made: (billing, derived, id), .. } = scene("cross-child", handed_off).await;

    fail(&faults, DELETE);
    cut_short(&revoke_cross_app(&t, &cookie, &id).await, "the session's deletion failed", &faults, 3);
    assert_eq!(at_billing(&billing, &derived).await, 200, "the session lives: the retry must end it");
    assert_eq!(audit(&t, &cookie, &id).await["revoked_at"], Value::Null, "the record is marked last");

    answered_204(revoke_cross_app(&t, &cookie, &id).await);
    assert_eq!(at_billing(&billing, &derived).await, 401);
    let record = audit(&t, &cookie, &id).await;
    assert_eq!(record["revoked_reason"], "revoked_by_user", "{record}");
    assert_eq!(revoke_cross_app(&t, &cookie, &id).await.status, 204, "an ended record of the user's");
}

/// `DELETE /cross-app/sessions/{id}` that finished but whose last answer was lost: the record,
/// the user's as the register says, is ended already: 204 again.
#[tokio::test]
async fn revoking_a_cross_app_session_whose_last_answer_was_lost_is_answered_204_again() {
    let Scene { t, faults, cookie, made: (billing, derived, id), .. } = scene("cross-lost", handed_off).await;

    lose_answer(&faults, END);
    cut_short(&revoke_cross_app(&t, &cookie, &id).await, "the last answer was lost", &faults, 3);
    assert_eq!(at_billing(&billing, &derived).await, 401);

    answered_204(revoke_cross_app(&t, &cookie, &id).await);
    assert_eq!(audit(&t, &cookie, &id).await["revoked_reason"], "revoked_by_user");
}

/// Another user's ids (live, or ended lately with their mark left) are 404 to the caller, and
/// nothing of theirs ends; a forged cookie naming their id logs nothing out.
#[tokio::test]
async fn another_users_ids_stay_404_and_nothing_of_theirs_ends() {
    let (t, _) = app().await;
    let (email, ann, ann_id) = user(&t, "ann").await;
    let ann_there = t.login(&email, PW).await.session_cookie().expect("a second session");
    let handle = other_handle(&t, &ann).await;
    let (_, bob, _) = user(&t, "bob").await;
    let (root, secret, child) = token_with_child(&t, &ann).await;
    let (_, derived, audit_id) = handed_off(&t, &ann).await;
    let billing = t.sibling(&[("GATEHOUSE_APP_NAME", "billing")]);

    assert_eq!(revoke_token(&t, &bob, &root).await.status, 404);
    assert_eq!(end_session(&t, &bob, &handle).await.status, 404);
    assert_eq!(revoke_cross_app(&t, &bob, &audit_id).await.status, 404);
    assert_eq!((by_token(&t, &secret).await, by_token(&t, &child).await), (200, 200), "Ann's tokens live");
    assert_eq!(by_cookie(&t, &ann_there).await, 200, "Ann's session lives");
    assert_eq!(at_billing(&billing, &derived).await, 200, "Ann's cross-app session lives");

    // Ann ends them herself; Bob's requests for the same ids are still 404.
    assert_eq!(revoke_token(&t, &ann, &root).await.status, 204);
    assert_eq!(end_session(&t, &ann, &handle).await.status, 204);
    assert_eq!(revoke_cross_app(&t, &ann, &audit_id).await.status, 204);
    assert_eq!(revoke_token(&t, &bob, &root).await.status, 404);
    assert_eq!(end_session(&t, &bob, &handle).await.status, 404);
    assert_eq!(revoke_cross_app(&t, &bob, &audit_id).await.status, 404);

    // A cookie with a made-up secret naming Ann: no session, no entry, no mark of hers.
    let forged = format!("{SESSION_COOKIE}={}.{ann_id}", gatehouse::values::secret::random_token_256());
    assert_eq!(logout(&t, &forged).await.status, 401);
    assert_eq!(by_cookie(&t, &ann).await, 200, "Ann's session lives");
    assert_eq!(by_cookie(&t, &bob).await, 200, "and Bob's");
}

/// The marks of ended trees name their user: deleting the account removes them with everything
/// else of the register.
#[tokio::test]
async fn a_deleted_account_leaves_no_mark_of_its_ended_trees() {
    let (t, _) = app().await;
    let (email, cookie, id) = user(&t, "marked").await;
    let other = t.login(&email, PW).await.session_cookie().expect("a second session");
    let (root, _, _) = token_with_child(&t, &cookie).await;
    assert_eq!(revoke_token(&t, &cookie, &root).await.status, 204);
    assert_eq!(logout(&t, &other).await.status, 204);
    let marks = || async {
        let items = gatehouse_tests::scan_items(&t.env, Some("credentials")).await;
        items.into_iter().filter(|i| i.contains(&id) && i.contains("ended#")).count()
    };
    assert_eq!(marks().await, 2, "a mark of each ended tree");

    let deleted = t.login_fn(TestCall::new("DELETE", "/user").cookie(Some(&cookie))).await;
    assert_eq!(deleted.status, 204, "{}", deleted.raw_body);
    assert_eq!(marks().await, 0, "no mark names the deleted user");
}
