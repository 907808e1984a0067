//! Issue 28 at the edge: the authorizer holds cookie-authenticated state changes to gatehouse's
//! own Origin / `Sec-Fetch-Site` rule and tells the backend which credential it saw; route keys
//! are checked at start-up and, when the API's routes are listed, the authorizer refuses any
//! other; a session cookie sent twice (cookie tossing) is no session; reset mail is capped per
//! address per day; the hosted reset page names an address only for a link that checks out.
//! Stores in memory: none of this needs DynamoDB.

use aws_lambda_events::apigw::{ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request};
use gatehouse::Clock;
use gatehouse::mail::LogMailer;
use gatehouse::routes::RouteAbilities;
use gatehouse_tests::http::{TestApp, TestCall, TestReply};
use gatehouse_tests::jobs::drain;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

const PW: &str = "correct horse battery staple 42";

/// Registers `email` and returns the `name=value` of the session cookie the answer set (under
/// whatever name the configuration gives it).
async fn session_of(t: &TestApp, email: &str) -> String {
    let r = t.register("Ann", email, PW).await;
    assert_eq!(r.status, 201, "{}", r.raw_body);
    let name = &t.app.config.session.cookie_name;
    r.set_cookies()
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")) && !c.contains("Max-Age=0"))
        .and_then(|c| c.split(';').next().map(str::to_owned))
        .expect("a session cookie")
}

/// The authorizer's answer to `route_key` as API Gateway asks it, with `headers`, a bearer token
/// and the given cookies.
async fn authorize(
    t: &TestApp,
    abilities: &RouteAbilities,
    route_key: &str,
    headers: &[(&str, &str)],
    bearer: Option<&str>,
    cookies: &[&str],
) -> ApiGatewayV2CustomAuthorizerSimpleResponse<Value> {
    let mut b = gatehouse_tests::http::authorizer_request(route_key);
    for (k, v) in headers {
        b = b.header(k, v);
    }
    if let Some(token) = bearer {
        b = b.header("authorization", &format!("Bearer {token}"));
    }
    for c in cookies {
        b = b.cookie(c);
    }
    let event: ApiGatewayV2CustomAuthorizerV2Request = serde_json::from_value(b.authorizer()).expect("an event");
    gatehouse_token_check::authorize(&t.app.access, abilities, event).await
}

#[tokio::test]
async fn the_authorizer_refuses_a_cross_site_state_change_made_with_the_session_cookie() {
    let t = TestApp::memory(&[("GATEHOUSE_ALLOWED_ORIGINS", "https://app.example.test")]);
    let cookie = session_of(&t, "ann@example.com").await;
    let token = t.create_token(&cookie, json!({ "name": "ci", "abilities": ["read"], "expires_in_minutes": 60 })).await;
    assert_eq!(token.status, 201, "{}", token.raw_body);
    let token = token.body["token"].as_str().expect("the plaintext").to_owned();
    let table = RouteAbilities::parse("").unwrap();
    let by_cookie = |route: &'static str, headers: &'static [(&'static str, &'static str)]| {
        let (t, table, cookie) = (&t, &table, cookie.clone());
        async move { authorize(t, table, route, headers, None, &[&cookie]).await.is_authorized }
    };

    // What a sibling subdomain or any other site sends with the user's cookie.
    assert!(!by_cookie("POST /reports", &[("sec-fetch-site", "cross-site")]).await);
    assert!(!by_cookie("POST /reports", &[("origin", "https://evil.example")]).await);
    let sibling = &[("sec-fetch-site", "same-site"), ("origin", "https://shop.example.test")];
    assert!(!by_cookie("POST /reports", sibling).await, "a sibling subdomain is another origin");
    assert!(!by_cookie("DELETE /reports/{id}", &[("origin", "null")]).await);
    assert!(!by_cookie("PUT /reports/{id}", &[("origin", "http://api.example.test")]).await);

    // The API's own pages, an allowed origin, a typed address, a client that is no browser.
    assert!(by_cookie("POST /reports", &[("sec-fetch-site", "same-origin")]).await);
    assert!(by_cookie("POST /reports", &[("origin", "https://api.example.test")]).await);
    assert!(
        by_cookie("POST /reports", &[("sec-fetch-site", "same-site"), ("origin", "https://app.example.test")]).await
    );
    assert!(by_cookie("POST /reports", &[("sec-fetch-site", "none")]).await);
    assert!(by_cookie("POST /reports", &[]).await);
    // Reading changes nothing.
    assert!(by_cookie("GET /reports", &[("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")]).await);
    // A page cannot make a browser send a bearer token.
    let cross = &[("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")];
    assert!(authorize(&t, &table, "POST /reports", cross, Some(&token), &[]).await.is_authorized);
}

#[tokio::test]
async fn the_authorizer_tells_the_backend_which_credential_it_saw() {
    let t = TestApp::memory(&[]);
    let cookie = session_of(&t, "ann@example.com").await;
    let token = t.create_token(&cookie, json!({ "name": "ci", "abilities": ["read"], "expires_in_minutes": 60 })).await;
    let token = token.body["token"].as_str().expect("the plaintext").to_owned();
    let table = RouteAbilities::parse("").unwrap();

    let session = authorize(&t, &table, "GET /reports", &[], None, &[&cookie]).await;
    assert!(session.is_authorized);
    assert_eq!(session.context["credential"], "session");
    assert!(session.context["session_id"].is_string() && session.context.get("token_id").is_none());
    let by_token = authorize(&t, &table, "GET /reports", &[], Some(&token), &[]).await;
    assert!(by_token.is_authorized);
    assert_eq!(by_token.context["credential"], "token");
    assert!(by_token.context["token_id"].is_string() && by_token.context.get("session_id").is_none());
}

/// The configuration error for these variables, as `VAR: problem`.
fn config_error(vars: &[(&str, &str)]) -> Option<String> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    gatehouse::Config::from_map(&map).err().map(|e| e.to_string())
}

#[test]
fn a_route_key_that_is_not_one_of_the_apis_routes_is_a_start_up_error() {
    const ABILITIES: &str = "GATEHOUSE_ROUTE_ABILITIES";
    const ROUTES: &str = "GATEHOUSE_CUSTOMER_ROUTES";
    // Whatever the API's other routes: a method API Gateway does not know, a path that is none,
    // and a gatehouse path with another method or parameter name (a route it does not serve).
    for typo in [
        "GTE /reports=reports:read",
        "get /reports=reports:read",
        "GET reports=reports:read",
        "DELETE /tokens=verified",
        "GET /tokens/{id}=verified",
        "DELETE /tokens/{token}=verified",
        "PATCH /user=verified",
    ] {
        let e = config_error(&[(ABILITIES, typo)]).unwrap_or_else(|| panic!("{typo} was accepted"));
        assert!(e.starts_with(ABILITIES), "{typo}: {e}");
    }
    assert_eq!(config_error(&[(ABILITIES, "GET /reports=reports:read,GET /tokens=verified")]), None);

    // With the API's own routes listed, every key must be one of them or gatehouse's.
    let listed = (ROUTES, "GET /reports, POST /reports");
    for typo in ["POST /token=verified", "GET /report=reports:read", "DELETE /reports=reports:write"] {
        let e = config_error(&[listed, (ABILITIES, typo)]).unwrap_or_else(|| panic!("{typo} was accepted"));
        assert!(e.starts_with(ABILITIES) && e.contains("not one of the API's routes"), "{typo}: {e}");
    }
    let fine = "GET /reports=reports:read,POST /reports=reports:write,POST /tokens=verified";
    assert_eq!(config_error(&[listed, (ABILITIES, fine)]), None);
    // The list itself is checked alike.
    for bad in ["reports", "GET /reports,FETCH /x", "PATCH /user"] {
        let e = config_error(&[(ROUTES, bad)]).unwrap_or_else(|| panic!("{bad} was accepted"));
        assert!(e.starts_with(ROUTES), "{bad}: {e}");
    }
}

#[tokio::test]
async fn the_authorizer_refuses_a_route_the_customer_routes_do_not_list() {
    let vars = [("GATEHOUSE_ROUTE_ABILITIES", "POST /reports=reports:write")];
    let listed = TestApp::memory(&[vars[0], ("GATEHOUSE_CUSTOMER_ROUTES", "GET /reports,POST /reports")]);
    let cookie = session_of(&listed, "ann@example.com").await;
    let table = &listed.app.config.route_abilities;
    assert!(authorize(&listed, table, "GET /reports", &[], None, &[&cookie]).await.is_authorized);
    assert!(authorize(&listed, table, "POST /reports", &[], None, &[&cookie]).await.is_authorized);
    // A route added to the API but not to the list (or named with a typo in either) fails closed.
    for unknown in ["GET /reprots", "DELETE /reports", "GET /billing"] {
        assert!(!authorize(&listed, table, unknown, &[], None, &[&cookie]).await.is_authorized, "{unknown}");
    }

    // Unlisted, the authorizer cannot know the API's routes: any route is judged on its entries.
    let unlisted = TestApp::memory(&vars);
    let cookie = session_of(&unlisted, "ann@example.com").await;
    let table = &unlisted.app.config.route_abilities;
    assert!(authorize(&unlisted, table, "GET /billing", &[], None, &[&cookie]).await.is_authorized);
}

#[tokio::test]
async fn a_session_cookie_sent_twice_is_no_session() {
    let t = TestApp::memory(&[("GATEHOUSE_SESSION_DOMAIN", "example.test")]);
    let victim = session_of(&t, "ann@example.com").await;
    let planted = session_of(&t, "mallory@example.com").await;
    assert!(victim.starts_with("__Secure-gatehouse_session=") && planted.starts_with("__Secure-gatehouse_session="));
    let me = |cookies: Vec<&str>| {
        let call = cookies.into_iter().fold(TestCall::new("GET", "/user"), |c, v| c.cookie(Some(v)));
        t.login_fn(call)
    };

    let alone = me(vec![&victim]).await;
    assert_eq!((alone.status, alone.body["user"]["email"].as_str()), (200, Some("ann@example.com")));
    // A sibling subdomain set its own session cookie for the parent domain: the browser sends
    // both, in an order the other site can sway. Neither is taken.
    for both in [vec![planted.as_str(), victim.as_str()], vec![victim.as_str(), planted.as_str()]] {
        let r = me(both).await;
        assert_eq!((r.status, r.error_code()), (401, Some("unauthenticated")), "{}", r.raw_body);
    }
    let table = RouteAbilities::parse("").unwrap();
    assert!(authorize(&t, &table, "GET /reports", &[], None, &[&victim]).await.is_authorized);
    assert!(!authorize(&t, &table, "GET /reports", &[], None, &[&planted, &victim]).await.is_authorized);
}

/// Mails of the subject "Reset your password" sent so far.
fn reset_mails(mailer: &LogMailer) -> usize {
    mailer.sent().iter().filter(|m| m.subject == "Reset your password").count()
}

fn forgot(email: &str, ip: &str) -> TestCall {
    TestCall::new("POST", "/forgot-password").from_ip(ip).json(json!({ "email": email }))
}

#[tokio::test]
async fn reset_mail_is_capped_per_address_per_day_from_any_number_of_clients() {
    let t = TestApp::memory(&[("GATEHOUSE_RESET_MAILS_PER_DAY", "3")]);
    // The run starts an hour into a UTC day, so it stays within one day's count.
    let now = t.env.clock.now().timestamp();
    t.env.clock.advance(chrono::Duration::seconds(86_400 - now.rem_euclid(86_400) + 3600));
    t.register("Ann", "ann@example.com", PW).await;
    let mailer = LogMailer::quiet();
    let worker = t.worker(Arc::new(mailer.clone()));
    drain(&worker, 5).await;

    // Asking again at once spends none of the day's links (the throttle window's one link).
    let first = t.reset_fn(forgot("ann@example.com", "198.51.100.1")).await;
    assert_eq!(first.status, 202);
    for i in 2..=5 {
        let again = t.reset_fn(forgot("ann@example.com", &format!("198.51.100.{i}"))).await;
        assert_eq!((again.status, &again.raw_body), (first.status, &first.raw_body));
    }
    drain(&worker, 10).await;
    assert_eq!(reset_mails(&mailer), 1);

    // A request a minute from ever-new clients: three links a day, then the same answer as for
    // an address nobody has, and nothing mailed.
    for i in 10..30 {
        t.env.clock.advance(chrono::Duration::seconds(61));
        let known = t.reset_fn(forgot("ann@example.com", &format!("198.51.100.{i}"))).await;
        let unknown = t.reset_fn(forgot("nobody@example.com", &format!("198.51.100.{}", i + 100))).await;
        assert_eq!((known.status, &known.raw_body), (202, &first.raw_body));
        assert_eq!(
            (known.status, &known.raw_body, &known.headers),
            (unknown.status, &unknown.raw_body, &unknown.headers)
        );
        drain(&worker, 10).await;
    }
    assert_eq!(reset_mails(&mailer), 3, "three a day, from any number of clients");

    // The next day brings the next link.
    t.env.clock.advance(chrono::Duration::days(1));
    assert_eq!(t.reset_fn(forgot("ann@example.com", "198.51.100.200")).await.status, 202);
    drain(&worker, 10).await;
    assert_eq!(reset_mails(&mailer), 4);
}

/// The `name=value` of the cookie `r` sets whose name ends in `suffix`.
fn cookie_set(r: &TestReply, suffix: &str) -> String {
    r.set_cookies()
        .into_iter()
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
        .find(|c| c.split_once('=').is_some_and(|(n, _)| n.ends_with(suffix)))
        .unwrap_or_else(|| panic!("no {suffix} cookie in {:?}", r.set_cookies()))
}

/// The reset page a browser is shown after landing on `link` (path and query).
async fn reset_page_after(t: &TestApp, link: &str) -> TestReply {
    let landing = t.pages_fn(TestCall::new("GET", link)).await;
    assert_eq!((landing.status, landing.header("location")), (303, Some("/account/reset-password")));
    let cookie = cookie_set(&landing, "_reset");
    t.pages_fn(TestCall::new("GET", "/account/reset-password").cookie(Some(&cookie))).await
}

#[tokio::test]
async fn the_reset_page_names_an_address_only_for_a_link_whose_token_checks_out() {
    let t = TestApp::memory(&[]);
    t.register("Ann", "ann@example.com", PW).await;
    let mailer = LogMailer::quiet();
    let worker = t.worker(Arc::new(mailer.clone()));

    // A page elsewhere sends the browser to the landing with a well-formed link of its making.
    let planted =
        reset_page_after(&t, &format!("/account/reset-password?token={}&email=ann%40example.com", "ab".repeat(32)))
            .await;
    assert!(!planted.raw_body.contains("ann@example.com"), "{}", planted.raw_body);
    let chosen = reset_page_after(
        &t,
        &format!("/account/reset-password?token={}&email=billing%40evil.example", "cd".repeat(32)),
    )
    .await;
    assert!(!chosen.raw_body.contains("evil.example"), "{}", chosen.raw_body);

    // The mailed link names its address.
    assert_eq!(t.reset_fn(forgot("ann@example.com", "198.51.100.1")).await.status, 202);
    drain(&worker, 10).await;
    let mail = mailer.sent().into_iter().find(|m| m.subject == "Reset your password").expect("a reset mail");
    let url = mail.text.split_whitespace().find(|w| w.contains("/account/reset-password?")).expect("a link");
    let link = &url[url.find("/account/").expect("a path")..];
    let genuine = reset_page_after(&t, link).await;
    assert_eq!(genuine.status, 200);
    assert!(genuine.raw_body.contains("ann@example.com"), "{}", genuine.raw_body);
    // The token of another address's link names neither.
    let token = link.split("token=").nth(1).and_then(|r| r.split('&').next()).expect("a token");
    let swapped =
        reset_page_after(&t, &format!("/account/reset-password?token={token}&email=billing%40evil.example")).await;
    assert!(!swapped.raw_body.contains("evil.example") && !swapped.raw_body.contains("ann@example.com"));
}

#[test]
fn gatehouses_route_list_is_its_route_tables() {
    let mut tables: Vec<String> = [
        gatehouse_login::ROUTES,
        gatehouse_tokens::ROUTES,
        gatehouse_password_reset::ROUTES,
        gatehouse_pages::ROUTES,
        gatehouse_oauth::ROUTES,
    ]
    .iter()
    .flat_map(|routes| routes.iter().map(gatehouse_http::Route::key))
    .collect();
    tables.sort();
    let mut listed: Vec<String> = gatehouse::routes::GATEHOUSE_ROUTES.iter().map(|r| r.key.to_string()).collect();
    listed.sort();
    assert_eq!(listed, tables, "gatehouse::routes::GATEHOUSE_ROUTES and the functions' route tables");
    let mut public: Vec<String> = [
        gatehouse_login::ROUTES,
        gatehouse_tokens::ROUTES,
        gatehouse_password_reset::ROUTES,
        gatehouse_pages::ROUTES,
        gatehouse_oauth::ROUTES,
    ]
    .iter()
    .flat_map(|routes| routes.iter().filter(|r| r.public()).map(gatehouse_http::Route::key))
    .collect();
    public.sort();
    let mut listed: Vec<String> =
        gatehouse::routes::GATEHOUSE_ROUTES.iter().filter(|r| r.public).map(|r| r.key.to_string()).collect();
    listed.sort();
    assert_eq!(listed, public, "the public routes of gatehouse::routes::GATEHOUSE_ROUTES and of the route tables");
    // A requirement on one is a start-up error: nothing would judge it.
    let refused = RouteAbilities::parse("POST /tokens/issue=verified");
    assert!(refused.is_err(), "{refused:?}");
}
