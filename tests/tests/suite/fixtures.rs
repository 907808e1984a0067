//! Events as AWS sends them (`tests/fixtures/*.json`, written after AWS's documented payloads):
//! they read as the types the functions take, the events the tests and `gatehouse serve` build
//! have the same shape (so the builder cannot drift from AWS's), and the functions, run over the
//! in-memory stores, accept them.

use aws_lambda_events::apigw::{ApiGatewayV2CustomAuthorizerV2Request, ApiGatewayV2httpRequest};
use aws_lambda_events::sqs::SqsEvent;
use base64::Engine;
use gatehouse::tables::jobs::JobPayload;
use gatehouse_http::event::EventBuilder;
use gatehouse_tests::http::{TestApp, TestCall, TestReply, sqs_event};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const PW: &str = "correct horse battery staple 42";
const LOGIN: &str = "apigw-v2-request-post-login.json";
const BASE64: &str = "apigw-v2-request-base64-body.json";
const AUTHORIZER: &str = "apigw-v2-authorizer-request.json";
const SQS: &str = "sqs-event-two-records.json";

fn text(name: &str) -> String {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture(name: &str) -> Value {
    serde_json::from_str(&text(name)).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

fn request(name: &str) -> lambda_http::Request {
    lambda_http::request::from_str(&text(name)).unwrap_or_else(|e| panic!("{name} is not an HTTP API event: {e}"))
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().cloned().collect()
}

/// Same keys at the top, in `requestContext` and in `requestContext.http`.
fn assert_same_shape(built: &Value, real: &Value, what: &str) {
    assert_eq!(keys(built), keys(real), "{what}: top-level keys");
    assert_eq!(keys(&built["requestContext"]), keys(&real["requestContext"]), "{what}: requestContext keys");
    assert_eq!(
        keys(&built["requestContext"]["http"]),
        keys(&real["requestContext"]["http"]),
        "{what}: requestContext.http keys"
    );
}

/// A builder fed everything the real event says about its request.
fn builder_like(real: &Value) -> EventBuilder {
    let ctx = &real["requestContext"];
    let s = |v: &Value| v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_owned();
    let mut target = s(&real["rawPath"]);
    if !s(&real["rawQueryString"]).is_empty() {
        target = format!("{target}?{}", s(&real["rawQueryString"]));
    }
    let mut b = EventBuilder::new(&s(&ctx["http"]["method"]), &target)
        .route_key(&s(&real["routeKey"]))
        .account_id(&s(&ctx["accountId"]))
        .api_id(&s(&ctx["apiId"]))
        .request_id(&s(&ctx["requestId"]))
        .source_ip(&s(&ctx["http"]["sourceIp"]))
        .time(chrono::DateTime::from_timestamp_millis(ctx["timeEpoch"].as_i64().unwrap()).unwrap());
    for (k, v) in real["headers"].as_object().unwrap() {
        b = b.header(k, &s(v));
    }
    for c in real["cookies"].as_array().into_iter().flatten() {
        b = b.cookie(&s(c));
    }
    if let Some(body) = real.get("body") {
        b = if real["isBase64Encoded"] == true { b.body_base64(s(body)) } else { b.body(s(body)) };
    }
    b
}

// ---------------------------------------------------------------- (a) the events read as AWS's

#[test]
fn the_login_event_reads_as_the_request_the_browser_sent() {
    let req = request(LOGIN);
    assert_eq!(req.method(), "POST");
    assert_eq!(req.uri().path(), "/login");
    assert_eq!(req.uri().host(), Some("api.example.com"));
    assert_eq!(req.uri().query(), None);
    assert_eq!(req.headers()["content-type"], "application/json");
    assert_eq!(req.headers()["origin"], "https://app.example.com");
    assert_eq!(req.headers()["cookie"], "theme=dark; _ga=GA1.1.1840571256.1795000000");
    assert_eq!(
        gatehouse_http::find_cookie([req.headers()["cookie"].to_str().unwrap()], "theme").as_deref(),
        Some("dark")
    );
    let Body::Text(body) = req.body() else { panic!("a JSON body is text: {:?}", req.body()) };
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["email"], "ann@example.com");
    let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() else { panic!("not an HTTP API event") };
    assert_eq!(ctx.http.source_ip.as_deref(), Some("198.51.100.23"));
    assert_eq!(ctx.request_id.as_deref(), Some("Ux7qAjK2oAMEVxw="));
    assert_eq!(ctx.time_epoch, 1_795_000_000_000);
    assert_eq!(ctx.stage.as_deref(), Some("$default"));
    assert_eq!(ctx.route_key.as_deref(), Some("POST /login"));
    assert_eq!(gatehouse_http::request_id(&req), "Ux7qAjK2oAMEVxw=");
    let meta = gatehouse_http::client_meta(&req, &[]);
    assert_eq!(meta.ip.as_deref(), Some("198.51.100.23"), "the source ip, never x-forwarded-for");
    assert!(meta.user_agent.is_some_and(|ua| ua.contains("Safari")));

    let ev: ApiGatewayV2httpRequest = serde_json::from_str(&text(LOGIN)).unwrap();
    assert_eq!(ev.version.as_deref(), Some("2.0"));
    assert_eq!(ev.route_key.as_deref(), Some("POST /login"));
    assert_eq!(ev.cookies.as_ref().map(Vec::len), Some(2));
    assert!(!ev.is_base64_encoded);
    assert_eq!(ev.request_context.http.method, lambda_http::http::Method::POST);
    assert_eq!(ev.request_context.domain_prefix.as_deref(), Some("api"));
}

#[test]
fn the_base64_event_is_decoded_into_the_bytes_sent() {
    let req = request(BASE64);
    assert_eq!(req.method(), "POST");
    assert_eq!(req.uri().path(), "/login");
    assert_eq!(req.headers()["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(req.body(), &Body::Binary(b"email=ann%40example.com&password=correct+horse+battery+staple+42".to_vec()));
    assert!(req.headers().get("cookie").is_none(), "no cookies, no Cookie header");
    let ev: ApiGatewayV2httpRequest = serde_json::from_str(&text(BASE64)).unwrap();
    assert!(ev.is_base64_encoded);
    assert_eq!(ev.cookies, None);
    assert_eq!(ev.request_context.http.user_agent.as_deref(), Some("curl/8.7.1"));
}

#[test]
fn the_authorizer_event_reads_as_a_v2_request_authorizer_event() {
    let ev: ApiGatewayV2CustomAuthorizerV2Request = serde_json::from_str(&text(AUTHORIZER)).unwrap();
    let bearer = "Bearer 3|Zk9pW2xQnV7rT4yB8uH1cJ6mA0sD5fG9kL2eR7tY";
    assert_eq!(ev.version.as_deref(), Some("2.0"));
    assert_eq!(ev.type_.as_deref(), Some("REQUEST"));
    assert_eq!(
        ev.route_arn.as_deref(),
        Some("arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/$default/GET/user")
    );
    assert_eq!(ev.identity_source, Some(vec![bearer.to_owned()]));
    assert_eq!(ev.route_key.as_deref(), Some("GET /user"));
    assert_eq!(ev.headers["authorization"], bearer);
    assert_eq!(ev.cookies, ["theme=dark"]);
    assert_eq!(ev.request_context.http.source_ip.as_deref(), Some("198.51.100.23"));
    assert_eq!(ev.request_context.time_epoch, 1_795_000_009_512);
    assert_eq!(
        gatehouse_http::parse_bearer(ev.headers.get("authorization").map(|v| v.as_bytes())).unwrap().as_deref(),
        Some("3|Zk9pW2xQnV7rT4yB8uH1cJ6mA0sD5fG9kL2eR7tY")
    );
}

#[test]
fn the_sqs_event_reads_as_two_records_of_job_payloads() {
    let ev: SqsEvent = serde_json::from_str(&text(SQS)).unwrap();
    assert_eq!(ev.records.len(), 2);
    let ids: Vec<_> = ev.records.iter().map(|r| r.message_id.as_deref().unwrap()).collect();
    assert_eq!(ids, ["2f1c3e4d-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"]);
    let counts: Vec<_> = ev.records.iter().map(|r| r.attributes["ApproximateReceiveCount"].as_str()).collect();
    assert_eq!(counts, ["1", "3"]);
    for r in &ev.records {
        assert_eq!(r.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(r.event_source_arn.as_deref(), Some("arn:aws:sqs:eu-west-1:123456789012:gatehouse-jobs"));
        assert_eq!(r.aws_region.as_deref(), Some("eu-west-1"));
        assert!(r.receipt_handle.as_deref().is_some_and(|h| h.starts_with("AQEB")));
    }
    let jobs: Vec<JobPayload> =
        ev.records.iter().map(|r| JobPayload::from_body(r.body.as_deref().unwrap()).expect("a job payload")).collect();
    assert_eq!(jobs[0].job, "SendPasswordResetLink");
    assert_eq!(jobs[0].data["email"], "ann@example.com");
    assert_eq!(jobs[0].backoff, [10, 30, 60, 120], "Laravel's \"10,30,60,120\"");
    assert_eq!(jobs[1].job, "SendPasswordChangedNotification");
    assert_eq!(jobs[1].max_tries, Some(5));
}

// ---------------------------------------------------------------- (b) the built events have AWS's shape

#[test]
fn the_builder_rebuilds_the_real_login_event_exactly() {
    let real = fixture(LOGIN);
    let built = builder_like(&real).build();
    assert_same_shape(&built, &real, LOGIN);
    assert_eq!(built, real);
}

#[test]
fn the_tests_calls_have_the_shape_of_the_real_login_event() {
    let call = TestCall::new("POST", "/login")
        .header("origin", "https://app.example.com")
        .cookie(Some("theme=dark"))
        .json(json!({ "email": "ann@example.com", "password": PW }));
    assert_same_shape(&call.event(), &fixture(LOGIN), "TestCall::event");
}

#[test]
fn the_builder_gives_a_binary_body_the_shape_of_the_real_base64_event() {
    let real = fixture(BASE64);
    let built = EventBuilder::new("POST", "/login")
        .route_key("POST /login")
        .header("content-type", "application/octet-stream")
        .body_bytes(&[0xff, 0xfe, 0x00, 0x41])
        .build();
    assert_eq!(built["isBase64Encoded"], true);
    assert_same_shape(&built, &real, BASE64);
    // Fed the real event's base64 text as it is, the builder gives back the real event.
    let again = builder_like(&real).build();
    assert_eq!(again, real);
    // The real event's form body, given as the bytes a client sent, is encoded as AWS encoded it.
    let sent = base64::engine::general_purpose::STANDARD.decode(real["body"].as_str().expect("a base64 body")).unwrap();
    assert_eq!(builder_like(&real).body_bytes(&sent).build(), real);
}

#[test]
fn the_builder_rebuilds_the_real_authorizer_event_exactly() {
    let real = fixture(AUTHORIZER);
    let b = builder_like(&real).region("eu-west-1").identity_source(real["identitySource"][0].as_str().unwrap());
    let built = b.authorizer();
    assert_same_shape(&built, &real, AUTHORIZER);
    assert_eq!(built, real);
    let tests = gatehouse_tests::http::authorizer_event("GET /user", Some("t"), Some("theme=dark"));
    assert_same_shape(&tests, &real, "authorizer_event");
}

#[test]
fn the_tests_sqs_records_have_the_keys_of_the_real_ones() {
    let real = fixture(SQS);
    let msg = gatehouse::tables::jobs::QueueMessage {
        message_id: "m".into(),
        receipt_handle: "r".into(),
        body: "{}".into(),
        receive_count: 1,
        sent_at: None,
    };
    let built = sqs_event(&[msg]);
    assert_eq!(keys(&built), keys(&real));
    for record in real["Records"].as_array().unwrap() {
        assert_eq!(keys(&built["Records"][0]), keys(record));
        assert_eq!(keys(&built["Records"][0]["attributes"]), keys(&record["attributes"]));
    }
}

// ---------------------------------------------------------------- (c) the functions accept them

#[tokio::test]
async fn the_login_function_signs_in_from_the_real_event() {
    let t = TestApp::memory(&[("GATEHOUSE_ALLOWED_ORIGINS", "https://app.example.com")]);
    assert_eq!(t.register("Ann", "ann@example.com", PW).await.status, 201);
    let r = TestReply::from(gatehouse_login::handle(&t.app, request(LOGIN)).await);
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert_eq!(r.body["user"]["email"], "ann@example.com");
    let cookie = r.session_cookie().expect("a session cookie");
    // The session remembers where it was opened: API Gateway's source ip and user agent.
    let listed = t.login_fn(TestCall::new("GET", "/sessions").cookie(Some(&cookie))).await;
    assert_eq!(listed.status, 200, "{}", listed.raw_body);
    let current = listed.body["sessions"].as_array().unwrap().iter().find(|s| s["current"] == true).cloned();
    let current = current.expect("the current session is listed");
    assert_eq!(current["ip_address"], "198.51.100.23");
    assert!(current["user_agent"].as_str().is_some_and(|ua| ua.contains("Safari")), "{current}");
}

#[tokio::test]
async fn the_login_function_answers_the_real_form_event_with_415() {
    let t = TestApp::memory(&[]);
    let r = TestReply::from(gatehouse_login::handle(&t.app, request(BASE64)).await);
    assert_eq!(r.status, 415, "{}", r.raw_body);
}

#[tokio::test]
async fn the_authorizer_admits_a_live_token_in_the_real_event_and_denies_the_fixtures() {
    let t = TestApp::memory(&[]);
    let abilities = gatehouse_token_check::RouteAbilities::default();
    let as_sent: ApiGatewayV2CustomAuthorizerV2Request = serde_json::from_str(&text(AUTHORIZER)).unwrap();
    assert!(!gatehouse_token_check::authorize(&t.app.access, &abilities, as_sent).await.is_authorized);

    let cookie = t.signed_up("ann@example.com").await;
    let created = t.create_token(&cookie, json!({ "name": "cli" })).await;
    assert_eq!(created.status, 201, "{}", created.raw_body);
    let bearer = format!("Bearer {}", created.body["token"].as_str().unwrap());
    let mut event = fixture(AUTHORIZER);
    event["headers"]["authorization"] = json!(bearer);
    event["identitySource"] = json!([bearer]);
    let answer =
        gatehouse_token_check::authorize(&t.app.access, &abilities, serde_json::from_value(event).unwrap()).await;
    assert!(answer.is_authorized);
    assert!(answer.context["token_id"].is_string(), "{}", answer.context);
}
