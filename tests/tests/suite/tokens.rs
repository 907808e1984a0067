//! Personal access tokens, the authorizer and cross-app handoffs, over real-shaped events, stores
//! on the emulator.

use crate::support::{ann_handing_off_to_billing, handoff, raw_item};
use gatehouse::tables::personal_access_tokens::TokenId;
use gatehouse_tests::TestEnv;
use gatehouse_tests::counting::CountingTokens;
use gatehouse_tests::http::{TestApp, TestCall};
use gatehouse_token_check::RouteAbilities;
use serde_json::json;

fn abilities() -> RouteAbilities {
    RouteAbilities::parse("GET /reports=reports:read").unwrap()
}

#[tokio::test]
async fn create_check_revoke_check() {
    let t = TestApp::aws(&[]).await;
    let cookie = t.signed_up("ann@example.com").await;
    let created = t.create_token(&cookie, json!({"name": "ci"})).await;
    assert_eq!(created.status, 201, "{}", created.raw_body);
    let token = created.body["token"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();
    let owner = t.user(Some(&cookie)).await.body["user"]["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&format!("{id}.{owner}|gth_")), "{token}");
    assert_eq!(created.body["abilities"], json!(["*"]));

    let ok = t.authorize(&abilities(), "GET /user", Some(&token), None).await;
    assert!(ok.is_authorized);
    let me = t.user(None).await;
    assert_eq!(me.status, 401);
    let user = t.login_fn(TestCall::new("GET", "/user").bearer(&token)).await;
    assert_eq!(user.status, 200);
    assert_eq!(ok.context["user_id"], user.body["user"]["id"]);
    assert_eq!(ok.context["token_id"], json!(id));
    assert_eq!(ok.context["abilities"], json!(["*"]));

    let del = t.tokens_fn(TestCall::new("DELETE", &format!("/tokens/{id}")).cookie(Some(&cookie))).await;
    assert_eq!(del.status, 204);
    assert!(!t.authorize(&abilities(), "GET /user", Some(&token), None).await.is_authorized);
    assert_eq!(t.login_fn(TestCall::new("GET", "/user").bearer(&token)).await.status, 401);
    // Asked again (its answer lost, say): what the first answer was, nothing more ended.
    let again = t.tokens_fn(TestCall::new("DELETE", &format!("/tokens/{id}")).cookie(Some(&cookie))).await;
    assert_eq!(again.status, 204);
}

#[tokio::test]
async fn the_session_cookie_passes_the_authorizer_too() {
    let t = TestApp::aws(&[]).await;
    let cookie = t.signed_up("ann@example.com").await;
    let r = t.authorize(&abilities(), "GET /reports", None, Some(&cookie)).await;
    assert!(r.is_authorized);
    assert!(r.context["session_id"].as_str().is_some_and(|s| s.len() == 64));
    assert!(
        !t.authorize(&abilities(), "GET /reports", None, Some("__Host-gatehouse_session=forged")).await.is_authorized
    );
    assert!(!t.authorize(&abilities(), "GET /reports", None, None).await.is_authorized);
}

#[tokio::test]
async fn a_token_lacking_the_routes_ability_is_denied_and_star_allows() {
    let t = TestApp::aws(&[]).await;
    let cookie = t.signed_up("ann@example.com").await;
    let narrow = t.create_token(&cookie, json!({"name": "n", "abilities": ["profile:read"]})).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let reader = t.create_token(&cookie, json!({"name": "r", "abilities": ["reports:read"]})).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let star = t.create_token(&cookie, json!({"name": "s"})).await.body["token"].as_str().unwrap().to_owned();
    assert!(!t.authorize(&abilities(), "GET /reports", Some(&narrow), None).await.is_authorized);
    assert!(t.authorize(&abilities(), "GET /reports", Some(&reader), None).await.is_authorized);
    assert!(t.authorize(&abilities(), "GET /reports", Some(&star), None).await.is_authorized);
    // Minting tokens needs tokens:create, and a token cannot mint a stronger one.
    assert!(!t.authorize(&abilities(), "POST /tokens", Some(&reader), None).await.is_authorized);
    let denied = t.tokens_fn(TestCall::new("POST", "/tokens").bearer(&reader).json(json!({"name": "x"}))).await;
    assert_eq!((denied.status, denied.error_code()), (403, Some("forbidden")));
    let minter = t
        .create_token(&cookie, json!({"name": "m", "abilities": ["tokens:create", "reports:read"]}))
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let stronger = t.tokens_fn(TestCall::new("POST", "/tokens").bearer(&minter).json(json!({"name": "x"}))).await;
    assert_eq!(stronger.status, 422, "{}", stronger.raw_body);
    let weaker = t
        .tokens_fn(
            TestCall::new("POST", "/tokens").bearer(&minter).json(json!({"name": "x", "abilities": ["reports:read"]})),
        )
        .await;
    assert_eq!(weaker.status, 201, "{}", weaker.raw_body);
}

#[tokio::test]
async fn an_expired_token_still_stored_is_denied() {
    let t = TestApp::aws(&[]).await;
    let cookie = t.signed_up("ann@example.com").await;
    let r = t.create_token(&cookie, json!({"name": "short", "expires_in_minutes": 5})).await;
    let token = r.body["token"].as_str().unwrap().to_owned();
    assert!(r.body["expires_at"].is_string());
    assert!(t.authorize(&abilities(), "GET /user", Some(&token), None).await.is_authorized);
    t.env.clock.advance(chrono::Duration::minutes(6));
    assert!(!t.authorize(&abilities(), "GET /user", Some(&token), None).await.is_authorized);
    let id = TokenId::parse(r.body["id"].as_str().unwrap()).unwrap();
    let raw = raw_item(&t.env, "personal_access_tokens", "id", id.as_str()).await;
    assert!(raw.is_some(), "still stored; only the read filter denies it");
}

#[tokio::test]
async fn the_global_maximum_age_caps_every_token() {
    let t = TestApp::aws(&[("GATEHOUSE_TOKEN_MAX_AGE_MINUTES", "60")]).await;
    let cookie = t.signed_up("ann@example.com").await;
    let r = t.create_token(&cookie, json!({"name": "long", "expires_in_minutes": 100000})).await;
    let token = r.body["token"].as_str().unwrap().to_owned();
    t.env.clock.advance(chrono::Duration::minutes(61));
    assert!(!t.authorize(&abilities(), "GET /user", Some(&token), None).await.is_authorized);
}

#[tokio::test]
async fn a_thousand_checks_in_a_minute_write_last_used_at_most_once() {
    let env = TestEnv::aws().await;
    let mut env = env;
    let counting = CountingTokens::wrap(env.stores.personal_access_tokens.clone());
    env.stores.personal_access_tokens = counting.clone();
    let t = TestApp::with(env, &[]);
    let cookie = t.signed_up("ann@example.com").await;
    let token = t.create_token(&cookie, json!({"name": "hot"})).await.body["token"].as_str().unwrap().to_owned();
    let finds_before = counting.finds();
    for i in 0..1000 {
        if i % 100 == 0 {
            t.env.clock.advance(chrono::Duration::seconds(5));
        }
        assert!(t.authorize(&abilities(), "GET /user", Some(&token), None).await.is_authorized);
    }
    assert_eq!(counting.last_used_writes(), 1, "last_used_at written once in 50 s");
    assert_eq!(counting.finds() - finds_before, 1000, "exactly one read per check");
    t.env.clock.advance(chrono::Duration::seconds(61));
    assert!(t.authorize(&abilities(), "GET /user", Some(&token), None).await.is_authorized);
    assert_eq!(counting.last_used_writes(), 2);
    let listed = t.tokens_fn(TestCall::new("GET", "/tokens").cookie(Some(&cookie))).await;
    assert_eq!(listed.body["tokens"][0]["last_used_at"], json!(gatehouse::values::clock::rfc3339(t.env.clock_now())));
}

#[tokio::test]
async fn malformed_tokens_are_denied_without_any_store_read() {
    let mut env = TestEnv::memory();
    let counting = CountingTokens::wrap(env.stores.personal_access_tokens.clone());
    env.stores.personal_access_tokens = counting.clone();
    let t = TestApp::with(env, &[]);
    let cookie = t.signed_up("ann@example.com").await;
    let good = t.create_token(&cookie, json!({"name": "x"})).await.body["token"].as_str().unwrap().to_owned();
    let (id, secret) = good.split_once('|').unwrap();
    let (id, _owner) = id.split_once('.').unwrap();
    let mut flipped = secret.to_owned().into_bytes();
    let i = flipped.len() - 12;
    flipped[i] = if flipped[i] == b'a' { b'b' } else { b'a' };
    let bad_checksum = format!("{id}|{}", String::from_utf8(flipped).unwrap());
    let before = counting.finds();
    for bad in [
        bad_checksum.as_str(),
        &format!("42|{secret}"),
        &format!("not-a-uuid|{secret}"),
        &format!("{}|{secret}", id.to_uppercase()),
        &format!("{id}|{}", &secret[4..]),
        &format!("{id}|"),
        "plainly-wrong",
        "",
    ] {
        assert!(!t.authorize(&abilities(), "GET /user", Some(bad), None).await.is_authorized, "{bad}");
    }
    assert_eq!(counting.finds(), before, "no store read for a malformed token");
    // A well-formed token with an unknown id costs exactly one read.
    let unknown = format!("{}|{secret}", TokenId::generate());
    assert!(!t.authorize(&abilities(), "GET /user", Some(&unknown), None).await.is_authorized);
    assert_eq!(counting.finds(), before + 1);
}

#[tokio::test]
async fn tokens_are_listed_paginated_and_only_ones_own() {
    let t = TestApp::aws(&[]).await;
    let ann = t.signed_up("ann@example.com").await;
    let bob = t.signed_up("bob@example.com").await;
    for i in 0..5 {
        assert_eq!(t.create_token(&ann, json!({"name": format!("t{i}")})).await.status, 201);
    }
    let bobs = t.create_token(&bob, json!({"name": "bob's"})).await;
    let mut names = vec![];
    let mut url = "/tokens?limit=2".to_owned();
    loop {
        let r = t.tokens_fn(TestCall::new("GET", &url).cookie(Some(&ann))).await;
        assert_eq!(r.status, 200, "{}", r.raw_body);
        for tok in r.body["tokens"].as_array().unwrap() {
            names.push(tok["name"].as_str().unwrap().to_owned());
            assert!(tok.get("token").is_none(), "the plaintext is shown once only");
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => url = format!("/tokens?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(names, ["t4", "t3", "t2", "t1", "t0"]);
    let other = t
        .tokens_fn(
            TestCall::new("DELETE", &format!("/tokens/{}", bobs.body["id"].as_str().unwrap())).cookie(Some(&ann)),
        )
        .await;
    assert_eq!(other.status, 404, "someone else's token is not found");
    let bad = t.tokens_fn(TestCall::new("GET", "/tokens?limit=0").cookie(Some(&ann))).await;
    assert_eq!(bad.status, 422);
    let bad = t.tokens_fn(TestCall::new("GET", "/tokens?cursor=%21%21").cookie(Some(&ann))).await;
    assert_eq!(bad.status, 422, "{}", bad.raw_body);
}

#[tokio::test]
async fn the_mobile_flow_issues_a_token_for_credentials_with_the_login_throttle() {
    let t = TestApp::aws(&[]).await;
    t.signed_up("ann@example.com").await;
    let ok = t
        .tokens_fn(TestCall::new("POST", "/tokens/issue").json(json!({"email": "ann@example.com", "password": "correct horse battery staple 42", "device_name": "Ann's phone", "abilities": ["read"]})))
        .await;
    assert_eq!(ok.status, 201, "{}", ok.raw_body);
    assert_eq!(ok.body["name"], "Ann's phone");
    assert_eq!(ok.body["abilities"], json!(["read"]));
    let wrong = t
        .tokens_fn(
            TestCall::new("POST", "/tokens/issue")
                .json(json!({"email": "ann@example.com", "password": "wrong wrong wrong", "device_name": "x"})),
        )
        .await;
    let unknown = t
        .tokens_fn(
            TestCall::new("POST", "/tokens/issue")
                .json(json!({"email": "nobody@example.com", "password": "wrong wrong wrong", "device_name": "x"})),
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert_eq!(wrong.raw_body, unknown.raw_body);
    for _ in 0..4 {
        t.tokens_fn(
            TestCall::new("POST", "/tokens/issue")
                .json(json!({"email": "ann@example.com", "password": "wrong wrong wrong", "device_name": "x"})),
        )
        .await;
    }
    let throttled = t
        .tokens_fn(TestCall::new("POST", "/tokens/issue").json(
            json!({"email": "ann@example.com", "password": "correct horse battery staple 42", "device_name": "x"}),
        ))
        .await;
    assert_eq!(throttled.status, 429);
}

#[tokio::test]
async fn two_concurrent_exchanges_of_one_handoff_token_create_one_session() {
    let t = TestApp::aws(&[("GATEHOUSE_APPS", "billing,admin")]).await;
    let cookie = t.signed_up("ann@example.com").await;
    let bad = handoff(&t, &cookie, "unknown").await;
    assert_eq!(bad.status, 422);
    let h = handoff(&t, &cookie, "billing").await;
    assert_eq!(h.status, 201, "{}", h.raw_body);
    let token = h.body["handoff_token"].as_str().unwrap().to_owned();
    let (billing, admin) =
        (t.sibling(&[("GATEHOUSE_APP_NAME", "billing")]), t.sibling(&[("GATEHOUSE_APP_NAME", "admin")]));
    // Only the target app exchanges it: another deployment, or one that claims another app, cannot.
    let wrong_app =
        TestApp::tokens_at(&admin, TestCall::new("POST", "/cross-app/exchange").json(json!({"handoff_token": token})))
            .await;
    assert_eq!(wrong_app.error_code(), Some("invalid_token"));
    let claims = t
        .tokens_fn(TestCall::new("POST", "/cross-app/exchange").json(json!({"handoff_token": token, "app": "billing"})))
        .await;
    assert_eq!(claims.status, 422);
    assert!(claims.body["error"]["fields"]["app"].is_array(), "{}", claims.raw_body);
    let call = TestCall::new("POST", "/cross-app/exchange")
        .from_ip("198.51.100.77")
        .json(json!({"handoff_token": token, "app": "billing"}));
    let (a, b) = tokio::join!(TestApp::tokens_at(&billing, call.clone()), TestApp::tokens_at(&billing, call));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 422]);
    let winner = if a.status == 200 { a } else { b };
    let new_cookie = winner.session_cookie().unwrap();
    let user_at = |app| TestApp::login_at(app, TestCall::new("GET", "/user").cookie(Some(&new_cookie)));
    assert_eq!(user_at(&billing).await.status, 200);
    assert_eq!(t.user(Some(&new_cookie)).await.status, 401, "a billing session is no session of the home app");
    assert_eq!(user_at(&admin).await.status, 401, "nor of any other app");
    let user_id = gatehouse::tables::users::UserId::parse(winner.body["user"]["id"].as_str().unwrap()).unwrap();
    let audit = t.env.stores.cross_app_sessions.list_for_user(&user_id).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0].source_app.as_str(), audit[0].target_app.as_str()), ("gatehouse", "billing"));
    assert_eq!(audit[0].ip_address.as_deref(), Some("198.51.100.77"));
    let id = winner.body["cross_app_session_id"].as_str().unwrap();
    let revoked =
        t.tokens_fn(TestCall::new("DELETE", &format!("/cross-app/sessions/{id}")).cookie(Some(&cookie))).await;
    assert_eq!(revoked.status, 204);
    assert_eq!(user_at(&billing).await.status, 401, "revoking ends the target app's session");
    // Asked again: the caller's own record, already revoked: what the first answer was.
    let again = t.tokens_fn(TestCall::new("DELETE", &format!("/cross-app/sessions/{id}")).cookie(Some(&cookie))).await;
    assert_eq!(again.status, 204);
}

#[tokio::test]
async fn an_expired_handoff_token_is_refused() {
    let (t, _, h) = ann_handing_off_to_billing().await;
    t.env.clock.advance(chrono::Duration::seconds(121));
    let billing = t.sibling(&[("GATEHOUSE_APP_NAME", "billing")]);
    let r = TestApp::tokens_at(
        &billing,
        TestCall::new("POST", "/cross-app/exchange").json(json!({"handoff_token": h.body["handoff_token"]})),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (422, Some("invalid_token")));
}
