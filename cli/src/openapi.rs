//! `gatehouse openapi`: the HTTP contract, generated. Paths, methods, security (from each route's
//! guard), path parameters and which request type a body has come from the functions' route
//! tables; the schemas of request and response bodies and of the error body come from the wire
//! types themselves (utoipa's `ToSchema` derives in gatehouse-http, built with its `openapi`
//! feature, which the Lambda functions leave off); the prose comes from [`docs`]. The committed
//! `openapi.json` is this output (a test fails when they differ); SAM, schemathesis and
//! `GET /openapi.json` read the file.

mod docs;

use crate::serve::tables;
use gatehouse_http::requests::*;
use gatehouse_http::views::*;
use gatehouse_http::{ErrorBody, ErrorDetail, Guard, Route};
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

/// The words for one route.
pub struct Op {
    /// `POST /tokens`, as the route table states it.
    pub key: &'static str,
    pub id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub description: Option<&'static str>,
    /// The success answers (usually one).
    pub ok: &'static [Response],
    /// Every other status this route answers, with what it means here.
    pub errors: &'static [(u16, &'static str)],
    pub query: &'static [Param],
}

/// The success answer.
pub struct Response {
    pub status: u16,
    pub description: &'static str,
    /// A type in `gatehouse_http::views`; `None` for no body.
    pub schema: Option<&'static str>,
    /// What the `Set-Cookie` header carries, when the route sets one.
    pub set_cookie: Option<&'static str>,
}

/// A query parameter (its JSON schema as text).
pub struct Param {
    pub name: &'static str,
    pub schema: &'static str,
    pub description: Option<&'static str>,
}

/// Every wire type with a schema: request bodies, views, the error body.
#[derive(OpenApi)]
#[openapi(components(schemas(
    RegisterRequest,
    LoginRequest,
    PasswordRequest,
    CreateTokenRequest,
    IssueTokenRequest,
    HandoffRequest,
    ExchangeRequest,
    ForgotPasswordRequest,
    ResetPasswordRequest,
    ProfileRequest,
    UpdatePasswordRequest,
    EmailChangeRequest,
    CodeRequest,
    TwoFactorChallengeRequest,
    PasskeyRegistrationRequest,
    PasskeyLoginRequest,
    PasskeyOptionsView,
    PasskeyView,
    PasskeysView,
    TwoFactorChallengeView,
    EnrolmentView,
    RecoveryCodesView,
    UserView,
    UserBody,
    SessionView,
    SessionsBody,
    ConfirmedView,
    TokenView,
    TokenPage,
    NewTokenView,
    HandoffView,
    ExchangeView,
    MessageView,
    VerificationView,
    CrossAppSessionView,
    CrossAppPage,
    ErrorBody,
    ErrorDetail,
)))]
struct WireTypes;

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn security(guard: &Guard) -> Value {
    match guard {
        Guard::Public => json!([]),
        Guard::Session => json!([{ "cookieAuth": [] }]),
        Guard::Credential(_) => json!([{ "bearerAuth": [] }, { "cookieAuth": [] }]),
    }
}

fn operation(route: &Route, op: &Op) -> Result<Value, DocError> {
    let mut o = Map::new();
    o.insert("operationId".into(), json!(op.id));
    o.insert("tags".into(), json!([op.tag]));
    o.insert("summary".into(), json!(op.summary));
    if let Some(d) = op.description {
        o.insert("description".into(), json!(d));
    }
    o.insert("security".into(), security(&route.guard));
    if let Guard::Credential(abilities) = route.guard
        && !abilities.is_empty()
    {
        o.insert("x-gatehouse-abilities".into(), json!(abilities));
    }
    let mut params: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    for q in op.query {
        let schema: Value = serde_json::from_str(q.schema)?;
        let mut p = json!({ "name": q.name, "in": "query", "schema": schema });
        if let Some(d) = q.description {
            p["description"] = json!(d);
        }
        params.push(p);
    }
    if !params.is_empty() {
        o.insert("parameters".into(), Value::Array(params));
    }
    if let Some(body) = route.body {
        o.insert("requestBody".into(), json!({ "required": true, "content": json_content(schema_ref(body)) }));
    }
    let mut responses = Map::new();
    for success in op.ok {
        let mut ok = json!({ "description": success.description });
        if let Some(schema) = success.schema {
            ok["content"] = json_content(schema_ref(schema));
        }
        if let Some(cookie) = success.set_cookie {
            ok["headers"] = json!({ "Set-Cookie": { "description": cookie, "schema": { "type": "string" } } });
        }
        responses.insert(success.status.to_string(), ok);
    }
    for (status, description) in with_standard_errors(route, op.errors) {
        let description = match (status, route.guard) {
            // Any guarded route may be configured to require a verified address.
            (403, Guard::Session | Guard::Credential(_)) => format!("{description} {UNVERIFIED}"),
            _ => description.to_owned(),
        };
        let mut r = json!({ "description": description, "content": json_content(schema_ref("Error")) });
        match status {
            405 => r["headers"] = json!({ "Allow": { "schema": { "type": "string" } } }),
            429 => {
                r["headers"] = json!({ "Retry-After": {
                    "description": "Seconds until another attempt is allowed.", "schema": { "type": "integer" } } })
            }
            _ => {}
        }
        responses.insert(status.to_string(), r);
    }
    o.insert("responses".into(), Value::Object(responses));
    Ok(Value::Object(o))
}

/// What every guarded route's 403 may also be.
const UNVERIFIED: &str = "Code `email_unverified` where GATEHOUSE_ROUTE_ABILITIES requires `verified` of this route and the user has not verified the address (the flag the credential carries).";

/// The answers every route of its kind gives, unless its words say more: 405 and 503 always;
/// 401 and 403 behind a guard; 413, 415 and 422 with a JSON body.
fn with_standard_errors(route: &Route, own: &'static [(u16, &'static str)]) -> Vec<(u16, &'static str)> {
    let mut all = own.to_vec();
    let mut standard = vec![
        (405, "Method not allowed on this route; `Allow` lists the methods that are."),
        (503, "A backing store is unavailable; safe to retry."),
    ];
    match route.guard {
        Guard::Public => {}
        Guard::Session => standard.extend([(401, "No valid session cookie."), (403, "Refused.")]),
        Guard::Credential(_) => standard.extend([
            (401, "No valid session cookie or bearer token."),
            (403, "The token lacks an ability the route requires (code `forbidden`)."),
        ]),
    }
    if route.body.is_some() {
        standard.extend([(413, "Body over 64 KiB."), (415, "Body is not JSON."), (422, "Validation failed.")]);
    }
    for (status, description) in standard {
        if !all.iter().any(|(s, _)| *s == status) {
            all.push((status, description));
        }
    }
    all
}

/// Why the document cannot be generated: a route without words, or words without a route.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("route {0} has no entry in cli/src/openapi/docs.rs")]
    Undocumented(String),
    #[error("cli/src/openapi/docs.rs documents {0}, which no route table serves")]
    Stale(String),
    #[error("a schema in cli/src/openapi/docs.rs or a wire type is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The `paths` object for `tables`, with each route's words from `ops`: every route must have
/// words and every entry a route.
fn paths(tables: &[&[Route]], ops: &[Op]) -> Result<Map<String, Value>, DocError> {
    let mut paths = Map::new();
    let mut used = Vec::new();
    for route in tables.iter().flat_map(|routes| routes.iter()) {
        let key = route.key();
        let op = ops.iter().find(|o| o.key == key).ok_or_else(|| DocError::Undocumented(key.clone()))?;
        used.push(op.key);
        let item = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        item[route.method.to_ascii_lowercase()] = operation(route, op)?;
    }
    match ops.iter().find(|o| !used.contains(&o.key)) {
        Some(stale) => Err(DocError::Stale(stale.key.to_owned())),
        None => Ok(paths),
    }
}

/// The OpenAPI 3.1 document.
pub fn document() -> Result<Value, DocError> {
    let tables: Vec<&[Route]> = tables().iter().map(|(routes, _)| *routes).collect();
    let mut paths = paths(&tables, docs::OPS)?;
    paths.insert(
        "/openapi.json".into(),
        json!({ "get": {
            "operationId": "openapi", "tags": ["meta"], "summary": "This document (local server only).",
            "security": [], "x-gatehouse-local-only": true,
            "responses": { "200": { "description": "The OpenAPI document.", "content": json_content(json!({ "type": "object" })) } }
        } }),
    );
    let components = serde_json::to_value(WireTypes::openapi().components)?;
    let schemas = components.get("schemas").cloned().unwrap_or_else(|| json!({}));
    Ok(json!({
        "openapi": "3.1.0",
        "info": { "title": "gatehouse", "version": env!("CARGO_PKG_VERSION"), "description": docs::INFO_DESCRIPTION },
        "servers": [{ "url": "http://127.0.0.1:8080", "description": "gatehouse serve" }],
        "security": [{ "bearerAuth": [] }, { "cookieAuth": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": { "type": "http", "scheme": "bearer", "description": docs::BEARER_DESCRIPTION },
                "cookieAuth": { "type": "apiKey", "in": "cookie", "name": "__Host-gatehouse_session", "description": docs::COOKIE_DESCRIPTION }
            },
            "schemas": schemas
        }
    }))
}

/// The document as committed: pretty JSON, keys sorted, a final newline.
pub fn render() -> Result<String, DocError> {
    let mut text = serde_json::to_string_pretty(&document()?)?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_tests::http::{TestApp, TestCall, TestReply};

    const REGENERATE: &str = "regenerate it: cargo run -p gatehouse-cli -- openapi --output openapi.json";

    /// The first place two JSON values differ, as a JSON pointer.
    fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<_> = x.keys().chain(y.keys()).collect();
                keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => first_difference(p, q, format!("{at}/{k}")),
                    _ => Some(format!("{at}/{k}")),
                })
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                x.iter().zip(y).enumerate().find_map(|(i, (p, q))| first_difference(p, q, format!("{at}/{i}")))
            }
            _ => (a != b).then_some(at),
        }
    }

    #[test]
    fn the_committed_openapi_json_is_the_generated_one() {
        let generated = document().expect("every route documented");
        let committed: Value = serde_json::from_str(crate::serve::OPENAPI).expect("openapi.json is JSON");
        if let Some(at) = first_difference(&committed, &generated, String::new()) {
            panic!("openapi.json differs from the generated document at {at}; {REGENERATE}");
        }
        assert_eq!(
            crate::serve::OPENAPI,
            render().unwrap(),
            "openapi.json is not formatted as generated; {REGENERATE}"
        );
    }

    #[test]
    fn every_body_schema_and_success_schema_named_by_a_route_exists() {
        let doc = document().unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for (routes, _) in tables() {
            for r in routes.iter().filter_map(|r| r.body) {
                assert!(schemas.contains_key(r), "request type {r} has no schema: add it to WireTypes");
            }
        }
        for op in docs::OPS {
            for s in op.ok.iter().filter_map(|r| r.schema) {
                assert!(schemas.contains_key(s), "{} answers {s}, which has no schema", op.key);
            }
        }
        assert!(schemas.contains_key("Error"));
    }

    async fn nothing(_: gatehouse_http::Call<'_>) -> gatehouse_http::Reply {
        Ok(gatehouse_http::no_content())
    }

    static EXTRA: &[Route] = &[gatehouse_http::route!(POST "/nowhere", Guard::Public, nothing)];

    const WORDS: Op = Op {
        key: "POST /nowhere",
        id: "nowhere",
        tag: "meta",
        summary: "A route for the generator's tests.",
        description: None,
        ok: &[Response { status: 204, description: "Done.", schema: None, set_cookie: None }],
        errors: &[],
        query: &[],
    };

    #[test]
    fn a_route_without_words_or_words_without_a_route_fail_the_generator() {
        assert!(matches!(paths(&[EXTRA], &[]), Err(DocError::Undocumented(k)) if k == "POST /nowhere"));
        assert!(matches!(paths(&[], &[WORDS]), Err(DocError::Stale(k)) if k == "POST /nowhere"));
        let bad_query = Op { query: &[Param { name: "n", schema: "{not json", description: None }], ..WORDS };
        assert!(matches!(paths(&[EXTRA], &[bad_query]), Err(DocError::Json(_))));
        let ok = paths(&[EXTRA], &[WORDS]).unwrap();
        assert_eq!(ok["/nowhere"]["post"]["security"], json!([]));
        assert_eq!(ok["/nowhere"]["post"]["responses"]["405"]["headers"]["Allow"]["schema"]["type"], "string");
    }

    /// The fields a handler reports missing for an empty body are exactly the ones its request
    /// type marks required: the document and the parser cannot drift apart.
    #[tokio::test]
    async fn handlers_require_exactly_the_fields_their_request_types_mark_required() {
        let app = TestApp::memory(&[]);
        let cookie = app.signed_up("schema@example.com").await;
        let doc = document().unwrap();
        let mut checked = 0;
        for (routes, _) in tables() {
            for route in routes {
                let Some(body) = route.body else { continue };
                let mut required: Vec<String> = doc["components"]["schemas"][body]["required"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                required.sort();
                let path = route.path.replace("{id}", "x");
                let call = TestCall::new(route.method, &path).json(json!({})).cookie(Some(&cookie));
                let reply = TestReply::from(gatehouse_http::dispatch(&app.app, routes, call.request()).await);
                assert_eq!(reply.status, 422, "{}: {:?}", route.key(), reply.body);
                let mut missing: Vec<String> =
                    reply.body["error"]["fields"].as_object().map(|f| f.keys().cloned().collect()).unwrap_or_default();
                missing.sort();
                assert_eq!(
                    missing,
                    required,
                    "{}: the handler requires {missing:?}, {body} documents {required:?}",
                    route.key()
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 17);
    }
}
