//! Hostile bytes at every route of every HTTP function: random bodies (text, and JSON objects
//! whose fields have the names the API reads and values of every type and size), random path
//! parameters, cookies, bearer tokens and content types, with and without a real session. What
//! must hold: no panic, no 500 (the stores are in memory, so nothing may fail for a reason of
//! its own), and from the JSON API an error body with a machine-readable code and a message.

use gatehouse_http::Route;
use gatehouse_tests::http::{TestApp, TestCall, TestReply};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

const PW: &str = "correct horse battery staple 42";

/// The field names the API's request bodies use.
const FIELDS: &[&str] = &[
    "name",
    "email",
    "password",
    "password_confirmation",
    "current_password",
    "remember",
    "token",
    "abilities",
    "expires_in_minutes",
    "code",
    "recovery_code",
    "challenge",
    "target_app",
    "cursor",
    "device_name",
];

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,80}".prop_map(Value::String),
        (1usize..20_000).prop_map(|n| Value::String("a".repeat(n))),
        Just(json!("ann@example.com")),
        Just(json!(PW)),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,10}", inner, 0..3).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON object with some of the API's field names, holding anything.
fn object() -> impl Strategy<Value = Option<String>> {
    prop::collection::vec((prop::sample::select(FIELDS), any_json()), 0..6).prop_map(|pairs| {
        let mut m = Map::new();
        for (k, v) in pairs {
            m.insert((*k).to_owned(), v);
        }
        Some(Value::Object(m).to_string())
    })
}

fn body() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        1 => "\\PC{0,300}".prop_map(Some),
        3 => object(),
        1 => any_json().prop_map(|v| Some(v.to_string())),
    ]
}

/// Printable ASCII: what API Gateway can hand over as a header value.
fn header_text() -> impl Strategy<Value = String> {
    "[ -~]{0,120}"
}

/// Replaces each `{param}` of a route's path with `segment`.
fn concrete(path: &str, segment: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        out.push_str(segment);
        rest = rest[open..].find('}').map_or("", |close| &rest[open + close + 1..]);
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Clone, Copy)]
enum Function {
    Login,
    Tokens,
    Reset,
    Pages,
}

#[derive(Debug, Clone)]
struct Case {
    route: usize,
    segment: String,
    body: Option<String>,
    content_type: Option<&'static str>,
    cookie: Option<String>,
    bearer: Option<String>,
    session: bool,
}

fn case(routes: usize) -> impl Strategy<Value = Case> {
    (
        0..routes,
        "[A-Za-z0-9._~%-]{0,40}",
        body(),
        prop_oneof![
            6 => Just(Some("application/json")),
            1 => Just(None),
            1 => prop::sample::select(vec![
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/json; charset=latin1",
            ])
            .prop_map(Some),
        ],
        prop::option::of(header_text()),
        prop::option::of(header_text()),
        any::<bool>(),
    )
        .prop_map(|(route, segment, body, content_type, cookie, bearer, session)| Case {
            route,
            segment,
            body,
            content_type,
            cookie,
            bearer,
            session,
        })
}

async fn send(t: &TestApp, f: Function, call: TestCall) -> TestReply {
    match f {
        Function::Login => t.login_fn(call).await,
        Function::Tokens => t.tokens_fn(call).await,
        Function::Reset => t.reset_fn(call).await,
        Function::Pages => t.pages_fn(call).await,
    }
}

#[test]
fn hostile_requests_at_every_route_get_a_clear_refusal_never_a_panic_or_a_500() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let t = TestApp::memory(&[]);
    // A signed-in session for half the cases; signed in again (or re-registered) when a case
    // ended it (a logout, an account deletion with the right password), so that the routes
    // behind a session keep being reached.
    let sign_in = || {
        rt.block_on(async {
            let mut last = String::new();
            for _ in 0..4 {
                let login = t.login("ann@example.com", PW).await;
                let reply = match login.status {
                    200 | 429 => login,
                    _ => t.register("Ann", "ann@example.com", PW).await,
                };
                if let Some(cookie) = reply.session_cookie() {
                    return cookie;
                }
                // The cases guess passwords for this very account, so its limits trip: wait them
                // out on the test's clock.
                let wait = reply.header("retry-after").and_then(|v| v.parse::<i64>().ok()).unwrap_or(61);
                t.env.clock.advance(chrono::Duration::seconds(wait + 1));
                last = format!("{} {}", reply.status, reply.raw_body);
            }
            panic!("signing in again: {last}")
        })
    };
    let session = std::cell::RefCell::new(sign_in());
    let tables: [(Function, &[Route]); 4] = [
        (Function::Login, gatehouse_login::ROUTES),
        (Function::Tokens, gatehouse_tokens::ROUTES),
        (Function::Reset, gatehouse_password_reset::ROUTES),
        (Function::Pages, gatehouse_pages::ROUTES),
    ];
    let routes: Vec<(Function, &Route)> = tables.iter().flat_map(|(f, rs)| rs.iter().map(move |r| (*f, r))).collect();
    // 1500 cases, or more in the long mode (`GATEHOUSE_PROPTEST_CASES`), never fewer.
    let cases = super::parsers::cases(1500).max(1500);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    // What the cases reached, so the test fails if the inputs stop reaching past the front door.
    let seen_routes = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let seen_answers = std::cell::RefCell::new(std::collections::BTreeMap::<String, usize>::new());
    let result = runner.run(&case(routes.len()), |c| {
        let (function, route) = routes[c.route];
        let path = concrete(route.path, &c.segment);
        let mut call = TestCall::new(route.method, &path);
        if let Some(b) = &c.body {
            call = call.raw(b);
        }
        if let Some(ct) = c.content_type {
            call = call.header("content-type", ct);
        }
        if let Some(b) = &c.bearer {
            call = call.header("authorization", b);
        }
        let cookie = if c.session { Some(session.borrow().clone()) } else { c.cookie.clone() };
        call = call.cookie(cookie.as_deref());
        let reply = rt.block_on(send(&t, function, call));
        if c.session && reply.status == 401 {
            t.env.clock.advance(chrono::Duration::seconds(61));
            *session.borrow_mut() = sign_in();
        }
        seen_routes.borrow_mut().insert(c.route);
        let answer = format!("{} {}", reply.status, reply.body["error"]["code"].as_str().unwrap_or(""));
        *seen_answers.borrow_mut().entry(answer).or_default() += 1;
        let shown: Option<String> = c.body.as_deref().map(|b| b.chars().take(120).collect());
        let what = format!("{} {path} ({shown:?})", route.method);
        if reply.status >= 500 {
            return Err(TestCaseError::fail(format!("{what}: {} {}", reply.status, reply.raw_body)));
        }
        if !matches!(function, Function::Pages) && reply.status >= 400 {
            let code = reply.body["error"]["code"].as_str().unwrap_or("");
            let message = reply.body["error"]["message"].as_str().unwrap_or("");
            if code.is_empty() || message.is_empty() {
                return Err(TestCaseError::fail(format!(
                    "{what}: {} without a code and a message: {}",
                    reply.status, reply.raw_body
                )));
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let answers = seen_answers.into_inner();
    eprintln!("answers to hostile requests: {answers:?}");
    assert_eq!(seen_routes.into_inner().len(), routes.len(), "every route was reached");
    for expected in ["401 unauthenticated", "422 validation_failed", "404 not_found"] {
        assert!(answers.contains_key(expected), "no {expected} among {answers:?}");
    }
    assert!(answers.keys().any(|a| a.starts_with('2')), "no hostile-looking request got through: {answers:?}");
}
