//! API Gateway HTTP API (payload 2.0) events, built the way API Gateway builds them: one builder
//! for the local server (`gatehouse serve`) and the tests, so neither can drift from the shape AWS
//! sends (the fixtures under `tests/fixtures/` pin that shape).
//!
//! What API Gateway does, and so what [`EventBuilder`] does: header names are lower-cased and a
//! repeated header's values are joined with `,`; the `Cookie` header does not appear among the
//! headers but is split into the `cookies` array; a body that is not UTF-8 is base64 with
//! `isBase64Encoded`; `rawQueryString` is always present, `queryStringParameters`, `cookies` and
//! `body` only when there is something to put in them; `domainName` is the `Host` the client
//! used.
//!
//! ```
//! use gatehouse_http::event::EventBuilder;
//!
//! let req = EventBuilder::new("POST", "/login?next=%2Fhome")
//!     .route_key("POST /login")
//!     .header("content-type", "application/json")
//!     .cookie("theme=dark")
//!     .body(r#"{"email":"ann@example.com","password":"…"}"#)
//!     .source_ip("192.0.2.1")
//!     .request()
//!     .unwrap();
//! assert_eq!(req.uri().path(), "/login");
//! ```

use base64::Engine;
use gatehouse::Timestamp;
use lambda_http::Request;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// One API Gateway HTTP API request, as the event API Gateway would send a Lambda function
/// ([`EventBuilder::build`], [`EventBuilder::request`]) or a REQUEST authorizer
/// ([`EventBuilder::authorizer`]).
///
/// Defaults: route key `$default`, stage `$default`, account `123456789012`, API id `gatehouse`,
/// region `us-east-1`, source IP `192.0.2.1`, domain name the `Host` header (else the
/// execute-api domain), the time and a fresh request id of the moment [`EventBuilder::new`] ran
/// (so the function's event and the authorizer's event of one request share them).
#[derive(Clone, Debug)]
pub struct EventBuilder {
    method: String,
    path: String,
    query: String,
    route_key: String,
    headers: BTreeMap<String, String>,
    cookies: Vec<String>,
    body: Option<EventBody>,
    source_ip: String,
    account_id: String,
    api_id: String,
    region: String,
    domain: Option<(String, String)>,
    request_id: String,
    time: Timestamp,
    identity_source: Vec<String>,
    lambda_authorizer: Option<Value>,
}

impl EventBuilder {
    /// A request for `method` and `raw_path_with_query` (`/tokens?limit=1`) as the client sent it.
    pub fn new(method: &str, raw_path_with_query: &str) -> Self {
        let (path, query) = raw_path_with_query.split_once('?').unwrap_or((raw_path_with_query, ""));
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            route_key: "$default".into(),
            headers: BTreeMap::new(),
            cookies: Vec::new(),
            body: None,
            source_ip: "192.0.2.1".into(),
            account_id: "123456789012".into(),
            api_id: "gatehouse".into(),
            region: "us-east-1".into(),
            domain: None,
            request_id: uuid::Uuid::new_v4().to_string(),
            time: chrono::Utc::now(),
            identity_source: Vec::new(),
            lambda_authorizer: None,
        }
    }

    /// A header as the client sent it: the name lower-cased, a repeated header's values joined
    /// with `,`, and `Cookie` split into [`EventBuilder::cookie`]s, as API Gateway does.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            self.cookies.extend(value.split(';').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned));
            return self;
        }
        self.headers
            .entry(name)
            .and_modify(|v| {
                v.push(',');
                v.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
        self
    }

    /// The `Host` header, replacing any the client sent.
    pub fn host(mut self, host: &str) -> Self {
        self.headers.insert("host".into(), host.to_owned());
        self
    }

    /// Whether a header of that name (any case) was given.
    pub fn has_header(&self, name: &str) -> bool {
        self.headers.contains_key(&name.to_ascii_lowercase())
    }

    /// One `name=value` cookie of the `cookies` array.
    pub fn cookie(mut self, cookie: &str) -> Self {
        self.cookies.push(cookie.to_owned());
        self
    }

    /// A text body, sent as is (even empty).
    pub fn body(mut self, text: impl Into<String>) -> Self {
        self.body = Some(EventBody::Text(text.into()));
        self
    }

    /// A body already in base64, sent with `isBase64Encoded` (as AWS sent it).
    pub fn body_base64(mut self, encoded: impl Into<String>) -> Self {
        self.body = Some(EventBody::Base64(encoded.into()));
        self
    }

    /// A body of bytes as a client sent them: none when empty; otherwise encoded when the event
    /// is built, as API Gateway does, by the `content-type` then set: text for text types
    /// (`text/*`, JSON, XML, JavaScript) that are UTF-8, base64 with `isBase64Encoded` for
    /// anything else (forms and binary included).
    pub fn body_bytes(mut self, bytes: &[u8]) -> Self {
        self.body = (!bytes.is_empty()).then(|| EventBody::Bytes(bytes.to_vec()));
        self
    }

    /// `requestContext.http.sourceIp`: the address the connection came from.
    pub fn source_ip(mut self, ip: &str) -> Self {
        self.source_ip = ip.to_owned();
        self
    }

    /// The route API Gateway matched (`POST /tokens/{id}`), or `$default`.
    pub fn route_key(mut self, key: &str) -> Self {
        self.route_key = key.to_owned();
        self
    }

    /// `requestContext.domainName` and `domainPrefix`, when they are not the `Host` header's.
    pub fn domain(mut self, name: &str, prefix: &str) -> Self {
        self.domain = Some((name.to_owned(), prefix.to_owned()));
        self
    }

    pub fn account_id(mut self, id: &str) -> Self {
        self.account_id = id.to_owned();
        self
    }

    pub fn api_id(mut self, id: &str) -> Self {
        self.api_id = id.to_owned();
        self
    }

    /// The region, which only appears in the authorizer's `routeArn`.
    pub fn region(mut self, region: &str) -> Self {
        self.region = region.to_owned();
        self
    }

    pub fn request_id(mut self, id: &str) -> Self {
        self.request_id = id.to_owned();
        self
    }

    /// When API Gateway received the request (`time` and `timeEpoch`).
    pub fn time(mut self, at: Timestamp) -> Self {
        self.time = at;
        self
    }

    /// The authorizer's `identitySource`: the values of the sources it is configured with.
    pub fn identity_source(mut self, value: &str) -> Self {
        self.identity_source.push(value.to_owned());
        self
    }

    /// The context a Lambda authorizer returned, which API Gateway passes on in
    /// `requestContext.authorizer.lambda`.
    pub fn lambda_authorizer(mut self, context: Value) -> Self {
        self.lambda_authorizer = Some(context);
        self
    }

    fn domain_name_and_prefix(&self) -> (String, String) {
        if let Some(d) = &self.domain {
            return d.clone();
        }
        let name = match self.headers.get("host") {
            Some(host) => host.clone(),
            None => format!("{}.execute-api.{}.amazonaws.com", self.api_id, self.region),
        };
        let prefix = name.split('.').next().unwrap_or_default().to_owned();
        (name, prefix)
    }

    fn request_context(&self) -> Value {
        let (domain_name, domain_prefix) = self.domain_name_and_prefix();
        let mut ctx = json!({
            "accountId": self.account_id,
            "apiId": self.api_id,
            "domainName": domain_name,
            "domainPrefix": domain_prefix,
            "http": {
                "method": self.method,
                "path": self.path,
                "protocol": "HTTP/1.1",
                "sourceIp": self.source_ip,
                "userAgent": self.headers.get("user-agent").map(String::as_str).unwrap_or(""),
            },
            "requestId": self.request_id,
            "routeKey": self.route_key,
            "stage": "$default",
            "time": self.time.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": self.time.timestamp_millis(),
        });
        if let Some(context) = &self.lambda_authorizer {
            ctx["authorizer"] = json!({ "lambda": context });
        }
        ctx
    }

    /// What every variant shares: the request line, headers, cookies and the request context.
    fn common(&self) -> Map<String, Value> {
        let mut e = Map::new();
        e.insert("version".into(), json!("2.0"));
        e.insert("routeKey".into(), json!(self.route_key));
        e.insert("rawPath".into(), json!(self.path));
        e.insert("rawQueryString".into(), json!(self.query));
        if !self.cookies.is_empty() {
            e.insert("cookies".into(), json!(self.cookies));
        }
        e.insert("headers".into(), json!(self.headers));
        if let Some(params) = query_string_parameters(&self.query) {
            e.insert("queryStringParameters".into(), params);
        }
        e.insert("requestContext".into(), self.request_context());
        e
    }

    /// The event API Gateway sends the function that serves the route.
    pub fn build(&self) -> Value {
        let mut e = self.common();
        let (body, base64) = match &self.body {
            None => (None, false),
            Some(EventBody::Text(t)) => (Some(t.clone()), false),
            Some(EventBody::Base64(b)) => (Some(b.clone()), true),
            Some(EventBody::Bytes(bytes)) => {
                let text_type = self.headers.get("content-type").is_some_and(|t| is_text_type(t));
                match std::str::from_utf8(bytes) {
                    Ok(text) if text_type => (Some(text.to_owned()), false),
                    _ => (Some(base64::engine::general_purpose::STANDARD.encode(bytes)), true),
                }
            }
        };
        if let Some(body) = body {
            e.insert("body".into(), json!(body));
        }
        e.insert("isBase64Encoded".into(), json!(base64));
        Value::Object(e)
    }

    /// The event API Gateway sends a REQUEST authorizer (payload 2.0) for this request: no body,
    /// with `type`, `routeArn` and `identitySource`.
    pub fn authorizer(&self) -> Value {
        let mut e = self.common();
        e.insert("type".into(), json!("REQUEST"));
        e.insert(
            "routeArn".into(),
            json!(format!(
                "arn:aws:execute-api:{}:{}:{}/$default/{}{}",
                self.region, self.account_id, self.api_id, self.method, self.path
            )),
        );
        e.insert("identitySource".into(), json!(self.identity_source));
        Value::Object(e)
    }

    /// The request the function's handler receives: [`EventBuilder::build`] read by
    /// `lambda_http` exactly as the Lambda runtime reads the event. Fails on what `lambda_http`
    /// refuses (a header value that is not a valid header value, say).
    pub fn request(&self) -> Result<Request, serde_json::Error> {
        lambda_http::request::from_str(&self.build().to_string())
    }
}

/// A body as given to the builder.
#[derive(Debug, Clone)]
enum EventBody {
    Text(String),
    Base64(String),
    Bytes(Vec<u8>),
}

/// The content types API Gateway passes as text; every other body arrives base64.
fn is_text_type(content_type: &str) -> bool {
    let t = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    t.starts_with("text/")
        || t.ends_with("+json")
        || t.ends_with("+xml")
        || matches!(t.as_str(), "application/json" | "application/xml" | "application/javascript")
}

/// API Gateway's `queryStringParameters`: each name's values, decoded, joined with `,`; `None`
/// for an empty query. Decoded by `lambda_http`'s own query parser.
fn query_string_parameters(query: &str) -> Option<Value> {
    let Ok(parsed) = query.parse::<QueryMap>();
    let mut params: BTreeMap<&str, String> = BTreeMap::new();
    for (k, v) in parsed.iter() {
        params.entry(k).and_modify(|all| all.push_str(&format!(",{v}"))).or_insert_with(|| v.to_owned());
    }
    (!params.is_empty()).then(|| json!(params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
    use lambda_http::request::RequestContext;
    use lambda_http::{Body, RequestExt};

    fn login() -> EventBuilder {
        EventBuilder::new("POST", "/login?next=%2Fhome&a=1&a=2")
            .route_key("POST /login")
            .header("Host", "api.example.test")
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("accept", "text/plain")
            .header("cookie", "theme=dark; lang=en")
            .cookie("extra=1")
            .header("user-agent", "Phone/2")
            .source_ip("203.0.113.7")
            .body(r#"{"email":"ann@example.com"}"#)
    }

    #[test]
    fn the_event_reads_as_the_request_the_client_sent() {
        let req = login().request().expect("lambda_http reads the event");
        assert_eq!(req.method(), "POST");
        assert_eq!(req.uri().path(), "/login");
        assert_eq!(req.uri().query(), Some("next=%2Fhome&a=1&a=2"));
        assert_eq!(req.uri().host(), Some("api.example.test"));
        let q = req.query_string_parameters();
        assert_eq!(q.first("next"), Some("/home"));
        assert_eq!(q.all("a"), Some(vec!["1", "2"]));
        assert_eq!(req.headers()["content-type"], "application/json");
        assert_eq!(req.headers()["accept"], "application/json,text/plain", "repeated headers joined with ','");
        assert_eq!(req.headers()["cookie"], "theme=dark; lang=en; extra=1", "the cookies array as a Cookie header");
        assert_eq!(req.headers().get_all("cookie").iter().count(), 1);
        assert_eq!(req.body(), &Body::Text(r#"{"email":"ann@example.com"}"#.into()));
        let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() else {
            panic!("not an HTTP API event")
        };
        assert_eq!(ctx.http.source_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(ctx.http.user_agent.as_deref(), Some("Phone/2"));
        assert_eq!(ctx.route_key.as_deref(), Some("POST /login"));
        assert_eq!(ctx.domain_name.as_deref(), Some("api.example.test"));
        assert_eq!(ctx.domain_prefix.as_deref(), Some("api"));
        assert_eq!(ctx.stage.as_deref(), Some("$default"));
        assert!(uuid::Uuid::parse_str(ctx.request_id.as_deref().unwrap()).is_ok());
        let meta = crate::client_meta(&req, &[]);
        assert_eq!((meta.ip.as_deref(), meta.user_agent.as_deref()), (Some("203.0.113.7"), Some("Phone/2")));
    }

    #[test]
    fn the_event_has_the_shape_api_gateway_gives_it() {
        let e = login().build();
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["headers"].get("cookie"), None, "API Gateway moves the Cookie header into `cookies`");
        assert_eq!(e["cookies"], json!(["theme=dark", "lang=en", "extra=1"]));
        assert_eq!(e["headers"]["host"], "api.example.test", "names lower-cased");
        assert_eq!(e["queryStringParameters"], json!({ "next": "/home", "a": "1,2" }));
        assert_eq!(e["isBase64Encoded"], false);
        let bare = EventBuilder::new("GET", "/user").build();
        for absent in ["cookies", "body", "queryStringParameters"] {
            assert!(bare.get(absent).is_none(), "{absent} only when there is one");
        }
        assert_eq!(bare["rawQueryString"], "");
        assert_eq!(bare["routeKey"], "$default");
        assert_eq!(bare["requestContext"]["domainName"], "gatehouse.execute-api.us-east-1.amazonaws.com");
        assert_eq!(bare["requestContext"]["domainPrefix"], "gatehouse");
        assert_eq!(bare["requestContext"]["http"]["userAgent"], "");
    }

    #[test]
    fn time_request_id_and_deployment_are_as_given() {
        let at = chrono::DateTime::from_timestamp_millis(1_795_000_000_000).unwrap();
        let e = EventBuilder::new("GET", "/")
            .time(at)
            .request_id("r-1")
            .account_id("000000000000")
            .api_id("gatehouse-local")
            .domain("127.0.0.1", "local")
            .host("127.0.0.1:8080")
            .build();
        let ctx = &e["requestContext"];
        assert_eq!(ctx["time"], "18/Nov/2026:11:06:40 +0000");
        assert_eq!(ctx["timeEpoch"], 1_795_000_000_000i64);
        assert_eq!(ctx["requestId"], "r-1");
        assert_eq!(ctx["accountId"], "000000000000");
        assert_eq!(ctx["apiId"], "gatehouse-local");
        assert_eq!(ctx["domainName"], "127.0.0.1");
        assert_eq!(ctx["domainPrefix"], "local");
        assert_eq!(e["headers"]["host"], "127.0.0.1:8080");
    }

    #[test]
    fn a_body_that_is_not_utf8_is_base64() {
        let bytes = [0xff, 0xfe, 0x00, 0x41];
        let e = EventBuilder::new("POST", "/upload").body_bytes(&bytes).build();
        assert_eq!(e["isBase64Encoded"], true);
        assert_eq!(e["body"], "//4AQQ==");
        let req = EventBuilder::new("POST", "/upload").body_bytes(&bytes).request().unwrap();
        assert_eq!(req.body(), &Body::Binary(bytes.to_vec()));

        // As API Gateway does: text types arrive as text, anything else (a form too) as base64.
        let text = EventBuilder::new("POST", "/x")
            .body_bytes("héllo".as_bytes())
            .header("content-type", "text/plain; charset=utf-8")
            .build();
        assert_eq!((text["body"].as_str(), text["isBase64Encoded"].as_bool()), (Some("héllo"), Some(false)));
        let json_body = EventBuilder::new("POST", "/x").header("content-type", "application/json").body_bytes(b"{}");
        assert_eq!(json_body.build()["isBase64Encoded"], false);
        let form = EventBuilder::new("POST", "/x")
            .header("content-type", "application/x-www-form-urlencoded")
            .body_bytes(b"a=1")
            .build();
        assert_eq!((form["body"].as_str(), form["isBase64Encoded"].as_bool()), (Some("YT0x"), Some(true)));
        let untyped = EventBuilder::new("POST", "/x").body_bytes(b"a=1").build();
        assert_eq!(untyped["isBase64Encoded"], true, "no content type: not text");
        let empty = EventBuilder::new("POST", "/x").body_bytes(b"").build();
        assert!(empty.get("body").is_none());
        let said_empty = EventBuilder::new("POST", "/x").body("").build();
        assert_eq!(said_empty["body"], "", "a text body is sent as given");
    }

    #[test]
    fn the_authorizer_event_is_a_v2_request_authorizer_event() {
        let b = EventBuilder::new("DELETE", "/tokens/abc?x=1")
            .route_key("DELETE /tokens/{id}")
            .host("api.example.test")
            .header("authorization", "Bearer t0k3n")
            .identity_source("Bearer t0k3n")
            .cookie("__Host-gatehouse_session=s")
            .body("ignored");
        let e = b.authorizer();
        assert!(e.get("body").is_none() && e.get("isBase64Encoded").is_none(), "an authorizer gets no body");
        let ev: ApiGatewayV2CustomAuthorizerV2Request = serde_json::from_value(e).expect("an authorizer event");
        assert_eq!(ev.version.as_deref(), Some("2.0"));
        assert_eq!(ev.type_.as_deref(), Some("REQUEST"));
        assert_eq!(ev.route_key.as_deref(), Some("DELETE /tokens/{id}"));
        assert_eq!(
            ev.route_arn.as_deref(),
            Some("arn:aws:execute-api:us-east-1:123456789012:gatehouse/$default/DELETE/tokens/abc")
        );
        assert_eq!(ev.identity_source, Some(vec!["Bearer t0k3n".to_owned()]));
        assert_eq!(ev.raw_path.as_deref(), Some("/tokens/abc"));
        assert_eq!(ev.raw_query_string.as_deref(), Some("x=1"));
        assert_eq!(ev.cookies, ["__Host-gatehouse_session=s"]);
        assert_eq!(ev.headers["authorization"], "Bearer t0k3n");
        assert_eq!(ev.query_string_parameters.get("x").map(String::as_str), Some("1"));
        assert_eq!(ev.request_context.http.method, lambda_http::http::Method::DELETE);
        assert_eq!(ev.request_context.http.source_ip.as_deref(), Some("192.0.2.1"));
    }

    #[test]
    fn the_lambda_authorizers_context_rides_in_the_request_context() {
        let req = EventBuilder::new("GET", "/user").lambda_authorizer(json!({ "user_id": "u1" })).request().unwrap();
        let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() else {
            panic!("not an HTTP API event")
        };
        let lambda = ctx.authorizer.as_ref().and_then(|a| a.fields.get("user_id")).cloned();
        assert_eq!(lambda, Some(json!("u1")));
    }

    #[test]
    fn query_parameters_are_decoded_and_keep_what_is_not_an_escape() {
        assert_eq!(query_string_parameters("q=a%20b%2"), Some(json!({ "q": "a b%2" })));
        assert_eq!(query_string_parameters("q=%zz%41"), Some(json!({ "q": "%zzA" })));
        assert_eq!(query_string_parameters("flag&=x"), Some(json!({ "flag": "", "": "x" })));
        assert_eq!(query_string_parameters(""), None);
    }
}
