//! A [`TestApp`]: the real function handlers, fed API Gateway HTTP API (payload 2.0) events as
//! API Gateway sends them, over stores on the emulator or in memory.

use crate::TestEnv;
use gatehouse::Config;
use gatehouse_http::App;
use gatehouse_http::event::EventBuilder;
use lambda_http::http::HeaderMap;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The session cookie's name under the default configuration (no cookie domain: `__Host-`).
pub const SESSION_COOKIE: &str = "__Host-gatehouse_session";

pub struct TestApp {
    pub env: TestEnv,
    pub app: App,
}

/// One request, described the way a client sends it.
#[derive(Clone, Debug)]
pub struct TestCall {
    pub method: String,
    pub path: String,
    pub body: Option<String>,
    pub headers: Vec<(String, String)>,
    pub cookies: Vec<String>,
    pub ip: String,
}

impl TestCall {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            body: None,
            headers: vec![],
            cookies: vec![],
            ip: "203.0.113.7".into(),
        }
    }
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body.to_string());
        self.header("content-type", "application/json")
    }
    pub fn raw(mut self, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
    pub fn cookie(mut self, c: Option<&str>) -> Self {
        self.cookies.extend(c.map(str::to_owned));
        self
    }
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }
    pub fn from_ip(mut self, ip: &str) -> Self {
        self.ip = ip.to_owned();
        self
    }

    /// The builder of this call's API Gateway v2 event: host `api.example.test` (whatever the
    /// call says), user agent `gatehouse-tests/1.0` unless the call sets one, a fixed time.
    pub fn builder(&self) -> EventBuilder {
        // One value per header name, the last given (as when they were collected into a map).
        let headers: HashMap<&str, &str> = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut b = EventBuilder::new(&self.method, &self.path).source_ip(&self.ip).time(test_time());
        for (k, v) in &headers {
            b = b.header(k, v);
        }
        if !b.has_header("user-agent") {
            b = b.header("user-agent", "gatehouse-tests/1.0");
        }
        b = b.host("api.example.test");
        for c in &self.cookies {
            b = b.cookie(c);
        }
        if let Some(body) = &self.body {
            // A form arrives base64-encoded, as API Gateway sends every non-text type.
            let form = headers.get("content-type").is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
            b = if form { b.body_bytes(body.as_bytes()) } else { b.body(body.as_str()) };
        }
        b
    }

    /// The API Gateway v2 event JSON for this call.
    pub fn event(&self) -> Value {
        self.builder().build()
    }

    pub fn request(&self) -> Request {
        self.builder().request().expect("a valid API Gateway v2 event")
    }
}

/// What came back.
#[derive(Debug, Clone)]
pub struct TestReply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw_body: String,
}

impl TestReply {
    pub fn from(resp: Response<Body>) -> Self {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let raw_body = match resp.body() {
            Body::Text(t) => t.clone(),
            Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        let body = serde_json::from_str(&raw_body).unwrap_or(Value::Null);
        Self { status, headers, body, raw_body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
    }

    /// `name=value` of the session cookie set by this reply (to send back), if any.
    /// Applies this reply's `Set-Cookie`s to a browser's cookie jar (name → value): a cookie
    /// set is kept, one cleared (`Max-Age=0`, or an empty value) is dropped.
    pub fn keep_cookies(&self, jar: &mut std::collections::BTreeMap<String, String>) {
        for c in self.set_cookies() {
            let pair = c.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if c.contains("Max-Age=0") || value.is_empty() {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub fn session_cookie(&self) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.strip_prefix(SESSION_COOKIE).is_some_and(|v| v.starts_with('=')) && !c.contains("Max-Age=0"))
            .map(|c| c.split(';').next().unwrap_or_default().to_owned())
    }

    pub fn error_code(&self) -> Option<&str> {
        self.body.get("error").and_then(|e| e.get("code")).and_then(Value::as_str)
    }
}

/// Configuration for tests: the defaults, with the given overrides.
pub fn config(overrides: &[(&str, &str)]) -> Config {
    let map = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_map(&map).expect("test configuration")
}

impl TestApp {
    pub async fn aws(overrides: &[(&str, &str)]) -> Self {
        Self::with(TestEnv::aws().await, overrides)
    }

    pub fn memory(overrides: &[(&str, &str)]) -> Self {
        Self::with(TestEnv::memory(), overrides)
    }

    pub fn with(env: TestEnv, overrides: &[(&str, &str)]) -> Self {
        let mut cfg = config(overrides);
        if let Some(aws) = &env.aws {
            cfg.names = aws.names.clone();
            // The emulator's queue delays in real time: a test on it does not wait out the
            // notices' delay (the worker still mails only what a landed write promised).
            if !overrides.iter().any(|(k, _)| *k == "GATEHOUSE_NOTICE_DELAY_SECONDS") {
                cfg.notice_delay = std::time::Duration::ZERO;
            }
        }
        let app = App::new(cfg, env.stores.clone()).expect("app");
        Self { env, app }
    }

    /// Another deployment over the same tables and with the same key (another
    /// `GATEHOUSE_APP_NAME`, say): its `App`.
    pub fn sibling(&self, overrides: &[(&str, &str)]) -> App {
        let mut cfg = config(overrides);
        cfg.names = self.app.config.names.clone();
        cfg.app_key = self.app.config.app_key.clone();
        App::new(cfg, self.env.stores.clone()).expect("app")
    }

    pub async fn login_fn(&self, call: TestCall) -> TestReply {
        TestReply::from(gatehouse_login::handle(&self.app, call.request()).await)
    }

    pub async fn register(&self, name: &str, email: &str, password: &str) -> TestReply {
        self.login_fn(TestCall::new("POST", "/register").json(json!({
            "name": name, "email": email, "password": password, "password_confirmation": password
        })))
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> TestReply {
        self.login_fn(TestCall::new("POST", "/login").json(json!({ "email": email, "password": password }))).await
    }

    pub async fn user(&self, cookie: Option<&str>) -> TestReply {
        self.login_fn(TestCall::new("GET", "/user").cookie(cookie)).await
    }
}

impl TestApp {
    pub async fn tokens_fn(&self, call: TestCall) -> TestReply {
        TestReply::from(gatehouse_tokens::handle(&self.app, call.request()).await)
    }

    /// The tokens function of another deployment ([`TestApp::sibling`]).
    pub async fn tokens_at(app: &App, call: TestCall) -> TestReply {
        TestReply::from(gatehouse_tokens::handle(app, call.request()).await)
    }

    /// The login function of another deployment ([`TestApp::sibling`]).
    pub async fn login_at(app: &App, call: TestCall) -> TestReply {
        TestReply::from(gatehouse_login::handle(app, call.request()).await)
    }

    /// The TOTP code of the base32 `secret` now, by the app's clock.
    pub fn totp(&self, secret: &str) -> String {
        let now = u64::try_from(self.env.clock_now().timestamp()).expect("a time after 1970");
        gatehouse::services::two_factor::code_for(secret, now).expect("a base32 secret")
    }

    /// Signs `email` up and turns two-factor authentication on: the session cookie (rotated by
    /// turning it on), the base32 secret, the recovery codes.
    pub async fn enrolled(&self, email: &str) -> (String, String, Vec<String>) {
        let cookie = self.signed_up(email).await;
        let e = self.login_fn(TestCall::new("POST", "/user/two-factor-authentication").cookie(Some(&cookie))).await;
        assert_eq!(e.status, 200, "{}", e.raw_body);
        let secret = e.body["secret"].as_str().expect("a secret").to_owned();
        let c = TestCall::new("POST", "/user/confirmed-two-factor-authentication")
            .cookie(Some(&cookie))
            .json(serde_json::json!({ "code": self.totp(&secret) }));
        let confirmed = self.login_fn(c).await;
        assert_eq!(confirmed.status, 200, "{}", confirmed.raw_body);
        let codes = confirmed.body["recovery_codes"].as_array().expect("recovery codes");
        let codes = codes.iter().map(|c| c.as_str().expect("a code").to_owned()).collect();
        (confirmed.session_cookie().expect("the rotated session"), secret, codes)
    }

    /// Registers a user, confirms its password in the new session (signing up is no
    /// confirmation: the account page's flows confirm before adding a way in or minting a strong
    /// token) and returns the session cookie. [`TestApp::registered`] leaves it unconfirmed.
    pub async fn signed_up(&self, email: &str) -> String {
        let cookie = self.registered(email).await;
        let confirm = TestCall::new("POST", "/user/confirm-password").cookie(Some(&cookie));
        let r = self.login_fn(confirm.json(json!({ "password": "correct horse battery staple 42" }))).await;
        assert_eq!(r.status, 204, "{}", r.raw_body);
        cookie
    }

    /// Registers a user and returns their session cookie (no password confirmation).
    pub async fn registered(&self, email: &str) -> String {
        let r = self.register("Ann", email, "correct horse battery staple 42").await;
        assert_eq!(r.status, 201, "{}", r.raw_body);
        r.session_cookie().expect("session cookie")
    }

    /// Creates a token through `POST /tokens` with the session cookie; returns the whole reply.
    pub async fn create_token(&self, cookie: &str, body: Value) -> TestReply {
        self.tokens_fn(TestCall::new("POST", "/tokens").cookie(Some(cookie)).json(body)).await
    }

    /// Runs the authorizer as API Gateway would for `route_key` (e.g. `GET /user`).
    pub async fn authorize(
        &self,
        abilities: &gatehouse_token_check::RouteAbilities,
        route_key: &str,
        bearer: Option<&str>,
        cookie: Option<&str>,
    ) -> aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerSimpleResponse<Value> {
        let event = authorizer_event(route_key, bearer, cookie);
        let event = serde_json::from_value(event).expect("a valid authorizer event");
        gatehouse_token_check::authorize_with(&self.app.access, self.app.signing_keys.as_deref(), abilities, event)
            .await
    }
}

/// When API Gateway received the tests' requests.
pub fn test_time() -> gatehouse::Timestamp {
    chrono::DateTime::from_timestamp_millis(1_795_000_000_000).expect("a valid time")
}

/// An HTTP API REQUEST authorizer event (payload 2.0), as API Gateway sends it.
pub fn authorizer_event(route_key: &str, bearer: Option<&str>, cookie: Option<&str>) -> Value {
    let mut b = authorizer_request(route_key);
    if let Some(t) = bearer {
        b = b.header("authorization", &format!("Bearer {t}"));
    }
    if let Some(c) = cookie {
        b = b.cookie(c);
    }
    b.authorizer()
}

/// The start of an authorizer event for `route_key`: the host, user agent, address and time
/// every test request has; add headers, a bearer token and cookies, then `.authorizer()`.
pub fn authorizer_request(route_key: &str) -> EventBuilder {
    let (method, path) = route_key.split_once(' ').unwrap_or(("GET", "/"));
    EventBuilder::new(method, path)
        .route_key(route_key)
        .host("api.example.test")
        .header("user-agent", "gatehouse-tests/1.0")
        .source_ip("203.0.113.7")
        .time(test_time())
}

impl TestApp {
    /// The hosted pages function.
    pub async fn pages_fn(&self, call: TestCall) -> TestReply {
        TestReply::from(gatehouse_pages::handle(&self.app, call.request()).await)
    }

    pub async fn reset_fn(&self, call: TestCall) -> TestReply {
        TestReply::from(gatehouse_password_reset::handle(&self.app, call.request()).await)
    }

    /// The job worker over this app's stores and configuration, mailing through `mailer`.
    pub fn worker(&self, mailer: std::sync::Arc<dyn gatehouse::mail::Mailer>) -> gatehouse::queue::Worker {
        // No EventBridge bus: the test that puts events on one builds its worker with it.
        let outbound = gatehouse_aws::outbound(&self.app.config, None);
        gatehouse::services::job_registry::worker(self.env.stores.clone(), self.app.config.clone(), mailer, outbound)
    }
}

/// The mail moto's SES has accepted for `to`: (subject, body) pairs.
pub fn ses_sent_to(to: &str) -> Vec<(String, String)> {
    let url = format!("{}/moto-api/data.json", crate::emulator_endpoint().trim_end_matches('/'));
    // moto builds this dump from live state; a write landing meanwhile can fail one request
    // ("dictionary changed size during iteration"): ask again, a few times.
    let mut out = std::process::Command::new("curl").args(["-fsS", &url]).output().expect("curl");
    for _ in 0..4 {
        if out.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        out = std::process::Command::new("curl").args(["-fsS", &url]).output().expect("curl");
    }
    assert!(out.status.success(), "GET {url} failed: {}", String::from_utf8_lossy(&out.stderr));
    let data: Value = serde_json::from_slice(&out.stdout).expect("moto data.json");
    data["ses"]["Message"]
        .as_array()
        .map(|msgs| {
            msgs.iter()
                .filter(|m| m["destinations"]["ToAddresses"].as_array().is_some_and(|a| a.iter().any(|x| x == to)))
                .map(|m| (m["subject"].as_str().unwrap_or("").to_owned(), m["body"].as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// An SQS event (as the Lambda event source sends it) holding `msgs`.
pub fn sqs_event(msgs: &[gatehouse::tables::jobs::QueueMessage]) -> Value {
    json!({ "Records": msgs.iter().map(|m| json!({
        "messageId": m.message_id, "receiptHandle": m.receipt_handle, "body": m.body,
        "attributes": { "ApproximateReceiveCount": m.receive_count.to_string(), "SentTimestamp": "1795000000000",
                        "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1795000000000" },
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs", "awsRegion": "us-east-1"
    })).collect::<Vec<_>>() })
}
