//! What the code calls is what IAM grants (#32's review found the template behind the code: a
//! function granted what its `PERMISSIONS` list says, and the list behind what the code now
//! did). Each function's routes are driven on the emulator through the wire counter, which reads
//! off every call what IAM judges (`wire::iam_needs`: each item of a transaction or a batch as
//! its own action on its own table), and every need must be in that function's `PERMISSIONS`
//! (which `template.rs` holds the template to).

use crate::support::handoff;
use gatehouse_tests::http::{TestApp, TestCall, TestReply};
use gatehouse_tests::wire::{WireCounter, counted_env};
use serde_json::json;
use std::collections::BTreeSet;

const PW: &str = "correct horse battery staple 42";
type Permissions = &'static [(&'static str, &'static [&'static str])];

/// The needs of the calls since the last look that `permissions` does not grant. (`GetQueueUrl`
/// is the tests' own: a deployment hands the functions the queue's URL, `GATEHOUSE_JOBS_QUEUE_URL`.)
fn ungranted(wire: &WireCounter, function: &str, what: &str, permissions: Permissions) -> Vec<String> {
    wire.take_needs()
        .into_iter()
        .filter(|(_, action)| action != "sqs:GetQueueUrl")
        .filter(|(resource, action)| {
            !permissions.iter().any(|(r, actions)| r == resource && actions.contains(&action.as_str()))
        })
        .map(|(resource, action)| format!("{function}: {what} calls {action} on {resource}, not granted"))
        .collect()
}

#[tokio::test]
async fn every_call_the_functions_make_is_granted_to_them() {
    let (env, wire) = counted_env().await;
    let t = TestApp::with(env, &[("GATEHOUSE_APPS", "billing")]);
    let mut problems = Vec::new();
    let ok = |r: TestReply, what: &str| assert!(r.status < 300, "{what}: {} {}", r.status, r.raw_body);
    let login = gatehouse_login::PERMISSIONS;
    let tokens = gatehouse_tokens::PERMISSIONS;
    let reset = gatehouse_password_reset::PERMISSIONS;
    let email = crate::support::unique("iam");
    let reg = t.register("Ann", &email, PW).await;
    let cookie = reg.session_cookie().expect("a session");
    ok(reg, "register");
    problems.extend(ungranted(&wire, "login", "register", login));
    let confirm =
        || TestCall::new("POST", "/user/confirm-password").cookie(Some(&cookie)).json(json!({ "password": PW }));
    ok(t.login_fn(confirm()).await, "confirm");
    let second = t.login(&email, PW).await;
    let other = second.session_cookie().expect("a second session");
    ok(second, "login");
    let _ = t.login(&email, "not the password at all").await;
    ok(t.user(Some(&cookie)).await, "GET /user");
    let list = t.login_fn(TestCall::new("GET", "/sessions").cookie(Some(&cookie))).await;
    let handles: BTreeSet<String> = list.body["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["current"] == false)
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    problems.extend(ungranted(&wire, "login", "sign-ins and lists", login));
    for h in &handles {
        ok(t.login_fn(TestCall::new("DELETE", &format!("/sessions/{h}")).cookie(Some(&cookie))).await, "end a session");
    }
    problems.extend(ungranted(&wire, "login", "DELETE /sessions/{id}", login));
    assert_eq!(t.user(Some(&other)).await.status, 401);

    let made = t.create_token(&cookie, json!({ "name": "ci", "abilities": ["tokens:read"] })).await;
    let id = made.body["id"].as_str().expect("a token").to_owned();
    ok(made, "POST /tokens");
    ok(t.tokens_fn(TestCall::new("GET", "/tokens").cookie(Some(&cookie))).await, "GET /tokens");
    ok(t.tokens_fn(TestCall::new("DELETE", &format!("/tokens/{id}")).cookie(Some(&cookie))).await, "revoke");
    let issued = TestCall::new("POST", "/tokens/issue")
        .json(json!({ "email": email, "password": PW, "token_name": "cli", "abilities": ["tokens:read"] }));
    let issued = t.tokens_fn(issued).await;
    assert!(issued.status < 300 || issued.status == 422, "{}", issued.raw_body);
    ok(handoff(&t, &cookie, "billing").await, "handoff");
    problems.extend(ungranted(&wire, "tokens", "tokens and a handoff", tokens));

    ok(t.login_fn(confirm()).await, "confirm again");
    let body = json!({ "current_password": PW, "password": "a brand new passphrase 2027", "password_confirmation": "a brand new passphrase 2027" });
    let changed = t.login_fn(TestCall::new("PUT", "/user/password").cookie(Some(&cookie)).json(body)).await;
    let cookie = changed.session_cookie().unwrap_or(cookie);
    ok(changed, "PUT /user/password");
    ok(t.login_fn(TestCall::new("POST", "/logout").cookie(Some(&cookie))).await, "logout");
    problems.extend(ungranted(&wire, "login", "a password change and a logout", login));

    ok(t.reset_fn(TestCall::new("POST", "/forgot-password").json(json!({ "email": email }))).await, "forgot");
    problems.extend(ungranted(&wire, "password-reset", "forgot-password", reset));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The rule catches what it is for: a function's list without the credentials table's
/// `DeleteItem`, against the calls of a logout.
#[tokio::test]
async fn a_call_the_list_does_not_grant_is_caught() {
    let (env, wire) = counted_env().await;
    let t = TestApp::with(env, &[]);
    let cookie = t.signed_up(&crate::support::unique("iamcaught")).await;
    wire.take_needs();
    assert!(t.login_fn(TestCall::new("POST", "/logout").cookie(Some(&cookie))).await.status < 300);
    let narrowed: Vec<(&'static str, &'static [&'static str])> = gatehouse_login::PERMISSIONS
        .iter()
        .map(|(r, a)| {
            if *r == "table/credentials" {
                (*r, &["dynamodb:PutItem", "dynamodb:Query", "dynamodb:BatchWriteItem"][..])
            } else {
                (*r, *a)
            }
        })
        .collect();
    let narrowed: Permissions = Box::leak(narrowed.into_boxed_slice());
    let problems = ungranted(&wire, "login", "logout", narrowed);
    assert!(problems.iter().any(|p| p.contains("dynamodb:DeleteItem on table/credentials")), "{problems:?}");
}
