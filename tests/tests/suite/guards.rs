//! The router keeps every route's guard (issue #29): `dispatch` authenticates a request as its
//! route's `Guard` says before the handler runs, and the handler is given the caller it found.
//! Table-driven: every guarded route of every HTTP function's `ROUTES` is asked by nobody, by a
//! session of another app of the family (a cross-app handoff's, seed 004), by a bearer token
//! lacking what the route lists, by one holding everything and by the user's own session; what
//! each must get is said once ([`expectations`]) from the route's guard. Then the checker is shown
//! to fail: on a handler answering without the router's enforcement, and on a guard refusing
//! everyone. Beside it: what `GATEHOUSE_ROUTE_ABILITIES` asks of a route the router asks too, on
//! either kind of guard; one authentication per request (reads counted on the stores); and the
//! pages, public at the router, send a signed-out visitor to sign in, never the API's JSON. The
//! stores are in memory.

use gatehouse::tables::personal_access_tokens::OWN_ROUTE_ABILITIES;
use gatehouse_http::{App, Guard, Route};
use gatehouse_tests::TestEnv;
use gatehouse_tests::counting::{CountingSessions, CountingTokens};
use gatehouse_tests::http::{TestApp, TestCall, TestReply};
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Cheap hashing and limits out of the way: each session route is asked by a fresh account (it
/// may end its session, or the account).
const QUICK: &[(&str, &str)] = &[
    ("GATEHOUSE_ARGON2_MEMORY_KIB", "64"),
    ("GATEHOUSE_ARGON2_ITERATIONS", "1"),
    ("GATEHOUSE_APPS", "billing"),
    ("GATEHOUSE_REGISTER_PER_CLIENT_PER_HOUR", "100000"),
    ("GATEHOUSE_PASSWORD_CHECKS_PER_MINUTE", "1000"),
    ("GATEHOUSE_EXCHANGE_PER_CLIENT_PER_MINUTE", "100000"),
];

/// An ability no route lists.
const UNLISTED: &str = "reports:read";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Login,
    Tokens,
    Reset,
    Pages,
}

/// Every HTTP function and its route table.
fn functions() -> [(Function, &'static [Route]); 4] {
    [
        (Function::Login, gatehouse_login::ROUTES),
        (Function::Tokens, gatehouse_tokens::ROUTES),
        (Function::Reset, gatehouse_password_reset::ROUTES),
        (Function::Pages, gatehouse_pages::ROUTES),
    ]
}

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asker {
    /// No credential.
    Anonymous,
    /// The user's session cookie, live, but of another app of the family (`billing`).
    ForeignSession,
    /// A bearer token of the user holding only [`UNLISTED`].
    NarrowToken,
    /// A bearer token of the user holding every ability (`*`).
    StarToken,
    /// The user's own session cookie, of this app (a fresh account's on a session route).
    OwnSession,
}

/// What the guard must make of one asker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Refused by the guard: this status and error code.
    Refused(u16, &'static str),
    /// Let through: whatever the handler answers, it is none of the guard's refusals.
    Through,
}

/// What a route's guard says each asker gets: the one statement the table is checked against.
fn expectations(route: &Route) -> Vec<(Asker, Expect)> {
    use Asker::*;
    use Expect::*;
    let unauthenticated = Refused(401, "unauthenticated");
    match route.guard {
        Guard::Public => Vec::new(),
        Guard::Credential(abilities) => vec![
            (Anonymous, unauthenticated),
            (ForeignSession, unauthenticated),
            (NarrowToken, if abilities.is_empty() { Through } else { Refused(403, "forbidden") }),
            (StarToken, Through),
            (OwnSession, Through),
        ],
        Guard::Session => vec![
            (Anonymous, unauthenticated),
            (ForeignSession, unauthenticated),
            // A bearer token is not the session, however much it holds.
            (NarrowToken, unauthenticated),
            (StarToken, unauthenticated),
            (OwnSession, Through),
        ],
    }
}

/// Whether `r` is one of the guard's refusals: 401, or a 403 for a lacking ability, an unverified
/// address or a cross-site cookie.
fn guard_refusal(r: &TestReply) -> bool {
    let lacks = r.body["error"]["message"].as_str().is_some_and(|m| m.contains("lacks the"));
    r.status == 401 || (r.status == 403 && (lacks || matches!(r.error_code(), Some("email_unverified" | "csrf"))))
}

/// `path` with each `{param}` filled with a value of the shape the route reads there.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = open + rest[open..].find('}').expect("a closed parameter");
        let value = match (&rest[open + 1..close], path) {
            // A handle from `GET /sessions`, a passkey's credential id: 22 URL-safe characters.
            ("id", p) if p.starts_with("/sessions/") || p.starts_with("/user/passkeys/") => {
                "AAAAAAAAAAAAAAAAAAAAAA".to_owned()
            }
            // A token's, a cross-app session's, a user's id.
            ("id", _) => uuid::Uuid::now_v7().to_string(),
            ("hash", _) => "0".repeat(40),
            // An OAuth client's id: 32 hex characters.
            ("client_id", _) => "0123456789abcdef0123456789abcdef".to_owned(),
            // An identity provider's configured id.
            ("provider", _) => "google".to_owned(),
            (other, _) => panic!("{path}: no value for {{{other}}}: say what it takes here"),
        };
        out.push_str(&value);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

async fn send(t: &TestApp, f: Function, call: TestCall) -> TestReply {
    send_at(&t.app, f, call).await
}

/// `call` to function `f` of the deployment `app`.
async fn send_at(app: &App, f: Function, call: TestCall) -> TestReply {
    let req = call.request();
    TestReply::from(match f {
        Function::Login => gatehouse_login::handle(app, req).await,
        Function::Tokens => gatehouse_tokens::handle(app, req).await,
        Function::Reset => gatehouse_password_reset::handle(app, req).await,
        Function::Pages => gatehouse_pages::handle(app, req).await,
    })
}

/// The user's credentials, one of each asker's.
struct Askers {
    own: String,
    foreign: String,
    narrow: String,
    star: String,
}

async fn token(t: &TestApp, cookie: &str, body: serde_json::Value) -> String {
    let r = t.create_token(cookie, body).await;
    assert_eq!(r.status, 201, "{}", r.raw_body);
    r.body["token"].as_str().expect("a token").to_owned()
}

static ACCOUNTS: AtomicUsize = AtomicUsize::new(0);

/// A fresh account's session cookie (its password confirmed).
async fn fresh_session(t: &TestApp) -> String {
    t.signed_up(&format!("guard{}@example.com", ACCOUNTS.fetch_add(1, Ordering::Relaxed))).await
}

async fn askers(t: &TestApp) -> Askers {
    let own = fresh_session(t).await;
    let narrow = token(t, &own, json!({ "name": "narrow", "abilities": [UNLISTED] })).await;
    let star = token(t, &own, json!({ "name": "star" })).await;
    let handoff =
        TestCall::new("POST", "/cross-app/handoff").cookie(Some(&own)).json(json!({ "target_app": "billing" }));
    let h = t.tokens_fn(handoff).await;
    assert_eq!(h.status, 201, "{}", h.raw_body);
    let billing = t.sibling(&[QUICK, &[("GATEHOUSE_APP_NAME", "billing")]].concat());
    let exchange =
        TestCall::new("POST", "/cross-app/exchange").json(json!({ "handoff_token": h.body["handoff_token"] }));
    let foreign = TestApp::tokens_at(&billing, exchange).await.session_cookie().expect("billing's session");
    let at_billing = TestApp::login_at(&billing, TestCall::new("GET", "/user").cookie(Some(&foreign))).await;
    assert_eq!(at_billing.status, 200, "a live session, of billing: {}", at_billing.raw_body);
    Askers { own, foreign, narrow, star }
}

/// The request `asker` makes of `route`: the path filled in, `{}` as the body of a route that
/// takes one.
async fn request(t: &TestApp, route: &Route, asker: Asker, a: &Askers) -> TestCall {
    let mut call = TestCall::new(route.method, &concrete(route.path));
    if route.body.is_some() {
        call = call.json(json!({}));
    }
    match asker {
        Asker::Anonymous => call,
        Asker::ForeignSession => call.cookie(Some(&a.foreign)),
        Asker::NarrowToken => call.bearer(&a.narrow),
        Asker::StarToken => call.bearer(&a.star),
        // A session route may end its session or the account: a fresh one each time.
        Asker::OwnSession if route.guard == Guard::Session => call.cookie(Some(&fresh_session(t).await)),
        Asker::OwnSession => call.cookie(Some(&a.own)),
    }
}

/// Every way the guards of `tables` are not kept when requests are sent with `send` (the real
/// functions, or a stand-in for the self-tests), and how many (route, asker) pairs were checked.
async fn violations<F, Fut>(t: &TestApp, tables: &[(Function, &[Route])], send: F) -> (Vec<String>, usize)
where
    F: Fn(Function, TestCall) -> Fut,
    Fut: Future<Output = TestReply>,
{
    let a = askers(t).await;
    let (mut found, mut checked) = (Vec::new(), 0);
    for (function, routes) in tables {
        for route in routes.iter() {
            for (asker, expect) in expectations(route) {
                let reply = send(*function, request(t, route, asker, &a).await).await;
                checked += 1;
                let kept = match expect {
                    Expect::Refused(status, code) => reply.status == status && reply.error_code() == Some(code),
                    Expect::Through => !guard_refusal(&reply),
                };
                if !kept {
                    found.push(format!(
                        "{function:?} {} by {asker:?}: expected {expect:?}, got {} {}",
                        route.key(),
                        reply.status,
                        reply.raw_body
                    ));
                }
            }
        }
    }
    (found, checked)
}

/// The real functions, but `GET /user` answers 200 to anyone, as its handler run outside
/// `dispatch` (without the router's enforcement) would.
fn unguarded<'a>(t: &'a TestApp) -> impl Fn(Function, TestCall) -> Pin<Box<dyn Future<Output = TestReply> + 'a>> + 'a {
    move |f, call| {
        if f == Function::Login && call.method == "GET" && call.path == "/user" {
            let answer = gatehouse_http::json(lambda_http::http::StatusCode::OK, &json!({ "user": {} }));
            return Box::pin(async move { TestReply::from(answer) });
        }
        Box::pin(send(t, f, call))
    }
}

/// Every request refused as unauthenticated.
fn refusing(_: Function, _: TestCall) -> Pin<Box<dyn Future<Output = TestReply>>> {
    Box::pin(async { TestReply::from(gatehouse_http::ApiError::unauthenticated().into_response()) })
}

/// Every request through `dispatch` with the [`CARELESS`] table.
fn careless<'a>(t: &'a TestApp) -> impl Fn(Function, TestCall) -> Pin<Box<dyn Future<Output = TestReply> + 'a>> + 'a {
    move |_, call| {
        Box::pin(async move { TestReply::from(gatehouse_http::dispatch(&t.app, CARELESS, call.request()).await) })
    }
}

#[tokio::test]
async fn every_guarded_route_of_every_function_is_kept_by_the_router() {
    let t = TestApp::memory(QUICK);
    let tables = functions();
    for (_, routes) in &tables {
        for r in routes.iter() {
            assert!(!r.abilities().contains(&UNLISTED), "{}: pick another unlisted ability", r.key());
        }
    }
    let (found, checked) = violations(&t, &tables, |f, call| send(&t, f, call)).await;
    assert!(found.is_empty(), "guards not kept:\n{}", found.join("\n"));
    let guarded: Vec<String> =
        tables.iter().flat_map(|(_, rs)| rs.iter()).filter(|r| !r.public()).map(Route::key).collect();
    // Five askers per guarded route: every one of them was asked.
    assert_eq!(checked, 5 * guarded.len());
    // Today's tables: 35 guarded routes (login 29, tokens 6; the pages' and the OAuth endpoints'
    // are all public: they authenticate their clients themselves), and
    // every ability gatehouse's routes require listed in a guard, so a narrow token is refused it.
    assert_eq!(guarded.len(), 35, "{guarded:?}");
    let listing: Vec<String> =
        tables.iter().flat_map(|(_, rs)| rs.iter()).filter(|r| !r.abilities().is_empty()).map(Route::key).collect();
    for (key, _) in OWN_ROUTE_ABILITIES {
        assert!(listing.contains(&(*key).to_owned()), "{key} lists its ability in its guard");
    }
}

/// What `GATEHOUSE_ROUTE_ABILITIES` asks of a route is asked by the router too, on either kind of
/// guard: here every guarded route asks for an extra ability and a verified address.
#[tokio::test]
async fn the_configured_requirements_of_every_guarded_route_are_judged_by_the_router() {
    let guarded: Vec<String> =
        functions().iter().flat_map(|(_, rs)| rs.iter()).filter(|r| !r.public()).map(Route::key).collect();
    let spec: Vec<String> =
        guarded.iter().flat_map(|k| [format!("{k}=extra:read"), format!("{k}={}", "verified")]).collect();
    let spec = spec.join(",");
    // The credentials are made by a deployment that asks nothing more; the one under test shares
    // its tables.
    let t = TestApp::memory(QUICK);
    let strict = t.sibling(&[QUICK, &[("GATEHOUSE_ROUTE_ABILITIES", spec.as_str())]].concat());
    let own = fresh_session(&t).await;
    let every_listed: Vec<&str> = functions()
        .iter()
        .flat_map(|(_, rs)| rs.iter().flat_map(|r| r.abilities().iter().copied()))
        .chain([UNLISTED])
        .collect();
    let listed = token(&t, &own, json!({ "name": "listed", "abilities": every_listed })).await;
    let mut checked = 0;
    for (function, routes) in functions() {
        for route in routes.iter().filter(|r| !r.public()) {
            let call = || TestCall::new(route.method, &concrete(route.path));
            let with_body = |c: TestCall| if route.body.is_some() { c.json(json!({})) } else { c };
            // An unverified account's session: every ability, but not the verified address.
            let session = send_at(&strict, function, with_body(call().cookie(Some(&fresh_session(&t).await)))).await;
            assert_eq!(
                (session.status, session.error_code()),
                (403, Some("email_unverified")),
                "{}: {}",
                route.key(),
                session.raw_body
            );
            let token = send_at(&strict, function, with_body(call().bearer(&listed))).await;
            let expected = match route.guard {
                Guard::Session => (401, Some("unauthenticated")),
                _ => (403, Some("forbidden")),
            };
            assert_eq!((token.status, token.error_code()), expected, "{}: {}", route.key(), token.raw_body);
            if route.guard != Guard::Session {
                assert!(token.raw_body.contains("extra:read"), "{}: {}", route.key(), token.raw_body);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, guarded.len());
}

/// One authentication per request: the guard reads the credential the route takes once (none when
/// there is none, or only a bearer token where the session is needed), and no handler reads it
/// again. Counted on the stores for every (route, asker) pair; the same counts, statuses and
/// codes as before the router enforced the guards (they were compared when it began to).
#[tokio::test]
async fn the_guard_reads_the_credential_once_and_the_handler_never_again() {
    let mut env = TestEnv::memory();
    let sessions = CountingSessions::wrap(env.stores.sessions.clone());
    let tokens = CountingTokens::wrap(env.stores.personal_access_tokens.clone());
    env.stores.sessions = sessions.clone();
    env.stores.personal_access_tokens = tokens.clone();
    let t = TestApp::with(env, QUICK);
    let a = askers(&t).await;
    let mut wrong = Vec::new();
    for (function, routes) in functions() {
        for route in routes.iter() {
            for (asker, expect) in expectations(route) {
                let guard_reads = match (asker, route.guard) {
                    (Asker::Anonymous, _) => (0, 0),
                    (Asker::ForeignSession | Asker::OwnSession, _) => (1, 0),
                    (Asker::NarrowToken | Asker::StarToken, Guard::Session) => (0, 0),
                    (Asker::NarrowToken | Asker::StarToken, _) => (0, 1),
                };
                // What a handler reads besides the caller: the token it is asked to revoke; what
                // a first logout left, when its retry is refused (`refused =`).
                let (key, through) = (route.key(), expect == Expect::Through);
                let own = match (key.as_str(), asker) {
                    ("DELETE /tokens/{id}", _) if through => (0, 1),
                    ("POST /logout", Asker::ForeignSession) => (1, 0),
                    _ => (0, 0),
                };
                let expected = (guard_reads.0 + own.0, guard_reads.1 + own.1);
                let call = request(&t, route, asker, &a).await;
                let before = (sessions.finds(), tokens.finds());
                send(&t, function, call).await;
                let reads = (sessions.finds() - before.0, tokens.finds() - before.1);
                if reads != expected {
                    wrong.push(format!("{key} by {asker:?}: (session, token) reads {reads:?}, expected {expected:?}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The pages are public at the router; the API routes they call in process keep their guards,
/// and a signed-out visitor gets what a page gives (a redirect to sign in), never the API's JSON.
/// Every form is posted as the site's own page would (its CSRF token, the site's origin), so that
/// it reaches the API call behind it.
#[tokio::test]
async fn a_signed_out_visitor_gets_pages_and_redirects_never_the_apis_json() {
    let t = TestApp::memory(QUICK);
    let shown = t.pages_fn(TestCall::new("GET", "/account/sign-in")).await;
    let browser = shown
        .set_cookies()
        .into_iter()
        .find(|c| c.contains("_csrf="))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
        .expect("the pre-session cookie");
    let marker = r#"name="_token" value=""#;
    let at = shown.raw_body.find(marker).expect("a form") + marker.len();
    let token = &shown.raw_body[at..at + shown.raw_body[at..].find('"').unwrap()];
    let mut behind_the_session = 0;
    for route in gatehouse_pages::ROUTES {
        assert!(route.public(), "{}", route.key());
        let path = if route.path.contains("{file}") {
            route.path.replace("{file}", "style.css")
        } else {
            concrete(route.path)
        };
        let mut call = TestCall::new(route.method, &path).header("cookie", &browser);
        if route.method == "POST" {
            let body = format!("_token={token}");
            call = call
                .raw(&body)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "same-origin")
                .header("origin", "https://api.example.test");
        }
        let r = t.pages_fn(call).await;
        let key = route.key();
        let what = format!("{key}: {} {:?} {}", r.status, r.header("location"), r.raw_body);
        assert!(r.status < 500 && r.header("content-type").is_none_or(|c| c.starts_with("text/html")), "{what}");
        if !FOR_EVERYONE.contains(&key.as_str()) {
            assert_eq!((r.status, r.header("location")), (303, Some("/account/sign-in")), "{what}");
            behind_the_session += 1;
        }
    }
    for key in FOR_EVERYONE {
        assert!(gatehouse_pages::ROUTES.iter().any(|r| r.key() == *key), "{key} is no page");
    }
    assert_eq!(behind_the_session, 20);
}

/// The pages a signed-out visitor uses (or that send them on): every other page is the account's.
const FOR_EVERYONE: &[&str] = &[
    "GET /account/assets/{file}",
    "GET /account/sign-in",
    "POST /account/sign-in",
    "POST /account/two-factor-challenge",
    "POST /account/sign-out",
    // Sign-in by mail: asking, the code, the mailed link's landing.
    "GET /account/email-link",
    "POST /account/email-link",
    "POST /account/email-link/complete",
    "GET /account/register",
    "POST /account/register",
    "GET /account/forgot-password",
    "POST /account/forgot-password",
    "GET /account/reset-password",
    "POST /account/reset-password",
    "GET /account/verify-email/{id}/{hash}",
    "GET /account/verify-email",
    // The OAuth provider's endpoints: a request they cannot accept is said on the page, a good
    // one sends the signed-out visitor to sign in (tests/tests/suite/oauth.rs), and a logout
    // with no session goes back to its client.
    "GET /account/oauth/authorize",
    "POST /account/oauth/authorize",
    "GET /account/oauth/logout",
    "POST /account/oauth/logout",
    // Social sign-in: beginning it and the provider's answer (a flow of another browser, or
    // none, is refused on the page).
    "POST /account/providers/{provider}",
    "GET /account/providers/{provider}/callback",
    "POST /account/providers/{provider}/callback",
];

/// The checker fails on a guarded route whose handler answers without the router's enforcement
/// (here: `GET /user` answered 200 to anyone, as a handler run outside `dispatch` would), and names
/// that route only.
#[tokio::test]
async fn the_checker_catches_a_handler_answering_without_the_guard() {
    let t = TestApp::memory(QUICK);
    let (found, _) = violations(&t, &functions(), unguarded(&t)).await;
    assert_eq!(found.len(), 2, "anonymous and the foreign session: {found:#?}");
    assert!(found.iter().all(|v| v.starts_with("Login GET /user by ")), "{found:#?}");
}

/// The checker fails on a guard that refuses everyone (a router that let nobody through would
/// keep every refusal).
#[tokio::test]
async fn the_checker_catches_a_guard_refusing_everyone() {
    let t = TestApp::memory(QUICK);
    let (found, checked) = violations(&t, &functions(), refusing).await;
    let through: usize = functions()
        .iter()
        .flat_map(|(_, rs)| rs.iter())
        .map(|r| expectations(r).iter().filter(|(_, e)| *e == Expect::Through).count())
        .sum();
    let forbidden: usize = functions()
        .iter()
        .flat_map(|(_, rs)| rs.iter())
        .map(|r| expectations(r).iter().filter(|(_, e)| *e == Expect::Refused(403, "forbidden")).count())
        .sum();
    assert_eq!(found.len(), through + forbidden, "of {checked}: {found:#?}");
}

async fn nothing(_: gatehouse_http::Call<'_>) -> gatehouse_http::Reply {
    Ok(gatehouse_http::no_content())
}

/// A table whose handlers ignore the caller entirely, built by hand (not with `route!`): the
/// router still keeps every guard, so the checker finds nothing. The guard is the router's, not
/// the handler's.
static CARELESS: &[Route] = &[
    Route {
        method: "POST",
        path: "/tokens",
        guard: Guard::Credential(&["tokens:create"]),
        body: None,
        handler: |_, _| Box::pin(async { Ok(gatehouse_http::no_content()) }),
        refused: None,
    },
    Route {
        method: "GET",
        path: "/user",
        guard: Guard::Credential(&[]),
        body: None,
        handler: |_, _| Box::pin(async { Ok(gatehouse_http::no_content()) }),
        refused: None,
    },
    Route {
        method: "POST",
        path: "/logout",
        guard: Guard::Session,
        body: None,
        handler: |_, _| Box::pin(async { Ok(gatehouse_http::no_content()) }),
        refused: None,
    },
    gatehouse_http::route!(POST "/login", Guard::Public, nothing),
];

#[tokio::test]
async fn the_router_keeps_the_guard_of_a_handler_that_ignores_its_caller() {
    let t = TestApp::memory(QUICK);
    let (found, checked) = violations(&t, &[(Function::Login, CARELESS)], careless(&t)).await;
    assert!(found.is_empty(), "{found:#?}");
    assert_eq!(checked, 15);
}
