//! The login function over real-shaped API Gateway v2 events, stores on the emulator.

use crate::support::raw_item;
use gatehouse_tests::http::{TestApp, TestCall, TestReply};
use serde_json::{Value, json};

const PW: &str = "correct horse battery staple 42";

/// Ann (`ann@example.com`) signing in with `password` from `ip`.
async fn ann_signs_in_from(t: &TestApp, ip: &str, password: &str) -> TestReply {
    let body = json!({"email": "ann@example.com", "password": password});
    t.login_fn(TestCall::new("POST", "/login").from_ip(ip).json(body)).await
}

#[tokio::test]
async fn register_login_user_logout_and_then_user_is_unauthenticated() {
    let t = TestApp::aws(&[]).await;
    let reg = t.register("Ann", "Ann@Example.com", PW).await;
    assert_eq!(reg.status, 201, "{}", reg.raw_body);
    assert_eq!(reg.body["user"]["email"], "Ann@Example.com");
    let reg_cookie = reg.session_cookie().expect("registration logs in");

    let login = t.login("ann@example.com", PW).await;
    assert_eq!(login.status, 200, "{}", login.raw_body);
    let cookie = login.session_cookie().unwrap();
    assert_ne!(cookie, reg_cookie, "a fresh session id on every login");
    assert_eq!(login.body["user"]["id"], reg.body["user"]["id"]);

    let me = t.user(Some(&cookie)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"]["name"], "Ann");

    let out = t.login_fn(TestCall::new("POST", "/logout").cookie(Some(&cookie))).await;
    assert_eq!(out.status, 204);
    assert!(out.set_cookies().iter().any(|c| c.starts_with("__Host-gatehouse_session=;") && c.contains("Max-Age=0")));
    let after = t.user(Some(&cookie)).await;
    assert_eq!(after.status, 401);
    assert_eq!(after.error_code(), Some("unauthenticated"));
    // The registration session is a different one and still works.
    assert_eq!(t.user(Some(&reg_cookie)).await.status, 200);
}

#[tokio::test]
async fn the_user_body_never_carries_the_hash_or_remember_token() {
    let t = TestApp::aws(&[]).await;
    let reg = t.register("Ann", "ann@example.com", PW).await;
    let keys: Vec<&String> = reg.body["user"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "created_at",
            "email",
            "email_verified_at",
            "has_password",
            "id",
            "name",
            "passkeys",
            "two_factor_enabled",
            "updated_at"
        ]
    );
    assert!(!reg.raw_body.contains("argon2"));
}

#[tokio::test]
async fn responses_carry_no_store_no_referrer_and_a_strict_cookie() {
    let t = TestApp::aws(&[]).await;
    let reg = t.register("Ann", "ann@example.com", PW).await;
    assert_eq!(reg.header("cache-control"), Some("no-store"));
    assert_eq!(reg.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(reg.header("content-type"), Some("application/json"));
    let set = reg.set_cookies();
    assert_eq!(set.len(), 1);
    for flag in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set[0].contains(flag), "{} lacks {flag}", set[0]);
    }
    assert!(!set[0].contains("Max-Age"), "not remembered: a browser-session cookie");
    let remembered = t
        .login_fn(
            TestCall::new("POST", "/login").json(json!({"email": "ann@example.com", "password": PW, "remember": true})),
        )
        .await;
    assert!(remembered.set_cookies()[0].contains("Max-Age=2592000"));
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let t = TestApp::aws(&[]).await;
    t.register("Ann", "ann@example.com", PW).await;
    let wrong = t.login("ann@example.com", "not the password at all").await;
    let unknown = t.login("nobody@example.com", "not the password at all").await;
    assert_eq!(wrong.status, 422);
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.raw_body, unknown.raw_body);
    assert_eq!(wrong.error_code(), Some("validation_failed"));
    assert!(wrong.session_cookie().is_none() && unknown.session_cookie().is_none());
}

#[tokio::test]
async fn the_sixth_failure_in_a_minute_is_throttled_for_that_ip_only() {
    let t = TestApp::aws(&[]).await;
    t.register("Ann", "ann@example.com", PW).await;
    for _ in 0..5 {
        assert_eq!(t.login("ann@example.com", "wrong password, again").await.status, 422);
    }
    let sixth = t.login("ANN@example.com", PW).await;
    assert_eq!(sixth.status, 429, "{}", sixth.raw_body);
    assert_eq!(sixth.error_code(), Some("too_many_requests"));
    let retry: u64 = sixth.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    let other_ip = ann_signs_in_from(&t, "198.51.100.23", PW).await;
    assert_eq!(other_ip.status, 200, "{}", other_ip.raw_body);
    // Never a permanent lockout: the window ends.
    t.env.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(t.login("ann@example.com", PW).await.status, 200);
}

#[tokio::test]
async fn a_hundred_failures_in_an_hour_lock_the_account_from_every_ip_for_a_while() {
    let t = TestApp::aws(&[]).await;
    t.register("Ann", "ann@example.com", PW).await;
    for i in 0..100 {
        let ip = format!("10.0.{}.{}", i / 4, i % 4 + 1);
        let r = ann_signs_in_from(&t, &ip, "wrong password, again").await;
        assert_eq!(r.status, 422, "attempt {i}");
    }
    let fresh_ip = ann_signs_in_from(&t, "192.0.2.200", PW).await;
    assert_eq!(fresh_ip.status, 429);
    t.env.clock.advance(chrono::Duration::seconds(3601));
    assert_eq!(t.login("ann@example.com", PW).await.status, 200);
}

#[tokio::test]
async fn a_session_past_its_idle_lifetime_is_rejected_though_still_stored() {
    let t = TestApp::aws(&[]).await;
    let cookie = t.register("Ann", "ann@example.com", PW).await.session_cookie().unwrap();
    t.env.clock.advance(chrono::Duration::minutes(119));
    assert_eq!(t.user(Some(&cookie)).await.status, 200, "activity slides the expiry");
    t.env.clock.advance(chrono::Duration::minutes(119));
    assert_eq!(t.user(Some(&cookie)).await.status, 200);
    t.env.clock.advance(chrono::Duration::minutes(121));
    assert_eq!(t.user(Some(&cookie)).await.status, 401);
    let id_hash = gatehouse::tables::sessions::SessionId::parse(cookie.split_once('=').unwrap().1).unwrap().key();
    let stored = raw_item(&t.env, "sessions", "id_hash", id_hash.as_str()).await;
    assert!(stored.is_some(), "the item is still in the table; only the read filter rejects it");
}

#[tokio::test]
async fn the_absolute_lifetime_caps_a_busy_session() {
    let t = TestApp::aws(&[("GATEHOUSE_SESSION_ABSOLUTE_LIFETIME_MINUTES", "180")]).await;
    let cookie = t.register("Ann", "ann@example.com", PW).await.session_cookie().unwrap();
    for _ in 0..5 {
        t.env.clock.advance(chrono::Duration::minutes(30));
        assert_eq!(t.user(Some(&cookie)).await.status, 200);
    }
    t.env.clock.advance(chrono::Duration::minutes(31));
    assert_eq!(t.user(Some(&cookie)).await.status, 401);
}

#[tokio::test]
async fn last_activity_is_written_at_most_once_a_minute() {
    let t = TestApp::aws(&[]).await;
    let cookie = t.register("Ann", "ann@example.com", PW).await.session_cookie().unwrap();
    let key = gatehouse::tables::sessions::SessionId::parse(cookie.split_once('=').unwrap().1).unwrap().key();
    let created = t.env.stores.sessions.find(&key).await.unwrap().unwrap().last_activity;
    t.env.clock.advance(chrono::Duration::seconds(30));
    t.user(Some(&cookie)).await;
    assert_eq!(t.env.stores.sessions.find(&key).await.unwrap().unwrap().last_activity, created);
    t.env.clock.advance(chrono::Duration::seconds(31));
    t.user(Some(&cookie)).await;
    assert_eq!(t.env.stores.sessions.find(&key).await.unwrap().unwrap().last_activity, t.env.clock_now());
}

#[tokio::test]
async fn logout_other_devices_leaves_exactly_the_current_session() {
    let t = TestApp::aws(&[]).await;
    t.register("Ann", "ann@example.com", PW).await;
    let mut cookies = vec![];
    for _ in 0..3 {
        cookies.push(t.login("ann@example.com", PW).await.session_cookie().unwrap());
    }
    let current = cookies[1].clone();
    let wrong = t
        .login_fn(
            TestCall::new("POST", "/logout-other-devices")
                .cookie(Some(&current))
                .json(json!({"password": "nope nope nope nope"})),
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert_eq!(wrong.body["error"]["fields"]["password"][0], "is incorrect");
    let ok = t
        .login_fn(TestCall::new("POST", "/logout-other-devices").cookie(Some(&current)).json(json!({"password": PW})))
        .await;
    assert_eq!(ok.status, 204, "{}", ok.raw_body);
    // The current session goes on under a new id; every earlier cookie, the current one's too, is dead.
    let rotated = ok.session_cookie().expect("the rotated session's cookie");
    assert_ne!(rotated, current);
    let listed = t.login_fn(TestCall::new("GET", "/sessions").cookie(Some(&rotated))).await;
    let sessions = listed.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["current"], true);
    for c in &cookies {
        assert_eq!(t.user(Some(c)).await.status, 401);
    }
    assert_eq!(t.user(Some(&rotated)).await.status, 200);
}

#[tokio::test]
async fn sessions_are_listed_with_hints_never_ids() {
    let t = TestApp::aws(&[]).await;
    let first = t.register("Ann", "ann@example.com", PW).await.session_cookie().unwrap();
    let second = t
        .login_fn(
            TestCall::new("POST", "/login")
                .from_ip("198.51.100.9")
                .header("user-agent", "Phone/2")
                .json(json!({"email": "ann@example.com", "password": PW})),
        )
        .await
        .session_cookie()
        .unwrap();
    let r = t.login_fn(TestCall::new("GET", "/sessions").cookie(Some(&first))).await;
    assert_eq!(r.status, 200);
    let list = r.body["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let current: Vec<_> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert!(list.iter().any(|s| s["ip_address"] == "198.51.100.9" && s["user_agent"] == "Phone/2"));
    for s in list {
        assert_eq!(s["id_hint"].as_str().unwrap().len(), 8);
    }
    for c in [&first, &second] {
        let id = c.split_once('=').unwrap().1;
        assert!(!r.raw_body.contains(id), "a session id leaked into the listing");
    }
}

#[tokio::test]
async fn registration_applies_the_password_policy_and_unique_email() {
    let t = TestApp::aws(&[]).await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"name": "A", "email": "a@example.com", "password": "short", "password_confirmation": "short"}),
            "password",
        ),
        (
            json!({"name": "A", "email": "a@example.com", "password": "1qaz2wsx3edc4RFV", "password_confirmation": "1qaz2wsx3edc4RFV"}),
            "password",
        ),
        (
            json!({"name": "A", "email": "a@example.com", "password": "x".repeat(129), "password_confirmation": "x".repeat(129)}),
            "password",
        ),
        (
            json!({"name": "A", "email": "a@example.com", "password": PW, "password_confirmation": "different words here"}),
            "password",
        ),
        (json!({"name": "A", "email": "not-an-email", "password": PW, "password_confirmation": PW}), "email"),
        (json!({"name": "", "email": "a@example.com", "password": PW, "password_confirmation": PW}), "name"),
    ];
    for (body, field) in cases {
        let r = t.login_fn(TestCall::new("POST", "/register").json(body.clone())).await;
        assert_eq!(r.status, 422, "{body}");
        assert!(r.body["error"]["fields"][field].is_array(), "{body} → {}", r.raw_body);
    }
    // 128 characters of one's own choosing are fine, and nothing is truncated.
    let long = format!("{}{}{}", "tulip-orbit-mango-42 ", "q".repeat(99), "zyxwvuts");
    assert_eq!(long.chars().count(), 128);
    assert_eq!(t.register("A", "long@example.com", &long).await.status, 201);
    assert_eq!(t.login("long@example.com", &long[..127]).await.status, 422);
    assert_eq!(t.login("long@example.com", &long).await.status, 200);
    assert_eq!(t.register("A", "taken@example.com", PW).await.status, 201);
    let taken = t.register("B", "TAKEN@example.com", PW).await;
    assert_eq!(taken.status, 422);
    assert_eq!(taken.body["error"]["fields"]["email"][0], "has already been taken");
}

#[tokio::test]
async fn an_outdated_hash_is_upgraded_on_login() {
    let t = TestApp::aws(&[]).await;
    t.register("Ann", "ann@example.com", PW).await;
    let email = gatehouse::Email::parse("ann@example.com").unwrap();
    let user = t.env.stores.users.find_by_email(&email).await.unwrap().unwrap();
    let weak = gatehouse::values::password::PasswordHasher::new(gatehouse::values::password::HashCost {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    })
    .unwrap();
    let policy = gatehouse::values::password::PasswordPolicy::new(15, 128, Vec::<String>::new());
    let old = weak.hash(&policy.check(PW).unwrap()).unwrap();
    let change = gatehouse::tables::users::CredentialChange { password: Some(&old), ..Default::default() };
    t.env.stores.users.change_credentials(&user.id, user.credentials_version, change, t.env.clock_now()).await.unwrap();
    assert_eq!(t.login("ann@example.com", PW).await.status, 200);
    let upgraded = t.env.stores.users.find(&user.id).await.unwrap().unwrap().password_hash;
    assert!(upgraded.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert_eq!(t.login("ann@example.com", PW).await.status, 200);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_error_json() {
    let t = TestApp::aws(&[]).await;
    let r = t.login_fn(TestCall::new("GET", "/nope")).await;
    assert_eq!((r.status, r.error_code()), (404, Some("not_found")));
    let r = t.login_fn(TestCall::new("DELETE", "/login")).await;
    assert_eq!((r.status, r.error_code()), (405, Some("method_not_allowed")));
}

#[tokio::test]
async fn a_hundred_malformed_requests_all_get_a_4xx_with_the_error_json() {
    let t = TestApp::aws(&[]).await;
    let cookie = t.register("Ann", "ann@example.com", PW).await.session_cookie().unwrap();
    let routes = ["/register", "/login", "/logout-other-devices"];
    let mut calls: Vec<TestCall> = Vec::new();
    for route in routes {
        let base = || TestCall::new("POST", route).cookie(Some(&cookie));
        // Bodies that are not JSON objects.
        for raw in [
            "",
            "{",
            "[]",
            "null",
            "1",
            "\"text\"",
            "{\"email\":}",
            "{'email': 'a@b.co'}",
            "\u{feff}{}",
            "{\"a\":1}garbage",
        ] {
            calls.push(base().header("content-type", "application/json").raw(raw));
        }
        // Content types that are not JSON.
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/xml",
            "json",
        ] {
            calls.push(base().header("content-type", ct).raw(r#"{"email":"a@example.com","password":"x"}"#));
        }
        calls.push(base().raw(r#"{"email":"a@example.com"}"#)); // no content type at all
        // Over 64 KiB.
        calls.push(base().json(json!({ "email": "a@example.com", "password": "p".repeat(70_000) })));
        // Wrong types and missing fields.
        for body in [
            json!({}),
            json!({"email": 1, "password": PW}),
            json!({"email": true, "password": PW, "name": "A", "password_confirmation": PW}),
            json!({"email": ["a@example.com"], "password": PW}),
            json!({"email": {"x": 1}, "password": PW}),
            json!({"email": null, "password": PW}),
            json!({"email": "a@example.com", "password": 12345}),
            json!({"email": "a@example.com", "password": ["x"]}),
            json!({"email": "a@example.com", "password": {"x": "y"}}),
            json!({"email": "a@example.com", "password": ""}),
            json!({"email": "a@example.com", "password": null}),
            json!({"email": "a@example.com", "password": PW, "remember": "yes"}),
            json!({"email": "a@example.com", "password": PW, "name": 5, "password_confirmation": PW}),
            json!({"email": "x".repeat(300) + "@example.com", "password": PW}),
            json!({"email": "a@example.com", "password": PW, "name": "\u{0000}bad", "password_confirmation": PW}),
        ] {
            // That route reads only `password`: a body whose password is right is valid there.
            if route == "/logout-other-devices" && body["password"] == PW {
                continue;
            }
            calls.push(base().json(body));
        }
    }
    // Routes that take no body, called badly.
    for (m, p) in [
        ("GET", "/user"),
        ("GET", "/sessions"),
        ("POST", "/logout"),
        ("PUT", "/user"),
        ("PATCH", "/login"),
        ("GET", "/register"),
    ] {
        calls.push(TestCall::new(m, p).header("authorization", "Bearer not-a-token"));
    }
    for bad_cookie in [
        "__Host-gatehouse_session=",
        "__Host-gatehouse_session=short",
        "__Host-gatehouse_session=!!!!",
        "__Host-gatehouse_session=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        calls.push(TestCall::new("GET", "/user").cookie(Some(bad_cookie)));
    }
    for auth in ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer 1|2", "Bearer x|y|z", "Bearer ünïcödé|tøken"] {
        calls.push(TestCall::new("GET", "/user").header("authorization", auth));
    }
    assert!(calls.len() >= 100, "only {} cases", calls.len());
    for call in calls {
        let r = t.login_fn(call.clone()).await;
        assert!((400..500).contains(&r.status), "{call:?} → {} {}", r.status, r.raw_body);
        let err = &r.body["error"];
        assert!(err["code"].as_str().is_some_and(|c| !c.is_empty()), "{call:?} → {}", r.raw_body);
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()), "{call:?} → {}", r.raw_body);
        if r.status == 422 && r.error_code() == Some("validation_failed") {
            assert!(err["fields"].is_object(), "{call:?} → {}", r.raw_body);
        }
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
}

#[tokio::test]
async fn guessable_passwords_are_refused_and_nfc_and_nfd_forms_are_one_password() {
    let app_name = "northwind-customer-portal";
    let t = TestApp::aws(&[("GATEHOUSE_APP_NAME", app_name)]).await;
    let email = "ann.smith@example.com";
    for (weak, why) in [
        ("aaaaaaaaaaaaaaa", "is too easy to guess"),
        ("123456789012345", "is too easy to guess"),
        ("passwordpassword", "is too easy to guess"),
        (email, "may not contain your email address"),
        ("Ann.Smith@Example.com", "may not contain your email address"),
        (app_name, "may not contain your email address or be the name of this app"),
    ] {
        let r = t.register("Ann Smith", email, weak).await;
        assert_eq!(r.status, 422, "{weak} → {}", r.raw_body);
        let problems = r.body["error"]["fields"]["password"].as_array().expect("a password error");
        assert!(problems.iter().any(|p| p.as_str().is_some_and(|p| p.starts_with(why))), "{weak} → {}", r.raw_body);
    }
    assert_eq!(t.login(email, "passwordpassword").await.status, 422, "nothing was registered");

    // "pässwörd-ünïcödé-tëst" composed (NFC) and decomposed (NFD): one password either way.
    let nfc = "p\u{e4}ssw\u{f6}rd-\u{fc}n\u{ef}c\u{f6}d\u{e9}-t\u{eb}st";
    let nfd = "pa\u{308}sswo\u{308}rd-u\u{308}ni\u{308}co\u{308}de\u{301}-te\u{308}st";
    assert_ne!(nfc, nfd);
    assert_eq!(t.register("Ann", "nfc@example.com", nfc).await.status, 201);
    assert_eq!(t.login("nfc@example.com", nfd).await.status, 200);
    assert_eq!(t.login("nfc@example.com", nfc).await.status, 200);
    assert_eq!(t.register("Bob", "nfd@example.com", nfd).await.status, 201);
    assert_eq!(t.login("nfd@example.com", nfc).await.status, 200);
}

/// AWS calls per operation, counted on the wire (a proxy in front of the emulator): any added
/// call fails here. A wrong password and an unknown email make the same calls, so neither the
/// count nor the kind of call tells them apart.
#[tokio::test]
async fn login_and_user_calls_counted_on_the_wire_and_a_known_and_an_unknown_email_fail_alike() {
    let (env, wire) = gatehouse_tests::wire::counted_env().await;
    let t = TestApp::with(env, &[]);
    let email = format!("ann-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    assert_eq!(t.register("Ann", &email, PW).await.status, 201);
    wire.take();
    let calls = |pairs: &[(&str, usize)]| -> std::collections::BTreeMap<String, usize> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    };
    let wrong = t.login(&email, "not the password").await;
    assert_eq!(wrong.status, 422);
    let wrong_calls = wire.take();
    let unknown = t.login("nobody-at-all@example.com", "not the password").await;
    assert_eq!(unknown.status, 422);
    let unknown_calls = wire.take();
    assert_eq!(wrong_calls, unknown_calls, "a wrong password and an unknown email: the same calls");
    // Three counters (per email and client, per client, per account) in one transaction, the
    // address and the user: 3 calls.
    assert_eq!(wrong_calls, calls(&[("dynamodb:GetItem", 2), ("dynamodb:TransactWriteItems", 1)]));

    let ok = t.login(&email, PW).await;
    assert_eq!(ok.status, 200);
    // The counters, the address and the user, the session issued (its `session.created`
    // promised to the queue first, #32, and numbered by the issue's own write): 5 calls.
    let signed_in = [("dynamodb:GetItem", 2), ("dynamodb:TransactWriteItems", 2), ("sqs:SendMessage", 1)];
    assert_eq!(wire.take(), calls(&signed_in));
    // A known device: the pair and device counters, the same 5 calls.
    let prefix = format!("{}_device=", gatehouse_tests::http::SESSION_COOKIE);
    let device = ok
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with(&prefix))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned());
    assert!(device.is_some(), "a device cookie at login");
    let again = t
        .login_fn(
            TestCall::new("POST", "/login")
                .cookie(device.as_deref())
                .json(serde_json::json!({"email": email, "password": PW})),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.raw_body);
    assert_eq!(wire.take(), calls(&signed_in));
    let cookie = ok.session_cookie().unwrap();
    let token = t
        .create_token(&cookie, serde_json::json!({"name": "t", "abilities": ["tokens:read"], "expires_in_minutes": 9}))
        .await;
    let token = token.body["token"].as_str().unwrap().to_owned();
    wire.take();
    // GET /user with a bearer token: the check (the token and its owner in one call), then the
    // user, one invocation (no authorizer).
    let check_and_user = [("dynamodb:BatchGetItem", 1), ("dynamodb:GetItem", 1)];
    assert_eq!(t.login_fn(TestCall::new("GET", "/user").bearer(&token)).await.status, 200);
    let first = [check_and_user[0], check_and_user[1], ("dynamodb:UpdateItem", 1)];
    assert_eq!(wire.take(), calls(&first), "first use: last_used_at");
    assert_eq!(t.login_fn(TestCall::new("GET", "/user").bearer(&token)).await.status, 200);
    assert_eq!(wire.take(), calls(&check_and_user), "within the minute: reads only");
}
