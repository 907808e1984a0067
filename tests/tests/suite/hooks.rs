//! Blocking hooks (#32, `services::hooks`) over HTTP to a hook server on this machine: before a
//! sign-up (deny with a message for the person, allow), before a sign-in (a session, a token by
//! password), and what a hook that hangs past its timeout or answers garbage means under each
//! policy: never a 500, and nothing made when denied. (Before a token: `suite/oauth.rs`.)

use gatehouse_tests::http::{TestApp, TestCall};
use gatehouse_tests::receiver::{Receiver, Reply};
use serde_json::json;
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery staple 42";

async fn app_with_hook(var: &str, extra: &[(&str, &str)]) -> (TestApp, Receiver) {
    let hook = Receiver::start().await;
    let mut env = vec![(var, hook.url.as_str()), ("GATEHOUSE_HOOK_TIMEOUT_MS", "300")];
    env.extend_from_slice(extra);
    (TestApp::memory(&env), hook)
}

fn unique(name: &str) -> String {
    format!("{name}-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

fn register(email: &str) -> TestCall {
    TestCall::new("POST", "/register").from_ip("203.0.113.9").json(json!({
        "name": "Ann", "email": email, "password": PW, "password_confirmation": PW,
    }))
}

/// Only company addresses: the hook denies with a message the person sees (403
/// `sign_up_denied`), and no account is made; another address is allowed and registers. The
/// hook was told the address, the name, the method and the client.
#[tokio::test]
async fn before_sign_up_denies_with_a_message_and_nothing_is_made() {
    let (t, hook) = app_with_hook("GATEHOUSE_HOOK_BEFORE_SIGN_UP", &[]).await;
    let deny = r#"{"decision":"deny","message":"Only example.org addresses may sign up."}"#;
    hook.reply(&[Reply::Body(deny.into()), Reply::Body(r#"{"decision":"allow"}"#.into())]);
    let email = unique("outsider");
    let r = t.login_fn(register(&email)).await;
    assert_eq!((r.status, r.error_code()), (403, Some("sign_up_denied")), "{}", r.raw_body);
    assert_eq!(r.body["error"]["message"], "Only example.org addresses may sign up.");
    let address = gatehouse::Email::parse(&email).unwrap();
    assert!(t.env.stores.users.find_by_email(&address).await.unwrap().is_none(), "no account");
    let asked = hook.received()[0].json();
    assert_eq!(asked["hook"], "before_sign_up");
    assert_eq!((asked["email"].as_str(), asked["method"].as_str()), (Some(email.as_str()), Some("password")));
    assert_eq!(asked["client"]["ip"], "203.0.113.9");
    let allowed = t.login_fn(register(&unique("insider"))).await;
    assert_eq!(allowed.status, 201, "{}", allowed.raw_body);
}

/// A hook that hangs past its timeout or answers garbage follows the policy: `deny` (the
/// default) refuses with the generic message, within the timeout, never a 500; `allow` lets the
/// sign-up through.
#[tokio::test]
async fn a_hook_that_hangs_or_answers_garbage_follows_its_policy() {
    let broken = [
        Reply::Hang(Duration::from_secs(3)),
        Reply::Body("not json".into()),
        Reply::Body(r#"{"decision":"perhaps"}"#.into()),
        Reply::Status(500),
    ];
    let (t, hook) = app_with_hook("GATEHOUSE_HOOK_BEFORE_SIGN_UP", &[]).await;
    hook.reply(&broken);
    for what in ["a hang", "not JSON", "no decision", "a 500"] {
        let started = Instant::now();
        let r = t.login_fn(register(&unique("denied"))).await;
        assert_eq!((r.status, r.error_code()), (403, Some("sign_up_denied")), "{what}: {}", r.raw_body);
        assert_eq!(r.body["error"]["message"], "Signing up is not possible right now.", "{what}");
        assert!(started.elapsed() < Duration::from_secs(2), "{what}: cut at the hook's timeout");
    }
    let (t, hook) = app_with_hook("GATEHOUSE_HOOK_BEFORE_SIGN_UP", &[("GATEHOUSE_HOOK_ON_FAILURE", "allow")]).await;
    hook.reply(&broken);
    for what in ["a hang", "not JSON", "no decision", "a 500"] {
        let r = t.login_fn(register(&unique("allowed"))).await;
        assert_eq!(r.status, 201, "{what}: {}", r.raw_body);
    }
}

/// A risk decision before sign-in: denied, a right password gets no session (403
/// `sign_in_denied`) and no token through `/tokens/issue` either; allowed, it signs in. The hook
/// was told who and how.
#[tokio::test]
async fn before_sign_in_denies_sessions_and_password_tokens_alike() {
    let (t, hook) = app_with_hook("GATEHOUSE_HOOK_BEFORE_SIGN_IN", &[]).await;
    let email = unique("risky");
    assert_eq!(t.register("Ann", &email, PW).await.status, 201, "registration asks nothing of this hook");
    let deny = r#"{"decision":"deny","message":"Sign-in blocked: unusual location."}"#;
    hook.reply(&[Reply::Body(deny.into()), Reply::Body(deny.into()), Reply::Body(r#"{"decision":"allow"}"#.into())]);
    let r = t.login(&email, PW).await;
    assert_eq!((r.status, r.error_code()), (403, Some("sign_in_denied")), "{}", r.raw_body);
    assert_eq!(r.body["error"]["message"], "Sign-in blocked: unusual location.");
    assert!(r.session_cookie().is_none(), "no session");
    let issue = TestCall::new("POST", "/tokens/issue")
        .json(json!({"email": email, "password": PW, "device_name": "cli", "abilities": ["read"]}));
    let r = t.tokens_fn(issue).await;
    assert_eq!((r.status, r.error_code()), (403, Some("sign_in_denied")), "{}", r.raw_body);
    assert!(r.body.get("token").is_none());
    let asked = hook.received()[0].json();
    assert_eq!((asked["hook"].as_str(), asked["method"].as_str()), (Some("before_sign_in"), Some("password")));
    assert_eq!(asked["user"]["email"], email.as_str());
    let ok = t.login(&email, PW).await;
    assert_eq!(ok.status, 200, "{}", ok.raw_body);
    assert!(ok.session_cookie().is_some());
}

/// A wrong password never reaches the hook (the team's code hears only of real sign-ins).
#[tokio::test]
async fn a_wrong_password_does_not_reach_the_sign_in_hook() {
    let (t, hook) = app_with_hook("GATEHOUSE_HOOK_BEFORE_SIGN_IN", &[]).await;
    let email = unique("guess");
    assert_eq!(t.register("Ann", &email, PW).await.status, 201);
    assert_eq!(t.login(&email, "not the password at all").await.status, 422);
    assert!(hook.received().is_empty());
}

/// A Lambda hook goes through the SDK's `Invoke` (`RequestResponse`, the request as the payload):
/// here against a stand-in for the Lambda API on this machine (moto runs functions only in
/// Docker). Its answer is the function's payload; a function error (`X-Amz-Function-Error`) is
/// a failure, whatever the payload says.
#[tokio::test]
async fn a_lambda_hook_is_invoked_with_the_request_and_a_function_error_is_a_failure() {
    use gatehouse::services::hooks::{HookCaller, HookTarget};
    let lambda = Receiver::start().await;
    let base = lambda.url.trim_end_matches("/hooks").to_owned();
    let sdk = gatehouse_tests::sdk_config_at(&base, false).await;
    let caller = gatehouse_aws::hooks::Hooks::new(Some(&sdk));
    let body = r#"{"decision":"allow","claims":{"tenant":"acme"}}"#;
    let failed = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-amz-function-error: Unhandled\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    lambda.reply(&[Reply::Body(body.into()), Reply::Raw(failed)]);
    let target = HookTarget::Lambda("pre-token".into());
    let request = json!({"hook": "before_token", "version": 1, "client_id": "reports"});
    let answer = caller.call(&target, &request, Duration::from_secs(2)).await.expect("the function's answer");
    assert_eq!(answer["claims"]["tenant"], "acme");
    let invoked = &lambda.received()[0];
    assert_eq!(invoked.path, "/2015-03-31/functions/pre-token/invocations");
    assert_eq!(invoked.json(), request, "the request is the payload");
    let failure = caller.call(&target, &request, Duration::from_secs(2)).await;
    assert!(failure.is_err_and(|e| e.contains("the function failed")), "a function error is a failure");
    let nowhere = gatehouse_aws::hooks::Hooks::new(None);
    assert!(nowhere.call(&target, &request, Duration::from_secs(1)).await.is_err(), "no AWS configuration");
}

/// A sign-in with a second factor asks the hook before the factor is asked for: refused, no
/// challenge is issued and no recovery code is spent; allowed, the challenge's completion asks
/// again (told how the first factor was proved) and signs in.
#[tokio::test]
async fn the_sign_in_hook_decides_before_a_second_factor_is_asked() {
    let (t, hook) = app_with_hook("GATEHOUSE_HOOK_BEFORE_SIGN_IN", &[]).await;
    let email = unique("second");
    let (_, _, codes) = t.enrolled(&email).await;
    assert!(hook.received().is_empty(), "registering and turning two-factor on ask nothing of it");
    let deny = r#"{"decision":"deny"}"#;
    let allow = r#"{"decision":"allow"}"#;
    hook.reply(&[Reply::Body(deny.into()), Reply::Body(allow.into()), Reply::Body(allow.into())]);
    let refused = t.login(&email, PW).await;
    assert_eq!((refused.status, refused.error_code()), (403, Some("sign_in_denied")), "{}", refused.raw_body);
    assert!(refused.body.get("challenge").is_none(), "no challenge issued");
    let challenged = t.login(&email, PW).await;
    assert_eq!(challenged.status, 202, "{}", challenged.raw_body);
    let body = json!({ "challenge": challenged.body["challenge"], "recovery_code": codes[0] });
    let done = t.login_fn(TestCall::new("POST", "/two-factor-challenge").json(body)).await;
    assert_eq!(done.status, 200, "{}", done.raw_body);
    let asked: Vec<String> =
        hook.received().iter().map(|r| r.json()["method"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(asked, ["password", "password", "password"], "before each challenge, and at its completion");
}

/// A cross-app exchange opens a session of the target app: the target's sign-in hook decides
/// (the attacker review's first finding on the hooks).
#[tokio::test]
async fn a_cross_app_exchange_passes_the_target_app_s_sign_in_hook() {
    let hook = Receiver::start().await;
    let env = [
        ("GATEHOUSE_APPS", "billing"),
        ("GATEHOUSE_HOOK_BEFORE_SIGN_IN", hook.url.as_str()),
        ("GATEHOUSE_HOOK_TIMEOUT_MS", "300"),
    ];
    let t = TestApp::memory(&env);
    let cookie = t.registered(&unique("handoff")).await;
    let h = crate::support::handoff(&t, &cookie, "billing").await;
    assert_eq!(h.status, 201, "{}", h.raw_body);
    hook.reply(&[Reply::Body(r#"{"decision":"deny","message":"Not in billing."}"#.into())]);
    let billing = t.sibling(&[("GATEHOUSE_APP_NAME", "billing"), ("GATEHOUSE_HOOK_BEFORE_SIGN_IN", hook.url.as_str())]);
    let exchange = TestCall::new("POST", "/cross-app/exchange").json(json!({"handoff_token": h.body["handoff_token"]}));
    let r = TestApp::tokens_at(&billing, exchange).await;
    assert_eq!((r.status, r.error_code()), (403, Some("sign_in_denied")), "{}", r.raw_body);
    assert!(r.session_cookie().is_none());
    assert_eq!(hook.received()[0].json()["method"], "cross_app");
}
