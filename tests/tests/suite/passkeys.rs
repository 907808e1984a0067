//! Passkeys over real-shaped events, stores on the emulator: a software authenticator
//! (`gatehouse_tests::passkey`) registers from a session with a recent password confirmation,
//! signs in alone, and answers a two-factor challenge; replays, phishing origins, foreign
//! ceremonies, cloned authenticators, another account's passkey and bad input are refused.

use crate::support::unique;
use gatehouse_tests::http::{TestApp, TestCall, TestReply};
use gatehouse_tests::passkey::SoftAuthenticator;
use serde_json::{Value, json};

const PW: &str = "correct horse battery staple 42";
const ORIGIN: &str = "http://localhost:8080";

/// On the emulator, a user signed up at `unique(name)` (its address and session's cookie), and an
/// authenticator of the site's, not registered yet.
async fn signed_up_with_an_authenticator(name: &str) -> (TestApp, String, String, SoftAuthenticator) {
    let t = TestApp::aws(&[]).await;
    let email = unique(name);
    let cookie = t.signed_up(&email).await;
    (t, email, cookie, SoftAuthenticator::new("localhost", ORIGIN))
}

/// Past the password-confirmation window (3 hours), the session kept alive (2 idle hours).
async fn past_the_confirmation(t: &TestApp, cookie: &str) {
    for _ in 0..2 {
        t.env.clock.advance(chrono::Duration::minutes(100));
        assert_eq!(t.user(Some(cookie)).await.status, 200);
    }
}

async fn options(t: &TestApp, path: &str, cookie: Option<&str>) -> TestReply {
    t.login_fn(TestCall::new("POST", path).cookie(cookie).json(json!({}))).await
}

/// Registers `key` as a passkey of the session `cookie` (whose password is confirmed).
async fn add(t: &TestApp, cookie: &str, key: &mut SoftAuthenticator, name: &str) -> TestReply {
    let o = options(t, "/user/passkeys/options", Some(cookie)).await;
    assert_eq!(o.status, 200, "{}", o.raw_body);
    let credential = key.register(&o.body["publicKey"]);
    let body = json!({ "name": name, "credential": credential });
    t.login_fn(TestCall::new("POST", "/user/passkeys").cookie(Some(cookie)).json(body)).await
}

/// A fresh ceremony from `ip`, answered by `key`: the assertion.
async fn assertion(t: &TestApp, key: &mut SoftAuthenticator, ip: &str) -> Value {
    let o = t.login_fn(TestCall::new("POST", "/passkeys/options").from_ip(ip).json(json!({}))).await;
    assert_eq!(o.status, 200, "{}", o.raw_body);
    key.assert(&o.body["publicKey"])
}

async fn sign_in(t: &TestApp, credential: &Value, ip: &str) -> TestReply {
    t.login_fn(TestCall::new("POST", "/passkeys/login").from_ip(ip).json(json!({ "credential": credential }))).await
}

#[tokio::test]
async fn a_passkey_added_after_a_password_confirmation_signs_in_alone_and_only_once_per_ceremony() {
    let (t, email, cookie, mut key) = signed_up_with_an_authenticator("pk").await;

    // Adding a way in needs a recent password confirmation.
    past_the_confirmation(&t, &cookie).await;
    let stale = options(&t, "/user/passkeys/options", Some(&cookie)).await;
    assert_eq!((stale.status, stale.error_code()), (423, Some("password_confirmation_required")));
    let confirm = TestCall::new("POST", "/user/confirm-password").cookie(Some(&cookie)).json(json!({ "password": PW }));
    assert_eq!(t.login_fn(confirm).await.status, 204);

    let o = options(&t, "/user/passkeys/options", Some(&cookie)).await;
    assert_eq!(o.status, 200, "{}", o.raw_body);
    let opts = &o.body["publicKey"];
    assert_eq!(opts["rp"]["id"], "localhost");
    assert_eq!(opts["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(opts["authenticatorSelection"]["residentKey"], "required");
    let credential = key.register(opts);
    // The user handle is the user id's 16 bytes: no name, no address.
    let me = t.user(Some(&cookie)).await;
    let id = uuid::Uuid::parse_str(me.body["user"]["id"].as_str().unwrap()).unwrap();
    assert_eq!(key.user_handle().unwrap(), id.as_bytes().to_vec());
    let body = json!({ "name": "Laptop", "credential": credential });
    let added = t.login_fn(TestCall::new("POST", "/user/passkeys").cookie(Some(&cookie)).json(body.clone())).await;
    assert_eq!(added.status, 201, "{}", added.raw_body);
    assert_eq!(added.body["id"], key.credential_id());
    assert_eq!(added.body["name"], "Laptop");
    // The same answer again: its ceremony was taken.
    let again = t.login_fn(TestCall::new("POST", "/user/passkeys").cookie(Some(&cookie)).json(body)).await;
    assert_eq!((again.status, again.error_code()), (422, Some("invalid_ceremony")), "{}", again.raw_body);
    let listed = t.login_fn(TestCall::new("GET", "/user/passkeys").cookie(Some(&cookie))).await;
    assert_eq!(listed.body["passkeys"].as_array().unwrap().len(), 1);
    assert!(!listed.raw_body.contains("public"), "no public key is shown: {}", listed.raw_body);
    assert_eq!(t.user(Some(&cookie)).await.body["user"]["passkeys"], 1);

    // Signing in with the passkey alone.
    let a = assertion(&t, &mut key, "203.0.113.5").await;
    let signed = sign_in(&t, &a, "203.0.113.5").await;
    assert_eq!(signed.status, 200, "{}", signed.raw_body);
    assert_eq!(signed.body["user"]["email"], email);
    let session = signed.session_cookie().expect("a session");
    assert_eq!(t.user(Some(&session)).await.status, 200);
    // Replayed: the ceremony is gone.
    let replay = sign_in(&t, &a, "203.0.113.5").await;
    assert_eq!((replay.status, replay.error_code()), (422, Some("invalid_ceremony")));
    // A ceremony another client began.
    let elsewhere = assertion(&t, &mut key, "203.0.113.6").await;
    let foreign = sign_in(&t, &elsewhere, "203.0.113.5").await;
    assert_eq!((foreign.status, foreign.error_code()), (422, Some("invalid_ceremony")));
    // A phishing page relaying a real ceremony: its origin is not ours.
    let mut phished = SoftAuthenticator::new("localhost", ORIGIN);
    std::mem::swap(&mut phished, &mut key);
    let mut phished = phished.from_origin("https://gatehouse.example.net");
    let relayed = assertion(&t, &mut phished, "203.0.113.5").await;
    let refused = sign_in(&t, &relayed, "203.0.113.5").await;
    assert_eq!((refused.status, refused.error_code()), (422, Some("passkey_rejected")), "{}", refused.raw_body);
    let mut key = phished.from_origin(ORIGIN);

    // Removing it needs the confirmation too; then it signs in no more.
    let id = key.credential_id();
    past_the_confirmation(&t, &cookie).await;
    let del = t.login_fn(TestCall::new("DELETE", &format!("/user/passkeys/{id}")).cookie(Some(&cookie))).await;
    assert_eq!(del.status, 423);
    let confirm = TestCall::new("POST", "/user/confirm-password").cookie(Some(&cookie)).json(json!({ "password": PW }));
    assert_eq!(t.login_fn(confirm).await.status, 204);
    let del = t.login_fn(TestCall::new("DELETE", &format!("/user/passkeys/{id}")).cookie(Some(&cookie))).await;
    assert_eq!(del.status, 204, "{}", del.raw_body);
    // Asked again (its answer lost, say), or for an id never there: done, nothing more happens.
    for path in [format!("/user/passkeys/{id}"), "/user/passkeys/bm9uZQ".to_owned()] {
        let again = t.login_fn(TestCall::new("DELETE", &path).cookie(Some(&cookie))).await;
        assert_eq!(again.status, 204, "{}", again.raw_body);
    }
    let a = assertion(&t, &mut key, "203.0.113.5").await;
    let gone = sign_in(&t, &a, "203.0.113.5").await;
    assert_eq!((gone.status, gone.error_code()), (422, Some("passkey_rejected")));
}

/// Two copies of one authenticator (a cloned key) answering with the same counter at once: one
/// signs in, the other is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_uses_of_one_authenticator_state_at_once_sign_in_once() {
    let t = std::sync::Arc::new(TestApp::aws(&[]).await);
    let cookie = t.signed_up(&unique("clone")).await;
    let mut key = SoftAuthenticator::new("localhost", ORIGIN);
    assert_eq!(add(&t, &cookie, &mut key, "Phone").await.status, 201);
    let first = assertion(&t, &mut key.clone_state(), "203.0.113.7").await;
    let second = assertion(&t, &mut key.clone_state(), "203.0.113.7").await;
    let runs: Vec<_> = [first, second]
        .into_iter()
        .map(|a| {
            let t = t.clone();
            tokio::spawn(async move { sign_in(&t, &a, "203.0.113.7").await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for r in runs {
        statuses.push(r.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, vec![200, 422], "one use of one state signs in");
}

#[tokio::test]
async fn a_passkey_answers_a_two_factor_challenge_only_for_its_own_account() {
    let t = TestApp::aws(&[]).await;
    let (ann, bob) = (unique("ann"), unique("bob"));
    let ann_cookie = t.signed_up(&ann).await;
    let bob_cookie = t.signed_up(&bob).await;
    let (mut ann_key, mut bob_key) =
        (SoftAuthenticator::new("localhost", ORIGIN), SoftAuthenticator::new("localhost", ORIGIN));
    assert_eq!(add(&t, &ann_cookie, &mut ann_key, "Ann's").await.status, 201);
    assert_eq!(add(&t, &bob_cookie, &mut bob_key, "Bob's").await.status, 201);
    // Ann turns TOTP on: a password alone now gets a challenge.
    let e = t.login_fn(TestCall::new("POST", "/user/two-factor-authentication").cookie(Some(&ann_cookie))).await;
    let secret = e.body["secret"].as_str().unwrap().to_owned();
    let now = u64::try_from(t.env.clock_now().timestamp()).unwrap();
    let code = gatehouse::services::two_factor::code_for(&secret, now).unwrap();
    let c = TestCall::new("POST", "/user/confirmed-two-factor-authentication").cookie(Some(&ann_cookie));
    assert_eq!(t.login_fn(c.json(json!({ "code": code }))).await.status, 200);
    let ip = "198.51.100.20";
    let password =
        t.login_fn(TestCall::new("POST", "/login").from_ip(ip).json(json!({ "email": ann, "password": PW }))).await;
    assert_eq!(password.status, 202, "{}", password.raw_body);
    let challenge = password.body["challenge"].clone();
    let answer = |passkey: Value| {
        TestCall::new("POST", "/two-factor-challenge")
            .from_ip(ip)
            .json(json!({ "challenge": challenge, "passkey": passkey }))
    };
    // Bob's passkey is not Ann's second factor.
    let bobs = assertion(&t, &mut bob_key, ip).await;
    let refused = t.login_fn(answer(bobs)).await;
    assert_eq!(refused.status, 422, "{}", refused.raw_body);
    assert!(refused.body["error"]["fields"]["passkey"].is_array(), "{}", refused.raw_body);
    // Ann's is.
    let anns = assertion(&t, &mut ann_key, ip).await;
    let passed = t.login_fn(answer(anns)).await;
    assert_eq!(passed.status, 200, "{}", passed.raw_body);
    assert!(passed.session_cookie().is_some());
    // Both at once, or none, is a field error.
    let both = TestCall::new("POST", "/two-factor-challenge")
        .from_ip(ip)
        .json(json!({ "challenge": challenge, "code": "123456", "passkey": {} }));
    assert_eq!(t.login_fn(both).await.status, 422);
}

#[tokio::test]
async fn malformed_passkey_input_is_a_4xx_that_names_its_field() {
    let t = TestApp::memory(&[]);
    let cookie = t.signed_up(&unique("bad")).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "name": "x" }), "credential"),
        (json!({ "name": "x", "credential": "not an object" }), "credential"),
        (json!({ "name": "x", "credential": { "id": "AAAA", "type": "public-key" } }), "credential"),
        (json!({ "name": "x", "credential": { "id": 5, "response": [] } }), "credential"),
        (json!({ "name": "", "credential": {} }), "name"),
        (json!({ "name": "x".repeat(65), "credential": {} }), "name"),
        (json!({ "name": "x", "credential": { "big": "y".repeat(20_000) } }), "credential"),
    ];
    for (body, field) in cases {
        let r = t.login_fn(TestCall::new("POST", "/user/passkeys").cookie(Some(&cookie)).json(body.clone())).await;
        assert_eq!(r.status, 422, "{body}: {}", r.raw_body);
        assert!(r.body["error"]["fields"][field].is_array(), "{body}: {}", r.raw_body);
    }
    for body in [json!({}), json!({ "credential": [] }), json!({ "credential": { "rawId": "!!" } })] {
        let r = t.login_fn(TestCall::new("POST", "/passkeys/login").json(body.clone())).await;
        assert_eq!(r.status, 422, "{body}: {}", r.raw_body);
        assert!(r.body["error"]["fields"]["credential"].is_array(), "{body}: {}", r.raw_body);
    }
    // A well-formed answer to a ceremony that never was.
    let mut key = SoftAuthenticator::new("localhost", ORIGIN);
    let user = json!({ "id": "AAAAAAAAAAAAAAAAAAAAAA" });
    key.register(&json!({ "challenge": "AAAAAAAAAAAAAAAAAAAAAA", "user": user }));
    let made_up = key.assert(&json!({ "challenge": "AAAAAAAAAAAAAAAAAAAAAA" }));
    let r = t.login_fn(TestCall::new("POST", "/passkeys/login").json(json!({ "credential": made_up }))).await;
    assert_eq!((r.status, r.error_code()), (422, Some("invalid_ceremony")), "{}", r.raw_body);
    // Without a session: 401, never a 5xx.
    let r = t.login_fn(TestCall::new("POST", "/user/passkeys/options").json(json!({}))).await;
    assert_eq!(r.status, 401);
}

/// What the attack review of the passkeys found: a session a passkey opened is no password
/// confirmation (it cannot add a passkey or turn anything off without the password); a password
/// reset, how an owner takes an account back, removes every passkey (an intruder's too); and
/// another site cannot spend a client's sign-in ceremonies.
#[tokio::test]
async fn a_passkey_session_confirms_no_password_and_a_reset_removes_every_passkey() {
    use gatehouse::mail::LogMailer;
    let (t, email, cookie, mut intruder) = signed_up_with_an_authenticator("taken").await;
    assert_eq!(add(&t, &cookie, &mut intruder, "Not mine").await.status, 201);

    let a = assertion(&t, &mut intruder, "203.0.113.9").await;
    let signed = sign_in(&t, &a, "203.0.113.9").await;
    assert_eq!(signed.status, 200, "{}", signed.raw_body);
    let passkey_session = signed.session_cookie().unwrap();
    let again = options(&t, "/user/passkeys/options", Some(&passkey_session)).await;
    assert_eq!((again.status, again.error_code()), (423, Some("password_confirmation_required")));

    let cross_site = TestCall::new("POST", "/passkeys/options").header("sec-fetch-site", "cross-site").json(json!({}));
    assert_eq!(t.login_fn(cross_site).await.status, 403);

    // The owner resets the password from the mailed link: the intruder's passkey is gone.
    let forgot = t.reset_fn(TestCall::new("POST", "/forgot-password").json(json!({ "email": email }))).await;
    assert_eq!(forgot.status, 202);
    let mailer = LogMailer::quiet();
    gatehouse_tests::jobs::drain(&t.worker(std::sync::Arc::new(mailer.clone())), 10).await;
    let link = mailer.sent().into_iter().find(|m| m.subject == "Reset your password").expect("a reset mail").text;
    let at = link.find("token=").expect("a token") + 6;
    let new_pw = "a fresh and long passphrase 2027";
    let reset = t
        .reset_fn(TestCall::new("POST", "/reset-password").json(json!({
            "email": email, "token": &link[at..at + 64], "password": new_pw, "password_confirmation": new_pw
        })))
        .await;
    assert_eq!(reset.status, 200, "{}", reset.raw_body);
    let owner = t.login(&email, new_pw).await.session_cookie().expect("signed in");
    let listed = t.login_fn(TestCall::new("GET", "/user/passkeys").cookie(Some(&owner))).await;
    assert_eq!(listed.body["passkeys"], json!([]), "{}", listed.raw_body);
    let a = assertion(&t, &mut intruder, "203.0.113.9").await;
    let refused = sign_in(&t, &a, "203.0.113.9").await;
    assert_eq!((refused.status, refused.error_code()), (422, Some("passkey_rejected")));
    assert_eq!(t.user(Some(&passkey_session)).await.status, 401, "the passkey's session ended with the reset");
}
